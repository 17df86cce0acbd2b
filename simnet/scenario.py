"""Run a scenario: an emulated Tor network, gotor's client, user agents, faults, invariants.

:func:`run_scenario` takes a validated :class:`~simnet.scenario_spec.Scenario`
and a seed, and:

1. builds a :class:`~simnet.world.World`, a :class:`~simnet.net.Network` and the
   topology (:func:`simnet.topology.build_topology`, with the scenario's link
   ranges drawn per relay from ``scenario:relay-link:<i>``);
2. adds the client host and one host per user agent (a LAN hop to the client);
3. on the client host, enters ``TorClient`` (which bootstraps from the
   topology's authorities and opens its SOCKS port), then starts the agents
   (:mod:`simnet.nodes.agent`) against that port;
4. applies the fault schedule (times counted from the start of the world, or
   from the end of bootstrap, per fault);
5. stops when the agents are done and the client has closed, or at the run
   limit, seals the trace (:meth:`World.finish`) and checks the invariants.

Everything is drawn from named streams of the world's seed, so the trace hash
is a function of the seed and the scenario text alone.  The client's data
directory is a fresh temporary directory per run (its path never reaches the
trace).  Trace headers carry the scenario's text, so ``gotor sim replay`` needs
nothing but the trace file.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from gotor.client import TorClient
from gotor.config import ClientConfig
from gotor.dir import BootstrapEvent
from gotor.dir.config import DirConfig
from gotor.errors import GotorError
from gotor.runtime.api import Runtime
from simnet.faults import (
    BandwidthCap,
    ClockSkew,
    Crash,
    Fault,
    FaultSchedule,
    LatencySpike,
    Loss,
    PartitionFault,
    Restart,
)
from simnet.net import Host, Network
from simnet.nodes.agent import FetchPlan, FetchRecord, UserAgent
from simnet.scenario_spec import (
    POOLS,
    FaultSpec,
    Scenario,
    ScenarioError,
    TrafficSpec,
    parse_scenario,
)
from simnet.topology import Topology, build_topology
from simnet.world import World

#: One-way latency between an agent's host and the client's (applications on a LAN).
AGENT_LATENCY = 0.0002
CLIENT_HOST = "client"


# --- the client under test ---------------------------------------------------------------------
@dataclass(frozen=True)
class ClientSetup:
    """What the runner hands the client factory."""

    rt: Runtime
    data_dir: Path
    dir: DirConfig
    socks: tuple[str, int]
    testing_network: bool
    on_progress: Callable[[BootstrapEvent], None]
    topology: Topology


class ProxyClient(Protocol):
    """What the runner needs of a running client: where its SOCKS port is, and stats."""

    @property
    def socks_address(self) -> tuple[str, int] | None: ...

    @property
    def stats(self) -> Any: ...


ClientFactory = Callable[[ClientSetup], AbstractAsyncContextManager[ProxyClient]]


@asynccontextmanager
async def tor_client(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
    """gotor's TorClient, configured for the emulated network (the default factory)."""
    config = ClientConfig(data_dir=setup.data_dir, dir=setup.dir, socks=setup.socks,
                          testing_network=setup.testing_network)
    async with TorClient(setup.rt, config, on_progress=setup.on_progress) as client:
        yield client


# --- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedFault:
    """One fault of the schedule as resolved onto hosts (``at``: absolute virtual time)."""

    index: int
    spec: FaultSpec
    hosts: tuple[str, ...]
    faults: tuple[Fault, ...]
    at: float | None = None          # None: relative to a bootstrap that never finished


@dataclass(frozen=True)
class InvariantCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class ScenarioResult:
    scenario: Scenario
    seed: int
    shuffle_ties: bool
    network: dict[str, int] = field(default_factory=dict)
    bootstrap_time: float | None = None
    bootstrap_events: list[tuple[float, int, str]] = field(default_factory=list)
    client_stats: dict[str, int] = field(default_factory=dict)
    records: list[FetchRecord] = field(default_factory=list)
    faults: list[PlannedFault] = field(default_factory=list)
    invariants: list[InvariantCheck] = field(default_factory=list)
    client_error: str | None = None
    finished: bool = False
    virtual_time: float = 0.0
    trace_records: int = 0
    trace_hash: str = ""
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.invariants)

    def applied(self, planned: PlannedFault) -> bool:
        return planned.at is not None and planned.at <= self.virtual_time

    def latencies(self) -> list[float]:
        return sorted(r.latency for r in self.records if r.latency is not None)


