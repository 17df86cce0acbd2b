"""A small sans-IO HTTP/1.0 server side for the emulated directory caches and web servers.

Tor's directory protocol is HTTP/1.0 (dir-spec §4, §6): one request per
connection, the server closes after its response.  This module parses a
request *head* (request line and headers) from bytes and formats responses;
the callers read bodies themselves (``Content-Length``), so a large upload is
verified as it streams and never held in memory.

Limits: a head is at most :data:`MAX_HEAD` bytes; anything malformed raises
:class:`~gotor.errors.ProtocolError` (the server answers 400 and closes).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from gotor.errors import ProtocolError
from gotor.runtime.api import ByteStream

MAX_HEAD = 16 * 1024
_END = b"\r\n\r\n"
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                         b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

REASONS = {
    200: "OK",
    304: "Not modified",
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Payload too large",
    422: "Unprocessable content",
    503: "Directory unavailable",
}


@dataclass(frozen=True)
class HttpRequest:
    """A request head: method, target split into path and query, version, headers.

    Header names are lower-cased; a repeated header keeps its last value.
    """

    method: str
    target: str
    version: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return unquote(self.target.partition("?")[0])

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.target.partition("?")[2], keep_blank_values=True))

    @property
    def content_length(self) -> int | None:
        """The body length the client announced (None if it announced none)."""
        text = self.headers.get("content-length")
        if text is None:
            return None
        if not text.isdigit() or len(text) > 15:
            raise ProtocolError(f"bad Content-Length {text[:20]!r}")
        return int(text)


def parse_head(buf: bytes | bytearray) -> tuple[HttpRequest, int] | None:
    """The request head at the start of ``buf`` and its length, or None if incomplete."""
    end = bytes(buf[: MAX_HEAD + len(_END)]).find(_END)
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise ProtocolError("HTTP request head too long")
        return None
    try:
        text = bytes(buf[:end]).decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("HTTP request head is not ASCII") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1].startswith("/"):
        raise ProtocolError(f"bad HTTP request line {lines[0][:60]!r}")
    method, target, version = parts
    if not set(method.encode()) <= _TOKEN_CHARS or version not in ("HTTP/1.0", "HTTP/1.1"):
        raise ProtocolError(f"bad HTTP request line {lines[0][:60]!r}")
    return HttpRequest(method, target, version, _headers(lines[1:])), end + len(_END)


async def read_request(stream: ByteStream) -> tuple[HttpRequest, bytes] | None:
    """Read a request head from ``stream``: the head and the bytes after it, or None if
    the stream ended first; ProtocolError for a malformed head."""
    buf = bytearray()
    while (head := parse_head(buf)) is None:
        data = await stream.read()
        if not data:
            return None
        buf += data
    request, used = head
    return request, bytes(buf[used:])


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name.encode()) <= _TOKEN_CHARS:
            raise ProtocolError(f"bad HTTP header line {line[:60]!r}")
        headers[name.lower()] = value.strip()
    return headers


def http_date(posix: float) -> str:
    """RFC 1123 date, as C tor writes in its Date header."""
    return email.utils.formatdate(int(posix), usegmt=True)


def response(status: int, body: bytes = b"", *, now: float,
             headers: Mapping[str, str] | None = None, length: bool = True) -> bytes:
    """A complete HTTP/1.0 response in C tor's header order (Date first, then ``headers``).

    ``length``: add ``Content-Length`` (dir-spec §6.1 says servers MAY).
    """
    lines = [f"HTTP/1.0 {status} {REASONS.get(status, 'Unknown')}", f"Date: {http_date(now)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def response_head(status: int, *, now: float, headers: Mapping[str, str]) -> bytes:
    """Only the head of a response whose body the caller streams itself."""
    return response(status, now=now, headers=headers, length=False)
