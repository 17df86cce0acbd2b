"""Server descriptors (dir-spec §2.1.1) and full exit policies: real descriptors with their
recorded figures, every check of verify(), the join with an ns consensus, the build side."""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import itertools
import json
import pathlib
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import DOCS, SHADOW_NOW, doc, drbg, expectations

from gotor.cli import main
from gotor.crypto.certs import CertType
from gotor.crypto.hs_keys import expanded_public_key
from gotor.crypto.primitives import (
    ed25519_sign,
    sha1,
    sha256,
    x25519_public,
    x25519_public_to_ed25519,
)
from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import DocumentError, LocalError, ProtocolError, VerificationError
from gotor.netdoc.build_routerdesc import (
    RelayKeys,
    build_cert_expanded,
    build_router_descriptor,
    ntor_signing_key,
)
from gotor.netdoc.checked import ExpiredError, NotYetValidError
from gotor.netdoc.consensus import parse_consensus
from gotor.netdoc.exitpolicy import ExitPolicy, PolicyRule
from gotor.netdoc.fields import parse_time
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols
from gotor.netdoc.routerdesc import (
    ED25519_SIG_PREFIX,
    RouterBandwidth,
    RouterInfo,
    parse_router_descriptor,
    parse_router_descriptors,
)
from gotor.netdoc.tokenize import tokenize

AKKA = "server-descriptors/arti-routerdesc1-Akka.txt"
DESTINY = "server-descriptors/stem-server_descriptor_with_ed25519"
SHADOW = "testnet-arti-shadow/cached-descriptors.new"
T0 = 1_700_000_000


def _time(text: str) -> int:
    """``2022-11-14T19:58:52Z`` or ``2022-11-14 19:58:52`` as POSIX seconds."""
    when = parse_time(*re.split("[T ]", text.rstrip("Z")))
    assert when is not None
    return when


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


# --- real descriptors --------------------------------------------------------


def test_akka_matches_the_recorded_figures() -> None:
    exp = expectations("routerdesc-akka")
    src, ours = exp["expected_from_source_tests"], exp["expected_from_our_recomputation"]  # type: ignore[index]
    d = parse_router_descriptor(doc(AKKA)).verify(now=_time(src["published"]))
    info = d.info
    assert (info.nickname, info.or_port, info.dir_port) == (src["nickname"], src["orport"], 0)
    assert info.uptime == src["uptime"]
    assert [f.lower() for f in info.family] == src["family"]
    assert "$" + d.fingerprint.hex() == src["rsa_identity"]
    assert d.ed25519_identity == _b64(src["ed_identity_b64"])
    assert info.protocols == Protocols.parse(src["protocols"])
    assert d.ntor_onion_key.hex() == src["ntor_onion_key_hex"]
    assert info.published == _time(src["published"])
    or_ports = [f"{info.address}:{info.or_port}"] + [f"[{a}]:{p}" for a, p in info.or_addresses]
    assert or_ports == src["or_ports"]
    assert base64.b64encode(d.digest).decode().rstrip("=") == ours["descriptor_sha1_digest_b64"]
    assert info.hidden_service_dir and info.tunnelled_dir_server and not info.caches_extra_info
    assert info.contact == "Alexander Faeroey <ahf@0x90.dk> (0x61A208E16E7CB435)"
    assert info.bandwidth == RouterBandwidth(1073741824, 1073741824, 61224922)
    assert info.exit_policy == ExitPolicy.reject_all()
    assert d.onion_key is not None and d.onion_key.bits == 1024
    assert d.text + b"\n" == doc(AKKA) and d.annotations == ()  # a trailing blank line


