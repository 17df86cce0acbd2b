"""The SOCKS listener: handshake, hand the request to the client, splice the bytes.

For each application connection, :class:`SocksServer`:

1. runs the :class:`~gotor.socks.machine.SocksServerMachine` over the bytes
   it reads, within ``handshake_timeout`` seconds (a client that stalls is
   dropped); malformed input gets its error reply, then the connection is
   closed;
2. calls ``connect(host, port, isolation)`` for CONNECT (``resolve`` /
   ``resolve_ptr`` for Tor's RESOLVE commands) and answers with success or
   the SOCKS reply code the error maps to
   (:func:`~gotor.socks.machine.reply_code_for`);
3. forwards optimistic data sent with the request, then copies bytes both
   ways (:func:`splice`) with backpressure (``drain`` after each write), passes
   each side's end of stream on as a half-close, and closes both when both
   directions are done — or aborts both at once when either fails.

No request ever crashes the server: every failure of one connection ends
that connection only.  Each connection's work runs as a task of the server, so
that :meth:`SocksServer.aclose` can end it wherever it is (waiting for a
circuit, splicing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gotor.errors import Cancelled, GotorError, LocalError
from gotor.runtime.api import ByteStream, Listener, Runtime, Task, Waiter
from gotor.runtime.sync import timeout, wait_finished
from gotor.socks.machine import (
    Isolation,
    Reply,
    SocksCommand,
    SocksError,
    SocksRequest,
    SocksServerMachine,
    reply_code_for,
)

__all__ = ["ConnectFn", "ResolveFn", "SocksServer", "splice"]

ConnectFn = Callable[[str, int, Isolation | None], Awaitable[ByteStream]]
#: Resolve a name (RESOLVE) or an address (RESOLVE_PTR): the answer, as text.
ResolveFn = Callable[[str, Isolation | None], Awaitable[str]]

_CHUNK = 65536
_CLOSE_TIMEOUT = 10.0


class SocksServer:
    """Serves SOCKS on a runtime listener (see the module docstring)."""

    def __init__(
        self,
        rt: Runtime,
        connect: ConnectFn,
        *,
        resolve: ResolveFn | None = None,
        resolve_ptr: ResolveFn | None = None,
        handshake_timeout: float = 30.0,
        allow_socks4: bool = True,
    ) -> None:
        self._rt = rt
        self._connect = connect
        self._resolvers = {SocksCommand.RESOLVE: resolve, SocksCommand.RESOLVE_PTR: resolve_ptr}
        self.handshake_timeout = handshake_timeout
        self.allow_socks4 = allow_socks4
        self.listener: Listener | None = None
        self._conns: list[tuple[Task[None], Waiter[None]]] = []
        self._closing = False

    async def start(self, host: str, port: int) -> Listener:
        """Listen on ``host:port`` (port 0: any); the listener's ``address`` says where."""
        if self.listener is not None or self._closing:
            raise LocalError("the SOCKS server is already listening, or closed")
        self.listener = await self._rt.listen(host, port, self._serve)
        return self.listener

    async def aclose(self) -> None:
        """End every connection, then stop listening; idempotent.

        The connections first: a listener may wait for its connections when it
        closes (asyncio's does since Python 3.12), and a spliced one lasts as long
        as its circuit.  Connections accepted meanwhile are turned away.
        """
        self._closing = True
        conns = list(self._conns)
        for task, _ in conns:
            task.cancel("SOCKS server closed")
        if self.listener is not None:
            await self.listener.aclose()
            self.listener = None
        for _, done in conns:
            await done  # the listener's handler tasks are past their work too

    async def _serve(self, conn: ByteStream) -> None:
        if self._closing:
            return  # accepted while the server closes: not served
        task = self._rt.spawn(self.handle(conn), name="socks-conn")
        record = (task, self._rt.waiter())
        self._conns.append(record)
        try:
            await wait_finished(self._rt, [task])
        finally:
            self._conns.remove(record)
            record[1].set_if_pending(None)
        error = task.exception()
        if error is not None and not task.cancelled():
            raise error  # a bug in the SOCKS server: let the runtime report it

    async def handle(self, client: ByteStream) -> None:
        """Serve one application connection to its end."""
        machine = SocksServerMachine(allow_socks4=self.allow_socks4)
        try:
            request = await timeout(self._rt, self.handshake_timeout,
                                    _handshake(client, machine), what="SOCKS handshake")
        except SocksError as exc:
            self._rt.trace("socks-error", reason=exc.reason)
            await _send_and_close(self._rt, client, exc.reply)
            return
        except GotorError as exc:  # Timeout, or the application went away
            self._rt.trace("socks-error", reason=str(exc))
            client.abort()
            return
        self._rt.trace("socks-request", command=request.command.name, port=request.port)
        if request.command is SocksCommand.CONNECT:
            await self._serve_connect(client, machine, request)
        else:
            await self._serve_resolve(client, machine, request)

    async def _serve_connect(self, client: ByteStream, machine: SocksServerMachine,
                             request: SocksRequest) -> None:
        try:
            upstream = await self._connect(request.host, request.port, request.isolation)
        except GotorError as exc:
            self._rt.trace("socks-connect-failed", reason=str(exc))
            await _send_and_close(self._rt, client, machine.reply_error(reply_code_for(exc)))
            return
        try:
            client.write(machine.reply_connected())
            if machine.leftover:
                upstream.write(machine.leftover)
        except GotorError:
            client.abort()
            upstream.abort()
            return
        await splice(self._rt, client, upstream)

    async def _serve_resolve(self, client: ByteStream, machine: SocksServerMachine,
                             request: SocksRequest) -> None:
        resolver = self._resolvers.get(request.command)
        if resolver is None:
            await _send_and_close(self._rt, client,
                                  machine.reply_error(Reply.COMMAND_NOT_SUPPORTED))
            return
        try:
            answer = await resolver(request.host, request.isolation)
            if request.command is SocksCommand.RESOLVE:
                reply = machine.reply_resolved(answer)
            else:
                reply = machine.reply_resolved_ptr(answer)
        except GotorError as exc:  # LocalError from reply_resolved: the answer is no IP
            reply = machine.reply_error(reply_code_for(exc))
        await _send_and_close(self._rt, client, reply)


