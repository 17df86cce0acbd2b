"""Throughput of tor1 relay-cell crypto (gotor.crypto.relaycrypto) on one core.

Prints cells/s and relay-payload MB/s (498 data bytes per cell) for a 3-hop circuit:
client outbound (seal for hop 3 + 3 AES layers), client inbound (peel up to 3 layers,
recognized at hop 3), and a middle relay's per-cell work in each direction.
The goal stated for gotor is >= 40 MB/s (~80k cells/s) through 3 layers.

    python benchmarks/bench_relay_crypto.py [--cells N] [--repeat R]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from gotor.crypto.relaycrypto import PAYLOAD_LEN, ClientCircuitCrypto, RelayHopCrypto

DATA_PER_CELL = 498


def _circuit() -> tuple[ClientCircuitCrypto, list[RelayHopCrypto]]:
    materials = [hashlib.shake_256(b"bench hop %d" % i).digest(72) for i in range(3)]
    client = ClientCircuitCrypto()
    for km in materials:
        client.add_hop(km)
    return client, [RelayHopCrypto(km) for km in materials]


def _payload() -> bytes:
    body = bytearray(hashlib.shake_256(b"bench payload").digest(PAYLOAD_LEN))
    body[0] = 2  # RELAY_DATA
    body[9:11] = DATA_PER_CELL.to_bytes(2, "big")
    return bytes(body)


def _best(run: Callable[[], None], cells: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return cells / best


def _report(name: str, cells_per_s: float) -> None:
    mb_s = cells_per_s * DATA_PER_CELL / 1e6
    print(f"{name:<44} {cells_per_s:>12,.0f} cells/s {mb_s:>8.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat, payload = args.cells, args.repeat, _payload()

    client, relays = _circuit()

    def outbound() -> None:
        encrypt = client.encrypt_outbound
        for _ in range(n):
            encrypt(payload, 2)

    _report("client outbound, 3 layers", _best(outbound, n, repeat))

    # Inbound cells must be fresh for each run (the keystreams advance), so build
    # repeat * n cells from the relays first, then time only the client.
    batches = []
    for _ in range(repeat):
        batch = []
        for _ in range(n):
            cell = relays[2].encrypt_backward_originate(payload)
            batch.append(relays[0].encrypt_backward_relay(relays[1].encrypt_backward_relay(cell)))
        batches.append(iter(batch))

    def inbound() -> None:
        decrypt = client.decrypt_inbound
        for cell in next(batches_iter):
            decrypt(cell)

    batches_iter = iter(batches)
    _report("client inbound, 3 layers (recognized at 3)", _best(inbound, n, repeat))

    middle = RelayHopCrypto(hashlib.shake_256(b"middle").digest(72))
    garbage = hashlib.shake_256(b"not for us").digest(PAYLOAD_LEN)

    def relay_forward() -> None:
        for _ in range(n):
            middle.decrypt_forward(garbage)

    def relay_backward() -> None:
        for _ in range(n):
            middle.encrypt_backward_relay(garbage)

    _report("middle relay, forward (not for us)", _best(relay_forward, n, repeat))
    _report("middle relay, backward (relayed)", _best(relay_backward, n, repeat))


if __name__ == "__main__":
    main()
