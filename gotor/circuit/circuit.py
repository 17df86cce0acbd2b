"""The async circuit: builds a path and carries streams over it (tor-spec §5, §6).

:func:`build_circuit` (and :meth:`Circuit.create` / :meth:`Circuit.create_fast`) takes a
channel from the :class:`~gotor.link.pool.ChannelPool`, sends CREATE2 (or CREATE_FAST)
and one EXTEND2 per further hop, all under one deadline (``CircParams.build_timeout``).
The protocol itself is the sans-IO :class:`~gotor.circuit.machine.CircuitMachine`; this
driver feeds it the channel's cells (it is the channel's :class:`CircSink`), writes
what it asks, wakes whoever waits, and routes stream messages by stream ID to the
streams (:mod:`gotor.stream`) it created.

Failures close the circuit with a :class:`~gotor.errors.CircuitError` that says why
(with the relay's reason code for DESTROY and TRUNCATED); every stream on it is told,
and a DESTROY goes out unless the relay sent one or the channel is gone.  A message for
a stream ID that is neither open nor half-closed is a protocol violation (tor-spec §6.3:
after END, further cells "can be treated as a protocol violation"; C tor tolerates the
ones a half-closed stream may still receive, so do we: see
:class:`~gotor.stream.machine.HalfClosedStream`).

Timeouts: building (``build_timeout``), and per stream request (``timeout_s``).
"""

from __future__ import annotations

from collections.abc import Sequence

from gotor.cells.chan import ChanCell, DestroyReason
from gotor.cells.relay import RelayMsg, relay_cmd_name
from gotor.cells.relaymsg import Begin, BeginDir, Resolve, ResolvedAnswer
from gotor.circuit.machine import (
    CircEvent,
    CircState,
    CircuitMachine,
    Destroyed,
    HopAdded,
    SendCell,
    StreamMsg,
    TruncatedAt,
    WindowOpened,
)
from gotor.circuit.params import CircParams, HopSpec
from gotor.errors import (
    Cancelled,
    ChannelError,
    CircuitError,
    LocalError,
    ProtocolError,
    Timeout,
)
from gotor.link.channel import Channel, ChanTarget
from gotor.link.pool import ChannelPool
from gotor.runtime.api import Runtime, Waiter
from gotor.runtime.sync import Event, timeout
from gotor.stream.machine import HalfClosedStream, StreamKind
from gotor.stream.stream import Resolver, Stream, StreamSink

Hop = HopSpec | ChanTarget
STREAM_TIMEOUT = 60.0


def _reason_name(reason: int) -> str:
    try:
        return DestroyReason(reason).name
    except ValueError:
        return f"reason {reason}"


class _Port:
    """A stream's view of its circuit (the StreamPort protocol), bound to hop and ID."""

    __slots__ = ("_circ", "circ_name", "hop", "stream_id")

    def __init__(self, circ: Circuit, hop: int, stream_id: int) -> None:
        self._circ = circ
        self.hop = hop
        self.stream_id = stream_id
        self.circ_name = circ.name

    def send(self, msg: RelayMsg) -> None:
        self._circ._send_relay(self.hop, self.stream_id, msg)

    def can_package(self) -> bool:
        return self._circ._machine.can_package(self.hop)

    async def wait_package(self) -> None:
        await self._circ._wait_package(self.hop)

    async def flush(self) -> None:
        await self._circ._flush()

    def set_sink(self, sink: StreamSink) -> None:
        self._circ._set_sink(self.stream_id, self.hop, sink)