# --- building the world ------------------------------------------------------------------------
def scenario_topology(world: World, net: Network, scenario: Scenario, *,
                      start: bool = True) -> Topology:
    """The scenario's network (link ranges drawn per relay, see the module docstring)."""
    spec = scenario.topology
    topo = build_topology(
        world, net, n_authorities=spec.authorities, n_relays=spec.relays, n_exits=spec.exits,
        n_web=spec.web_servers, interval=spec.consensus_interval,
        legacy_fraction=spec.legacy_fraction, shared16_fraction=spec.shared16_fraction,
        family_fraction=spec.family_fraction, start=False,
        authority_id_bits=spec.authority_id_bits)
    for i, relay in enumerate(topo.relays):
        rng = world.rng(f"scenario:relay-link:{i}")
        if spec.relay_latency is not None:
            relay.host.configure(latency=round(rng.uniform(*spec.relay_latency), 4))
        if spec.relay_bandwidth is not None:
            bps = round(rng.uniform(*spec.relay_bandwidth), -3)
            relay.host.configure(up_bps=bps, down_bps=bps)
            # The advertised bandwidth follows the link, as topology.py does (KB/s).
            relay.config = replace(relay.config, bandwidth=max(1, int(bps / 8000)))
    if start:
        topo.start()
    return topo


def plan_traffic(world: World, traffic: TrafficSpec, targets: tuple[str, ...]) -> list[FetchPlan]:
    """Every fetch of the run, drawn per agent from ``scenario:traffic:agent:<k>``."""
    plans = []
    for k in range(traffic.agents):
        rng = world.rng(f"scenario:traffic:agent:{k}")
        at = rng.uniform(*traffic.start)
        for j in range(traffic.fetches):
            index = k * traffic.fetches + j
            isolation = {"none": None, "agent": (f"agent{k}", "simnet"),
                         "fetch": (f"fetch{index}", "simnet")}[traffic.isolation]
            plans.append(FetchPlan(
                index=index, agent=k, at=round(at, 6), host=rng.choice(targets),
                port=traffic.port, size=rng.choice(traffic.sizes),
                seed=f"{world.seed}.{index}", upload=rng.random() < traffic.uploads,
                isolation=isolation))
            at += rng.uniform(*traffic.interval)
    return plans


def _pool(topo: Topology, name: str) -> list[str] | None:
    exits = {r.host.name for r in topo.exits}
    pools: dict[str, Callable[[], list[str]]] = {
        "relay": lambda: [r.host.name for r in topo.relays],
        "exit": lambda: [r.host.name for r in topo.exits],
        "nonexit": lambda: [r.host.name for r in topo.relays if r.host.name not in exits],
        "authority": lambda: [a.relay.host.name for a in topo.authorities.authorities],
        "web": lambda: [w.host.name for w in topo.web_servers],
    }
    make = pools.get(name)
    return None if make is None else make()


def _resolve(world: World, topo: Topology, names: tuple[str, ...], count: int,
             stream: str, where: str) -> tuple[str, ...]:
    """Host names for a target list: names as given, pools as ``count`` seeded picks."""
    hosts: list[str] = []
    rng = world.rng(stream)
    for item in names:
        pool = _pool(topo, item)
        if pool is None:
            if item not in topo.network.hosts:
                raise ScenarioError(f"{where}: no host named {item!r} (hosts: relay000..., "
                                    f"auth0..., web0..., client; pools: {', '.join(POOLS)})")
            picked = [item]
        elif count > len(pool):
            raise ScenarioError(f"{where}: count {count} exceeds the {len(pool)} hosts "
                                f"of pool {item!r}")
        else:
            picked = rng.sample(pool, count)
        hosts.extend(h for h in picked if h not in hosts)
    return tuple(hosts)


