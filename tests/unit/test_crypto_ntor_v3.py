"""ntor-v3 (proposal 332) against the proposal's test vector, every intermediate included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto import ntor_v3 as n3
from gotor.crypto.primitives import aes_ctr, x25519, x25519_public
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
V = json.loads((VECTORS / "ntor_v3.json").read_text())["vectors"][0]
MID = V["intermediate"]
H = bytes.fromhex
RELAY_ID, B_SECRET, B_PUB = H(V["ID"]), H(V["b"]), H(V["B"])
X_SECRET, X_PUB, Y_SECRET, Y_PUB = H(V["x"]), H(V["X"]), H(V["y"]), H(V["Y"])
CM, SM, VER = H(V["CM"]), H(V["SM"]), H(V["VER"])
CLIENT_HS, SERVER_HS = H(V["expected_client_handshake"]), H(V["expected_server_handshake"])
KEYS = H(V["expected_keystream_256"])
SECRETS = st.binary(min_size=32, max_size=32)


def test_public_keys() -> None:
    assert x25519_public(B_SECRET) == B_PUB
    assert x25519_public(X_SECRET) == X_PUB
    assert x25519_public(Y_SECRET) == Y_PUB


def test_intermediates() -> None:
    bx = x25519(X_SECRET, B_PUB)
    assert bx == x25519(B_SECRET, X_PUB)
    enc_k1, mac_k1 = n3.phase1_keys(bx, RELAY_ID, B_PUB, X_PUB, VER)
    assert enc_k1 == H(MID["ENC_K1"])
    assert mac_k1 == H(MID["MAC_K1"])
    encrypted_cm = aes_ctr(enc_k1, CM)
    assert n3.message_mac(mac_k1, RELAY_ID, B_PUB, X_PUB, encrypted_cm) == H(MID["msg_mac"])
    key_seed, verify = n3.key_seed_and_verify(
        x25519(Y_SECRET, X_PUB), bx, RELAY_ID, B_PUB, X_PUB, Y_PUB, VER
    )
    assert key_seed == H(MID["key_seed"])
    assert verify == H(MID["verify"])
    stream = n3.final_keystream(key_seed)
    enc_key = stream.read(32)
    assert enc_key == H(MID["ENC_KEY_server"])
    assert stream.read(256) == KEYS
    encrypted_sm = aes_ctr(enc_key, SM)
    auth = n3.server_auth(verify, RELAY_ID, B_PUB, X_PUB, Y_PUB, H(MID["msg_mac"]), encrypted_sm)
    assert auth == H(MID["AUTH"])
    assert Y_PUB + auth + encrypted_sm == SERVER_HS


def test_client_vector() -> None:
    state, onionskin = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    assert onionskin == CLIENT_HS
    server_message, keys = n3.client_complete(state, SERVER_HS, 256)
    assert server_message == SM
    assert keys == KEYS


def test_server_vector() -> None:
    state, client_message = n3.server_receive(RELAY_ID, B_SECRET, CLIENT_HS, VER)
    assert client_message == CM
    reply, keys = n3.server_reply(state, Y_SECRET, SM, 256)
    assert reply == SERVER_HS
    assert keys == KEYS


def test_circuit_extend_is_the_default_verification() -> None:
    assert n3.CIRCUIT_EXTEND_VERIFICATION == b"circuit extend"
    _, onionskin = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM)
    assert onionskin != CLIENT_HS  # VER enters the phase-1 keys
    _, cm = n3.server_receive(RELAY_ID, B_SECRET, onionskin)
    assert cm == CM


@pytest.mark.parametrize("pos", [32, 50, 63])
def test_wrong_auth_is_rejected(pos: int) -> None:
    state, _ = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    bad = bytearray(SERVER_HS)
    bad[pos] ^= 1
    with pytest.raises(ProtocolError, match="ntor-v3 auth mismatch"):
        n3.client_complete(state, bytes(bad), 72)


def test_tampered_server_message_is_rejected() -> None:
    state, _ = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    bad = bytearray(SERVER_HS)
    bad[-1] ^= 1
    with pytest.raises(ProtocolError, match="auth mismatch"):
        n3.client_complete(state, bytes(bad), 72)
    with pytest.raises(ProtocolError, match="auth mismatch"):
        n3.client_complete(state, SERVER_HS + b"\x00", 72)


@pytest.mark.parametrize("pos", [0, 40, 70, 100, len(CLIENT_HS) - 1])
def test_server_rejects_tampered_client_handshake(pos: int) -> None:
    bad = bytearray(CLIENT_HS)
    bad[pos] ^= 1
    with pytest.raises(ProtocolError):
        n3.server_receive(RELAY_ID, B_SECRET, bytes(bad), VER)


def test_server_rejects_wrong_verification_or_relay_or_key() -> None:
    with pytest.raises(ProtocolError, match="MAC mismatch"):
        n3.server_receive(RELAY_ID, B_SECRET, CLIENT_HS, b"circuit extend")
    with pytest.raises(ProtocolError, match="another relay"):
        n3.server_receive(bytes(32), B_SECRET, CLIENT_HS, VER)
    with pytest.raises(ProtocolError, match="onion key"):
        n3.server_receive(RELAY_ID, Y_SECRET, CLIENT_HS, VER)
    _, cm = n3.server_receive(RELAY_ID, [Y_SECRET, B_SECRET], CLIENT_HS, VER)
    assert cm == CM


def test_all_zero_dh_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="all-zero"):
        n3.client_handshake(RELAY_ID, bytes(32), X_SECRET, CM, VER)
    state, _ = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    with pytest.raises(ProtocolError, match="all-zero"):
        n3.client_complete(state, bytes(32) + SERVER_HS[32:], 72)
    zero_x = RELAY_ID + B_PUB + bytes(32) + CLIENT_HS[96:]
    with pytest.raises(ProtocolError, match="all-zero"):
        n3.server_receive(RELAY_ID, B_SECRET, zero_x, VER)


def test_truncation_at_every_offset() -> None:
    state, _ = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    for cut in range(len(SERVER_HS)):
        with pytest.raises(ProtocolError):
            n3.client_complete(state, SERVER_HS[:cut], 72)
    for cut in range(len(CLIENT_HS)):
        with pytest.raises(ProtocolError):
            n3.server_receive(RELAY_ID, B_SECRET, CLIENT_HS[:cut], VER)


def test_local_misuse() -> None:
    with pytest.raises(LocalError):
        n3.client_handshake(RELAY_ID[:20], B_PUB, X_SECRET)
    state, _ = n3.server_receive(RELAY_ID, B_SECRET, CLIENT_HS, VER)
    with pytest.raises(LocalError):
        n3.server_reply(state, Y_SECRET[:31], SM, 72)


@settings(max_examples=30)
@given(SECRETS, SECRETS, SECRETS, SECRETS, st.binary(max_size=300), st.binary(max_size=300),
       st.binary(max_size=30))
def test_round_trip(relay_id: bytes, b: bytes, x: bytes, y: bytes, cm: bytes, sm: bytes,
                    ver: bytes) -> None:
    state, onionskin = n3.client_handshake(relay_id, x25519_public(b), x, cm, ver)
    assert len(onionskin) == n3.CLIENT_FIXED_LEN + len(cm)
    server_state, got_cm = n3.server_receive(relay_id, b, onionskin, ver)
    assert got_cm == cm
    reply, server_keys = n3.server_reply(server_state, y, sm, 72)
    got_sm, client_keys = n3.client_complete(state, reply, 72)
    assert got_sm == sm
    assert client_keys == server_keys


@settings(max_examples=60)
@given(st.binary(max_size=200))
def test_arbitrary_input_raises_protocol_error(data: bytes) -> None:
    state, _ = n3.client_handshake(RELAY_ID, B_PUB, X_SECRET, CM, VER)
    with pytest.raises(ProtocolError):
        n3.client_complete(state, data, 72)
    with pytest.raises(ProtocolError):
        n3.server_receive(RELAY_ID, B_SECRET, data, VER)
