"""Streams over circuits: the async :class:`Stream`, a ByteStream (tor-spec §6.2-§6.4, §7.4).

A circuit creates streams (``Circuit.open_stream`` / ``open_dir_stream`` / ``resolve``):
it gives each a :class:`StreamPort` (how to send on the circuit) and routes the exit's
messages for the stream ID to the stream's ``relay_received``.  The protocol rules live
in the sans-IO :class:`~gotor.stream.machine.StreamMachine`; this module adds buffers,
waiting and the ByteStream semantics:

``read(n)``
    Buffered data first; then b"" after END(DONE), or after we ended the stream
    ourselves (``write_eof``); raises :class:`~gotor.errors.StreamError` (carrying the
    END reason) after any other END or when the circuit failed.  Reading is what lets
    stream SENDMEs go out, so a reader that stops reading stops the exit (backpressure).
``write(data)``
    Queues; a pump task cuts the queue into DATA cells of up to 498 bytes as the stream
    and circuit package windows allow, then waits for the channel to drain.
``drain()``
    Waits while more than :data:`HIGH_WATER` bytes are queued.
``write_eof()``
    Tor has no half-close (tor-spec §6.3: the FIN states are unimplemented; an exit
    that gets END closes its TCP connection entirely).  So, as C tor does when a SOCKS
    client half-closes: END(MISC) goes out once the queued data has been packaged;
    data that arrived before that stays readable, then ``read`` returns b""; cells the
    exit had in flight are accounted for and discarded.  A second call, or one after
    the exit ended the stream, does nothing.
``aclose()``
    ``write_eof`` plus: nothing more is read (buffered data is dropped).  It does not
    wait for the queued data to leave; the pump finishes it.
``abort()``
    END(MISC) now; queued data is dropped.

A stream never reports the END reason of its own side: clients send MISC only
(tor-spec §6.3, C tor's connection_edge_end).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from gotor.cells.common import IpAddress
from gotor.cells.relay import RELAY_DATA_MAX, RelayMsg
from gotor.cells.relaymsg import Data, End, EndReason, ResolvedAnswer, ResolvedType, Sendme
from gotor.errors import (
    Cancelled,
    ChannelError,
    CircuitError,
    ClosedError,
    LocalError,
    StreamError,
)
from gotor.runtime.api import Runtime, Task, Waiter
from gotor.stream.machine import (
    Ended,
    Opened,
    Received,
    ResolvedAnswers,
    StreamKind,
    StreamMachine,
    WindowOpened,
)
from gotor.stream.reasons import end_error, end_reason_text

#: ``drain`` blocks while more than this much is queued, and resumes at LOW_WATER.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
#: DATA cells a stream packages before it lets the channel flush and others run.
BATCH = 32


class StreamSink(Protocol):
    """What a circuit routes a stream ID's messages to."""

    def relay_received(self, cmd: int, data: bytes) -> bool:
        """Handle one message from the exit; True when the stream ID is free again.

        Raises ProtocolError when the message breaks the protocol (the circuit closes).
        """
        ...

    def circuit_closed(self, error: CircuitError) -> None:
        """The circuit is gone."""
        ...


class StreamPort(Protocol):
    """What a stream needs from its circuit (bound to one hop and one stream ID)."""

    stream_id: int
    circ_name: str

    def send(self, msg: RelayMsg) -> None:
        """Encrypt and write ``msg`` now; CircuitError if the circuit is closed."""
        ...

    def can_package(self) -> bool:
        """True while the circuit's package window lets a DATA cell through."""
        ...

    async def wait_package(self) -> None:
        """Wait until :meth:`can_package`; CircuitError if the circuit closes."""
        ...

    async def flush(self) -> None:
        """Wait for the channel to drain (backpressure); CircuitError if it fails."""
        ...

    def set_sink(self, sink: StreamSink) -> None:
        """Route this stream ID's messages to ``sink`` from now on."""
        ...


class _Wakeups:
    """Tasks parked until something changes (data, window, end); woken all at once."""

    __slots__ = ("_rt", "_waiters")

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._waiters: list[Waiter[None]] = []

    async def wait(self) -> None:
        w: Waiter[None] = self._rt.waiter()
        self._waiters.append(w)
        await w

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set(None)


