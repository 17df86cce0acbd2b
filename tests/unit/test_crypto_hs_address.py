"""Onion addresses (rend-spec-v3 §6, §2.2.7) against tests/vectors/vectors/hs_address.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

from gotor.crypto.onion_address import (
    decode_onion_address,
    encode_onion_address,
    onion_hostname_key,
)
from gotor.crypto.primitives import ed25519_public
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ADDRESSES = json.loads((VECTORS / "vectors" / "hs_address.json").read_text())
HSDESC = json.loads((VECTORS / "vectors" / "hsdesc_params.json").read_text())

VALID_WITH_KEYS = [v for v in ADDRESSES["valid"] if v["public_key"]]
RFC8032_KEY = bytes.fromhex(VALID_WITH_KEYS[0]["public_key"])
RFC8032_ADDR = VALID_WITH_KEYS[0]["address"]
# An order-8 point: adding it to a valid key gives a point with a torsion component.
TORSION_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


@pytest.mark.parametrize("vec", VALID_WITH_KEYS, ids=lambda v: v["address"][:8])
def test_encode_and_decode_vectors(vec: dict[str, str]) -> None:
    key = bytes.fromhex(vec["public_key"])
    assert encode_onion_address(key) == vec["address"] + ".onion"
    assert decode_onion_address(vec["address"]) == key
    assert decode_onion_address(vec["address"] + ".onion") == key


def test_stem_service_address_gives_the_descriptor_identity_key() -> None:
    stem = HSDESC["descriptors"][1]["inputs"]
    key = decode_onion_address(stem["onion_address"])
    assert key.hex() == stem["identity_public_key_derived"]
    assert encode_onion_address(key) == stem["onion_address"]


def test_case_insensitive_like_c_tor() -> None:
    assert decode_onion_address(RFC8032_ADDR.upper() + ".ONION") == RFC8032_KEY
    mixed = "".join(c.upper() if i % 3 else c for i, c in enumerate(RFC8032_ADDR))
    assert decode_onion_address(mixed + ".Onion") == RFC8032_KEY


def _reason_keyword(reason: str) -> str:
    for word in ("length", "checksum", "base32", "version"):
        if word in reason:
            return word
    raise AssertionError(f"vector reason not understood: {reason}")


@pytest.mark.parametrize("vec", ADDRESSES["invalid"], ids=lambda v: v["reason"][:20])
def test_invalid_vectors_rejected_with_reason(vec: dict[str, str]) -> None:
    keyword = _reason_keyword(vec["reason"])
    for text in (vec["address"], vec["address"] + ".onion"):
        with pytest.raises(ProtocolError) as info:
            decode_onion_address(text)
        assert keyword in info.value.reason


def test_key_with_torsion_component_rejected() -> None:
    tainted = sodium.crypto_core_ed25519_add(RFC8032_KEY, TORSION_POINT)
    with pytest.raises(ProtocolError, match="torsion"):
        decode_onion_address(encode_onion_address(tainted))


@pytest.mark.parametrize(
    "key_hex",
    [
        "0100000000000000000000000000000000000000000000000000000000000000",  # identity
        "e19c65de75c68cf3b7643ea732ba9eb1a3d20d6d57ba223c2ece1df66feb5af0",  # off the curve
    ],
)
def test_invalid_points_rejected(key_hex: str) -> None:
    with pytest.raises(ProtocolError, match="not a valid Ed25519 point"):
        decode_onion_address(encode_onion_address(bytes.fromhex(key_hex)))


def test_non_ascii_lookalike_rejected() -> None:
    # U+212A KELVIN SIGN lower-cases to ASCII 'k' in Python; C tor would not map it.
    assert "k" in RFC8032_ADDR
    with pytest.raises(ProtocolError, match="base32"):
        decode_onion_address(RFC8032_ADDR.replace("k", "\u212a", 1))


@pytest.mark.parametrize("position", [52, 53, 54, 55])
def test_every_edit_of_checksum_or_version_characters_rejected(position: int) -> None:
    # Characters 52..55 encode only checksum and version bits, so any change must fail.
    for char in "abcdefghijklmnopqrstuvwxyz234567":
        if char == RFC8032_ADDR[position]:
            continue
        edited = RFC8032_ADDR[:position] + char + RFC8032_ADDR[position + 1 :]
        with pytest.raises(ProtocolError):
            decode_onion_address(edited)


def test_hostname_rules_of_c_tor() -> None:
    host = RFC8032_ADDR + ".onion"
    assert onion_hostname_key(host) == RFC8032_KEY
    assert onion_hostname_key("www." + host) == RFC8032_KEY
    assert onion_hostname_key("a.b." + host.upper()) == RFC8032_KEY
    assert onion_hostname_key("example.com") is None
    assert onion_hostname_key(RFC8032_ADDR) is None  # no .onion: an ordinary name
    assert onion_hostname_key(host + ".") is None  # as C tor: last label is empty
    for bad in ("." + host, "bad.onion", ".onion", "www.bad.onion"):
        with pytest.raises(ProtocolError):
            onion_hostname_key(bad)


def test_encode_rejects_wrong_key_length() -> None:
    with pytest.raises(LocalError):
        encode_onion_address(bytes(31))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_round_trip_for_real_keys(seed: bytes) -> None:
    key = ed25519_public(seed)
    address = encode_onion_address(key)
    assert len(address) == 56 + len(".onion")
    assert decode_onion_address(address) == key
    assert onion_hostname_key("x." + address.upper()) == key


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=70), st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567",
                                               min_size=56, max_size=56)))
def test_arbitrary_text_decodes_or_raises_protocol_error(text: str) -> None:
    for candidate in (text, text + ".onion"):
        try:
            key = decode_onion_address(candidate)
        except ProtocolError:
            continue
        assert len(key) == 32
    try:
        found = onion_hostname_key(text)
    except ProtocolError:
        return
    assert found is None or len(found) == 32
