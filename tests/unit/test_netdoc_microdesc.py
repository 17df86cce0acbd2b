"""Microdescriptors (dir-spec §3.3): parsing, digests, joining with the consensus, build side."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import T0, authorities, consensus, doc, expectations, microdescs

from gotor.errors import DocumentError, LocalError
from gotor.netdoc.authcert import parse_authcert
from gotor.netdoc.build_dir import build_consensus, build_microdesc, encode_microdesc
from gotor.netdoc.consensus import Flavor, parse_consensus
from gotor.netdoc.microdesc import Microdesc, join_microdescs, parse_microdesc, parse_microdescs
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols

SHADOW_MDS = "testnet-arti-shadow/cached-microdescs.new"
SHADOW_MD_CONSENSUS = "testnet-arti-shadow/cached-microdesc-consensus"
NTOR = base64.b64encode(bytes(range(32))).decode().rstrip("=")


def shadow_consensus():  # type: ignore[no-untyped-def]
    return parse_consensus(doc(SHADOW_MD_CONSENSUS)).dangerously_assume_verified()


def test_shadow_microdescs_all_match_the_consensus() -> None:
    exp = expectations("testnet-shadow-set")["expected_from_our_recomputation"][
        "cached-microdescs.new"
    ]  # type: ignore[index]
    data = doc(SHADOW_MDS)
    mds = parse_microdescs(data)
    assert len(mds) == exp["n_microdescriptors"] == 7
    assert b"".join(m.text for m in mds) == data
    assert all(m.digest == hashlib.sha256(m.text).digest() for m in mds)
    c = shadow_consensus()
    listed = {rs.md_digest for rs in c.routers}
    assert exp["all_7_listed_in_md_consensus"] and all(m.digest in listed for m in mds)
    joined = join_microdescs(c, mds)
    assert len(joined.matched) == exp["md_consensus_entries_covered"] == 7
    assert joined.missing == () and joined.unused == ()
    assert [rs for rs, _ in joined.matched] == list(c.routers)
    assert all(rs.md_digest == md.digest for rs, md in joined.matched)


def test_shadow_microdesc_fields() -> None:
    md = parse_microdescs(doc(SHADOW_MDS))[0]
    assert md.onion_key is not None and md.onion_key.startswith(b"\x30\x81\x89")  # 1024-bit DER
    assert md.ntor_onion_key == base64.b64decode("I1S8JfcqPPHWVTxfjq/eGmGiu/OtR+fF0Z86Ge1mq3s=")
    assert md.ed25519_id == base64.b64decode("yhO6nETO5AUdvJbLgPnw4mFjozGXWMCqOp30nY6nM8E=")
    # No p line: reject everything (dir-spec §3.3, and what C tor omits).
    assert md.ipv4_policy == PortPolicy.reject_all() == md.ipv6_policy
    assert not md.ipv4_policy.allows_port(80)


def test_join_reports_missing_in_consensus_order_and_unused() -> None:
    c = shadow_consensus()
    mds = parse_microdescs(doc(SHADOW_MDS))
    stale = parse_microdesc(f"onion-key\nntor-onion-key {NTOR}\n".encode())
    joined = join_microdescs(c, [mds[1], mds[4], stale])
    assert [md for _, md in joined.matched] == sorted(
        [mds[1], mds[4]], key=lambda m: [rs.md_digest for rs in c.routers].index(m.digest)
    )
    expected_missing = [
        rs.md_digest for rs in c.routers if rs.md_digest not in {mds[1].digest, mds[4].digest}
    ]
    assert list(joined.missing) == expected_missing and len(joined.missing) == 5
    assert joined.unused == (stale,)


def test_join_needs_a_verified_microdesc_consensus() -> None:
    with pytest.raises(LocalError):
        join_microdescs(parse_consensus(doc(SHADOW_MD_CONSENSUS)), [])  # type: ignore[arg-type]
    ns = parse_consensus(doc("testnet-arti-shadow/cached-consensus")).dangerously_assume_verified()
    with pytest.raises(LocalError):
        join_microdescs(ns, [])


def test_onion_key_item_starts_each_microdesc_and_its_key_is_optional() -> None:
    text = (
        "@last-listed 2024-01-01 00:00:00\n"
        f"onion-key\nntor-onion-key {NTOR}=\nfamily $AAAA bob\nfamily-ids ed25519:abc other:x\n"
        "p accept 80,443\np6 reject 25\nid rsa1024 AAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
        "id ed25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nid x25519 whatever\n"
        "a [2001:db8::1]:9001\npr Link=1-5\nfuture-item 1\n"
        f"onion-key\nntor-onion-key {NTOR}\n"
    ).encode()
    first, second = parse_microdescs(text)
    assert first.onion_key is None and first.ntor_onion_key == bytes(range(32))
    assert first.annotations == (("@last-listed", "2024-01-01 00:00:00"),)
    assert first.family == ("$AAAA", "bob") and first.family_ids == ("ed25519:abc", "other:x")
    assert first.ipv4_policy.allows_port(443) and not first.ipv4_policy.allows_port(22)
    assert first.ipv6_policy.allows_port(80) and not first.ipv6_policy.allows_port(25)
    assert first.rsa_id == bytes(20) and first.ed25519_id == bytes(32)
    assert first.addresses == (("2001:db8::1", 9001),)
    assert first.protocols == Protocols.parse("Link=1-5")
    # The digest covers the microdescriptor only, from onion-key to the next one.
    body = text[text.index(b"onion-key") : text.rindex(b"\nonion-key") + 1]
    assert first.text == body and first.digest == hashlib.sha256(body).digest()
    assert second.family_ids is None and second.annotations == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"ntor-onion-key {NTOR}\n", "documents start with 'onion-key'"),
        ("onion-key\n", "required item 'ntor-onion-key'"),
        ("onion-key\nntor-onion-key AAAA\n", "base64 of 32 bytes"),
        (f"onion-key x\nntor-onion-key {NTOR}\n", "at most 0"),
        (f"onion-key\n-----BEGIN X-----\n-----END X-----\nntor-onion-key {NTOR}\n", "tag 'X'"),
        (f"onion-key\nntor-onion-key {NTOR}\np accept 0\n", "p: bad port range"),
        (f"onion-key\nntor-onion-key {NTOR}\np6 allow 80\n", "accept or reject"),
        (f"onion-key\nntor-onion-key {NTOR}\nid ed25519 AAAA\n", "ed25519 identity"),
        (f"onion-key\nntor-onion-key {NTOR}\nid x a\nid x b\n", "more than one x"),
        (f"onion-key\nntor-onion-key {NTOR}\nfamily\n", "at least 1"),
        (f"onion-key\nntor-onion-key {NTOR}\na 1.2.3.4\n", "address:port"),
        (f"onion-key\nntor-onion-key {NTOR}\npr Link=x\n", "pr: bad version"),
        (f"onion-key\nntor-onion-key {NTOR}\nntor-onion-key {NTOR}\n", "only once"),
        (f"onion-key\nntor-onion-key {NTOR}\n@late\n", "not followed by a document"),
    ],
)
def test_malformed_microdescs(text: str, words: str) -> None:
    with pytest.raises(DocumentError, match=words):
        parse_microdescs(text.encode())


def test_exactly_one() -> None:
    with pytest.raises(DocumentError, match="found 7"):
        parse_microdesc(doc(SHADOW_MDS))


def test_real_microdescs_reserialise_byte_for_byte() -> None:
    mds = parse_microdescs(doc(SHADOW_MDS))
    assert b"".join(encode_microdesc(m) for m in mds) == doc(SHADOW_MDS)


def test_build_round_trip_and_join_with_a_built_consensus() -> None:
    mds = microdescs(12)
    for md in mds:
        again = parse_microdesc(md.text)
        assert again == md and again.digest == md.digest == hashlib.sha256(md.text).digest()
        assert b"=" not in md.text.split(b"ntor-onion-key ")[1].split(b"\n")[0]
    auths = authorities(2)
    c = consensus(Flavor.MICRODESC, 12, auths, mds)
    data = build_consensus(c, [a.signer for a in auths])
    certs = [parse_authcert(a.cert()).verify(now=T0) for a in auths]
    verified = parse_consensus(data).verify(certs, [a.fingerprint for a in auths], now=T0)
    joined = join_microdescs(verified, mds[:10])
    assert len(joined.matched) == 10 and len(joined.missing) == 2
    assert set(joined.missing) == {mds[10].digest, mds[11].digest}


def test_build_writes_c_tor_order_and_omits_reject_all() -> None:
    md = build_microdesc(
        Microdesc(
            ntor_onion_key=bytes(32),
            ed25519_id=bytes(32),
            rsa_id=bytes(20),
            family=("$" + "A" * 40,),
            ipv6_policy=PortPolicy.parse("accept 443"),
        )
    )
    assert [line.split()[0] for line in md.text.decode().splitlines()] == [
        "onion-key",
        "ntor-onion-key",
        "family",
        "p6",
        "id",
        "id",
    ]
    assert replace(md, annotations=()) == md


_SHADOW_LINES = doc(SHADOW_MDS).split(b"\n")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_SHADOW_LINES), max_size=30),
    st.binary(max_size=5),
    st.integers(0, 1500),
)
def test_mutated_microdescs_parse_or_raise_document_error(
    lines: list[bytes], junk: bytes, pos: int
) -> None:
    data = b"\n".join(lines)
    data = data[:pos] + junk + data[pos:]
    try:
        for md in parse_microdescs(data):
            assert md.digest == hashlib.sha256(md.text).digest()
    except DocumentError:
        pass


def test_truncation_is_an_error_or_fewer_microdescs() -> None:
    data = doc(SHADOW_MDS)
    for cut in range(len(data)):
        try:
            mds = parse_microdescs(data[:cut])
        except DocumentError:
            continue
        # Only cuts at a line boundary after a complete ntor-onion-key/id line parse.
        assert data[cut - 1 : cut] in (b"\n", b"")
        assert all(md.text in data for md in mds)


def test_every_field_round_trips_through_the_builder() -> None:
    md = Microdesc(
        ntor_onion_key=bytes(range(32)),
        onion_key=b"\x30\x00",
        addresses=(("2001:db8::1", 9001),),
        family=("$" + "B" * 40, "alice"),
        family_ids=("ed25519:xyz",),
        ipv4_policy=PortPolicy.parse("reject 25"),
        protocols=Protocols.parse("Link=4-5"),
    )
    built = build_microdesc(md)
    assert built == md
    assert encode_microdesc(built) == built.text
