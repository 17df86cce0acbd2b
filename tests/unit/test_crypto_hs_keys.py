"""Key blinding, credentials and expanded-key signing (rend-spec-v3 A.2, §2.1)
against tests/vectors/vectors/key_blinding.json (all four families)."""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto import hs_keys
from gotor.crypto.hs_index import time_period_number
from gotor.crypto.onion_address import decode_onion_address
from gotor.crypto.primitives import ed25519_public, ed25519_sign, ed25519_verify
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BLINDING = json.loads((VECTORS / "vectors" / "key_blinding.json").read_text())
END_TO_END = BLINDING["hs_blinding_end_to_end"]["vectors"]
HSDESC2 = BLINDING["hsdesc2_blinding"]["vectors"]
RAW = BLINDING["raw_ed25519_blinding"]["vectors"]
MUST_FAIL = BLINDING["blinding_must_fail"]["vectors"]


def _unix(utc: str) -> int:
    return calendar.timegm(datetime.strptime(utc, "%Y-%m-%d %H:%M:%S").timetuple())


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("vec", END_TO_END, ids=lambda v: str(v["expected_time_period_num"]))
def test_end_to_end_blinding_from_c_tor(vec: dict[str, Any]) -> None:
    period_len = int(vec["time_period_length_minutes"])
    period = time_period_number(_unix(vec["time_utc"]), period_len)
    assert period == vec["expected_time_period_num"]
    identity = _h(vec["identity_public_key_A"])
    secret = _h(vec["identity_expanded_secret_key"])
    assert hs_keys.expanded_public_key(secret) == identity
    assert hs_keys.blinding_factor(identity, period, period_len) == _h(
        vec["expected_blinding_param_h_unclamped"]
    )
    blinded = hs_keys.blind_public_key(identity, period, period_len)
    assert blinded == _h(vec["expected_blinded_public_key"])
    assert hs_keys.subcredential(identity, blinded) == _h(vec["expected_subcredential"])
    blinded_secret = hs_keys.blind_expanded_secret_key(secret, period, period_len)
    assert blinded_secret == _h(vec["expected_blinded_expanded_secret_key"])
    assert hs_keys.expanded_public_key(blinded_secret) == blinded


def test_blinded_key_signs_descriptor_certs_verifiable_by_plain_ed25519() -> None:
    vec = END_TO_END[0]
    blinded_secret = _h(vec["expected_blinded_expanded_secret_key"])
    blinded = _h(vec["expected_blinded_public_key"])
    message = b"descriptor-signing-key cert body"
    signature = hs_keys.sign_expanded(blinded_secret, message)
    assert ed25519_verify(blinded, message, signature)
    assert hs_keys.sign_expanded(blinded_secret, message, public=blinded) == signature
    assert not ed25519_verify(_h(vec["identity_public_key_A"]), message, signature)
    assert not ed25519_verify(blinded, message + b"!", signature)


@pytest.mark.parametrize("vec", HSDESC2, ids=lambda v: str(v["time_period_num"]))
def test_arti_hsdesc2_blinding_and_subcredential(vec: dict[str, Any]) -> None:
    identity = decode_onion_address(vec["onion_address"])
    assert identity == _h(vec["identity_public_key_A"])
    period = time_period_number(_unix("2023-02-09 12:00:00"))
    assert period == vec["time_period_num"]
    blinded = hs_keys.blind_public_key(identity, period, int(vec["time_period_length_minutes"]))
    assert blinded == _h(vec["expected_blinded_public_key"])
    assert hs_keys.subcredential(identity, blinded) == _h(vec["expected_subcredential"])


