"""v3 onion-service descriptors (rend-spec-v3 §2.4-2.5): the real descriptors with the inputs and
figures of tests/vectors/vectors/hsdesc_params.json, every verification step, client
authorization, the three layer parsers on their own, the build side."""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import drbg

from gotor.cells.linkspec import (
    LinkSpecEd25519Id,
    LinkSpecIPv4,
    LinkSpecIPv6,
    LinkSpecRsaId,
    LinkSpecUnrecognized,
)
from gotor.cli import main
from gotor.crypto.certs import CertType, Ed25519Cert, RsaEd25519CrossCert
from gotor.crypto.hs_index import time_period_number
from gotor.crypto.hs_keys import blind_public_key, subcredential
from gotor.crypto.hsdesc_crypto import auth_client_keys, decrypt_superencrypted
from gotor.crypto.onion_address import decode_onion_address, encode_onion_address
from gotor.crypto.primitives import ed25519_public, x25519, x25519_public
from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import DocumentError, LocalError, ProtocolError, VerificationError
from gotor.netdoc import hsdesc as hd_module
from gotor.netdoc.build_hsdesc import build_hsdesc, encode_inner_layer
from gotor.netdoc.checked import ExpiredError
from gotor.netdoc.fields import parse_time
from gotor.netdoc.hsdesc import (
    ClientAuthRequiredError,
    ClientNotAuthorizedError,
    HsDescKeys,
    parse_hsdesc,
)
from gotor.netdoc.hsdesc_inner import (
    FlowControl,
    InnerLayer,
    IntroPoint,
    PowParamsV1,
    parse_inner_layer,
)
from gotor.netdoc.hsdesc_middle import parse_middle_layer
from gotor.netdoc.hsdesc_outer import parse_hsdesc_outer
from gotor.netdoc.tokenize import format_item

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PARAMS = json.loads((VECTORS / "vectors" / "hsdesc_params.json").read_text())
ARTI1, STEM = PARAMS["descriptors"]
POW_V1, POW_EMPTY = PARAMS["inner_documents"]
ARTI1_TEXT = (VECTORS / ARTI1["file"]).read_bytes()
STEM_TEXT = (VECTORS / STEM["file"]).read_bytes()
STEM_OUTER = (VECTORS / "docs/hsdesc/stem-hidden_service_v3_outer_layer").read_bytes()
STEM_INNER = (VECTORS / "docs/hsdesc/stem-hidden_service_v3_inner_layer").read_bytes()
POW_V1_TEXT = (VECTORS / POW_V1["file"]).read_bytes()
POW_EMPTY_TEXT = (VECTORS / POW_EMPTY["file"]).read_bytes()


def _time(text: str) -> int:
    when = parse_time(*text.rstrip("Z").split("T"))
    assert when is not None
    return when


ARTI1_NOW = _time(ARTI1["inputs"]["check_outer_at_utc"])
ARTI1_KEYS = HsDescKeys(
    bytes.fromhex(ARTI1["inputs"]["blinded_public_key"]),
    bytes.fromhex(ARTI1["inputs"]["subcredential"]),
)
STEM_ADDRESS = STEM["inputs"]["onion_address"]
#: Inside the period whose blinded key signed stem's descriptor, before its cert expires.
STEM_NOW = _time("2017-08-13T20:00:00Z")


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


# --- the real descriptors ------------------------------------------------------


def test_arti_hsdesc1_with_the_given_blinded_key_and_subcredential() -> None:
    expected = ARTI1["expected_from_source_tests"]
    ours = ARTI1["expected_from_our_recomputation"]
    desc = parse_hsdesc(ARTI1_TEXT).verify(ARTI1_KEYS, now=ARTI1_NOW)
    assert desc.revision_counter == expected["revision_counter"]
    assert desc.lifetime == expected["lifetime_minutes"]
    assert len(desc.intro_points) == expected["n_intro_points"]
    assert desc.intro_points[0].onion_key.hex().upper() == expected["intro_point_0_ntor_onion_key"]
    assert desc.inner.intro_auth_required is expected["intro_auth_required"] is None
    assert desc.single_onion_service is expected["single_onion_service"] is False
    assert desc.signing_key.hex() == ours["descriptor_signing_key"]
    assert desc.blinded_key == ARTI1_KEYS.blinded_key and not desc.client_auth
    assert desc.inner.create2_formats == (2,)
    # The intro-point certificates expire an hour before the signing-key certificate.
    assert desc.expires == _time("2023-01-26T02:00:00Z")
    outer = parse_hsdesc(ARTI1_TEXT).outer
    assert outer.validity.not_after == _time(expected["signing_cert_expires_utc"])
    parse_hsdesc(ARTI1_TEXT).verify(ARTI1_KEYS, now=_time(ARTI1["inputs"]["check_inner_at_utc"]))
    spec = desc.intro_points[0].link_specifiers
    assert spec[0] == LinkSpecIPv4(ipaddress.IPv4Address("127.0.0.1"), 5003)
    assert isinstance(spec[1], LinkSpecRsaId) and isinstance(spec[2], LinkSpecEd25519Id)


