"""HTTP/1.0 for directory requests: request bytes, and a sans-IO response parser.

dir-spec §6: "All clients and servers MUST support HTTP 1.0."  A directory
request over BEGIN_DIR (or to a DirPort) is one ``GET`` with a few headers;
the response is a status line, headers, and a body that either has a
``Content-Length`` or runs to the end of the stream (C tor sends compressed
bodies without a length and closes the stream).

:class:`ResponseParser` takes bytes in any chunking (``feed``) and the end of
the stream (``feed_eof``) and returns an :class:`HttpResponse` once complete.
Everything it buffers is capped: the header block (``max_header_bytes``),
the body as received (``max_body``) and the body after decompression
(``max_decoded``, which stops a "zip bomb" early).  ``Content-Encoding``
``deflate`` (zlib format, which is what C tor means by it), ``gzip`` and
``identity`` are decoded; any other encoding — we never advertise one — is
an error.  Garbage, truncation and every cap raise
:class:`~gotor.errors.ProtocolError` with a reason, never anything else.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from gotor.errors import LocalError, ProtocolError

__all__ = [
    "ACCEPT_ENCODING",
    "HttpResponse",
    "ResponseParser",
    "decode_body",
    "format_request",
]

#: What we can decode, in order of preference (sent as Accept-Encoding).
ACCEPT_ENCODING = ("deflate", "gzip", "identity")
_ZLIB_WBITS = {"deflate": zlib.MAX_WBITS, "gzip": 16 + zlib.MAX_WBITS}

_STATUS = re.compile(rb"HTTP/1\.([0-9]) ([0-9]{3})(?: (.*))?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_PATH = re.compile(r"/[\x21-\x7e]*")
_NO_BODY = frozenset({204, 304})
_DIGITS = re.compile(r"[0-9]{1,15}")


def format_request(path: str, *, host: str | None = None,
                   accept_encoding: Sequence[str] = ACCEPT_ENCODING) -> bytes:
    """``GET path HTTP/1.0`` with Host (when known) and Accept-Encoding headers."""
    if _PATH.fullmatch(path) is None:
        raise LocalError(f"bad request path {path[:60]!r}")
    lines = [f"GET {path} HTTP/1.0"]
    if host is not None:
        lines.append(f"Host: {host}")
    if accept_encoding:
        lines.append("Accept-Encoding: " + ", ".join(accept_encoding))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass(frozen=True)
class HttpResponse:
    """A complete response.  ``body`` is decoded; ``raw_length`` is what crossed the wire."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw_length: int = 0

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)

    @property
    def ok(self) -> bool:
        return self.status == 200


