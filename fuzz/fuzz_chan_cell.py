"""Fuzz channel framing and channel-message decoding (gotor.cells.codec, gotor.cells.chanmsg).

Input: the first byte picks the codec's link version (none yet, 3, 4 or 5),
the rest is a byte stream from the peer.  Every framed cell must re-encode to
exactly the bytes it was cut from, and every decoded message must re-encode to
a body that decodes to the same message.  Only ProtocolError may escape.
"""

from __future__ import annotations

import json
from pathlib import Path

from gotor.cells.chan import CELL_BODY_LEN, circ_id_len, is_variable_length
from gotor.cells.chanmsg import decode_chan_msg
from gotor.cells.codec import ChannelCodec
from gotor.errors import ProtocolError

LINK_VERSIONS = (None, 3, 4, 5)
VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "vectors"


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    codec = ChannelCodec(LINK_VERSIONS[data[0] % len(LINK_VERSIONS)])
    buf = bytearray(data[1:])
    while True:
        before = bytes(buf)
        cell = codec.decode(buf)
        if cell is None:
            return
        consumed = before[: len(before) - len(buf)]
        if codec.encode(cell) != consumed:
            raise AssertionError(f"cell {cell!r} does not re-encode to its bytes")
        try:
            msg = decode_chan_msg(cell.cmd, cell.body)
        except ProtocolError:
            continue
        if decode_chan_msg(cell.cmd, msg.encode()) != msg:
            raise AssertionError(f"{msg!r} does not round-trip")


def _frame(link: int | None, cmd: int, body: bytes) -> bytes:
    head = (1 if link else 0).to_bytes(circ_id_len(link), "big") + bytes([cmd])
    if is_variable_length(cmd):
        return head + len(body).to_bytes(2, "big") + body
    return head + body + bytes(CELL_BODY_LEN - len(body))


def seed_inputs() -> list[bytes]:
    """Every channel vector (and the CERTS cell) framed for each link version."""
    vectors = json.loads((VECTORS / "cells_channel.json").read_text())["vectors"]
    certs = json.loads((VECTORS / "certs.json").read_text())["certs_cell"]
    bodies = [(v["command"], bytes.fromhex(v["body"])) for v in vectors]
    bodies.append((certs["command"], bytes.fromhex(certs["body"])))
    seeds = []
    for selector, link in enumerate(LINK_VERSIONS):
        for cmd, body in bodies:
            if link is None and not is_variable_length(cmd):
                continue
            if len(body) <= CELL_BODY_LEN or is_variable_length(cmd):
                seeds.append(bytes([selector]) + _frame(link, cmd, body))
    # A handshake-like stream: VERSIONS, then everything else on link 4.
    stream = b"".join(_frame(4, cmd, body) for cmd, body in bodies if cmd != 7)
    seeds.append(bytes([2]) + stream)
    return seeds
