"""The production runtime binding: asyncio, real TCP and TLS, OS randomness.

This is the only module of gotor that may import asyncio, socket or ssl
(DESIGN.md, "The one rule").  It maps asyncio's world onto the semantics of
:mod:`gotor.runtime.api`: every await of client code goes through an
:class:`AioWaiter`, which turns asyncio's CancelledError into gotor's
:class:`~gotor.errors.Cancelled`; OS errors become gotor's typed network errors.

TLS: Tor authenticates relays through the CERTS cell, not a CA, so the client
context verifies nothing and exposes the peer certificate's DER instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from gotor.errors import (
    Cancelled,
    ClosedError,
    ConnectionRefused,
    ConnectionReset,
    LocalError,
    NetworkError,
    TlsError,
)
from gotor.runtime.api import ConnHandler, Handle, Task, TlsCredentials, Waiter

T = TypeVar("T")
log = logging.getLogger("gotor.runtime")

HIGH_WATER = 256 * 1024


class AioWaiter(Waiter[T]):
    __slots__ = ("_fut",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._fut: asyncio.Future[None] = loop.create_future()

    def _wake(self) -> None:
        if not self._fut.done():
            self._fut.set_result(None)

    def __await__(self) -> Generator[Any, Any, T]:
        if not self.done():
            try:
                yield from self._fut.__await__()
            except asyncio.CancelledError:
                raise Cancelled() from None
        return self.outcome()


class AioTask(Task[T]):
    __slots__ = ("_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T],
                 name: str) -> None:
        super().__init__(name)
        self._loop = loop
        self._task = loop.create_task(self._run(coro), name=name)
        self._task.add_done_callback(lambda _t: self._on_cancelled_before_start(coro))

    def _on_cancelled_before_start(self, coro: Coroutine[Any, Any, T]) -> None:
        # asyncio cancels a task that never ran without entering _run at all.
        if not self.done():
            coro.close()
            self._finish(False, Cancelled(self.cancel_reason or "cancelled"))

    async def _run(self, coro: Coroutine[Any, Any, T]) -> None:
        try:
            value = await coro
        except asyncio.CancelledError:
            self._finish(False, Cancelled(self.cancel_reason or "cancelled"))
        except BaseException as exc:  # noqa: BLE001 - the task's outcome, re-raised on await
            self._finish(False, exc)
            self._loop.call_soon(self._report_unobserved)
        else:
            self._finish(True, value)

    def _report_unobserved(self) -> None:
        exc = self._failed_unobserved()
        if exc is not None:
            log.error("task %s failed: %r", self.name, exc, exc_info=exc)

    def _interrupt(self, reason: str) -> None:
        self._task.cancel(reason)

    def _new_waiter(self) -> Waiter[None]:
        return AioWaiter(self._loop)


class _Timer:
    __slots__ = ("_h",)

    def __init__(self, h: asyncio.TimerHandle) -> None:
        self._h = h

    def cancel(self) -> None:
        self._h.cancel()


class AioStream:
    """A TCP or TLS stream over asyncio's StreamReader/StreamWriter."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._r = reader
        self._w = writer
        self._closed = False
        self._eof_sent = False
        transport = writer.transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        self.peer: tuple[str, int] = (peer[0], peer[1])
        self.local: tuple[str, int] = (local[0], local[1])

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            raise ClosedError("read on a closed stream")
        try:
            return await self._r.read(max_bytes)
        except asyncio.CancelledError:
            raise Cancelled() from None
        except ssl.SSLError as exc:
            raise TlsError(f"TLS failure: {exc.reason or exc}") from None
        except OSError as exc:
            raise ConnectionReset(f"connection reset: {exc.strerror or exc}") from None

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ClosedError("write on a closed stream")
        if self._eof_sent:
            raise ClosedError("write after write_eof")
        if self._w.transport.is_closing():
            raise ConnectionReset("connection is closing")
        self._w.write(data)

    async def drain(self) -> None:
        try:
            await self._w.drain()
        except asyncio.CancelledError:
            raise Cancelled() from None
        except OSError as exc:
            raise ConnectionReset(f"connection reset: {exc.strerror or exc}") from None

    def write_eof(self) -> None:
        if self._closed:
            raise ClosedError("write_eof on a closed stream")
        if not self._w.can_write_eof():
            raise LocalError("a TLS stream cannot half-close; use aclose()")
        if not self._eof_sent:
            self._eof_sent = True
            self._w.write_eof()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._w.close()
        try:
            await self._w.wait_closed()
        except asyncio.CancelledError:
            raise Cancelled() from None
        except (OSError, ssl.SSLError):
            pass

    def abort(self) -> None:
        """Reset the connection: unsent data is dropped and the peer sees a reset."""
        self._closed = True
        sock = self._w.transport.get_extra_info("socket")
        if sock is not None:
            try:  # linger 0: close() sends RST instead of FIN, as abort means
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._w.transport.abort()

    def peer_cert_der(self) -> bytes | None:
        obj = self._w.transport.get_extra_info("ssl_object")
        return obj.getpeercert(binary_form=True) if obj is not None else None


