"""Client-side directory work at real-network size: NetDir, paths, guards, HTTP, SOCKS.

    python benchmarks/bench_dirclient.py [--relays 7000] [--repeat 5]

Prints figures; asserts nothing.  The network is synthetic (tests/unit/
netdir_helpers.py): ``--relays`` relays, a third of them guards, a quarter
exits, some families, with realistic bandwidth weights.  Timed:

* building a NetDir (join consensus + microdescriptors into Relay records)
  and the "enough directory info" fraction (path-spec §2.1.0);
* choosing 3-hop exit paths (weighted choice per position, family and /16
  exclusion), without and with the guard manager;
* the guard manager's first update (sampling) on that directory;
* parsing a 3 MB HTTP response fed in 4 KB pieces (plain and deflated);
* SOCKS5 handshakes through the sans-IO machine.

Each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from netdir_helpers import BASIC, EXIT, GUARD, GUARD_EXIT, Spec, entry, make_consensus, rsa_id

from gotor.dir.http import ResponseParser
from gotor.guard import GuardManager
from gotor.netdir import NetDir
from gotor.path import choose_exit_path
from gotor.socks.machine import SocksServerMachine


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def network(n: int) -> tuple[object, list[object]]:
    specs = []
    for i in range(n):
        kind = (GUARD, BASIC, EXIT, GUARD_EXIT, BASIC, GUARD)[i % 6]
        family = (f"${rsa_id(i - 1).hex()}",) if i % 10 == 1 else ()
        if i % 10 == 0 and i + 1 < n:
            family = (f"${rsa_id(i + 1).hex()}",)
        specs.append(Spec(kind, bw=50 + (i * 7919) % 20000, family=family,
                          policy="accept 80,443" if "Exit" in kind else None,
                          address=f"{10 + i // 65536}.{(i // 256) % 256}.{i % 256}.1"))
    entries = [entry(i, s) for i, s in enumerate(specs)]
    return make_consensus([rs for rs, _ in entries]), [md for _, md in entries]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--relays", type=int, default=7000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, repeat = args.relays, args.repeat
    print(f"building a synthetic network of {n} relays ...", flush=True)
    consensus, mds = network(n)

    t = median_time(lambda: NetDir(consensus, mds), repeat)  # type: ignore[arg-type]
    print(f"NetDir from consensus + {n} microdescriptors: {t * 1000:8.1f} ms")
    nd = NetDir(consensus, mds)  # type: ignore[arg-type]
    t = median_time(nd.frac_paths, repeat)
    print(f"enough-directory-info fraction ({nd.frac_paths():.2f}):    {t * 1000:8.1f} ms")

    rng = random.Random(1)
    k = 200
    t = median_time(lambda: [choose_exit_path(nd, rng, port=443) for _ in range(k)], repeat)
    print(f"exit paths (no guard manager):               {t / k * 1000:8.2f} ms each")

    now = nd.lifetime.valid_after
    t = median_time(lambda: GuardManager(random.Random(2)).update(nd, now), repeat)
    print(f"guard manager first update (sample 20):      {t * 1000:8.1f} ms")
    gm = GuardManager(random.Random(2))
    gm.update(nd, now)

    def guarded() -> None:
        for _ in range(k):
            path = choose_exit_path(nd, rng, port=443, guards=gm, now=now)
            assert path.guard_token is not None
            gm.release(path.guard_token)

    t = median_time(guarded, repeat)
    print(f"exit paths (with guard manager):             {t / k * 1000:8.2f} ms each")

    body = b"r relay 0 1 2 3 4\nm digest\ns Fast Running Valid\n" * 60000
    plain = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    deflated = b"HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + zlib.compress(body)
    for name, data in (("plain", plain), ("deflate", deflated)):
        def parse(data: bytes = data) -> None:
            p = ResponseParser(max_body=1 << 24)
            for i in range(0, len(data), 4096):
                if p.feed(data[i : i + 4096]) is not None:
                    return
            p.feed_eof()

        t = median_time(parse, repeat)
        print(f"HTTP response, {len(body) / 1e6:.1f} MB {name:7s} in 4 KB pieces: "
              f"{t * 1000:8.1f} ms ({len(body) / t / 1e6:.0f} MB/s)")

    hello = b"\x05\x02\x00\x02\x01\x04user\x04pass\x05\x01\x00\x03\x0bexample.com\x01\xbb"

    def socks() -> None:
        for _ in range(10000):
            m = SocksServerMachine()
            m.receive(hello)
            m.data_to_send()
            m.reply_connected()

    t = median_time(socks, repeat)
    print(f"SOCKS5 handshakes (user/pass + CONNECT):     {t / 10000 * 1e6:8.2f} us each")


if __name__ == "__main__":
    main()
