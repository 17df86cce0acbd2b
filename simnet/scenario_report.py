"""What a scenario run reports: a readable summary, one JSON object, a report directory.

The summary's lines are ``key: value`` where possible so that scripts (and the
determinism tests) can compare runs; its last line is ``trace-hash: <hex>``.
Only ``wall time`` (summary) and ``wall_seconds`` (JSON) differ between two
runs of the same seed: everything else is a function of the seed and the
scenario.  ``--report DIR`` writes ``DIR/result.json`` (the JSON object) and
``DIR/fetches.csv`` (one row per fetch: latency, time to first byte, outcome).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from simnet.nodes.agent import FetchRecord
from simnet.scenario import PlannedFault, ScenarioResult, latency_summary


def _fault_text(planned: PlannedFault, applied: bool) -> str:
    spec = planned.spec
    extras = {"duration": spec.duration, "extra": spec.extra, "up": spec.up,
              "down": spec.down, "rate": spec.rate, "offset": spec.offset}
    detail = ", ".join(f"{k} {v:g}" for k, v in extras.items() if v is not None)
    when = "not reached" if not applied else f"at {planned.at:.3f} s"
    return (f"  {when}: {spec.kind} {' '.join(planned.hosts)}"
            + (f" | {' '.join(spec.other)}" if spec.other else "")
            + (f" ({detail})" if detail else ""))


def summary_lines(result: ScenarioResult) -> list[str]:
    sc, net = result.scenario, result.network
    records = result.records
    done = sum(r.ok for r in records)
    applied = [result.applied(p) for p in result.faults]
    held = sum(c.ok for c in result.invariants)
    not_run = sc.traffic.total_fetches - len(records)   # the agents never started them
    lines = [
        (f"scenario {sc.name}: {sc.path} (sha256 {sc.sha256[:16]}), seed {result.seed}, "
         f"shuffle-ties {'on' if result.shuffle_ties else 'off'}"),
        "network: " + ", ".join(_count(net.get(key, 0), what) for key, what in (
            ("authorities", "authorities"), ("relays", "relays"), ("exits", "exits"),
            ("web_servers", "web servers"), ("agents", "agents"))),
        "bootstrap: " + ("never finished" if result.bootstrap_time is None
                         else f"{result.bootstrap_time:.3f} s virtual"),
        "client: " + (", ".join(f"{k.replace('_', ' ')} {v}"
                                for k, v in result.client_stats.items()) or "no counters"),
        (f"fetches: {done} of {sc.traffic.total_fetches} completed byte-exact, "
         f"{len(records) - done} failed, "
         + (f"{not_run} not run, " if not_run else "")
         + f"{sum(r.corrupt for r in records)} corrupt, "
         f"{sum(r.attempts for r in records)} attempts"),
        "latency: " + _latency_text(result),
        f"bytes verified: {sum(r.verified for r in records)}",
        f"faults: {sum(applied)} applied, {len(applied) - sum(applied)} not reached",
        *(_fault_text(p, a) for p, a in zip(result.faults, applied, strict=True)),
        f"invariants: {held} of {len(result.invariants)} hold",
        *(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in result.invariants),
        f"result: {'PASS' if result.passed else 'FAIL'}",
        f"virtual time: {result.virtual_time:.6f} s",
        f"simulation errors: {len(result.errors)}",
        f"trace records: {result.trace_records}",
        f"wall time: {result.wall_seconds:.1f} s",
        f"trace-hash: {result.trace_hash}",
    ]
    return lines


def _count(n: int, plural: str) -> str:
    singular = "authority" if plural == "authorities" else plural[:-1]
    return f"{n} {singular if n == 1 else plural}"


def _latency_text(result: ScenarioResult) -> str:
    lat = latency_summary(result)
    if lat is None:
        return "n/a (no fetch completed)"
    return ", ".join(f"{k} {v:.3f} s" for k, v in lat.items())


def _record(r: FetchRecord) -> dict[str, Any]:
    p = r.plan
    return {"id": p.index, "agent": p.agent, "host": p.host, "port": p.port,
            "method": "POST" if p.upload else "GET", "size": p.size, "seed": p.seed,
            "planned_at": p.at, "started": r.started, "ok": r.ok, "corrupt": r.corrupt,
            "attempts": r.attempts, "latency": r.latency, "ttfb": r.ttfb,
            "bytes_verified": r.verified, "errors": r.errors}


def to_json(result: ScenarioResult) -> dict[str, Any]:
    sc, records = result.scenario, result.records
    return {
        "scenario": {"name": sc.name, "path": sc.path, "sha256": sc.sha256,
                     "description": sc.description},
        "seed": result.seed, "shuffle_ties": result.shuffle_ties, "passed": result.passed,
        "network": result.network,
        "bootstrap": {"time": result.bootstrap_time,
                      "events": [{"t": t, "percent": pc, "tag": tag}
                                 for t, pc, tag in result.bootstrap_events]},
        "client_stats": result.client_stats,
        "fetches": {
            "total": sc.traffic.total_fetches, "completed": sum(r.ok for r in records),
            "failed": sum(not r.ok for r in records),
            "not_run": sc.traffic.total_fetches - len(records),
            "corrupt": sum(r.corrupt for r in records),
            "attempts": sum(r.attempts for r in records),
            "bytes_verified": sum(r.verified for r in records),
            "latency": latency_summary(result)},
        "faults": [{"index": p.index, "kind": p.spec.kind, "hosts": list(p.hosts),
                    "other": list(p.spec.other or ()), "at": p.at,
                    "applied": result.applied(p)} for p in result.faults],
        "invariants": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                       for c in result.invariants],
        "client_error": result.client_error, "errors": result.errors,
        "virtual_time": result.virtual_time, "trace_records": result.trace_records,
        "wall_seconds": result.wall_seconds, "trace_hash": result.trace_hash,
        "records": [_record(r) for r in records],
    }


def write_report(result: ScenarioResult, directory: Path) -> list[Path]:
    """``result.json`` and ``fetches.csv`` in ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = to_json(result)
    json_path, csv_path = directory / "result.json", directory / "fetches.csv"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    columns = ["id", "agent", "method", "size", "started", "ok", "corrupt", "attempts",
               "latency", "ttfb", "bytes_verified"]
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data["records"])
    return [json_path, csv_path]
