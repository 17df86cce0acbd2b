"""``gotor sim``: run scenarios and the built-in demo in the simulated network, replay traces.

``gotor sim run SCENARIO --seed N [--trace FILE] [--shuffle-ties] [--json]
[--report DIR]`` runs a scenario file (scenarios/README.md) and exits 0 only if
every invariant held (by default: every fetch completed byte-exact); ``gotor
sim demo --seed N [--hosts H] [--trace FILE] [--shuffle-ties]`` runs plain
hosts through the fabric.  Both print a summary whose last line is
``trace-hash: <hex>``.  ``gotor sim replay TRACE`` re-runs a recorded trace
(of either) and exits 1 if it no longer reproduces.  ``gotor sim sweep SCENARIO
--seeds 1-50`` runs a scenario for many seeds in parallel and lists the failing
ones with their replay commands; ``gotor sim shrink SCENARIO --seed N`` finds the
fewest of its faults that still make that seed fail (``--faults`` on ``run``
selects faults by number).  Problems are one line on
stderr, never a traceback (gotor.cli turns GotorError and OSError into that
line).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from simnet.chaos import SeedOutcome, parse_seeds, replay_command, shrink, sweep
from simnet.demo import MAX_HOSTS, DemoParams, run_demo
from simnet.replay import replay, write_header
from simnet.scenario import header_params, run_scenario
from simnet.scenario_report import summary_lines, to_json, write_report
from simnet.scenario_spec import Scenario, ScenarioError, load_scenario


def _host_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 2 <= value <= MAX_HOSTS:
        raise argparse.ArgumentTypeError(f"must be between 2 and {MAX_HOSTS}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("sim", help="run the deterministic network simulator")
    actions = p.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run a scenario file (see scenarios/README.md)")
    run.add_argument("scenario", type=Path, help="a scenario TOML file")
    run.add_argument("--seed", type=int, default=1, help="the world's seed (default 1)")
    run.add_argument("--trace", type=Path, help="write the trace (JSON lines) to this file")
    run.add_argument("--shuffle-ties", action="store_true",
                     help="order same-time events randomly (from the seed)")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument("--report", type=Path, metavar="DIR",
                     help="write DIR/result.json and DIR/fetches.csv")
    run.add_argument("--faults", metavar="LIST",
                     help="run only these of the file's faults, by number from 0 "
                          "(e.g. 0,2; 'none' for no faults): what `sim shrink` prints")
    run.set_defaults(run=run_scenario_command)
    swp = actions.add_parser("sweep", help="run a scenario for many seeds, list the failures")
    swp.add_argument("scenario", type=Path, help="a scenario TOML file")
    swp.add_argument("--seeds", default="1-10", help="seeds, e.g. 1-50 or 3,7,9 (default 1-10)")
    swp.add_argument("--jobs", type=int, default=None,
                     help="parallel worker processes (default: one per CPU)")
    swp.add_argument("--shuffle-ties", action="store_true",
                     help="order same-time events randomly (from each seed)")
    swp.add_argument("--json", action="store_true", help="print the outcomes as one JSON object")
    swp.set_defaults(run=run_sweep_command)
    shr = actions.add_parser("shrink", help="find the fewest faults that still fail a seed")
    shr.add_argument("scenario", type=Path, help="a scenario TOML file")
    shr.add_argument("--seed", type=int, required=True, help="a seed that fails")
    shr.add_argument("--shuffle-ties", action="store_true",
                     help="the seed failed with same-time events shuffled")
    shr.set_defaults(run=run_shrink_command)
    demo = actions.add_parser("demo", help="run the built-in demo topology")
    demo.add_argument("--seed", type=int, default=1, help="the world's seed (default 1)")
    demo.add_argument("--hosts", type=_host_count, default=12, help="number of hosts (default 12)")
    demo.add_argument("--trace", type=Path, help="write the trace (JSON lines) to this file")
    demo.add_argument("--shuffle-ties", action="store_true",
                      help="order same-time events randomly (from the seed)")
    demo.set_defaults(run=run_demo_command)
    rep = actions.add_parser("replay", help="re-run a trace file and compare its hash")
    rep.add_argument("trace", type=Path, help="a trace written by --trace")
    rep.set_defaults(run=run_replay_command)


def run_demo_command(args: argparse.Namespace) -> int:
    params = DemoParams(args.seed, args.hosts, args.shuffle_ties)
    if args.trace is None:
        result = run_demo(params)
    else:
        with args.trace.open("w", encoding="utf-8") as sink:
            write_header(sink, "demo", params.seed, params.header_params())
            result = run_demo(params, sink=sink)
    for line in result.summary():
        print(line)
    return 0


def _selected(scenario: Scenario, faults: str | None) -> Scenario:
    if faults is None:
        return scenario
    if faults.strip() == "none":
        return scenario.keep_faults(())
    try:
        indices = [int(part) for part in faults.split(",")]
    except ValueError:
        raise ScenarioError(f"bad --faults {faults!r}: use numbers like 0,2 or 'none'") from None
    return scenario.keep_faults(indices)


def run_scenario_command(args: argparse.Namespace) -> int:
    scenario = _selected(load_scenario(args.scenario), args.faults)
    if args.trace is None:
        result = run_scenario(scenario, args.seed, shuffle_ties=args.shuffle_ties)
    else:
        with args.trace.open("w", encoding="utf-8") as sink:
            write_header(sink, "scenario", args.seed, header_params(scenario, args.shuffle_ties))
            result = run_scenario(scenario, args.seed, shuffle_ties=args.shuffle_ties, sink=sink)
    if args.report is not None:
        write_report(result, args.report)
    if args.json:
        print(json.dumps(to_json(result), sort_keys=True))
    else:
        for line in summary_lines(result):
            print(line)
    return 0 if result.passed else 1


def run_replay_command(args: argparse.Namespace) -> int:
    report = replay(args.trace)
    header = report.header
    what = f"scenario {header.get('scenario')}, seed {header.get('seed')}"
    div = report.divergence
    if div is None:
        print(f"replay of {args.trace} ({what}): trace reproduced")
        print(f"trace-hash: {report.replayed_hash}")
        return 0
    print(f"replay of {args.trace} ({what}): MISMATCH, first difference at record {div.index}")
    print(f"  recorded: {div.expected if div.expected is not None else '(trace ended)'}")
    print(f"  replayed: {div.actual if div.actual is not None else '(run ended)'}")
    print(f"recorded-hash: {report.recorded_hash}")
    print(f"trace-hash: {report.replayed_hash}")
    return 1


def _outcome_line(o: SeedOutcome) -> str:
    verdict = "pass" if o.passed else "FAIL"
    why = f"  {'; '.join(o.failures)}" if o.failures else ""
    return (f"seed {o.seed:>6}  {verdict}  fetches {o.fetches:>7}  {o.wall_seconds:6.1f} s  "
            f"{o.trace_hash[:16]}{why}")


def run_sweep_command(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    seeds = parse_seeds(args.seeds)
    if args.jobs is not None and args.jobs < 1:
        raise ScenarioError("--jobs must be at least 1")
    show = None if args.json else (lambda o: print(_outcome_line(o), flush=True))
    outcomes = sweep(scenario, seeds, jobs=args.jobs, shuffle_ties=args.shuffle_ties,
                     on_outcome=show)
    failed = [o for o in outcomes if not o.passed]
    if args.json:
        print(json.dumps({"scenario": scenario.path, "shuffle_ties": args.shuffle_ties,
                          "seeds": len(outcomes), "failed": [o.seed for o in failed],
                          "outcomes": [o.__dict__ for o in outcomes]}, sort_keys=True))
    else:
        print(f"sweep of {scenario.path}: {len(outcomes) - len(failed)} of {len(outcomes)} "
              f"seeds pass")
        for o in failed:
            print(f"  replay: {replay_command(scenario, o.seed, shuffle_ties=args.shuffle_ties)}")
            print(f"  shrink: gotor sim shrink {scenario.path} --seed {o.seed}"
                  + (" --shuffle-ties" if args.shuffle_ties else ""))
    return 1 if failed else 0


def run_shrink_command(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)

    def show(subset: tuple[int, ...], failed: bool) -> None:
        print(f"  faults {list(subset)}: {'fails' if failed else 'passes'}", flush=True)

    print(f"shrinking the {len(scenario.faults)} faults of {scenario.path} at seed {args.seed}")
    kept = shrink(scenario, args.seed, shuffle_ties=args.shuffle_ties, on_try=show)
    print(f"smallest failing fault set: {list(kept)}")
    print("replay: " + replay_command(scenario, args.seed, shuffle_ties=args.shuffle_ties,
                                      subset=kept))
    return 0