class Stream:
    """One application stream through a circuit (see the module docstring)."""

    def __init__(self, rt: Runtime, port: StreamPort, kind: StreamKind,
                 target: tuple[str, int]) -> None:
        self._rt = rt
        self._port = port
        self._machine = StreamMachine(kind)
        self.target = target
        self.stream_id = port.stream_id
        #: What CONNECTED said: the address the exit reached, and its TTL.
        self.address: IpAddress | None = None
        self.ttl: int = 0
        self._rbuf: deque[bytes] = deque()
        self._rlen = 0
        self._wbuf = bytearray()
        self._opened: Waiter[None] = rt.waiter()
        self._readers = _Wakeups(rt)
        self._writers = _Wakeups(rt)  # the pump (windows) and drain() callers
        self._pump: Task[None] | None = None
        self._error: StreamError | None = None
        self._peer_ended = False  # END arrived
        self._end_sent = False
        self._eof_wanted = False  # write_eof/aclose: END after the queue
        self._closed = False  # aclose/abort: nothing more to read

    @property
    def _name(self) -> str:
        host, port = self.target
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # --- ByteStream -------------------------------------------------------------------
    @property
    def peer(self) -> tuple[str, int]:
        return self.target

    @property
    def local(self) -> tuple[str, int]:
        return ("", 0)

    async def read(self, max_bytes: int = 65536) -> bytes:
        if max_bytes <= 0:
            raise LocalError("read() needs a positive max_bytes")
        while True:
            if self._closed:
                raise ClosedError("read on a closed stream")
            if self._rlen:
                return self._take(max_bytes)
            if self._error is not None:
                raise self._error
            if self._peer_ended or self._end_sent:
                return b""
            await self._readers.wait()

    def write(self, data: bytes) -> None:
        self._check_writable()
        if data:
            self._wbuf += data
            self._kick()

    async def drain(self) -> None:
        if len(self._wbuf) > HIGH_WATER:
            while len(self._wbuf) > LOW_WATER and not self._stopped():
                await self._writers.wait()
        if self._error is not None:
            raise self._error

    def write_eof(self) -> None:
        if self._error is None and (self._peer_ended or self._eof_wanted or self._end_sent):
            return  # already ended, one way or the other
        self._check_writable()
        self._eof_wanted = True
        self._kick()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rbuf.clear()
        self._rlen = 0
        self._readers.wake()
        if not self._eof_wanted and self._error is None and not self._peer_ended:
            self._eof_wanted = True
            self._kick()

    def abort(self) -> None:
        self._closed = True
        self._wbuf.clear()
        self._rbuf.clear()
        self._rlen = 0
        self._send_end()
        self._readers.wake()
        self._writers.wake()

    # --- reading ----------------------------------------------------------------------
    def _take(self, max_bytes: int) -> bytes:
        rbuf = self._rbuf
        head = rbuf[0]
        if len(head) > max_bytes:
            data, rbuf[0] = head[:max_bytes], head[max_bytes:]
        else:
            parts, n = [rbuf.popleft()], len(head)
            while rbuf and n + len(rbuf[0]) <= max_bytes:
                n += len(rbuf[0])
                parts.append(rbuf.popleft())
            data = b"".join(parts) if len(parts) > 1 else parts[0]
        self._rlen -= len(data)
        owed = self._machine.sendmes_owed(self._rlen)
        for _ in range(owed):
            if not self._try_send(Sendme()):
                break
        return data

    # --- writing ----------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._peer_ended:
            raise StreamError(f"stream to {self._name}: {end_reason_text(EndReason.DONE)}",
                              end_reason=EndReason.DONE)
        if self._closed or self._eof_wanted or self._end_sent:
            raise ClosedError("write on a closed stream" if self._closed
                              else "write after write_eof")

    def _kick(self) -> None:
        if self._pump is None and not self._end_sent:
            self._pump = self._rt.spawn(self._run_pump(), name=f"stream-pump {self.stream_id}")
        else:
            self._writers.wake()

    def _stopped(self) -> bool:
        return self._error is not None or self._peer_ended or self._end_sent

    async def _run_pump(self) -> None:
        try:
            while not self._stopped():
                if self._wbuf:
                    await self._send_batch()
                elif self._eof_wanted:
                    self._send_end()
                else:
                    break
        except (CircuitError, ChannelError) as err:
            self._fail(StreamError(f"stream to {self._name}: {err}"))
        finally:
            self._pump = None

    async def _send_batch(self) -> None:
        """Wait for both package windows, then send up to :data:`BATCH` DATA cells."""
        while not self._machine.can_package():
            await self._writers.wait()  # a stream SENDME, or the end
            if self._stopped():
                return
        while not self._port.can_package():
            await self._port.wait_package()
        machine, port, wbuf = self._machine, self._port, self._wbuf
        sent = 0
        while (wbuf and sent < BATCH and not self._stopped() and machine.can_package()
               and port.can_package()):
            chunk = bytes(wbuf[:RELAY_DATA_MAX])
            del wbuf[:RELAY_DATA_MAX]
            machine.note_data_sent()
            port.send(Data(chunk))
            sent += 1
        if len(wbuf) <= LOW_WATER:
            self._writers.wake()
        await port.flush()  # the channel writes the batch at once, then backpressure

    def _send_end(self) -> None:
        if self._end_sent or self._peer_ended or self._error is not None:
            return
        self._end()
        self._trace_end("local")
        self._readers.wake()

    def _end(self) -> None:
        """END(MISC) to the exit, once; the stream ID stays half-closed for late cells."""
        self._end_sent = True
        half = self._machine.end_sent()
        if self._try_send(End(EndReason.MISC)):
            self._port.set_sink(half)

    def _try_send(self, msg: RelayMsg) -> bool:
        try:
            self._port.send(msg)
        except (CircuitError, ChannelError) as err:
            self._fail(StreamError(f"stream to {self._name}: {err}"))
            return False
        return True

    # --- from the circuit -------------------------------------------------------------
    def relay_received(self, cmd: int, data: bytes) -> bool:
        match self._machine.receive(cmd, data):
            case Received(chunk):
                if chunk and not self._closed:
                    self._rbuf.append(chunk)
                    self._rlen += len(chunk)
                    self._readers.wake()
            case WindowOpened():
                self._writers.wake()
            case Opened(address, ttl):
                self._on_opened(address, ttl)
            case Ended(end):
                self._on_ended(end)
                return True
        return False

    def _on_opened(self, address: IpAddress | None, ttl: int) -> None:
        self.address, self.ttl = address, ttl
        self._rt.trace("stream-open", circ=self._port.circ_name, stream=self.stream_id,
                       target=self._name)
        if not self._opened.done():
            self._opened.set(None)

    def _on_ended(self, end: End) -> None:
        self._peer_ended = True
        if end.reason != EndReason.DONE:
            self._error = end_error(end, self._name)
        self._trace_end(_reason_name(end.reason))
        self._wake_all()

    def circuit_closed(self, error: CircuitError) -> None:
        self._fail(StreamError(f"stream to {self._name}: {error.reason}"))

    def _fail(self, error: StreamError) -> None:
        if self._error is not None or self._peer_ended:
            return
        self._error = error
        if not self._end_sent:
            self._trace_end("failed")
        self._wake_all()

    def _wake_all(self) -> None:
        if not self._opened.done():
            self._opened.fail(self._error or StreamError(
                f"stream to {self._name}: the exit ended the stream before connecting",
                end_reason=EndReason.DONE))
        self._readers.wake()
        self._writers.wake()

    def _trace_end(self, reason: str) -> None:
        self._rt.trace("stream-end", circ=self._port.circ_name, stream=self.stream_id,
                       reason=reason)

    # --- opening ----------------------------------------------------------------------
    async def wait_open(self, timeout_s: float) -> None:
        """Wait for CONNECTED; StreamError for END, a dead circuit or ``timeout_s``."""
        def expire() -> None:
            if not self._opened.done():
                self._fail(StreamError(
                    f"stream to {self._name}: no answer from the exit within {timeout_s:g} s"))
                if not self._end_sent:  # the exit may still answer: the ID goes half-closed
                    self._end()

        handle = self._rt.call_later(timeout_s, expire)
        try:
            await self._opened
        except BaseException:
            self.abort()
            raise
        finally:
            handle.cancel()


