"""Tor's Ed25519 certificates and the RSA->Ed25519 cross-certificate (cert-spec).

Ed25519 certificate (cert-spec §2.1), integers big-endian::

    VERSION [1] = 1 | CERT_TYPE [1] | EXPIRATION_DATE [4, hours since the epoch]
    | CERT_KEY_TYPE [1] | CERTIFIED_KEY [32] | N_EXTENSIONS [1]
    | N_EXTENSIONS x (ExtLength [2] | ExtType [1] | ExtFlags [1] | ExtData [ExtLength])
    | SIGNATURE [64]       -- Ed25519 over everything before it

The only extension defined is signed-with-ed25519-key (type 4, §2.2.1), which names
the signing key.  An unknown extension carrying the AFFECTS_VALIDATION flag makes the
certificate unusable (§2.1), so parsing rejects it; other unknown ones are kept.

RSA->Ed25519 cross-certificate (cert-spec §2.3, CERTS cell type 7)::

    ED25519_KEY [32] | EXPIRATION_DATE [4, hours] | SIGLEN [1] | SIGNATURE [SIGLEN]

whose signature is the RSA identity key's PKCS#1 v1.5 signature (no DigestInfo) of
SHA-256("Tor TLS RSA/Ed25519 cross-certificate" | ED25519_KEY | EXPIRATION_DATE).

Parsing checks only the format (ProtocolError); :meth:`verify` and
:meth:`check_valid_at` raise :class:`~gotor.errors.VerificationError`.  Both
signatures are deterministic, so certificates built in simnet are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gotor.bytesio import Reader, Writer
from gotor.crypto.primitives import ed25519_public, ed25519_sign, ed25519_verify, sha256
from gotor.crypto.rsa import RsaPrivateKey, RsaPublicKey
from gotor.errors import LocalError, ProtocolError, VerificationError

CERT_VERSION = 1
ED25519_KEY_LEN = 32
SIGNATURE_LEN = 64
SECONDS_PER_HOUR = 3600


class CertType(IntEnum):
    """CERT_TYPE values (cert-spec A.1; 1-3 and 7 are CERTS-cell types of other formats)."""

    IDENTITY_V_SIGNING = 0x04
    SIGNING_V_TLS_CERT = 0x05
    SIGNING_V_LINK_AUTH = 0x06
    RSA_ID_V_IDENTITY = 0x07  # the cross-certificate format below, not an Ed25519 cert
    HS_BLINDED_ID_V_SIGNING = 0x08
    HS_IP_V_SIGNING = 0x09
    NTOR_CC_IDENTITY = 0x0A
    HS_IP_CC_SIGNING = 0x0B


class CertKeyType(IntEnum):
    """CERT_KEY_TYPE values (cert-spec A.4).  Tor up to 0.4.5.1-alpha wrote 1 for every
    certified key, so the CERT_TYPE, not this field, says what the key is."""

    ED25519 = 0x01
    SHA256_OF_RSA = 0x02
    SHA256_OF_X509 = 0x03


class ExtType(IntEnum):
    SIGNED_WITH_ED25519_KEY = 0x04


EXT_FLAG_AFFECTS_VALIDATION = 0x01


@dataclass(frozen=True)
class CertExtension:
    ext_type: int
    flags: int
    data: bytes


@dataclass(frozen=True)
class Ed25519Cert:
    """A parsed (not yet verified) Tor Ed25519 certificate."""

    cert_type: int
    expiration_hours: int
    key_type: int
    certified_key: bytes
    extensions: tuple[CertExtension, ...]
    signature: bytes
    encoded: bytes

    @classmethod
    def parse(cls, data: bytes) -> Ed25519Cert:
        """Decode a certificate; malformed input raises ProtocolError."""
        r = Reader(data, "Ed25519 certificate")
        version = r.u8()
        if version != CERT_VERSION:
            raise ProtocolError(f"Ed25519 certificate has unknown version {version}")
        cert_type, expiration, key_type = r.u8(), r.u32(), r.u8()
        certified_key = r.take(ED25519_KEY_LEN)
        extensions = tuple(_parse_extension(r) for _ in range(r.u8()))
        signature = r.take(SIGNATURE_LEN)
        r.expect_end()
        signed_with = [e for e in extensions if e.ext_type == ExtType.SIGNED_WITH_ED25519_KEY]
        if len(signed_with) > 1:
            raise ProtocolError("Ed25519 certificate has two signed-with-key extensions")
        return cls(cert_type, expiration, key_type, certified_key, extensions, signature,
                   bytes(data))

    @property
    def signed_with(self) -> bytes | None:
        """The key named by the signed-with-ed25519-key extension, if present."""
        for ext in self.extensions:
            if ext.ext_type == ExtType.SIGNED_WITH_ED25519_KEY:
                return ext.data
        return None

    @property
    def expiry(self) -> int:
        """Expiration as POSIX seconds; the certificate is valid up to and including it."""
        return self.expiration_hours * SECONDS_PER_HOUR

    def verify(self, signing_key: bytes | None = None) -> None:
        """Check the signature with ``signing_key`` or, if None, the signed-with-key extension.

        When both are known they must agree (cert-spec §2.2.1).
        """
        named = self.signed_with
        if signing_key is None:
            if named is None:
                raise VerificationError("Ed25519 certificate names no signing key and none given")
            signing_key = named
        elif named is not None and named != signing_key:
            raise VerificationError("Ed25519 certificate's signed-with-key is not the expected key")
        if not ed25519_verify(signing_key, self.encoded[:-SIGNATURE_LEN], self.signature):
            raise VerificationError(f"bad signature on Ed25519 certificate (type {self.cert_type})")

    def check_valid_at(self, now: float) -> None:
        """VerificationError if the certificate has expired at POSIX time ``now``."""
        _check_expiry(self.expiry, now, f"Ed25519 certificate (type {self.cert_type})")

    def encode(self) -> bytes:
        """Re-encode from the fields (equal to ``encoded`` for any parsed certificate)."""
        return _unsigned_body(self.cert_type, self.expiration_hours, self.key_type,
                              self.certified_key, self.extensions) + self.signature

    @staticmethod
    def build(
        cert_type: int,
        certified_key: bytes,
        signing_seed: bytes,
        expiration_hours: int,
        key_type: int = CertKeyType.ED25519,
        include_signed_with: bool = True,
    ) -> bytes:
        """A certificate signed with the Ed25519 key whose 32-byte seed is ``signing_seed``."""
        if len(certified_key) != ED25519_KEY_LEN:
            raise LocalError("certified key must be 32 bytes")
        _check_hours(expiration_hours)
        extensions: tuple[CertExtension, ...] = ()
        if include_signed_with:
            extensions = (CertExtension(ExtType.SIGNED_WITH_ED25519_KEY, 0,
                                        ed25519_public(signing_seed)),)
        body = _unsigned_body(cert_type, expiration_hours, key_type, certified_key, extensions)
        return body + ed25519_sign(signing_seed, body)


def _parse_extension(r: Reader) -> CertExtension:
    length, ext_type, flags = r.u16(), r.u8(), r.u8()
    data = r.take(length)
    if ext_type == ExtType.SIGNED_WITH_ED25519_KEY:
        if length != ED25519_KEY_LEN:
            raise ProtocolError(f"signed-with-key extension must be 32 bytes, not {length}")
    elif flags & EXT_FLAG_AFFECTS_VALIDATION:
        raise ProtocolError(
            f"Ed25519 certificate has unknown extension {ext_type} that affects validation"
        )
    return CertExtension(ext_type, flags, data)


def _unsigned_body(
    cert_type: int, expiration_hours: int, key_type: int, certified_key: bytes,
    extensions: tuple[CertExtension, ...],
) -> bytes:
    w = Writer().u8(CERT_VERSION).u8(cert_type).u32(expiration_hours).u8(key_type)
    w.put(certified_key).u8(len(extensions))
    for ext in extensions:
        w.u16(len(ext.data)).u8(ext.ext_type).u8(ext.flags).put(ext.data)
    return w.getvalue()


def _check_hours(expiration_hours: int) -> None:
    if not 0 <= expiration_hours <= 0xFFFFFFFF:
        raise LocalError("expiration (hours since the epoch) must fit in 4 bytes")


def _check_expiry(expiry: int, now: float, what: str) -> None:
    if now > expiry:
        raise VerificationError(f"{what} expired at {expiry} (now {int(now)})")


CROSSCERT_PREFIX = b"Tor TLS RSA/Ed25519 cross-certificate"


@dataclass(frozen=True)
class RsaEd25519CrossCert:
    """A parsed (not yet verified) RSA->Ed25519 cross-certificate (cert-spec §2.3)."""

    ed25519_key: bytes
    expiration_hours: int
    signature: bytes
    encoded: bytes

    @classmethod
    def parse(cls, data: bytes) -> RsaEd25519CrossCert:
        r = Reader(data, "RSA->Ed25519 cross-certificate")
        key, expiration = r.take(ED25519_KEY_LEN), r.u32()
        signature = r.take_u8_prefixed()
        r.expect_end()
        return cls(key, expiration, signature, bytes(data))

    @property
    def expiry(self) -> int:
        """Expiration as POSIX seconds (the field counts hours, as in C tor)."""
        return self.expiration_hours * SECONDS_PER_HOUR

    def verify(self, rsa_identity: RsaPublicKey) -> None:
        """VerificationError unless ``rsa_identity`` signed this cross-certificate."""
        digest = _crosscert_digest(self.ed25519_key, self.expiration_hours)
        if not rsa_identity.verify_digest(self.signature, digest):
            raise VerificationError("bad RSA signature on RSA->Ed25519 cross-certificate")

    def check_valid_at(self, now: float) -> None:
        _check_expiry(self.expiry, now, "RSA->Ed25519 cross-certificate")

    @staticmethod
    def build(rsa_identity: RsaPrivateKey, ed25519_key: bytes, expiration_hours: int) -> bytes:
        if len(ed25519_key) != ED25519_KEY_LEN:
            raise LocalError("Ed25519 key must be 32 bytes")
        _check_hours(expiration_hours)
        signature = rsa_identity.sign_digest(_crosscert_digest(ed25519_key, expiration_hours))
        if len(signature) > 0xFF:
            raise LocalError("cross-certificates need an RSA-1024 identity key (SIGLEN is 1 byte)")
        return Writer().put(ed25519_key).u32(expiration_hours).u8_prefixed(signature).getvalue()


def _crosscert_digest(ed25519_key: bytes, expiration_hours: int) -> bytes:
    return sha256(CROSSCERT_PREFIX + ed25519_key + expiration_hours.to_bytes(4, "big"))
