"""The directory client end to end under simnet (gotor.dir.bootstrap, gotor.dir.fetch).

Tiny HTTP/1.0 servers on simulated hosts serve documents built and signed with
gotor.netdoc (three authorities); some misbehave (tampered consensus, 404,
truncated body, garbage, silence, missing microdescriptors, wrong certificates)
and some cannot be reached at all.  The client reaches them over plain simnet
TCP: the directory client does not care how a directory stream is made.
"""

from __future__ import annotations

import base64
import enum
import random
import zlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from netdir_helpers import BASIC, EXIT, GUARD, Spec, entry, make_consensus, rsa_id
from netdoc_helpers import T0, authorities

from gotor.dir import (
    BootstrapEvent,
    DirCache,
    DirClient,
    DirConfig,
    DirSource,
    SourceKind,
)
from gotor.dir.fetch import DirResponseError, fetch_consensus, http_get
from gotor.errors import BootstrapError, ConnectionRefused, ProtocolError, Timeout
from gotor.netdir import NetDir
from gotor.netdoc.build_dir import build_consensus
from gotor.runtime.api import ByteStream, Runtime
from simnet.net import Host, Network
from simnet.world import World

AUTHS = authorities(3)
AUTH_IDS = tuple(a.fingerprint for a in AUTHS)
N_RELAYS = 12
PORT = 9001
TIMEOUT = 10.0


class Mode(enum.Enum):
    GOOD = "good"
    DEFLATE = "deflate"  # compressed, no Content-Length, ends at EOF (as C tor sends)
    TAMPERED = "tampered"  # one byte of the consensus changed: signatures fail
    NOT_FOUND = "404"
    TRUNCATED = "truncated"  # Content-Length larger than what is sent
    GARBAGE = "garbage"
    SILENT = "silent"  # accepts, never answers
    HALF_MDS = "half-mds"  # only the even-numbered microdescriptors
    NO_MDS = "no-mds"
    MISSING_ONE = "missing-one"  # every microdescriptor but the last
    NO_CERTS = "no-certs"


@dataclass
class Docs:
    consensus: bytes
    certs: dict[str, bytes]  # upper-case hex fingerprint -> certificate
    mds: dict[str, bytes]  # unpadded base64 digest -> microdescriptor
    md_order: list[str]


def build_docs(valid_after: int = T0) -> Docs:
    specs = [Spec(GUARD) for _ in range(4)] + [Spec(BASIC) for _ in range(4)]
    specs += [Spec(EXIT, policy="accept 80,443") for _ in range(4)]
    entries = [entry(i, s) for i, s in enumerate(specs)]
    c = make_consensus([rs for rs, _ in entries], valid_after=valid_after)
    c = replace(c, authorities=tuple(sorted((a.dir_source() for a in AUTHS),
                                            key=lambda d: d.identity)))
    text = build_consensus(c, [a.signer for a in AUTHS])
    mds = {base64.b64encode(md.digest).decode().rstrip("="): md.text for _, md in entries}
    certs = {a.fingerprint.hex().upper(): a.cert() for a in AUTHS}
    return Docs(text, certs, mds, list(mds))


DOCS = build_docs()


