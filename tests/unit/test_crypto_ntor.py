"""The ntor handshake (tor-spec §5.1.4) against arti's test vector, plus bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto import ntor
from gotor.crypto.primitives import x25519_public
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
V = json.loads((VECTORS / "ntor.json").read_text())["vectors"][0]
H = bytes.fromhex
RELAY_ID = H(V["relay_rsa_identity_ID"])
B_SECRET, B_PUB = H(V["relay_ntor_secret_b"]), H(V["relay_ntor_public_B"])
X_SECRET, Y_SECRET = H(V["client_ephemeral_secret_x"]), H(V["server_ephemeral_secret_y"])
SECRETS = st.binary(min_size=32, max_size=32)


def test_public_keys_match_secrets() -> None:
    assert x25519_public(B_SECRET) == B_PUB
    assert x25519_public(X_SECRET) == H(V["client_ephemeral_public_X"])
    assert x25519_public(Y_SECRET) == H(V["server_ephemeral_public_Y"])


def test_vector_both_sides() -> None:
    state, onionskin = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    assert onionskin == H(V["expected_client_handshake"])
    reply, server_keys = ntor.server_handshake(RELAY_ID, B_SECRET, onionskin, Y_SECRET, 72)
    assert reply == H(V["expected_server_handshake"])
    assert server_keys == H(V["expected_key_material_72"])
    assert ntor.client_complete(state, reply, 72) == H(V["expected_key_material_72"])


def test_key_material_is_a_prefix_stream() -> None:
    state, _ = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    assert ntor.client_complete(state, H(V["expected_server_handshake"]), 92)[:72] == H(
        V["expected_key_material_72"]
    )


@pytest.mark.parametrize("pos", [32, 45, 63])
def test_wrong_auth_is_rejected(pos: int) -> None:
    state, _ = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    bad = bytearray(H(V["expected_server_handshake"]))
    bad[pos] ^= 1
    with pytest.raises(ProtocolError, match="ntor auth mismatch"):
        ntor.client_complete(state, bytes(bad), 72)


def test_changed_y_is_rejected() -> None:
    state, _ = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    bad = bytearray(H(V["expected_server_handshake"]))
    bad[3] ^= 1
    with pytest.raises(ProtocolError):
        ntor.client_complete(state, bytes(bad), 72)


def test_all_zero_dh_is_rejected_by_client() -> None:
    state, _ = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    zero_y = bytes(32) + H(V["expected_server_handshake"])[32:]
    with pytest.raises(ProtocolError, match="all-zero"):
        ntor.client_complete(state, zero_y, 72)
    # A relay advertising a small-order onion key is caught too.
    state, _ = ntor.client_handshake(RELAY_ID, bytes(32), X_SECRET)
    with pytest.raises(ProtocolError, match="all-zero"):
        ntor.client_complete(state, H(V["expected_server_handshake"]), 72)


def test_all_zero_dh_is_rejected_by_server() -> None:
    onionskin = RELAY_ID + B_PUB + bytes(32)
    with pytest.raises(ProtocolError, match="all-zero"):
        ntor.server_handshake(RELAY_ID, B_SECRET, onionskin, Y_SECRET, 72)


def test_server_rejects_other_relay_or_unknown_key() -> None:
    _, onionskin = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    with pytest.raises(ProtocolError, match="another relay"):
        ntor.server_handshake(bytes(20), B_SECRET, onionskin, Y_SECRET, 72)
    with pytest.raises(ProtocolError, match="onion key"):
        ntor.server_handshake(RELAY_ID, X_SECRET, onionskin, Y_SECRET, 72)


def test_server_finds_key_among_several() -> None:
    _, onionskin = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    reply, keys = ntor.server_handshake(RELAY_ID, [X_SECRET, B_SECRET], onionskin, Y_SECRET, 72)
    assert reply == H(V["expected_server_handshake"])
    assert keys == H(V["expected_key_material_72"])


def test_bad_lengths() -> None:
    state, onionskin = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    for cut in range(64):
        with pytest.raises(ProtocolError):
            ntor.client_complete(state, H(V["expected_server_handshake"])[:cut], 72)
    for cut in range(84):
        with pytest.raises(ProtocolError):
            ntor.server_handshake(RELAY_ID, B_SECRET, onionskin[:cut], Y_SECRET, 72)
    with pytest.raises(LocalError):
        ntor.client_handshake(RELAY_ID[:19], B_PUB, X_SECRET)


@settings(max_examples=40)
@given(SECRETS, SECRETS, SECRETS, st.binary(min_size=20, max_size=20))
def test_round_trip(b: bytes, x: bytes, y: bytes, relay_id: bytes) -> None:
    state, onionskin = ntor.client_handshake(relay_id, x25519_public(b), x)
    reply, server_keys = ntor.server_handshake(relay_id, b, onionskin, y, 72)
    assert ntor.client_complete(state, reply, 72) == server_keys


@settings(max_examples=60)
@given(st.binary(max_size=70))
def test_client_on_arbitrary_reply_raises_protocol_error(reply: bytes) -> None:
    state, _ = ntor.client_handshake(RELAY_ID, B_PUB, X_SECRET)
    with pytest.raises(ProtocolError):
        ntor.client_complete(state, reply, 72)


@settings(max_examples=60)
@given(st.binary(max_size=90))
def test_server_on_arbitrary_onionskin_raises_protocol_error(onionskin: bytes) -> None:
    with pytest.raises(ProtocolError):
        ntor.server_handshake(RELAY_ID, B_SECRET, onionskin, Y_SECRET, 72)
