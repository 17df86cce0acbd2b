"""simnet fabric: addresses, IPv6, host names, ports, scale, trace events, validation."""

from __future__ import annotations

import gc
import json

import pytest
from fabric_helpers import events, read_all, run, two_hosts

from gotor.errors import LocalError, NetworkError
from gotor.runtime.api import ByteStream
from simnet.link import Pipe, SimStream, digest
from simnet.net import EPHEMERAL_FIRST, Network
from simnet.world import World


def test_addresses_are_assigned_deterministically_and_unique() -> None:
    net = Network(World(1))
    hosts = [net.add_host(f"h{i}") for i in range(600)]
    addrs = [h.ipv4 for h in hosts]
    assert addrs[0] == "10.0.0.1" and addrs[253] == "10.0.0.254" and addrs[254] == "10.0.1.1"
    assert len(set(addrs)) == 600
    assert all(net.lookup(h.ipv4) is h for h in hosts)  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        net.add_host("h0")
    with pytest.raises(LocalError):
        net.add_host("x", ipv4="10.0.0.1")
    for bad in ({"ipv4": "300.1.1.1"}, {"ipv6": "10.0.0.9"}, {"up_bps": 0}, {"latency": -1},
                {"loss": 1.0}, {"jitter": -0.1}):
        with pytest.raises(LocalError):
            net.add_host("bad", **bad)  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        hosts[0].configure(bandwidth=5)
    with pytest.raises(LocalError):
        net.host("nobody")


def test_ipv6_connection_and_labels() -> None:
    world = World(1)
    world.trace.keep = True
    net = Network(world)
    a = net.add_host("a", ipv6="2001:db8::1")
    b = net.add_host("b", ipv4="192.0.2.7", ipv6="2001:db8:0:0::2")
    assert b.ipv6 == "2001:db8::2"

    async def handler(s: ByteStream) -> None:
        s.write(repr(s.peer).encode())

    async def main() -> bytes:
        await b.runtime.listen("::", 443, handler)
        s = await a.runtime.connect("[2001:db8::2]", 443)
        return await read_all(s)

    assert run(world, a, main()) == repr(("2001:db8::1", EPHEMERAL_FIRST)).encode()
    assert '"conn":"[2001:db8::1]:49152>[2001:db8::2]:443"' in events(world, "connect")[0]


def test_connect_by_host_name_and_unreachable_family() -> None:
    world, _net, a, b = two_hosts()

    async def handler(s: ByteStream) -> None:
        s.write(b"hi")

    async def main() -> tuple[bytes, str]:
        await b.runtime.listen("0.0.0.0", 80, handler)
        s = await a.runtime.connect("b", 80)
        data = await read_all(s)
        try:
            await a.runtime.connect("2001:db8::5", 80)   # "a" has no IPv6 address
        except NetworkError as exc:
            return data, str(exc)
        return data, ""

    data, err = run(world, a, main())
    assert data == b"hi" and err.endswith("network unreachable")


def test_ephemeral_ports_increase_and_are_released() -> None:
    world, _net, a, b = two_hosts()

    async def handler(s: ByteStream) -> None:
        pass

    async def main() -> list[int]:
        await b.runtime.listen(b.ipv4, 80, handler)
        ports = []
        for _ in range(3):
            s = await a.runtime.connect(b.ipv4, 80)
            ports.append(s.local[1])
            await s.aclose()
        listener = await a.runtime.listen(a.ipv4, 0, handler)
        ports.append(listener.address[1])
        return ports

    assert run(world, a, main()) == [EPHEMERAL_FIRST + i for i in range(4)]
    assert a._used_ports == {EPHEMERAL_FIRST + 3}  # only the listener's


def test_trace_records_connection_life() -> None:
    world, _net, a, b = two_hosts(latency=0.01)

    async def handler(s: ByteStream) -> None:
        await read_all(s)
        s.abort()

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        s.write(b"abc")
        s.write_eof()
        await a.runtime.sleep(1)

    run(world, a, main())
    records = [json.loads(line) for line in world.trace.lines]
    assert [(r["node"], r["ev"]) for r in records] == [
        ("b", "listen"), ("a", "connect"), ("b", "accept"), ("b", "recv"), ("b", "fin"),
        ("b", "reset"), ("a", "reset")]
    recv = records[3]
    assert recv["n"] == 3 and recv["crc"] == digest(b"abc") == "352441c2"  # CRC-32 of b"abc"
    assert records[5]["by"] == "local" and records[6]["by"] == "peer"
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)


def test_finished_connections_leave_no_reference_cycles() -> None:
    """A connection closed or reset at both ends is freed by reference counting,
    not left to the cyclic GC (thousands of those made GC a large share of a run)."""
    world, net, a, b = two_hosts(tls=False)

    async def echo(s: ByteStream) -> None:
        while data := await s.read():
            s.write(data)

    async def rude(s: ByteStream) -> None:
        s.abort()

    async def main() -> None:
        await b.runtime.listen(b.ipv4, 80, echo)
        await b.runtime.listen(b.ipv4, 81, rude)
        for ending in ("close", "abort"):
            s = await a.runtime.connect(b.ipv4, 80)
            s.write(b"ping")
            assert await s.read() == b"ping"
            await s.aclose() if ending == "close" else s.abort()
        s = await a.runtime.connect(b.ipv4, 81)   # reset by the server
        await a.runtime.sleep(1)
        await s.aclose()
        await a.runtime.sleep(1)

    def ours(o: object) -> bool:
        return (isinstance(o, Pipe) and o.net is net) or (
            isinstance(o, SimStream) and o.host.network is net)

    gc.collect()
    gc.disable()
    try:
        run(world, a, main())
        alive = [o for o in gc.get_objects() if ours(o)]   # other tests' may still live
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert len(events(world, "reset")) == 4 and len(events(world, "accept")) == 3
    assert alive == [] and cyclic == []


def test_a_thousand_hosts_talk_without_pairwise_state() -> None:
    world = World(3)
    net = Network(world)
    hosts = [net.add_host(f"h{i}", latency=0.001 * (i % 50)) for i in range(1000)]
    done: list[int] = []

    async def handler(s: ByteStream) -> None:
        s.write(await s.read())

    async def ring(i: int) -> None:
        me, peer = hosts[i], hosts[(i + 1) % len(hosts)]
        await me.runtime.listen(me.ipv4, 80, handler)  # type: ignore[arg-type]
        await me.runtime.sleep(0.1)
        s = await me.runtime.connect(peer.ipv4, 80)  # type: ignore[arg-type]
        s.write(b"%d" % i)
        if await s.read() == b"%d" % i:
            done.append(i)

    for i, h in enumerate(hosts):
        h.runtime.spawn(ring(i), name="ring")
    world.run()
    assert sorted(done) == list(range(1000)) and world.errors == []
    assert net._paths == {}   # no per-pair objects were needed


def test_handler_bug_is_reported_and_connection_reset() -> None:
    world, _net, a, b = two_hosts()

    async def handler(s: ByteStream) -> None:
        raise ValueError("handler bug")

    async def main() -> str:
        await b.runtime.listen(b.ipv4, 80, handler)
        s = await a.runtime.connect(b.ipv4, 80)
        try:
            await s.read()
        except NetworkError:
            return "reset"
        return "eof"

    task = a.runtime.spawn(main(), name="main")
    world.run(until=100)
    assert task.result() == "reset"
    assert len(world.errors) == 1 and "handler bug" in world.errors[0]