class Circuit:
    """A client circuit.  Build with :func:`build_circuit`, :meth:`create`, :meth:`create_fast`."""

    def __init__(self, rt: Runtime, channel: Channel, params: CircParams, first: Hop) -> None:
        self._rt = rt
        self._channel = channel
        self.params = params
        self.circ_id = channel.open_circuit_slot(self)
        self.name = f"{channel.target.name[:8]}.{self.circ_id:08x}"
        self._machine = CircuitMachine(self.circ_id, params, rt.random_bytes)
        self._requested: list[Hop] = [first]
        self._pending: Waiter[None] | None = None
        self._streams: dict[int, tuple[int, StreamSink]] = {}
        self._next_stream_id = rt.rng.randint(1, 0xFFFF)
        # One wake-up per hop: a SENDME from one hop must not be taken (and the event
        # cleared) by a writer that waits for another hop's window.
        self._window_opened: dict[int, Event] = {}
        self._error: CircuitError | None = None

    # --- building ---------------------------------------------------------------------
    @classmethod
    async def create(cls, rt: Runtime, pool: ChannelPool, first: HopSpec,
                     params: CircParams) -> Circuit:
        """A one-hop circuit with CREATE2 (ntor-v3 if the relay has it, else ntor)."""
        return await build_circuit(rt, pool, [first], params)

    @classmethod
    async def create_fast(cls, rt: Runtime, pool: ChannelPool, target: ChanTarget,
                          params: CircParams) -> Circuit:
        """A one-hop directory circuit with CREATE_FAST (tor-spec §5.1.5)."""
        return await _build(rt, pool, target, (), params)

    async def extend(self, hop: HopSpec) -> None:
        """EXTEND2 to ``hop`` within ``build_timeout``; CircuitError on failure."""
        try:
            await timeout(self._rt, self.params.build_timeout, self._extend(hop),
                          what="circuit extension")
        except Timeout:
            err = CircuitError(f"circuit {self.name}: extending to {hop.name} timed out")
            self._fail(err, send_destroy=True)
            raise err from None
        except Cancelled:
            if self._machine.state is CircState.EXTENDING:
                # Half extended, it could take no stream and no other extension.
                self.close(f"extension to {hop.name} abandoned")
            raise

    async def _create(self, first: Hop) -> None:
        if isinstance(first, HopSpec):
            cell = self._machine.create_cell(first)
        else:
            cell = self._machine.create_fast_cell()
        await self._await_hop(cell)

    async def _extend(self, hop: HopSpec) -> None:
        self._check_usable()
        if self._pending is not None:
            raise LocalError("the circuit is already being extended")
        try:
            cell = self._machine.extend_cell(hop)
        except LocalError as err:
            raise CircuitError(f"circuit {self.name}: cannot extend: {err}") from err
        self._requested.append(hop)
        await self._await_hop(cell)

    async def _await_hop(self, cell: ChanCell) -> None:
        self._pending = waiter = self._rt.waiter()
        try:
            self._write(cell)
            await self._flush()
            await waiter
        finally:
            self._pending = None

    # --- state ------------------------------------------------------------------------
    @property
    def hops(self) -> tuple[Hop, ...]:
        """The hops built so far (a ChanTarget for a CREATE_FAST hop)."""
        return tuple(self._requested[: self._machine.n_hops])

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def closed(self) -> bool:
        return self._error is not None

    @property
    def close_reason(self) -> str | None:
        return None if self._error is None else self._error.reason

    @property
    def n_streams(self) -> int:
        return len(self._streams)

    @property
    def n_active_streams(self) -> int:
        """Streams in use: those we ended and only keep for late cells do not count."""
        return sum(1 for _, sink in self._streams.values()
                   if not isinstance(sink, HalfClosedStream))

    def _check_usable(self) -> None:
        if self._error is not None:
            raise CircuitError(self._error.reason, self._error.destroy_reason)
        if self._machine.state is not CircState.OPEN:
            raise LocalError(f"circuit {self.name} is not built")

    # --- streams ----------------------------------------------------------------------
    async def open_stream(self, host: str, port: int, flags: int = 0, *,
                          timeout_s: float = STREAM_TIMEOUT) -> Stream:
        """BEGIN to ``host:port``: a hostname (never resolved here), an IPv4 address or an
        IPv6 address (brackets optional); ``flags`` are BeginFlags (tor-spec §6.2)."""
        address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        begin = Begin(address.lower(), port, flags)
        begin.encode()  # LocalError for an unencodable target, before anything is sent
        return await self._open(StreamKind.CONNECT, (host, port), begin, timeout_s)

    async def open_dir_stream(self, *, timeout_s: float = STREAM_TIMEOUT) -> Stream:
        """BEGIN_DIR: a stream to the last hop's directory service (tor-spec §6.2.1)."""
        return await self._open(StreamKind.DIR, (self.hops[-1].name, 0), BeginDir(),
                                timeout_s)

    async def _open(self, kind: StreamKind, target: tuple[str, int], msg: RelayMsg,
                    timeout_s: float) -> Stream:
        self._check_usable()
        port = self._new_port()
        stream = Stream(self._rt, port, kind, target)
        self._streams[port.stream_id] = (port.hop, stream)
        try:
            port.send(msg)
        except CircuitError as err:
            stream.circuit_closed(err)
        await stream.wait_open(timeout_s)
        return stream

    async def resolve(self, hostname: str, *,
                      timeout_s: float = STREAM_TIMEOUT) -> list[ResolvedAnswer]:
        """RESOLVE ``hostname`` at the exit (tor-spec §6.4); StreamError if it fails."""
        request = Resolve(hostname.lower())
        request.encode()
        self._check_usable()
        port = self._new_port()
        resolver = Resolver(self._rt, port, hostname)
        self._streams[port.stream_id] = (port.hop, resolver)
        try:
            port.send(request)
        except CircuitError as err:
            resolver.circuit_closed(err)
        return list(await resolver.answers(timeout_s))

    def _new_port(self) -> _Port:
        for _ in range(0xFFFF):
            sid = self._next_stream_id
            self._next_stream_id = sid % 0xFFFF + 1
            if sid not in self._streams:
                return _Port(self, self._machine.n_hops - 1, sid)
        raise CircuitError(f"circuit {self.name}: no free stream ID")

    def _set_sink(self, stream_id: int, hop: int, sink: StreamSink) -> None:
        if self._error is None:
            self._streams[stream_id] = (hop, sink)

    # --- sending ----------------------------------------------------------------------
    def _send_relay(self, hop: int, stream_id: int, msg: RelayMsg) -> None:
        if self._error is not None:
            raise CircuitError(self._error.reason, self._error.destroy_reason)
        self._write(self._machine.relay_cell(hop, stream_id, msg))

    def _write(self, cell: ChanCell) -> None:
        try:
            self._channel.write_cell(cell)
        except ChannelError as err:
            self._fail(CircuitError(f"circuit {self.name}: {err}"), send_destroy=False)
            raise CircuitError(f"circuit {self.name}: {err}") from err

    async def _flush(self) -> None:
        try:
            await self._channel.drain()
        except ChannelError as err:
            self._fail(CircuitError(f"circuit {self.name}: {err}"), send_destroy=False)
            raise CircuitError(f"circuit {self.name}: {err}") from err

    async def _wait_package(self, hop: int) -> None:
        while self._error is None and not self._machine.can_package(hop):
            opened = self._window_opened.setdefault(hop, Event(self._rt))
            opened.clear()
            await opened.wait()
        if self._error is not None:
            raise CircuitError(self._error.reason, self._error.destroy_reason)

    # --- receiving (CircSink) ---------------------------------------------------------
    def cell_received(self, cell: ChanCell) -> None:
        if self._error is not None:
            return
        try:
            for event in self._machine.handle_cell(cell):
                if self._error is not None:
                    break
                self._apply(event)
        except ProtocolError as err:
            self._fail(CircuitError(f"circuit {self.name}: protocol violation: {err.reason}"),
                       send_destroy=True)

    def _apply(self, event: CircEvent) -> None:
        match event:
            case StreamMsg(hop, stream_id, cmd, data):
                self._route(hop, stream_id, cmd, data)
            case SendCell(cell):
                try:
                    self._write(cell)
                except CircuitError:
                    pass  # the channel failed: _write closed the circuit and told everyone
            case WindowOpened(hop):
                opened = self._window_opened.get(hop)
                if opened is not None:
                    opened.set()
            case HopAdded():
                if self._pending is not None and not self._pending.done():
                    self._pending.set(None)
            case Destroyed(reason):
                self._fail(CircuitError(
                    f"circuit {self.name} destroyed by the relay ({_reason_name(reason)})",
                    reason), send_destroy=False)
            case TruncatedAt(hop, reason):
                # tor-spec §5.4: clients do not reuse truncated circuits; DESTROY the rest.
                self._fail(CircuitError(
                    f"circuit {self.name} truncated at hop {hop + 1} ({_reason_name(reason)})",
                    reason), send_destroy=True)

    def _route(self, hop: int, stream_id: int, cmd: int, data: bytes) -> None:
        entry = self._streams.get(stream_id)
        if entry is None:
            raise ProtocolError(f"{relay_cmd_name(cmd)} for unknown stream {stream_id}")
        stream_hop, sink = entry
        if hop != stream_hop:
            raise ProtocolError(f"{relay_cmd_name(cmd)} for stream {stream_id} from hop "
                                f"{hop + 1}, not hop {stream_hop + 1}")
        if sink.relay_received(cmd, data) and self._streams.get(stream_id) is entry:
            del self._streams[stream_id]

    def channel_closed(self, reason: str) -> None:
        self._fail(CircuitError(f"circuit {self.name}: channel closed: {reason}"),
                   send_destroy=False)

    # --- closing ----------------------------------------------------------------------
    def close(self, reason: str = "closed") -> None:
        """Close the circuit: DESTROY goes out, every stream is told."""
        self._fail(CircuitError(f"circuit {self.name} closed: {reason}"), send_destroy=True)

    def _fail(self, error: CircuitError, *, send_destroy: bool) -> None:
        if self._error is not None:
            return
        self._error = error
        if send_destroy and not self._channel.closed and self._machine.state is not CircState.NEW:
            try:
                self._channel.write_cell(self._machine.destroy_cell())
            except ChannelError:
                pass  # the channel died meanwhile: the relay drops the circuit anyway
        self._machine.close()
        self._channel.release(self.circ_id)
        if self._pending is not None and not self._pending.done():
            self._pending.fail(error)
        for opened in self._window_opened.values():
            opened.set()
        streams, self._streams = self._streams, {}
        for _hop, sink in streams.values():
            sink.circuit_closed(error)
        self._rt.trace("circ-closed", circ=self.name, reason=error.reason)


