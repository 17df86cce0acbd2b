"""Consensus documents, both flavours (dir-spec §3.4.1, §3.9): real documents,
signature checks and the quorum rule, strictness, and the build side."""

from __future__ import annotations

import base64
import calendar
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import (
    SHADOW_NOW,
    T0,
    Authority,
    authorities,
    consensus,
    doc,
    drbg,
    expectations,
)

from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import DocumentError, LocalError, VerificationError
from gotor.netdoc.authcert import AuthCert, parse_authcert, parse_authcerts
from gotor.netdoc.build_dir import (
    build_consensus,
    encode_consensus,
    encode_consensus_body,
)
from gotor.netdoc.checked import ExpiredError, NotYetValidError, Tolerance
from gotor.netdoc.consensus import (
    Consensus,
    DirectorySignature,
    Flavor,
    QuorumError,
    SignatureStatus,
    UnverifiedConsensus,
    parse_consensus,
)
from gotor.netdoc.fields import parse_time
from gotor.netdoc.sigcheck import DIGESTS

SHADOW_NS = "testnet-arti-shadow/cached-consensus"
SHADOW_MD = "testnet-arti-shadow/cached-microdesc-consensus"
CHUTNEY_MD = "testnet-arti-chutney-2020/mdconsensus1.txt"
CHUTNEY_NOW = calendar.timegm((2020, 8, 7, 12, 42, 50))
REAL = [
    (SHADOW_NS, "testnet-shadow-set", "cached-consensus"),
    (SHADOW_MD, "testnet-shadow-set", "cached-microdesc-consensus"),
    (CHUTNEY_MD, "testnet-chutney-2020", None),
]


def shadow_certs() -> list[AuthCert]:
    return [
        c.verify(now=SHADOW_NOW) for c in parse_authcerts(doc("testnet-arti-shadow/cached-certs"))
    ]


def chutney_certs() -> list[AuthCert]:
    data = doc("testnet-arti-chutney-2020/authcerts2.txt")
    return [c.verify(now=CHUTNEY_NOW) for c in parse_authcerts(data)]


def fingerprints(certs: list[AuthCert]) -> list[bytes]:
    return [c.fingerprint for c in certs]


def _time(text: str) -> int:
    t = parse_time(*text.split())
    assert t is not None
    return t


# --- the real documents ------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc_id", "key"), REAL)
def test_real_consensus_matches_recorded_figures(name: str, doc_id: str, key: str | None) -> None:
    exp = expectations(doc_id)["expected_from_our_recomputation"]
    exp = exp[key] if key else exp  # type: ignore[index]
    data = doc(name)
    u = parse_consensus(data)
    c = u.dangerously_assume_verified()
    first_line = data.split(b"\n", 1)[0].decode()
    assert first_line == exp["first_line"]
    assert c.flavor is (Flavor.MICRODESC if first_line.endswith("microdesc") else Flavor.NS)
    assert c.consensus_method == int(exp["consensus-method"])
    assert c.valid_after == _time(exp["valid-after"])
    assert c.fresh_until == _time(exp["fresh-until"])
    assert c.valid_until == _time(exp["valid-until"])
    assert " ".join(map(str, c.voting_delay)) == exp["voting-delay"]
    assert " ".join(c.known_flags) == exp["known-flags"]
    assert c.shared_rand_previous is None and exp["shared-rand-previous-value"] is None
    assert c.shared_rand_current is None and exp["shared-rand-current-value"] is None
    assert len(c.routers) == exp["n_routerstatus"]
    assert len(c.authorities) == exp["n_dir_source"]
    assert len(c.signatures) == exp["n_directory_signature"]
    assert dict(Counter(f for rs in c.routers for f in rs.flags)) == exp["flag_counts"]
    assert sum(1 for rs in c.routers if rs.addresses) == exp["n_with_a_line"]
    assert len(c.params) == exp["n_params"]
    assert (c.bandwidth_weights is not None) == exp["has_bandwidth_weights"]
    for rs, line in ((c.routers[0], exp["first_r"]), (c.routers[-1], exp["last_r"])):
        _assert_r_line(rs, line, c.flavor)
    assert u.signed_digest("sha1").hex().upper() == exp["sha1_signed_part"]  # type: ignore[union-attr]
    assert u.signed_digest("sha256").hex().upper() == exp["sha256_signed_part"]  # type: ignore[union-attr]
    assert u.signed_digest("md5") is None