def test_arti_hsdesc1_with_a_wrong_blinded_key_fails() -> None:
    assert ARTI1["expected_from_source_tests"]["parse_with_wrong_blinded_key_12x32_fails"]
    wrong = replace(ARTI1_KEYS, blinded_key=bytes([12]) * 32)
    with pytest.raises(VerificationError, match="blinded key"):
        parse_hsdesc(ARTI1_TEXT).verify(wrong, now=ARTI1_NOW)
    with pytest.raises(VerificationError, match="MAC"):  # right A', wrong subcredential
        parse_hsdesc(ARTI1_TEXT).verify(replace(ARTI1_KEYS, subcredential=bytes(32)), now=None)


def test_stem_descriptor_from_its_onion_address() -> None:
    expected = STEM["expected_from_source_tests"]
    ours = STEM["expected_from_our_recomputation"]
    keys = HsDescKeys.for_address(STEM_ADDRESS, now=STEM_NOW)
    assert keys.blinded_key.hex() == ours["blinded_public_key"]
    assert keys.subcredential.hex() == ours["subcredential"]
    identity = decode_onion_address(STEM_ADDRESS)
    assert identity.hex() == STEM["inputs"]["identity_public_key_derived"]
    assert HsDescKeys.for_service(identity, time_period_number(STEM_NOW)) == keys
    unverified = parse_hsdesc(STEM_TEXT)
    assert unverified.outer.claimed_blinded_key == keys.blinded_key
    assert unverified.revision_counter == expected["revision_counter"]
    desc = unverified.verify(keys, now=STEM_NOW)
    outer = unverified.outer.dangerously_assume_verified()
    assert outer.signature == _b64(expected["signature_b64"])
    assert outer.signing_key_cert.encoded == base64.b64decode(expected["signing_cert_b64"])
    assert outer.signing_key_cert.expiry == _time(ours["signing_cert_expires_utc"])
    assert desc.signing_key.hex() == ours["descriptor_signing_key"]
    assert (desc.revision_counter, desc.lifetime) == (42, expected["lifetime_minutes"])
    inner = desc.inner
    assert list(inner.create2_formats) == expected["inner_create2_formats"]
    assert list(inner.intro_auth_required or ()) == expected["inner_intro_auth_required"]
    assert inner.single_onion_service is expected["inner_single_onion_service"]
    assert len(inner.intro_points) == expected["n_intro_points"]
    first = inner.intro_points[0]
    assert first.link_specifiers == (
        LinkSpecRsaId(b"C" * 20),
        LinkSpecIPv4(ipaddress.IPv4Address("1.2.3.4"), 9001),
    )
    assert first.onion_key == base64.b64decode(expected["intro_point_0_onion_key_b64"])
    assert first.enc_key == base64.b64decode(expected["intro_point_0_enc_key_b64"])
    assert inner.intro_points[1].link_specifiers[1] == LinkSpecIPv6(
        ipaddress.IPv6Address("2600::1"), 9001
    )
    assert [p.legacy_key is not None for p in inner.intro_points] == [False, False, True, True]


def test_stem_descriptor_in_another_time_period_is_not_ours() -> None:
    keys = HsDescKeys.for_address(STEM_ADDRESS, now=STEM_NOW + 86400)
    with pytest.raises(VerificationError, match="blinded key"):
        parse_hsdesc(STEM_TEXT).verify(keys, now=None)


def test_time_checks() -> None:
    keys = HsDescKeys.for_address(STEM_ADDRESS, now=STEM_NOW)
    after_signing_cert = _time(STEM["expected_from_our_recomputation"]["signing_cert_expires_utc"])
    with pytest.raises(ExpiredError):
        parse_hsdesc(STEM_TEXT).verify(keys, now=after_signing_cert + 1)
    parse_hsdesc(STEM_TEXT).verify(keys, now=after_signing_cert + 1, tolerance=3600)
    parse_hsdesc(STEM_TEXT).verify(keys, now=None)
    # The intro-point certificates (2017-08-16 04:00) are judged by the same clock.
    signing_key = parse_hsdesc(STEM_TEXT).verify(keys, now=None).signing_key
    inner = parse_inner_layer(STEM_INNER)
    assert inner.validity.not_after == _time("2017-08-16T04:00:00Z")
    with pytest.raises(ExpiredError, match="introduction point"):
        inner.verify(signing_key=signing_key, now=_time("2017-08-16T04:00:01Z"))


