"""Fuzz relay-message decoding (gotor.cells.relay, relaymsg, hsmsg, linkspec, ext).

Input: the first byte is a relay command, the rest its Data.  Every decoded
message must re-encode to Data that decodes to the same message.  When the
rest is exactly 509 bytes it is also decoded as a whole relay payload (header
included).  Relay command 0 is never sent on the wire, so the harness uses it
for the other relay-layer decoders: the decrypted INTRODUCE payload, a
link-specifier list and an ntor-v3 extension sequence.  Only ProtocolError
may escape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gotor.bytesio import Reader, Writer
from gotor.cells.chan import CELL_BODY_LEN
from gotor.cells.ext import Extension, read_extension_list, write_extension_list
from gotor.cells.hsmsg import IntroducePayload
from gotor.cells.linkspec import decode_link_spec_list, encode_link_spec_list
from gotor.cells.relay import decode_relay_payload, encode_relay_payload
from gotor.cells.relaymsg import decode_relay_cell, decode_relay_msg
from gotor.errors import ProtocolError

T = TypeVar("T")
VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "vectors"


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def _round_trip(decode: Callable[[bytes], T], encode: Callable[[T], bytes], data: bytes) -> None:
    try:
        value = decode(data)
    except ProtocolError:
        return
    _check(decode(encode(value)) == value, f"{value!r} does not round-trip")


def _decode_extensions(data: bytes) -> tuple[Extension, ...]:
    r = Reader(data, "extension list")
    exts = read_extension_list(r)
    r.expect_end()
    return exts


def _encode_extensions(exts: tuple[Extension, ...]) -> bytes:
    w = Writer()
    write_extension_list(w, exts)
    return w.getvalue()


def _aux_decoders(data: bytes) -> None:
    _round_trip(IntroducePayload.decode, IntroducePayload.encode, data)
    _round_trip(decode_link_spec_list, encode_link_spec_list, data)
    _round_trip(_decode_extensions, _encode_extensions, data)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    cmd, rest = data[0], data[1:]
    if cmd == 0:
        _aux_decoders(rest)
        return
    if len(rest) == CELL_BODY_LEN:
        try:
            decode_relay_cell(decode_relay_payload(rest))
        except ProtocolError:
            pass
    msg = decode_relay_msg(cmd, rest)
    _check(decode_relay_msg(cmd, msg.encode()) == msg, f"{msg!r} does not round-trip")


def seed_inputs() -> list[bytes]:
    """Every relay vector body behind its command, some as full payloads, and the HS extras."""
    relay = json.loads((VECTORS / "cells_relay.json").read_text())
    vectors = relay["vectors"] + relay["captured_hs_cells_not_parsed_by_arti"]["vectors"]
    seeds = [bytes([v["relay_command"]]) + bytes.fromhex(v["body"]) for v in vectors]
    seeds.append(bytes([32]) + bytes.fromhex(relay["establish_intro_canned"]["body"]))
    for v in vectors[:12]:
        body = bytes.fromhex(v["body"])
        payload = encode_relay_payload(v["relay_command"], 1, body, b"\x5a" * CELL_BODY_LEN)
        seeds.append(bytes([v["relay_command"]]) + payload)
    seeds.append(b"\x00" + bytes.fromhex(relay["introduce_plaintext_payload"]["body"]))
    return seeds
