"""Interop tests against a private network of real C tor (issue 5): the shared network.

ONE network serves every interop test.  It is made the way the README says,
``gotor testnet up DIR`` as a subprocess, once per session; every test in this
directory is marked ``interop`` and put in one xdist group (pyproject's
``--dist loadgroup``), so that under ``pytest -n auto`` they all run in one
worker, after one another, on that network.  Tests marked ``destructive`` (they
stop relays) run last.

The network is always stopped by PID (the PIDs come from its ``network.json``):
by the fixture's teardown (first ``gotor testnet down DIR``, then directly
whatever is left), by an ``atexit`` hook if the session ends without teardown,
and SIGTERM is turned into KeyboardInterrupt for the session so that it too
runs the teardown.  Without C tor the tests FAIL, saying how to install it: CI
installs it (.ci/run), so a missing tor must not pass as skipped tests.

While working on the tests, ``GOTOR_INTEROP_NETWORK=DIR`` runs them against a
network already up in DIR (``gotor testnet up DIR``), which is left running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from interop_helpers import gotor_command

from gotor.tools import testnet
from gotor.tools.testnet.network import tor_binary

HERE = Path(__file__).resolve().parent
#: `gotor testnet up` must have the network up (consensus + C tor client) within this.
UP_TIMEOUT = 240.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "destructive: stops relays of the shared network; "
                            "runs after the other interop tests")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)
            item.add_marker(pytest.mark.xdist_group("interop"))
    # stable sort: destructive tests after every other test of the session
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


def _stop(root: Path) -> None:
    """Stop every process of the network in ``root`` by PID (idempotent)."""
    try:
        net = testnet.Network.load(root)
    except testnet.TestnetError:
        return  # nothing was started (network.json is written before any process)
    testnet.stop(net)


def _run_up(root: Path) -> tuple[int, str]:
    """``gotor testnet up ROOT``: (exit status, output).  Interrupted or too slow, it
    gets SIGINT and time to stop what it started (the teardown then checks by PID)."""
    proc = subprocess.Popen([*gotor_command(), "testnet", "up", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=UP_TIMEOUT)
    except BaseException as exc:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            pytest.fail(f"`gotor testnet up` did not finish within {UP_TIMEOUT:.0f} s:\n"
                        f"{output}", pytrace=False)
        raise
    return proc.returncode, output


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testnet.Network]:
    if shutil.which(tor_binary()) is None or shutil.which("tor-gencert") is None:
        pytest.fail("C tor is not installed (tor, tor-gencert): the interop tests need it. "
                    "Install it with `apt-get install tor` (.ci/run does).", pytrace=False)
    reuse = os.environ.get("GOTOR_INTEROP_NETWORK")
    if reuse:
        net = testnet.Network.load(Path(reuse).resolve())
        stopped = [s.name for s in testnet.status(net) if not s.running]
        if stopped:
            pytest.fail(f"GOTOR_INTEROP_NETWORK={reuse}: not running: {stopped}", pytrace=False)
        yield net
        return
    root = tmp_path_factory.mktemp("testnet") / "net"
    atexit.register(_stop, root)
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        code, output = _run_up(root)
        if code != 0:
            pytest.fail(f"`gotor testnet up` failed (exit {code}):\n{output}", pytrace=False)
        yield testnet.Network.load(root)
    finally:
        subprocess.run([*gotor_command(), "testnet", "down", str(root)], check=False, capture_output=True,
                       timeout=60)
        _stop(root)  # whatever `down` left (or if it could not run)
        atexit.unregister(_stop)
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if (root / "network.json").exists():
            left = [s.name for s in testnet.status(testnet.Network.load(root)) if s.running]
            assert left == [], f"still running after the interop session: {left}"