def test_stem_middle_layer() -> None:
    expected = STEM["expected_from_source_tests"]
    middle = parse_middle_layer(STEM_OUTER)  # NUL padding and all
    assert middle.ephemeral_key == base64.b64decode(expected["outer_ephemeral_key_b64"])
    assert len(middle.auth_clients) == expected["outer_n_auth_clients"] == 16
    wanted = expected["outer_client_D0Bz0OlEMCg"]
    entry = next(c for c in middle.auth_clients if c.client_id == _b64("D0Bz0OlEMCg"))
    assert (entry.iv, entry.encrypted_cookie) == (_b64(wanted["iv"]), _b64(wanted["cookie"]))
    keys = HsDescKeys.for_address(STEM_ADDRESS, now=STEM_NOW)
    blob = parse_hsdesc_outer(STEM_TEXT).dangerously_assume_verified().superencrypted
    assert decrypt_superencrypted(blob, keys.blinded_key, keys.subcredential, 42) == STEM_OUTER


def test_stem_inner_layer_certificates() -> None:
    signing_key = bytes.fromhex(STEM["expected_from_our_recomputation"]["descriptor_signing_key"])
    unverified = parse_inner_layer(STEM_INNER)
    inner = unverified.verify(signing_key=signing_key, now=STEM_NOW)
    assert inner == unverified.dangerously_assume_verified()
    with pytest.raises(VerificationError, match="introduction point 1"):
        unverified.verify(signing_key=bytes(32), now=None)
    # The legacy cross-certificates are checked too (a changed bit in one's signature).
    old = b"kuaA+ldVLn1ITJ0qPttG+8B25U6pC3e7hOPm1WV9UqEABl60gKqbazI7"
    new = b"kuaA+ldVLn1ITJ0qPttG+8B25U6pC3e7hOPm1WV9UqEABl60gKqbazI8"
    assert old in STEM_INNER
    with pytest.raises(VerificationError, match="introduction point 3"):
        parse_inner_layer(STEM_INNER.replace(old, new)).verify(signing_key=signing_key, now=None)


def test_c_tor_inner_layer_with_pow_params() -> None:
    expected = POW_V1["expected_from_source_tests"]
    unverified = parse_inner_layer(POW_V1_TEXT)
    # Every certificate names the same signing key; they all verify under it.
    first_cert = re.findall(rb"-----BEGIN ED25519 CERT-----\n([^-]*)", POW_V1_TEXT)[0]
    signer = Ed25519Cert.parse(base64.b64decode(first_cert)).signed_with
    assert signer is not None
    inner = unverified.verify(signing_key=signer, now=expected["seed_expires_unix"])
    assert len(inner.pow_params) == expected["n_pow_params"] == 1
    pow_v1 = inner.pow_params[0]
    assert expected["pow_scheme"] == "v1"
    assert pow_v1 == PowParamsV1(
        bytes.fromhex(expected["seed"]), expected["suggested_effort"], expected["seed_expires_unix"]
    )
    assert inner.flow_control == FlowControl(frozenset({1, 2}), 31)
    assert len(inner.intro_points) == 3
    assert LinkSpecIPv6 in [type(s) for s in inner.intro_points[1].link_specifiers]
    # An unknown scheme on an extra line is ignored.
    assert expected["with_extra_unknown_scheme_line_'pow-params x-example'_still_1_known_param"]
    extra = POW_V1_TEXT.replace(b"pow-params v1", b"pow-params x-example 1 2\npow-params v1")
    assert parse_inner_layer(extra).dangerously_assume_verified().pow_params == (pow_v1,)


def test_pow_params_without_a_scheme_is_rejected() -> None:
    assert POW_EMPTY["expected_from_source_tests"]["parse"].startswith("error")
    with pytest.raises(DocumentError, match="pow-params"):
        parse_inner_layer(POW_EMPTY_TEXT)


