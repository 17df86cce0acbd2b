"""The ``gotor`` command line.

Each subcommand lives in its own module under :mod:`gotor.tools` and provides
``register(subparsers)``; the module's ``run(args)`` returns the exit status.
Errors that gotor raises on purpose become one clear line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gotor import __version__
from gotor.errors import GotorError
from gotor.tools import doc

TOOLS = (doc,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gotor", description="A Tor client built simulation-first.")
    parser.add_argument("--version", action="version", version=f"gotor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for tool in TOOLS:
        tool.register(sub)
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
