"""gotor next to C tor's client, on one private network of real C tor relays (issue 5).

    python benchmarks/bench_interop.py [--runs 3] [--circuits 20] [--file 50MB]

Brings up a network with ``gotor testnet`` in a temporary directory (3
authorities, 3 middles, 2 exits, a C tor client), adds a second C tor client
with ``ConfluxEnabled 0``, and measures, side by side:

* **bulk download**: ``curl --socks5-hostname`` of the ``--file`` test file
  through gotor's SOCKS port (``gotor run -f TORRC``, the production command),
  through the C tor client (conflux on, its default: two circuits per stream)
  and through the C tor client with conflux off (one circuit: the fair
  comparison); each download is checked (SHA-256) and the runs are interleaved;
  median MB/s (MiB/s) of ``--runs``;
* **circuit build time**: 3-hop exit circuits, after a few unmeasured builds
  (channels to the guards open).  gotor: ``build_circuit`` on paths from
  ``choose_exit_path`` with a guard manager, on the production AsyncioRuntime
  in this process.  C tor: ``EXTENDCIRCUIT 0`` on its control port (C tor picks
  the path), timed from the command to the ``BUILT`` event (stem's
  ``new_circuit(await_build=True)``): a controller round trip more than
  gotor's figure, well under a millisecond on loopback;
* **bootstrap wall time**: from starting the process (fresh data directory)
  to its "Bootstrapped 100%" line in its notice log, polled every 20 ms, for
  ``gotor run`` and for a new ``tor`` client process.

Prints figures and ratios; asserts nothing.  Everything started is stopped
by PID at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stem.control import Controller  # type: ignore[import-untyped]

from gotor.circuit import build_circuit
from gotor.client import TorClient
from gotor.config import ClientConfig
from gotor.dir.config import DirConfig
from gotor.guard import GuardManager
from gotor.link import ChannelPool
from gotor.path import choose_exit_path
from gotor.runtime.aio import AsyncioRuntime
from gotor.tools import testnet
from gotor.tools.testnet import procs

POLL = 0.02
BOOT_TIMEOUT = 120.0
WARMUP_BUILDS = 5


def _gotor() -> list[str]:
    script = Path(sys.executable).parent / "gotor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gotor.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_line(log: Path, needle: str, started: float, proc: subprocess.Popen[bytes] | None,
               timeout: float = BOOT_TIMEOUT) -> float:
    """Seconds from ``started`` until ``needle`` shows up in ``log``."""
    while time.monotonic() - started < timeout:
        if log.exists() and needle in log.read_text(errors="replace"):
            return time.monotonic() - started
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        time.sleep(POLL)
    raise RuntimeError(f"no {needle!r} in {log} within {timeout:.0f} s")


def _gotor_torrc(net: testnet.Network, where: Path, socks_port: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    torrc = where / "torrc"
    torrc.write_text("TestingTorNetwork 1\n"
                     f"DataDirectory {where / 'data'}\n"
                     f"SocksPort 127.0.0.1:{socks_port}\n"
                     f"Log notice file {where / 'notice.log'}\n"
                     + "\n".join(net.dir_authority_lines()) + "\n")
    return torrc


class GotorRun:
    """``gotor run -f TORRC`` as a process of its own."""

    def __init__(self, net: testnet.Network, where: Path) -> None:
        self.socks_port = _free_port()
        self.where = where
        torrc = _gotor_torrc(net, where, self.socks_port)
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*_gotor(), "run", "-f", str(torrc)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def bootstrapped(self) -> float:
        return _wait_line(self.where / "notice.log", "Bootstrapped 100%", self.started, self.proc)

    def stop(self) -> None:
        procs.stop([(self.proc.pid, "gotor")])
        self.proc.wait()


# --- measurements ---------------------------------------------------------------------


def bootstrap_times(net: testnet.Network, work: Path, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"gotor": [], "C tor": []}
    for k in range(runs):
        g = GotorRun(net, work / f"boot-gotor-{k}")
        try:
            out["gotor"].append(g.bootstrapped())
        finally:
            g.stop()
        node = testnet.add_client(net, f"bootctor{k}")
        started = time.monotonic()
        testnet.start_node(net, node.name)
        try:
            out["C tor"].append(_wait_line(net.log(node), "Bootstrapped 100%", started, None))
        finally:
            testnet.stop_node(net, node.name)
    return out


def _curl(port: int, url: str, dest: Path, sha256: str) -> float:
    done = subprocess.run(["curl", "--silent", "--show-error", "--fail", "--max-time", "300",
                           "--socks5-hostname", f"127.0.0.1:{port}", "-o", str(dest),
                           "-w", "%{speed_download}", url],
                          check=True, capture_output=True, text=True)
    if hashlib.sha256(dest.read_bytes()).hexdigest() != sha256:
        raise RuntimeError(f"download through port {port} differs from the file")
    dest.unlink()
    return float(done.stdout) / (1 << 20)


def throughputs(net: testnet.Network, ports: dict[str, int], name: str, work: Path,
                runs: int) -> dict[str, list[float]]:
    url, sha = net.web_url(name), net.file(name).sha256
    out: dict[str, list[float]] = {label: [] for label in ports}
    for _ in range(runs):
        for label, port in ports.items():  # interleaved: drift hits every client alike
            out[label].append(_curl(port, url, work / "download", sha))
    return out


async def _gotor_builds(net: testnet.Network, work: Path, n: int) -> list[float]:
    rt = AsyncioRuntime()
    lines = net.dir_authority_lines()
    config = ClientConfig(work / "circ-gotor", DirConfig.from_dir_authorities(lines),
                          testing_network=True)
    async with TorClient(rt, config) as client:
        netdir = client.netdir
        assert netdir is not None
        pool = ChannelPool(rt)
        guards = GuardManager(random.Random(1))
        rng = random.Random(2)
        times = []
        try:
            for k in range(WARMUP_BUILDS + n):
                path = choose_exit_path(netdir, rng, port=80, guards=guards, now=rt.wallclock())
                started = time.perf_counter()
                circ = await build_circuit(rt, pool, [r.hop_spec() for r in path.hops],
                                           netdir.circ_params())
                elapsed = time.perf_counter() - started
                if path.guard_token is not None:
                    guards.report(path.guard_token, True, rt.wallclock())
                circ.close("measured")
                if k >= WARMUP_BUILDS:
                    times.append(elapsed)
        finally:
            await pool.aclose("done")
    return times


def _ctor_builds(control_port: int, n: int) -> list[float]:
    times = []
    with Controller.from_port(address="127.0.0.1", port=control_port) as controller:
        controller.authenticate()
        for k in range(WARMUP_BUILDS + n):
            started = time.perf_counter()
            circ_id = controller.new_circuit(await_build=True, timeout=60)
            elapsed = time.perf_counter() - started
            controller.close_circuit(circ_id)
            if k >= WARMUP_BUILDS:
                times.append(elapsed)
    return times


# --- report -----------------------------------------------------------------------------


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _two_places(value: float) -> str:
    return f"{value:.2f}"


def _row(label: str, values: list[float], fmt: Callable[[float], str]) -> str:
    return (f"  {label:26} median {fmt(statistics.median(values)):>10}   "
            f"runs {' '.join(fmt(v) for v in values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="downloads and bootstraps per client")
    parser.add_argument("--circuits", type=int, default=20, help="measured builds per client")
    parser.add_argument("--file", default="50MB", help="the test file to download")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gotor-bench-interop-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        net = testnet.create(work / "net")
        gotor_run: GotorRun | None = None
        try:
            testnet.start(net)
            print(f"network up in {time.monotonic() - t0:.1f} s: {len(net.relays)} relays, "
                  f"tor {net.tor_version}")
            noconflux = testnet.add_client(net, "noconflux", ["ConfluxEnabled 0"])
            testnet.start_node(net, noconflux.name)
            testnet.wait_for_bootstrap(net, noconflux)
            gotor_run = GotorRun(net, work / "gotor-bulk")
            gotor_run.bootstrapped()
            assert net.client is not None

            ports = {"gotor": gotor_run.socks_port,
                     "C tor (conflux, default)": net.client.ports["socks"],
                     "C tor (ConfluxEnabled 0)": noconflux.ports["socks"]}
            bulk = throughputs(net, ports, args.file, work, args.runs)
            gotor_circ = asyncio.run(_gotor_builds(net, work, args.circuits))
            ctor_circ = _ctor_builds(noconflux.ports["control"], args.circuits)
            boot = bootstrap_times(net, work, args.runs)
        finally:
            if gotor_run is not None:
                gotor_run.stop()
            testnet.stop(net)

    print(f"\nbulk download of {args.file} (MiB/s, curl --socks5-hostname, median of {args.runs})")
    for label, values in bulk.items():
        print(_row(label, values, _two_places))
    g = statistics.median(bulk["gotor"])
    for label in list(bulk)[1:]:
        print(f"  ratio gotor / {label}: {g / statistics.median(bulk[label]):.2f}")
    print(f"\ncircuit build time (ms, 3 hops, {args.circuits} builds after {WARMUP_BUILDS} "
          "unmeasured)")
    for label, values in (("gotor", gotor_circ), ("C tor (EXTENDCIRCUIT 0)", ctor_circ)):
        print(f"  {label:26} median {statistics.median(values) * 1000:8.1f}   "
              f"p90 {_p90(values) * 1000:8.1f}")
    ratio = statistics.median(gotor_circ) / statistics.median(ctor_circ)
    print(f"  ratio gotor / C tor: median {ratio:.2f}, p90 {_p90(gotor_circ) / _p90(ctor_circ):.2f}")
    print(f"\nbootstrap wall time (s, process start to 'Bootstrapped 100%', fresh data dir, "
          f"median of {args.runs})")
    for label, values in boot.items():
        print(_row(label, values, _two_places))
    print(f"  ratio gotor / C tor: "
          f"{statistics.median(boot['gotor']) / statistics.median(boot['C tor']):.2f}")


if __name__ == "__main__":
    main()
