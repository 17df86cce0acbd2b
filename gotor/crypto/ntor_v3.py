"""The ntor-v3 circuit handshake, CREATE2 type 3 (proposal 332, tor-spec "ntor-v3").

ntor-v3 is ntor with SHA3/SHAKE-256, a relay identified by its Ed25519 identity, a
*verification string* both sides must agree on (``b"circuit extend"`` when extending
circuits), and encrypted, authenticated extra data in both directions: the client
message CM (no forward secrecy: it is keyed only with the relay's onion key) and the
server message SM.

Wire formats (proposal 332 "Client operation, phase 1" and "Server operation")::

    client handshake = ID(32) | B(32) | X(32) | ENC(ENC_K1, CM) | MAC(32)
    server handshake = Y(32) | AUTH(32) | ENC(ENC_KEY, SM)

Instantiation (proposal 332 §A.1), with ``ENCAP(s) = u64_be(len(s)) | s``::

    H(s, t)        = SHA3-256(ENCAP(t) | s)
    MAC(k, msg, t) = SHA3-256(ENCAP(t) | ENCAP(k) | msg)
    KDF(s, t)      = SHAKE-256(ENCAP(t) | s)      (a keystream)
    ENC(k, m)      = AES-256-CTR(k, m), zero IV

The final keystream ``KDF(ntor_key_seed, t_final)`` starts with the 32-byte ENC_KEY for
SM; what follows is the circuit key material, laid out as for ntor
(``Df | Db | Kf | Kb | KH``, proposal 332 §A.2, consumed by
:mod:`gotor.crypto.relaycrypto`).

The handshake steps are exposed as small functions (``phase1_keys``, ``message_mac``,
``key_seed_and_verify``, ``server_auth``, ``final_keystream``) so that every
intermediate of the proposal's test vector can be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gotor.crypto.kdf import ShakeStream
from gotor.crypto.ntor import find_onion_key
from gotor.crypto.primitives import aes_ctr, constant_time_eq, sha3_256, x25519, x25519_public
from gotor.errors import LocalError, ProtocolError

PROTOID = b"ntor3-curve25519-sha3_256-1"
T_MSGKDF = PROTOID + b":kdf_phase1"
T_MSGMAC = PROTOID + b":msg_mac"
T_KEY_SEED = PROTOID + b":key_seed"
T_VERIFY = PROTOID + b":verify"
T_FINAL = PROTOID + b":kdf_final"
T_AUTH = PROTOID + b":auth_final"

# The verification string for ordinary circuit extension (tor-spec, ntor-v3 section;
# C tor's NTOR3_CIRC_VERIFICATION).
CIRCUIT_EXTEND_VERIFICATION = b"circuit extend"

ID_LEN = 32
KEY_LEN = 32
MAC_LEN = 32
ENC_KEY_LEN = 32
CLIENT_FIXED_LEN = ID_LEN + 2 * KEY_LEN + MAC_LEN  # client handshake without CM
SERVER_FIXED_LEN = KEY_LEN + MAC_LEN  # server handshake without SM


def encap(s: bytes) -> bytes:
    """ENCAP(s) = 8-byte big-endian length | s."""
    return len(s).to_bytes(8, "big") + s


def _h(s: bytes, tweak: bytes) -> bytes:
    return sha3_256(encap(tweak) + s)


def phase1_keys(
    bx: bytes, relay_id: bytes, relay_b: bytes, x_pub: bytes, verification: bytes
) -> tuple[bytes, bytes]:
    """(ENC_K1, MAC_K1) from ``Bx = EXP(B, x)`` (= ``Xb`` on the relay)."""
    stream = ShakeStream(encap(T_MSGKDF) + bx + relay_id + x_pub + relay_b + PROTOID
                         + encap(verification))
    return stream.read(ENC_KEY_LEN), stream.read(MAC_LEN)


def message_mac(
    mac_k1: bytes, relay_id: bytes, relay_b: bytes, x_pub: bytes, encrypted_cm: bytes
) -> bytes:
    """MAC_msgmac(MAC_K1, ID | B | X | encrypted CM)."""
    return sha3_256(encap(T_MSGMAC) + encap(mac_k1) + relay_id + relay_b + x_pub + encrypted_cm)


def key_seed_and_verify(
    xy: bytes, xb: bytes, relay_id: bytes, relay_b: bytes, x_pub: bytes, y_pub: bytes,
    verification: bytes,
) -> tuple[bytes, bytes]:
    """(ntor_key_seed, verify) from the two DH results ``EXP(X,y)`` and ``EXP(X,b)``."""
    secret_input = (xy + xb + relay_id + relay_b + x_pub + y_pub + PROTOID
                    + encap(verification))
    return _h(secret_input, T_KEY_SEED), _h(secret_input, T_VERIFY)


def server_auth(
    verify: bytes, relay_id: bytes, relay_b: bytes, x_pub: bytes, y_pub: bytes,
    msg_mac: bytes, encrypted_sm: bytes,
) -> bytes:
    """AUTH = H_auth(verify | ID | B | Y | X | MAC | ENCAP(encrypted SM) | PROTOID | "Server")."""
    auth_input = (verify + relay_id + relay_b + y_pub + x_pub + msg_mac + encap(encrypted_sm)
                  + PROTOID + b"Server")
    return _h(auth_input, T_AUTH)


def final_keystream(key_seed: bytes) -> ShakeStream:
    """RAW_KEYSTREAM = KDF_final(ntor_key_seed): ENC_KEY (32 bytes), then circuit keys."""
    return ShakeStream(encap(T_FINAL) + key_seed)


@dataclass(frozen=True, repr=False)
class NtorV3ClientState:
    """What the client remembers between CREATE2 and CREATED2 (proposal 332)."""

    relay_id: bytes
    relay_b: bytes
    x: bytes
    x_pub: bytes
    bx: bytes
    msg_mac: bytes
    verification: bytes


def client_handshake(
    relay_id: bytes,
    relay_ntor_b: bytes,
    x_secret: bytes,
    client_message: bytes = b"",
    verification: bytes = CIRCUIT_EXTEND_VERIFICATION,
) -> tuple[NtorV3ClientState, bytes]:
    """Start an ntor-v3 handshake; returns (state, client handshake bytes)."""
    if len(relay_id) != ID_LEN or len(relay_ntor_b) != KEY_LEN or len(x_secret) != KEY_LEN:
        raise LocalError("ntor-v3 needs a 32-byte Ed25519 id, onion key and secret")
    relay_id, relay_b, x = bytes(relay_id), bytes(relay_ntor_b), bytes(x_secret)
    x_pub = x25519_public(x)
    bx = x25519(x, relay_b)
    enc_k1, mac_k1 = phase1_keys(bx, relay_id, relay_b, x_pub, verification)
    encrypted = aes_ctr(enc_k1, client_message)
    mac = message_mac(mac_k1, relay_id, relay_b, x_pub, encrypted)
    state = NtorV3ClientState(relay_id, relay_b, x, x_pub, bx, mac, bytes(verification))
    return state, relay_id + relay_b + x_pub + encrypted + mac


def client_complete(
    state: NtorV3ClientState, reply: bytes, key_len: int
) -> tuple[bytes, bytes]:
    """Check the server handshake; returns (server message SM, ``key_len`` bytes of keys).

    Raises ProtocolError("ntor-v3 auth mismatch") on a wrong AUTH, and ProtocolError
    when a Diffie-Hellman result is all-zero.
    """
    if len(reply) < SERVER_FIXED_LEN:
        raise ProtocolError(f"ntor-v3 reply must be at least {SERVER_FIXED_LEN} bytes")
    y_pub, auth, encrypted = bytes(reply[:KEY_LEN]), reply[KEY_LEN:SERVER_FIXED_LEN], bytes(
        reply[SERVER_FIXED_LEN:]
    )
    key_seed, verify = key_seed_and_verify(
        x25519(state.x, y_pub), state.bx, state.relay_id, state.relay_b, state.x_pub, y_pub,
        state.verification,
    )
    expected = server_auth(verify, state.relay_id, state.relay_b, state.x_pub, y_pub,
                           state.msg_mac, encrypted)
    if not constant_time_eq(expected, auth):
        raise ProtocolError("ntor-v3 auth mismatch")
    stream = final_keystream(key_seed)
    server_message = aes_ctr(stream.read(ENC_KEY_LEN), encrypted)
    return server_message, stream.read(key_len)


@dataclass(frozen=True, repr=False)
class NtorV3ServerState:
    """What the relay holds after accepting a client handshake, until it replies."""

    relay_id: bytes
    relay_b: bytes
    x_pub: bytes
    xb: bytes
    msg_mac: bytes
    verification: bytes


def server_receive(
    relay_id: bytes,
    b_secret: bytes | Sequence[bytes],
    onionskin: bytes,
    verification: bytes = CIRCUIT_EXTEND_VERIFICATION,
) -> tuple[NtorV3ServerState, bytes]:
    """Relay side, step 1: check a client handshake; returns (state, client message CM).

    ``b_secret`` is one ntor onion secret key or several (current and previous).
    An onionskin naming another relay, an unknown onion key, or carrying a bad MAC is a
    ProtocolError; the caller then composes SM from CM and calls :func:`server_reply`.
    """
    if len(onionskin) < CLIENT_FIXED_LEN:
        raise ProtocolError(f"ntor-v3 onionskin must be at least {CLIENT_FIXED_LEN} bytes")
    onionskin = bytes(onionskin)
    relay_id_in = onionskin[:ID_LEN]
    relay_b = onionskin[ID_LEN : ID_LEN + KEY_LEN]
    x_pub = onionskin[ID_LEN + KEY_LEN : ID_LEN + 2 * KEY_LEN]
    encrypted, mac = onionskin[ID_LEN + 2 * KEY_LEN : -MAC_LEN], onionskin[-MAC_LEN:]
    if relay_id_in != relay_id:
        raise ProtocolError("ntor-v3 onionskin names another relay identity")
    b = find_onion_key(b_secret, relay_b)
    xb = x25519(b, x_pub)
    enc_k1, mac_k1 = phase1_keys(xb, relay_id_in, relay_b, x_pub, verification)
    if not constant_time_eq(message_mac(mac_k1, relay_id_in, relay_b, x_pub, encrypted), mac):
        raise ProtocolError("ntor-v3 client message MAC mismatch")
    state = NtorV3ServerState(relay_id_in, relay_b, x_pub, xb, mac, bytes(verification))
    return state, aes_ctr(enc_k1, encrypted)


def server_reply(
    state: NtorV3ServerState, y_secret: bytes, server_message: bytes, key_len: int
) -> tuple[bytes, bytes]:
    """Relay side, step 2: returns (server handshake ``Y | AUTH | ENC(SM)``, key material)."""
    if len(y_secret) != KEY_LEN:
        raise LocalError("ntor-v3 needs a 32-byte ephemeral secret")
    y_pub = x25519_public(y_secret)
    key_seed, verify = key_seed_and_verify(
        x25519(y_secret, state.x_pub), state.xb, state.relay_id, state.relay_b, state.x_pub,
        y_pub, state.verification,
    )
    stream = final_keystream(key_seed)
    encrypted = aes_ctr(stream.read(ENC_KEY_LEN), server_message)
    auth = server_auth(verify, state.relay_id, state.relay_b, state.x_pub, y_pub,
                       state.msg_mac, encrypted)
    return y_pub + auth + encrypted, stream.read(key_len)
