"""Authority key certificates (dir-spec §3.1): real certificates, checks, build side."""

from __future__ import annotations

import calendar
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import SHADOW_NOW, T0, authorities, doc, drbg, expectations

from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import DocumentError, VerificationError
from gotor.netdoc.authcert import AuthCert, parse_authcert, parse_authcerts
from gotor.netdoc.build_dir import build_authcert, encode_authcert
from gotor.netdoc.checked import ExpiredError, NotYetValidError, Tolerance
from gotor.netdoc.fields import parse_time

SHADOW = "testnet-arti-shadow/cached-certs"
CHUTNEY = "testnet-arti-chutney-2020/authcerts2.txt"
ALL = "authcerts/arti-authcert-all"


def _time(text: str) -> int:
    t = parse_time(*text.split())
    assert t is not None
    return t


def test_shadow_certificates_match_the_recorded_figures() -> None:
    exp = expectations("testnet-shadow-set")["expected_from_our_recomputation"]["cached-certs"]  # type: ignore[index]
    certs = [c.verify(now=SHADOW_NOW) for c in parse_authcerts(doc(SHADOW))]
    assert len(certs) == exp["n_certs"] == 4
    assert [c.fingerprint.hex().upper() for c in certs] == exp["fingerprints"]
    assert {c.published for c in certs} == {_time(exp["published"])}
    assert {c.expires for c in certs} == {_time(exp["expires"])}
    assert certs[0].dir_address == ("127.0.0.1", 7101)
    assert all(c.identity_key.bits == 3072 and c.signing_key.bits == 2048 for c in certs)
    assert certs[0].text == doc(SHADOW)[: len(certs[0].text)]


def test_claims_are_visible_before_verification() -> None:
    u = parse_authcerts(doc(SHADOW))[0]
    assert u.fingerprint.hex().upper() == "0B8997614EC647C1C6B6A044E2B5408F0B823FB0"
    assert u.signing_key_digest == u.dangerously_assume_verified().signing_key.fingerprint()
    assert not hasattr(u, "identity_key") and not hasattr(u, "document")


def test_chutney_certificates_verify() -> None:
    certs = parse_authcerts(doc(CHUTNEY))
    assert (
        len(certs) == expectations("testnet-chutney-2020")["expected_from_source_tests"]["n_certs"]
    )  # type: ignore[index]
    for c in certs:
        c.verify(now=_time("2020-08-07 12:42:40"))


def test_real_certificates_2010_to_2027_judged_at_a_fixed_time() -> None:
    certs = parse_authcerts(doc(ALL))
    assert (
        len(certs) == expectations("authcerts-2026")["expected_from_our_recomputation"]["n_certs"]
    )  # type: ignore[index]
    verified = [c.verify(now=None) for c in certs]  # all self-consistent and validly signed
    assert "77F15C774A523FBB0E49A44773A0B0D9EAF4F13A" in {
        c.signing_key_digest.hex().upper() for c in verified
    }
    now = calendar.timegm((2026, 1, 1, 0, 0, 0))
    outcome = {"ok": 0, "expired": 0, "early": 0}
    for c in certs:
        try:
            c.verify(now=now)
            outcome["ok"] += 1
        except ExpiredError:
            outcome["expired"] += 1
        except NotYetValidError:
            outcome["early"] += 1
    # From the dir-key-published/expires lines: 7 current, 8 expired, 2 not yet published.
    assert outcome == {"ok": 7, "expired": 8, "early": 2}
    # A tolerance of 30 days admits the certificate published on 2026-01-26.
    assert sum(1 for c in certs if c.validity.contains(now, Tolerance(before=30 * 86400))) == 9