_POW_LINE = re.findall(rb"(?m)^pow-params .*$", POW_V1_TEXT)[0]
_CERT_9 = b"-----BEGIN ED25519 CERT-----\nAQkAB0K6AS69"


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"pow-params v1 ", b"pow-params v1 AAAA ", "seed"),
        (b" 614 ", b" -1 ", "suggested effort"),
        (b"2024-04-11T05:15:37", b"2024-04-11 05:15:37", "expiration"),
        (_POW_LINE, _POW_LINE + b"\n" + _POW_LINE, "more than one"),
        (b"flow-control 1-2 31", b"flow-control 1-2 0", "sendme_inc"),
        (b"flow-control 1-2", b"flow-control 2-1", "range"),
        (b"create2-formats 2", b"create2-formats 3", "ntor"),
        (b"create2-formats 2", b"create2-formats x", "handshake type"),
        (b"create2-formats 2\n", b"", "create2-formats"),
        (b"flow-control 1-2 31\n", b"onion-key ntor AAAA\nflow-control 1-2 31\n", "onion-key"),
        (b"onion-key ntor Gg9s", b"onion-key x25519 Gg9s", "onion-key ntor"),
        (b"enc-key ntor sZDk", b"enc-key ntor AAAA\nenc-key ntor sZDk", "enc-key ntor"),
        (b"introduction-point AwAG", b"introduction-point AwAH", "link specifier"),
        (b"introduction-point AwAG", b"introduction-point !wAG", "base64"),
        (b"auth-key\n", b"auth-key 1\n", "auth-key"),
        (_CERT_9, _CERT_9.replace(b"AQkA", b"AQsA"), "type"),
    ],
)
def test_malformed_inner_layers(old: bytes, new: bytes, words: str) -> None:
    assert old in POW_V1_TEXT
    with pytest.raises(DocumentError, match=words):
        parse_inner_layer(POW_V1_TEXT.replace(old, new, 1))


def test_inner_layer_quirks_accepted() -> None:
    # No final NL (OnionBalance), unknown key types and unknown lines are fine.
    parse_inner_layer(POW_V1_TEXT.rstrip(b"\n"))
    text = POW_V1_TEXT.replace(b"onion-key ntor", b"onion-key x448 AAAA\nonion-key ntor", 1)
    text = text.replace(b"enc-key ntor", b"future-line\nenc-key ntor", 1)
    assert len(parse_inner_layer(text).dangerously_assume_verified().intro_points) == 3


def test_legacy_key_needs_its_cross_certificate() -> None:
    cut = re.sub(
        rb"legacy-key-cert\n-----BEGIN CROSSCERT-----\n[^-]*-----END CROSSCERT-----\n",
        b"",
        STEM_INNER,
        count=1,
    )
    with pytest.raises(DocumentError, match="together"):
        parse_inner_layer(cut)


def test_middle_layer_rules() -> None:
    text = STEM_OUTER.rstrip(b"\x00")
    assert not text.endswith(b"\n")  # C tor's missing final newline, as stem copies it
    for old, new, words in [
        (b"desc-auth-type x25519", b"desc-auth-type ed25519", "auth type"),
        (b"desc-auth-ephemeral-key WjZC", b"desc-auth-ephemeral-key WjZ", "X25519 key"),
        (b"auth-client JNil86N07AA", b"auth-client JNil86N07A", "client-id"),
        (b"encrypted\n", b"encrypted 1\nencrypted\n", "encrypted"),
    ]:
        with pytest.raises(DocumentError, match=words):
            parse_middle_layer(text.replace(old, new, 1))
    only_one = re.sub(rb"auth-client .*\n", b"", text, count=15)
    assert len(parse_middle_layer(only_one).auth_clients) == 1
    with pytest.raises(DocumentError, match="auth-client"):
        parse_middle_layer(re.sub(rb"auth-client .*\n", b"", text))


# --- the outer layer: tampering, truncation, rules --------------------------------


def test_every_changed_byte_in_the_signed_part_fails() -> None:
    keys = HsDescKeys.for_address(STEM_ADDRESS, now=STEM_NOW)
    end = STEM_TEXT.index(b"\nsignature ") + 1
    for i in range(0, end, 7):
        changed = bytearray(STEM_TEXT)
        changed[i] = ord("A") if STEM_TEXT[i] != ord("A") else ord("B")
        with pytest.raises(ProtocolError):
            parse_hsdesc(bytes(changed)).outer.verify(blinded_key=keys.blinded_key, now=None)


def test_a_changed_signature_fails() -> None:
    changed = ARTI1_TEXT.replace(b"signature 06pP", b"signature 06pQ")
    with pytest.raises(VerificationError, match="signature"):
        parse_hsdesc(changed).verify(ARTI1_KEYS, now=None)