@dataclass
class Server:
    host: Host
    mode: Mode
    docs: list[Docs]  # docs[0] is served; tests swap it
    log: list[str] = field(default_factory=list)

    async def handle(self, stream: ByteStream) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = await stream.read()
            if not data:
                return
            buf += data
        path = buf.split(b" ")[1].decode()
        self.log.append(path)
        if self.mode is Mode.SILENT:
            await self.host.runtime.sleep(10**6)
            return
        if self.mode is Mode.GARBAGE:
            stream.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            return
        status, body = self.route(path)
        if self.mode is Mode.DEFLATE and status == 200:
            stream.write(b"HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n"
                         + zlib.compress(body))
            return
        length = len(body) + (100 if self.mode is Mode.TRUNCATED else 0)
        stream.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n" % (status, length) + body)

    def route(self, path: str) -> tuple[int, bytes]:
        docs = self.docs[0]
        if self.mode is Mode.NOT_FOUND:
            return 404, b""
        if path == "/tor/status-vote/current/consensus-microdesc":
            text = docs.consensus
            if self.mode is Mode.TAMPERED:
                text = text.replace(b"r relay5 ", b"r relaz5 ")
            return 200, text
        if path.startswith("/tor/keys/fp/"):
            if self.mode is Mode.NO_CERTS:
                return 200, b""
            ids = path.removeprefix("/tor/keys/fp/").split("+")
            return 200, b"".join(docs.certs[i] for i in ids if i in docs.certs)
        if path.startswith("/tor/micro/d/"):
            wanted = path.removeprefix("/tor/micro/d/").split("-")
            if self.mode is Mode.NO_MDS:
                wanted = []
            if self.mode is Mode.MISSING_ONE:
                wanted = [d for d in wanted if d != docs.md_order[-1]]
            if self.mode is Mode.HALF_MDS:
                wanted = [d for d in wanted if docs.md_order.index(d) % 2 == 0]
            return 200, b"".join(docs.mds[d] for d in wanted if d in docs.mds)
        return 404, b""


class InOrder(random.Random):
    """An rng whose shuffle keeps the order: the test decides which source comes first."""

    def shuffle(self, x: list[Any]) -> None:  # type: ignore[override]
        return None


@dataclass
class Net:
    world: World
    client: Host
    servers: list[Server]
    sources: list[DirSource]


def make_net(modes: Sequence[Mode | str], *, seed: int = 1, epoch: float = T0 + 600,
             docs: Docs = DOCS) -> Net:
    """One source per mode.  "unreachable": nobody at that address (SYNs vanish);
    "refused": a host with nothing listening."""
    world = World(seed, epoch=epoch)
    net = Network(world, tls=False)
    client = net.add_host("client", ipv4="192.168.0.2")
    servers, sources = [], []
    for i, mode in enumerate(modes):
        addr = f"10.{i}.0.1"
        sources.append(DirSource(f"dir{i}", rsa_id(i), (addr, PORT), kind=SourceKind.AUTHORITY))
        if mode == "unreachable":
            continue
        host = net.add_host(f"dir{i}", ipv4=addr)
        if mode == "refused":
            continue
        assert isinstance(mode, Mode)
        server = Server(host, mode, [docs])
        servers.append(server)
        run_on(host, host.runtime.listen(addr, PORT, server.handle))
    return Net(world, client, servers, sources)


def run_on(host: Host, coro: Coroutine[Any, Any, Any]) -> None:
    host.runtime.spawn(coro, name="setup")


def opener(rt: Runtime) -> Callable[[DirSource], Any]:
    async def open_stream(source: DirSource) -> ByteStream:
        return await rt.connect(source.ipv4[0], source.ipv4[1])

    return open_stream


def client_for(net: Net, *, cache: DirCache | None = None, in_order: bool = True,
               events: list[BootstrapEvent] | None = None, **config: Any) -> DirClient:
    rt = net.client.runtime
    if in_order:
        rt.rng = InOrder(5)
    cfg = DirConfig(AUTH_IDS, tuple(net.sources), request_timeout=TIMEOUT,
                    **{"refresh_caches": 0, **config})
    return DirClient(rt, cfg, opener(rt), cache=cache,
                     on_progress=events.append if events is not None else None)


def run(net: Net, coro: Coroutine[Any, Any, Any], until: float = 10_000) -> Any:
    task = net.client.runtime.spawn(coro, name="test")
    net.world.run(until=until)
    assert task.done(), "the simulation ended with the test still blocked"
    assert net.world.errors == [], net.world.errors
    return task.result()


