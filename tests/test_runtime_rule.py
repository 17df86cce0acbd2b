"""The runtime rule of DESIGN.md: core code reaches the world only through gotor.runtime.

Only the asyncio binding (gotor/runtime/aio.py) and the command-line tools
(gotor/cli.py, gotor/tools/ — which includes the private-network harness
gotor/tools/testnet/, that starts C tor processes and waits on the wall clock)
may touch clocks, sockets, threads and OS randomness; nothing in gotor/ may
import simnet or simpy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "gotor"
BANNED = {"asyncio", "socket", "ssl", "time", "random", "threading", "secrets",
          "selectors", "multiprocessing", "concurrent"}
NEVER = {"simnet", "simpy"}
WORLD_ALLOWED = ("runtime/aio.py", "cli.py", "tools/")


def _violations(path: Path, world_allowed: bool) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in NEVER or (top in BANNED and not world_allowed):
                found.append(f"{path}:{node.lineno}: imports {name}")
        if world_allowed:
            continue
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in ("os.urandom", "os.getrandom", "datetime.now", "datetime.utcnow",
                          "datetime.datetime.now", "datetime.datetime.utcnow", "date.today"):
                found.append(f"{path}:{node.lineno}: uses {dotted}")
        if (isinstance(node, ast.ImportFrom) and node.module == "os"
                and any(a.name in ("urandom", "getrandom") for a in node.names)):
            found.append(f"{path}:{node.lineno}: imports os.urandom")
    return found


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    assert len(_modules()) > 5


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_obeys_runtime_rule(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    allowed = any(rel == a or (a.endswith("/") and rel.startswith(a)) for a in WORLD_ALLOWED)
    assert _violations(path, allowed) == []


def test_checker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\nimport os\nos.urandom(3)\n"
                   "import simnet.env\nfrom datetime import datetime\ndatetime.now()\n")
    found = _violations(bad, world_allowed=False)
    assert len(found) == 5, found
    assert _violations(bad, world_allowed=True) == [f"{bad}:5: imports simnet.env"]