_MAKERS: dict[str, Callable[[FaultSpec, tuple[str, ...], tuple[str, ...] | None],
                            list[Fault]]] = {
    "crash": lambda f, hosts, _o: [Crash(h, f.duration) for h in hosts],
    "restart": lambda f, hosts, _o: [Restart(h) for h in hosts],
    "partition": lambda f, hosts, other: [PartitionFault(hosts, other, f.duration)],
    "latency": lambda f, hosts, _o: [LatencySpike(h, f.extra or 0.0, f.duration)
                                     for h in hosts],
    "bandwidth": lambda f, hosts, _o: [BandwidthCap(h, f.up, f.down, f.duration)
                                       for h in hosts],
    "loss": lambda f, hosts, _o: [Loss(h, f.rate or 0.0, f.duration) for h in hosts],
    "clock_skew": lambda f, hosts, _o: [ClockSkew(h, f.offset or 0.0) for h in hosts],
}


def plan_faults(world: World, topo: Topology, scenario: Scenario) -> list[PlannedFault]:
    """The fault schedule on this topology's hosts (pools drawn from ``scenario:fault:<n>``)."""
    planned = []
    for i, spec in enumerate(scenario.faults):
        where, stream = f"{scenario.path}: [[faults]] #{i + 1}", f"scenario:fault:{i + 1}"
        hosts = _resolve(world, topo, spec.target, spec.count, stream, f"{where}.target")
        other = (None if spec.other is None else
                 _resolve(world, topo, spec.other, spec.count, stream + ":other",
                          f"{where}.other"))
        if other is not None and set(hosts) & set(other):
            raise ScenarioError(f"{where}: a host is on both sides of the partition")
        faults = tuple(_MAKERS[spec.kind](spec, hosts, other))
        at = spec.at if spec.after == "start" else None
        planned.append(PlannedFault(i + 1, spec, hosts, faults, at))
    return planned