# --- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_from_good_sources(tmp_path: Path) -> None:
    net = make_net([Mode.GOOD, Mode.GOOD, Mode.GOOD])
    events: list[BootstrapEvent] = []
    published: list[NetDir] = []
    cache = DirCache(tmp_path)
    client = client_for(net, cache=cache, events=events)
    client._on_netdir = published.append
    nd = run(net, client.bootstrap())
    assert isinstance(nd, NetDir) and len(nd.relays) == N_RELAYS and not nd.missing_microdescs
    assert nd.lifetime.valid_after == T0 and nd.has_enough_paths()
    assert client.netdir is nd and published == [nd]
    tags = [e.tag for e in events]
    assert tags[:5] == ["starting", "requesting_status", "loading_status", "loading_keys",
                        "requesting_descriptors"]
    assert tags[-1] == "enough_dirinfo" and events[-1].percent == 75
    assert "loading_descriptors" in tags and not any(e.warning for e in events)
    loading = [e for e in events if e.tag == "loading_descriptors"]
    assert loading[-1].percent == 74  # every path: 50 + 24
    assert loading[-1].summary == f"Loading relay descriptors ({N_RELAYS}/{N_RELAYS})"
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    # one source did everything: consensus, the three certificates, the microdescriptors
    log = net.servers[0].log
    assert log[0] == "/tor/status-vote/current/consensus-microdesc"
    assert log[1] == "/tor/keys/fp/" + "+".join(sorted(DOCS.certs))
    assert len(log) == 3 and log[2].startswith("/tor/micro/d/")
    assert cache.load_consensus() == DOCS.consensus
    assert cache.load_certs() == b"".join(DOCS.certs[k] for k in sorted(DOCS.certs))
    assert len(cache.load_microdescs() or b"") == sum(len(m) for m in DOCS.mds.values())


def test_deflated_responses_without_length() -> None:
    net = make_net([Mode.DEFLATE])
    nd = run(net, client_for(net).bootstrap())
    assert len(nd.relays) == N_RELAYS


def test_failover_through_every_kind_of_bad_source() -> None:
    modes: list[Mode | str] = ["unreachable", "refused", Mode.NOT_FOUND, Mode.TAMPERED,
                               Mode.TRUNCATED, Mode.GARBAGE, Mode.SILENT, Mode.GOOD]
    net = make_net(modes)
    events: list[BootstrapEvent] = []
    client = client_for(net, events=events)
    nd = run(net, client.bootstrap())
    assert len(nd.relays) == N_RELAYS and nd.lifetime.valid_after == T0
    warnings = [e.warning for e in events if e.warning]
    consensus_failures = [w for w in warnings if w.startswith("consensus from")]
    assert len(consensus_failures) == 7
    expected = ["timed out", "refused", "HTTP 404", "not signed by a majority",
                "truncated body", "bad HTTP status line", "timed out"]
    for text, want in zip(consensus_failures, expected, strict=True):
        assert want in text, (want, text)
    assert events[-1].tag == "enough_dirinfo"


def test_all_sources_failing_is_a_bootstrap_error_with_every_reason() -> None:
    net = make_net(["unreachable", Mode.TAMPERED, Mode.NOT_FOUND])
    client = client_for(net)

    async def attempt() -> str:
        try:
            await client.bootstrap()
        except BootstrapError as exc:
            return str(exc)
        return "no error"

    text = run(net, attempt())
    assert "no directory source gave a usable consensus" in text
    for source, why in zip(net.sources, ["timed out", "majority", "HTTP 404"], strict=True):
        assert str(source) in text and why in text
    assert client.netdir is None


def test_certificates_that_were_not_asked_for_are_ignored() -> None:
    net = make_net([Mode.NO_CERTS, Mode.GOOD])
    events: list[BootstrapEvent] = []
    nd = run(net, client_for(net, events=events).bootstrap())
    assert len(nd.relays) == N_RELAYS
    assert any("majority" in (e.warning or "") for e in events)


def test_microdescriptors_come_from_several_sources() -> None:
    net = make_net([Mode.HALF_MDS, Mode.GOOD])
    nd = run(net, client_for(net).bootstrap())
    assert len(nd.relays) == N_RELAYS
    half, good = net.servers
    assert sum(p.startswith("/tor/micro/d/") for p in half.log) == 1
    asked_second = [p for p in good.log if p.startswith("/tor/micro/d/")]
    assert len(asked_second) == 1
    # only the half the first source did not send
    assert len(asked_second[0].removeprefix("/tor/micro/d/").split("-")) == N_RELAYS // 2