def _assert_r_line(rs, line: str, flavor: Flavor) -> None:  # type: ignore[no-untyped-def]
    words = line.split()
    assert words[0] == "r" and rs.nickname == words[1]
    assert rs.identity == base64.b64decode(words[2] + "=")
    rest = words[3:]
    if flavor is Flavor.NS:
        assert rs.descriptor_digest == base64.b64decode(rest.pop(0) + "=")
    assert rs.published == _time(" ".join(rest[:2]))
    assert (rs.address, rs.or_port, rs.dir_port) == (rest[2], int(rest[3]), int(rest[4]))


@pytest.mark.parametrize("name", [SHADOW_NS, SHADOW_MD])
def test_shadow_consensus_verifies_with_its_four_certificates(name: str) -> None:
    certs = shadow_certs()
    u = parse_consensus(doc(name))
    report = u.check_signatures(certs, fingerprints(certs), now=SHADOW_NOW)
    assert report.count(SignatureStatus.VALID) == 4 and report.quorum
    assert str(report) == "4 signatures (4 valid); 4 of 4 authorities: quorum"
    c = u.verify(certs, fingerprints(certs), now=SHADOW_NOW)
    assert c is u.dangerously_assume_verified()
    algorithms = {s.algorithm for s in c.signatures}
    assert algorithms == ({"sha1"} if c.flavor is Flavor.NS else {"sha256"})


def test_shadow_router_details() -> None:
    c = parse_consensus(doc(SHADOW_NS)).dangerously_assume_verified()
    rs = c.routers[0]
    assert rs.version == "Tor 0.4.9.6"
    assert rs.supports("Relay", 6) and rs.supports("Link", 5) and not rs.supports("Link", 6)
    assert rs.bandwidth is not None and (rs.bandwidth.bandwidth, rs.bandwidth.unmeasured) == (
        208,
        True,
    )
    assert rs.policy is not None and not rs.policy.allows_port(80)
    assert c.params == {"AuthDirMaxServersPerAddr": 0, "cc_alg": 2}
    assert c.param("cc_alg", 1, 0, 1) == 1 and c.param("absent", 7, 0, 10) == 7
    assert c.bandwidth_weights is not None and c.bandwidth_weights["Wgg"] == 10000
    assert c.client_versions == () and c.server_versions == ()
    assert c.required_client_protocols is not None
    assert str(c.required_client_protocols) == "Cons=2 Desc=2 FlowCtrl=1 Link=4 Microdesc=2 Relay=2"
    assert [a.nickname for a in c.authorities] == ["test001a", "test002a", "test003a", "test000a"]
    assert c.authorities[0].contact == "auth1@test.test"
    assert [rs.identity for rs in c.routers] == sorted(rs.identity for rs in c.routers)


def test_chutney_relay_zero_matches_arti_expectations() -> None:
    exp = expectations("testnet-chutney-2020")["expected_from_source_tests"]["relay_0"]  # type: ignore[index]
    certs = chutney_certs()
    c = parse_consensus(doc(CHUTNEY_MD)).verify(certs, fingerprints(certs), now=CHUTNEY_NOW)
    rs = c.routers[0]
    assert rs.md_digest is not None and rs.md_digest.hex() == exp["md_digest_hex"]
    assert rs.identity.hex() == exp["rsa_identity_hex"]
    assert rs.bandwidth is not None
    assert (rs.bandwidth.measured is not None) == exp[
        "weight_is_measured"
    ] and rs.bandwidth.unmeasured
    assert (rs.bandwidth.bandwidth != 0) == exp["weight_nonzero"]
    assert rs.supports("HSDir", 2) == exp["supports_HSDir_2"]
    assert rs.supports("HSDir", 3) == exp["supports_HSDir_3"]
    shown = [f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in rs.or_addresses]
    assert shown == exp["addresses"]


