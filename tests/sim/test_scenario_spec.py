"""The scenario file format: the shipped scenarios load; bad files are one-line errors.

Every error names the file and the key (table, fault number) and is a
ScenarioError (a LocalError), never a traceback; on arbitrary tables of
plausible keys and values, parsing returns a Scenario or raises ScenarioError,
nothing else.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simnet.scenario_spec import (
    FAULT_KEYS,
    Scenario,
    ScenarioError,
    TrafficSpec,
    load_scenario,
    parse_scenario,
)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"


def test_shipped_scenarios_load() -> None:
    quick = load_scenario(SCENARIOS / "quickstart.toml")
    assert quick.name == "quickstart"
    assert (quick.topology.authorities, quick.topology.relays) == (3, 30)
    assert quick.traffic.sizes == (2048, 65536, 262144, 1 << 20)
    assert quick.traffic.isolation == "agent" and quick.faults == ()
    crash = load_scenario(SCENARIOS / "relay-crash.toml")
    assert {f.kind for f in crash.faults} >= {"crash", "partition", "loss", "latency"}
    assert crash.traffic.retries > 0
    assert crash.sha256 != quick.sha256 and len(crash.sha256) == 64


def test_defaults_and_derived_values() -> None:
    sc = parse_scenario("", "empty.toml")
    assert isinstance(sc, Scenario) and sc.name == "empty"
    assert sc.traffic == TrafficSpec() and sc.traffic.total_fetches == 10
    assert sc.topology.exits is None and sc.topology.tls
    assert sc.invariants.all_fetches_complete and sc.invariants.max_bootstrap_time is None
    sc = parse_scenario('[traffic]\nagents = 3\nfetches = 4\nsizes = [1, "2 KB", "3MiB"]\n'
                        "start = 2.5\ninterval = [1, 2]", "x.toml")
    assert sc.traffic.total_fetches == 12
    assert sc.traffic.sizes == (1, 2000, 3 << 20)
    assert sc.traffic.start == (2.5, 2.5) and sc.traffic.interval == (1.0, 2.0)


def test_faults_parse_with_their_kind_specific_keys() -> None:
    sc = parse_scenario("""