def test_truncation_at_many_offsets_is_a_document_error() -> None:
    for cut in [*range(400), *range(400, len(ARTI1_TEXT) - 1, 97), len(ARTI1_TEXT) - 2]:
        with pytest.raises(DocumentError):
            parse_hsdesc(ARTI1_TEXT[:cut])


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"hs-descriptor 3", b"hs-descriptor 4", "version"),
        (b"descriptor-lifetime 180", b"descriptor-lifetime 29", "lifetime"),
        (b"descriptor-lifetime 180", b"descriptor-lifetime 721", "lifetime"),
        (b"revision-counter 19655750", b"revision-counter 18446744073709551616", "revision"),
        (b"revision-counter 19655750", b"revision-counter -1", "revision"),
        (b"signature 06pP", b"signature  06pP", "one space"),
        (b"signature 06pP", b"signature\t06pP", "one space"),
        (b"signature 06pP", b"signature 6pP", "signature"),
        (b"hs-descriptor 3\n", b"@type hs 1\nhs-descriptor 3\n", "hs-descriptor"),
        (b"revision-counter", b"superencrypted\nrevision-counter", "superencrypted"),
        (b"AQgABxkrAQrY", b"AQkABxkrAQrY", "type"),
    ],
)
def test_malformed_outer_layers(old: bytes, new: bytes, words: str) -> None:
    assert old in ARTI1_TEXT
    with pytest.raises(DocumentError, match=words):
        parse_hsdesc(ARTI1_TEXT.replace(old, new, 1))


def test_outer_layer_rules() -> None:
    with pytest.raises(DocumentError, match="max"):
        parse_hsdesc(ARTI1_TEXT, max_size=len(ARTI1_TEXT) - 1)
    unknown = ARTI1_TEXT.replace(b"revision-counter", b"x-future 1\nrevision-counter")
    assert parse_hsdesc_outer(unknown).revision_counter == 19655750
    # An unknown item is allowed, but it is signed: the signature no longer verifies.
    with pytest.raises(VerificationError, match="signature"):
        parse_hsdesc(unknown).verify(ARTI1_KEYS, now=None)
    # The certificate must name the blinded key (N_EXTENSIONS = 0 here).
    cert = re.search(rb"-----BEGIN ED25519 CERT-----\n([^-]*)", ARTI1_TEXT)
    assert cert
    raw = base64.b64decode(cert.group(1))
    bare = raw[:39] + b"\x00" + raw[-64:]
    b64 = base64.b64encode(bare)
    wrapped = b"".join(b64[k : k + 64] + b"\n" for k in range(0, len(b64), 64))
    no_ext = ARTI1_TEXT.replace(cert.group(1), wrapped)
    with pytest.raises(DocumentError, match="blinded key"):
        parse_hsdesc(no_ext)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_protocol_errors(data: bytes) -> None:
    for parse in (parse_hsdesc, parse_middle_layer, parse_inner_layer):
        try:
            parse(data)
        except ProtocolError:
            pass
    try:
        parse_hsdesc(b"hs-descriptor 3\n" + data)
    except ProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_line_mutations_of_each_layer_parse_or_raise_our_errors(data: st.DataObject) -> None:
    middle = STEM_OUTER.rstrip(b"\0")
    text = data.draw(st.sampled_from([STEM_INNER, POW_V1_TEXT, middle]))
    lines = text.split(b"\n")
    i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
    op = data.draw(st.sampled_from(["drop", "dup", "swap", "junk"]))
    if op == "drop":
        del lines[i]
    elif op == "dup":
        lines.insert(j, lines[i])
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i][:j] + data.draw(st.binary(max_size=5)) + lines[i][j:]
    mutated = b"\n".join(lines)
    try:
        if text is middle:
            parse_middle_layer(mutated)
        else:
            parse_inner_layer(mutated).verify(signing_key=bytes(32), now=None)
    except ProtocolError:
        pass


# --- the build side --------------------------------------------------------------

T0 = 1_700_000_000
IDENTITY = hashlib.sha256(b"service identity").digest()
SIGNING = hashlib.sha256(b"descriptor signing key").digest()
ADDRESS = encode_onion_address(ed25519_public(IDENTITY))
CERTS_EXPIRE = T0 + 3 * 86400
CERT_EXPIRY = CERTS_EXPIRE - CERTS_EXPIRE % 3600  # certificates count whole hours


def _point(i: int) -> IntroPoint:
    r = drbg(b"intro%d" % i)
    return IntroPoint(
        link_specifiers=(
            LinkSpecIPv4(ipaddress.IPv4Address(f"10.0.0.{i + 1}"), 9001),
            LinkSpecRsaId(r(20)),
            LinkSpecEd25519Id(r(32)),
            LinkSpecUnrecognized(99, b"future"),
        ),
        onion_key=x25519_public(r(32)),
        auth_key=ed25519_public(r(32)),
        enc_key=x25519_public(r(32)),
    )


INNER = InnerLayer(
    intro_points=tuple(_point(i) for i in range(3)),
    intro_auth_required=("ed25519",),
    single_onion_service=True,
    flow_control=FlowControl(frozenset({1, 2}), 31),
    pow_params=(PowParamsV1(bytes(range(32)), 614, T0 + 3600),),
)