def test_destiny_matches_the_recorded_figures() -> None:
    exp = expectations("routerdesc-destiny")
    src, ours = exp["expected_from_source_tests"], exp["expected_from_our_recomputation"]  # type: ignore[index]
    d = parse_router_descriptor(doc(DESTINY)).verify(now=_time(src["published"]))
    info = d.info
    assert d.annotations == (("@type", "server-descriptor 1.0"),)
    assert d.fingerprint.hex().upper() == src["fingerprint"]
    assert (info.nickname, info.address) == (src["nickname"], src["address"])
    assert (info.or_port, info.dir_port) == (src["or_port"], src["dir_port"])
    assert d.ed25519_identity == _b64(src["ed25519_master_key_b64"])
    assert d.ed25519_signature == _b64(src["ed25519_signature_b64"])
    assert info.platform == src["platform"] and info.uptime == src["uptime"]
    assert info.published == _time(src["published"])
    assert list(info.family) == src["family"]
    cert, want = d.identity_cert, src["identity_cert"]
    assert (cert.cert_type, cert.key_type, len(cert.extensions)) == (
        want["type"],
        want["key_type"],
        want["n_extensions"],
    )
    assert cert.extensions[0].ext_type == want["extension_type"]
    assert cert.expiry == _time(want["expiration"])
    assert base64.b64encode(d.digest).decode().rstrip("=") == ours["descriptor_sha1_digest_b64"]
    # The 2015 descriptor predates "proto"; its obsolete "protocols" line is ignored.
    assert info.protocols is None
    # dir-spec: the digest starts at "router", after the annotation.
    assert d.digest == sha1(doc(DESTINY)[28 : doc(DESTINY).index(b"router-signature\n") + 17])


def test_destiny_exit_policy() -> None:
    info = parse_router_descriptor(doc(DESTINY)).verify(now=None).info
    rules = info.exit_policy.rules
    assert len(rules) == 19 and str(rules[0]) == "reject 0.0.0.0/8:*"
    assert rules[-1] == PolicyRule(True, None, 0)
    assert info.allows_exit("8.8.8.8", 443) and info.allows_exit("8.8.8.8", 80)
    for addr, port in [("8.8.8.8", 25), ("10.1.2.3", 80), ("94.242.246.23", 443), ("1.1.1.1", 0)]:
        assert not info.allows_exit(addr, port)
    assert info.ipv6_policy == PortPolicy.parse("reject 25,465,587,10000,14464")
    assert info.allows_exit("2001:db8::1", 80) and not info.allows_exit("2001:db8::1", 25)


def test_shadow_network_descriptors_all_verify_and_join_the_consensus() -> None:
    exp = expectations("testnet-shadow-set")
    ours = exp["expected_from_our_recomputation"]["cached-descriptors.new"]  # type: ignore[index]
    descs = [u.verify(now=SHADOW_NOW) for u in parse_router_descriptors(doc(SHADOW))]
    assert len(descs) == ours["n_router_descriptors"] == 20
    first = descs[0]
    assert (first.nickname, first.info.address, first.info.or_port, first.info.dir_port) == (
        "test002a",
        "127.0.0.1",
        5102,
        7102,
    )
    assert first.fingerprint.hex().upper() == "257D06F0360BB2246388724F109EC0895A1D41FB"
    assert sorted({d.nickname for d in descs}) == ours["nicknames"]
    assert b"".join(d.text for d in descs) == doc(SHADOW)
    consensus = parse_consensus(doc("testnet-arti-shadow/cached-consensus"))
    routers = consensus.dangerously_assume_verified().routers
    by_digest = {d.digest: d for d in descs}
    joined = [(rs, by_digest[rs.descriptor_digest]) for rs in routers]  # every r line resolves
    assert len(joined) == ours["n_whose_sha1_digest_is_listed_in_ns_consensus"] == 7
    for rs, d in joined:
        assert (rs.identity, rs.nickname, rs.published) == (
            d.fingerprint,
            d.nickname,
            d.info.published,
        )
        assert (rs.address, rs.or_port, rs.dir_port) == (
            d.info.address,
            d.info.or_port,
            d.info.dir_port,
        )


def test_shadow_extra_info_digests_point_at_the_extra_info_documents() -> None:
    descs = [u.verify(now=None) for u in parse_router_descriptors(doc(SHADOW))]
    data = doc("testnet-arti-shadow/cached-extrainfo.new")
    starts = [m.start() for m in re.finditer(rb"(?m)^extra-info ", data)] + [len(data)]
    sha1s, sha256s = set(), set()
    for a, b in itertools.pairwise(starts):
        one = data[a:b]
        sha1s.add(sha1(one[: one.index(b"\nrouter-signature\n") + 18]))
        sha256s.add(sha256(one))
    assert len(sha1s) == 20
    assert {d.info.extra_info_digest for d in descs} == sha1s
    assert {d.info.extra_info_sha256 for d in descs} == sha256s


