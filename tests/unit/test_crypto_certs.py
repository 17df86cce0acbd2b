"""Tor Ed25519 certificates and the RSA->Ed25519 cross-certificate (cert-spec; certs.json)."""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import drbg

from gotor.crypto.certs import (
    CertExtension,
    CertKeyType,
    CertType,
    Ed25519Cert,
    RsaEd25519CrossCert,
)
from gotor.crypto.primitives import ed25519_public
from gotor.crypto.rsa import RsaPrivateKey, RsaPublicKey
from gotor.errors import LocalError, ProtocolError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
CERTS = json.loads((VECTORS / "certs.json").read_text())
H = bytes.fromhex
IDENTITY = H(CERTS["relay_ed25519_identity"])
SIGNING = H(CERTS["relay_ed25519_signing_key"])
ID_SIGNING = CERTS["ed25519_certs"][0]
SIGNING_TLS = CERTS["ed25519_certs"][1]
CROSS = CERTS["rsa_crosscert"]
RSA_ID = RsaPublicKey.from_der(H(CROSS["rsa_identity_public_key_pkcs1_der"]))
SEEDS = st.binary(min_size=32, max_size=32)


def _posix(iso: str) -> int:
    return int(datetime.datetime.fromisoformat(iso).timestamp())


def _flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


@pytest.fixture(scope="module")
def rsa_key() -> RsaPrivateKey:
    return RsaPrivateKey.generate(1024, drbg(b"cross-cert test key"))


@pytest.mark.parametrize("vec", CERTS["ed25519_certs"], ids=["type4", "type5"])
def test_ed_cert_fields(vec: dict[str, object]) -> None:
    expect = vec["expect"]
    assert isinstance(expect, dict)
    cert = Ed25519Cert.parse(H(str(vec["encoded"])))
    assert cert.cert_type == expect["cert_type"]
    assert cert.expiration_hours == expect["expiration_hours_since_epoch"]
    assert cert.expiry == _posix(expect["expiry_utc"])
    assert cert.key_type == expect["cert_key_type"]
    assert len(cert.extensions) == expect["n_extensions"]
    key = expect.get("certified_key") or expect["certified_key(SHA256 of TLS cert)"]
    assert cert.certified_key == H(key)
    assert cert.encode() == cert.encoded == H(str(vec["encoded"]))


def test_identity_signing_cert_extension_and_signature() -> None:
    cert = Ed25519Cert.parse(H(ID_SIGNING["encoded"]))
    assert cert.extensions == (CertExtension(4, 0, IDENTITY),)
    assert cert.signed_with == IDENTITY
    cert.verify()  # with the key named in the extension
    cert.verify(IDENTITY)
    with pytest.raises(VerificationError, match="not the expected key"):
        cert.verify(SIGNING)


def test_signing_tls_cert_needs_a_key() -> None:
    cert = Ed25519Cert.parse(H(SIGNING_TLS["encoded"]))
    assert cert.signed_with is None
    cert.verify(SIGNING)
    with pytest.raises(VerificationError, match="names no signing key"):
        cert.verify()
    with pytest.raises(VerificationError, match="bad signature"):
        cert.verify(IDENTITY)


@pytest.mark.parametrize("vec,key", [(ID_SIGNING, IDENTITY), (SIGNING_TLS, SIGNING)],
                         ids=["type4", "type5"])
def test_altered_bytes_fail_verification(vec: dict[str, str], key: bytes) -> None:
    encoded = H(vec["encoded"])
    for pos in (len(encoded) - 64, len(encoded) - 1, 1, 3, 10):
        try:
            cert = Ed25519Cert.parse(_flip(encoded, pos))
        except ProtocolError:
            continue
        with pytest.raises(VerificationError):
            cert.verify(key)


def test_expiry_boundary() -> None:
    cert = Ed25519Cert.parse(H(ID_SIGNING["encoded"]))
    cert.check_valid_at(_posix(CERTS["notional_time_utc"]))
    cert.check_valid_at(cert.expiry)
    with pytest.raises(VerificationError, match="expired"):
        cert.check_valid_at(cert.expiry + 1)


@pytest.mark.parametrize("vec", CERTS["ed25519_certs"], ids=["type4", "type5"])
def test_truncation_and_trailing_bytes(vec: dict[str, str]) -> None:
    encoded = H(vec["encoded"])
    for cut in range(len(encoded)):
        with pytest.raises(ProtocolError):
            Ed25519Cert.parse(encoded[:cut])
    with pytest.raises(ProtocolError, match="trailing"):
        Ed25519Cert.parse(encoded + b"\x00")


def _raw_cert(extensions: bytes, n_ext: int, version: int = 1) -> bytes:
    return (bytes((version, 4)) + (400000).to_bytes(4, "big") + b"\x01" + SIGNING
            + bytes((n_ext,)) + extensions + bytes(64))


