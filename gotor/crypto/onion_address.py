"""Version-3 onion addresses (rend-spec-v3 §6 [ONIONADDRESS], §2.2.7).

    onion_address = base32(PUBKEY | CHECKSUM | VERSION) + ".onion"
    CHECKSUM      = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2]
    VERSION       = 3

Decoding follows C tor: the whole name is matched case-insensitively (tor
lower-cases every SOCKS hostname, connection_edge.c), the version and checksum
must match, and the key must be a valid Ed25519 point with no torsion
component (§2.2.7; C tor's hs_address_is_valid).  :func:`onion_hostname_key`
adds C tor's hostname rules (parse_extended_hostname): ``www.<addr>.onion``
names the same service as ``<addr>.onion``.
"""

from __future__ import annotations

import base64
import re
import string

from gotor.crypto.hs_keys import PUBLIC_KEY_LEN, check_public_key
from gotor.crypto.primitives import sha3_256
from gotor.errors import LocalError, ProtocolError

ONION_SUFFIX = ".onion"
ONION_VERSION = 3
CHECKSUM_PREFIX = b".onion checksum"
#: 35 bytes (key, 2-byte checksum, version) are exactly 56 base32 characters.
ADDRESS_LEN = 56
_CHECKSUM_LEN = 2
_BASE32 = re.compile(r"[a-z2-7]*", re.ASCII)
# C tor lower-cases ASCII letters only (tor_strlower); str.lower() would also map
# some non-ASCII letters onto ASCII ones (U+212A KELVIN SIGN -> 'k').
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _checksum(pubkey: bytes, version: int) -> bytes:
    return sha3_256(CHECKSUM_PREFIX + pubkey + bytes((version,)))[:_CHECKSUM_LEN]


def encode_onion_address(pubkey: bytes) -> str:
    """The ``<56 base32 chars>.onion`` address of an Ed25519 identity public key."""
    if len(pubkey) != PUBLIC_KEY_LEN:
        raise LocalError(f"onion-service key must be {PUBLIC_KEY_LEN} bytes, got {len(pubkey)}")
    raw = pubkey + _checksum(pubkey, ONION_VERSION) + bytes((ONION_VERSION,))
    return base64.b32encode(raw).decode("ascii").lower() + ONION_SUFFIX


def decode_onion_address(address: str) -> bytes:
    """The identity public key named by ``address`` (with or without ``.onion``).

    Raises ProtocolError saying why for a wrong length, non-base32 text, an
    unsupported version, a bad checksum or an invalid key.
    """
    label = address.translate(_ASCII_LOWER)
    label = label.removesuffix(ONION_SUFFIX)
    if len(label) != ADDRESS_LEN:
        raise ProtocolError(
            f"invalid onion address length: {len(label)} characters, expected {ADDRESS_LEN}"
        )
    if not _BASE32.fullmatch(label):
        raise ProtocolError("invalid onion address: not base32 (allowed: a-z, 2-7)")
    raw = base64.b32decode(label.upper())
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34]
    if version != ONION_VERSION:
        raise ProtocolError(f"unsupported onion address version {version} (expected 3)")
    if checksum != _checksum(pubkey, version):
        raise ProtocolError("invalid onion address checksum")
    check_public_key(pubkey, "onion address key")
    return pubkey


def onion_hostname_key(hostname: str) -> bytes | None:
    """The service key of a ``.onion`` hostname, None if it is not one.

    As C tor's parse_extended_hostname: case-insensitive; any subdomain labels
    in front of the address are dropped; a name ending in ``.onion`` that does
    not hold a valid address raises ProtocolError (never falls back to DNS).
    """
    lowered = hostname.translate(_ASCII_LOWER)
    if not lowered.endswith(ONION_SUFFIX):
        return None
    rest = lowered[: -len(ONION_SUFFIX)]
    if rest.startswith(".") and rest.count(".") == 1:
        # ".x.onion": an empty subdomain label, which C tor rejects as DNS does.
        raise ProtocolError("invalid onion hostname: empty label before the address")
    return decode_onion_address(rest.rsplit(".", 1)[-1])