# --- the run -------------------------------------------------------------------------------------
class _Run:
    def __init__(self, scenario: Scenario, world: World, factory: ClientFactory,
                 data_dir: Path) -> None:
        self.scenario = scenario
        self.world = world
        self.factory = factory
        self.data_dir = data_dir
        self.net = Network(world, tls=scenario.topology.tls)
        self.result = ScenarioResult(scenario, world.seed, world.shuffle_ties)
        # Everything is resolved and checked before any node starts.
        self.topo = scenario_topology(world, self.net, scenario, start=False)
        cspec = scenario.client
        self.client = self.net.add_host(CLIENT_HOST, latency=cspec.latency,
                                        up_bps=cspec.bandwidth, down_bps=cspec.bandwidth)
        self.agent_hosts = [self._agent_host(k) for k in range(scenario.traffic.agents)]
        targets = scenario.traffic.targets or tuple(
            name for web in self.topo.web_servers for name in web.names)
        for name in targets:
            if self.topo.dns.lookup(name) is None:
                raise ScenarioError(f"{scenario.path}: [traffic].targets: {name!r} is not a "
                                    "name of the simulated DNS (web0.simnet.test, ...)")
        self.plans = plan_traffic(world, scenario.traffic, targets)
        self.result.faults = plan_faults(world, self.topo, scenario)
        self.schedule = FaultSchedule(self.net)
        for planned in self.result.faults:
            if planned.at is not None:
                self.schedule.extend((planned.at, fault) for fault in planned.faults)
        self.result.network = {
            "authorities": len(self.topo.authorities.authorities),
            "relays": len(self.topo.relays), "exits": len(self.topo.exits),
            "web_servers": len(self.topo.web_servers), "agents": len(self.agent_hosts)}
        self.topo.start()

    def _agent_host(self, k: int) -> Host:
        host = self.net.add_host(f"agent{k}", latency=0.001, up_bps=1e9, down_bps=1e9)
        self.net.set_path(host.name, CLIENT_HOST, latency=AGENT_LATENCY)
        return host

    def execute(self) -> None:
        env = self.world.env
        stop = env.event()

        def finish(_task: object = None) -> None:
            if not stop.triggered:
                stop.succeed()

        main = self.client.runtime.spawn(self._main(), name="scenario")
        main.add_done_callback(finish)
        self.net.call_later(self.scenario.run.max_virtual_time, finish)
        self.world.run(until=stop)
        exc = main.exception() if main.done() else None
        if exc is not None:  # not a GotorError: a bug in the client or the agents
            self.result.client_error = f"crashed: {type(exc).__name__}: {exc}"
        self.result.finished = main.done() and exc is None

    async def _main(self) -> None:
        rt = self.client.runtime
        events = self.result.bootstrap_events

        def progress(event: BootstrapEvent) -> None:
            events.append((rt.now(), event.percent, event.tag))

        setup = ClientSetup(rt, self.data_dir, DirConfig.from_dir_authorities(
            self.topo.client_config.torrc_lines()),
            (self.client.ipv4 or "", self.scenario.client.socks_port),
            self.scenario.client.testing_network, progress, self.topo)
        start = rt.now()
        try:
            async with self.factory(setup) as client:
                self.result.bootstrap_time = rt.now() - start
                rt.trace("scenario", phase="bootstrapped")
                self._schedule_relative(rt.now())
                address = client.socks_address
                if address is None:
                    raise ScenarioError("the client opened no SOCKS port")
                await self._traffic((self.client.ipv4 or "", address[1]))
                self.result.client_stats = _client_counts(client.stats)
        except GotorError as exc:
            self.result.client_error = f"{type(exc).__name__}: {exc}"
            rt.trace("scenario", phase="client-failed", error=self.result.client_error)

    def _schedule_relative(self, now: float) -> None:
        for i, planned in enumerate(self.result.faults):
            if planned.at is None:
                at = now + planned.spec.at
                self.result.faults[i] = replace(planned, at=at)
                self.schedule.extend((at, fault) for fault in planned.faults)

    async def _traffic(self, proxy: tuple[str, str | int]) -> None:
        t = self.scenario.traffic
        tasks = []
        for k, host in enumerate(self.agent_hosts):
            agent = UserAgent(host, f"agent{k}", (str(proxy[0]), int(proxy[1])),
                              [p for p in self.plans if p.agent == k],
                              concurrency=t.concurrency, retries=t.retries,
                              retry_delay=t.retry_delay, attempt_timeout=t.timeout)
            tasks.append(host.runtime.spawn(agent.run(), name=f"agent{k}"))
        for task in tasks:
            self.result.records.extend(await task)


#: The client's counters that results report (attributes of its ``stats``).
CLIENT_COUNTERS = ("circuits_built", "circuits_failed", "streams_opened", "streams_failed",
                   "stream_retries")


def _client_counts(stats: Any) -> dict[str, int]:
    """The counters the client keeps, among :data:`CLIENT_COUNTERS`."""
    values = {name: getattr(stats, name, None) for name in CLIENT_COUNTERS}
    return {name: v for name, v in values.items() if isinstance(v, int)}