async def _handshake(client: ByteStream, machine: SocksServerMachine) -> SocksRequest:
    while machine.request is None:
        data = await client.read(_CHUNK)
        if not data:
            raise SocksError("the application closed the connection during the handshake")
        machine.receive(data)
        out = machine.data_to_send()
        if out:
            client.write(out)
            await client.drain()
    return machine.request


async def _send_and_close(rt: Runtime, stream: ByteStream, data: bytes) -> None:
    """Best effort: write ``data`` and close gracefully, within a bounded time."""
    try:
        if data:
            stream.write(data)
        await timeout(rt, _CLOSE_TIMEOUT, stream.aclose(), what="closing a SOCKS connection")
    except GotorError:
        stream.abort()


async def splice(rt: Runtime, a: ByteStream, b: ByteStream) -> None:
    """Copy both ways until both directions end; abort both if either fails (and raise
    the failure if it is not a GotorError: a bug must not pass for a closed connection).

    Each direction reads, writes and drains (so a slow reader slows the
    writer: backpressure), and passes end-of-stream on with ``write_eof``.
    """
    failed: list[BaseException] = []
    tasks: list[Task[None]] = []
    all_done = rt.waiter()

    def finished(task: Task[None]) -> None:
        exc = task.exception()
        if exc is not None and not failed:
            failed.append(exc)
            a.abort()
            b.abort()
        if all(t.done() for t in tasks) and not all_done.done():
            all_done.set(None)

    tasks.append(rt.spawn(_pump(a, b), name="splice a->b"))
    tasks.append(rt.spawn(_pump(b, a), name="splice b->a"))
    for t in tasks:
        t.add_done_callback(finished)
    try:
        await all_done
    except Cancelled:
        for t in tasks:
            t.cancel("splice cancelled")
        a.abort()
        b.abort()
        raise
    if failed:
        if isinstance(failed[0], Exception) and not isinstance(failed[0], GotorError):
            raise failed[0]  # a bug of ours, not a failed stream: both are aborted; report it
        return  # a failed stream, or a direction cancelled from outside
    for stream in (a, b):
        await _send_and_close(rt, stream, b"")


async def _pump(src: ByteStream, dst: ByteStream) -> None:
    while data := await src.read(_CHUNK):
        dst.write(data)
        await dst.drain()
    dst.write_eof()
