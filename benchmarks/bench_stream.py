"""Bulk throughput of one stream through a 3-hop circuit under simnet, full cryptography.

The client stack (gotor.link / circuit / stream) talks to three scripted relays
(tests/sim/stack_relay.py, built on gotor's pure layer: real TLS over simulated TCP,
ntor / ntor-v3, tor1 relay crypto at every hop, SENDME windows) and a web server.  One
stream downloads ``--mb`` megabytes and uploads as many; the figures are wall-clock
MB/s of application bytes, best of ``--repeat`` runs (the whole simulation shares one core: client, three relays,
TLS on every link).  Then a cProfile run prints the top functions by own time and their
cost per relayed cell (DATA cells that crossed the circuit, both directions).

    python benchmarks/bench_stream.py [--mb N] [--no-tls] [--top K] [--repeat R]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "sim"), str(ROOT / "tests" / "unit"), str(ROOT)]

from stack_world import ECHO, SOURCE, StackWorld, content, stack_world

from gotor.circuit import CircParams, build_circuit
from gotor.link.pool import ChannelPool
from gotor.stream import Stream

MB = 1 << 20
PARAMS = CircParams(sendme_emit_min_version=1, sendme_accept_min_version=1)


async def _read_n(stream: Stream, n: int) -> int:
    got = 0
    while got < n:
        data = await stream.read()
        if not data:
            break
        got += len(data)
    return got


def _transfer(w: StackWorld, size: int, upload: bool) -> tuple[int, float]:
    """Bytes received and the virtual time the transfer took."""
    async def main() -> tuple[int, float]:
        pool = ChannelPool(w.rt)
        path = [r.hop(ntor_v3=i == 1) for i, r in enumerate(w.relays)]
        circ = await build_circuit(w.rt, pool, path, PARAMS)
        if upload:
            stream = await circ.open_stream("web.example", ECHO)
            reader = w.rt.spawn(_read_n(stream, size), name="reader")
            payload = content(size)
            for i in range(0, size, 256 * 1024):
                stream.write(payload[i : i + 256 * 1024])
                await stream.drain()
            got = await reader
        else:
            stream = await circ.open_stream("web.example", SOURCE)
            stream.write(b"%d\n" % size)
            got = await _read_n(stream, size)
        circ.close()
        return got, w.rt.now()

    got, virtual = w.run(main(), until=10**6)
    return int(got), float(virtual)


def _cells(w: StackWorld) -> int:
    exit_ = w.relays[2]
    return exit_.stats["data_in"] + exit_.stats["data_out"]


def run_once(size: int, upload: bool, tls: bool) -> tuple[float, int, float]:
    """(wall seconds, DATA cells relayed, virtual seconds) for one transfer."""
    w = stack_world(1, tls=tls, bandwidth=1e9, latency=0.005)
    start = time.perf_counter()
    got, virtual = _transfer(w, size, upload)
    wall = time.perf_counter() - start
    if got != size:
        raise SystemExit(f"transfer incomplete: {got} of {size} bytes")
    return wall, _cells(w), virtual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=4)
    parser.add_argument("--no-tls", action="store_true", help="simnet's tls=False switch")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    size, tls = args.mb * MB, not args.no_tls
    run_once(MB // 4, False, tls)  # warm the key caches
    print(f"one stream, 3 hops, {'TLS' if tls else 'no TLS'}, {args.mb} MB each way")
    for name, upload in (("download", False), ("echo (upload+download)", True)):
        wall, cells, virtual = min(run_once(size, upload, tls) for _ in range(args.repeat))
        moved = size * (2 if upload else 1)
        print(f"  {name:<24} {moved / MB / wall:7.2f} MB/s wall  "
              f"{cells / wall:9,.0f} cells/s  {wall * 1e6 / cells:6.1f} us/cell  "
              f"(virtual {virtual:.2f} s)")
    profiler = cProfile.Profile()
    w = stack_world(1, tls=tls, bandwidth=1e9, latency=0.005)
    profiler.enable()
    _transfer(w, size, False)
    profiler.disable()
    cells = _cells(w)
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    gotor = [r for r in rows if f"{Path('gotor')}" in r[0][0].replace(str(ROOT), "")]
    for title, chosen in (("everything (client, 3 relays, TLS, simnet)", rows),
                          ("gotor's own modules (client stack and pure layer)", gotor)):
        print(f"\ntop {args.top} by own time, {title}; per relayed DATA cell ({cells} cells):")
        for (path, line, func), (_cc, calls, tottime, cumtime, _callers) in chosen[: args.top]:
            where = f"{Path(path).name}:{line}({func})"
            print(f"  {tottime * 1e6 / cells:7.2f} us/cell  {calls / cells:6.2f} calls/cell  "
                  f"cum {cumtime * 1e6 / cells:7.2f} us  {where}")


if __name__ == "__main__":
    main()
