"""End to end in simnet: bootstrap + 100 fetches on a 30-relay network, in wall time.

    python benchmarks/bench_sim_e2e.py [--fetches 100] [--seed 1] [--repeat 2] [--top 10]

The scenario is quickstart.toml's network (3 authorities, 30 relays, real TLS
on every link) with 4 agents making ``--fetches`` fetches in all (2 in flight
per agent, sizes 2 KiB to 1 MiB, a tenth of them uploads), every byte checked.
Reported: wall time of the whole run (world and topology built, keys loaded
from the cache, client bootstrapped, fetches, client closed), SimPy events
processed and events per wall second, virtual seconds per wall second, trace
records, and then a cProfile run: the top functions by own time, and the
share of wall time by area (gotor's client, simnet's nodes, the fabric and
TLS, SimPy, crypto).  The key cache is warmed by a first run that is not
counted.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from collections import defaultdict
from pathlib import Path
from typing import Any

import simpy

from simnet.scenario import ScenarioResult, run_scenario
from simnet.scenario_spec import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
AGENTS = 4

#: Where time goes: (area, substring of "path func") — first match wins.  C functions have
#: the path "~", so their names decide.
AREAS = (("gotor client (link, circuit, stream, dir, socks ...)", "/gotor/"),
         ("simnet nodes (relays, authorities, web)", "/simnet/nodes/"),
         ("simnet trace (JSON records, digests)", "/simnet/trace.py"),
         ("simnet fabric and TLS plumbing", "/simnet/"),
         ("SimPy", "/simpy/"),
         ("json encoding (trace records)", "/json/"),
         ("OpenSSL via ssl (TLS records)", "_ssl."),
         ("cryptography (AES, signatures, X25519)", "cryptography"),
         ("hashlib (SHA digests)", "_hashlib"))


class _Counter:
    """Counts SimPy events processed, in every environment (by wrapping ``step``)."""

    def __init__(self) -> None:
        self.events = 0
        original = simpy.Environment.step
        counter = self

        def step(self: simpy.Environment) -> None:
            counter.events += 1
            original(self)

        simpy.Environment.step = step  # type: ignore[method-assign]


def scenario_text(fetches: int) -> str:
    per_agent = max(1, fetches // AGENTS)
    text = QUICKSTART.read_text()
    return text.replace("fetches = 5 ", f"fetches = {per_agent} ", 1)


def run(fetches: int, seed: int, counter: _Counter) -> tuple[ScenarioResult, int]:
    scenario = parse_scenario(scenario_text(fetches), "bench-e2e.toml")
    before = counter.events
    result = run_scenario(scenario, seed)
    if not result.passed:
        raise SystemExit(f"the benchmark scenario failed: {result.invariants}")
    return result, counter.events - before


def _area(path: str, func: str) -> str:
    where = f"{path} {func}"
    return next((name for name, key in AREAS if key in where), "other (stdlib, builtins)")


def profile(fetches: int, seed: int, counter: _Counter, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    result, _events = run(fetches, seed, counter)
    profiler.disable()
    stats: Any = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)
    total = sum(v[2] for _k, v in rows)
    print(f"\ncProfile (wall {result.wall_seconds:.1f} s under the profiler), "
          f"top {top} by own time:")
    for (path, line, func), (_cc, calls, tottime, cumtime, _callers) in rows[:top]:
        where = f"{Path(path).name}:{line}({func})" if line else func
        print(f"  {tottime:6.2f} s {100 * tottime / total:5.1f} %  {calls:>10,} calls  "
              f"cum {cumtime:6.2f} s  {where}")
    areas: dict[str, float] = defaultdict(float)
    for (path, _line, func), (_cc, _calls, tottime, _cum, _callers) in rows:
        areas[_area(path, func)] += tottime
    print("\nown time by area:")
    for name, seconds in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * seconds / total:5.1f} %  {seconds:6.2f} s  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fetches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    counter = _Counter()
    run(AGENTS, args.seed, counter)  # warm the key cache (a cold one costs key generation)
    runs = [run(args.fetches, args.seed, counter) for _ in range(args.repeat)]
    result, events = min(runs, key=lambda r: r[0].wall_seconds)
    wall = result.wall_seconds
    fetched = sum(r.verified for r in result.records)
    print(f"simnet end to end, seed {args.seed}: 3 authorities, 30 relays, TLS on, "
          f"{len(result.records)} fetches by {AGENTS} agents (best of {args.repeat})")
    print(f"  wall time            {wall:8.2f} s   (bootstrap + fetches + teardown)")
    print(f"  virtual time         {result.virtual_time:8.2f} s   "
          f"(bootstrap {result.bootstrap_time or 0:.2f} s)  "
          f"{result.virtual_time / wall:.1f} virtual s per wall s")
    print(f"  SimPy events         {events:8,d}     {events / wall:10,.0f} events/s")
    print(f"  trace records        {result.trace_records:8,d}     "
          f"{result.trace_records / wall:10,.0f} records/s")
    print(f"  bytes verified       {fetched:8,d}     {fetched / wall / 1e6:10.2f} MB/s wall")
    print(f"  per fetch            {1000 * wall / len(result.records):8.1f} ms wall")
    print(f"  client               {result.client_stats}")
    print(f"  trace-hash           {result.trace_hash}")
    profile(args.fetches, args.seed, counter, args.top)


if __name__ == "__main__":
    main()
