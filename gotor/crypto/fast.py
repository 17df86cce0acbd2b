"""The CREATE_FAST / CREATED_FAST handshake (tor-spec §5.1.5, keys from §5.2.1).

The client sends 20 random bytes X; the relay answers with 20 random bytes Y and
KH, the first 20 bytes of KDF-TOR(X | Y), which proves it saw X.  Both sides then take
their key material from the bytes of KDF-TOR(X | Y) that follow KH, in the layout
``Df | Db | Kf | Kb`` that :mod:`gotor.crypto.relaycrypto` consumes.

CREATE_FAST gives no authentication beyond the TLS link, so it is only ever used for
the first hop (and C tor disables it by default since 0.3.1.1-alpha).
"""

from __future__ import annotations

from dataclasses import dataclass

from gotor.crypto.kdf import kdf_tor
from gotor.crypto.primitives import constant_time_eq
from gotor.errors import LocalError, ProtocolError

HASH_LEN = 20
CREATE_FAST_LEN = HASH_LEN  # X
CREATED_FAST_LEN = 2 * HASH_LEN  # Y | KH


@dataclass(frozen=True, repr=False)
class FastClientState:
    """What the client keeps between CREATE_FAST and CREATED_FAST (the secret X)."""

    x: bytes


def client_handshake(x: bytes) -> tuple[FastClientState, bytes]:
    """Start a CREATE_FAST handshake from 20 random bytes; returns (state, X to send)."""
    if len(x) != HASH_LEN:
        raise LocalError("CREATE_FAST needs exactly 20 random bytes")
    return FastClientState(bytes(x)), bytes(x)


def client_complete(state: FastClientState, reply: bytes, key_len: int) -> bytes:
    """Check a CREATED_FAST body ``Y | KH`` and return ``key_len`` bytes of key material."""
    if len(reply) != CREATED_FAST_LEN:
        raise ProtocolError(f"CREATED_FAST body must be {CREATED_FAST_LEN} bytes, not {len(reply)}")
    y, kh = reply[:HASH_LEN], reply[HASH_LEN:]
    material = kdf_tor(state.x + y, HASH_LEN + key_len)
    if not constant_time_eq(material[:HASH_LEN], kh):
        raise ProtocolError("CREATE_FAST KH mismatch")
    return material[HASH_LEN:]


def server_handshake(onionskin: bytes, y: bytes, key_len: int) -> tuple[bytes, bytes]:
    """The relay side: from X and 20 random bytes Y, return (``Y | KH`` to send, key material)."""
    if len(onionskin) != CREATE_FAST_LEN:
        raise ProtocolError(
            f"CREATE_FAST body must be {CREATE_FAST_LEN} bytes, not {len(onionskin)}"
        )
    if len(y) != HASH_LEN:
        raise LocalError("CREATED_FAST needs exactly 20 random bytes")
    material = kdf_tor(bytes(onionskin) + y, HASH_LEN + key_len)
    return bytes(y) + material[:HASH_LEN], material[HASH_LEN:]
