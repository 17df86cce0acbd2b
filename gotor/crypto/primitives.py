"""Thin, uniform wrappers over the `cryptography` and PyNaCl primitives Tor uses.

Every other crypto module calls these, so the library calls live in one place.
Nothing here draws randomness: secrets always come in as bytes.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed
from cryptography.hazmat.primitives.asymmetric import x25519 as _x
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gotor.errors import ProtocolError


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha3_256(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def shake256(data: bytes, length: int) -> bytes:
    return hashlib.shake_256(data).digest(length)


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return _hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 (extract then expand)."""
    prk = hmac_sha256(salt, ikm)
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


class AesCtr:
    """AES in counter mode (AES-128 or AES-256 by key length) as a running keystream."""

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes, iv: bytes = bytes(16)) -> None:
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()

    def update(self, data: bytes) -> bytes:
        return self._ctx.update(data)


def aes_ctr(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """One-shot AES-CTR from a fresh counter."""
    return AesCtr(key, iv).update(data)


def x25519_public(secret: bytes) -> bytes:
    """The Curve25519 public key of a 32-byte secret (clamped as X25519 does)."""
    from cryptography.hazmat.primitives import serialization as s

    key = _x.X25519PrivateKey.from_private_bytes(secret).public_key()
    return key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)


def x25519(secret: bytes, public: bytes) -> bytes:
    """The X25519 shared secret; an all-zero result (a small-order peer key) is a protocol error."""
    try:
        shared = _x.X25519PrivateKey.from_private_bytes(secret).exchange(
            _x.X25519PublicKey.from_public_bytes(public)
        )
    except ValueError:
        raise ProtocolError("X25519 produced an all-zero shared secret") from None
    if shared == bytes(32):
        raise ProtocolError("X25519 produced an all-zero shared secret")
    return shared


def ed25519_public(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    key = _ed.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    return _ed.Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def ed25519_verify(public: bytes, msg: bytes, signature: bytes) -> bool:
    """True if ``signature`` is valid; False for a bad signature or an invalid key."""
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        _ed.Ed25519PublicKey.from_public_bytes(public).verify(signature, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def constant_time_eq(a: bytes, b: bytes) -> bool:
    return _hmac.compare_digest(a, b)


_P25519 = 2**255 - 19


def x25519_public_to_ed25519(public: bytes, sign_bit: int) -> bytes:
    """The Ed25519 public key of the same point as X25519 ``public`` (dir-spec Appendix C).

    y = (u - 1) / (u + 1) mod p, with the Edwards x-coordinate's sign given by
    ``sign_bit`` (a Montgomery u-coordinate does not carry it).  Used to check
    certificates signed by an ntor key (cert types 0x0A, 0x0B).  ProtocolError
    for u = -1, which has no Edwards image.
    """
    if len(public) != 32 or sign_bit not in (0, 1):
        raise ProtocolError("X25519 key must be 32 bytes and the sign bit 0 or 1")
    u = int.from_bytes(public, "little") & ((1 << 255) - 1)  # RFC 7748: ignore bit 255
    if (u + 1) % _P25519 == 0:
        raise ProtocolError("X25519 key u = -1 has no Ed25519 equivalent")
    y = (u - 1) * pow(u + 1, _P25519 - 2, _P25519) % _P25519
    return (y | sign_bit << 255).to_bytes(32, "little")
