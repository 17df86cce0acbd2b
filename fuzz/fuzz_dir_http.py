"""Fuzz the directory HTTP/1.0 response parser (gotor.dir.http).

Input: a response as a directory server would send it, cut into chunks by its
first byte.  Only ProtocolError may escape.  A parsed response must not
exceed the caps it was given.
"""

from __future__ import annotations

import zlib

from gotor.dir.http import ResponseParser

MAX_BODY = 4096


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    step = data[0] % 64 + 1
    body = data[1:]
    parser = ResponseParser(max_header_bytes=1024, max_body=MAX_BODY, max_decoded=2 * MAX_BODY)
    response = None
    for i in range(0, len(body), step):
        response = parser.feed(body[i : i + step])
        if response is not None:
            break
    if response is None:
        response = parser.feed_eof()
    if response.raw_length > MAX_BODY or len(response.body) > 2 * MAX_BODY:
        raise AssertionError("a cap was exceeded")
    if not 100 <= response.status <= 999:
        raise AssertionError(f"bad status {response.status}")


def seed_inputs() -> list[bytes]:
    text = b"network-status-version 3 microdesc\nvote-status consensus\n"
    return [
        b"\x07HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text) + text,
        b"\x3fHTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + zlib.compress(text),
        b"\x00HTTP/1.1 404 Not found\n\n",
        b"\x01HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/plain\r\n\r\n"
        + b"\x1f\x8b\x08\x00",
    ]
