"""A small simnet world for the client-stack tests: scripted relays, web targets, a client."""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from stack_relay import Misbehave, ScriptRelay, link

from gotor.runtime.api import ByteStream
from simnet.binding import SimRuntime
from simnet.net import Host, Network
from simnet.world import World

ECHO, SOURCE, SINK, CLOSED_PORT = 80, 81, 82, 83


def content(n: int, seed: int = 0) -> bytes:
    """n deterministic bytes."""
    return hashlib.shake_256(b"stack content %d" % seed).digest(n)


async def _read_line(s: ByteStream) -> tuple[bytes, bytes]:
    buf = b""
    while b"\n" not in buf:
        data = await s.read()
        if not data:
            return b"", b""
        buf += data
    line, _, rest = buf.partition(b"\n")
    return line, rest


async def echo(s: ByteStream) -> None:
    while data := await s.read():
        s.write(data)
        await s.drain()


async def source(s: ByteStream) -> None:
    """Reads "N\\n", sends content(N), closes."""
    line, _ = await _read_line(s)
    data = content(int(line or b"0"))
    for i in range(0, len(data), 65536):
        s.write(data[i : i + 65536])
        await s.drain()


async def sink(s: ByteStream) -> None:
    """Reads "N\\n" then N bytes; answers with their SHA-256 in hex."""
    line, got = await _read_line(s)
    n = int(line or b"0")
    while len(got) < n:
        data = await s.read()
        if not data:
            return
        got += data
    s.write(hashlib.sha256(got[:n]).hexdigest().encode())
    await s.drain()


@dataclass
class StackWorld:
    world: World
    net: Network
    relays: list[ScriptRelay]
    client: Host
    web: Host

    @property
    def rt(self) -> SimRuntime:
        return self.client.runtime

    def run(self, coro: Coroutine[Any, Any, Any], until: float = 3600) -> Any:
        """Start the relays and web servers, then run ``coro`` on the client to completion."""
        async def main() -> Any:
            for relay in self.relays:
                await relay.start()
            web_rt = self.web.runtime
            for port, handler in ((ECHO, echo), (SOURCE, source), (SINK, sink)):
                await web_rt.listen(self.web.ipv4 or "", port, handler)
            return await coro

        task = self.rt.spawn(main(), name="test")
        self.world.run(until=until)
        assert task.done(), "the simulation ended with the test task still blocked"
        assert self.world.errors == [], self.world.errors
        return task.result()


def stack_world(seed: int = 1, *, n_relays: int = 3, shuffle: bool = False, tls: bool = True,
                misbehave: dict[int, Misbehave] | None = None, emit_v1: bool = True,
                bandwidth: float = 100e6, latency: float = 0.01) -> StackWorld:
    world = World(seed, shuffle_ties=shuffle)
    world.trace.keep = True
    net = Network(world, tls=tls)
    client = net.add_host("client", up_bps=bandwidth, down_bps=bandwidth, latency=latency)
    web = net.add_host("web", up_bps=bandwidth, down_bps=bandwidth, latency=latency)
    dns = {"web.example": web.ipv4 or ""}
    bad = misbehave or {}
    relays = [ScriptRelay(net, f"relay{i}", dns=dns, reject_ports=frozenset({25}),
                          misbehave=bad.get(i), emit_v1=emit_v1) for i in range(n_relays)]
    for relay in relays:
        relay.host.configure(up_bps=bandwidth, down_bps=bandwidth, latency=latency)
    link(relays)
    return StackWorld(world, net, relays, client, web)


def events(world: World, name: str) -> list[str]:
    return [line for line in world.trace.lines if f'"ev":"{name}"' in line]
