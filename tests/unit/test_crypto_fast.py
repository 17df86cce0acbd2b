"""CREATE_FAST / CREATED_FAST (tor-spec §5.1.5) against arti's C-tor-generated vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.crypto import fast
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
FAST = json.loads((VECTORS / "kdf.json").read_text())["create_fast"]["vectors"]
H = bytes.fromhex


@pytest.mark.parametrize("v", FAST)
def test_client_vector(v: dict[str, str]) -> None:
    state, msg = fast.client_handshake(H(v["create_fast_X"]))
    assert msg == H(v["create_fast_X"])
    keys = fast.client_complete(state, H(v["created_fast_Y_KH"]), 100)
    assert keys == H(v["expected_keys_100"])


@pytest.mark.parametrize("v", FAST)
def test_server_vector(v: dict[str, str]) -> None:
    reply = H(v["created_fast_Y_KH"])
    out, keys = fast.server_handshake(H(v["create_fast_X"]), reply[:20], 100)
    assert out == reply
    assert keys == H(v["expected_keys_100"])


@pytest.mark.parametrize("v", FAST)
def test_wrong_kh_is_rejected(v: dict[str, str]) -> None:
    state, _ = fast.client_handshake(H(v["create_fast_X"]))
    reply = bytearray(H(v["created_fast_Y_KH"]))
    for pos in (0, 20, 39):  # a changed Y changes the expected KH; a changed KH mismatches
        bad = bytearray(reply)
        bad[pos] ^= 0x40
        with pytest.raises(ProtocolError, match="KH mismatch"):
            fast.client_complete(state, bytes(bad), 72)


def test_bad_lengths() -> None:
    state, _ = fast.client_handshake(bytes(20))
    with pytest.raises(ProtocolError):
        fast.client_complete(state, bytes(39), 72)
    with pytest.raises(ProtocolError):
        fast.server_handshake(bytes(21), bytes(20), 72)
    with pytest.raises(LocalError):
        fast.client_handshake(bytes(19))


@given(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20))
def test_round_trip(x: bytes, y: bytes) -> None:
    state, msg = fast.client_handshake(x)
    reply, server_keys = fast.server_handshake(msg, y, 72)
    assert fast.client_complete(state, reply, 72) == server_keys
    assert len(server_keys) == 72