async def build_circuit(rt: Runtime, pool: ChannelPool, path: Sequence[HopSpec],
                        params: CircParams) -> Circuit:
    """Create a circuit through ``path`` (CREATE2, then EXTEND2s), all within one deadline.

    Raises ChannelError if the first hop cannot be reached, CircuitError otherwise.
    """
    if not path:
        raise LocalError("a circuit needs at least one hop")
    return await _build(rt, pool, path[0], tuple(path[1:]), params)


async def _build(rt: Runtime, pool: ChannelPool, first: Hop, rest: tuple[HopSpec, ...],
                 params: CircParams) -> Circuit:
    made: list[Circuit] = []

    async def run() -> Circuit:
        target = first.chan_target() if isinstance(first, HopSpec) else first
        circ = Circuit(rt, await pool.get(target), params, first)
        made.append(circ)
        await circ._create(first)
        for hop in rest:
            await circ._extend(hop)
        return circ

    try:
        circ = await timeout(rt, params.build_timeout, run(), what="circuit build")
    except Timeout:
        err = CircuitError(f"circuit build timed out after {params.build_timeout:g} s",
                           failed_hop=_hops_built(made))
        if made:
            made[0]._fail(err, send_destroy=True)
        raise err from None
    except CircuitError as err:
        if made:
            made[0].close("build abandoned")
        raise CircuitError(err.reason, err.destroy_reason,
                           failed_hop=_hops_built(made)) from err
    except BaseException:
        if made:
            made[0].close("build abandoned")
        raise
    rt.trace("circ-built", circ=circ.name, hops=[hop.name for hop in circ.hops])
    return circ


def _hops_built(made: list[Circuit]) -> int:
    """How many hops a failed build had completed: the index of the hop that failed."""
    return made[0]._machine.n_hops if made else 0
