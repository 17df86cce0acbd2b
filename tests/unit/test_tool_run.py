"""``gotor run -f TORRC`` without a network: bad torrcs, C tor's log format, retrying a
bootstrap that cannot succeed, and a clean exit on SIGINT/SIGTERM (never a traceback).

With a real network it is exercised by tests/interop/test_readme_flow.py."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gotor.cli import main as gotor_main
from gotor.tools.run import NOTICE, _Band, _TorFormatter

FP = "9638018506DA06755CFDF3D5F778D5F3D957E402"
V3 = "5A4F640E32FBEACAD341BA3D15CB393311AABE06"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_missing_or_unusable_torrc_is_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert gotor_main(["run", "-f", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gotor run: error: cannot read") and err.count("\n") == 1
    torrc = tmp_path / "torrc"
    torrc.write_text("SocksPort 9150\n")
    assert gotor_main(["run", "-f", str(torrc)]) == 1
    assert "no DirAuthority lines" in capsys.readouterr().err
    torrc.write_text("SocksPort nine\n")
    assert gotor_main(["run", "-f", str(torrc)]) == 1
    assert f"{torrc} line 1: SocksPort: bad port" in capsys.readouterr().err


def test_log_lines_look_like_c_tor_s() -> None:
    record = logging.LogRecord("gotor", NOTICE, __file__, 1, "Bootstrapped %d%% (%s): %s",
                               (100, "done", "Done"), None)
    line = _TorFormatter(tracebacks=False).format(record)
    stamp, _, rest = line.partition(" [")
    assert rest == "notice] Bootstrapped 100% (done): Done"
    assert time.strptime(stamp[:15], "%b %d %H:%M:%S") and stamp[15] == "." and len(stamp) == 19
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("gotor", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    assert _TorFormatter(tracebacks=False).format(failed).endswith("[err] failed (ValueError: boom)")
    assert "Traceback" in _TorFormatter(tracebacks=True).format(failed)
    band = _Band(logging.WARNING)
    assert band.filter(record) and not band.filter(failed)


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    torrc = tmp_path / "torrc"
    torrc.write_text(f"DirAuthority auth0 orport={_closed_port()} no-v2 v3ident={V3} "
                     f"127.0.0.1:{_closed_port()} {FP}\nSocksPort auto\n"
                     f"DataDirectory {tmp_path / 'data'}\nRunAsDaemon 1\n")
    return subprocess.Popen([sys.executable, "-m", "gotor.cli", "run", "-f", str(torrc)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} in:\n{''.join(lines)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_failing_bootstrap_is_retried_and_a_signal_ends_it_cleanly(tmp_path: Path,
                                                                     sig: signal.Signals) -> None:
    proc = _start(tmp_path)
    try:
        lines = _read_until(proc, "Opened Socks listener connection (ready) on 127.0.0.1:")
        port = int(lines[-1].rsplit(":", 1)[1])
        lines += _read_until(proc, "Trying to bootstrap again in 5 seconds")
        # as C tor's, the SOCKS port is open while the client bootstraps, and stays open
        # (the same port) while it waits to try again
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert "[warn] torrc" not in text  # warnings name the file
    assert "ignoring RunAsDaemon, an option gotor does not support" in text
    assert "[notice] Bootstrapped 0% (starting): Starting" in text
    assert "[warn] Bootstrap failed:" in text
    assert text.index("Opened Socks listener") < text.index("Bootstrapped 0%")
    assert f"Catching signal {sig.name}, exiting cleanly." in text
    assert "Traceback" not in text


def test_an_unusable_data_directory_is_one_log_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    data_dir = tmp_path / "file" / "data"
    torrc = tmp_path / "torrc"
    torrc.write_text(f"DataDirectory {data_dir}\nSocksPort auto\n"
                     f"DirAuthority auth0 orport=1 no-v2 v3ident={V3} 127.0.0.1:2 {FP}\n")
    assert gotor_main(["run", "-f", str(torrc)]) == 1
    out = capsys.readouterr().out
    assert f"[err] cannot use {data_dir}: Not a directory" in out
    assert "internal error" not in out and "Traceback" not in out


def test_an_internal_error_is_one_log_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(config: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("gotor.tools.run.serve", broken)
    torrc = tmp_path / "torrc"
    torrc.write_text(f"DirAuthority auth0 orport=1 no-v2 v3ident={V3} 127.0.0.1:2 {FP}\n")
    assert gotor_main(["run", "-f", str(torrc)]) == 1
    out = capsys.readouterr().out
    assert "[err] gotor stopped on an internal error: RuntimeError('a bug')" in out
    assert "Traceback" not in out
