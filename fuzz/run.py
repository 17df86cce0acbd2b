"""Run one fuzz target under atheris for a while.

    python fuzz/run.py TARGET [--seconds N] [--runs N] [-- extra libFuzzer flags]
    python fuzz/run.py --list

A target is ``fuzz/fuzz_<TARGET>.py``; it defines ``TestOneInput(data: bytes)``,
which must return normally or raise :class:`gotor.errors.ProtocolError` (caught
here) — anything else is a finding.  Seed inputs come from ``fuzz/corpus/<TARGET>/``
and, if the harness defines ``seed_inputs()``, from there too; keywords from
``fuzz/dicts/<TARGET>.dict``.  New corpus entries go to a scratch directory, so a
run never modifies the checked-in corpus.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def targets() -> list[str]:
    return sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


def load(target: str) -> ModuleType:
    path = HERE / f"fuzz_{target}.py"
    if not path.exists():
        raise SystemExit(f"no fuzz target {target!r}; known: {', '.join(targets())}")
    spec = importlib.util.spec_from_file_location(f"fuzz_{target}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeds(target: str, module: ModuleType) -> list[bytes]:
    """The checked-in corpus files plus the harness's own ``seed_inputs()``."""
    out = [p.read_bytes() for p in sorted((HERE / "corpus" / target).glob("*")) if p.is_file()]
    if hasattr(module, "seed_inputs"):
        out.extend(module.seed_inputs())
    return out


def guarded(module: ModuleType):
    from gotor.errors import ProtocolError

    def one(data: bytes) -> None:
        try:
            module.TestOneInput(data)
        except ProtocolError:
            pass

    return one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Flags after -- go to libFuzzer as they are.")
    parser.add_argument("target", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the targets")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=-1, help="stop after N inputs")
    # Split at "--" here: an argparse positional for the flags is consumed (empty) together
    # with TARGET, so "TARGET --seconds 2 -- FLAGS" would be refused.
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if args.list or not args.target:
        print("\n".join(targets()))
        return 0

    import atheris

    with atheris.instrument_imports(include=["gotor"]):
        module = load(args.target)
    scratch = Path(tempfile.mkdtemp(prefix=f"gotor-fuzz-{args.target}-"))
    for i, data in enumerate(seeds(args.target, module)):
        (scratch / f"seed-{i:04d}").write_bytes(data)
    flags = [sys.argv[0], str(scratch), f"-max_total_time={args.seconds}", f"-runs={args.runs}",
             "-rss_limit_mb=2048", "-timeout=10", *extra]
    dict_path = HERE / "dicts" / f"{args.target}.dict"
    if dict_path.exists():
        flags.append(f"-dict={dict_path}")
    atheris.Setup(flags, guarded(module))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
