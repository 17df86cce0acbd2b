"""Circuit handshakes per second on one core: ntor and ntor-v3, client and server side.

    python benchmarks/bench_handshakes.py [--count N]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from gotor.crypto import fast, ntor, ntor_v3
from gotor.crypto.primitives import x25519_public


def _secret(label: bytes, i: int) -> bytes:
    return hashlib.sha256(label + i.to_bytes(4, "big")).digest()


def _rate(run: Callable[[int], None], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        run(i)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    n = args.count

    b = _secret(b"onion key", 0)
    big_b = x25519_public(b)
    rsa_id, ed_id = bytes(range(20)), bytes(range(32))

    # Precompute one side's messages so that each figure times one side only.
    ntor_client = [ntor.client_handshake(rsa_id, big_b, _secret(b"x", i)) for i in range(n)]
    ntor_replies = [ntor.server_handshake(rsa_id, b, skin, _secret(b"y", i), 72)[0]
                    for i, (_, skin) in enumerate(ntor_client)]
    v3_client = [ntor_v3.client_handshake(ed_id, big_b, _secret(b"x", i), b"\x02\x01\x1f")
                 for i in range(n)]
    v3_replies = []
    for i, (_, skin) in enumerate(v3_client):
        state, _ = ntor_v3.server_receive(ed_id, b, skin)
        v3_replies.append(ntor_v3.server_reply(state, _secret(b"y", i), b"", 72)[0])

    def ntor_c(i: int) -> None:
        state, _ = ntor.client_handshake(rsa_id, big_b, _secret(b"x", i))
        ntor.client_complete(state, ntor_replies[i], 72)

    def ntor_s(i: int) -> None:
        ntor.server_handshake(rsa_id, b, ntor_client[i][1], _secret(b"y", i), 72)

    def v3_c(i: int) -> None:
        state, _ = ntor_v3.client_handshake(ed_id, big_b, _secret(b"x", i), b"\x02\x01\x1f")
        ntor_v3.client_complete(state, v3_replies[i], 72)

    def v3_s(i: int) -> None:
        state, _ = ntor_v3.server_receive(ed_id, b, v3_client[i][1])
        ntor_v3.server_reply(state, _secret(b"y", i), b"", 72)

    def fast_both(i: int) -> None:
        state, x = fast.client_handshake(_secret(b"x", i)[:20])
        reply, _ = fast.server_handshake(x, _secret(b"y", i)[:20], 72)
        fast.client_complete(state, reply, 72)

    for name, run in [("ntor client (onionskin + complete)", ntor_c),
                      ("ntor server", ntor_s),
                      ("ntor-v3 client (onionskin + complete)", v3_c),
                      ("ntor-v3 server (receive + reply)", v3_s),
                      ("CREATE_FAST client + server", fast_both)]:
        print(f"{name:<40} {_rate(run, n):>10,.0f} handshakes/s")


if __name__ == "__main__":
    main()
