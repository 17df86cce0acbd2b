"""Fabric speed and footprint: network events per wall second, simulated seconds per
wall second, and the ratio to bare SimPy doing the same number of timeouts.

    python benchmarks/bench_fabric.py [--quick]

(a) 100 hosts, 1,000 concurrent connections moving 1 MB each (plain TCP streams);
(b) 1,000 hosts, each making request/response exchanges with random peers;
(c) memory per idle connection (tracemalloc), with and without its reader task.
Events are SimPy events processed (counted by wrapping ``env.step``, in the
baseline too); each side is the best of three runs (the machine is shared, and
comparing one noisy run against a best-of-three would inflate the ratio).
(a) and (b) are also run with tracing off (no CRC-32 of delivered bytes, no
JSON records) to separate the fabric's own cost from the trace's.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import simpy

import simnet.link
from gotor.runtime.api import ByteStream
from simnet.net import Host, Network
from simnet.trace import TraceRecorder
from simnet.world import World

MB = 1_000_000
BLOCK = 64 * 1024


def count_steps(env: simpy.Environment) -> list[int]:
    counter = [0]
    step = env.step

    def counted() -> None:
        counter[0] += 1
        step()

    env.step = counted  # type: ignore[method-assign]
    return counter


def bare_simpy(events: int, processes: int = 1000) -> float:
    """Seconds bare SimPy needs for ``events`` timeouts (best of three runs)."""
    return min(_bare_simpy_once(events, processes) for _ in range(3))


def _bare_simpy_once(events: int, processes: int) -> float:
    env = simpy.Environment()
    counter = count_steps(env)
    per = events // processes + 1

    def proc(i: int) -> Any:
        for k in range(per):
            yield env.timeout(0.001 * ((i * 7 + k) % 13 + 1))

    for i in range(processes):
        env.process(proc(i))
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    return wall * events / counter[0]


async def _sink(stream: ByteStream) -> None:
    while await stream.read():
        pass


def bulk_transfer(hosts: int, conns: int, size: int) -> dict[str, float]:
    world = World(1)
    net = Network(world, tls=False)
    rng = world.rng("bench:topology")
    nodes = [net.add_host(f"h{i}", latency=rng.uniform(0.005, 0.05),
                          up_bps=rng.choice([100e6, 1e9]), down_bps=rng.choice([100e6, 1e9]))
             for i in range(hosts)]
    servers, clients = nodes[: hosts // 2], nodes[hosts // 2:]
    for s in servers:
        s.runtime.spawn(s.runtime.listen(s.ipv4 or "", 80, _sink), name="listen")
    block = bytes(BLOCK)

    async def send(me: Host, peer: Host) -> None:
        stream = await me.runtime.connect(peer.ipv4 or "", 80)
        for _ in range(size // BLOCK):
            stream.write(block)
            await stream.drain()
        stream.write(bytes(size % BLOCK))
        await stream.aclose()

    pick = world.rng("bench:pairs")
    for i in range(conns):
        me = clients[i % len(clients)]
        me.runtime.spawn(send(me, pick.choice(servers)), name="send")
    return _timed(world, lambda: world.run())


def request_response(hosts: int, rounds: int) -> dict[str, float]:
    world = World(2)
    net = Network(world, tls=False)
    rng = world.rng("bench:topology")
    nodes = [net.add_host(f"h{i}", latency=rng.uniform(0.005, 0.1)) for i in range(hosts)]

    async def echo(stream: ByteStream) -> None:
        while data := await stream.read():
            stream.write(data)

    async def client(me: Host) -> None:
        r = world.rng(f"bench:{me.name}")
        await me.runtime.listen(me.ipv4 or "", 80, echo)
        for _ in range(rounds):
            await me.runtime.sleep(r.uniform(0, 2))
            peer = r.choice(nodes)
            stream = await me.runtime.connect(peer.ipv4 or "", 80)
            stream.write(bytes(20_000))
            got = 0
            while got < 20_000:
                got += len(await stream.read())
            await stream.aclose()

    for n in nodes:
        n.runtime.spawn(client(n), name="client")
    return _timed(world, lambda: world.run())


def _timed(world: World, go: Callable[[], None]) -> dict[str, float]:
    counter = count_steps(world.env)
    t0 = time.perf_counter()
    go()
    wall = time.perf_counter() - t0
    assert not world.errors, world.errors[:3]
    return {"wall": wall, "events": counter[0], "virtual": world.now(),
            "records": world.trace.count}


def idle_memory(conns: int, with_reader: bool) -> float:
    world = World(3)
    net = Network(world, tls=False)
    a, b = net.add_host("a"), net.add_host("b")
    keep: list[ByteStream] = []

    async def handler(stream: ByteStream) -> None:
        if with_reader:
            await stream.read()
        else:
            keep.append(stream)
            await b.runtime.sleep(0)   # the task ends; the endpoint stays open

    async def opener() -> None:
        await b.runtime.listen(b.ipv4 or "", 80, handler)
        for _ in range(conns):
            keep.append(await a.runtime.connect(b.ipv4 or "", 80))

    b.runtime.spawn(opener(), name="opener")
    world.run(until=0.001)   # the listener exists, nothing else yet
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    world.run(until=100)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / conns


@contextlib.contextmanager
def tracing_off() -> Any:
    record, digest = TraceRecorder.record, simnet.link.digest
    TraceRecorder.record = lambda self, *a, **k: None  # type: ignore[method-assign]
    simnet.link.digest = lambda data: ""
    try:
        yield
    finally:
        TraceRecorder.record, simnet.link.digest = record, digest  # type: ignore[method-assign]


def best_of_three(run: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The fastest of three runs of one deterministic scenario (same events each time)."""
    return min((run() for _ in range(3)), key=lambda r: r["wall"])


def report(name: str, r: dict[str, float]) -> None:
    baseline = bare_simpy(int(r["events"]))
    rate = r["events"] / r["wall"]
    print(f"{name}: {r['events']:,.0f} events in {r['wall']:.2f} s wall "
          f"({rate:,.0f} events/s), {r['virtual']:.2f} simulated s "
          f"({r['virtual'] / r['wall']:.2f} sim-s per wall-s), {r['records']:,.0f} trace records")
    print(f"  bare SimPy, same event count: {baseline:.2f} s "
          f"({r['events'] / baseline:,.0f} events/s); fabric/bare per event: "
          f"{r['wall'] / baseline:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    conns, hosts = 1000 // scale, 1000 // scale
    def bulk() -> dict[str, float]:
        return bulk_transfer(100, conns, MB)

    def chatter() -> dict[str, float]:
        return request_response(hosts, 5)

    traced = best_of_three(bulk)
    report(f"(a) 100 hosts, {conns} connections x 1 MB", traced)
    print(f"  throughput: {conns * MB / 1e6 / traced['wall']:,.0f} MB of payload per wall second")
    with tracing_off():
        report("(a) the same, tracing off", best_of_three(bulk))
    report(f"(b) {hosts} hosts, request/response x 5", best_of_three(chatter))
    with tracing_off():
        report("(b) the same, tracing off", best_of_three(chatter))
    for reader in (False, True):
        per = idle_memory(1000 // scale, reader)
        what = "with a blocked reader task" if reader else "endpoints only"
        print(f"(c) memory per idle connection ({what}, both ends): {per / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
