"""The ``gotor`` command line.

Each subcommand lives in its own module and provides ``register(subparsers)``,
which sets ``run(args) -> exit status`` as the parser default.  Subcommands are
found through the ``gotor.commands`` entry-point group (see pyproject.toml), so
that ``gotor sim`` can live in the simnet package without gotor importing it.
Errors that gotor raises on purpose become one clear line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from gotor import __version__
from gotor.errors import GotorError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gotor", description="A Tor client built simulation-first.")
    parser.add_argument("--version", action="version", version=f"gotor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in sorted(entry_points(group="gotor.commands"), key=lambda e: e.name):
        importlib.import_module(ep.value).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except GotorError as exc:
        print(f"gotor {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gotor {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
