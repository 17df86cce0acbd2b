"""simnet fabric: latency, bandwidth, queueing and flow control give computed virtual times.

Every expected time below is computed from the link parameters and the model of
simnet.link (cut-through serialisation at min(uplink, downlink), one-way delay =
sum of access latencies), not observed and pasted.
"""

from __future__ import annotations

import itertools

import pytest
from fabric_helpers import read_all, run, two_hosts
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.errors import LocalError
from gotor.runtime.api import ByteStream
from gotor.runtime.sync import Queue
from simnet.link import CHUNK, HIGH_WATER
from simnet.net import Network
from simnet.world import World

MB = 1_000_000


async def _sink_times(stream: ByteStream, log: list[tuple[float, int]], rt: object) -> None:
    while data := await stream.read():
        log.append((rt.now(), len(data)))  # type: ignore[attr-defined]


def test_connect_takes_one_round_trip_and_accept_one_and_a_half() -> None:
    world, _net, a, b = two_hosts(latency=0.025)
    accepted: list[float] = []

    async def handler(s: ByteStream) -> None:
        accepted.append(b.runtime.now())

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        await a.runtime.sleep(1.0)
        await a.runtime.connect(b.ipv4, 80)
        return a.runtime.now()

    assert run(world, a, main()) == pytest.approx(1.0 + 2 * 0.05, abs=1e-12)
    assert accepted == [pytest.approx(1.0 + 3 * 0.05, abs=1e-12)]


def test_one_megabyte_over_10_mbit_with_50_ms_latency() -> None:
    # 10 Mbit/s both ways, 25 ms access latency each side: 50 ms one way.
    world, _net, a, b = two_hosts(up_bps=10e6, down_bps=10e6, latency=0.025)
    log: list[tuple[float, int]] = []

    async def handler(s: ByteStream) -> None:
        await _sink_times(s, log, b.runtime)

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        start = a.runtime.now()
        s.write(b"\x01" * MB)
        await s.drain()
        await s.aclose()
        return start

    start = run(world, a, main())
    assert start == pytest.approx(0.1)
    assert sum(n for _, n in log) == MB
    # serialisation 8e6 bits / 10e6 bit/s = 0.8 s, plus the 50 ms propagation
    assert log[-1][0] == pytest.approx(start + 0.8 + 0.05, abs=1e-9)
    # the first chunk arrives after its own serialisation plus propagation
    assert log[0][0] == pytest.approx(start + CHUNK * 8 / 10e6 + 0.05, abs=1e-9)


def test_slow_downlink_is_the_bottleneck() -> None:
    world = World(1)
    net = Network(world)
    a = net.add_host("a", up_bps=10e6, down_bps=10e6, latency=0.01)
    b = net.add_host("b", up_bps=10e6, down_bps=2e6, latency=0.03)
    log: list[tuple[float, int]] = []

    async def handler(s: ByteStream) -> None:
        await _sink_times(s, log, b.runtime)

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(bytes(MB))
        await s.aclose()
        return a.runtime.now()

    start = run(world, a, main())
    assert log[-1][0] == pytest.approx(start + 0.04 + MB * 8 / 2e6, abs=1e-9)


def test_small_message_latency() -> None:
    world, _net, a, b = two_hosts(up_bps=1e6, down_bps=4e6, latency=0.02)
    got: list[float] = []

    async def handler(s: ByteStream) -> None:
        await s.read()
        got.append(b.runtime.now())

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(bytes(125))
        return a.runtime.now()

    sent = run(world, a, main())
    # 1000 bits through the 1 Mbit/s uplink (the slower end), then 40 ms
    assert got == [pytest.approx(sent + 1000 / 1e6 + 0.04, abs=1e-12)]


def test_two_flows_share_the_senders_uplink() -> None:
    world = World(1)
    net = Network(world)
    a = net.add_host("a", up_bps=10e6, latency=0.01)
    servers = [net.add_host(f"s{i}", down_bps=100e6, latency=0.01) for i in range(2)]
    done: dict[str, float] = {}

    def handler(name: str, host: object) -> object:
        async def h(s: ByteStream) -> None:
            assert len(await read_all(s)) == MB
            done[name] = host.runtime.now()  # type: ignore[attr-defined]
        return h

    async def main() -> float:
        streams = []
        for srv in servers:
            await srv.runtime.listen(srv.ipv4, 80, handler(srv.name, srv))
            streams.append(await a.runtime.connect(srv.ipv4, 80))
        start = a.runtime.now()
        for s in streams:
            s.write(bytes(MB))
            s.write_eof()
        return start

    start = run(world, a, main())
    alone = MB * 8 / 10e6
    last = start + 2 * alone + 0.02
    assert max(done.values()) == pytest.approx(last, abs=1e-9)
    # round robin: the other flow ends at most one chunk earlier, far later than alone
    assert min(done.values()) >= last - CHUNK * 8 / 10e6 - 1e-9