def test_extension_rules() -> None:
    unknown = (3).to_bytes(2, "big") + b"\x09\x00abc"
    cert = Ed25519Cert.parse(_raw_cert(unknown, 1))
    assert cert.extensions == (CertExtension(9, 0, b"abc"),)
    assert cert.signed_with is None
    critical = (3).to_bytes(2, "big") + b"\x09\x01abc"
    with pytest.raises(ProtocolError, match="affects validation"):
        Ed25519Cert.parse(_raw_cert(critical, 1))
    short_key = (31).to_bytes(2, "big") + b"\x04\x00" + bytes(31)
    with pytest.raises(ProtocolError, match="32 bytes"):
        Ed25519Cert.parse(_raw_cert(short_key, 1))
    signed_with = (32).to_bytes(2, "big") + b"\x04\x00" + IDENTITY
    with pytest.raises(ProtocolError, match="two signed-with-key"):
        Ed25519Cert.parse(_raw_cert(signed_with * 2, 2))
    with pytest.raises(ProtocolError, match="version"):
        Ed25519Cert.parse(_raw_cert(b"", 0, version=2))


def test_build_round_trip_and_determinism() -> None:
    seed, subject = bytes(range(32)), ed25519_public(bytes(range(1, 33)))
    raw = Ed25519Cert.build(CertType.IDENTITY_V_SIGNING, subject, seed, 500000)
    assert raw == Ed25519Cert.build(CertType.IDENTITY_V_SIGNING, subject, seed, 500000)
    cert = Ed25519Cert.parse(raw)
    assert (cert.cert_type, cert.certified_key, cert.expiration_hours) == (4, subject, 500000)
    assert cert.signed_with == ed25519_public(seed)
    cert.verify()
    bare = Ed25519Cert.parse(Ed25519Cert.build(
        CertType.SIGNING_V_TLS_CERT, bytes(32), seed, 1, key_type=CertKeyType.SHA256_OF_X509,
        include_signed_with=False))
    assert bare.extensions == () and bare.key_type == 3
    bare.verify(ed25519_public(seed))
    with pytest.raises(LocalError):
        Ed25519Cert.build(4, bytes(31), seed, 1)
    with pytest.raises(LocalError):
        Ed25519Cert.build(4, bytes(32), seed, 2**32)


@settings(max_examples=40)
@given(st.integers(0, 255), SEEDS, SEEDS, st.integers(0, 2**32 - 1), st.booleans())
def test_build_parse_verify_property(cert_type: int, seed: bytes, key: bytes, hours: int,
                                     signed_with: bool) -> None:
    raw = Ed25519Cert.build(cert_type, key, seed, hours, include_signed_with=signed_with)
    cert = Ed25519Cert.parse(raw)
    assert (cert.cert_type, cert.certified_key, cert.expiration_hours) == (cert_type, key, hours)
    assert cert.encode() == raw
    cert.verify(ed25519_public(seed))


@settings(max_examples=300)
@given(st.binary(max_size=220))
def test_arbitrary_bytes_parse_or_protocol_error(data: bytes) -> None:
    for parse in (Ed25519Cert.parse, RsaEd25519CrossCert.parse):
        with contextlib.suppress(ProtocolError):
            assert parse(data).encoded == data


def test_crosscert_vector() -> None:
    cross = RsaEd25519CrossCert.parse(H(CROSS["encoded"]))
    assert cross.ed25519_key == H(CROSS["expect"]["subject_ed25519_key"])
    assert cross.expiration_hours == CROSS["expect"]["expiration_hours_since_epoch"]
    assert cross.expiry == cross.expiration_hours * 3600
    assert len(cross.signature) == 128
    cross.verify(RSA_ID)
    wrong = RsaPublicKey.from_der(H(CROSS["wrong_rsa_public_key_pkcs1_der"]))
    with pytest.raises(VerificationError):
        cross.verify(wrong)
    cross.check_valid_at(_posix(CERTS["notional_time_utc"]))
    with pytest.raises(VerificationError, match="expired"):
        cross.check_valid_at(cross.expiry + 1)


def test_crosscert_altered_bytes_fail() -> None:
    encoded = H(CROSS["encoded"])
    for pos in (0, 31, 33, 40, len(encoded) - 1):
        with pytest.raises(VerificationError):
            RsaEd25519CrossCert.parse(_flip(encoded, pos)).verify(RSA_ID)


def test_crosscert_truncation() -> None:
    encoded = H(CROSS["encoded"])
    for cut in range(len(encoded)):
        with pytest.raises(ProtocolError):
            RsaEd25519CrossCert.parse(encoded[:cut])
    with pytest.raises(ProtocolError):
        RsaEd25519CrossCert.parse(encoded + b"\x00")


def test_crosscert_build(rsa_key: RsaPrivateKey) -> None:
    raw = RsaEd25519CrossCert.build(rsa_key, IDENTITY, 449082)
    assert raw == RsaEd25519CrossCert.build(rsa_key, IDENTITY, 449082)
    cross = RsaEd25519CrossCert.parse(raw)
    assert (cross.ed25519_key, cross.expiration_hours) == (IDENTITY, 449082)
    cross.verify(rsa_key.public)
    with pytest.raises(VerificationError):
        cross.verify(RSA_ID)
    with pytest.raises(LocalError):
        RsaEd25519CrossCert.build(rsa_key, IDENTITY[:31], 1)
