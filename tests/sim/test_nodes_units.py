"""The pure parts of the simnet nodes: SENDME arithmetic, exit policies, DNS, HTTP parsing,
directory cache routing on arbitrary input, deterministic content, bandwidth weights
(against C tor's own documents), flag thresholds, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.cells.relaymsg import Sendme
from gotor.errors import LocalError, ProtocolError
from gotor.netdoc.authcert import parse_authcert
from gotor.netdoc.consensus import parse_consensus
from gotor.netdoc.protover import Protocols
from simnet.content import ContentChecker, ContentReader, content, content_digest
from simnet.nodes.authority import FlagThresholds, assign_flags
from simnet.nodes.bwweights import WEIGHT_SCALE, bandwidth_weights, totals
from simnet.nodes.dircache import DirCache, choose_encoding
from simnet.nodes.dns import Dns, reverse_pointer_address
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.nodes.http import HttpRequest, parse_head, response
from simnet.nodes.keys import AuthorityKeys, RelayKeys
from simnet.nodes.relay import RelayInfo
from simnet.nodes.sendme import CircuitWindows, FlowParams, StreamWindows
from simnet.topology import DEFAULT_EXIT_POLICY
from simnet.world import World

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


# --- SENDME windows (C tor sendme.c) ---------------------------------------------------------
def digest(n: int) -> bytes:
    return n.to_bytes(20, "big")


def test_circuit_package_window_queues_the_digest_of_every_hundredth_cell() -> None:
    w = CircuitWindows(FlowParams())
    for n in range(1, 1001):
        assert w.can_package()
        w.note_data_sent(digest(n))
    assert not w.can_package() and w.package == 0
    w.on_sendme(Sendme(1, digest(100)))
    assert w.package == 100
    with pytest.raises(ProtocolError, match="does not match"):
        w.on_sendme(Sendme(1, digest(300)))         # 200 was expected next
    w.on_sendme(Sendme(1, digest(300)))             # (the bad one consumed 200)
    assert w.package == 200


def test_circuit_sendme_version_rules() -> None:
    strict = CircuitWindows(FlowParams(accept_min_version=1))
    lax = CircuitWindows(FlowParams(accept_min_version=0))
    for n in range(1, 201):
        strict.note_data_sent(digest(n))
        lax.note_data_sent(digest(n))
    with pytest.raises(ProtocolError, match="below the accepted minimum"):
        strict.on_sendme(Sendme())
    lax.on_sendme(Sendme())
    with pytest.raises(ProtocolError, match="unsupported"):
        lax.on_sendme(Sendme(2, b"x"))
    lax.on_sendme(Sendme(1, digest(200)))
    with pytest.raises(ProtocolError, match="without a cell digest"):
        lax.on_sendme(Sendme())


def test_circuit_deliver_window_emits_one_sendme_per_hundred_cells() -> None:
    w = CircuitWindows(FlowParams(emit_min_version=1))
    sent = []
    for n in range(1, 351):
        w.note_cell_received(digest(n))
        out = w.note_data_received()
        if out is not None:
            sent.append((n, out))
    assert [n for n, _ in sent] == [100, 200, 300]
    assert sent[0][1] == Sendme(1, digest(100))
    v0 = CircuitWindows(FlowParams(emit_min_version=0))
    assert [v0.note_data_received() for _ in range(100)][-1] == Sendme()


def test_stream_windows() -> None:
    w = StreamWindows()
    with pytest.raises(ProtocolError):
        w.on_sendme()
    for _ in range(500):
        w.note_data_sent()
        w.note_data_received()
    assert not w.can_package()
    with pytest.raises(ProtocolError):
        w.note_data_received()
    w.deliver = 0
    assert w.sendmes_due() == 10 and w.deliver == 500
    w.on_sendme()
    assert w.package == 50


def test_flow_params_are_clamped_like_c_tor() -> None:
    assert FlowParams.from_params({}) == FlowParams(1000, 1, 0)
    assert FlowParams.from_params({"circwindow": 5, "sendme_emit_min_version": 900}) == \
        FlowParams(100, 255, 0)


# --- exit policies ----------------------------------------------------------------------------
def test_default_policy_summary_is_c_tors() -> None:
    policy = ExitPolicy.parse(DEFAULT_EXIT_POLICY)
    assert str(policy.summary()) == \
        "reject 25,119,135-139,445,563,1214,4661-4666,6346-6429,6699,6881-6999"
    assert policy.is_exit() and policy.allows("1.2.3.4", 443) and not policy.allows("1.2.3.4", 25)
    assert not policy.allows("::1", 80) and not policy.allows("not-an-ip", 80)


@pytest.mark.parametrize("rules,summary,exit_", [
    ("accept *:80, accept *:443, reject *:*", "accept 80,443", True),
    ("reject *:*", "reject 1-65535", False),
    ("accept *:*", "accept 1-65535", True),
    ("reject 1.2.3.0/24:*, accept *:80", "accept 80", False),   # small reject: ignored
    ("reject 0.0.0.0/5:*, accept *:*", "reject 1-65535", False),  # blocks 2^27 addresses
    ("accept 10.0.0.0/8:*, reject *:*", "reject 1-65535", False),
    ("accept *:1-1000, reject *:443", "accept 1-1000", True),   # first match wins
])
def test_policy_summaries(rules: str, summary: str, exit_: bool) -> None:
    policy = ExitPolicy.parse(rules)
    assert str(policy.summary()) == summary
    assert policy.is_exit() == exit_


def test_policy_rules_and_errors() -> None:
    policy = ExitPolicy.parse(["accept 10.0.0.0/8:22", "reject *:22", "accept *:20-30"])
    assert policy.allows("10.1.2.3", 22) and not policy.allows("11.1.2.3", 22)
    assert policy.allows("11.1.2.3", 21) and not policy.allows("11.1.2.3", 31)
    assert policy.may_allow_port(22) and not ExitPolicy.reject_all().may_allow_port(80)
    assert str(policy) == "accept 10.0.0.0/8:22, reject *:22, accept *:20-30"
    for bad in ("allow *:80", "accept *", "accept 1.2.3:80", "accept *:0", "accept *:9-3",
                "accept *:x"):
        with pytest.raises(LocalError):
            ExitPolicy.parse([bad])


# --- DNS ----------------------------------------------------------------------------------------
def test_dns() -> None:
    dns = Dns()
    dns.add("Example.COM.", "1.2.3.4", "5.6.7.8")
    assert dns.lookup("example.com") == ("1.2.3.4", "5.6.7.8")
    assert dns.lookup("EXAMPLE.com.") == ("1.2.3.4", "5.6.7.8")
    assert dns.lookup("9.9.9.9") == ("9.9.9.9",) and dns.lookup("[::1]") == ("::1",)
    assert dns.lookup("nope.example") is None
    assert dns.reverse("5.6.7.8") == "example.com" and dns.reverse("7.7.7.7") is None
    assert reverse_pointer_address("4.3.2.1.in-addr.arpa") == "1.2.3.4"
    assert reverse_pointer_address("x.in-addr.arpa") is None
    assert reverse_pointer_address("example.com") is None
    with pytest.raises(LocalError):
        dns.add("bad", "1.2.3")


# --- HTTP ---------------------------------------------------------------------------------------
REQUEST = b"GET /tor/micro/d/a%2Bb-c?x=1&y= HTTP/1.0\r\nHost: h\r\nAccept-Encoding: deflate\r\n\r\n"


def test_parse_head_and_truncation_at_every_offset() -> None:
    for cut in range(len(REQUEST)):
        assert parse_head(REQUEST[:cut]) is None
    request, used = parse_head(REQUEST + b"body")  # type: ignore[misc]
    assert used == len(REQUEST)
    assert request.method == "GET" and request.path == "/tor/micro/d/a+b-c"
    assert request.query == {"x": "1", "y": ""}
    assert request.headers == {"host": "h", "accept-encoding": "deflate"}
    assert request.content_length is None


@pytest.mark.parametrize("bad", [
    b"GET /\r\n\r\n", b"GET / HTTP/2\r\n\r\n", b"GET x HTTP/1.0\r\n\r\n",
    b"G(T / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\nno colon\r\n\r\n",
    b"GET / HTTP/1.0\r\n\xff: x\r\n\r\n", b"GET / HTTP/1.0\r\n" + b"a" * 17000,
])
def test_parse_head_rejects(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_head(bad)


def test_content_length_and_response_format() -> None:
    req = HttpRequest("POST", "/upload", "HTTP/1.0", {"content-length": "12"})
    assert req.content_length == 12
    with pytest.raises(ProtocolError):
        _ = HttpRequest("POST", "/", "HTTP/1.0", {"content-length": "-1"}).content_length
    assert response(404, now=0.0) == \
        b"HTTP/1.0 404 Not found\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_head_on_arbitrary_bytes(data: bytes) -> None:
    try:
        result = parse_head(data)
    except ProtocolError:
        return
    assert result is None or isinstance(result[0], HttpRequest)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="/tor-+.zabcdefABCDEF0123456789keysmiconsuvt", max_size=120),
       st.sampled_from([None, "deflate", "gzip, x-zstd", ""]))
def test_dircache_answers_any_path(path: str, accept: str | None) -> None:
    headers = {} if accept is None else {"accept-encoding": accept}
    reply = DirCache().respond(HttpRequest("GET", "/" + path, "HTTP/1.0", headers), now=0.0)
    assert reply.startswith(b"HTTP/1.0 ") and int(reply[9:12]) in (200, 304, 400, 404)


def test_choose_encoding() -> None:
    assert choose_encoding(None, False) == "identity"
    assert choose_encoding(None, True) == "deflate"
    assert choose_encoding("identity", True) == "identity"
    assert choose_encoding("x-zstd, gzip;q=1", False) == "gzip"
    assert choose_encoding("gzip, deflate", False) == "deflate"


# --- content --------------------------------------------------------------------------------------
def test_content_is_seeded_random_access_and_checkable() -> None:
    whole = content("s", 5000)
    assert len(whole) == 5000 and whole != content("t", 5000) and content(7, 10) == content("7", 10)
    for offset in (0, 1, 15, 16, 17, 4095):
        assert content("s", 100, offset) == whole[offset : offset + 100]
    reader = ContentReader("s", 5000)
    assert b"".join(iter(lambda: reader.read(333), b"")) == whole and reader.remaining == 0
    good = ContentChecker("s")
    good.feed(whole)
    assert good.ok and good.received == 5000 and good.digest() == content_digest("s", 5000)
    with pytest.raises(LocalError):
        content("s", -1)


def test_content_checker_reports_the_first_bad_offset() -> None:
    data = bytearray(content("x", 3000))
    data[1234] ^= 1
    data[2000] ^= 1
    checker = ContentChecker("x")
    for i in range(0, 3000, 700):
        checker.feed(bytes(data[i : i + 700]))
    assert checker.mismatch_at == 1234 and checker.received == 3000


# --- bandwidth weights ------------------------------------------------------------------------------
@pytest.mark.parametrize("doc", [
    "docs/testnet-arti-shadow/cached-microdesc-consensus",
    "docs/testnet-arti-shadow/cached-consensus",
    "docs/testnet-arti-chutney-2020/mdconsensus1.txt",
    "docs/consdiff-small/consensus1.txt",
])
def test_weights_equal_c_tors_on_its_own_consensuses(doc: str) -> None:
    consensus = parse_consensus((VECTORS / doc).read_bytes()).dangerously_assume_verified()
    rows = [(rs.bandwidth.bandwidth if rs.bandwidth else 0, "Guard" in rs.flags,
             "Exit" in rs.flags and "BadExit" not in rs.flags) for rs in consensus.routers]
    assert bandwidth_weights(*totals(rows)) == dict(consensus.bandwidth_weights or {})


@pytest.mark.parametrize("g,m,e,d,case", [
    (3000, 2000, 3000, 2000, "1"), (1000, 6000, 500, 100, "2a"), (1500, 1500, 1400, 400, "2b"),
    (500, 5000, 4000, 100, "3a"), (2000, 3000, 4000, 2000, "3b"), (4000, 3000, 500, 200, "3a"),
])
def test_weights_in_each_case_keep_the_balance_equations(g: int, m: int, e: int, d: int,
                                                         case: str) -> None:
    w = bandwidth_weights(g, m, e, d, g + m + e + d)
    assert w is not None, case
    _check_ranges(w)


def test_weights_c_tor_refuses_are_omitted() -> None:
    # Case 2b whose fallback still fails the guard/exit balance check: C tor omits the line.
    assert bandwidth_weights(1000, 2000, 900, 800, 4700) is None


def _check_ranges(w: dict[str, int]) -> None:
    s = WEIGHT_SCALE
    assert all(0 <= v <= s for v in w.values())
    assert w["Wgg"] + w["Wmg"] == s or abs(w["Wgg"] + w["Wmg"] - s) <= 10
    assert abs(w["Wee"] + w["Wme"] - s) <= 10
    assert abs(w["Wed"] + w["Wmd"] + w["Wgd"] - s) <= 10
    assert (w["Wbd"], w["Wgm"], w["Wem"], w["Weg"]) == (w["Wmd"], w["Wgg"], w["Wee"], w["Wed"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100000), st.booleans(), st.booleans()), max_size=40))
def test_weights_are_in_range_whenever_produced(rows: list[tuple[int, bool, bool]]) -> None:
    w = bandwidth_weights(*totals(rows))
    if w is not None:
        _check_ranges(w)
    assert bandwidth_weights(0, 1, 1, 1, 3) is None


# --- flags ------------------------------------------------------------------------------------------
def test_flag_thresholds_and_rules() -> None:
    keys = RelayKeys.generate(World(1), "relay000")

    def info(bw: int, policy: str = "reject *:*", dircache: bool = True) -> RelayInfo:
        return RelayInfo("n", keys, "1.2.3.4", 9001, 0, bw, 0.0, ExitPolicy.parse(policy), (),
                         Protocols.parse("Relay=1-4"), dircache, "Tor", "h")

    day = 86400.0
    listed = [(info(bw), up * day) for bw, up in
              [(10, 1), (50, 2), (200, 3), (500, 10), (1000, 20), (3000, 30), (4000, 40), (2, 90)]]
    th = FlagThresholds.compute(listed)
    # Relays under 4 KB/s do not count; Fast: top 7/8 (here >= 10), Stable: >= the median
    # uptime (10 days) or 7 days, Guard bandwidth: top quarter (3000) or 2048.
    assert th == FlagThresholds(fast_bw=10, guard_bw=2048, stable_uptime=7 * day)
    assert assign_flags(info(3000), 30 * day, th) >= {"Guard", "Fast", "Stable", "HSDir", "V2Dir"}
    assert "Guard" not in assign_flags(info(3000, dircache=False), 30 * day, th)
    assert "Guard" not in assign_flags(info(3000), 7.5 * day, th)     # not "familiar" yet
    assert assign_flags(info(5), 1 * day, th) == {"Running", "Valid", "V2Dir"}
    assert assign_flags(info(10), 7 * day, th) == {"Running", "Valid", "V2Dir", "Fast", "Stable",
                                                    "HSDir"}
    assert "Exit" in assign_flags(info(100, "accept *:80,accept *:443"), 0, th)
    assert "HSDir" not in assign_flags(info(3000), 3 * day, th)


# --- keys -------------------------------------------------------------------------------------------
def test_keys_are_deterministic_and_distinct() -> None:
    a = RelayKeys.generate(World(1), "relay001")
    b = RelayKeys.generate(World(1), "relay001")
    c = RelayKeys.generate(World(1), "relay002")
    assert a is b     # memoised
    assert a.rsa_id != c.rsa_id and a.ed_id != c.ed_id and a.ntor_public != c.ntor_public
    assert a.rsa_identity.public.bits == 1024 and len(a.fingerprint) == 40
    auth = AuthorityKeys.generate(World(1), "auth0")
    text = auth.certificate(published=1767225600, expires=1767225600 + 86400,
                            dir_address=("1.2.3.4", 7000))
    cert = parse_authcert(text).verify(now=1767225700)
    assert cert.fingerprint == auth.v3_ident and cert.identity_key.bits == 3072
    assert text == auth.certificate(published=1767225600, expires=1767225600 + 86400,
                                    dir_address=("1.2.3.4", 7000))