def _reason_name(reason: int) -> str:
    try:
        return EndReason(reason).name
    except ValueError:
        return str(reason)


class Resolver:
    """A RESOLVE in flight (tor-spec §6.4): the sink for its stream ID until RESOLVED."""

    def __init__(self, rt: Runtime, port: StreamPort, hostname: str) -> None:
        self._rt = rt
        self._port = port
        self._hostname = hostname
        self._machine = StreamMachine(StreamKind.RESOLVE)
        self._result: Waiter[tuple[ResolvedAnswer, ...]] = rt.waiter()

    def relay_received(self, cmd: int, data: bytes) -> bool:
        event = self._machine.receive(cmd, data)
        if self._result.done():
            return True
        if isinstance(event, ResolvedAnswers):
            self._result.set(event.answers)
        elif isinstance(event, Ended):
            self._result.fail(end_error(event.end, self._hostname))
        return True

    def circuit_closed(self, error: CircuitError) -> None:
        if not self._result.done():
            self._result.fail(StreamError(f"resolving {self._hostname}: {error.reason}"))

    def _give_up(self) -> None:
        # RESOLVED may still come; nothing exists at the exit to END.  The stream ID is
        # kept half-closed, which does not count as a stream in use.
        self._port.set_sink(self._machine.end_sent())

    async def answers(self, timeout_s: float) -> tuple[ResolvedAnswer, ...]:
        """The answers; StreamError for an error answer, END, a dead circuit or a timeout."""
        def expire() -> None:
            if not self._result.done():
                self._result.fail(StreamError(
                    f"resolving {self._hostname}: no answer within {timeout_s:g} s"))
                self._give_up()

        handle = self._rt.call_later(timeout_s, expire)
        try:
            answers = await self._result
        except Cancelled:
            if not self._result.done():
                self._give_up()
            raise
        finally:
            handle.cancel()
        errors = [a for a in answers if a.is_error]
        if errors:
            kind = "temporary" if errors[0].rtype == ResolvedType.ERROR_TRANSIENT else "permanent"
            raise StreamError(f"hostname {self._hostname} could not be resolved ({kind} error)",
                              end_reason=EndReason.RESOLVEFAILED)
        return answers
