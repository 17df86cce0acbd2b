"""gotor.crypto.primitives against the standard vectors arti checks (vectors/primitives.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.crypto import primitives as p
from gotor.errors import ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
PRIM = json.loads((VECTORS / "primitives.json").read_text())
H = bytes.fromhex


@pytest.mark.parametrize("v", PRIM["x25519_rfc7748"])
def test_x25519_rfc7748(v: dict[str, str]) -> None:
    assert p.x25519(H(v["scalar"]), H(v["u"])) == H(v["expected"])


def test_x25519_public_is_exchange_with_base_point() -> None:
    secret = bytes(range(32))
    base = (9).to_bytes(32, "little")
    assert p.x25519_public(secret) == p.x25519(secret, base)


@pytest.mark.parametrize("small_order", [bytes(32), (1).to_bytes(32, "little")])
def test_x25519_small_order_point_is_rejected(small_order: bytes) -> None:
    with pytest.raises(ProtocolError, match="all-zero"):
        p.x25519(bytes(range(32)), small_order)


@pytest.mark.parametrize("v", PRIM["ed25519_rfc8032"])
def test_ed25519_rfc8032(v: dict[str, str]) -> None:
    seed, msg, sig = H(v["secret_seed"]), H(v["message"]), H(v["signature"])
    assert p.ed25519_public(seed) == H(v["public"])
    assert p.ed25519_sign(seed, msg) == sig
    assert p.ed25519_verify(H(v["public"]), msg, sig)
    bad = bytearray(sig)
    bad[10] ^= 1
    assert not p.ed25519_verify(H(v["public"]), msg, bytes(bad))
    assert not p.ed25519_verify(H(v["public"]), msg + b"x", sig)
    assert not p.ed25519_verify(H(v["public"])[:31], msg, sig)


@pytest.mark.parametrize("v", PRIM["aes_ctr_nist_sp800_38a"])
def test_aes_ctr_nist(v: dict[str, str]) -> None:
    key, iv, pt = H(v["key"]), H(v["initial_counter"]), H(v["plaintext"])
    assert p.aes_ctr(key, pt, iv) == H(v["ciphertext"])
    # A running AesCtr gives the same stream however the input is chunked.
    stream = p.AesCtr(key, iv)
    assert stream.update(pt[:7]) + stream.update(pt[7:40]) + stream.update(pt[40:]) == H(
        v["ciphertext"]
    )


@pytest.mark.parametrize("v", PRIM["sha3_256"])
def test_sha3_256(v: dict[str, str]) -> None:
    assert p.sha3_256(H(v["input"])) == H(v["expected"])


@pytest.mark.parametrize("v", PRIM["shake256"])
def test_shake256(v: dict[str, str]) -> None:
    expected = H(v["expected"])
    assert p.shake256(H(v["input"]), len(expected)) == expected


def test_constant_time_eq() -> None:
    assert p.constant_time_eq(b"abc", b"abc")
    assert not p.constant_time_eq(b"abc", b"abd")
    assert not p.constant_time_eq(b"abc", b"ab")


@given(st.binary(max_size=64), st.binary(max_size=200))
def test_ed25519_sign_verify_round_trip(seed_src: bytes, msg: bytes) -> None:
    seed = (seed_src + bytes(32))[:32]
    pub = p.ed25519_public(seed)
    assert p.ed25519_verify(pub, msg, p.ed25519_sign(seed, msg))
