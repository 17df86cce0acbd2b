"""Small helpers for the simnet fabric tests: a two-host world and run-to-completion."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from gotor.runtime.api import ByteStream
from simnet.net import Host, Network
from simnet.world import World


def two_hosts(*, seed: int = 1, shuffle: bool = False, tls: bool = True,
              recv_window: int | None = None, **link: Any) -> tuple[World, Network, Host, Host]:
    """World with hosts "a" and "b" sharing the link parameters ``link``."""
    world = World(seed, shuffle_ties=shuffle)
    world.trace.keep = True
    kwargs = {"recv_window": recv_window} if recv_window else {}
    net = Network(world, tls=tls, **kwargs)
    return world, net, net.add_host("a", **link), net.add_host("b", **link)


def run(world: World, host: Host, coro: Coroutine[Any, Any, Any], until: float = 10_000) -> Any:
    """Run ``coro`` as a task of ``host`` to completion and return its result."""
    task = host.runtime.spawn(coro, name="test")
    world.run(until=until)
    assert task.done(), "the simulation ended with the test task still blocked"
    assert world.errors == [], world.errors
    return task.result()


async def read_all(stream: ByteStream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


def events(world: World, name: str) -> list[str]:
    return [line for line in world.trace.lines if f'"ev":"{name}"' in line]
