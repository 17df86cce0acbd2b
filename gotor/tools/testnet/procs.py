"""Processes of the harness: started in a session of their own, stopped by PID.

A node's process is known by its PID (kept in ``network.json``) *and* a
marker in its command line (its torrc path, or the network's ``www``
directory): a PID that the kernel has given to another program since is
never signalled.  Stopping is SIGTERM (tor exits at once with
``ShutdownWaitLength 0``), then SIGKILL for anything still there after a
grace period.  Processes this Python process started are reaped (no
zombies); others (started by an earlier ``gotor testnet up``) belong to init.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from gotor.tools.testnet.errors import TestnetError

__all__ = ["is_running", "spawn", "stop", "tail"]

#: Seconds between SIGTERM and SIGKILL.
STOP_GRACE = 10.0
#: How long :func:`spawn` waits for the new program to replace the forked child.
EXEC_TIMEOUT = 5.0

#: Children this process started, by PID (so that they can be reaped).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], output: Path, *, marker: str | None = None,
          cwd: Path | None = None) -> int:
    """Start ``argv`` in a new session, stdout and stderr to ``output``; its PID.

    With ``marker`` (which must be in ``argv``), returns once the new program is
    running (/proc shows its command line, not ours, between fork and exec) or
    has already exited, so that :func:`is_running` is meaningful at once.
    """
    try:
        with open(output, "ab") as out:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise TestnetError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    _children[proc.pid] = proc
    deadline = time.monotonic() + EXEC_TIMEOUT
    while (marker is not None and proc.poll() is None and not is_running(proc.pid, marker)
           and time.monotonic() < deadline):
        time.sleep(0.005)
    return proc.pid


def _reap(pid: int) -> bool:
    """True if ``pid`` is a child of ours that has exited (and is now reaped)."""
    proc = _children.get(pid)
    if proc is None or proc.poll() is None:
        return False
    del _children[pid]
    return True


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def is_running(pid: int | None, marker: str) -> bool:
    """Is ``pid`` alive and still the process whose command line contains ``marker``?"""
    if pid is None or pid <= 0 or _reap(pid):
        return False
    cmdline = _cmdline(pid)
    return cmdline is not None and marker in cmdline and not _zombie(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(processes: Sequence[tuple[int, str]], *, grace: float = STOP_GRACE) -> list[int]:
    """Stop every running (pid, marker); the PIDs that needed SIGKILL."""
    alive = [(pid, m) for pid, m in processes if is_running(pid, m)]
    for pid, _ in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [(pid, m) for pid, m in alive if is_running(pid, m)]
    for pid, _ in alive:
        _signal(pid, signal.SIGKILL)
    killed = [pid for pid, _ in alive]
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [(pid, m) for pid, m in alive if is_running(pid, m)]
    if alive:
        raise TestnetError(f"processes {[p for p, _ in alive]} survived SIGKILL")
    return killed


def tail(path: Path, lines: int = 20, *, contains: Sequence[str] = ()) -> list[str]:
    """The last ``lines`` lines of a log (only those containing one of ``contains``,
    if given); [] if there is no such file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - (1 << 20)))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    found = text.splitlines()
    if contains:
        found = [line for line in found if any(c in line for c in contains)]
    return found[-lines:]
