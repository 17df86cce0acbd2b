"""Server descriptors and v3 onion-service descriptors: parse, verify, decrypt, build.
Prints figures; asserts nothing.

    python benchmarks/bench_descriptors.py [--relays 1000] [--repeat 5]

* server descriptors: a cache file of ``--relays`` descriptors built by
  gotor.netdoc.build_routerdesc (RSA-1024 keys, as relays have), parsed, then
  verified (two RSA and three Ed25519 checks each: router-signature,
  onion-key-crosscert, identity cert, router-sig-ed25519, ntor crosscert);
* onion-service descriptors: the client path (derive the blinded key, verify,
  decrypt both layers, verify the intro-point certificates) on arti's C-tor
  sample and on built descriptors with 3 and 20 introduction points, with and
  without client authorization; and the service side (building one).

Each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import ipaddress
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gotor.cells.linkspec import LinkSpecEd25519Id, LinkSpecIPv4, LinkSpecRsaId
from gotor.crypto.hs_index import time_period_number
from gotor.crypto.onion_address import encode_onion_address
from gotor.crypto.primitives import ed25519_public, x25519_public
from gotor.netdoc.build_hsdesc import build_hsdesc
from gotor.netdoc.build_routerdesc import RelayKeys, build_router_descriptor
from gotor.netdoc.exitpolicy import ExitPolicy
from gotor.netdoc.hsdesc import HsDescKeys, parse_hsdesc
from gotor.netdoc.hsdesc_inner import InnerLayer, IntroPoint
from gotor.netdoc.protover import Protocols
from gotor.netdoc.routerdesc import RouterBandwidth, RouterInfo, parse_router_descriptors

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"
T0 = 1_700_000_000


def stream(seed: bytes) -> Callable[[int], bytes]:
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(n)

    return random_bytes


def median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def relay_cache(n: int) -> bytes:
    keys = RelayKeys.generate(
        stream(b"bench-relay"), tap=True
    )  # one key set: signing cost is equal
    out = []
    for i in range(n):
        info = RouterInfo(
            nickname=f"relay{i}",
            address=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            or_port=9001,
            published=T0,
            bandwidth=RouterBandwidth(10_000_000, 20_000_000, 5_000_000),
            platform="Tor 0.4.8.10 on Linux",
            protocols=Protocols.parse("Cons=1-2 Desc=1-2 Link=1-5 Microdesc=1-2 Relay=1-4"),
            exit_policy=ExitPolicy.parse(["reject 10.0.0.0/8:*", "accept *:80", "reject *:*"]),
        )
        out.append(build_router_descriptor(info, keys, certs_expire=T0 + 30 * 86400))
    return b"".join(out)


def bench_server_descriptors(n: int, repeat: int) -> None:
    t = time.perf_counter()
    data = relay_cache(n)
    build = (time.perf_counter() - t) / n
    parse = median(lambda: parse_router_descriptors(data), repeat)
    unverified = parse_router_descriptors(data)
    verify = median(lambda: [u.verify(now=T0) for u in unverified], repeat)
    print(f"server descriptors ({n}, {len(data) / 1e6:.1f} MB):")
    print(f"  build          {build * 1e3:8.3f} ms each")
    print(f"  parse          {parse * 1e3:8.1f} ms   ({parse / n * 1e6:.0f} us each)")
    print(f"  verify         {verify * 1e3:8.1f} ms   ({verify / n * 1e6:.0f} us each)")


def intro_point(i: int) -> IntroPoint:
    r = stream(b"intro%d" % i)
    return IntroPoint(
        (
            LinkSpecIPv4(ipaddress.IPv4Address(f"10.0.0.{i + 1}"), 9001),
            LinkSpecRsaId(r(20)),
            LinkSpecEd25519Id(r(32)),
        ),
        x25519_public(r(32)),
        ed25519_public(r(32)),
        x25519_public(r(32)),
    )


def client_path(data: bytes, keys: HsDescKeys, secret: bytes | None) -> object:
    return parse_hsdesc(data).verify(keys, now=T0, client_secret=secret)


def bench_hsdesc(repeat: int) -> None:
    params = json.loads((VECTORS / "vectors" / "hsdesc_params.json").read_text())["descriptors"][0]
    keys = HsDescKeys(
        bytes.fromhex(params["inputs"]["blinded_public_key"]),
        bytes.fromhex(params["inputs"]["subcredential"]),
    )
    arti = (VECTORS / params["file"]).read_bytes()
    print("onion-service descriptors (client: parse + verify + decrypt):")
    t = median(lambda: parse_hsdesc(arti).verify(keys, now=None), repeat)
    print(f"  arti sample (3 intro points)      {t * 1e3:7.2f} ms")
    identity, signing = hashlib.sha256(b"id").digest(), hashlib.sha256(b"sign").digest()
    address = encode_onion_address(ed25519_public(identity))
    t = median(lambda: HsDescKeys.for_address(address, now=T0), repeat)
    print(f"  derive blinded key + subcred      {t * 1e3:7.2f} ms")
    service_keys = HsDescKeys.for_address(address, now=T0)
    client = hashlib.sha256(b"client").digest()
    for n_points, clients in ((3, ()), (20, ()), (3, (x25519_public(client),))):
        inner = InnerLayer(intro_points=tuple(intro_point(i) for i in range(n_points)))

        def build(inner: InnerLayer = inner, clients: tuple[bytes, ...] = clients) -> bytes:
            return build_hsdesc(
                inner,
                identity_seed=identity,
                signing_seed=signing,
                period_num=time_period_number(T0),
                revision_counter=1,
                certs_expire=T0 + 86400,
                random_bytes=stream(b"desc"),
                client_public_keys=clients,
            )

        data = build()
        secret = client if clients else None
        t = median(functools.partial(client_path, data, service_keys, secret), repeat)
        b = median(build, repeat)
        label = f"{n_points} intro points{', client auth' if clients else ''}"
        print(f"  built, {label:28}{t * 1e3:7.2f} ms   (building it: {b * 1e3:.2f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relays", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    bench_server_descriptors(args.relays, args.repeat)
    bench_hsdesc(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
