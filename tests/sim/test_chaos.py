"""Chaos campaigns: seed sweeps across worker processes and fault-schedule shrinking."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_helpers import small_text

from gotor.cli import main
from simnet.chaos import parse_seeds, replay_command, shrink, sweep
from simnet.scenario_spec import ScenarioError, load_scenario

# Fault 0 is harmless (a short latency spike); fault 1 kills every exit for good,
# so the fetch cannot complete: shrinking must keep exactly fault 1.
FAULTS = """
[[faults]]
at = 0.2
after = "bootstrap"
kind = "latency"
target = "relay"
extra = 0.05
duration = 2.0

[[faults]]
at = 0.0
after = "bootstrap"
kind = "crash"
target = "exit"
count = 3
"""
TRAFFIC = {"agents": 1, "fetches": 1, "sizes": ["8 KiB"], "start": [0.5, 0.5],
           "retries": 1, "timeout": 20.0}


@pytest.fixture()
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "chaos.toml"
    path.write_text(small_text(FAULTS, traffic=TRAFFIC))
    return path


def test_parse_seeds() -> None:
    assert parse_seeds("1-3,7,2") == [1, 2, 3, 7]
    assert parse_seeds("5") == [5]
    for bad in ("", "a-b", "5-1", "1-", "1-200000"):
        with pytest.raises(ScenarioError):
            parse_seeds(bad)


def test_sweep_outcomes_do_not_depend_on_the_worker(scenario_file: Path) -> None:
    scenario = load_scenario(scenario_file).keep_faults([0])
    alone = sweep(scenario, [3, 4], jobs=1)
    pooled = sweep(scenario, [3, 4], jobs=2)
    assert [o.seed for o in pooled] == [3, 4]
    assert [(o.passed, o.trace_hash) for o in alone] == [(o.passed, o.trace_hash) for o in pooled]
    assert all(o.passed and o.fetches == "1/1" for o in alone)
    assert alone[0].trace_hash != alone[1].trace_hash


def test_shrink_keeps_only_the_fault_that_breaks_the_run(scenario_file: Path) -> None:
    scenario = load_scenario(scenario_file)
    tried: list[tuple[tuple[int, ...], bool]] = []
    kept = shrink(scenario, 1, on_try=lambda subset, failed: tried.append((subset, failed)))
    assert kept == (1,)
    assert tried[0] == ((0, 1), True)
    assert ((1,), True) in tried
    assert "--faults 1" in replay_command(scenario, 1, shuffle_ties=False, subset=kept)
    with pytest.raises(ScenarioError, match="nothing to shrink"):
        shrink(scenario.keep_faults([0]), 1)


def test_run_with_a_fault_selection_replays(scenario_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    assert main(["sim", "run", str(scenario_file), "--seed", "2", "--faults", "1",
                 "--trace", str(trace)]) == 1
    assert "faults: 1 applied" in capsys.readouterr().out
    assert main(["sim", "replay", str(trace)]) == 0
    assert "trace reproduced" in capsys.readouterr().out
    assert main(["sim", "run", str(scenario_file), "--faults", "7"]) == 1
    assert "no fault number 7" in capsys.readouterr().err
