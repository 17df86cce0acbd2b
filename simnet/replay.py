"""Trace files and replay: re-run a recorded scenario and compare its trace.

A trace file is JSON lines.  The first line is a header naming what produced
it — ``{"format": "simnet-trace/1", "scenario": "demo", "seed": N, "params":
{...}, "version": {"gotor": ..., "git": ...}}`` — and every further line is one
record (:mod:`simnet.trace`).  ``"scenario"`` is ``"demo"`` (:mod:`simnet.demo`)
or ``"scenario"`` for a scenario file run by ``gotor sim run``, whose params
carry the file's path, text and SHA-256 (:mod:`simnet.scenario`), so a replay
needs nothing but the trace.  The trace hash covers the records only.  Replay
looks the scenario up in :data:`SCENARIOS`, runs it again with the recorded seed
and parameters, and reports whether the hashes match and, if not, the first
record that differs.  The code version is informational: a different version
explains a mismatch, it does not prevent the attempt.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import gotor
from gotor.errors import LocalError
from simnet.demo import DemoParams, run_demo
from simnet.scenario import replay_scenario
from simnet.trace import Divergence, first_divergence, hash_lines, read_trace

FORMAT = "simnet-trace/1"

# A scenario runner: (seed, params from the header) -> the records of a fresh run.
Runner = Callable[[int, dict[str, Any]], list[str]]


def _replay_demo(seed: int, params: dict[str, Any]) -> list[str]:
    return run_demo(DemoParams.from_header(seed, params), keep=True).lines


SCENARIOS: dict[str, Runner] = {"demo": _replay_demo, "scenario": replay_scenario}


def code_version() -> dict[str, str | None]:
    """gotor's version and, when run from a git checkout, ``git describe`` (informational)."""
    try:
        git = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"],
                             cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"gotor": gotor.__version__, "git": git}


def write_header(sink: IO[str], scenario: str, seed: int, params: dict[str, Any]) -> None:
    header = {"format": FORMAT, "scenario": scenario, "seed": seed, "params": params,
              "version": code_version()}
    sink.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")


@dataclass(frozen=True)
class ReplayReport:
    header: dict[str, Any]
    recorded_hash: str
    replayed_hash: str
    divergence: Divergence | None

    @property
    def matched(self) -> bool:
        return self.divergence is None


def replay(path: Path) -> ReplayReport:
    """Re-run the scenario recorded in ``path``; LocalError if the file is not a usable trace."""
    try:
        header, records = read_trace(path)
        recorded = list(records)
    except UnicodeDecodeError:
        raise LocalError(f"{path}: not a simnet trace (not UTF-8 text)") from None
    except ValueError as exc:
        raise LocalError(str(exc)) from None
    scenario = header.get("scenario")
    runner = SCENARIOS.get(scenario) if isinstance(scenario, str) else None
    if runner is None:
        raise LocalError(f"{path}: unknown scenario {scenario!r}")
    params = header.get("params")
    if not isinstance(params, dict):
        raise LocalError(f"{path}: trace header has no scenario parameters")
    lines = runner(header["seed"], params)
    return ReplayReport(header, hash_lines(recorded), hash_lines(lines),
                        first_divergence(recorded, lines))
