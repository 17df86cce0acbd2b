"""Onion-service key blinding, credentials and Ed25519 signing with expanded keys.

rend-spec-v3 Appendix A.2 [KEYBLIND] and §2.1 [SUBCRED].  Every time period an
onion service signs its descriptor with a *blinded* key derived from its
identity key ``(a, A)`` and the period number; clients derive the blinded
public key ``A'`` from the onion address alone and use it to find and decrypt
the descriptor.

Blinded secret keys have no Ed25519 seed: they exist only in the *expanded*
form ``scalar (32 bytes, little-endian) | prefix RH (32 bytes)`` that C tor
uses (the two halves of SHA-512(seed), the first one clamped).  So this module
also signs with an expanded key; the signatures are plain RFC 8032 signatures
that :func:`gotor.crypto.primitives.ed25519_verify` accepts under ``A'``.

Point arithmetic is libsodium's (PyNaCl bindings); scalar arithmetic mod the
group order is done with Python integers, which is exact and fast enough for
the handful of operations per descriptor.
"""

from __future__ import annotations

import hashlib
import struct

from nacl import bindings as _sodium

from gotor.crypto.primitives import sha3_256
from gotor.errors import LocalError, ProtocolError

#: Order of the Ed25519 prime-order subgroup (the ``l`` of rend-spec A.2).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493

#: rend-spec A.2: BLIND_STRING = "Derive temporary signing key" | INT_1(0).
BLIND_STRING = b"Derive temporary signing key\x00"
#: rend-spec A.2: the prefix of the blinded key is SHA-512(RH_BLIND_STRING | RH)[:32].
RH_BLIND_STRING = b"Derive temporary signing key hash input"
#: rend-spec A.2: the base point B, written out as ASCII, is hashed into h.
BASEPOINT_STRING = (
    b"(15112221349535400772501151409588531511454012693041857206046113283949847762202, "
    b"46316835694926478169428394003475163141307993866256225615783033603165251855960)"
)
#: rend-spec A.2: N = "key-blind" | INT_8(period-number) | INT_8(period_length).
KEY_BLIND_NONCE_PREFIX = b"key-blind"

DEFAULT_PERIOD_LENGTH_MINUTES = 1440
PUBLIC_KEY_LEN = 32
EXPANDED_KEY_LEN = 64
SIGNATURE_LEN = 64

_U64 = struct.Struct(">Q")


def int_8(value: int) -> bytes:
    """rend-spec §0.2 INT_8: an 8-byte big-endian unsigned integer."""
    if not 0 <= value < 1 << 64:
        raise LocalError(f"INT_8 out of range: {value}")
    return _U64.pack(value)


def require_len(value: bytes, length: int, what: str) -> None:
    # Key lengths are fixed by the decoders above us; a wrong one is our bug.
    if len(value) != length:
        raise LocalError(f"{what} must be {length} bytes, got {len(value)}")


def clamp_scalar(value: bytes) -> bytes:
    """Clamp 32 bytes as an Ed25519 secret scalar (RFC 8032 §5.1.5; rend-spec A.2 for h)."""
    require_len(value, 32, "scalar")
    out = bytearray(value)
    out[0] &= 248
    out[31] &= 63
    out[31] |= 64
    return bytes(out)


def _scalar(value: bytes) -> int:
    return int.from_bytes(value, "little")


def _scalar_bytes(value: int) -> bytes:
    return (value % GROUP_ORDER).to_bytes(32, "little")


def _base_mult(scalar: int) -> bytes:
    reduced = scalar % GROUP_ORDER
    if reduced == 0:
        raise LocalError("Ed25519 secret scalar is zero modulo the group order")
    return _sodium.crypto_scalarmult_ed25519_base_noclamp(_scalar_bytes(reduced))


def check_public_key(public: bytes, what: str = "Ed25519 public key") -> None:
    """Raise ProtocolError unless ``public`` is a canonical point of the prime-order subgroup.

    rend-spec-v3 §2.2.7: an onion-service key must have no torsion component,
    or several addresses would name one service.  (C tor's blinding only checks
    that the point decodes; keys with torsion never get that far in C tor
    either, because address validation rejects them first.)
    """
    if len(public) != PUBLIC_KEY_LEN:
        raise ProtocolError(f"{what} must be {PUBLIC_KEY_LEN} bytes, got {len(public)}")
    if not _sodium.crypto_core_ed25519_is_valid_point(public):
        raise ProtocolError(
            f"{what} is not a valid Ed25519 point (off the curve, non-canonical, "
            "small order or with a torsion component)"
        )