def test_claims_before_verification() -> None:
    u = parse_router_descriptors(doc(SHADOW))[0]
    d = u.verify(now=None)
    assert u.digest == d.digest and u.fingerprint == d.fingerprint
    assert u.validity == d.validity
    assert not hasattr(u, "info")


def test_validity_window() -> None:
    u = parse_router_descriptor(doc(AKKA))
    published = _time("2022-11-14T19:58:52Z")
    assert u.validity.not_before == published - 12 * 3600
    assert u.validity.not_after == published + 5 * 86400  # before the certificates expire
    u.verify(now=published - 12 * 3600)
    with pytest.raises(NotYetValidError):
        u.verify(now=published - 12 * 3600 - 1)
    with pytest.raises(ExpiredError):
        u.verify(now=published + 5 * 86400 + 1)
    u.verify(now=published + 5 * 86400 + 1, tolerance=60)
    # The shadow certificates expire on 2000-01-29 and 2000-01-31: the window ends first.
    shadow = parse_router_descriptors(doc(SHADOW))[0]
    assert shadow.validity.not_after == _time("2000-01-06T00:00:06Z")


# --- tampering, truncation, arbitrary input -----------------------------------


@pytest.mark.parametrize("name", [AKKA, DESTINY])
def test_every_changed_byte_in_the_signed_part_fails(name: str) -> None:
    data = doc(name)
    start = data.index(b"router ")
    end = data.index(b"router-signature\n") + len(b"router-signature\n")
    for i in range(start, end, 3):
        changed = bytearray(data)
        changed[i] = ord("A") if data[i] != ord("A") else ord("B")
        with pytest.raises(ProtocolError):
            parse_router_descriptor(bytes(changed)).verify(now=None)


def test_a_changed_signature_fails_and_says_which() -> None:
    data = doc(AKKA)
    for old, new, words in [
        (b"router-sig-ed25519 Ga9G", b"router-sig-ed25519 Gb9G", "router-sig-ed25519"),
        (
            b"-----BEGIN SIGNATURE-----\nmIqh",
            b"-----BEGIN SIGNATURE-----\nmIqi",
            "router-signature",
        ),
    ]:
        with pytest.raises(VerificationError, match=words):
            parse_router_descriptor(data.replace(old, new)).verify(now=None)


def test_truncation_at_every_offset_is_a_document_error() -> None:
    data = doc(AKKA)
    for cut in range(len(data) - 1):
        with pytest.raises(DocumentError):
            parse_router_descriptor(data[:cut])


def _lines() -> list[bytes]:
    return doc(DESTINY).split(b"\n")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_line_mutations_parse_or_raise_our_errors(data: st.DataObject) -> None:
    lines = _lines()
    i = data.draw(st.integers(0, len(lines) - 1))
    op = data.draw(st.sampled_from(["drop", "dup", "swap", "junk"]))
    j = data.draw(st.integers(0, len(lines) - 1))
    if op == "drop":
        del lines[i]
    elif op == "dup":
        lines.insert(j, lines[i])
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = lines[i][:j] + data.draw(st.binary(max_size=6)) + lines[i][j:]
    try:
        for u in parse_router_descriptors(b"\n".join(lines)):
            u.verify(now=None)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_document_error(data: bytes) -> None:
    for prefix in (b"", b"router a 1.2.3.4 1 0 0\n"):
        try:
            parse_router_descriptors(prefix + data)
        except DocumentError:
            pass


# --- the build side, and each check in isolation -------------------------------


@functools.cache
def _keys(tap: bool = True) -> RelayKeys:
    return RelayKeys.generate(drbg(b"relay-%d" % tap), tap=tap)


