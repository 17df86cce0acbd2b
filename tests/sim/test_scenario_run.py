"""The scenario runner's machinery: plans, faults, invariants, results, reports, determinism.

These runs use the stand-in proxy (tests/sim/scenario_helpers.py), so they
exercise the runner itself in well under a second each; the runs with gotor's
TorClient are in test_scenario_client.py.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from scenario_helpers import direct_proxy, small

from gotor.errors import BootstrapError
from simnet.net import Network
from simnet.scenario import (
    ClientSetup,
    ProxyClient,
    ScenarioResult,
    percentile,
    plan_faults,
    plan_traffic,
    run_scenario,
    scenario_topology,
)
from simnet.scenario_report import summary_lines, to_json, write_report
from simnet.scenario_spec import POOLS, ScenarioError, TrafficSpec
from simnet.topology import build_topology
from simnet.world import World


def checks(result: ScenarioResult) -> dict[str, bool]:
    return {c.name: c.ok for c in result.invariants}


def fault(kind: str, target: str, at: float, *, after: str = "start", **keys: object) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return (f'[[faults]]\nat = {at}\nafter = "{after}"\nkind = "{kind}"\n'
            f"target = {json.dumps(target)}\n{extra}")


# --- plans ---------------------------------------------------------------------------------------
def test_traffic_plans_are_per_agent_streams_of_the_seed() -> None:
    spec = TrafficSpec(agents=2, fetches=4, sizes=(1, 2, 3), start=(0.0, 5.0),
                       interval=(1.0, 2.0), uploads=0.5, isolation="fetch")
    two = plan_traffic(World(5), spec, ("a.test", "b.test"))
    assert [p.index for p in two] == list(range(8))
    assert two == plan_traffic(World(5), spec, ("a.test", "b.test"))
    three = plan_traffic(World(5), TrafficSpec(**{**spec.__dict__, "agents": 3}),
                         ("a.test", "b.test"))
    assert three[:8] == two          # a new agent does not reshuffle the others
    assert plan_traffic(World(6), spec, ("a.test", "b.test")) != two
    for p in two:
        assert p.size in (1, 2, 3) and p.host in ("a.test", "b.test")
        assert p.isolation == (f"fetch{p.index}", "simnet") and p.seed == f"5.{p.index}"
    for agent in (0, 1):
        ats = [p.at for p in two if p.agent == agent]
        assert 0 <= ats[0] <= 5 and all(1 <= b - a <= 2 + 1e-9 for a, b in pairwise(ats))


def test_fault_targets_resolve_to_hosts_of_the_topology() -> None:
    world = World(1)
    net = Network(world)
    topo = build_topology(world, net, n_relays=8, n_exits=3, authority_id_bits=1024,
                          start=False)
    net.add_host("client")
    text = (fault("crash", "exit", 1, count=2, duration=5)
            + fault("partition", "nonexit", 2, other=["auth0", "client"])
            + fault("loss", "relay003", 3, rate=0.1))
    planned = plan_faults(world, topo, small(text))
    exits = {r.host.name for r in topo.exits}
    assert len(planned[0].hosts) == 2 and set(planned[0].hosts) <= exits
    assert len(planned[0].faults) == 2 and planned[0].at == 1.0
    assert planned[1].hosts[0] not in exits and len(planned[1].faults) == 1
    assert planned[1].faults[0].side_b == ("auth0", "client")  # type: ignore[attr-defined]
    assert planned[2].hosts == ("relay003",)
    again = plan_faults(world, topo, small(text))
    assert [p.hosts for p in again] == [p.hosts for p in planned]
    every_pool = plan_faults(world, topo, small("".join(
        fault("latency", pool, 1, extra=0.1) for pool in POOLS)))
    prefixes = {"relay": "relay", "exit": "relay", "nonexit": "relay", "authority": "auth",
                "web": "web"}
    assert [p.hosts[0].rstrip("0123456789") for p in every_pool] == [
        prefixes[pool] for pool in POOLS]

    with pytest.raises(ScenarioError, match=r"\[traffic\].targets: 'web7.simnet.test' is not"):
        run_scenario(small(traffic={"targets": ["web0.simnet.test", "web7.simnet.test"]}), 1,
                     factory=direct_proxy)

    for bad, message in [
        (fault("crash", "relay099", 1), "[[faults]] #1.target: no host named 'relay099'"),
        (fault("crash", "exit", 1, count=4), "count 4 exceeds the 3 hosts of pool 'exit'"),
        (fault("partition", "relay001", 1, other="relay001"), "on both sides"),
    ]:
        with pytest.raises(ScenarioError) as info:
            plan_faults(world, topo, small(bad))
        assert message in str(info.value) and str(info.value).startswith("small.toml: ")


# --- runs ----------------------------------------------------------------------------------------
def test_a_crashed_web_server_fails_attempts_and_retries_recover() -> None:
    # With web0's uplink capped at 1 Mbit/s, the 200 kB fetches are mid-transfer when it
    # crashes.  The server had written everything and closed; the bytes still queued die
    # with it and nothing tells the proxy (as with real TCP): the agents' attempts time out.
    crash = (fault("bandwidth", "web0", 0.0, up=1e6)
             + fault("crash", "web0", 0.5, after="bootstrap", duration=2.0))
    traffic = {"fetches": 1, "start": [0.0, 0.0], "sizes": [200000], "timeout": 10.0}
    sc = small(crash, traffic={**traffic, "retries": 5, "retry_delay": 1.0})
    result = run_scenario(sc, 1, factory=direct_proxy, keep=True)
    assert result.passed, result.invariants
    assert [r.attempts for r in result.records] == [2, 2]
    assert [r.errors for r in result.records] == [["timeout: fetch timed out after 10 s"]] * 2
    assert all(0 < r.verified == r.plan.size for r in result.records)
    assert result.bootstrap_time is not None
    assert result.faults[1].at == pytest.approx(result.bootstrap_time + 0.5)
    assert any('"ev":"crash"' in line and '"node":"web0"' in line for line in result.lines)
    assert any('"ev":"fault"' in line and '"kind":"Crash"' in line for line in result.lines)
    failed = run_scenario(small(crash, traffic=traffic), 1, factory=direct_proxy)
    assert not failed.passed and not checks(failed)["all fetches complete"]
    assert checks(failed)["no corrupted bytes"] and checks(failed)["run finished"]


def test_faults_after_the_end_are_reported_not_reached() -> None:
    result = run_scenario(small(fault("latency", "relay001", 5000, extra=0.1)), 1,
                          factory=direct_proxy)
    assert result.passed and not result.applied(result.faults[0])
    lines = summary_lines(result)
    assert "faults: 0 applied, 1 not reached" in lines
    assert any(line.startswith("  not reached: latency relay001") for line in lines)


def test_optional_invariants_and_the_run_limit() -> None:
    strict = {"max_fetch_latency": 0.001, "max_bootstrap_time": 100.0,
              "max_failed_attempts": 0}
    result = run_scenario(small(invariants=strict), 1, factory=direct_proxy)
    got = checks(result)
    assert not got["fetch latency within 0.001 s"] and not result.passed
    assert got["bootstrap within 100 s"] and got["at most 0 failed attempts"]
    limited = run_scenario(small(traffic={"start": [50.0, 50.0]}, run={"max_virtual_time": 10.0}),
                           1, factory=direct_proxy)
    assert not checks(limited)["run finished"] and limited.virtual_time == pytest.approx(10.0)
    assert limited.records == [] and not limited.passed


def test_client_failures_and_task_errors_fail_the_run() -> None:
    @asynccontextmanager
    async def broken(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
        await setup.rt.sleep(1.0)
        raise BootstrapError("no directory source worked")
        yield  # pragma: no cover - makes this an async generator

    result = run_scenario(small(), 1, factory=broken)
    assert result.client_error == "BootstrapError: no directory source worked"
    got = checks(result)
    assert not got["client bootstrapped"] and got["run finished"] and not result.passed
    lines = summary_lines(result)
    assert "bootstrap: never finished" in lines
    assert "fetches: 0 of 6 completed byte-exact, 0 failed, 6 not run, 0 corrupt, 0 attempts" \
        in lines
    assert to_json(result)["fetches"]["not_run"] == 6

    @asynccontextmanager
    async def buggy(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
        async def crash() -> None:
            raise RuntimeError("a bug in the client")

        setup.rt.spawn(crash(), name="buggy")
        async with direct_proxy(setup) as client:
            yield client

    result = run_scenario(small(), 1, factory=buggy)
    assert not checks(result)["no task errors"] and "a bug in the client" in result.errors[0]

    @asynccontextmanager
    async def crashing(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
        async with direct_proxy(setup) as client:
            yield client
            raise RuntimeError("teardown bug")

    result = run_scenario(small(), 1, factory=crashing)
    assert result.client_error == "crashed: RuntimeError: teardown bug"
    assert not checks(result)["run finished"] and not result.passed


def test_link_overrides_reach_hosts_and_advertised_bandwidth() -> None:
    sc = small(topology={"relay_latency": [0.05, 0.05], "relay_bandwidth": [8e6, 16e6]})
    world = World(1)
    topo = scenario_topology(world, Network(world), sc)
    world.run(until=0.1)
    for relay in topo.relays:
        assert relay.host.latency == 0.05 and 8e6 <= relay.host.up_bps <= 16e6
        assert relay.host.up_bps == relay.host.down_bps
        assert relay.descriptor().bandwidth == int(relay.host.up_bps / 8000)
    assert len({r.host.up_bps for r in topo.relays}) > 1
    world = World(1)
    plain = scenario_topology(world, Network(world), small())
    world.run(until=0.1)
    assert [r.host.latency for r in plain.relays] != [0.05] * 8
    assert run_scenario(sc, 1, factory=direct_proxy).passed


def test_same_seed_same_trace_and_ties_shuffled_keep_outcomes() -> None:
    sc = small(fault("crash", "relay", 0.2, after="bootstrap", duration=1.0),
               traffic={"concurrency": 2, "uploads": 0.3})
    one, two = (run_scenario(sc, 2, factory=direct_proxy) for _ in range(2))
    assert one.trace_hash == two.trace_hash and one.passed
    assert run_scenario(sc, 1, factory=direct_proxy).trace_hash != one.trace_hash
    shuffled = [run_scenario(sc, 2, shuffle_ties=True, factory=direct_proxy) for _ in range(2)]
    assert shuffled[0].trace_hash == shuffled[1].trace_hash
    outcome = [(r.ok, r.attempts, r.verified, r.latency) for r in one.records]
    assert [(r.ok, r.attempts, r.verified, r.latency) for r in shuffled[0].records] == outcome


# --- results -------------------------------------------------------------------------------------
def test_summary_json_and_report(tmp_path: Path) -> None:
    result = run_scenario(small(), 2, factory=direct_proxy)
    lines = summary_lines(result)
    assert lines[-1] == f"trace-hash: {result.trace_hash}" and len(result.trace_hash) == 64
    assert "result: PASS" in lines and "fetches: 6 of 6 completed byte-exact, 0 failed, " \
        "0 corrupt, 6 attempts" in lines
    data = to_json(result)
    assert json.loads(json.dumps(data)) == data
    assert data["passed"] and data["fetches"]["completed"] == 6
    assert data["fetches"]["bytes_verified"] == sum(r.plan.size for r in result.records)
    lat = data["fetches"]["latency"]
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["max"]
    assert [r["id"] for r in data["records"]] == list(range(6))
    written = write_report(result, tmp_path / "out")
    assert [p.name for p in written] == ["result.json", "fetches.csv"]
    assert json.loads(written[0].read_text())["trace_hash"] == result.trace_hash
    rows = list(csv.DictReader(written[1].open()))
    assert len(rows) == 6 and all(row["ok"] == "True" for row in rows)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.9) == 9.0 and percentile(values, 1.0) == 10.0
    assert percentile([3.0], 0.9) == 3.0 and percentile(values, 0.01) == 1.0