@pytest.mark.parametrize("vec", RAW, ids=lambda v: v["seed"][:8] + v["blinding_param"][:4])
def test_raw_blinding_vectors(vec: dict[str, Any]) -> None:
    seed, expanded, public = _h(vec["seed"]), _h(vec["expanded_secret_key"]), _h(vec["public_key"])
    assert hs_keys.expand_secret_seed(seed) == expanded
    assert hs_keys.expanded_public_key(expanded) == public
    # tor's self-signature: our expanded-key signer agrees with RFC 8032 signing from the seed.
    assert hs_keys.sign_expanded(expanded, public) == _h(vec["self_signature"])
    assert ed25519_sign(seed, public) == _h(vec["self_signature"])
    param = _h(vec["blinding_param"])
    blinded = hs_keys.blind_public_key_with_param(public, param)
    assert blinded == _h(vec["blinded_public_key"])
    blinded_secret = hs_keys.blind_expanded_secret_key_with_param(expanded, param)
    assert blinded_secret == _h(vec["blinded_expanded_secret_key"])
    assert hs_keys.expanded_public_key(blinded_secret) == blinded
    assert ed25519_verify(blinded, b"m", hs_keys.sign_expanded(blinded_secret, b"m"))


def test_blinding_must_fail_cases() -> None:
    bad, good = MUST_FAIL
    assert bad["expect"].startswith("error") and good["expect"] == "success"
    with pytest.raises(ProtocolError, match="not a valid Ed25519 point"):
        hs_keys.blind_public_key_with_param(_h(bad["public_key"]), _h(bad["param"]))
    out = hs_keys.blind_public_key_with_param(_h(good["public_key"]), _h(good["param"]))
    assert len(out) == 32 and out != _h(good["public_key"])
    with pytest.raises(ProtocolError):
        hs_keys.blind_public_key(_h(bad["public_key"]), 1234)


def test_period_length_and_number_change_the_blinded_key() -> None:
    identity = _h(END_TO_END[0]["identity_public_key_A"])
    base = hs_keys.blind_public_key(identity, 1234)
    assert hs_keys.blind_public_key(identity, 1235) != base
    assert hs_keys.blind_public_key(identity, 1234, 720) != base
    assert hs_keys.blinding_nonce(1, 1440) == b"key-blind" + (1).to_bytes(8, "big") + (
        1440).to_bytes(8, "big")


def test_credential_definitions() -> None:
    identity = _h(END_TO_END[0]["identity_public_key_A"])
    cred = hashlib.sha3_256(b"credential" + identity).digest()
    assert hs_keys.credential(identity) == cred
    blinded = bytes(range(32))
    assert hs_keys.subcredential(identity, blinded) == hashlib.sha3_256(
        b"subcredential" + cred + blinded
    ).digest()


def test_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalError):
        hs_keys.int_8(-1)
    with pytest.raises(LocalError):
        hs_keys.int_8(1 << 64)
    with pytest.raises(LocalError):
        hs_keys.expand_secret_seed(bytes(31))
    with pytest.raises(LocalError):
        hs_keys.sign_expanded(bytes(63), b"")
    with pytest.raises(LocalError):
        hs_keys.expanded_public_key(bytes(64))  # scalar 0
    with pytest.raises(LocalError):
        hs_keys.blind_public_key(bytes(31), 1)
    with pytest.raises(ProtocolError, match="32 bytes"):
        hs_keys.check_public_key(bytes(33))


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=200))
def test_expanded_signing_matches_rfc8032(seed: bytes, message: bytes) -> None:
    expanded = hs_keys.expand_secret_seed(seed)
    assert hs_keys.expanded_public_key(expanded) == ed25519_public(seed)
    assert hs_keys.sign_expanded(expanded, message) == ed25519_sign(seed, message)


@settings(max_examples=25, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=30, max_value=14400),
)
def test_secret_and_public_blinding_agree(seed: bytes, period: int, length: int) -> None:
    expanded = hs_keys.expand_secret_seed(seed)
    public = ed25519_public(seed)
    blinded_secret = hs_keys.blind_expanded_secret_key(expanded, period, length)
    blinded = hs_keys.blind_public_key(public, period, length)
    assert hs_keys.expanded_public_key(blinded_secret) == blinded
    assert ed25519_verify(blinded, b"x", hs_keys.sign_expanded(blinded_secret, b"x"))
