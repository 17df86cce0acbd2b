"""RSA as Tor uses it (tor-spec §0.3, dir-spec §1.3).

Tor's identity keys are RSA with exponent 65537; a relay's RSA identity
(fingerprint) is the SHA-1 of the PKCS#1 DER encoding of its public key.
Tor signatures are PKCS#1 v1.5 *type 1* padding around a raw digest, with no
ASN.1 DigestInfo, which is why signing and checking are done here on the key
numbers rather than through a hash-based API.  PKCS#1 v1.5 signing is
deterministic, so documents signed in simnet are reproducible.

Key generation takes its randomness as a parameter (``random_bytes``) so that
simnet can build keys from a seed; production code never generates RSA keys.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa

from gotor.errors import ProtocolError

PUBLIC_EXPONENT = 65537
_PEM_PUBLIC = "RSA PUBLIC KEY"


class RsaPublicKey:
    """An RSA public key with Tor's fingerprint and raw-digest signature check."""

    __slots__ = ("_key", "der")

    def __init__(self, key: _rsa.RSAPublicKey) -> None:
        self._key = key
        self.der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )

    @classmethod
    def from_der(cls, der: bytes) -> RsaPublicKey:
        """Parse a PKCS#1 ``RSAPublicKey`` DER structure."""
        try:
            key = serialization.load_der_public_key(_pkcs1_to_spki(der))
        except (ValueError, TypeError, IndexError) as exc:
            raise ProtocolError(f"bad RSA public key: {exc}") from None
        if not isinstance(key, _rsa.RSAPublicKey):
            raise ProtocolError("not an RSA public key")
        out = cls(key)
        if out.der != bytes(der):
            raise ProtocolError("RSA public key is not in canonical DER")
        return out

    @classmethod
    def from_pem_body(cls, der: bytes) -> RsaPublicKey:
        """From the decoded body of a ``-----BEGIN RSA PUBLIC KEY-----`` object."""
        return cls.from_der(der)

    @property
    def bits(self) -> int:
        return self._key.key_size

    @property
    def exponent(self) -> int:
        return self._key.public_numbers().e

    @property
    def modulus(self) -> int:
        return self._key.public_numbers().n

    def fingerprint(self) -> bytes:
        """The 20-byte RSA identity: SHA-1 of the PKCS#1 DER public key."""
        return hashlib.sha1(self.der).digest()

    def recover(self, signature: bytes) -> bytes | None:
        """The data inside a PKCS#1 v1.5 type-1 signature, or None if it does not open."""
        if len(signature) != (self.bits + 7) // 8:
            return None
        try:
            return self._key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
        except (InvalidSignature, ValueError):
            return None

    def verify_digest(self, signature: bytes, digest: bytes) -> bool:
        """True when ``signature`` is this key's Tor-style signature of ``digest``."""
        return self.recover(signature) == digest

    def pem(self) -> str:
        return pem_armor(_PEM_PUBLIC, self.der)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RsaPublicKey) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        return f"RsaPublicKey({self.bits} bits, {self.fingerprint().hex().upper()})"


class RsaPrivateKey:
    """An RSA private key; signs digests Tor-style (deterministic)."""

    __slots__ = ("_key", "public")

    def __init__(self, key: _rsa.RSAPrivateKey) -> None:
        self._key = key
        self.public = RsaPublicKey(key.public_key())

    @classmethod
    def from_primes(cls, p: int, q: int, e: int = PUBLIC_EXPONENT) -> RsaPrivateKey:
        n = p * q
        phi = (p - 1) * (q - 1)
        d = pow(e, -1, phi)
        numbers = _rsa.RSAPrivateNumbers(
            p=p, q=q, d=d,
            dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
            public_numbers=_rsa.RSAPublicNumbers(e, n),
        )
        return cls(numbers.private_key())

    @classmethod
    def generate(cls, bits: int, random_bytes: Callable[[int], bytes]) -> RsaPrivateKey:
        """A new key whose primes are drawn from ``random_bytes`` (seedable)."""
        while True:
            p = _random_prime(bits // 2, random_bytes)
            q = _random_prime(bits - bits // 2, random_bytes)
            if p == q or (p * q).bit_length() != bits:
                continue
            if ((p - 1) * (q - 1)) % PUBLIC_EXPONENT == 0:
                continue
            if (p - 1) % PUBLIC_EXPONENT == 0 or (q - 1) % PUBLIC_EXPONENT == 0:
                continue
            return cls.from_primes(max(p, q), min(p, q))

    @classmethod
    def from_der(cls, der: bytes, *, trusted: bool = False) -> RsaPrivateKey:
        """Parse a PKCS#1 ``RSAPrivateKey`` DER structure.

        ``trusted=True`` skips OpenSSL's consistency check of the key numbers (tens of
        milliseconds per key); only for keys we generated and stored ourselves.
        """
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=trusted)
        if not isinstance(key, _rsa.RSAPrivateKey):
            raise TypeError("not an RSA private key")
        return cls(key)

    @property
    def library_key(self) -> _rsa.RSAPrivateKey:
        """The `cryptography` key object, for APIs that take one (X.509 builders)."""
        return self._key

    def private_der(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def sign_digest(self, digest: bytes) -> bytes:
        """PKCS#1 v1.5 type-1 signature of a raw digest (no DigestInfo), as Tor signs."""
        k = (self.public.bits + 7) // 8
        if len(digest) > k - 11:
            raise ValueError("digest too long for this key")
        block = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
        nums = self._key.private_numbers()
        m = int.from_bytes(block, "big")
        # CRT: two half-size exponentiations instead of one full-size one.
        s1 = pow(m, nums.dmp1, nums.p)
        s2 = pow(m, nums.dmq1, nums.q)
        h = (nums.iqmp * (s1 - s2)) % nums.p
        s = s2 + h * nums.q
        return s.to_bytes(k, "big")


def pem_armor(label: str, der: bytes) -> str:
    """``-----BEGIN label-----`` with 64-column base64, as Tor writes objects."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


def _pkcs1_to_spki(der: bytes) -> bytes:
    """Wrap a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (what the loader takes)."""
    algid = bytes.fromhex("300d06092a864886f70d0101010500")
    bitstring = b"\x03" + _der_len(len(der) + 1) + b"\x00" + bytes(der)
    body = algid + bitstring
    return b"\x30" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _random_prime(bits: int, random_bytes: Callable[[int], bytes]) -> int:
    while True:
        c = int.from_bytes(random_bytes((bits + 7) // 8), "big")
        c &= (1 << bits) - 1
        c |= (3 << (bits - 2)) | 1  # top two bits set: the product has full length
        if any(c % p == 0 for p in _SMALL_PRIMES):
            continue
        if _miller_rabin(c, random_bytes):
            return c


def _miller_rabin(n: int, random_bytes: Callable[[int], bytes], rounds: int = 40) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    nbytes = (n.bit_length() + 7) // 8
    for _ in range(rounds):
        a = 2 + int.from_bytes(random_bytes(nbytes), "big") % (n - 3)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True
