"""Every fuzz harness runs briefly in the test suite (fuzz/README.md).

Harnesses are discovered (``fuzz/fuzz_*.py``), so a new one is picked up
without touching this file.  For each:

1. in process, through ``fuzz/run.py``'s own loader and guarded callback: every
   seed input, then a few hundred deterministic mutations of the seeds (bit
   flips, byte changes, deleted/duplicated spans, dictionary words, splices,
   truncations) and random byte strings.  Only ProtocolError may escape a
   decoder (the guard swallows it); anything else fails with the input;
2. a short real atheris run in a subprocess (``fuzz/run.py TARGET --seconds 2``)
   that must exit 0 — it exercises the runner, the instrumentation, the
   dictionary and the seeds as a fuzzing session would.  Skipped only where
   atheris cannot be installed (it has no wheels for some platforms).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from gotor.errors import ProtocolError

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
MUTANTS = 300
RANDOM_INPUTS = 40
ATHERIS_SECONDS = 2
ATHERIS_MAX_RUNS = 20_000
HAS_ATHERIS = importlib.util.find_spec("atheris") is not None


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gotor_fuzz_runner", FUZZ / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = _load_runner()
TARGETS: list[str] = RUNNER.targets()


def test_every_harness_file_is_a_target() -> None:
    files = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py"))
    assert TARGETS == files
    assert len(TARGETS) >= 6  # cells (2) and netdoc (4) at least


# --- libFuzzer dictionaries -------------------------------------------------

_DICT_LINE = re.compile(r'\s*(?:[A-Za-z0-9_]+\s*=\s*)?"((?:[^"\\]|\\.)*)"\s*')
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|\\|\")")


def dictionary(target: str) -> list[bytes]:
    """The words of ``fuzz/dicts/TARGET.dict`` (libFuzzer syntax), [] if there is none."""
    path = FUZZ / "dicts" / f"{target}.dict"
    if not path.exists():
        return []
    words = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _DICT_LINE.fullmatch(line)
        assert m, f"{path.name}:{n}: not a libFuzzer dictionary entry: {line!r}"
        words.append(_ESCAPE.sub(_unescape, m.group(1).encode()))
    return words


def _unescape(m: re.Match[bytes]) -> bytes:
    esc = m.group(1)
    return bytes([int(esc[1:], 16)]) if esc.startswith(b"x") else esc


# --- mutations ---------------------------------------------------------------


def _span(rng: random.Random, data: bytes) -> tuple[int, int]:
    a = rng.randrange(len(data) + 1)
    return a, min(len(data), a + rng.randrange(1, 65))


def _flip_bit(rng: random.Random, data: bytes, _: list[bytes], __: list[bytes]) -> bytes:
    if not data:
        return b"\x00"
    pos = rng.randrange(len(data))
    return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]


def _set_byte(rng: random.Random, data: bytes, _: list[bytes], __: list[bytes]) -> bytes:
    pos = rng.randrange(len(data) + 1)
    value = rng.choice(b"\x00\n -09AZaz=+/\xff" + bytes([rng.randrange(256)]))
    return data[:pos] + bytes([value]) + data[pos + 1 :]


def _delete(rng: random.Random, data: bytes, _: list[bytes], __: list[bytes]) -> bytes:
    a, b = _span(rng, data)
    return data[:a] + data[b:]


def _duplicate(rng: random.Random, data: bytes, _: list[bytes], __: list[bytes]) -> bytes:
    a, b = _span(rng, data)
    return data[:b] + data[a:b] + data[b:]


def _insert_word(rng: random.Random, data: bytes, words: list[bytes], _: list[bytes]) -> bytes:
    word = rng.choice(words) if words else bytes([rng.randrange(256)])
    pos = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:  # at a line start, where keywords matter
        pos = data.rfind(b"\n", 0, pos) + 1
    return data[:pos] + word + data[pos:]


def _truncate(rng: random.Random, data: bytes, _: list[bytes], __: list[bytes]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _splice(rng: random.Random, data: bytes, _: list[bytes], seeds: list[bytes]) -> bytes:
    other = rng.choice(seeds)
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


Mutation = Callable[[random.Random, bytes, list[bytes], list[bytes]], bytes]
MUTATIONS: tuple[Mutation, ...] = (
    _flip_bit,
    _set_byte,
    _delete,
    _duplicate,
    _insert_word,
    _truncate,
    _splice,
)


def mutants(target: str, seeds: list[bytes], words: list[bytes]) -> Iterator[bytes]:
    """Deterministic (seeded by the target name) mutants of the seeds, then random bytes."""
    rng = random.Random(f"gotor-fuzz-{target}")
    for _ in range(MUTANTS):
        data = rng.choice(seeds)
        for _ in range(rng.choice((1, 1, 1, 2, 4))):
            data = rng.choice(MUTATIONS)(rng, data, words, seeds)
        yield data
    for _ in range(RANDOM_INPUTS):
        yield rng.randbytes(rng.choice((0, 1, 2, 5, 16, 64, 509, 514, 1024)))


# --- the tests ------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_harness_in_process(target: str) -> None:
    module = RUNNER.load(target)
    assert callable(module.TestOneInput)
    seeds = RUNNER.seeds(target, module)
    assert seeds, f"{target}: no seed inputs (fuzz/corpus/{target}/ or seed_inputs())"
    accepted = 0
    for data in seeds:
        try:
            module.TestOneInput(data)
            accepted += 1
        except ProtocolError:
            pass
    # Seeds that all fail to parse would fuzz only the error paths.
    assert accepted > 0, f"{target}: every seed input is rejected"
    one = RUNNER.guarded(module)
    for n, data in enumerate(mutants(target, seeds, dictionary(target))):
        try:
            one(data)
        except Exception as exc:  # a finding: report the input that caused it
            raise AssertionError(
                f"{target}: input #{n} ({len(data)} bytes) raised {exc!r}; "
                f"first bytes {data[:120]!r}"
            ) from exc


@pytest.mark.skipif(not HAS_ATHERIS, reason="atheris is not installable on this platform")
@pytest.mark.parametrize("target", TARGETS)
def test_harness_under_atheris(target: str, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "run.py"),
            target,
            "--seconds",
            str(ATHERIS_SECONDS),
            "--runs",
            str(ATHERIS_MAX_RUNS),
            "--",
            # A finding's input goes here, not into the checkout (libFuzzer's default: ./).
            f"-artifact_prefix={tmp_path}{os.sep}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, f"{target}: atheris run failed\n{tail}"
    assert re.search(r"^Done \d+ runs in", proc.stderr, re.MULTILINE), tail