def test_chutney_with_only_the_first_certificate_two_keys_are_missing() -> None:
    certs = chutney_certs()
    u = parse_consensus(doc(CHUTNEY_MD))
    report = u.check_signatures(certs[:1], fingerprints(certs), now=CHUTNEY_NOW)
    assert report.count(SignatureStatus.UNKNOWN_KEY) == 2 == len(report.missing_keys)
    assert report.count(SignatureStatus.VALID) == 1 and not report.quorum
    assert {k[0] for k in report.missing_keys} == set(fingerprints(certs[1:]))
    with pytest.raises(QuorumError) as err:
        u.verify(certs[:1], fingerprints(certs), now=CHUTNEY_NOW)
    assert err.value.report == report
    assert "1 of 3 authorities: NO quorum" in str(err.value)


def test_trust_comes_from_the_caller_not_the_document() -> None:
    certs = shadow_certs()
    strangers = [bytes([i]) * 20 for i in range(5)]
    report = parse_consensus(doc(SHADOW_MD)).check_signatures(certs, strangers, now=None)
    assert report.count(SignatureStatus.VALID) == 4
    assert not any(c.trusted for c in report.checks) and not report.quorum
    # Four valid signatures among nine configured authorities is not a majority.
    report = parse_consensus(doc(SHADOW_MD)).check_signatures(
        certs, fingerprints(certs) + strangers, now=None
    )
    assert len(report.valid_authorities) == 4 and not report.quorum


def test_time_is_judged_only_when_now_is_given() -> None:
    certs = shadow_certs()
    u = parse_consensus(doc(SHADOW_MD))
    fps = fingerprints(certs)
    assert u.validity.not_before == SHADOW_NOW
    u.verify(certs, fps, now=None)
    with pytest.raises(ExpiredError):
        u.verify(certs, fps, now=SHADOW_NOW + 3600)
    with pytest.raises(NotYetValidError):
        u.verify(certs, fps, now=SHADOW_NOW - 60)
    u.verify(certs, fps, now=SHADOW_NOW - 60, tolerance=Tolerance(before=60))
    u.verify(certs, fps, now=SHADOW_NOW + 3600, tolerance=Tolerance(after=86400))
    # Half a year later, with a huge tolerance for the consensus, the 2000-2001
    # certificates have expired: their signatures no longer count.
    later = SHADOW_NOW + 400 * 86400
    report = u.check_signatures(certs, fps, now=later, tolerance=0)
    assert report.count(SignatureStatus.EXPIRED_KEY) == 4
    assert len(report.missing_keys) == 4 and not report.quorum


def test_certificates_must_be_verified_ones() -> None:
    unverified = parse_authcerts(doc("testnet-arti-shadow/cached-certs"))
    u = parse_consensus(doc(SHADOW_MD))
    with pytest.raises(LocalError):
        u.verify(unverified, [c.fingerprint for c in unverified], now=None)  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        u.verify(shadow_certs(), [], now=None)
    with pytest.raises(LocalError):
        u.verify(shadow_certs(), [b"short"], now=None)


def test_changed_digits_in_the_signed_part_never_verify() -> None:
    certs = shadow_certs()
    fps = fingerprints(certs)
    data = doc(SHADOW_MD)
    end = data.index(b"directory-signature ")
    positions = [i for i in range(0, end, 7) if data[i : i + 1].isdigit()]
    assert len(positions) > 80
    verified = 0
    for i in positions:
        digit = data[i] - ord("0")
        bad = data[:i] + bytes([ord("0") + (digit + 1) % 10]) + data[i + 1 :]
        try:
            u = parse_consensus(bad)
        except DocumentError:
            continue
        report = u.check_signatures(certs, fps, now=None)
        assert report.count(SignatureStatus.INVALID) == 4, i
        with pytest.raises(QuorumError):
            u.verify(certs, fps, now=None)
        verified += 1
    assert verified > 40