def test_too_few_microdescriptors_is_a_bootstrap_error() -> None:
    net = make_net([Mode.NO_MDS, Mode.NO_MDS])
    client = client_for(net)

    async def attempt() -> str:
        try:
            await client.bootstrap()
        except BootstrapError as exc:
            return str(exc)
        return "no error"

    text = run(net, attempt())
    assert "not enough directory information" in text and "12 microdescriptors" in text


def test_parallel_microdescriptor_batches() -> None:
    big = build_many(100)
    net = make_net([Mode.GOOD, Mode.GOOD, Mode.GOOD], docs=big)
    nd = run(net, client_for(net, parallel_fetches=3).bootstrap())
    assert len(nd.relays) == 100
    md_requests = [p for s in net.servers for p in s.log if p.startswith("/tor/micro/d/")]
    # C tor's split: 100 digests -> 34 + 34 + 32, one batch per worker, each at its own source
    assert sorted(len(p.split("-")) for p in md_requests) == [32, 34, 34]
    assert all(any(p.startswith("/tor/micro/d/") for p in s.log) for s in net.servers)


def build_many(n: int) -> Docs:
    specs = [Spec(GUARD if i % 3 == 0 else EXIT if i % 3 == 1 else BASIC,
                  policy="accept 80" if i % 3 == 1 else None,
                  address=f"10.{i // 200}.{i % 200}.9") for i in range(n)]
    entries = [entry(i, s) for i, s in enumerate(specs)]
    c = make_consensus([rs for rs, _ in entries], valid_after=T0)
    c = replace(c, authorities=tuple(sorted((a.dir_source() for a in AUTHS),
                                            key=lambda d: d.identity)))
    mds = {base64.b64encode(md.digest).decode().rstrip("="): md.text for _, md in entries}
    return Docs(build_consensus(c, [a.signer for a in AUTHS]), DOCS.certs, mds, list(mds))


# --- the cache ---------------------------------------------------------------------------


def bootstrap_into(tmp_path: Path) -> None:
    net = make_net([Mode.GOOD])
    run(net, client_for(net, cache=DirCache(tmp_path)).bootstrap())


def test_a_live_cache_needs_no_network(tmp_path: Path) -> None:
    bootstrap_into(tmp_path)
    net = make_net(["unreachable", Mode.GOOD], epoch=T0 + 1800)
    events: list[BootstrapEvent] = []
    client = client_for(net, cache=DirCache(tmp_path), events=events)
    nd = run(net, client.bootstrap())
    assert len(nd.relays) == N_RELAYS and net.servers[0].log == []
    assert not any(e.warning for e in events)


def test_a_stale_cache_is_used_when_no_source_answers(tmp_path: Path) -> None:
    bootstrap_into(tmp_path)
    later = T0 + 5 * 3600  # two hours past valid-until: stale but reasonably live
    net = make_net(["unreachable", Mode.NOT_FOUND], epoch=later)
    events: list[BootstrapEvent] = []
    nd = run(net, client_for(net, cache=DirCache(tmp_path), events=events).bootstrap())
    assert nd.lifetime.valid_after == T0 and not nd.lifetime.is_live(later)
    assert any("stale" in (e.warning or "") for e in events)


def test_a_stale_cache_is_replaced_by_a_fresh_consensus(tmp_path: Path) -> None:
    bootstrap_into(tmp_path)
    later = T0 + 5 * 3600
    newer = build_docs(valid_after=T0 + 4 * 3600)
    net = make_net([Mode.GOOD], epoch=later, docs=newer)
    cache = DirCache(tmp_path)
    nd = run(net, client_for(net, cache=cache).bootstrap())
    assert nd.lifetime.valid_after == T0 + 4 * 3600
    assert cache.load_consensus() == newer.consensus
    # the certificates were cached: only the consensus was fetched (the microdescriptors
    # are the same documents, so they came from the cache too)
    assert net.servers[0].log == ["/tor/status-vote/current/consensus-microdesc"]