[[faults]]
at = 1
kind = "partition"
target = ["relay001", "exit"]
other = "authority"
count = 2
duration = 3
[[faults]]
at = 2
after = "bootstrap"
kind = "bandwidth"
target = "client"
down = 1e6
""", "f.toml")
    part, cap = sc.faults
    assert part.target == ("relay001", "exit") and part.other == ("authority",)
    assert (part.at, part.after, part.count, part.duration) == (1.0, "start", 2, 3.0)
    assert cap.after == "bootstrap" and cap.down == 1e6 and cap.up is None


BAD = [
    ("bogus = 1", "unknown key 'bogus'"),
    ("[topology]\nrelay = 3", "[topology]: unknown key 'relay'"),
    ("[topology]\nrelays = 'thirty'", "[topology].relays: expected an integer, got a string"),
    ("[topology]\nrelays = 2", "[topology].relays: 2 is out of range"),
    ("[topology]\nrelays = 4.5", "[topology].relays: expected an integer"),
    ("[topology]\nrelays = 5\nexits = 6", "exits (6) exceeds relays (5)"),
    ("[topology]\ntls = 1", "[topology].tls: expected true or false"),
    ("[topology]\nauthority_id_bits = 1500", "expected 1024, 2048, 3072 or 4096, got 1500"),
    ("[topology]\nrelay_latency = [0.5, 0.1]", "min 0.5 is larger than max 0.1"),
    ("[topology]\nrelay_latency = [0.1]", "expected a number or [min, max]"),
    ("[client]\nsocks_port = 70000", "[client].socks_port: 70000 is out of range"),
    ("[traffic]\nsizes = []", "[traffic].sizes: expected a non-empty array"),
    ("[traffic]\nsizes = ['12 parsecs']", "[traffic].sizes[0]: expected a size"),
    ("[traffic]\nsizes = ['2 GiB']", "out of range (0 to 1 GiB)"),
    ("[traffic]\nisolation = 'circuit'", "expected one of none, agent, fetch"),
    ("[traffic]\ntimeout = 0", "[traffic].timeout: 0 is out of range (must be > 0)"),
    ("[traffic]\nuploads = 1.5", "[traffic].uploads: 1.5 is out of range"),
    ("[run]\nmax_virtual_time = inf", "[run].max_virtual_time: expected a finite number"),
    ("[client]\nlatency = nan", "[client].latency: expected a finite number"),
    ("[traffic]\nstart = [0, inf]", "[traffic].start: expected a finite number"),
    ("traffic = 3", "[traffic]: expected a table, got an integer"),
    ("faults = 3", "faults: expected an array of tables"),
    ("[[faults]]\nkind = 'crash'\ntarget = 'exit'", "[[faults]] #1: missing key 'at'"),
    ("[[faults]]\nat = 1\nkind = 'meteor'\ntarget = 'exit'", "#1.kind: expected one of crash"),
    ("[[faults]]\nat = 1\nkind = 'crash'\ntarget = 'exit'\nrate = 0.1",
     "#1: key 'rate' does not apply to a crash fault"),
    ("[[faults]]\nat = 1\nkind = 'loss'\ntarget = 'exit'", "a loss fault needs 'rate'"),
    ("[[faults]]\nat = 1\nkind = 'bandwidth'\ntarget = 'exit'", "needs 'up' and/or 'down'"),
    ("[[faults]]\nat = 1\nkind = 'crash'\ntarget = 'client'", "the client cannot crash"),
    ("[[faults]]\nat = 1\nkind = 'crash'\ntarget = 'exit'\nwhen = 3", "unknown key 'when'"),
    ("[[faults]]\nat = -1\nkind = 'crash'\ntarget = 'exit'", "#1.at: -1 is out of range"),
    ("[[faults]]\nat = inf\nkind = 'crash'\ntarget = 'exit'", "#1.at: expected a finite"),
    ("[[faults]]\nat = 1\nkind = 'latency'\ntarget = 'exit'\nextra = -inf",
     "#1.extra: expected a finite number"),
    ("[[faults]]\nat = 1\nkind = 'crash'\ntarget = 7", "#1.target: expected a host name, a pool, or an array"),
    ("[topology\nrelays = 3", "invalid TOML"),
    ('name = 5', "name: expected a string"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scenarios_are_one_line_errors_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.toml")
    assert str(info.value).startswith("bad.toml: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name = 1")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(binary)


def test_command_line_reports_bad_files_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[traffic]\nagents = 'many'\n")
    for target in (bad, tmp_path / "missing.toml"):
        proc = subprocess.run([sys.executable, "-m", "gotor", "sim", "run", str(target)],
                              cwd=REPO, capture_output=True, text=True, timeout=60,
                              check=False, env=dict(os.environ))
        assert proc.returncode == 1 and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gotor sim: error: ")
        assert str(target) in lines[0] and "Traceback" not in proc.stderr


# --- property: plausible tables never crash the parser ------------------------------------------
_KEYS = {
    "topology": ["authorities", "relays", "exits", "web_servers", "legacy_fraction",
                 "relay_latency", "relay_bandwidth", "tls", "authority_id_bits", "extra"],
    "traffic": ["agents", "fetches", "concurrency", "sizes", "start", "interval", "uploads",
                "targets", "isolation", "retries", "timeout", "agnts"],
    "client": ["socks_port", "latency", "bandwidth", "testing_network"],
    "invariants": ["all_fetches_complete", "max_bootstrap_time", "max_failed_attempts"],
    "run": ["max_virtual_time"],
}
_FAULT_KEYS = sorted({"at", "after", "kind", "target", "count", "other", *(
    k for keys in FAULT_KEYS.values() for k in keys)})
_SCALARS = st.one_of(
    st.integers(-5, 5000), st.floats(-10, 1e9, allow_nan=False), st.booleans(),
    st.sampled_from([math.inf, -math.inf, math.nan]),
    st.sampled_from(["exit", "relay003", "1 KiB", "none", "crash", "loss", "bootstrap", "",
                     "x" * 300, "9 MB", "client"]))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    parts = []
    for table, keys in _KEYS.items():
        chosen = draw(st.dictionaries(st.sampled_from(keys), _VALUES, max_size=4))
        parts.append(f"[{table}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in chosen.items()))
    for _ in range(draw(st.integers(0, 2))):
        chosen = draw(st.dictionaries(st.sampled_from(_FAULT_KEYS), _VALUES, max_size=6))
        parts.append("[[faults]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in chosen.items()))
    return "\n".join(parts)


@settings(max_examples=150, deadline=None)
@given(_documents())
def test_arbitrary_tables_parse_or_raise_scenario_error(text: str) -> None:
    try:
        sc = parse_scenario(text, "h.toml")
    except ScenarioError as exc:
        assert str(exc).startswith("h.toml") and "\n" not in str(exc)
        return
    assert sc.traffic.agents >= 1 and all(0 <= s <= 1 << 30 for s in sc.traffic.sizes)
    numbers = [sc.run.max_virtual_time, sc.client.latency, *sc.traffic.start,
               *(f.at for f in sc.faults), *(f.duration for f in sc.faults if f.duration)]
    assert all(math.isfinite(n) for n in numbers)