# --- invariants ----------------------------------------------------------------------------------
def _check(result: ScenarioResult) -> list[InvariantCheck]:
    inv, scenario = result.scenario.invariants, result.scenario
    records = result.records
    total = scenario.traffic.total_fetches
    done = sum(r.ok for r in records)
    failed_attempts = sum(len(r.errors) for r in records)
    corrupt = [r.plan.index for r in records if r.corrupt]
    lat = result.latencies()
    checks = [
        InvariantCheck("run finished", result.finished,
                       f"within {scenario.run.max_virtual_time:g} s virtual" if result.finished
                       else f"still running at the limit of {scenario.run.max_virtual_time:g} s"),
        InvariantCheck("client bootstrapped", result.client_error is None
                       and result.bootstrap_time is not None, result.client_error or "ok"),
    ]
    optional: list[tuple[bool, str, bool, str]] = [
        (inv.all_fetches_complete, "all fetches complete", done == total,
         f"{done} of {total}"),
        (inv.no_corruption, "no corrupted bytes", not corrupt,
         "none" if not corrupt else f"fetches {corrupt[:10]}"),
        (inv.no_task_errors, "no task errors", not result.errors,
         "none" if not result.errors else result.errors[0][:160]),
    ]
    if inv.max_bootstrap_time is not None:
        bt = result.bootstrap_time
        optional.append((True, f"bootstrap within {inv.max_bootstrap_time:g} s",
                         bt is not None and bt <= inv.max_bootstrap_time,
                         "never" if bt is None else f"{bt:.3f} s"))
    if inv.max_fetch_latency is not None:
        optional.append((True, f"fetch latency within {inv.max_fetch_latency:g} s",
                         not lat or lat[-1] <= inv.max_fetch_latency,
                         f"max {lat[-1]:.3f} s" if lat else "no fetches"))
    if inv.max_failed_attempts is not None:
        optional.append((True, f"at most {inv.max_failed_attempts} failed attempts",
                         failed_attempts <= inv.max_failed_attempts, f"{failed_attempts}"))
    checks += [InvariantCheck(name, ok, detail) for on, name, ok, detail in optional if on]
    return checks


# --- entry points --------------------------------------------------------------------------------
def run_scenario(scenario: Scenario, seed: int, *, shuffle_ties: bool = False,
                 sink: IO[str] | None = None, keep: bool = False,
                 factory: ClientFactory = tor_client) -> ScenarioResult:
    """Run ``scenario`` once; trace records go to ``sink`` and, with ``keep``, the result."""
    wall = time.perf_counter()
    world = World(seed, shuffle_ties=shuffle_ties)
    world.trace.keep = keep
    world.trace.write_to(sink)
    with tempfile.TemporaryDirectory(prefix="gotor-sim-") as data_dir:
        run = _Run(scenario, world, factory, Path(data_dir))
        run.execute()
    result = run.result
    result.records.sort(key=lambda r: r.plan.index)
    result.virtual_time = world.now()
    result.errors = list(world.errors)
    result.trace_records = world.trace.count
    result.trace_hash = world.finish()
    result.lines = world.trace.lines
    result.invariants = _check(result)
    result.wall_seconds = time.perf_counter() - wall
    return result


def header_params(scenario: Scenario, shuffle_ties: bool) -> dict[str, Any]:
    """Trace-header parameters: the scenario's path, text and hash, the tie mode, and the
    selected faults when only some of the file's faults run (a shrunk schedule)."""
    params: dict[str, Any] = {"path": scenario.path, "sha256": scenario.sha256,
                              "text": scenario.text, "shuffle_ties": shuffle_ties}
    if scenario.fault_subset is not None:
        params["faults"] = list(scenario.fault_subset)
    return params


def replay_scenario(seed: int, params: dict[str, Any]) -> list[str]:
    """The records of a fresh run of the scenario a trace header describes."""
    text, path, shuffle = params.get("text"), params.get("path"), params.get("shuffle_ties")
    if not isinstance(text, str) or not isinstance(path, str) or not isinstance(shuffle, bool):
        raise ScenarioError("trace header has bad scenario parameters")
    scenario = parse_scenario(text, path)
    if scenario.sha256 != params.get("sha256"):
        raise ScenarioError("trace header's scenario text does not match its sha256")
    if not isinstance(seed, int):
        raise ScenarioError("trace header has a bad seed")
    subset = params.get("faults")
    if subset is not None:
        if not isinstance(subset, list) or not all(isinstance(i, int) for i in subset):
            raise ScenarioError("trace header has a bad fault selection")
        scenario = scenario.keep_faults(subset)
    return run_scenario(scenario, seed, shuffle_ties=shuffle, keep=True).lines


# --- reporting -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (q in (0, 1])."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


def latency_summary(result: ScenarioResult) -> dict[str, float] | None:
    lat = result.latencies()
    if not lat:
        return None
    return {"min": lat[0], "median": statistics.median(lat), "p90": percentile(lat, 0.9),
            "max": lat[-1]}