def test_an_unusable_cache_is_ignored(tmp_path: Path) -> None:
    bootstrap_into(tmp_path)
    (tmp_path / "cached-certs").write_bytes(b"garbage\n")
    (tmp_path / "cached-microdescs").write_bytes(b"onion-key\nbroken")
    net = make_net([Mode.GOOD], epoch=T0 + 600)
    events: list[BootstrapEvent] = []
    nd = run(net, client_for(net, cache=DirCache(tmp_path), events=events).bootstrap())
    assert len(nd.relays) == N_RELAYS
    warnings = " ".join(e.warning or "" for e in events)
    assert "damaged certificate cache" in warnings and "damaged microdescriptor" in warnings
    assert "ignoring the cached consensus" in warnings  # no certificates to check it with
    too_old = T0 + 3 * 3600 + 25 * 3600
    net2 = make_net(["unreachable"], epoch=too_old)

    async def attempt() -> str:
        try:
            await client_for(net2, cache=DirCache(tmp_path)).bootstrap()
        except BootstrapError as exc:
            return str(exc)
        return "no error"

    assert "no directory source" in run(net2, attempt())


class BrokenDisk(DirCache):
    """A data directory whose cache files can be neither read nor written."""

    def _read(self, name: str) -> bytes | None:
        raise PermissionError(13, "Permission denied", str(self.dir / name))

    def store_consensus(self, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    store_certs = store_microdescs = store_consensus


def test_a_cache_that_cannot_be_read_or_written_is_only_a_warning(tmp_path: Path) -> None:
    net = make_net([Mode.GOOD])
    events: list[BootstrapEvent] = []
    nd = run(net, client_for(net, cache=BrokenDisk(tmp_path), events=events).bootstrap())
    assert len(nd.relays) == N_RELAYS and not nd.missing_microdescs
    warnings = [e.warning for e in events if e.warning]
    assert sum("cannot read the directory cache" in w for w in warnings) == 3
    # the consensus, the certificates and the microdescriptors were each not stored
    assert sum("cannot write the directory cache: [Errno 28]" in w for w in warnings) == 3
    assert events[-1].tag == "enough_dirinfo"


# --- refresh -----------------------------------------------------------------------------


def test_refresh_fetches_the_next_consensus_on_schedule() -> None:
    net = make_net([Mode.GOOD, Mode.GOOD], epoch=T0 + 600)
    nd2_docs = build_docs(valid_after=T0 + 3600)
    client = client_for(net, in_order=False, refresh_caches=2)
    fetched_at: list[float] = []

    async def scenario() -> NetDir:
        nd1 = await client.bootstrap()
        task = client.start_refresh()
        rt = net.client.runtime
        # the authorities publish the next consensus at its valid-after
        rt.call_later(T0 + 3600 - rt.wallclock(), lambda: [s.docs.__setitem__(0, nd2_docs)
                                                           for s in net.servers])
        nd2 = await client.wait_for_update(nd1)
        fetched_at.append(rt.wallclock())
        task.cancel()
        return nd2

    nd2 = run(net, scenario())
    assert nd2.lifetime.valid_after == T0 + 3600 and len(nd2.relays) == N_RELAYS
    # dir-spec §5.1: fresh-until (T0+1h) + 45 min .. + 7/8 of the rest
    assert T0 + 3600 + 2700 <= fetched_at[0] <= T0 + 3 * 3600


def test_refresh_retries_with_backoff_until_a_newer_consensus_exists() -> None:
    net = make_net([Mode.GOOD], epoch=T0 + 600)
    client = client_for(net)
    warnings: list[str] = []

    async def scenario() -> NetDir:
        nd1 = await client.bootstrap()
        client._on_progress = None
        client._warn = warnings.append  # type: ignore[method-assign]
        task = client.start_refresh()
        rt = net.client.runtime
        # nothing newer until valid-until is near: the caches lag behind
        rt.call_later(T0 + 3 * 3600 - 300 - rt.wallclock(),
                      lambda: net.servers[0].docs.__setitem__(0, build_docs(T0 + 3 * 3600)))
        nd2 = await client.wait_for_update(nd1)
        task.cancel()
        return nd2

    nd2 = run(net, scenario(), until=10 * 3600)
    assert nd2.lifetime.valid_after == T0 + 3 * 3600
    retries = [w for w in warnings if "refresh failed" in w]
    assert retries and all("not newer" in w for w in retries)


def test_refresh_asks_again_for_missing_microdescriptors() -> None:
    net = make_net([Mode.MISSING_ONE])
    client = client_for(net)
    warnings: list[str] = []

    async def scenario() -> tuple[NetDir, NetDir, float]:
        nd1 = await client.bootstrap()  # 11 of 12 is enough paths
        client._warn = warnings.append  # type: ignore[method-assign]
        task = client.start_refresh()
        rt = net.client.runtime
        start = rt.now()
        rt.call_later(200, lambda: setattr(net.servers[0], "mode", Mode.GOOD))
        nd2 = await client.wait_for_update(nd1)
        task.cancel()
        return nd1, nd2, rt.now() - start

    nd1, nd2, waited = run(net, scenario())
    assert len(nd1.relays) == N_RELAYS - 1 and len(nd1.missing_microdescs) == 1
    assert len(nd2.relays) == N_RELAYS and nd2.missing_microdescs == ()
    assert nd2.consensus is nd1.consensus
    # asked every MICRODESC_RETRY (60 s), backing off while the source lacks it
    assert any("unavailable" in w for w in warnings) and 200 <= waited < 400
    md_requests = [p for p in net.servers[0].log if p.startswith("/tor/micro/d/")]
    assert all(len(p.split("-")) == 1 for p in md_requests[1:])


def test_run_refresh_needs_a_bootstrapped_client() -> None:
    net = make_net([Mode.GOOD])
    client = client_for(net)

    async def attempt() -> str:
        try:
            await client.run_refresh()
        except Exception as exc:  # noqa: BLE001 - the test inspects the type
            return type(exc).__name__
        return "none"

    assert run(net, attempt()) == "LocalError"


# --- single requests -----------------------------------------------------------------------


def test_http_get_errors_are_typed() -> None:
    net = make_net([Mode.NOT_FOUND, "refused", Mode.SILENT, Mode.GARBAGE])
    rt = net.client.runtime
    open_stream = opener(rt)
    results: list[type[BaseException]] = []

    async def scenario() -> None:
        for source in net.sources:
            try:
                await http_get(rt, open_stream, source, "/tor/x", max_body=1000, deadline=5)
            except (DirResponseError, ConnectionRefused, Timeout, ProtocolError) as exc:
                results.append(type(exc))

    run(net, scenario())
    assert results == [DirResponseError, ConnectionRefused, Timeout, ProtocolError]


def test_fetch_consensus_refuses_the_ns_flavour() -> None:
    from netdoc_helpers import consensus as ns_consensus

    from gotor.netdoc.consensus import Flavor

    ns = build_consensus(ns_consensus(Flavor.NS, 3, AUTHS), [a.signer for a in AUTHS])
    docs = replace(DOCS, consensus=ns)
    net = make_net([Mode.GOOD], docs=docs)
    rt = net.client.runtime

    async def scenario() -> str:
        try:
            await fetch_consensus(rt, opener(rt), net.sources[0], deadline=5)
        except ProtocolError as exc:
            return str(exc)
        return "accepted"

    assert "got ns" in run(net, scenario())


def test_config_is_checked() -> None:
    with pytest.raises(Exception, match="v3 identities"):
        DirConfig((b"short",), (DirSource("x", b"\0" * 20, ("1.2.3.4", 1)),))
    with pytest.raises(Exception, match="source"):
        DirConfig(AUTH_IDS, ())
