"""TorClient end to end in simnet: bootstrap from emulated authorities, byte-exact fetches
through connect() and through the SOCKS port, isolation, dirtiness, a relay crash, guard
state across a restart, consensus refresh, C tor's retry rules, and a clean shutdown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from client_sim import (
    WEB,
    ClientSim,
    body_of,
    client_sim,
    read_all,
    request,
    socks5,
    socks_address_text,
)

from gotor import BootstrapEvent, CircuitConfig, GotorError, StreamError, TorClient
from gotor.cells.relaymsg import EndReason
from gotor.circmgr import UNBOUND
from gotor.socks import Reply
from simnet.content import content

Scenario = Callable[[TorClient], Awaitable[Any]]


@pytest.fixture()
def sim() -> ClientSim:
    """A fresh world per test: a shared one made each case depend on the cases that ran
    before it in the same worker (virtual time, consensus, a crashed relay)."""
    return client_sim(3)


def run(sim: ClientSim, data_dir: Path, scenario: Scenario, *,
        events: list[BootstrapEvent] | None = None, limit: float = 3600.0,
        **options: Any) -> Any:
    config = sim.config(data_dir, **options)

    async def main() -> Any:
        sink = events.append if events is not None else None
        async with TorClient(sim.rt, config, on_progress=sink) as client:
            return await scenario(client)

    return sim.run(main(), limit=limit)


async def fetch(client: TorClient, size: int, seed: str, **kw: Any) -> bytes:
    stream = await client.connect(WEB, 80, **kw)
    stream.write(request(size, seed))
    return body_of(await read_all(stream), size, seed)


def test_bootstrap_progress_and_byte_exact_fetches(sim: ClientSim, tmp_path: Path) -> None:
    events: list[BootstrapEvent] = []
    sizes = [0, 1, 498, 499, 70_000, 600_000]

    async def scenario(client: TorClient) -> tuple[list[bytes], Any]:
        got = [await fetch(client, size, f"s{size}") for size in sizes]
        return got, client.stats

    mark = len(sim.world.trace.lines)
    got, stats = run(sim, tmp_path, scenario, events=events)
    assert [len(b) for b in got] == sizes  # body_of checked every byte
    tags = [e.tag for e in events if e.warning is None]
    assert tags[0] == "starting" and tags[-3:] == ["enough_dirinfo", "circuit_create", "done"]
    percents = [e.percent for e in events if e.warning is None]
    assert percents == sorted(percents) and percents[-1] == 100
    assert stats.streams_opened == len(sizes) and stats.streams_failed == 0
    assert stats.bytes_read > sum(sizes) and stats.bytes_written == sum(
        len(request(s, f"s{s}")) for s in sizes)
    assert stats.circuits_built >= 1 and stats.circuits.dir_built >= 1
    assert not [line for line in sim.world.trace.lines[mark:] if '"ev":"circ-failed"' in line]


def test_socks_connect_resolve_and_isolation(sim: ClientSim, tmp_path: Path) -> None:
    app = sim.net.add_host("app-socks")

    async def scenario(client: TorClient) -> dict[str, Any]:
        proxy = client.socks_address
        assert proxy is not None
        rt = app.runtime
        out: dict[str, Any] = {}
        code, conn, _ = await socks5(rt, proxy, WEB, 80)
        conn.write(request(50_000, "socks"))
        out["plain"] = (code, await read_all(conn))
        code, _, addr = await socks5(rt, proxy, WEB, 0, command=0xF0)
        out["resolve"] = (code, socks_address_text(addr))
        code, _, _ = await socks5(rt, proxy, "nosuch.simnet.test", 80)
        out["unknown"] = code
        conns = []
        for user in (b"alice", b"bob", b"alice"):
            code, conn, _ = await socks5(rt, proxy, WEB, 80, auth=(user, b"pw"))
            assert code == 0
            conns.append(conn)
        keys = {client.circmgr.isolation_of(c) for c in client.circmgr.circuits()}
        out["keys"] = keys
        for conn in conns:
            conn.write(request(10, "iso"))
            body_of(await read_all(conn), 10, "iso")
        return out

    out = run(sim, tmp_path, scenario)
    code, response = out["plain"]
    assert code == 0 and body_of(response, 50_000, "socks")
    assert out["resolve"] == (0, sim.topo.web_servers[0].address)
    assert out["unknown"] == Reply.HOST_UNREACHABLE  # END RESOLVEFAILED, as C tor maps it
    assert {(5, b"alice", b"pw"), (5, b"bob", b"pw")} <= out["keys"]


def test_isolation_keeps_streams_on_separate_circuits(sim: ClientSim, tmp_path: Path) -> None:
    async def scenario(client: TorClient) -> list[Any]:
        streams = [await client.connect(WEB, 80, isolation=key) for key in ("a", "a", "b", None)]
        circs = [s.circuit for s in streams]
        keys = [client.circmgr.isolation_of(c) for c in circs]
        for s in streams:
            await s.aclose()
        return [circs, keys]

    circs, keys = run(sim, tmp_path, scenario)
    assert circs[0] is circs[1]
    assert len({id(circs[0]), id(circs[2]), id(circs[3])}) == 3
    assert keys == ["a", "a", "b", None]


def test_a_dirty_circuit_takes_no_new_streams_and_closes_when_idle(
        sim: ClientSim, tmp_path: Path) -> None:
    async def scenario(client: TorClient) -> tuple[bool, bool, bool, bool]:
        first = await client.connect(WEB, 80)
        again = await client.connect(WEB, 80)
        same = again.circuit is first.circuit
        await sim.rt.sleep(61)
        later = await client.connect(WEB, 80)
        moved = later.circuit is not first.circuit
        still_open = not first.circuit.closed  # its streams are still open
        for s in (first, again):
            await s.aclose()
        await sim.rt.sleep(5)
        return same, moved, still_open, first.circuit.closed

    same, moved, still_open, closed = run(
        sim, tmp_path, scenario, circuits=CircuitConfig(max_dirtiness=60))
    assert same and moved and still_open and closed


def test_a_relay_crash_fails_the_stream_and_the_next_connect_builds_around_it(
        sim: ClientSim, tmp_path: Path) -> None:
    size = 4_000_000

    async def scenario(client: TorClient) -> tuple[StreamError, str, bytes]:
        stream = await client.connect(WEB, 80)
        stream.write(request(size, "big"))
        middle = stream.circuit.hops[1]
        node = next(r for r in sim.topo.all_relays if r.keys.rsa_id == middle.rsa_id)
        got = await stream.read()
        node.host.crash()
        with pytest.raises(StreamError) as info:
            while data := await stream.read():
                got += data
        body = got.partition(b"\r\n\r\n")[2]
        assert 0 < len(body) < size and body == content("big", len(body))  # a clean prefix
        body = await fetch(client, 30_000, "after")
        node.host.restart()
        return info.value, node.nickname, body

    error, _, body = run(sim, tmp_path, scenario)
    # the guard tells us its link to the crashed middle is gone
    assert error.end_reason is None and "destroyed by the relay (CHANNEL_CLOSED)" in error.reason
    assert len(body) == 30_000


def test_unresolvable_host_is_retried_as_c_tor_then_fails(sim: ClientSim, tmp_path: Path) -> None:
    async def scenario(client: TorClient) -> tuple[StreamError, int]:
        with pytest.raises(StreamError) as info:
            await client.connect("nosuch.simnet.test", 80)
        return info.value, client.stats.stream_retries

    error, retries = run(sim, tmp_path, scenario)
    assert error.end_reason == EndReason.RESOLVEFAILED
    assert retries == 2  # MAX_RESOLVE_FAILURES = 3 attempts


def test_unanswered_begin_is_retried_on_new_circuits(sim: ClientSim, tmp_path: Path) -> None:
    async def scenario(client: TorClient) -> tuple[StreamError, int, float, int, bytes]:
        start = sim.rt.now()
        with pytest.raises(StreamError) as info:
            await client.connect("blackhole.simnet.test", 80)
        took = sim.rt.now() - start
        used = [c for c in client.circmgr.circuits()
                if client.circmgr.isolation_of(c) is not UNBOUND]
        body = await fetch(client, 10, "next")  # and the client goes on
        return info.value, client.stats.stream_retries, took, len(used), body

    error, retries, took, used, body = run(sim, tmp_path, scenario)
    assert "no answer from the exit" in error.reason and error.end_reason is None
    assert retries == 4  # 5 attempts: 10 + 10 + 15 + 15 + 15 s
    assert 65 - 1e-6 <= took < 120  # virtual seconds, up to float rounding
    assert used >= 2 and len(body) == 10


def test_guard_state_survives_a_restart(sim: ClientSim, tmp_path: Path) -> None:
    async def first(client: TorClient) -> tuple[list[bytes], list[bytes]]:
        await fetch(client, 100, "g1")
        guards = client.circmgr.guards
        return [r.rsa_id for r in guards.sampled], guards.confirmed

    async def second(client: TorClient) -> tuple[list[bytes], list[bytes], bytes]:
        stream = await client.connect(WEB, 80)
        guards = client.circmgr.guards
        return [r.rsa_id for r in guards.sampled], guards.confirmed, stream.circuit.hops[0].rsa_id

    sampled1, confirmed1 = run(sim, tmp_path, first)
    events: list[BootstrapEvent] = []
    sampled2, confirmed2, first_hop = run(sim, tmp_path, second, events=events)
    assert confirmed1 and sampled2 == sampled1 and confirmed2[: len(confirmed1)] == confirmed1
    assert first_hop == confirmed1[0]
    # the cached consensus was still live: no directory request at all
    assert "requesting_status" not in [e.tag for e in events]


def test_a_refreshed_consensus_is_adopted(tmp_path: Path) -> None:
    sim = client_sim(5, n_relays=10, interval=600)

    async def scenario(client: TorClient) -> tuple[int, int, bytes]:
        first = client.netdir
        assert first is not None
        await sim.rt.sleep(3 * 600)
        now = client.netdir
        assert now is not None
        body = await fetch(client, 1000, "fresh")
        return first.lifetime.valid_after, now.lifetime.valid_after, body

    before, after, body = run(sim, tmp_path, scenario)
    assert after > before and len(body) == 1000


def test_closing_the_client_leaves_no_task_behind(sim: ClientSim, tmp_path: Path) -> None:
    app = sim.net.add_host("app-close")
    left: list[str] = []

    async def main() -> None:
        config = sim.config(tmp_path)
        async with TorClient(sim.rt, config) as client:
            proxy = client.socks_address
            assert proxy is not None
            _, conn, _ = await socks5(app.runtime, proxy, WEB, 80)
            conn.write(request(5_000_000, "long"))  # still streaming at exit
            await conn.read()
            # and a SOCKS request still waiting for its exit at exit
            pending = await app.runtime.connect(*proxy)
            pending.write(b"\x05\x01\x00\x05\x01\x00\x03\x15blackhole.simnet.test\x00\x50")
            await sim.rt.sleep(1)
        left.extend(t.name for t in sim.rt._tasks.values())

    sim.run(main())
    assert left == ["test"]


class _WaitingListeners:
    """The client's runtime, except that closing a listener waits until the handlers of
    its connections have ended, as asyncio's ``Server.wait_closed`` does since Python
    3.12 (3.11's returned at once; simnet's listener does not wait either)."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    async def listen(self, host: str, port: int, handler: Any, **kw: Any) -> Any:
        active: list[int] = [0]

        async def counted(stream: Any) -> None:
            active[0] += 1
            try:
                await handler(stream)
            finally:
                active[0] -= 1

        inner = await self._rt.listen(host, port, counted, **kw)
        rt = self._rt

        class Listener:
            address = inner.address

            async def aclose(self) -> None:
                await inner.aclose()
                while active[0]:
                    await rt.sleep(0.1)

        return Listener()


