"""The ntor circuit handshake, CREATE2 type 2 (tor-spec §5.1.4, proposal 216).

Client: ``client_handshake`` makes the 84-byte onionskin ``ID | B | X`` from the relay's
RSA identity digest, its ntor onion key B and a fresh X25519 secret x;
``client_complete`` checks the relay's 64-byte reply ``Y | AUTH`` and returns the key
material.  Server (for simnet relays): ``server_handshake``.

Both sides compute::

    secret_input = EXP(Y,x) | EXP(B,x) | ID | B | X | Y | PROTOID     (client)
                 = EXP(X,y) | EXP(X,b) | ID | B | X | Y | PROTOID     (server)
    verify       = H(secret_input, t_verify)
    auth_input   = verify | ID | B | Y | X | PROTOID | "Server"
    AUTH         = H(auth_input, t_mac)          with H(x, t) = HMAC-SHA256(key=t, msg=x)
    keys         = KDF-RFC5869(secret_input)     (tor-spec §5.2.2, :func:`kdf.ntor_kdf`)

An all-zero X25519 result (the point at infinity, from a small-order peer key) aborts
the handshake: tor-spec §5.1.4 makes that check stand in for a group-membership test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gotor.crypto.kdf import NTOR_PROTOID, ntor_kdf
from gotor.crypto.primitives import constant_time_eq, hmac_sha256, x25519, x25519_public
from gotor.errors import LocalError, ProtocolError

ID_LEN = 20
KEY_LEN = 32
ONIONSKIN_LEN = ID_LEN + 2 * KEY_LEN  # NODEID | KEYID | CLIENT_KP
REPLY_LEN = 2 * KEY_LEN  # SERVER_KP | AUTH

T_MAC = NTOR_PROTOID + b":mac"
T_VERIFY = NTOR_PROTOID + b":verify"


@dataclass(frozen=True, repr=False)
class NtorClientState:
    """What the client remembers between CREATE2 and CREATED2."""

    relay_id: bytes
    relay_b: bytes
    x: bytes
    x_pub: bytes


def client_handshake(
    relay_id: bytes, relay_ntor_b: bytes, x_secret: bytes
) -> tuple[NtorClientState, bytes]:
    """Start an ntor handshake; returns (state, 84-byte onionskin ``ID | B | X``)."""
    if len(relay_id) != ID_LEN or len(relay_ntor_b) != KEY_LEN or len(x_secret) != KEY_LEN:
        raise LocalError("ntor needs a 20-byte relay id, a 32-byte onion key and a 32-byte secret")
    x_pub = x25519_public(x_secret)
    state = NtorClientState(bytes(relay_id), bytes(relay_ntor_b), bytes(x_secret), x_pub)
    return state, state.relay_id + state.relay_b + x_pub


def client_complete(state: NtorClientState, reply: bytes, key_len: int) -> bytes:
    """Check the relay's ``Y | AUTH`` and return ``key_len`` bytes of key material.

    Raises ProtocolError("ntor auth mismatch") when AUTH is wrong, and ProtocolError when
    a Diffie-Hellman result is all-zero.
    """
    if len(reply) != REPLY_LEN:
        raise ProtocolError(f"ntor reply must be {REPLY_LEN} bytes, not {len(reply)}")
    y_pub, auth = bytes(reply[:KEY_LEN]), reply[KEY_LEN:]
    secret_input = (
        x25519(state.x, y_pub) + x25519(state.x, state.relay_b)
        + state.relay_id + state.relay_b + state.x_pub + y_pub + NTOR_PROTOID
    )
    expected = _auth(secret_input, state.relay_id, state.relay_b, state.x_pub, y_pub)
    if not constant_time_eq(expected, auth):
        raise ProtocolError("ntor auth mismatch")
    return ntor_kdf(secret_input, key_len)


def server_handshake(
    relay_id: bytes,
    b_secret: bytes | Sequence[bytes],
    onionskin: bytes,
    y_secret: bytes,
    key_len: int,
) -> tuple[bytes, bytes]:
    """The relay side: returns (64-byte reply ``Y | AUTH``, key material).

    ``b_secret`` is the relay's ntor onion secret key, or several (current and
    previous keys, tor-spec §1.1 keeps old onion keys valid for a while); the one
    whose public key the onionskin names is used.  An onionskin naming another relay
    or an onion key we do not hold is a ProtocolError.
    """
    if len(onionskin) != ONIONSKIN_LEN:
        raise ProtocolError(f"ntor onionskin must be {ONIONSKIN_LEN} bytes, not {len(onionskin)}")
    node_id, key_id = bytes(onionskin[:ID_LEN]), bytes(onionskin[ID_LEN : ID_LEN + KEY_LEN])
    x_pub = bytes(onionskin[ID_LEN + KEY_LEN :])
    if node_id != relay_id:
        raise ProtocolError("ntor onionskin names another relay identity")
    b = find_onion_key(b_secret, key_id)
    y_pub = x25519_public(y_secret)
    secret_input = (
        x25519(y_secret, x_pub) + x25519(b, x_pub)
        + node_id + key_id + x_pub + y_pub + NTOR_PROTOID
    )
    auth = _auth(secret_input, node_id, key_id, x_pub, y_pub)
    return y_pub + auth, ntor_kdf(secret_input, key_len)


def find_onion_key(b_secret: bytes | Sequence[bytes], key_id: bytes) -> bytes:
    """The secret among ``b_secret`` (one key or several) whose public key is ``key_id``."""
    candidates = [b_secret] if isinstance(b_secret, bytes | bytearray) else list(b_secret)
    for b in candidates:
        if x25519_public(bytes(b)) == key_id:
            return bytes(b)
    raise ProtocolError("ntor onionskin names an onion key this relay does not have")


def _auth(
    secret_input: bytes, relay_id: bytes, relay_b: bytes, x_pub: bytes, y_pub: bytes
) -> bytes:
    verify = hmac_sha256(T_VERIFY, secret_input)
    auth_input = verify + relay_id + relay_b + y_pub + x_pub + NTOR_PROTOID + b"Server"
    return hmac_sha256(T_MAC, auth_input)
