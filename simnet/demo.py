"""The built-in demo scenario: plain hosts exchanging deterministic traffic, with faults.

``gotor sim demo`` runs it.  A quarter of the hosts (at least one) are echo
servers, the rest clients.  Each client makes a few exchanges: connect to a
server chosen from its seeded stream (to the first server sometimes over TLS),
send a length-prefixed payload of seeded bytes, read the echo back and compare.
Along the way the fault schedule spikes a server's latency, caps its uplink,
partitions half the clients from the last server, crashes that server (it
restarts and listens again through its on-restart callback), puts loss on one
client's link and skews another's clock.  Every outcome is traced, so the
trace hash pins the whole run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from simpy.events import Event

from gotor.errors import ConnectionRefused, ConnectionReset, LocalError, NetworkError, Timeout
from gotor.runtime.api import ByteStream, TlsCredentials
from gotor.runtime.sync import timeout
from simnet.faults import (
    BandwidthCap,
    ClockSkew,
    Crash,
    FaultSchedule,
    LatencySpike,
    Loss,
    PartitionFault,
)
from simnet.net import Host, Network
from simnet.tls import make_credentials
from simnet.world import World

PORT, TLS_PORT = 80, 443
ROUNDS = 4
BOOT_TIME = 0.3          # a restarted server listens again after this (SYNs meanwhile: refused)
EXCHANGE_TIMEOUT = 20.0
MAX_HOSTS = 5000


@dataclass(frozen=True)
class DemoParams:
    """What a demo run depends on (recorded in trace headers for replay)."""

    seed: int
    hosts: int = 12
    shuffle_ties: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.hosts <= MAX_HOSTS:
            raise LocalError(f"the demo needs between 2 and {MAX_HOSTS} hosts")

    def header_params(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "shuffle_ties": self.shuffle_ties}

    @classmethod
    def from_header(cls, seed: int, params: dict[str, Any]) -> DemoParams:
        hosts, shuffle = params.get("hosts"), params.get("shuffle_ties")
        if not isinstance(seed, int) or not isinstance(hosts, int) or not isinstance(shuffle, bool):
            raise LocalError("trace header has bad demo parameters")
        return cls(seed, hosts, shuffle)


@dataclass
class DemoResult:
    params: DemoParams
    outcomes: Counter[str] = field(default_factory=Counter)
    bytes_echoed: int = 0
    virtual_time: float = 0.0
    records: int = 0
    trace_hash: str = ""
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        p, o = self.params, self.outcomes
        return [
            (f"simnet demo: seed {p.seed}, {p.hosts} hosts, "
             f"shuffle-ties {'on' if p.shuffle_ties else 'off'}"),
            (f"exchanges: {o['ok']} ok, {o['refused']} refused, {o['reset']} reset, "
             f"{o['timeout']} timed out"),
            f"bytes echoed: {self.bytes_echoed}",
            f"virtual time: {self.virtual_time:.6f} s",
            f"simulation errors: {len(self.errors)}",
            f"trace records: {self.records}",
            f"trace-hash: {self.trace_hash}",
        ]


async def _read_exactly(stream: ByteStream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = await stream.read(min(65536, n - got))
        if not data:
            raise ConnectionReset("stream ended early")
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def _echo(stream: ByteStream) -> None:
    """Server side: a 4-byte length, then that many bytes echoed back as they come."""
    remaining = int.from_bytes(await _read_exactly(stream, 4), "big")
    while remaining:
        data = await stream.read(min(65536, remaining))
        if not data:
            return
        remaining -= len(data)
        stream.write(data)
        await stream.drain()


class _Demo:
    def __init__(self, params: DemoParams, world: World) -> None:
        self.params = params
        self.world = world
        self.net = Network(world)
        self.result = DemoResult(params)
        rng = world.rng("demo:topology")
        hosts = [self.net.add_host(f"h{i:04d}", latency=round(rng.uniform(0.005, 0.06), 3),
                                   up_bps=rng.choice([10e6, 50e6, 100e6]),
                                   down_bps=rng.choice([50e6, 100e6]),
                                   jitter=rng.choice([0.0, 0.0, 0.002]))
                 for i in range(params.hosts)]
        n_servers = max(1, params.hosts // 4)
        self.servers, self.clients = hosts[:n_servers], hosts[n_servers:]
        self.creds: TlsCredentials = make_credentials(world, self.servers[0].name)

    def start(self) -> Event:
        """Start servers, clients and faults; the event fires when every client is done."""
        for server in self.servers:
            self._serve(server)
            server.on_restart(self._serve)
        done = self.world.env.event()
        pending = len(self.clients)

        def finished(_task: object) -> None:
            nonlocal pending
            pending -= 1
            if not pending:
                done.succeed()

        for client in self.clients:
            client.runtime.spawn(self._client(client), name="demo-client").add_done_callback(finished)
        self._faults()
        return done

    def _serve(self, host: Host) -> None:
        async def listen() -> None:
            if host.incarnation:
                await host.runtime.sleep(BOOT_TIME)
            await host.runtime.listen(host.ipv4 or "", PORT, _echo)
            if host is self.servers[0]:
                await host.runtime.listen(host.ipv4 or "", TLS_PORT, _echo, tls=self.creds)

        host.runtime.spawn(listen(), name="demo-server")

    def _faults(self) -> None:
        first, last = self.servers[0].name, self.servers[-1].name
        half = tuple(c.name for c in self.clients[: max(1, len(self.clients) // 2)])
        FaultSchedule(self.net).extend([
            (0.0, Loss(self.clients[0].name, 0.02)),
            (0.2, ClockSkew(self.clients[-1].name, 30.0)),
            (0.5, LatencySpike(first, 0.1, duration=1.0)),
            (1.0, PartitionFault(half, (last,), duration=1.5)),
            (1.5, Crash(last, duration=1.0)),
            (2.0, BandwidthCap(first, up_bps=5e6, duration=2.0)),
        ])

    async def _client(self, host: Host) -> None:
        rt = host.runtime
        rng = self.world.rng(f"demo:client:{host.name}")
        data = self.world.byte_stream(f"demo:data:{host.name}")
        for _ in range(ROUNDS):
            await rt.sleep(round(rng.uniform(0.0, 1.0), 3))
            server = rng.choice(self.servers)
            tls = server is self.servers[0] and rng.random() < 0.5
            payload = data(rng.randint(1, 256) * 1024)
            try:
                echoed = await timeout(rt, EXCHANGE_TIMEOUT,
                                       self._exchange(host, server, tls, payload),
                                       what="exchange")
                outcome = "ok" if echoed == payload else "corrupt"
            except ConnectionRefused:
                outcome = "refused"
            except ConnectionReset:
                outcome = "reset"
            except (Timeout, NetworkError):
                outcome = "timeout"
            self.result.outcomes[outcome] += 1
            if outcome == "ok":
                self.result.bytes_echoed += len(payload)
            rt.trace("exchange", server=server.name, tls=tls, size=len(payload), outcome=outcome)

    async def _exchange(self, host: Host, server: Host, tls: bool, payload: bytes) -> bytes:
        addr = server.ipv4 or ""
        stream = await host.runtime.connect(addr, TLS_PORT if tls else PORT, tls=tls)
        try:
            stream.write(len(payload).to_bytes(4, "big") + payload)
            await stream.drain()
            return await _read_exactly(stream, len(payload))
        finally:
            await stream.aclose()


def run_demo(params: DemoParams, *, sink: IO[str] | None = None, keep: bool = False) -> DemoResult:
    """Run the demo to completion; trace records go to ``sink`` and, with ``keep``, the result."""
    world = World(params.seed, shuffle_ties=params.shuffle_ties)
    world.trace.keep = keep
    world.trace.write_to(sink)
    demo = _Demo(params, world)
    world.run(until=demo.start())
    result = demo.result
    result.virtual_time = world.now()
    result.records = world.trace.count
    result.trace_hash = world.finish()
    result.lines = world.trace.lines
    result.errors = list(world.errors)
    return result
