"""``gotor doc``: parse and verify a directory document and summarise it (placeholder until netdoc lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("doc", help="parse and verify a Tor directory document")
    p.add_argument("file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
