"""Fuzz the SOCKS server machine (gotor.socks.machine; RFC 1928, RFC 1929, socks-extensions).

Input: what an application sends, cut into chunks by its first byte (so chunk
boundaries are fuzzed too).  Only ProtocolError (SocksError) may escape.  A
completed request must be well-formed, and whatever replies the machine
builds for it must be valid SOCKS replies.
"""

from __future__ import annotations

from gotor.socks.machine import Reply, SocksCommand, SocksServerMachine


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    step = data[0] % 16 + 1
    body = data[1:]
    m = SocksServerMachine()
    for i in range(0, len(body), step):
        m.receive(body[i : i + step])
        m.data_to_send()
        if m.request is not None:
            break
    req = m.request
    if req is None:
        return
    if not (0 <= req.port <= 65535 and req.host and req.version in (4, 5)):
        raise AssertionError(f"bad request {req}")
    if req.command is SocksCommand.CONNECT:
        reply = m.reply_connected()
    elif req.command is SocksCommand.RESOLVE:
        reply = m.reply_resolved("192.0.2.1")
    else:
        reply = m.reply_error(Reply.HOST_UNREACHABLE)
    if reply[0] not in (0, 5) or len(reply) < 8:
        raise AssertionError(f"bad reply {reply!r}")


def seed_inputs() -> list[bytes]:
    name = b"example.com"
    return [
        b"\x00\x05\x01\x00\x05\x01\x00\x03" + bytes([len(name)]) + name + b"\x01\xbb",
        b"\x03\x05\x02\x00\x02\x01\x04user\x04pass\x05\x01\x00\x01\x5d\xb8\xd8\x22\x00\x50",
        b"\x0f\x05\x01\x00\x05\x01\x00\x04" + bytes(15) + b"\x01\x1f\x90",
        b"\x01\x05\x01\x00\x05\xf0\x00\x03\x0btorproject\x00\x00",
        b"\x01\x05\x01\x00\x05\xf1\x00\x01\x01\x02\x03\x04\x00\x00",
        b"\x07\x04\x01\x00\x50\x0a\x00\x00\x01alice\x00",
        b"\x07\x04\x01\x01\xbb\x00\x00\x00\x01\x00onion.example\x00",
        b"\x00GET / HTTP/1.1\r\n\r\n",
    ]