def test_receive_window_stops_sender_and_window_updates_take_latency() -> None:
    window = 64 * 1024
    world, _net, a, b = two_hosts(recv_window=window, up_bps=100e6, down_bps=100e6, latency=0.025)
    log: list[tuple[float, int]] = []

    async def handler(s: ByteStream) -> None:
        await _sink_times(s, log, b.runtime)

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(bytes(10 * window))
        s.write_eof()
        return a.runtime.now()

    start = run(world, a, main())
    ser, prop = window * 8 / 100e6, 0.05
    # one window per cycle: serialise, propagate, read, window update propagates back
    expected = [start + k * (ser + 2 * prop) + ser + prop for k in range(10)]
    assert [t for t, _ in log] == pytest.approx(expected, abs=1e-9)


def test_backpressure_holds_exactly_one_window_in_flight() -> None:
    world, net, a, b = two_hosts(latency=0.01)
    streams: Queue[ByteStream] = Queue(b.runtime)

    async def handler(s: ByteStream) -> None:
        streams.put_nowait(s)
        await b.runtime.sleep(1000)

    async def main() -> tuple[int, int, bool, int]:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(bytes(4 * net.recv_window))
        drain = a.runtime.spawn(s.drain(), name="drain")
        await a.runtime.sleep(5)
        sent_before = s.out.sent  # type: ignore[attr-defined]
        blocked = not drain.done()
        peer = await streams.get()
        await peer.read(CHUNK)
        await a.runtime.sleep(0.0199)
        still = s.out.sent  # type: ignore[attr-defined]
        await a.runtime.sleep(0.0002)
        return sent_before, still, blocked, s.out.sent  # type: ignore[attr-defined]

    sent_before, still, blocked, after = run(world, a, main())
    assert sent_before == net.recv_window           # the window, not a byte more
    assert blocked                                  # 3 MiB unsent > HIGH_WATER
    assert still == sent_before                     # the update needs 20 ms to come back
    assert after == sent_before + CHUNK             # then exactly the freed room is sent
    assert 4 * net.recv_window - net.recv_window > HIGH_WATER


@pytest.mark.parametrize("shuffle", [False, True])
def test_jitter_delays_but_never_reorders(shuffle: bool) -> None:
    world, _net, a, b = two_hosts(shuffle=shuffle, latency=0.01, jitter=0.05)
    arrivals: list[float] = []
    received = bytearray()

    async def handler(s: ByteStream) -> None:
        while data := await s.read():
            received.extend(data)
            arrivals.append(b.runtime.now())

    async def main() -> float:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        for i in range(500):
            s.write(i.to_bytes(2, "big"))
            await a.runtime.sleep(0.001)
        await s.aclose()
        return a.runtime.now()

    run(world, a, main())
    assert bytes(received) == b"".join(i.to_bytes(2, "big") for i in range(500))
    gaps = {round(b2 - b1, 6) for b1, b2 in itertools.pairwise(arrivals)}
    assert len(gaps) > 10  # jitter really varies the delivery times


@settings(max_examples=25, deadline=None)
@given(writes=st.lists(st.integers(1, 150_000), min_size=1, max_size=12),
       reads=st.integers(1, 100_000), loss=st.sampled_from([0.0, 0.2]),
       jitter=st.sampled_from([0.0, 0.01]), seed=st.integers(0, 3))
def test_any_writes_arrive_intact_and_in_order(writes: list[int], reads: int, loss: float,
                                               jitter: float, seed: int) -> None:
    world, _net, a, b = two_hosts(seed=seed, loss=loss, jitter=jitter)
    payload = world.byte_stream("payload")(sum(writes))
    got = bytearray()

    async def handler(s: ByteStream) -> None:
        while data := await s.read(reads):
            assert len(data) <= reads
            got.extend(data)

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        pos = 0
        for n in writes:
            s.write(payload[pos:pos + n])
            pos += n
            await s.drain()
        await s.aclose()

    run(world, a, main())
    assert bytes(got) == payload


def test_per_pair_path_override_replaces_access_latencies() -> None:
    world = World(1)
    net = Network(world)
    a, b, c = (net.add_host(n, latency=0.01) for n in "abc")
    net.set_path("b", "a", latency=0.3)
    with pytest.raises(LocalError):
        net.set_path("a", "b", loss=1.0)

    async def handler(s: ByteStream) -> None:
        pass

    async def main() -> list[float]:
        times = []
        for host in (b, c):
            await host.runtime.listen(host.ipv4, 80, handler)
            t0 = a.runtime.now()
            await a.runtime.connect(host.ipv4, 80)
            times.append(a.runtime.now() - t0)
        return times

    # a<->b uses the override both ways; a<->c the sum of access latencies
    assert run(world, a, main()) == [pytest.approx(0.6), pytest.approx(0.04)]
    assert net.one_way(b, a) == net.one_way(a, b) == 0.3
