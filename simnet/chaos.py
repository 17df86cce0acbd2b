"""Chaos campaigns: sweep a scenario over many seeds, shrink a failing fault schedule.

A sweep runs one scenario once per seed, in parallel worker processes (each run
is deterministic and independent, so the outcome of a seed does not depend on
which worker ran it or when).  For every failing seed it gives the command
that replays it.  Shrinking takes one failing (scenario, seed) and removes
faults while the run still fails — Zeller's ddmin over the list of faults — so
that the replay command names the fewest faults that still break the invariants.

Removing a fault leaves every other random stream as it was (they are named
sub-streams of the seed), so a shrunk run is the same world minus those faults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from simnet.scenario import run_scenario
from simnet.scenario_spec import Scenario, ScenarioError, load_scenario


@dataclass(frozen=True)
class SeedOutcome:
    """What one run of a sweep reports (small enough to cross process boundaries)."""

    seed: int
    passed: bool
    trace_hash: str
    failures: tuple[str, ...]
    fetches: str
    wall_seconds: float


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"3,7,9"`` or a mix (``"1-5,9"``) -> the seeds, in order, no repeats."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ScenarioError(f"bad seed list {text!r}: use e.g. 1-20 or 3,7,9") from None
        if last < first or last - first >= 100_000:
            raise ScenarioError(f"bad seed range {part.strip()!r}")
        seeds.update(dict.fromkeys(range(first, last + 1)))
    return list(seeds)


def run_seed(scenario: Scenario, seed: int, shuffle_ties: bool) -> SeedOutcome:
    result = run_scenario(scenario, seed, shuffle_ties=shuffle_ties)
    done = sum(r.ok for r in result.records)
    return SeedOutcome(
        seed=seed, passed=result.passed, trace_hash=result.trace_hash,
        failures=tuple(f"{c.name}: {c.detail}" for c in result.invariants if not c.ok),
        fetches=f"{done}/{result.scenario.traffic.total_fetches}",
        wall_seconds=result.wall_seconds,
    )


def _run_in_worker(path: str, subset: tuple[int, ...] | None, seed: int,
                   shuffle_ties: bool) -> SeedOutcome:
    scenario = load_scenario(Path(path))
    if subset is not None:
        scenario = scenario.keep_faults(subset)
    return run_seed(scenario, seed, shuffle_ties)


def sweep(scenario: Scenario, seeds: Sequence[int], *, jobs: int | None = None,
          shuffle_ties: bool = False,
          on_outcome: Callable[[SeedOutcome], None] | None = None) -> list[SeedOutcome]:
    """Run ``scenario`` for every seed, ``jobs`` at a time; outcomes in seed order."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(seeds)))
    if jobs == 1:
        outcomes = []
        for seed in seeds:
            outcomes.append(run_seed(scenario, seed, shuffle_ties))
            if on_outcome:
                on_outcome(outcomes[-1])
        return outcomes
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_in_worker, scenario.path, scenario.fault_subset, seed,
                               shuffle_ties) for seed in seeds]
        outcomes = []
        for fut in futures:
            outcomes.append(fut.result())
            if on_outcome:
                on_outcome(outcomes[-1])
        return outcomes


def shrink(scenario: Scenario, seed: int, *, shuffle_ties: bool = False,
           on_try: Callable[[tuple[int, ...], bool], None] | None = None) -> tuple[int, ...]:
    """The smallest subset of the scenario's faults found that still fails at ``seed``.

    ddmin: try dropping chunks of the current failing set, halving the chunk
    size whenever no drop keeps the failure.  Raises ScenarioError if the run
    does not fail with the faults it starts from.
    """
    def fails(subset: tuple[int, ...]) -> bool:
        failed = not run_seed(scenario.keep_faults(subset), seed, shuffle_ties).passed
        if on_try:
            on_try(subset, failed)
        return failed

    current = scenario.fault_subset or tuple(range(len(scenario.faults)))
    if not fails(current):
        raise ScenarioError(f"seed {seed} passes with these faults: nothing to shrink")
    chunks = 2
    while len(current) >= 1:
        size = -(-len(current) // chunks)
        pieces = [current[i:i + size] for i in range(0, len(current), size)]
        for piece in pieces:
            rest = tuple(i for i in current if i not in piece)
            if fails(rest):
                current, chunks = rest, max(chunks - 1, 2)
                break
        else:
            if size == 1:
                return current
            chunks = min(len(current), chunks * 2)
    return current


def replay_command(scenario: Scenario, seed: int, *, shuffle_ties: bool,
                   subset: Iterable[int] | None = None) -> str:
    """The command that reproduces one run, writing its trace for `gotor sim replay`."""
    parts = ["gotor sim run", scenario.path, f"--seed {seed}"]
    if shuffle_ties:
        parts.append("--shuffle-ties")
    if subset is not None:
        parts.append("--faults " + (",".join(str(i) for i in subset) or "none"))
    parts.append(f"--trace seed-{seed}.trace.jsonl")
    return " ".join(parts)