def _build(inner: InnerLayer = INNER, clients: tuple[bytes, ...] = (), **kw: object) -> bytes:
    args: dict[str, object] = {
        "identity_seed": IDENTITY,
        "signing_seed": SIGNING,
        "period_num": time_period_number(T0),
        "revision_counter": 5,
        "certs_expire": CERTS_EXPIRE,
        "random_bytes": drbg(b"desc"),
        "client_public_keys": clients,
    }
    args.update(kw)
    return build_hsdesc(inner, **args)  # type: ignore[arg-type]


@functools.cache
def _keys() -> HsDescKeys:
    return HsDescKeys.for_address(ADDRESS, now=T0)


def _middle(data: bytes) -> bytes:
    outer = parse_hsdesc_outer(data).dangerously_assume_verified()
    keys = _keys()
    return decrypt_superencrypted(
        outer.superencrypted, keys.blinded_key, keys.subcredential, outer.revision_counter
    )


def test_build_parse_decrypt_round_trip() -> None:
    data = _build()
    desc = parse_hsdesc(data).verify(_keys(), now=T0)
    assert desc.inner == INNER
    assert (desc.revision_counter, desc.lifetime, desc.client_auth) == (5, 180, False)
    assert desc.signing_key == ed25519_public(SIGNING)
    identity = ed25519_public(IDENTITY)
    blinded = blind_public_key(identity, time_period_number(T0))
    assert desc.blinded_key == blinded == _keys().blinded_key
    assert _keys().subcredential == subcredential(identity, blinded)
    assert desc.expires == CERT_EXPIRY
    assert data == _build()  # deterministic
    middle = _middle(data)
    assert len(middle) == 10000 and len(parse_middle_layer(middle).auth_clients) == 16


def test_client_authorization() -> None:
    alice, bob, eve = (hashlib.sha256(n).digest() for n in (b"alice", b"bob", b"eve"))
    data = _build(clients=(x25519_public(alice), x25519_public(bob)))
    for secret in (alice, bob):
        desc = parse_hsdesc(data).verify(_keys(), now=T0, client_secret=secret)
        assert desc.inner == INNER and desc.client_auth
    with pytest.raises(ClientAuthRequiredError):
        parse_hsdesc(data).verify(_keys(), now=T0)
    with pytest.raises(ClientNotAuthorizedError):
        parse_hsdesc(data).verify(_keys(), now=T0, client_secret=eve)
    # A client key for a service that does not use client authorization is harmless.
    assert not parse_hsdesc(_build()).verify(_keys(), now=T0, client_secret=alice).client_auth
    # 17 clients: the auth-client lines are padded to the next multiple of 16.
    many = tuple(x25519_public(hashlib.sha256(b"c%d" % n).digest()) for n in range(17))
    assert len(parse_middle_layer(_middle(_build(clients=many))).auth_clients) == 32


def test_wrong_address_or_period_fails() -> None:
    data = _build()
    other = HsDescKeys.for_service(ed25519_public(SIGNING), time_period_number(T0))
    with pytest.raises(VerificationError, match="blinded key"):
        parse_hsdesc(data).verify(other, now=T0)
    with pytest.raises(VerificationError, match="blinded key"):
        parse_hsdesc(data).verify(HsDescKeys.for_address(ADDRESS, now=T0 + 86400), now=None)
    with pytest.raises(ProtocolError):
        HsDescKeys.for_address("not-an-onion-address.onion", now=T0)
    with pytest.raises(LocalError):
        HsDescKeys(bytes(31), bytes(32))


@pytest.mark.parametrize("n", [0, 1, 20])
def test_intro_point_counts(n: int) -> None:
    inner = InnerLayer(intro_points=tuple(_point(i) for i in range(n)))
    desc = parse_hsdesc(_build(inner)).verify(_keys(), now=T0)
    assert desc.inner == inner and desc.expires == CERT_EXPIRY


def test_more_than_twenty_intro_points_are_refused() -> None:
    twenty = InnerLayer(intro_points=tuple(_point(i) for i in range(20)))
    with pytest.raises(LocalError):
        encode_inner_layer(
            replace(twenty, intro_points=(*twenty.intro_points, _point(20))),
            signing_seed=SIGNING,
            certs_expire=T0,
        )
    text = encode_inner_layer(twenty, signing_seed=SIGNING, certs_expire=T0)
    first = text.index(b"introduction-point")
    extra = text[first : text.index(b"introduction-point", first + 1)]
    with pytest.raises(DocumentError, match="more than 20"):
        parse_inner_layer(text + extra)