def _info(**changes: object) -> RouterInfo:
    info = RouterInfo(
        nickname="simRelay1",
        address="10.0.0.1",
        or_port=9001,
        dir_port=9030,
        published=T0,
        bandwidth=RouterBandwidth(1_000_000, 2_000_000, 500_000),
        platform="Tor 0.4.8.10 on Linux",
        protocols=Protocols.parse("Cons=1-2 Desc=1-2 Link=1-5 Microdesc=1-2 Relay=1-4"),
        uptime=3600,
        exit_policy=ExitPolicy.parse(
            ["reject 10.0.0.0/255.0.0.0:*", "accept *:80-443", "reject *:*"]
        ),
        ipv6_policy=PortPolicy.parse("accept 80,443"),
        family=("$" + "AB" * 20, "otherRelay"),
        or_addresses=(("2001:db8::1", 9001),),
        contact="sim <ops@example.org>",
        hidden_service_dir=True,
        tunnelled_dir_server=True,
        caches_extra_info=True,
        extra_info_digest=bytes(range(20)),
        extra_info_sha256=bytes(range(32)),
        overload_general=T0 - 3600,
        bridge_distribution="any",
        hibernating=True,
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def _build(info: RouterInfo | None = None, keys: RelayKeys | None = None) -> bytes:
    return build_router_descriptor(info or _info(), keys or _keys(), certs_expire=T0 + 30 * 86400)


@pytest.mark.parametrize("tap", [True, False])
def test_build_parse_verify_round_trip(tap: bool) -> None:
    keys = _keys(tap)
    info = _info()
    d = parse_router_descriptor(_build(info, keys)).verify(now=T0)
    assert d.info == info
    assert d.fingerprint == keys.rsa_identity.public.fingerprint()
    assert d.ed25519_identity == keys.ed25519_identity
    assert d.ntor_onion_key == keys.ntor_public
    assert (d.onion_key is None) == (not tap)
    assert d.identity_cert.expiry == T0 + 30 * 86400 - (T0 + 30 * 86400) % 3600


def test_minimal_descriptor_round_trip() -> None:
    info = RouterInfo("m", "192.0.2.1", 443, T0, RouterBandwidth(1, 1, 1))
    d = parse_router_descriptor(_build(info)).verify(now=T0)
    assert d.info == info and not d.info.allows_exit("8.8.8.8", 80)
    sha1_only = replace(info, extra_info_digest=bytes(range(20)), platform="")
    assert parse_router_descriptor(_build(sha1_only)).verify(now=T0).info == sha1_only


def test_build_writes_items_in_c_tor_order() -> None:
    def keywords(data: bytes) -> list[str]:
        return [i.keyword for i in tokenize(data)]

    akka = parse_router_descriptor(doc(AKKA)).verify(now=None).info
    # The same optional items as Akka (a relay with an RSA onion key).
    info = replace(
        akka,
        exit_policy=ExitPolicy.reject_all(),
        family=akka.family,
        extra_info_sha256=akka.extra_info_sha256,
    )
    assert keywords(_build(info)) == keywords(doc(AKKA))
    shadow = parse_router_descriptors(doc(SHADOW))[0].verify(now=None)
    assert keywords(_build(shadow.info)) == keywords(shadow.text)


def test_build_is_deterministic() -> None:
    assert _build() == _build()


def test_ntor_signing_key_matches_the_x25519_key() -> None:
    for n in range(8):
        secret = hashlib.sha256(b"ntor%d" % n).digest()
        expanded, bit = ntor_signing_key(secret)
        assert x25519_public_to_ed25519(x25519_public(secret), bit) == expanded_public_key(expanded)
    with pytest.raises(ProtocolError):
        x25519_public_to_ed25519((2**255 - 20).to_bytes(32, "little"), 0)  # u = -1


def _resign(text: bytes, keys: RelayKeys) -> bytes:
    """Re-make both signatures of ``text`` (a descriptor edited after building)."""
    ed_at = text.index(b"router-sig-ed25519 ") + len(b"router-sig-ed25519 ")
    body = text[:ed_at]
    sig = ed25519_sign(keys.signing_seed, sha256(ED25519_SIG_PREFIX + body))
    body += base64.b64encode(sig).rstrip(b"=") + b"\nrouter-signature\n"
    rsa = base64.b64encode(keys.rsa_identity.sign_digest(sha1(body))).decode()
    lines = "".join(rsa[i : i + 64] + "\n" for i in range(0, len(rsa), 64))
    return body + f"-----BEGIN SIGNATURE-----\n{lines}-----END SIGNATURE-----\n".encode()


def _edit(old: bytes, new: bytes) -> bytes:
    data = _build()
    assert old in data
    return _resign(data.replace(old, new, 1), _keys())


def test_resigning_an_unchanged_descriptor_verifies() -> None:
    parse_router_descriptor(_resign(_build(), _keys())).verify(now=T0)


def test_master_key_must_be_the_identity_certificate_signer() -> None:
    other = base64.b64encode(_keys(False).ed25519_identity).rstrip(b"=")
    data = _edit(b"master-key-ed25519 ", b"master-key-ed25519 " + other + b"\nx-")
    with pytest.raises(VerificationError, match="identity-ed25519"):
        parse_router_descriptor(data).verify(now=None)


def test_ntor_crosscert_sign_bit_and_key_are_checked() -> None:
    _, bit = ntor_signing_key(_keys().ntor_secret)
    flipped = _edit(
        b"ntor-onion-key-crosscert %d" % bit, b"ntor-onion-key-crosscert %d" % (1 - bit)
    )
    with pytest.raises(VerificationError, match="ntor-onion-key-crosscert"):
        parse_router_descriptor(flipped).verify(now=None)
    other = base64.b64encode(x25519_public(bytes(range(32)))).rstrip(b"=")
    data = _build()
    ntor = re.search(rb"(?m)^ntor-onion-key (\S+)$", data)
    assert ntor
    swapped = _resign(data.replace(ntor.group(0), b"ntor-onion-key " + other), _keys())
    with pytest.raises(VerificationError, match="ntor-onion-key-crosscert"):
        parse_router_descriptor(swapped).verify(now=None)


def test_onion_key_crosscert_is_checked() -> None:
    keys = _keys()
    other = RelayKeys(
        keys.rsa_identity, bytes(32), keys.signing_seed, keys.ntor_secret, keys.onion_key
    )
    # A crosscert made for another master key.
    foreign = re.search(
        rb"onion-key-crosscert\n-----BEGIN CROSSCERT-----\n[^-]*", _build(keys=other)
    )
    ours = re.search(rb"onion-key-crosscert\n-----BEGIN CROSSCERT-----\n[^-]*", _build())
    assert foreign and ours
    data = _resign(_build().replace(ours.group(0), foreign.group(0)), keys)
    with pytest.raises(VerificationError, match="onion-key-crosscert"):
        parse_router_descriptor(data).verify(now=None)


def test_rsa_keys_must_be_1024_bits() -> None:
    keys = _keys()
    big = RsaPrivateKey.generate(1536, drbg(b"big"))
    for identity, onion in ((big, keys.onion_key), (keys.rsa_identity, big)):
        odd = RelayKeys(identity, keys.master_seed, keys.signing_seed, keys.ntor_secret, onion)
        with pytest.raises(VerificationError, match="1024"):
            parse_router_descriptor(_build(keys=odd)).verify(now=None)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"fingerprint ", b"fingerprint 0000 ", "fingerprint"),
        (
            b"router simRelay1 10.0.0.1 9001 0 9030",
            b"router sim_Relay 10.0.0.1 9001 0 9030",
            "nickname",
        ),
        (b"router simRelay1 10.0.0.1", b"router simRelay1 10.0.0.01", "IPv4"),
        (b" 9001 0 9030\n", b" 90010 0 9030\n", "ORPort"),
        (b"bandwidth 1000000", b"bandwidth -1", "bandwidth-avg"),
        (b"hibernating 1", b"hibernating yes", "0 or 1"),
        (b"reject 10.0.0.0/8:*", b"reject 10.0.0.0/255.0.255.0:*", "non-contiguous"),
        (b"accept *:80-443", b"accept *:443-80", "port range"),
        (b"ipv6-policy accept 80,443", b"ipv6-policy accept 443,80", "ipv6-policy"),
        (b"proto Cons", b"proto =Cons", "proto"),
        (b"or-address [2001:db8::1]:9001", b"or-address [2001:db8::1]", "or-address"),
        (b"extra-info-digest 00", b"extra-info-digest 0", "extra-info"),
        (b"ntor-onion-key-crosscert ", b"ntor-onion-key-crosscert 2", "0 or 1"),
        (b"uptime 3600", b"uptime -5", "uptime"),
        (b"router-sig-ed25519 ", b"router-sig-ed25519\t", "single space"),
        (b"identity-ed25519\n", b"platform x\nidentity-ed25519\n", "platform"),
        (b"reject *:*\n", b"", ""),  # still has other rules
    ],
)
def test_malformed_descriptors(old: bytes, new: bytes, words: str) -> None:
    data = _build().replace(old, new, 1)
    if not words:
        parse_router_descriptor(data)
        return
    with pytest.raises(DocumentError, match=re.escape(words)):
        parse_router_descriptor(data)


