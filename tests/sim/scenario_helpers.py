"""Helpers for the scenario tests: a small scenario, and a stand-in client factory.

``direct_proxy`` is a client factory for :func:`simnet.scenario.run_scenario`
that skips Tor altogether: gotor's SOCKS server on the client host, whose
CONNECT resolves the name in the topology's DNS and opens a plain TCP
connection.  It lets the runner's own machinery (plans, agents, faults,
invariants, reports) be tested in a fraction of a second per run, and it is a
second, independent SOCKS server for the agents' SOCKS client.  Tests that
need the real thing use the default factory (gotor's TorClient).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gotor.errors import NetworkError
from gotor.runtime.api import ByteStream
from gotor.socks.machine import Isolation
from gotor.socks.server import SocksServer
from simnet.scenario import ClientSetup, ProxyClient
from simnet.scenario_spec import Scenario, parse_scenario

REPO = Path(__file__).resolve().parents[2]

#: A few relays, two agents, a handful of fetches: quick with either client.
SMALL: dict[str, dict[str, object]] = {
    "topology": {"authorities": 3, "relays": 8, "exits": 3, "authority_id_bits": 1024},
    "traffic": {"agents": 2, "fetches": 3, "sizes": [1000, "20 KiB", 70000],
                "start": [0.0, 1.0], "interval": [0.1, 0.5]},
    "run": {"max_virtual_time": 900},
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)


def small_text(faults: str = "", **tables: Mapping[str, object]) -> str:
    """The small scenario's TOML with keys of ``tables`` replaced or added, and ``faults``."""
    merged = {name: dict(keys) for name, keys in SMALL.items()}
    for name, keys in tables.items():
        merged.setdefault(name, {}).update(keys)
    body = "".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
                   for name, keys in merged.items())
    return 'name = "small"\n' + body + faults


def small(faults: str = "", **tables: Mapping[str, object]) -> Scenario:
    return parse_scenario(small_text(faults, **tables), "small.toml")


@dataclass
class DirectStats:
    circuits_built: int = 0
    circuits_failed: int = 0
    connects: list[tuple[str, int, Isolation | None]] = field(default_factory=list)


@dataclass
class DirectClient:
    socks_address: tuple[str, int] | None
    stats: DirectStats


@asynccontextmanager
async def direct_proxy(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
    rt, dns = setup.rt, setup.topology.dns
    stats = DirectStats()

    async def connect(host: str, port: int, isolation: Isolation | None) -> ByteStream:
        stats.connects.append((host, port, isolation))
        addresses = dns.lookup(host)
        if not addresses:
            raise NetworkError(f"cannot resolve {host}")
        return await rt.connect(addresses[0], port)

    server = SocksServer(rt, connect)
    listener = await server.start(*setup.socks)
    try:
        yield DirectClient(listener.address, stats)
    finally:
        await server.aclose()
