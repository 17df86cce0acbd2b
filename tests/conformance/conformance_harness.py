"""The runtime conformance harness: one suite, every binding (fixtures in conftest.py).

Each test is an ``async def main(ctx)`` run by :class:`Harness.run` under:

* ``asyncio`` — :class:`gotor.runtime.aio.AsyncioRuntime` on real loopback TCP
  (127.0.0.1), bounded by a wall-clock limit so a hang fails instead of blocking;
* ``simnet`` — two simnet hosts, the client's runtime and the server's;
* ``simnet-shuffled`` — the same with same-time events in seeded random order.

``ctx.rt`` is the client side's runtime, ``ctx.srv`` the server side's (the same
object under asyncio), ``ctx.host`` the address servers listen on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gotor.runtime.aio import AsyncioRuntime
from gotor.runtime.api import Runtime, TlsCredentials
from simnet.net import Network
from simnet.tls import cert_der
from simnet.world import World

WALL_LIMIT = 30.0        # seconds of real time for one asyncio test
VIRTUAL_LIMIT = 3600.0   # seconds of virtual time for one simnet test


@dataclass
class Ctx:
    rt: Runtime
    srv: Runtime
    host: str
    creds: TlsCredentials
    cert_der: bytes
    binding: str


Main = Callable[[Ctx], Coroutine[Any, Any, Any]]


class Harness:
    def __init__(self, binding: str, creds: TlsCredentials) -> None:
        self.binding = binding
        self.creds = creds

    def run(self, main: Main) -> Any:
        if self.binding == "asyncio":
            return asyncio.run(self._run_asyncio(main))
        return self._run_simnet(main, shuffle=self.binding == "simnet-shuffled")

    async def _run_asyncio(self, main: Main) -> Any:
        rt = AsyncioRuntime()
        ctx = Ctx(rt, rt, "127.0.0.1", self.creds, cert_der(self.creds), self.binding)
        return await asyncio.wait_for(main(ctx), WALL_LIMIT)

    def _run_simnet(self, main: Main, *, shuffle: bool) -> Any:
        world = World(7, shuffle_ties=shuffle)
        net = Network(world)
        client, server = net.add_host("client"), net.add_host("server")
        assert server.ipv4 is not None
        ctx = Ctx(client.runtime, server.runtime, server.ipv4, self.creds,
                  cert_der(self.creds), self.binding)
        task = client.runtime.spawn(main(ctx), name="test-main")
        world.run(until=VIRTUAL_LIMIT)
        assert task.done(), f"test did not finish within {VIRTUAL_LIMIT} virtual seconds"
        assert world.errors == [], world.errors
        return task.result()