def _tamper(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1
    return data.replace(old, new, 1)


def test_a_changed_byte_in_the_signed_part_fails() -> None:
    one = parse_authcerts(doc(SHADOW))[0].dangerously_assume_verified().text
    bad = _tamper(one, b"dir-address 127.0.0.1:7101", b"dir-address 127.0.0.1:7109")
    with pytest.raises(VerificationError, match="dir-key-certification"):
        parse_authcert(bad).verify(now=None)
    bad = _tamper(one, b"dir-key-expires 2001", b"dir-key-expires 2002")
    with pytest.raises(VerificationError, match="dir-key-certification"):
        parse_authcert(bad).verify(now=None)


def test_fingerprint_must_match_identity_key() -> None:
    one = parse_authcerts(doc(SHADOW))[0].dangerously_assume_verified().text
    bad = _tamper(one, b"fingerprint 0B89", b"fingerprint 0B88")
    with pytest.raises(VerificationError, match="fingerprint does not match"):
        parse_authcert(bad).verify(now=None)


def test_crosscert_must_be_made_by_the_signing_key() -> None:
    certs = [c.dangerously_assume_verified().text for c in parse_authcerts(doc(SHADOW))]
    cross = re.compile(
        rb"dir-key-crosscert\n-----BEGIN ID SIGNATURE-----\n[^-]*-----END ID SIGNATURE-----\n"
    )
    other = cross.search(certs[1])
    assert other is not None
    bad = cross.sub(other.group().replace(b"\\", b"\\\\"), certs[0])
    with pytest.raises(VerificationError, match="crosscert"):
        parse_authcert(bad).verify(now=None)


def test_build_round_trip_and_both_crosscert_tags() -> None:
    auth = authorities(1)[0]
    for tag in ("ID SIGNATURE", "SIGNATURE"):
        data = build_authcert(
            auth.identity,
            auth.signing,
            published=T0,
            expires=T0 + 86400,
            dir_address=("192.0.2.1", 80),
            crosscert_tag=tag,
        )
        cert = parse_authcert(data).verify(now=T0)
        assert cert == AuthCert(
            fingerprint=auth.fingerprint,
            identity_key=auth.identity.public,
            signing_key=auth.signing.public,
            published=T0,
            expires=T0 + 86400,
            dir_address=("192.0.2.1", 80),
            crosscert=cert.crosscert,
            certification=cert.certification,
            crosscert_tag=tag,
        )
        assert encode_authcert(cert) == data == cert.text
        assert f"-----BEGIN {tag}-----".encode() in data


@pytest.mark.parametrize("name", [SHADOW, CHUTNEY, ALL])
def test_real_certificates_reserialise_byte_for_byte(name: str) -> None:
    data = doc(name)
    assert b"".join(encode_authcert(c.verify(now=None)) for c in parse_authcerts(data)) == data


def test_keys_shorter_than_1024_bits_are_refused() -> None:
    small = RsaPrivateKey.generate(768, drbg(b"small"))
    big = authorities(1)[0].identity
    data = build_authcert(big, small, published=T0, expires=T0 + 1)
    with pytest.raises(VerificationError, match="signing key has only 768 bits"):
        parse_authcert(data).verify(now=None)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"dir-key-certificate-version 3", b"dir-key-certificate-version 4", "unsupported version"),
        (b"fingerprint 0B89", b"fingerprint 0Z89", "hex digits"),
        (b"dir-key-expires 2001-01-01", b"dir-key-expires 1999-01-01", "expires before"),
        (b"dir-key-published 2000-01-01", b"dir-key-published 2000-02-30", "bad publication"),
        (b"dir-address 127.0.0.1:7101", b"dir-address 127.0.0.1", "bad address"),
        (b"fingerprint", b"fingerprintx", "required item 'fingerprint' missing"),
        (b"dir-signing-key\n", b"dir-signing-key extra\n", "at most 0"),
        (b"-----BEGIN ID SIGNATURE-----", b"-----BEGIN OTHER-----", "END line does not match"),
        (b"MIIBigKCAYEA5CGtZq1u", b"MIIBiwKCAYEA5CGtZq1u", "bad RSA public key"),
    ],
)
def test_malformed_certificates(old: bytes, new: bytes, words: str) -> None:
    one = parse_authcerts(doc(SHADOW))[0].dangerously_assume_verified().text
    with pytest.raises(DocumentError, match=words):
        parse_authcert(_tamper(one, old, new))


def test_exactly_one_certificate() -> None:
    with pytest.raises(DocumentError, match="found 4"):
        parse_authcert(doc(SHADOW))
    with pytest.raises(DocumentError, match="found 0"):
        parse_authcert(b"")


def test_annotations_before_certificates_are_allowed() -> None:
    data = b"@source cache\n" + doc(SHADOW)
    assert len(parse_authcerts(data)) == 4
    with pytest.raises(DocumentError):
        parse_authcerts(b"stray 1\n" + doc(SHADOW))


def test_truncation_at_every_offset_is_a_document_error() -> None:
    one = parse_authcerts(doc(SHADOW))[0].dangerously_assume_verified().text
    for cut in range(1, len(one)):
        with pytest.raises(DocumentError):
            parse_authcert(one[:cut])


def _lines() -> list[bytes]:
    return doc(SHADOW).split(b"\n")[:40]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_lines()), max_size=40), st.binary(max_size=4), st.integers(0, 2000)
)
def test_mutated_certificates_parse_or_raise_document_error(
    lines: list[bytes], junk: bytes, pos: int
) -> None:
    data = b"\n".join(lines) + b"\n"
    data = data[:pos] + junk + data[pos:]
    try:
        for c in parse_authcerts(data):
            try:
                c.verify(now=SHADOW_NOW)
            except VerificationError:
                pass
    except DocumentError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_document_error(data: bytes) -> None:
    try:
        parse_authcerts(b"dir-key-certificate-version 3\n" + data)
    except DocumentError:
        pass
