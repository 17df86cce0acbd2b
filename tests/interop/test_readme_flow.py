"""The README's "Run against a private Tor network" flow, as the commands it documents.

The session's network was made by ``gotor testnet up DIR`` (conftest); this test
runs ``gotor testnet status DIR``, writes the torrc the README shows, starts
``gotor run -f TORRC``, fetches a file with ``curl --socks5-hostname`` through
gotor's SOCKS port (and through the C tor client's, for comparison), and stops
gotor with SIGINT: exit status 0, no traceback.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from interop_helpers import gotor_command

from gotor.tools import testnet

BOOTSTRAP_TIMEOUT = 90.0
FILE = "4MB"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _curl(proxy_port: int, url: str, out: Path) -> str:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is missing (apt-get install curl; .ci/run installs it)", pytrace=False)
    done = subprocess.run([curl, "--silent", "--show-error", "--fail", "--max-time", "60",
                           "--socks5-hostname", f"127.0.0.1:{proxy_port}", "-o", str(out), url],
                          check=False, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"curl failed ({done.returncode}): {done.stderr}"
    return hashlib.sha256(out.read_bytes()).hexdigest()


def _lines(proc: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put(line)


def test_the_readme_flow(network: testnet.Network, tmp_path: Path) -> None:
    status = subprocess.run([*gotor_command(), "testnet", "status", str(network.root)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(" running ") == len(network.nodes), status.stdout

    socks_port = _free_port()
    torrc = tmp_path / "torrc"
    torrc.write_text("TestingTorNetwork 1\n"
                     f"DataDirectory {tmp_path / 'gotor-data'}\n"
                     f"SocksPort 127.0.0.1:{socks_port}\n"
                     + (network.root / "dir-authorities").read_text())
    proc = subprocess.Popen([*gotor_command(), "run", "-f", str(torrc)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc, output), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + BOOTSTRAP_TIMEOUT
        while not any("Bootstrapped 100% (done): Done" in line for line in seen):
            assert proc.poll() is None, "gotor run exited:\n" + "".join(seen)
            assert time.monotonic() < deadline, "no Bootstrapped 100%:\n" + "".join(seen)
            try:
                seen.append(output.get(timeout=0.5))
            except queue.Empty:
                pass
        url = network.web_url(FILE)  # by name: the exit resolves it
        expected = network.file(FILE).sha256
        assert _curl(socks_port, url, tmp_path / "via-gotor") == expected
        assert network.client is not None
        assert _curl(network.client.ports["socks"], url, tmp_path / "via-c-tor") == expected
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    time.sleep(0.2)  # the reader thread drains what is left
    while not output.empty():
        seen.append(output.get())
    text = "".join(seen)
    assert code == 0, text
    assert "exiting cleanly" in text and "Traceback" not in text, text
    assert "[err]" not in text, text