def test_a_changed_signature_is_invalid() -> None:
    data = doc(SHADOW_NS)
    i = data.index(b"-----BEGIN SIGNATURE-----\n") + len(b"-----BEGIN SIGNATURE-----\n") + 5
    bad = data[:i] + (b"A" if data[i : i + 1] != b"A" else b"B") + data[i + 1 :]
    certs = shadow_certs()
    report = parse_consensus(bad).check_signatures(certs, fingerprints(certs), now=None)
    assert report.checks[0].status is SignatureStatus.INVALID
    assert report.count(SignatureStatus.VALID) == 3 and report.quorum


def test_truncation_is_a_document_error_except_between_signatures() -> None:
    data = doc(SHADOW_MD)
    sig_ends = set()
    u = parse_consensus(data)
    n_sigs = len(u.signatures)
    for cut in range(len(data)):
        try:
            c = parse_consensus(data[:cut]).dangerously_assume_verified()
        except DocumentError:
            continue
        sig_ends.add(cut)
        assert 1 <= len(c.signatures) < n_sigs
    # Cutting right after a complete signature item leaves a well-formed document.
    assert len(sig_ends) == n_sigs - 1


# --- strictness ------------------------------------------------------------------


def _mutate(old: bytes, new: bytes, name: str = SHADOW_MD) -> bytes:
    data = doc(name)
    assert old in data, old
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"network-status-version 3 microdesc", b"network-status-version 3 fancy", "flavor"),
        (b"network-status-version 3 microdesc", b"network-status-version 4 microdesc", "version 3"),
        (b"network-status-version 3 microdesc\n", b"", "starts with"),
        (b"vote-status consensus", b"vote-status vote", "not votes"),
        (b"valid-until 2000-01-01 00:03:00", b"valid-until 2000-01-01 00:02:30", "fresh-until"),
        (b"consensus-method 35", b"consensus-method 35 36", "at most 1"),
        (b"voting-delay 4 4", b"voting-delay 4", "at least 2"),
        (b"params AuthDirMaxServersPerAddr=0", b"params AuthDirMaxServersPerAddr=x", "Key=Int"),
        (b"known-flags", b"s", "not allowed in consensus preamble"),
        (
            b"r test000a J7Jmoiz2gcC7q2QF7l11jFXnGg4",
            b"r test000a JX0G8DYLsiRjiHJPEJ7AiVodQfs",
            "not sorted",
        ),
        (b"m qs2npQPRC", b"m qs2npQPR*", "microdescriptor digest"),
        (b"w Bandwidth=72 ", b"w Measured=72 ", "Bandwidth= missing"),
        (b"w Bandwidth=72 ", b"w Bandwidth=-72 ", "bad Bandwidth"),
        (b"pr Conflux=1 ", b"pr Conflux=99 ", "pr: bad version range"),
        (b"s Exit Fast Guard HSDir Running V2Dir Valid\n", b"", "required item 's'"),
        (b"127.0.0.1 5105 0", b"127.0.0.1 0 0", "ORPort"),
        (b"r test005r", b"r test-005r", "nickname"),
        (b"contact auth1@test.test\n", b"", "needs contact"),
        (
            b"contact auth1@test.test\n",
            b"contact auth1@test.test\nm x\n",
            "not allowed in consensus authority",
        ),
        (b"directory-footer\n", b"", "bandwidth-weights: not allowed in router status entry"),
        (
            b"directory-footer\n",
            b"directory-footer\ndir-source x\n",
            "not allowed in consensus footer",
        ),
        (
            b"-----END SIGNATURE-----",
            b"-----END SIGNATURE-----\nbandwidth-weights",
            "not allowed after",
        ),
        (b"directory-signature sha256 0B89", b"directory-signature sha256 0G89", "hex"),
    ],
)
def test_malformed_consensus(old: bytes, new: bytes, words: str) -> None:
    with pytest.raises(DocumentError, match=words):
        parse_consensus(_mutate(old, new))


