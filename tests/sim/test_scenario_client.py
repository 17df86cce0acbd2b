"""`gotor sim run` with gotor's TorClient: the quickstart, a fault scenario, determinism, replay.

The client bootstraps from the emulated authorities and carries every fetch
over 3-hop circuits.  The same seed gives the same trace hash in separate
processes whatever PYTHONHASHSEED, with and without shuffled ties (which keep
the outcomes); a trace replays from its header alone and a tampered one names
its first differing record; --json and --report write the same result; the
relay-crash scenario holds its invariants; and with every exit down the run
fails, so the invariants are not vacuous.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_helpers import REPO, small, small_text

from simnet.replay import replay
from simnet.scenario import run_scenario
from simnet.scenario_spec import load_scenario

#: Lines that differ between two runs of one seed (all others must be equal).
WALL = "wall time"


def start(*args: str, hashseed: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.Popen([sys.executable, "-m", "gotor", "sim", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], status: int = 0) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    return out


def summary(out: str) -> dict[str, str]:
    lines = out.strip().splitlines()
    assert lines[-1].startswith("trace-hash: ") and len(lines[-1]) == len("trace-hash: ") + 64
    return {k: v for k, v in (line.split(": ", 1) for line in lines if ": " in line)
            if k != WALL}


def readme_main_command() -> list[str]:
    """The ``gotor sim run ...`` of the README's main command (after ``pip install ... &&``)."""
    text = (REPO / "README.md").read_text()
    line = next(ln for ln in text.splitlines() if "&& gotor sim run " in ln)
    return shlex.split(line.split("&&", 1)[1])


@pytest.mark.slow
def test_readme_main_command_runs_the_quickstart_and_passes() -> None:
    argv = readme_main_command()
    assert argv == ["gotor", "sim", "run", "scenarios/quickstart.toml", "--seed", "1"]
    out = finish(start(*argv[2:], hashseed="0"))
    got = summary(out)
    assert got["network"] == "3 authorities, 30 relays, 7 exits, 1 web server, 4 agents"
    assert got["fetches"].startswith("20 of 20 completed byte-exact, 0 failed, 0 corrupt")
    assert got["result"] == "PASS" and got["simulation errors"] == "0"
    assert float(got["bootstrap"].split()[0]) > 0
    assert int(got["bytes verified"]) > 1 << 20
    assert "circuits built" in got["client"]
    assert [k for k in ("min", "median", "p90", "max") if k in got["latency"]] == [
        "min", "median", "p90", "max"]
    assert "invariants: 6 of 6 hold" in out


def test_same_seed_same_hash_in_any_process_and_with_shuffled_ties(tmp_path: Path) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(small_text(traffic={"uploads": 0.3, "concurrency": 2}))
    trace, report = tmp_path / "t.jsonl", tmp_path / "report"
    plain = [start("run", str(scenario), "--seed", "1", "--trace", str(trace), "--json",
                   "--report", str(report), hashseed="1"),
             start("run", str(scenario), "--seed", "1", hashseed="2")]
    as_json = json.loads(finish(plain[0]))
    second = summary(finish(plain[1]))
    shuffled = [start("run", str(scenario), "--seed", "1", "--shuffle-ties", hashseed=h)
                for h in ("3", "4")]
    one, two = (summary(finish(p)) for p in shuffled)

    assert as_json["passed"] and second["result"] == "PASS"
    assert as_json["trace_hash"] == second["trace-hash"]
    # ... and in this process (a pytest-xdist worker under -n auto).
    here = run_scenario(load_scenario(scenario), 1)
    assert here.trace_hash == as_json["trace_hash"]
    assert one == two and one["trace-hash"] != second["trace-hash"]
    for key in ("fetches", "bytes verified", "simulation errors", "result"):
        assert one[key] == second[key]

    # --report wrote the same object as --json, and one CSV row per fetch.
    written = json.loads((report / "result.json").read_text())
    assert {k: v for k, v in written.items() if k != "wall_seconds"} == {
        k: v for k, v in as_json.items() if k != "wall_seconds"}
    rows = list(csv.DictReader((report / "fetches.csv").open()))
    assert len(rows) == 6 and {r["ok"] for r in rows} == {"True"}

    # The trace replays in another process from its header alone.
    header = json.loads(trace.read_text().splitlines()[0])
    assert header["scenario"] == "scenario" and header["seed"] == 1
    assert header["params"]["sha256"] == as_json["scenario"]["sha256"]
    assert header["params"]["text"] == scenario.read_text()
    scenario.unlink()
    out = finish(start("replay", str(trace), hashseed="5"))
    assert "trace reproduced" in out and out.strip().endswith(as_json["trace_hash"])

    lines = trace.read_text().splitlines()
    lines[40] = lines[40].replace('"t":', '"t":7', 1)
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    report_ = replay(tampered)
    assert not report_.matched and report_.divergence is not None
    assert report_.divergence.index == 40 and report_.replayed_hash == as_json["trace_hash"]


def test_relay_crash_scenario_holds_its_invariants() -> None:
    scenario = load_scenario(REPO / "scenarios" / "relay-crash.toml")
    result = run_scenario(scenario, 1)
    assert result.passed, [c for c in result.invariants if not c.ok]
    assert all(result.applied(p) for p in result.faults)
    # The authority was down at the start: bootstrap waited for another one.
    assert result.bootstrap_time is not None and result.bootstrap_time > 30
    assert all(r.ok and not r.corrupt and r.verified == r.plan.size for r in result.records)


def test_with_every_exit_down_the_run_fails() -> None:
    down = ('[[faults]]\nat = 0.0\nafter = "bootstrap"\nkind = "crash"\n'
            'target = "exit"\ncount = 3\n')
    sc = small(down, traffic={"fetches": 1, "timeout": 60.0},
               client={"testing_network": True})
    result = run_scenario(sc, 1)
    checks = {c.name: c.ok for c in result.invariants}
    assert checks["client bootstrapped"] and checks["run finished"]
    assert not checks["all fetches complete"] and not result.passed
    assert not any(r.ok for r in result.records) and all(r.errors for r in result.records)