class _AioListener:
    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.address: tuple[str, int] = server.sockets[0].getsockname()[:2]

    async def aclose(self) -> None:
        self._server.close()
        try:
            await self._server.wait_closed()
        except asyncio.CancelledError:
            raise Cancelled() from None


def client_tls_context() -> ssl.SSLContext:
    """TLS as a Tor client speaks it: no CA checks; identity comes from CERTS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_tls_context(creds: TlsCredentials) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The ssl module loads keys only from files: write them to a private temp dir.
    with tempfile.TemporaryDirectory(prefix="gotor-tls-") as d:
        cert, key = Path(d, "cert.pem"), Path(d, "key.pem")
        cert.write_bytes(creds.cert_chain_pem)
        key.write_bytes(creds.key_pem)
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise TlsError(f"unusable TLS credentials: {exc.reason or exc}") from None
    return ctx


class AsyncioRuntime:
    """The runtime for the real world.  Create it inside a running event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self.rng = random.SystemRandom()
        self._client_tls = client_tls_context()

    def now(self) -> float:
        return self._loop.time()

    def wallclock(self) -> float:
        return time.time()

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def waiter(self) -> AioWaiter[Any]:
        return AioWaiter(self._loop)

    def sleep(self, seconds: float) -> AioWaiter[None]:
        w: AioWaiter[None] = AioWaiter(self._loop)
        self._loop.call_later(max(0.0, seconds), partial(w.set_if_pending, None))
        return w

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> AioTask[T]:
        return AioTask(self._loop, coro, name)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Handle:
        return _Timer(self._loop.call_later(max(0.0, delay), fn))

    async def connect(self, host: str, port: int, *, tls: bool = False) -> AioStream:
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self._client_tls if tls else None,
                server_hostname="" if tls else None, limit=HIGH_WATER,
            )
        except asyncio.CancelledError:
            raise Cancelled() from None
        except ConnectionRefusedError:
            raise ConnectionRefused(f"connection to {host}:{port} refused") from None
        except ssl.SSLError as exc:
            raise TlsError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise NetworkError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        return AioStream(reader, writer)

    async def listen(self, host: str, port: int, handler: ConnHandler, *,
                     tls: TlsCredentials | None = None) -> _AioListener:
        ctx = server_tls_context(tls) if tls is not None else None

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A handler that returns closes gracefully (its last writes still go
            # out); one that fails resets the connection.  Same in simnet.
            stream = AioStream(reader, writer)
            try:
                await handler(stream)
            except (Cancelled, asyncio.CancelledError):
                stream.abort()
                return
            except NetworkError as exc:
                log.debug("connection ended: %s", exc)
                stream.abort()
                return
            except Exception:
                log.exception("connection handler failed")
                stream.abort()
                return
            try:
                await stream.aclose()
            except (Cancelled, NetworkError):
                stream.abort()

        try:
            server = await asyncio.start_server(on_conn, host, port, ssl=ctx, limit=HIGH_WATER)
        except asyncio.CancelledError:
            raise Cancelled() from None
        except OSError as exc:
            raise NetworkError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        return _AioListener(server)

    def trace(self, event: str, **fields: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", event, fields)