def test_structural_rules() -> None:
    data = _build()
    no_policy = re.sub(rb"(?m)^(accept|reject) .*\n", b"", data)
    with pytest.raises(DocumentError, match="accept/reject"):
        parse_router_descriptor(no_policy)
    onion_only = re.sub(
        rb"onion-key-crosscert\n-----BEGIN CROSSCERT-----\n[^-]*-----END CROSSCERT-----\n",
        b"",
        data,
    )
    with pytest.raises(DocumentError, match="together"):
        parse_router_descriptor(onion_only)
    with pytest.raises(DocumentError, match="second item"):
        parse_router_descriptor(
            data.replace(b"identity-ed25519\n", b"uptime 1\nidentity-ed25519\n").replace(
                b"uptime 3600\n", b""
            )
        )
    sig_line = re.search(rb"(?m)^router-sig-ed25519 .*\n", data)
    assert sig_line
    moved = data.replace(sig_line.group(0), b"").replace(b"proto ", sig_line.group(0) + b"proto ")
    with pytest.raises(DocumentError):
        parse_router_descriptor(moved)
    with pytest.raises(DocumentError, match="expected one"):
        parse_router_descriptor(data + data)
    assert (
        len(
            parse_router_descriptors(
                b"@downloaded-at 2020-01-01 00:00:00\n" + data + b"\n\n" + data
            )
        )
        == 2
    )
    with pytest.raises(DocumentError):
        parse_router_descriptors(b"uptime 5\n" + data)


