"""An emulated web server whose every byte can be checked end to end.

HTTP/1.0, one request per connection (the server closes after answering):

* ``GET /bytes/<N>?seed=<S>`` (or ``/bytes/<N>/<S>``): 200 with exactly N bytes
  of :func:`simnet.content.content` for seed S (default seed: ``<N>``),
  streamed with backpressure;
* ``POST /upload?seed=<S>`` with ``Content-Length``: the body is checked
  against the content of seed S as it arrives; 200 ``ok <length> <sha256>`` if
  every byte matches, 422 ``mismatch <offset>`` otherwise;
* ``GET /`` : a short text page; anything else 404; a malformed request 400.

Up to :data:`MAX_BYTES` per response or upload.  Each request is traced
(method, path, status, bytes), never the bytes themselves.
"""

from __future__ import annotations

from gotor.errors import NetworkError, ProtocolError
from gotor.runtime.api import ByteStream
from simnet.content import ContentChecker, ContentReader
from simnet.net import Host
from simnet.nodes.http import HttpRequest, read_request, response, response_head

MAX_BYTES = 1 << 32
_CHUNK = 64 * 1024


class WebServer:
    """An HTTP/1.0 server on ``host``:``port`` (see the module docstring)."""

    def __init__(self, host: Host, *, port: int = 80, names: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port
        self.names = names
        self._started = False

    @property
    def address(self) -> str:
        return self.host.ipv4 or self.host.ipv6 or ""

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.host.on_restart(lambda _h: self.start())
        rt = self.host.runtime
        rt.spawn(rt.listen(self.address, self.port, self._serve), name=f"web {self.host.name}")

    async def _serve(self, stream: ByteStream) -> None:
        rt = self.host.runtime
        try:
            got = await read_request(stream)
        except ProtocolError:
            await self._reply(stream, 400, b"bad request\n", "-", "-")
            return
        if got is None:
            return  # the client left before asking anything
        request, body = got
        try:
            await self._route(stream, request, body)
        except ProtocolError:
            await self._reply(stream, 400, b"bad request\n", request.method, request.path)
        except NetworkError:
            rt.trace("http", method=request.method, path=request.path[:80], status=0)

    async def _route(self, stream: ByteStream, request: HttpRequest, body: bytes) -> None:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts[0] == "bytes" and 2 <= len(parts) <= 3:
            seed = parts[2] if len(parts) == 3 else request.query.get("seed", parts[1])
            await self._send_bytes(stream, request, _size(parts[1]), seed)
        elif request.method == "POST" and parts == ["upload"]:
            await self._upload(stream, request, body)
        elif request.method == "GET" and request.path == "/":
            await self._reply(stream, 200, b"gotor simnet web server\n", "GET", "/")
        else:
            await self._reply(stream, 404, b"not found\n", request.method, request.path)

    async def _send_bytes(self, stream: ByteStream, request: HttpRequest, size: int,
                          seed: str) -> None:
        rt = self.host.runtime
        stream.write(response_head(200, now=rt.wallclock(), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(size)}))
        reader = ContentReader(seed, size)
        while chunk := reader.read(_CHUNK):
            stream.write(chunk)
            await stream.drain()
        rt.trace("http", method="GET", path=request.path[:80], status=200, bytes=size)

    async def _upload(self, stream: ByteStream, request: HttpRequest, body: bytes) -> None:
        length = request.content_length
        if length is None or length > MAX_BYTES:
            await self._reply(stream, 400, b"need Content-Length\n", "POST", "/upload")
            return
        checker = ContentChecker(request.query.get("seed", str(length)))
        checker.feed(body[:length])
        while checker.received < length:
            data = await stream.read(min(_CHUNK, length - checker.received))
            if not data:
                self.host.runtime.trace("http", method="POST", path="/upload", status=0,
                                        bytes=checker.received)
                return
            checker.feed(data)
        if checker.ok:
            text = f"ok {length} {checker.digest()}\n".encode()
            await self._reply(stream, 200, text, "POST", "/upload", length)
        else:
            text = f"mismatch {checker.mismatch_at}\n".encode()
            await self._reply(stream, 422, text, "POST", "/upload", length)

    async def _reply(self, stream: ByteStream, status: int, body: bytes, method: str,
                     path: str, size: int = 0) -> None:
        rt = self.host.runtime
        stream.write(response(status, body, now=rt.wallclock(),
                              headers={"Content-Type": "text/plain"}))
        await stream.drain()
        rt.trace("http", method=method, path=path[:80], status=status, bytes=size)


def _size(text: str) -> int:
    # isascii(): the path is percent-decoded, and str.isdigit() takes "¹", which int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) > MAX_BYTES:
        raise ProtocolError(f"bad size {text[:20]!r}")
    return int(text)