def test_inner_certificates_must_be_by_the_outer_signing_key() -> None:
    other_inner = encode_inner_layer(INNER, signing_seed=IDENTITY, certs_expire=T0 + 86400)
    unverified = parse_inner_layer(other_inner)
    with pytest.raises(VerificationError, match="introduction point 1"):
        unverified.verify(signing_key=ed25519_public(SIGNING), now=None)
    assert unverified.verify(signing_key=ed25519_public(IDENTITY), now=T0) == INNER


def test_builder_refuses_what_the_parser_would_refuse() -> None:
    with pytest.raises(LocalError):
        _build(lifetime=10)
    with pytest.raises(LocalError):
        _build(replace(INNER, intro_auth_required=()))
    with pytest.raises(LocalError):
        _build(replace(INNER, flow_control=FlowControl(frozenset(), 31)))
    stem_points = parse_inner_layer(STEM_INNER).dangerously_assume_verified().intro_points
    legacy = replace(_point(0), legacy_key=stem_points[2].legacy_key)
    with pytest.raises(LocalError):
        _build(InnerLayer(intro_points=(legacy,)))


def test_built_layers_look_like_c_tor_layers() -> None:
    outer = parse_hsdesc_outer(_build()).dangerously_assume_verified()
    assert outer.signing_key_cert.cert_type == CertType.HS_BLINDED_ID_V_SIGNING
    middle = _middle(_build()).rstrip(b"\0")
    assert middle.startswith(b"desc-auth-type x25519\ndesc-auth-ephemeral-key ")
    assert middle.endswith(b"-----END MESSAGE-----")  # no final NL, as C tor writes it
    inner = encode_inner_layer(INNER, signing_seed=SIGNING, certs_expire=T0)
    assert inner.startswith(b"create2-formats 2\nintro-auth-required ed25519\n")
    assert b"\npow-params v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= 614 " in inner


_FLOW = st.builds(FlowControl, st.frozensets(st.integers(0, 63), min_size=1), st.integers(1, 255))
_POW = st.builds(
    lambda seed, effort, expires: (PowParamsV1(seed, effort, expires),),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**35),
)


@settings(max_examples=25, deadline=None)
@given(
    n_points=st.integers(0, 4),
    auth=st.sampled_from([None, ("ed25519",), ("ed25519", "future")]),
    single=st.booleans(),
    flow=st.one_of(st.none(), _FLOW),
    pow_params=st.one_of(st.just(()), _POW),
    revision=st.integers(0, 2**64 - 1),
    formats=st.lists(st.integers(0, 0xFFFF), max_size=3),
)
def test_round_trip_property(
    n_points: int,
    auth: tuple[str, ...] | None,
    single: bool,
    flow: FlowControl | None,
    pow_params: tuple[PowParamsV1, ...],
    revision: int,
    formats: list[int],
) -> None:
    inner = InnerLayer(
        intro_points=tuple(_point(i) for i in range(n_points)),
        create2_formats=(2, *formats),
        intro_auth_required=auth,
        single_onion_service=single,
        flow_control=flow,
        pow_params=pow_params,
    )
    desc = parse_hsdesc(_build(inner, revision_counter=revision)).verify(_keys(), now=T0)
    assert desc.inner == inner and desc.revision_counter == revision


# --- less common paths ------------------------------------------------------------


def test_unverified_descriptor_reports_its_claimed_window() -> None:
    unverified = parse_hsdesc(_build())
    assert unverified.validity.not_after == CERT_EXPIRY
    assert unverified.outer.claimed_blinded_key == _keys().blinded_key


def test_a_wrong_cookie_in_our_auth_client_entry() -> None:
    alice = hashlib.sha256(b"alice").digest()
    data = _build(clients=(x25519_public(alice),))
    outer = parse_hsdesc(data).outer.verify(blinded_key=_keys().blinded_key, now=None)
    middle = parse_middle_layer(_middle(data))
    client_id, _ = auth_client_keys(_keys().subcredential, x25519(alice, middle.ephemeral_key))
    tampered = tuple(
        replace(c, encrypted_cookie=bytes(16)) if c.client_id == client_id else c
        for c in middle.auth_clients
    )
    with pytest.raises(VerificationError, match="cookie"):
        hd_module._decrypt_inner(outer, replace(middle, auth_clients=tampered), _keys(), alice)