# --- expanded secret keys and signing --------------------------------------------


def expand_secret_seed(seed: bytes) -> bytes:
    """The 64-byte expanded secret key of a 32-byte Ed25519 seed (RFC 8032 §5.1.5)."""
    require_len(seed, 32, "Ed25519 seed")
    digest = hashlib.sha512(seed).digest()
    return clamp_scalar(digest[:32]) + digest[32:]


def expanded_public_key(expanded: bytes) -> bytes:
    """The public key ``a*B`` of an expanded secret key."""
    require_len(expanded, EXPANDED_KEY_LEN, "expanded secret key")
    return _base_mult(_scalar(expanded[:32]))


def sign_expanded(expanded: bytes, message: bytes, public: bytes | None = None) -> bytes:
    """An RFC 8032 Ed25519 signature made from an expanded secret key (no seed needed).

    r = SHA-512(prefix | M) mod l; R = rB; S = r + SHA-512(R | A | M)·a mod l.
    ``public`` may be passed to skip recomputing ``A``; it must match the key.
    """
    require_len(expanded, EXPANDED_KEY_LEN, "expanded secret key")
    a = _scalar(expanded[:32])
    pub = _base_mult(a) if public is None else public
    require_len(pub, PUBLIC_KEY_LEN, "public key")
    r = _scalar(hashlib.sha512(expanded[32:] + message).digest()) % GROUP_ORDER
    big_r = _base_mult(r)
    k = _scalar(hashlib.sha512(big_r + pub + message).digest())
    return big_r + _scalar_bytes(r + k * a)


# --- blinding (rend-spec A.2) ------------------------------------------------------


def blinding_nonce(period_num: int, period_length_minutes: int) -> bytes:
    """N = "key-blind" | INT_8(period-number) | INT_8(period_length)."""
    return KEY_BLIND_NONCE_PREFIX + int_8(period_num) + int_8(period_length_minutes)


def blinding_factor(
    identity_public: bytes,
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    secret: bytes = b"",
) -> bytes:
    """The *unclamped* blinding factor h = H(BLIND_STRING | A | s | B | N).

    ``secret`` is the optional secret ``s`` of A.2; Tor uses none.
    """
    require_len(identity_public, PUBLIC_KEY_LEN, "identity public key")
    return sha3_256(
        BLIND_STRING
        + identity_public
        + secret
        + BASEPOINT_STRING
        + blinding_nonce(period_num, period_length_minutes)
    )


def blind_public_key_with_param(public: bytes, param: bytes) -> bytes:
    """A' = clamp(param)·A; ProtocolError if ``A`` is not a valid prime-order point."""
    check_public_key(public)
    return _sodium.crypto_scalarmult_ed25519_noclamp(clamp_scalar(param), public)


def blind_expanded_secret_key_with_param(expanded: bytes, param: bytes) -> bytes:
    """a' = clamp(param)·a mod l, prefix' = SHA-512(RH_BLIND_STRING | RH)[:32]."""
    require_len(expanded, EXPANDED_KEY_LEN, "expanded secret key")
    scalar = _scalar(clamp_scalar(param)) * _scalar(expanded[:32])
    prefix = hashlib.sha512(RH_BLIND_STRING + expanded[32:]).digest()[:32]
    return _scalar_bytes(scalar) + prefix


def blind_public_key(
    identity_public: bytes,
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
) -> bytes:
    """The blinded public key of the service ``identity_public`` for one time period."""
    param = blinding_factor(identity_public, period_num, period_length_minutes)
    return blind_public_key_with_param(identity_public, param)


def blind_expanded_secret_key(
    identity_expanded: bytes,
    period_num: int,
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
) -> bytes:
    """The blinded expanded secret key of an identity key for one time period."""
    identity_public = expanded_public_key(identity_expanded)
    param = blinding_factor(identity_public, period_num, period_length_minutes)
    return blind_expanded_secret_key_with_param(identity_expanded, param)


# --- credentials (rend-spec §2.1) ----------------------------------------------------


def credential(identity_public: bytes) -> bytes:
    """N_hs_cred = H("credential" | public-identity-key)."""
    require_len(identity_public, PUBLIC_KEY_LEN, "identity public key")
    return sha3_256(b"credential" + identity_public)


def subcredential(identity_public: bytes, blinded_public: bytes) -> bytes:
    """N_hs_subcred = H("subcredential" | N_hs_cred | blinded-public-key)."""
    require_len(blinded_public, PUBLIC_KEY_LEN, "blinded public key")
    return sha3_256(b"subcredential" + credential(identity_public) + blinded_public)
