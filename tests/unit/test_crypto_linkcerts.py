"""The initiator's CERTS-cell checks (tor-spec §4.2) on a real chutney CERTS cell, and the
relay-side builder."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import drbg

from gotor.crypto.certs import CertType, Ed25519Cert, RsaEd25519CrossCert
from gotor.crypto.linkcerts import (
    CertsCellType,
    build_responder_certs,
    build_rsa_identity_cert,
    verify_responder_certs,
)
from gotor.crypto.primitives import ed25519_public
from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import ProtocolError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
CERTS = json.loads((VECTORS / "certs.json").read_text())
CELL = CERTS["certs_cell"]
H = bytes.fromhex
NOW = datetime.datetime.fromisoformat(CERTS["notional_time_utc"]).timestamp()
DAY = 86400


def _split(body: bytes) -> list[tuple[int, bytes]]:
    """CERTS cell body: N (u8), then N x (type u8, length u16, certificate)."""
    out, pos = [], 1
    for _ in range(body[0]):
        length = int.from_bytes(body[pos + 1 : pos + 3], "big")
        out.append((body[pos], body[pos + 3 : pos + 3 + length]))
        pos += 3 + length
    return out


LIST = _split(H(CELL["body"]))
BY_TYPE = dict(LIST)
TLS = BY_TYPE[1]  # the type-1 link certificate is the TLS certificate of that connection


def _replace(cert_type: int, body: bytes) -> list[tuple[int, bytes]]:
    return [(t, body if t == cert_type else b) for t, b in LIST]


@pytest.fixture(scope="module")
def other_rsa() -> RsaPrivateKey:
    return RsaPrivateKey.generate(1024, drbg(b"linkcerts other key"))


def test_vector_split_matches_expectations() -> None:
    assert [t for t, _ in LIST] == CELL["expect"]["cert_types_in_order"]
    assert [b.hex() for _, b in LIST] == CELL["expect"]["cert_bodies_in_order"]


def test_vector_authenticates_both_identities() -> None:
    ident = verify_responder_certs(LIST, TLS, NOW)
    recomputed = CELL["expect"]["expected_from_our_recomputation"]
    assert ident.rsa_identity.hex() == recomputed["rsa_identity_fingerprint_of_type2_cert_key"]
    assert ident.ed25519_identity == H(CERTS["relay_ed25519_identity"])
    assert ident.ed25519_signing_key == H(CERTS["relay_ed25519_signing_key"])
    rsa_der = H(CERTS["rsa_crosscert"]["rsa_identity_public_key_pkcs1_der"])
    assert ident.rsa_identity_key.der == rsa_der


@pytest.mark.parametrize("missing", [2, 4, 5, 7])
def test_missing_required_cert(missing: int) -> None:
    certs = [(t, b) for t, b in LIST if t != missing]
    with pytest.raises(VerificationError, match=f"no certificate of type {missing}"):
        verify_responder_certs(certs, TLS, NOW)


@pytest.mark.parametrize("dup", [1, 2, 5])
def test_duplicate_cert_type(dup: int) -> None:
    with pytest.raises(VerificationError, match="more than one"):
        verify_responder_certs([*LIST, (dup, BY_TYPE[dup])], TLS, NOW)


def test_other_tls_certificate() -> None:
    with pytest.raises(VerificationError, match="TLS certificate"):
        verify_responder_certs(LIST, BY_TYPE[2], NOW)


def test_expired_ed25519_certificate() -> None:
    tls_expiry = Ed25519Cert.parse(BY_TYPE[5]).expiry
    verify_responder_certs(LIST, TLS, tls_expiry)
    with pytest.raises(VerificationError, match=r"type 5\) expired"):
        verify_responder_certs(LIST, TLS, tls_expiry + 1)


def test_x509_validity_window() -> None:
    after = datetime.datetime(2021, 8, 10, tzinfo=datetime.UTC).timestamp()
    before = datetime.datetime(2020, 8, 10, tzinfo=datetime.UTC).timestamp()
    with pytest.raises(VerificationError, match="RSA identity certificate has expired"):
        verify_responder_certs(LIST, TLS, after + 2 * DAY + 1)
    with pytest.raises(VerificationError, match="not yet valid"):
        verify_responder_certs(LIST, TLS, before - 30 * DAY - 1)


def test_rsa_id_cert_must_be_self_signed_1024_bit() -> None:
    with pytest.raises(VerificationError, match="1024-bit"):
        verify_responder_certs(_replace(2, BY_TYPE[1]), TLS, NOW)
    bad_sig = bytearray(BY_TYPE[2])
    bad_sig[-1] ^= 1
    with pytest.raises(VerificationError, match="self-signed"):
        verify_responder_certs(_replace(2, bytes(bad_sig)), TLS, NOW)
    with pytest.raises(ProtocolError, match="malformed X\\.509"):
        verify_responder_certs(_replace(2, BY_TYPE[2][:-10]), TLS, NOW)


def test_ed25519_certs_in_the_wrong_slots() -> None:
    swapped = [(4, BY_TYPE[5]) if t == 4 else (5, BY_TYPE[4]) if t == 5 else (t, b)
               for t, b in LIST]
    with pytest.raises(VerificationError, match="where type 4 belongs"):
        verify_responder_certs(swapped, TLS, NOW)


@pytest.mark.parametrize("cert_type", [4, 5, 7])
def test_altered_signature(cert_type: int) -> None:
    bad = bytearray(BY_TYPE[cert_type])
    bad[-2] ^= 0x10
    with pytest.raises(VerificationError, match="signature"):
        verify_responder_certs(_replace(cert_type, bytes(bad)), TLS, NOW)


def test_crosscert_from_another_rsa_key_or_for_another_ed_key(other_rsa: RsaPrivateKey) -> None:
    identity = H(CERTS["relay_ed25519_identity"])
    forged = RsaEd25519CrossCert.build(other_rsa, identity, 449082)
    with pytest.raises(VerificationError, match="bad RSA signature"):
        verify_responder_certs(_replace(7, forged), TLS, NOW)
    elsewhere = RsaEd25519CrossCert.build(other_rsa, bytes(32), 449082)
    with pytest.raises(VerificationError, match="another Ed25519 key"):
        verify_responder_certs(_replace(7, elsewhere), TLS, NOW)


def test_identity_cert_without_signed_with_key() -> None:
    seed = bytes(range(32))
    cert = Ed25519Cert.build(CertType.IDENTITY_V_SIGNING, bytes(32), seed, 449082,
                             include_signed_with=False)
    with pytest.raises(VerificationError, match="does not name the identity"):
        verify_responder_certs(_replace(4, cert), TLS, NOW)


@pytest.mark.parametrize("cert_type", [4, 5, 7])
def test_truncated_certs(cert_type: int) -> None:
    body = BY_TYPE[cert_type]
    for cut in range(len(body)):
        with pytest.raises(ProtocolError):
            verify_responder_certs(_replace(cert_type, body[:cut]), TLS, NOW)


@settings(max_examples=100)
@given(st.sampled_from([1, 2, 4, 5, 7]), st.binary(max_size=300))
def test_garbage_cert_is_rejected(cert_type: int, garbage: bytes) -> None:
    certs = _replace(cert_type, garbage)
    if cert_type == 1:  # type 1 is not checked on the Ed25519 path; the TLS DER is
        verify_responder_certs(certs, TLS, NOW)
        return
    with pytest.raises(ProtocolError):
        verify_responder_certs(certs, TLS, NOW)


def test_build_side_round_trip(other_rsa: RsaPrivateKey) -> None:
    id_seed, signing_seed = b"\x01" * 32, b"\x02" * 32
    now = 1_700_000_000
    certs = build_responder_certs(other_rsa, id_seed, signing_seed, TLS, now)
    assert [t for t, _ in certs] == [1, 2, 4, 5, 7]
    assert certs == build_responder_certs(other_rsa, id_seed, signing_seed, TLS, now)
    ident = verify_responder_certs(certs, TLS, now)
    assert ident.rsa_identity == other_rsa.public.fingerprint()
    assert ident.ed25519_identity == ed25519_public(id_seed)
    assert ident.ed25519_signing_key == ed25519_public(signing_seed)
    # The shortest-lived certificate (signing->TLS, 2 days) bounds the whole set.
    verify_responder_certs(certs, TLS, now + 2 * DAY)
    with pytest.raises(VerificationError, match="expired"):
        verify_responder_certs(certs, TLS, now + 2 * DAY + 3600)


def test_built_rsa_identity_cert_is_what_a_verifier_wants(other_rsa: RsaPrivateKey) -> None:
    der = build_rsa_identity_cert(other_rsa, NOW)
    assert der == build_rsa_identity_cert(other_rsa, NOW)
    certs = _replace(CertsCellType.RSA_ID, der)
    # Our identity cert with the vector's cross-cert: the RSA check of type 7 must fail,
    # proving the identity key really comes from the type-2 certificate.
    with pytest.raises(VerificationError, match="bad RSA signature"):
        verify_responder_certs(certs, TLS, NOW)