def _legacy_lines(rsa_seed: bytes, ed25519_key: bytes) -> bytes:
    key = RsaPrivateKey.generate(1024, drbg(rsa_seed))
    cert = RsaEd25519CrossCert.build(key, ed25519_key, (T0 + 86400) // 3600)
    return (
        format_item("legacy-key", (), ("RSA PUBLIC KEY", key.public.der))
        + format_item("legacy-key-cert", (), ("CROSSCERT", cert))
    ).encode()


def test_legacy_keys_are_cross_certified_for_the_signing_key() -> None:
    text = encode_inner_layer(INNER, signing_seed=SIGNING, certs_expire=CERTS_EXPIRE)
    good = text + _legacy_lines(b"legacy", ed25519_public(SIGNING))
    inner = parse_inner_layer(good).verify(signing_key=ed25519_public(SIGNING), now=T0)
    assert inner.intro_points[2].legacy_key is not None
    assert parse_inner_layer(good).validity.not_after == T0 + 86400 - (T0 + 86400) % 3600
    foreign = text + _legacy_lines(b"legacy", ed25519_public(IDENTITY))
    with pytest.raises(VerificationError, match="introduction point 3: legacy-key-cert"):
        parse_inner_layer(foreign).verify(signing_key=ed25519_public(SIGNING), now=None)
    cert_only = text + _legacy_lines(b"legacy", ed25519_public(SIGNING)).split(b"-----\n", 2)[2]
    with pytest.raises(DocumentError, match="together"):
        parse_inner_layer(cert_only)


def test_more_malformed_inner_items() -> None:
    text = encode_inner_layer(INNER, signing_seed=SIGNING, certs_expire=CERTS_EXPIRE)
    pow_line = re.findall(rb"(?m)^pow-params .*$", text)[0]
    with_object = pow_line + b"\n-----BEGIN X-----\nAAAA\n-----END X-----"
    with pytest.raises(DocumentError, match="no object"):
        parse_inner_layer(text.replace(pow_line, with_object))
    unknown_with_object = text.replace(
        pow_line, b"pow-params x\n-----BEGIN X-----\n-----END X-----"
    )
    assert parse_inner_layer(unknown_with_object).dangerously_assume_verified().pow_params == ()
    specs = re.findall(rb"(?m)^introduction-point (\S+)$", text)[0]
    for bad in (specs.rstrip(b"=") + b"=", specs + b"=="):  # wrong amount of padding
        with pytest.raises(DocumentError, match="base64"):
            parse_inner_layer(text.replace(specs, bad))
    parse_inner_layer(text.replace(specs, specs.rstrip(b"=")))  # no padding at all is fine
    with pytest.raises(DocumentError, match="non-canonical"):
        parse_inner_layer(text.replace(specs, b"AB"))  # 0x00 with non-zero unused bits
    # An auth-key certificate that does not name its signer.
    cert = Ed25519Cert.build(
        CertType.HS_IP_V_SIGNING, bytes(32), SIGNING, 1, include_signed_with=False
    )
    b64 = base64.b64encode(cert)
    wrapped = b"".join(b64[k : k + 64] + b"\n" for k in range(0, len(b64), 64))
    auth = re.search(rb"auth-key\n-----BEGIN ED25519 CERT-----\n([^-]*)", text)
    assert auth
    with pytest.raises(DocumentError, match="signing key"):
        parse_inner_layer(text.replace(auth.group(1), wrapped))


# --- gotor doc -------------------------------------------------------------------


def _gotor_doc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["doc", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_gotor_doc_hsdesc(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = str(VECTORS / STEM["file"])
    code, out = _gotor_doc(
        capsys, path, "--onion-address", STEM_ADDRESS, "--now", "2017-08-13T20:00:00"
    )
    assert code == 0 and out["type"] == "hsdesc" and out["verified"]
    assert (out["revision_counter"], out["intro_points"], out["single_onion_service"]) == (
        42,
        4,
        True,
    )
    code, out = _gotor_doc(
        capsys, path, "--onion-address", STEM_ADDRESS, "--now", "2017-08-14T00:00:00"
    )
    assert code == 4 and out["in_window"] is False
    code, out = _gotor_doc(capsys, path)  # no address: the claims, not verified
    assert code == 3 and out["revision_counter"] == 42 and "onion-address" in str(out["problems"])
    other = encode_onion_address(ed25519_public(IDENTITY))
    code, out = _gotor_doc(capsys, path, "--onion-address", other)
    assert code == 3 and "blinded key" in str(out["problems"])
    built = tmp_path / "built"
    built.write_bytes(_build())
    code, out = _gotor_doc(capsys, str(built), "--onion-address", ADDRESS)
    assert code == 0 and out["intro_points"] == 3 and out["pow_params"] == ["v1 effort 614"]
    assert main(["doc", path, "--onion-address", "nonsense.onion"]) == 1
    assert "bad --onion-address" in capsys.readouterr().err
