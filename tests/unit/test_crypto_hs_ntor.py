"""hs-ntor (rend-spec-v3 §3.3.2, §4.2, App. G.1) against tests/vectors/vectors/hs_ntor.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto import hs_ntor
from gotor.crypto.primitives import x25519, x25519_public
from gotor.errors import LocalError, ProtocolError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
HS_NTOR = json.loads((VECTORS / "vectors" / "hs_ntor.json").read_text())
VEC = {k: bytes.fromhex(v) for k, v in HS_NTOR["vectors"][0].items()}
AUTH, B, SUBCRED, HEADER = (VEC["KP_hs_ipt_sid_auth_key"], VEC["KP_hss_ntor_B"],
                            VEC["N_hs_subcred"], VEC["intro1_header_H"])


def _client() -> tuple[hs_ntor.HsNtorClientState, bytes]:
    return hs_ntor.client_send_intro(AUTH, B, SUBCRED, HEADER, VEC["intro_plaintext_P"],
                                     client_secret=VEC["client_x"])


def _service(encrypted: bytes, subcreds: list[bytes] | None = None,
             header: bytes = HEADER) -> hs_ntor.HsNtorServiceResult:
    return hs_ntor.service_receive_intro(VEC["KS_hss_ntor_b"], AUTH, [SUBCRED] if subcreds is None else subcreds,
                                         header, encrypted, server_secret=VEC["service_y"])


def test_vector_keys() -> None:
    assert x25519_public(VEC["client_x"]) == VEC["client_X"]
    assert x25519_public(VEC["KS_hss_ntor_b"]) == B
    assert x25519_public(VEC["service_y"]) == VEC["service_Y"]
    keys = hs_ntor.intro_keys(x25519(VEC["client_x"], B), AUTH, VEC["client_X"], B, SUBCRED)
    assert keys.enc_key == VEC["ENC_KEY"]
    assert keys.mac_key == VEC["MAC_KEY"]


def test_client_builds_the_exact_introduce1_body() -> None:
    state, encrypted = _client()
    assert HEADER + encrypted == VEC["expected_introduce1_body"]
    assert state.client_public == VEC["client_X"]
    assert repr(VEC["client_x"]) not in repr(state)  # secrets stay out of logs


def test_service_decrypts_and_answers_with_vector_values() -> None:
    encrypted = VEC["expected_introduce1_body"][len(HEADER):]
    result = _service(encrypted)
    assert result.plaintext == VEC["intro_plaintext_P"]
    assert result.handshake_info == VEC["service_Y"] + VEC["AUTH_INPUT_MAC"]
    assert result.handshake_info == VEC["expected_rendezvous_handshake_info"]
    assert result.key_seed == VEC["NTOR_KEY_SEED"]
    assert result.subcredential == SUBCRED


def test_client_completes_from_rendezvous2() -> None:
    state, _ = _client()
    handshake_info = VEC["service_Y"] + VEC["AUTH_INPUT_MAC"]
    assert hs_ntor.client_receive_rend(state, handshake_info) == VEC["NTOR_KEY_SEED"]
    # Trailing bytes after HANDSHAKE_INFO are ignored, as C tor and arti do.
    assert hs_ntor.client_receive_rend(state, handshake_info + bytes(20)) == VEC["NTOR_KEY_SEED"]


def test_client_rejects_bad_auth_and_short_info() -> None:
    state, _ = _client()
    good = VEC["service_Y"] + VEC["AUTH_INPUT_MAC"]
    for i in range(len(good)):
        tampered = bytearray(good)
        tampered[i] ^= 0x01
        with pytest.raises(ProtocolError):  # VerificationError, or a bad Y
            hs_ntor.client_receive_rend(state, bytes(tampered))
    for i in range(32, 64):
        tampered = bytearray(good)
        tampered[i] ^= 0x80
        with pytest.raises(VerificationError):
            hs_ntor.client_receive_rend(state, bytes(tampered))
    for cut in range(len(good)):
        with pytest.raises(ProtocolError, match="truncated"):
            hs_ntor.client_receive_rend(state, good[:cut])
    with pytest.raises(ProtocolError, match="all-zero"):
        hs_ntor.client_receive_rend(state, bytes(32) + VEC["AUTH_INPUT_MAC"])


def test_service_tries_every_subcredential() -> None:
    encrypted = VEC["expected_introduce1_body"][len(HEADER):]
    other = hashlib.sha3_256(b"other period").digest()
    assert _service(encrypted, [other, SUBCRED, other]).subcredential == SUBCRED
    with pytest.raises(VerificationError, match="MAC"):
        _service(encrypted, [other])
    with pytest.raises(VerificationError):
        _service(encrypted, [])


def test_service_rejects_any_modified_byte() -> None:
    body = VEC["expected_introduce1_body"]
    for i in range(len(body)):
        tampered = bytearray(body)
        tampered[i] ^= 0x04
        header, encrypted = bytes(tampered[: len(HEADER)]), bytes(tampered[len(HEADER):])
        with pytest.raises(VerificationError):
            _service(encrypted, header=header)


def test_service_rejects_short_or_small_order_input() -> None:
    encrypted = VEC["expected_introduce1_body"][len(HEADER):]
    for cut in range(64):
        with pytest.raises(ProtocolError, match="truncated"):
            _service(encrypted[:cut])
    with pytest.raises(ProtocolError, match="all-zero"):
        _service(bytes(32) + encrypted[32:])


def test_hs_mac_vectors() -> None:
    for vec in HS_NTOR["hs_mac_vectors"]["vectors"]:
        mac = hs_ntor.hs_mac(vec["key_ascii"].encode(), vec["msg_ascii"].encode())
        assert mac.hex() == vec["expected_mac"]


def test_key_expansion_layout() -> None:
    keys = hs_ntor.expand_key_seed(VEC["NTOR_KEY_SEED"])
    expected = hashlib.shake_256(
        VEC["NTOR_KEY_SEED"] + b"tor-hs-ntor-curve25519-sha3-256-1:hs_key_expand"
    ).digest(128)
    assert keys.raw == expected
    assert (keys.forward_digest, keys.backward_digest, keys.forward_key, keys.backward_key) == (
        expected[0:32], expected[32:64], expected[64:96], expected[96:128])
    with pytest.raises(LocalError):
        hs_ntor.expand_key_seed(bytes(31))


def test_client_misuse_is_local_error() -> None:
    with pytest.raises(LocalError):
        hs_ntor.client_send_intro(AUTH[:31], B, SUBCRED, HEADER, b"",
                                  client_secret=VEC["client_x"])


_key = st.binary(min_size=32, max_size=32)


@settings(max_examples=30, deadline=None)
@given(_key, _key, _key, _key, _key, st.binary(max_size=80), st.binary(max_size=300))
def test_round_trip(x: bytes, y: bytes, b: bytes, auth: bytes, subcred: bytes,
                    header: bytes, plaintext: bytes) -> None:
    state, encrypted = hs_ntor.client_send_intro(auth, x25519_public(b), subcred, header,
                                                 plaintext, client_secret=x)
    assert len(encrypted) == 32 + len(plaintext) + 32
    result = hs_ntor.service_receive_intro(b, auth, [subcred], header, encrypted,
                                           server_secret=y)
    assert result.plaintext == plaintext
    assert hs_ntor.client_receive_rend(state, result.handshake_info) == result.key_seed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_intro_payload_is_rejected_cleanly(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _service(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_arbitrary_handshake_info_is_rejected_cleanly(data: bytes) -> None:
    state, _ = _client()
    with pytest.raises(ProtocolError):
        hs_ntor.client_receive_rend(state, data)