def decode_body(encoding: str | None, raw: bytes, max_decoded: int) -> bytes:
    """Undo ``Content-Encoding``; raises ProtocolError if unsupported, corrupt or too big."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        if len(raw) > max_decoded:
            raise ProtocolError(f"body exceeds {max_decoded} bytes")
        return raw
    wbits = _ZLIB_WBITS.get(name)
    if wbits is None:
        raise ProtocolError(f"unsupported Content-Encoding {name[:30]!r}")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, max_decoded + 1)
    except zlib.error as exc:
        raise ProtocolError(f"corrupt {name} body: {exc}") from None
    if len(out) > max_decoded:
        raise ProtocolError(f"body exceeds {max_decoded} bytes after decompression")
    if not d.eof:
        raise ProtocolError(f"truncated {name} body")
    if d.unused_data:
        raise ProtocolError(f"{len(d.unused_data)} bytes of garbage after the {name} body")
    return out


class ResponseParser:
    """Incremental parser of one HTTP/1.0 response (see the module docstring)."""

    def __init__(self, *, max_header_bytes: int = 16384, max_body: int = 8 << 20,
                 max_decoded: int | None = None) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body = max_body
        self.max_decoded = max_decoded if max_decoded is not None else max_body
        self._buf = bytearray()
        self._scanned = 0
        self._status_checked = False
        self._head: tuple[int, str, tuple[tuple[str, str], ...]] | None = None
        self._length: int | None = None
        self._result: HttpResponse | None = None
        self._failed = False

    @property
    def complete(self) -> bool:
        return self._result is not None

    def feed(self, data: bytes) -> HttpResponse | None:
        """Add bytes; the response once it is complete (by Content-Length), else None."""
        if self._failed:
            raise ProtocolError("response parser already failed")
        if self._result is not None:
            if data:
                self._fail("data after the end of the response")
            return self._result
        self._buf += data
        try:
            if self._head is None and not self._parse_head():
                return None
            return self._check_body(eof=False)
        except ProtocolError:
            self._failed = True
            raise

    def feed_eof(self) -> HttpResponse:
        """The stream ended: the response, or ProtocolError if it is incomplete."""
        if self._result is not None:
            return self._result
        if self._failed:
            raise ProtocolError("response parser already failed")
        try:
            result = self._check_body(eof=True)
            if result is None:
                what = "no response" if not self._buf else f"{len(self._buf)} bytes of headers"
                raise ProtocolError(f"stream ended with {what} (truncated headers)")
        except ProtocolError:
            self._failed = True
            raise
        return result

    def _fail(self, reason: str) -> None:
        self._failed = True
        raise ProtocolError(reason)

    def _parse_head(self) -> bool:
        m = _HEADER_END.search(self._buf, max(0, self._scanned - 3))
        if m is None:
            if not self._status_checked:  # garbage fails at its first line, not at a timeout
                nl = self._buf.find(b"\n")
                if nl >= 0:
                    _status_line(bytes(self._buf[:nl]).removesuffix(b"\r"))
                    self._status_checked = True
            self._scanned = len(self._buf)
            if len(self._buf) > self.max_header_bytes:
                raise ProtocolError(f"response headers exceed {self.max_header_bytes} bytes")
            return False
        if m.start() > self.max_header_bytes:
            raise ProtocolError(f"response headers exceed {self.max_header_bytes} bytes")
        block = bytes(self._buf[: m.start()])
        del self._buf[: m.end()]
        status, reason, headers = _parse_head_block(block)
        self._head = (status, reason, headers)
        self._length = self._content_length(status, headers)
        return True

    def _content_length(self, status: int, headers: tuple[tuple[str, str], ...]) -> int | None:
        if any(k.lower() == "transfer-encoding" for k, _ in headers):
            raise ProtocolError("Transfer-Encoding is not HTTP/1.0")
        if status in _NO_BODY or 100 <= status < 200:
            return 0
        values = {v.strip() for k, v in headers if k.lower() == "content-length"}
        if not values:
            return None
        if len(values) > 1:
            raise ProtocolError("conflicting Content-Length headers")
        (text,) = values
        # ASCII digits only: str.isdigit() also takes "¹" (latin-1 0xB9), which int() refuses.
        if _DIGITS.fullmatch(text) is None:
            raise ProtocolError(f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > self.max_body:
            raise ProtocolError(f"Content-Length {length} exceeds {self.max_body} bytes")
        return length

    def _check_body(self, *, eof: bool) -> HttpResponse | None:
        """The response if the body is complete; None if more is needed (or no head yet)."""
        head = self._head
        if head is None:
            return None
        if len(self._buf) > self.max_body:
            raise ProtocolError(f"response body exceeds {self.max_body} bytes")
        if self._length is not None:
            if len(self._buf) > self._length:
                raise ProtocolError("data after the end of the response")
            if len(self._buf) < self._length:
                if eof:
                    raise ProtocolError(
                        f"truncated body: {len(self._buf)} of {self._length} bytes"
                    )
                return None
        elif not eof:
            return None
        status, reason, headers = head
        raw = bytes(self._buf)
        encoding = next((v for k, v in headers if k.lower() == "content-encoding"), None)
        body = decode_body(encoding, raw, self.max_decoded)
        self._result = HttpResponse(status, reason, headers, body, len(raw))
        return self._result


def _status_line(line: bytes) -> tuple[int, str]:
    m = _STATUS.fullmatch(line)
    if m is None:
        raise ProtocolError(f"bad HTTP status line {line[:60]!r}")
    status = int(m[2])
    if status < 100:
        raise ProtocolError(f"bad HTTP status code {status}")
    return status, (m[3] or b"").decode("latin-1")


def _parse_head_block(block: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    lines = [line.removesuffix(b"\r") for line in block.split(b"\n")]
    status, reason = _status_line(lines[0])
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise ProtocolError(f"bad HTTP header line {line[:60]!r}")
        headers.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
    return status, reason, tuple(headers)
