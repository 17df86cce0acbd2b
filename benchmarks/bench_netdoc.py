"""Directory-document speed: tokenize/parse/verify a 7,000-router consensus, parse
7,000 microdescriptors, join them.  Prints figures; asserts nothing.

    python benchmarks/bench_netdoc.py [--routers 7000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

import netdoc_helpers as h

from gotor.netdoc.authcert import parse_authcert
from gotor.netdoc.build_dir import build_consensus, encode_microdesc
from gotor.netdoc.consensus import Flavor, parse_consensus
from gotor.netdoc.microdesc import join_microdescs, parse_microdescs
from gotor.netdoc.tokenize import tokenize


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routers", type=int, default=7000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, rep = args.routers, args.repeat

    auths = h.authorities(9)
    certs = [parse_authcert(a.cert()).verify(now=None) for a in auths]
    fps = [c.fingerprint for c in certs]
    mds = h.microdescs(n)
    md_blob = b"".join(encode_microdesc(m) for m in mds)
    docs = {
        Flavor.MICRODESC: build_consensus(
            h.consensus(Flavor.MICRODESC, n, auths, mds), [a.signer for a in auths]
        ),
        Flavor.NS: build_consensus(h.consensus(Flavor.NS, n, auths), [a.signer for a in auths]),
    }
    print(f"{n} routers, 9 authorities (1024-bit keys), best of {rep}")
    for flavor, data in docs.items():
        print(f"  {flavor.value:9} consensus: {len(data) / 1e6:.2f} MB")
        print(f"    tokenize          {best(lambda d=data: tokenize(d), rep) * 1e3:8.1f} ms")
        t_parse = best(lambda d=data: parse_consensus(d), rep)
        print(f"    tokenize+parse    {t_parse * 1e3:8.1f} ms")
        t_verify = best(lambda d=data: parse_consensus(d).verify(certs, fps, now=h.T0), rep)
        print(f"    parse+verify      {t_verify * 1e3:8.1f} ms")
    print(f"  {n} microdescriptors: {len(md_blob) / 1e6:.2f} MB")
    print(f"    parse             {best(lambda: parse_microdescs(md_blob), rep) * 1e3:8.1f} ms")
    c = parse_consensus(docs[Flavor.MICRODESC]).verify(certs, fps, now=h.T0)
    parsed = parse_microdescs(md_blob)
    print(f"    join              {best(lambda: join_microdescs(c, parsed), rep) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