def test_structural_errors() -> None:
    with pytest.raises(DocumentError, match="empty"):
        parse_consensus(b"")
    data = doc(SHADOW_MD)
    no_sources = b"".join(
        chunk
        for chunk in data.splitlines(keepends=True)
        if not chunk.startswith((b"dir-source", b"contact", b"vote-digest"))
    )
    with pytest.raises(DocumentError, match="no dir-source"):
        parse_consensus(no_sources)
    with pytest.raises(DocumentError, match="a: not allowed in consensus authority section"):
        parse_consensus(_mutate(b"r test002a", b"a [::1]:1\nr test002a"))
    with pytest.raises(DocumentError, match="no directory-footer"):
        parse_consensus(data[: data.index(b"directory-footer")])
    # The ns flavour's r line has one more argument than the microdesc one.
    with pytest.raises(DocumentError, match="at least 8"):
        parse_consensus(_mutate(b"network-status-version 3 microdesc", b"network-status-version 3"))


def test_unknown_keywords_and_ignorable_items_are_accepted() -> None:
    data = _mutate(b"known-flags", b"x-future 1 2\nknown-flags")
    data = data.replace(
        b"w Bandwidth=72 Unmeasured=1", b"w Bandwidth=72 Unmeasured=1 Future=5\nx-new"
    )
    data = data.replace(b"contact auth1@test.test\n", b"contact auth1@test.test\nlegacy 1\n")
    c = parse_consensus(data).dangerously_assume_verified()
    assert len(c.routers) == 7
    # Those lines are inside the signed part: the signatures no longer match.
    certs = shadow_certs()
    with pytest.raises(QuorumError):
        parse_consensus(data).verify(certs, fingerprints(certs), now=None)


def test_legacy_dir_source_needs_no_contact() -> None:
    data = _mutate(
        b"dir-source test001a",
        b"dir-source test001a-legacy 0000000000000000000000000000000000000000 "
        b"a 127.0.0.1 1 2\ndir-source test001a",
    )
    c = parse_consensus(data).dangerously_assume_verified()
    assert c.authorities[0].is_legacy and c.authorities[0].contact is None


# --- quorum rule on a synthetic network ---------------------------------------------


def _certs(auths: tuple[Authority, ...]) -> list[AuthCert]:
    return [parse_authcert(a.cert()).verify(now=T0) for a in auths]


def _signed(
    c: Consensus, sigs: list[tuple[Authority, str, RsaPrivateKey | None]]
) -> UnverifiedConsensus:
    """Sign ``c`` by hand: (authority, algorithm, key to really sign with)."""
    body = encode_consensus_body(c)
    out = []
    for auth, alg, key in sigs:
        digest = DIGESTS.get(alg, DIGESTS["sha256"])((body + "directory-signature ").encode())
        out.append(
            DirectorySignature(
                alg,
                auth.fingerprint,
                auth.signing.public.fingerprint(),
                (key or auth.signing).sign_digest(digest),
                alg != "sha1",
            )
        )
    return parse_consensus(encode_consensus(replace(c, signatures=tuple(out))))


@pytest.mark.parametrize(
    ("n_configured", "n_signing", "quorum"),
    [
        (1, 1, True),
        (2, 1, False),
        (3, 2, True),
        (4, 2, False),
        (4, 3, True),
        (5, 2, False),
        (5, 3, True),
    ],
)
def test_more_than_half_is_needed(n_configured: int, n_signing: int, quorum: bool) -> None:
    auths = authorities(5)[:n_configured]
    c = consensus(Flavor.MICRODESC, 3, auths)
    u = parse_consensus(build_consensus(c, [a.signer for a in auths[:n_signing]]))
    fps = [a.fingerprint for a in auths]
    report = u.check_signatures(_certs(auths), fps, now=T0)
    assert report.count(SignatureStatus.VALID) == n_signing
    assert report.quorum is quorum
    if not quorum:
        with pytest.raises(QuorumError):
            u.verify(_certs(auths), fps, now=T0)