def test_signatures_must_close_the_descriptor_in_order() -> None:
    data = _build()
    ed = re.search(rb"(?m)^router-sig-ed25519 .*\n", data)
    assert ed
    rsa_at = data.index(b"router-signature\n")
    swapped = data[: ed.start()] + data[rsa_at:] + ed.group(0)
    with pytest.raises(DocumentError, match="immediately before"):
        parse_router_descriptor(swapped)


def test_ntor_crosscert_must_certify_the_master_key() -> None:
    keys = _keys()
    expanded, bit = ntor_signing_key(keys.ntor_secret)
    hours = (T0 + 86400) // 3600
    cert = build_cert_expanded(
        CertType.NTOR_CC_IDENTITY, bytes(32), expanded, hours, include_signed_with=False
    )
    data = _build()
    old = re.search(rb"ntor-onion-key-crosscert \d\n-----BEGIN ED25519 CERT-----\n[^-]*", data)
    assert old
    b64 = base64.b64encode(cert)
    new = b"ntor-onion-key-crosscert %d\n-----BEGIN ED25519 CERT-----\n" % bit + b"".join(
        b64[k : k + 64] + b"\n" for k in range(0, len(b64), 64)
    )
    with pytest.raises(VerificationError, match="does not certify the master key"):
        parse_router_descriptor(_resign(data.replace(old.group(0), new), keys)).verify(now=None)


def test_builder_refuses_what_the_parser_would_refuse() -> None:
    with pytest.raises(LocalError):
        ntor_signing_key(bytes(31))
    with pytest.raises(LocalError, match="single-spaced"):
        _build(_info(contact="two  spaces"))
    with pytest.raises(LocalError, match="exit policy"):
        _build(_info(exit_policy=ExitPolicy(())))


def test_unknown_items_are_ignored_but_signed() -> None:
    data = _edit(b"tunnelled-dir-server\n", b"tunnelled-dir-server\nfuture-item 1 2\n")
    parse_router_descriptor(data).verify(now=T0)


