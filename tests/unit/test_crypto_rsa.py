"""gotor.crypto.rsa against arti's known RSA-1024 identity vector (vectors/rsa.json)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import drbg

from gotor.crypto.rsa import RsaPrivateKey, RsaPublicKey, pem_armor
from gotor.errors import ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
RSA = json.loads((VECTORS / "rsa.json").read_text())["vectors"][0]


def _b64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


@pytest.fixture(scope="module")
def private_key() -> RsaPrivateKey:
    return RsaPrivateKey.generate(1024, drbg(b"rsa test key"))


def test_known_key_identity() -> None:
    key = RsaPublicKey.from_der(_b64(RSA["public_key_pkcs1_der_base64"]))
    assert key.bits == RSA["expected_bits"]
    assert key.exponent == RSA["expected_exponent"]
    assert key.fingerprint().hex() == RSA["expected_rsa_identity"]
    assert key.der == _b64(RSA["public_key_pkcs1_der_base64"])


def test_known_signature() -> None:
    key = RsaPublicKey.from_der(_b64(RSA["public_key_pkcs1_der_base64"]))
    sig = _b64(RSA["signature_base64"])
    assert key.verify_digest(sig, bytes.fromhex(RSA["signed_digest"])) is True
    assert key.verify_digest(sig, bytes.fromhex(RSA["wrong_digest"])) is False
    bad = bytearray(sig)
    bad[-1] ^= 1
    assert key.verify_digest(bytes(bad), bytes.fromhex(RSA["signed_digest"])) is False
    assert key.verify_digest(sig[:-1], bytes.fromhex(RSA["signed_digest"])) is False


def test_pem_round_trip() -> None:
    key = RsaPublicKey.from_der(_b64(RSA["public_key_pkcs1_der_base64"]))
    pem = key.pem()
    assert pem == pem_armor("RSA PUBLIC KEY", key.der)
    body = "".join(pem.splitlines()[1:-1])
    assert RsaPublicKey.from_pem_body(base64.b64decode(body)) == key


def test_generated_key_signs_deterministically(private_key: RsaPrivateKey) -> None:
    assert private_key.public.bits == 1024
    digest = hashlib.sha1(b"hello").digest()
    sig = private_key.sign_digest(digest)
    assert sig == private_key.sign_digest(digest)
    assert private_key.public.verify_digest(sig, digest)
    assert not private_key.public.verify_digest(sig, hashlib.sha1(b"hellp").digest())
    assert RsaPrivateKey.from_der(private_key.private_der()).public == private_key.public


def test_generation_is_reproducible_from_seed(private_key: RsaPrivateKey) -> None:
    again = RsaPrivateKey.generate(1024, drbg(b"rsa test key"))
    assert again.public == private_key.public


def test_non_canonical_der_is_rejected() -> None:
    der = _b64(RSA["public_key_pkcs1_der_base64"])
    with pytest.raises(ProtocolError):
        RsaPublicKey.from_der(der + b"\x00")


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_from_der_returns_key_or_protocol_error(data: bytes) -> None:
    try:
        key = RsaPublicKey.from_der(data)
    except ProtocolError:
        return
    assert key.der == data


def test_truncated_der_is_rejected_at_every_offset() -> None:
    der = _b64(RSA["public_key_pkcs1_der_base64"])
    for cut in range(len(der)):
        with pytest.raises(ProtocolError):
            RsaPublicKey.from_der(der[:cut])