def test_each_authority_counts_once_and_odd_signatures_do_not_count() -> None:
    auths = authorities(5)[:4]
    a0, a1, a2, a3 = auths
    stranger = authorities(5)[4]
    c = consensus(Flavor.MICRODESC, 3, auths)
    u = _signed(
        c,
        [
            (a0, "sha256", None),
            (a0, "sha1", None),  # one authority, two algorithms
            (a1, "sha512", None),  # unknown algorithm: ignored
            (a2, "sha256", stranger.signing),  # claims a2's key, signed by another: invalid
            (stranger, "sha256", None),  # valid, but not a configured authority
        ],
    )
    certs = _certs(authorities(5))
    report = u.check_signatures(certs, [a.fingerprint for a in auths], now=T0)
    assert [ch.status for ch in report.checks] == [
        SignatureStatus.VALID,
        SignatureStatus.VALID,
        SignatureStatus.UNKNOWN_ALGORITHM,
        SignatureStatus.INVALID,
        SignatureStatus.VALID,
    ]
    assert [ch.trusted for ch in report.checks] == [True, True, True, True, False]
    assert report.valid_authorities == (a0.fingerprint,) and not report.quorum
    # a3 never signed; with a3's vote the tally would still be 2 of 4: not enough.
    u2 = _signed(c, [(a0, "sha256", None), (a0, "sha1", None), (a3, "sha256", None)])
    assert not u2.check_signatures(certs, [a.fingerprint for a in auths], now=T0).quorum


def test_a_certificate_for_another_signing_key_is_an_unknown_key() -> None:
    auth = authorities(1)[0]
    other_signing = RsaPrivateKey.generate(1024, drbg(b"another signing key"))
    old_cert = parse_authcert(Authority(auth.nickname, auth.identity, other_signing).cert()).verify(
        now=T0
    )
    u = parse_consensus(build_consensus(consensus(Flavor.NS, 2, (auth,)), [auth.signer]))
    report = u.check_signatures([old_cert], [auth.fingerprint], now=T0)
    assert report.checks[0].status is SignatureStatus.UNKNOWN_KEY
    assert report.missing_keys == ((auth.fingerprint, auth.signing.public.fingerprint()),)


# --- build side ---------------------------------------------------------------------


@pytest.mark.parametrize("flavor", [Flavor.NS, Flavor.MICRODESC])
def test_build_parse_verify_gives_the_same_data(flavor: Flavor) -> None:
    auths = authorities(3)
    c = consensus(flavor, 40, auths)
    data = build_consensus(c, [a.signer for a in reversed(auths)])
    u = parse_consensus(data)
    got = u.verify(_certs(auths), [a.fingerprint for a in auths], now=T0 + 60)
    assert replace(got, signatures=()) == c
    assert [s.identity for s in got.signatures] == sorted(a.fingerprint for a in auths)
    assert {s.algorithm for s in got.signatures} == {flavor.default_algorithm}
    assert encode_consensus(got) == data
    # ns signatures name no algorithm (sha1 is the default), microdesc ones name sha256.
    assert (b"directory-signature sha256 " in data) is (flavor is Flavor.MICRODESC)


def test_build_sorts_what_dir_spec_requires_sorted() -> None:
    auths = authorities(2)
    c = consensus(Flavor.MICRODESC, 10, auths)
    shuffled = replace(
        c, routers=c.routers[::-1], authorities=c.authorities[::-1], known_flags=c.known_flags[::-1]
    )
    got = parse_consensus(
        build_consensus(shuffled, [a.signer for a in auths])
    ).dangerously_assume_verified()
    assert replace(got, signatures=()) == c


def test_build_refuses_inconsistent_data() -> None:
    auths = authorities(1)
    c = consensus(Flavor.MICRODESC, 3, auths)
    with pytest.raises(LocalError, match="known_flags"):
        build_consensus(replace(c, known_flags=("Valid",)), [auths[0].signer])
    with pytest.raises(LocalError, match="digest"):
        build_consensus(replace(c, flavor=Flavor.NS), [auths[0].signer])
    with pytest.raises(LocalError, match="share an identity"):
        build_consensus(replace(c, routers=c.routers + c.routers[:1]), [auths[0].signer])
    with pytest.raises(LocalError, match="at least one signer"):
        build_consensus(c, [])
    with pytest.raises(LocalError, match="algorithm"):
        build_consensus(c, [auths[0].signer], algorithm="md5")