# --- exit policies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "canonical"),
    [
        ("accept *:*", "accept *:*"),
        ("reject *:1-65535", "reject *:*"),
        ("reject 1.2.3.4:25", "reject 1.2.3.4:25"),
        ("reject 1.2.3.4/32:25", "reject 1.2.3.4:25"),
        ("reject 10.0.0.0/255.0.0.0:*", "reject 10.0.0.0/8:*"),
        ("accept 94.242.246.23/24:80-81", "accept 94.242.246.23/24:80-81"),
        ("reject [2001:db8::]/32:*", "reject [2001:db8::]/32:*"),
        ("reject [::1]:0", "reject [::1]:0"),
    ],
)
def test_policy_rules_parse_and_format(line: str, canonical: str) -> None:
    rule = PolicyRule.parse(*line.split(" "))
    assert str(rule) == canonical
    assert PolicyRule.parse(*canonical.split(" ")) == rule


@pytest.mark.parametrize(
    "line",
    [
        "allow *:*",
        "accept *",
        "accept 1.2.3:80",
        "accept 1.2.3.4/33:80",
        "accept 1.2.3.256:80",
        "accept 01.2.3.4:80",
        "accept [::1:80",
        "accept [1.2.3.4]:80",
        "accept *:65536",
        "accept *:80-",
        "accept *:+80",
        "accept 1.2.3.4/255.255.0.255:*",
        "accept [::]/129:*",
        "accept 1.2.3.4/255.255.255.256:*",
    ],
)
def test_malformed_policy_rules(line: str) -> None:
    with pytest.raises(ProtocolError):
        PolicyRule.parse(*line.split(" ", 1))


def test_policy_evaluation() -> None:
    policy = ExitPolicy.parse(
        ["reject 10.0.0.0/8:*", "accept 10.1.0.0/16:80", "reject [2001:db8::]/32:*", "accept *:80"]
    )
    assert not policy.allows("10.1.2.3", 80)  # first match wins
    assert policy.allows("8.8.8.8", 80)
    assert policy.allows("8.8.8.8", 22)  # no rule matches: accept (dir-spec §2.1.1)
    assert not policy.allows("2001:db8::5", 80)
    assert policy.allows(ipaddress.ip_address("2001:db9::5"), 80)  # "*" is IPv4 only
    assert not policy.allows("8.8.8.8", 0)
    with pytest.raises(LocalError):
        policy.allows("example.com", 80)
    assert not ExitPolicy.reject_all().allows("1.1.1.1", 443)
    assert ExitPolicy.accept_all().allows("1.1.1.1", 443)
    assert ExitPolicy.parse(policy.lines()) == policy
    with pytest.raises(ValueError):
        PolicyRule(True, None, 3)
    with pytest.raises(ValueError):
        PolicyRule(True, None, 0, (80, 79))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789./:*-[]abcdef", max_size=30))
def test_arbitrary_patterns_parse_or_raise_protocol_error(pattern: str) -> None:
    try:
        rule = PolicyRule.parse("accept", pattern)
    except ProtocolError:
        return
    assert PolicyRule.parse("accept", rule.pattern()) == rule


# --- gotor doc -------------------------------------------------------------------


def _gotor_doc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["doc", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_gotor_doc_server_descriptors(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    path = str(DOCS / SHADOW)
    code, out = _gotor_doc(capsys, path, "--now", "2000-01-01T00:02:40")
    assert code == 0 and out["type"] == "server-descriptor" and out["descriptors"] == 20
    assert out["signatures"]["valid"] == 20  # type: ignore[index]
    routers = out["routers"]
    assert isinstance(routers, list) and routers[0]["nickname"] == "test002a"
    code, out = _gotor_doc(capsys, str(DOCS / DESTINY))  # after its @type annotation
    assert code == 0 and out["routers"][0]["digest"] == "teRBBR0TnM2EvHZdEwsB5E2sKa0"  # type: ignore[index]
    tampered = tmp_path / "tampered"
    tampered.write_bytes(doc(AKKA).replace(b"uptime 1036923", b"uptime 1036924"))
    code, out = _gotor_doc(capsys, str(tampered))
    assert code == 3 and not out["verified"] and "router-sig-ed25519" in str(out["problems"])
    code, out = _gotor_doc(capsys, str(DOCS / AKKA), "--now", "2023-01-01T00:00:00")
    assert code == 4 and out["in_window"] is False
