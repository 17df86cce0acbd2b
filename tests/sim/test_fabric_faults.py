"""simnet fabric under faults: partitions, crash and restart, loss, latency spikes,
bandwidth caps, clock skew, and the errors connections see.  Times are computed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fabric_helpers import events, read_all, run, two_hosts

from gotor.errors import (
    Cancelled,
    ConnectionRefused,
    ConnectionReset,
    LocalError,
    NetworkError,
    Timeout,
)
from gotor.runtime.api import ByteStream
from gotor.runtime.sync import Queue, timeout
from simnet.faults import (
    BandwidthCap,
    ClockSkew,
    Crash,
    FaultSchedule,
    LatencySpike,
    Loss,
    PartitionFault,
    Restart,
)
from simnet.link import RTO_MIN
from simnet.net import Host
from simnet.world import DEFAULT_EPOCH

ONE_WAY = 0.02   # two hosts with 10 ms access latency each


async def _recv_log(s: ByteStream, log: list[tuple[float, bytes]], host: Host) -> None:
    while data := await s.read():
        log.append((host.runtime.now(), data))


def test_partition_holds_traffic_until_healed() -> None:
    world, net, a, b = two_hosts(latency=0.01)
    log: list[tuple[float, bytes]] = []

    async def handler(s: ByteStream) -> None:
        await _recv_log(s, log, b)

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        FaultSchedule(net).add(1.0, PartitionFault(("a",), ("b",), duration=2.0))
        await a.runtime.sleep(1.5 - a.runtime.now())
        s.write(b"during")
        await a.runtime.sleep(5)
        s.write(b"after")
        await s.aclose()

    run(world, a, main())
    # held (black-holed) until the heal at 3.0, then one propagation delay
    assert log[0] == (pytest.approx(3.0 + ONE_WAY, abs=1e-9), b"during")
    assert log[1][1] == b"after"
    assert len(events(world, "partition")) == len(events(world, "heal")) == 1


def test_data_in_flight_when_partition_starts_is_held_too() -> None:
    world, net, a, b = two_hosts(latency=0.01)
    log: list[tuple[float, bytes]] = []

    async def handler(s: ByteStream) -> None:
        await _recv_log(s, log, b)

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(b"x")                          # would arrive at now + 20 ms
        part = net.partition(["a"])            # side_b = everyone else
        await a.runtime.sleep(1.0)
        part.heal()
        part.heal()                            # healing twice is harmless
        await s.aclose()

    run(world, a, main())
    assert log == [(pytest.approx(0.04 + 1.0 + ONE_WAY, abs=1e-9), b"x")]


def test_syn_into_partition_is_retransmitted_after_heal() -> None:
    world, net, a, b = two_hosts(latency=0.01)

    async def handler(s: ByteStream) -> None:
        pass

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        FaultSchedule(net).add(0.0, PartitionFault(("a",), ("b",), duration=2.5))
        await a.runtime.sleep(1.0)
        await a.runtime.connect(b.ipv4, 80)   # SYNs at 1, 2 (lost), 4 (through)
        return a.runtime.now()

    assert run(world, a, main()) == pytest.approx(4.0 + 2 * ONE_WAY, abs=1e-9)


def test_connect_to_down_or_unknown_host_times_out_like_tcp() -> None:
    world, _net, a, b = two_hosts(latency=0.01)
    b.crash()

    async def main() -> list[tuple[str, float]]:
        out = []
        for target in (b.ipv4, "192.0.2.1"):
            t0 = a.runtime.now()
            try:
                await a.runtime.connect(target, 80)
            except NetworkError as exc:
                out.append((type(exc).__name__, a.runtime.now() - t0))
        try:
            await timeout(a.runtime, 5, a.runtime.connect(b.ipv4, 80), what="connect")
        except Timeout:
            out.append(("Timeout", 5.0))
        return out

    # Linux: 6 SYN retransmissions, 1+2+4+8+16+32+64 = 127 s
    assert run(world, a, main()) == [("NetworkError", pytest.approx(127.0)),
                                     ("NetworkError", pytest.approx(127.0)), ("Timeout", 5.0)]
    assert len(events(world, "connect-timeout")) == 2


def test_refused_after_one_round_trip() -> None:
    world, _net, a, b = two_hosts(latency=0.01)

    async def main() -> float:
        try:
            await a.runtime.connect(b.ipv4, 81)
        except ConnectionRefused:
            return a.runtime.now()
        return -1.0

    assert run(world, a, main()) == pytest.approx(2 * ONE_WAY)
    assert len(events(world, "refused")) == 1


def test_crash_resets_peer_after_latency_and_cancels_tasks() -> None:
    world, net, a, b = two_hosts(latency=0.01)
    server_side: list[str] = []

    async def handler(s: ByteStream) -> None:
        try:
            await s.read()
        except Cancelled:
            server_side.append("handler cancelled")
            raise

    async def main() -> tuple[str, float, list[str]]:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        FaultSchedule(net).add(1.0, Crash("b"))
        try:
            await s.read()
        except ConnectionReset as exc:
            outcome = str(exc)
        try:
            s.write(b"x")
        except ConnectionReset:
            outcome += " / write reset"
        return outcome, a.runtime.now(), server_side

    outcome, when, server = run(world, a, main())
    assert "reset by peer" in outcome and outcome.endswith("write reset")
    assert when == pytest.approx(1.0 + ONE_WAY)
    assert server == ["handler cancelled"]
    assert not b.alive and b.listeners == {} and b.streams == []


def test_restart_gives_fresh_runtime_and_calls_on_restart() -> None:
    world, net, a, b = two_hosts(latency=0.01)

    async def handler(s: ByteStream) -> None:
        s.write(b"incarnation %d" % b.incarnation)

    def start(host: Host) -> None:
        host.runtime.spawn(host.runtime.listen(host.ipv4, 80, handler), name="listen")

    start(b)
    b.on_restart(start)
    old_runtime = b.runtime

    async def main() -> list[object]:
        out: list[object] = []
        s = await a.runtime.connect(b.ipv4, 80)
        out.append(await read_all(s))
        FaultSchedule(net).add(1.0, Crash("b")).add(2.0, Restart("b"))
        await a.runtime.sleep(1.5 - a.runtime.now())
        try:
            await timeout(a.runtime, 0.4, a.runtime.connect(b.ipv4, 80))
        except Timeout:
            out.append("down: black hole")
        await a.runtime.sleep(1.0)
        s = await a.runtime.connect(b.ipv4, 80)
        out.append(await read_all(s))
        return out

    assert run(world, a, main()) == [b"incarnation 0", "down: black hole", b"incarnation 1"]
    assert b.runtime is not old_runtime and b.incarnation == 1
    assert b.runtime.random_bytes(16) != old_runtime.random_bytes(16)
    with pytest.raises(LocalError):
        b.restart()


def test_crash_with_duration_restarts_by_itself() -> None:
    world, net, _a, b = two_hosts()
    FaultSchedule(net).add(1.0, Crash("b", duration=2.0))
    world.run(until=2.0)
    assert not b.alive
    world.run(until=3.5)
    assert b.alive and b.incarnation == 1
    assert [e for e in events(world, "crash")] and [e for e in events(world, "restart")]


def test_loss_adds_retransmission_timeouts() -> None:
    world, _net, a, b = two_hosts(latency=0.01)
    a.configure(loss=0.15)
    log: list[tuple[float, bytes]] = []

    async def handler(s: ByteStream) -> None:
        await _recv_log(s, log, b)

    sent: list[float] = []

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        for i in range(60):
            sent.append(a.runtime.now())
            s.write(bytes([i]) * 125)          # 1000 bits: 10 us at 100 Mbit/s
            await a.runtime.sleep(8.0)         # longer than 5 RTO doublings: no overlap
        await s.aclose()

    run(world, a, main())
    assert b"".join(d for _, d in log) == b"".join(bytes([i]) * 125 for i in range(60))
    base = 1000 / 100e6 + ONE_WAY
    rto = RTO_MIN + 2 * ONE_WAY
    allowed = [rto * (2**k - 1) for k in range(6)]   # k losses in a row, RTO doubling
    extras = [t - s0 - base for (t, _), s0 in zip(log, sent)]
    for extra in extras:
        assert min(abs(extra - x) for x in allowed) < 1e-9, extra
    assert sum(1 for e in extras if e > 1e-9) >= 3   # losses did happen (p = 0.15, 60 chunks)


def test_loss_blocks_the_head_of_the_line() -> None:
    world, net, a, b = two_hosts(latency=0.01)
    log: list[tuple[float, bytes]] = []

    async def handler(s: ByteStream) -> None:
        await _recv_log(s, log, b)

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        for i in range(200):
            s.write(bytes([i % 256]))
            await a.runtime.sleep(0.005)
        await s.aclose()

    FaultSchedule(net).add(0.0, Loss("a", 0.1))
    run(world, a, main())
    times = [t for t, _ in log]
    assert b"".join(d for _, d in log) == bytes(i % 256 for i in range(200))
    assert times == sorted(times)
    # a retransmission (>= 240 ms) stalled later bytes: some read returned several at once
    assert any(len(d) > 1 for _, d in log)


def test_latency_spike_and_bandwidth_cap_apply_then_revert() -> None:
    world, net, a, b = two_hosts(latency=0.01, up_bps=100e6, down_bps=100e6)
    log: list[tuple[float, bytes]] = []

    async def handler(s: ByteStream) -> None:
        await _recv_log(s, log, b)

    marks: list[float] = []

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        FaultSchedule(net).extend([(1.0, LatencySpike("b", 0.3, duration=1.0)),
                                   (3.0, BandwidthCap("a", up_bps=1e6, duration=1.0))])
        for at, size in ((1.5, 125), (2.5, 125), (3.5, 12_500), (4.5, 12_500)):
            await a.runtime.sleep(at - a.runtime.now())
            marks.append(a.runtime.now())
            s.write(bytes(size))
        await s.aclose()

    run(world, a, main())
    t = [time for time, _ in log]
    assert t[0] - marks[0] == pytest.approx(1000 / 100e6 + ONE_WAY + 0.3)   # spiked
    assert t[1] - marks[1] == pytest.approx(1000 / 100e6 + ONE_WAY)         # reverted
    assert t[2] - marks[2] == pytest.approx(100_000 / 1e6 + ONE_WAY)        # capped
    assert t[3] - marks[3] == pytest.approx(100_000 / 100e6 + ONE_WAY)      # reverted
    assert len(events(world, "impair")) == 2 and len(events(world, "unimpair")) == 2


def test_clock_skew_moves_wallclock_only() -> None:
    world, net, a, b = two_hosts()
    FaultSchedule(net).add(1.0, ClockSkew("b", -3600.0))
    world.run(until=2.0)
    assert b.runtime.now() == a.runtime.now() == 2.0
    assert a.runtime.wallclock() == DEFAULT_EPOCH + 2.0
    assert b.runtime.wallclock() == DEFAULT_EPOCH + 2.0 - 3600.0


def test_data_sent_to_a_closed_socket_resets_the_sender() -> None:
    world, _net, a, b = two_hosts(latency=0.01)
    closed: Queue[None] = Queue(b.runtime)

    async def handler(s: ByteStream) -> None:
        await s.aclose()                       # closes at once, reading nothing
        closed.put_nowait(None)

    async def main() -> str:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        assert await s.read() == b""           # the server's FIN
        s.write(b"too late")                   # half-open: TCP answers with RST
        await a.runtime.sleep(1.0)
        try:
            s.write(b"again")
        except ConnectionReset:
            return "reset"
        return "no reset"

    assert run(world, a, main()) == "reset"


def test_listen_errors() -> None:
    world, _net, a, b = two_hosts()

    async def handler(s: ByteStream) -> None:
        pass

    async def main() -> list[str]:
        out = []
        await a.runtime.listen(a.ipv4, 80, handler)
        for addr, port in ((a.ipv4, 80), ("0.0.0.0", 80), (b.ipv4, 81)):
            try:
                await a.runtime.listen(addr, port, handler)
            except NetworkError as exc:
                out.append(str(exc).split(": ")[-1])
        for port in (-1, 70000):
            try:
                await a.runtime.listen(a.ipv4, port, handler)
            except LocalError:
                out.append("bad port")
        return out

    assert run(world, a, main()) == ["address already in use", "address already in use",
                                     "address not available", "bad port", "bad port"]


def test_fault_schedule_rejects_the_past_and_bad_values() -> None:
    world, net, _a, _b = two_hosts()
    world.run(until=5.0)
    with pytest.raises(LocalError):
        FaultSchedule(net).add(1.0, Crash("a"))
    # Refused when made, not when applied in the middle of a run (a crash with a negative
    # duration used to take its host down first and then fail inside the scheduler).
    bad: list[Callable[[], object]] = [
        lambda: Loss("a", 1.0), lambda: LatencySpike("a", -1.0),
        lambda: BandwidthCap("a", up_bps=0), lambda: Crash("a", duration=-1.0),
        lambda: PartitionFault(("a",), duration=-1.0), lambda: Loss("a", 0.1, -2.0)]
    for make in bad:
        with pytest.raises(LocalError):
            make()
    assert net.host("a").alive
    with pytest.raises(LocalError):
        Crash("nobody").apply(net)