@pytest.mark.parametrize(
    "name", [SHADOW_NS, SHADOW_MD, CHUTNEY_MD, "consdiff-small/consensus1.txt"]
)
def test_real_consensus_reserialises_byte_for_byte(name: str) -> None:
    data = doc(name)
    assert encode_consensus(parse_consensus(data).dangerously_assume_verified()) == data


def test_shared_random_values_round_trip() -> None:
    auths = authorities(1)
    from gotor.netdoc.consensus import SharedRandValue

    c = replace(
        consensus(Flavor.NS, 1, auths),
        shared_rand_previous=SharedRandValue(9, bytes(range(32))),
        shared_rand_current=SharedRandValue(8, bytes(32)),
        packages=("tor 0.4 https://x sha256=abc",),
    )
    data = build_consensus(c, [auths[0].signer])
    assert b"shared-rand-previous-value 9 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" in data
    got = parse_consensus(data).verify(_certs(auths), [auths[0].fingerprint], now=T0)
    assert replace(got, signatures=()) == c


# --- robustness -----------------------------------------------------------------------


def _lines(name: str) -> list[bytes]:
    return doc(name).split(b"\n")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_line_level_mutations_parse_or_raise_document_error(data: st.DataObject) -> None:
    lines = _lines(SHADOW_MD)
    n = len(lines)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "junk"]))
        i, j = data.draw(st.integers(0, n - 2)), data.draw(st.integers(0, n - 2))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(j, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, 20))] + data.draw(st.binary(max_size=6))
        n = len(lines)
    text = b"\n".join(lines)
    try:
        u = parse_consensus(text)
    except DocumentError:
        return
    certs = shadow_certs()
    try:
        u.verify(certs, fingerprints(certs), now=SHADOW_NOW)
    except VerificationError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_document_error(data: bytes) -> None:
    try:
        parse_consensus(b"network-status-version 3\n" + data)
    except DocumentError:
        pass


def test_minimal_entries_round_trip() -> None:
    from gotor.netdoc.consensus import Bandwidth, DirSource, RouterStatus

    auths = authorities(1)
    c = consensus(Flavor.NS, 2, auths)
    bare = RouterStatus(
        nickname="bare",
        identity=b"\xff" * 20,
        published=T0,
        address="192.0.2.7",
        or_port=443,
        dir_port=0,
        flags=frozenset(),
        descriptor_digest=b"\x01" * 20,
    )
    measured = replace(c.routers[0], bandwidth=Bandwidth(50, 40, False), policy=None)
    legacy = DirSource("auth0-legacy", b"\x00" * 20, "a", "10.0.0.1", 1, 2, None, None)
    c = replace(
        c,
        routers=(measured, c.routers[1], bare),
        authorities=(legacy, *c.authorities),
        bandwidth_weights=None,
        params={},
        client_versions=None,
        recommended_client_protocols=None,
    )
    data = build_consensus(c, [auths[0].signer])
    assert b"\nw Bandwidth=50 Measured=40\n" in data and b"\ns\n" in data
    got = parse_consensus(data)
    assert got.flavor is Flavor.NS
    verified = got.verify(_certs(auths), [auths[0].fingerprint], now=T0)
    assert replace(verified, signatures=()) == c
    assert not verified.routers[-1].has_flag("Running") and verified.routers[0].has_flag("Guard")
    assert not verified.routers[-1].supports("Link", 1)


def test_bad_policy_in_a_router_entry() -> None:
    with pytest.raises(DocumentError, match="p: bad port range"):
        parse_consensus(doc(SHADOW_NS).replace(b"p reject 1-65535", b"p reject 0-65535", 1))
