"""Throughput of the cell layer's hot paths (gotor.cells): prints figures, asserts nothing.

    python benchmarks/bench_cells.py [--seconds S]

Measures, single-threaded: framing fixed-length RELAY cells out of a byte
buffer (ChannelCodec.decode) and back (encode), splitting a decrypted relay
payload (decode_relay_payload), building one (encode_relay_payload), and
decoding a DATA message, plus the whole receive path for a DATA cell.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gotor.cells.chan import ChanCell, ChanCmd
from gotor.cells.codec import ChannelCodec
from gotor.cells.relay import RELAY_DATA_MAX, RelayCmd, decode_relay_payload, encode_relay_payload
from gotor.cells.relaymsg import decode_relay_msg

BATCH = 1000


def rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls of ``fn`` per second (each call handles BATCH items) -> items per second."""
    fn()  # warm up
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return calls * BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()

    codec = ChannelCodec(5)
    payload = encode_relay_payload(RelayCmd.DATA, 7, b"x" * RELAY_DATA_MAX)
    cell = ChanCell(0x80000001, ChanCmd.RELAY, payload)
    wire = codec.encode(cell) * BATCH

    def frame_decode() -> None:
        buf = bytearray(wire)
        while codec.decode(buf) is not None:
            pass

    def frame_encode() -> None:
        for _ in range(BATCH):
            codec.encode(cell)

    def payload_decode() -> None:
        for _ in range(BATCH):
            decode_relay_payload(payload)

    def payload_encode() -> None:
        for _ in range(BATCH):
            encode_relay_payload(RelayCmd.DATA, 7, b"y" * 400, b"\x5a" * 100)

    data = b"x" * RELAY_DATA_MAX

    def msg_decode() -> None:
        for _ in range(BATCH):
            decode_relay_msg(RelayCmd.DATA, data)

    def receive_path() -> None:
        buf = bytearray(wire)
        while (c := codec.decode(buf)) is not None:
            rc = decode_relay_payload(c.body)  # (relay decryption would sit here)
            decode_relay_msg(rc.cmd, rc.data)

    print(f"{'measurement':44} {'items/s':>12} {'MB/s':>8}  (MB/s counts 514-byte wire cells)")
    for name, fn in [
        ("ChannelCodec.decode (RELAY, link 5)", frame_decode),
        ("ChannelCodec.encode (RELAY, link 5)", frame_encode),
        ("decode_relay_payload", payload_decode),
        ("encode_relay_payload (400 B data)", payload_encode),
        ("decode_relay_msg (DATA 498 B)", msg_decode),
        ("receive path: frame+header+DATA msg", receive_path),
    ]:
        r = rate(fn, args.seconds)
        print(f"{name:44} {r:12,.0f} {r * 514 / 1e6:8.1f}")


if __name__ == "__main__":
    main()