def test_closing_ends_socks_connections_even_if_the_listener_waits_for_them(
        sim: ClientSim, tmp_path: Path) -> None:
    # With open SOCKS connections (one spliced, one waiting for its exit), leaving the
    # client must not wait for them before it ends them: it used to close the listener
    # first, and a listener that waits for its connections then waited for ever.
    app = sim.net.add_host("app-close")

    async def main() -> tuple[float, bytes]:
        config = sim.config(tmp_path)
        async with TorClient(_WaitingListeners(sim.rt), config) as client:  # type: ignore[arg-type]
            proxy = client.socks_address
            assert proxy is not None
            _, spliced, _ = await socks5(app.runtime, proxy, WEB, 80)  # idle
            pending = await app.runtime.connect(*proxy)
            pending.write(b"\x05\x01\x00\x05\x01\x00\x03\x15blackhole.simnet.test\x00\x50")
            await sim.rt.sleep(1)
            start = sim.rt.now()
        took = sim.rt.now() - start
        try:
            rest = await spliced.read()
        except GotorError:
            rest = b"<reset>"
        return took, rest

    took, rest = sim.run(main(), limit=600)
    assert took < 30 and rest in (b"", b"<reset>")  # the application saw its connection end


def test_the_socks_port_opens_before_the_bootstrap_and_early_requests_wait_for_it(
        sim: ClientSim, tmp_path: Path) -> None:
    # As C tor's SocksPort: an application that connects while the client is still
    # bootstrapping (gotor run has just started) is served once the client can, not
    # refused because the port opened only after "Bootstrapped 100%".
    app = sim.net.add_host("app-early")
    config = sim.config(tmp_path)
    early: list[tuple[float, int, bytes]] = []

    async def application() -> None:
        await app.runtime.sleep(0.01)  # the client has only just been started
        code, conn, _ = await socks5(app.runtime, config.socks, WEB, 80)  # type: ignore[arg-type]
        conn.write(request(1000, "early"))
        early.append((app.runtime.now(), code, body_of(await read_all(conn), 1000, "early")))

    async def main() -> float:
        app.runtime.spawn(application(), name="early-app")
        async with TorClient(sim.rt, config) as client:
            ready = sim.rt.now()
            assert client.netdir is not None
            while not early:
                await sim.rt.sleep(0.1)
        return ready

    ready = sim.run(main())
    [(answered, code, body)] = early
    assert code == 0 and len(body) == 1000 and answered > ready
