"""Channels: a TLS connection to one relay, after the link handshake (tor-spec §2-§4, §5.1.1).

:meth:`Channel.connect` opens TLS through the runtime, runs the sans-IO
:class:`~gotor.link.handshake.InitiatorHandshake` and returns an open channel.  An open
channel has one reader task that frames cells with :class:`~gotor.cells.codec.ChannelCodec`
and hands each circuit's cells to its :class:`CircSink`.

Rules it applies (tor-spec §3-§5):

* circuit IDs are ours to choose: random from ``rt.rng``, MSB set (we initiated the
  connection, link protocol >= 4, §5.1.1), never one that is in use;
* PADDING, VPADDING, PADDING_NEGOTIATE and late VERSIONS cells are ignored (§4.1, §7.2);
  handshake cells (CERTS, AUTH_CHALLENGE, NETINFO, ...) on an open channel, and circuit
  cells on circuit ID 0, are protocol violations that close the channel; cells of
  unknown commands are dropped (§3);
* a cell for a circuit ID we do not have is dropped, with a trace event (§5.5.1);
  CREATE* cells are dropped too: a client accepts no circuits.

Every way a channel ends (local :meth:`Channel.close`, EOF, reset, protocol violation)
tells every registered sink once, with the reason.  Writes go through
:meth:`Channel.write_cell` (queued in order, coalesced into one TLS write per turn of
the event loop) and :meth:`Channel.drain` (flush, then wait for the TLS stream's buffer
to empty below its high-water mark: backpressure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Protocol

from gotor.cells.chan import ChanCell, ChanCmd
from gotor.cells.common import IpAddress
from gotor.crypto.linkcerts import ResponderIdentity
from gotor.errors import (
    Cancelled,
    ChannelError,
    LocalError,
    NetworkError,
    ProtocolError,
    Timeout,
)
from gotor.link.handshake import HandshakeResult, InitiatorHandshake, cmd_name
from gotor.runtime.api import ByteStream, Runtime, Task
from gotor.runtime.sync import timeout, wait_finished

READ_SIZE = 65536
#: Giving up on finding a free circuit ID after this many random draws (tor-spec §5.1.1).
CIRC_ID_ATTEMPTS = 64
_MSB = 0x8000_0000

_IGNORED = frozenset(
    {ChanCmd.PADDING, ChanCmd.VPADDING, ChanCmd.VERSIONS, ChanCmd.PADDING_NEGOTIATE}
)
_CIRCUIT = frozenset(
    {ChanCmd.RELAY, ChanCmd.RELAY_EARLY, ChanCmd.DESTROY, ChanCmd.CREATED,
     ChanCmd.CREATED2, ChanCmd.CREATED_FAST}
)
_CREATE = frozenset({ChanCmd.CREATE, ChanCmd.CREATE2, ChanCmd.CREATE_FAST})
_HANDSHAKE = frozenset(
    {ChanCmd.CERTS, ChanCmd.AUTH_CHALLENGE, ChanCmd.AUTHENTICATE, ChanCmd.AUTHORIZE,
     ChanCmd.NETINFO}
)


@dataclass(frozen=True)
class ChanTarget:
    """Where and whom to connect: the handshake must prove ``rsa_id`` (and ``ed_id`` if given)."""

    host: str
    port: int
    rsa_id: bytes
    ed_id: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.rsa_id) != 20 or (self.ed_id is not None and len(self.ed_id) != 32):
            raise LocalError("a ChanTarget needs a 20-byte RSA id and a 32-byte Ed25519 id")

    @property
    def name(self) -> str:
        """The relay's RSA fingerprint in hex, as traces and messages show it."""
        return self.rsa_id.hex().upper()


class CircSink(Protocol):
    """What a channel needs from a circuit: implemented by circuits."""

    def cell_received(self, cell: ChanCell) -> None:
        """A cell for this circuit (called from the channel's reader task; must not block)."""
        ...

    def channel_closed(self, reason: str) -> None:
        """The channel is gone; no more cells will come or go."""
        ...


def _peer_ip(stream: ByteStream) -> IpAddress | None:
    try:
        return ip_address(stream.peer[0].strip("[]"))
    except ValueError:
        return None


class Channel:
    """An open channel to one relay.  Build with :meth:`connect`."""

    def __init__(self, rt: Runtime, stream: ByteStream, target: ChanTarget,
                 hs: InitiatorHandshake) -> None:
        result: HandshakeResult = hs.result
        self._rt = rt
        self._stream = stream
        self._codec = hs.codec
        self.target = target
        self.link_version: int = result.link_version
        self.identity: ResponderIdentity = result.identity
        self.clock_skew: float | None = result.clock_skew
        self.our_address: IpAddress | None = result.our_address
        self._sinks: dict[int, CircSink] = {}
        self._on_close: list[Callable[[Channel], None]] = []
        self._close_reason: str | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        # True while the reader task runs a sink's callback: a close from there must
        # not cancel the reader (it stops by itself once it sees the channel closed).
        self._dispatching = False
        self._closer: Task[None] | None = None  # the graceful TLS close, once closed
        rt.trace("chan-open", relay=target.name, link=self.link_version)
        self._reader: Task[None] = rt.spawn(self._read_loop(bytearray(hs.leftover())),
                                            name=f"chan-reader {target.name[:8]}")

    # --- opening ----------------------------------------------------------------------
    @classmethod
    async def connect(cls, rt: Runtime, target: ChanTarget, *,
                      timeout_s: float = 30.0) -> Channel:
        """TLS to ``target`` and the link handshake, within ``timeout_s`` seconds.

        Raises :class:`ChannelError` for every failure (unreachable, TLS, handshake,
        wrong identity, timeout).
        """
        try:
            return await timeout(rt, timeout_s, cls._open(rt, target),
                                 what=f"channel to {target.host}:{target.port}",
                                 discard=lambda chan: chan.close("opened for nobody"))
        except Timeout:
            raise ChannelError(
                f"link handshake with {target.host}:{target.port} timed out after "
                f"{timeout_s:g} s"
            ) from None

    @classmethod
    async def _open(cls, rt: Runtime, target: ChanTarget) -> Channel:
        try:
            stream = await rt.connect(target.host, target.port, tls=True)
        except NetworkError as err:
            raise ChannelError(f"cannot connect to {target.host}:{target.port}: {err}") from err
        try:
            hs = await cls._handshake(rt, stream, target)
        except BaseException:
            stream.abort()
            raise
        return cls(rt, stream, target, hs)

    @staticmethod
    async def _handshake(rt: Runtime, stream: ByteStream, target: ChanTarget
                         ) -> InitiatorHandshake:
        cert = getattr(stream, "peer_cert_der", lambda: None)()
        if not cert:
            raise ChannelError(f"{target.host}:{target.port} presented no TLS certificate")
        hs = InitiatorHandshake(expected_rsa_id=target.rsa_id, expected_ed_id=target.ed_id,
                                tls_cert_der=cert, peer_ip=_peer_ip(stream))
        try:
            stream.write(hs.initial_bytes())
            await stream.drain()
            while not hs.done:
                data = await stream.read(READ_SIZE)
                if not data:
                    raise hs.eof()
                reply = hs.receive(data, rt.wallclock())
                if reply:
                    stream.write(reply)
                    await stream.drain()
        except NetworkError as err:
            if isinstance(err, ChannelError):
                raise
            raise ChannelError(f"link handshake with {target.host}:{target.port}: {err}") from err
        return hs

    # --- circuits ---------------------------------------------------------------------
    @property
    def peer_rsa_id(self) -> bytes:
        return self.identity.rsa_identity

    @property
    def peer_ed_id(self) -> bytes:
        return self.identity.ed25519_identity

    @property
    def closed(self) -> bool:
        return self._close_reason is not None

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def n_circuits(self) -> int:
        return len(self._sinks)

    def open_circuit_slot(self, sink: CircSink) -> int:
        """Allocate a fresh circuit ID for ``sink`` (random, MSB set: tor-spec §5.1.1)."""
        self._check_open()
        for _ in range(CIRC_ID_ATTEMPTS):
            circ_id = _MSB | self._rt.rng.getrandbits(31)
            if circ_id not in self._sinks:
                self._sinks[circ_id] = sink
                return circ_id
        raise ChannelError(f"no free circuit ID on the channel to {self.target.name}")

    def release(self, circ_id: int) -> None:
        """Forget a circuit; later cells for its ID are dropped."""
        self._sinks.pop(circ_id, None)

    def on_close(self, callback: Callable[[Channel], None]) -> None:
        """Call ``callback(channel)`` once the channel closes (at once if it has)."""
        if self.closed:
            callback(self)
        else:
            self._on_close.append(callback)

    # --- writing ----------------------------------------------------------------------
    def write_cell(self, cell: ChanCell) -> None:
        """Queue one cell for the wire, in call order (never blocks).

        Cells written in one turn of the event loop go out in one write (one TLS record
        when they fit), flushed as soon as the writer yields or calls :meth:`drain`.
        """
        self._check_open()
        self._out.append(self._codec.encode(cell))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._rt.call_later(0, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._close_reason is not None:
            return
        data = b"".join(self._out)
        self._out.clear()
        try:
            self._stream.write(data)
        except NetworkError as err:
            self._shutdown(f"write failed: {err}", graceful=False)

    async def drain(self) -> None:
        """Flush, then wait until the TLS stream has room (backpressure).

        ChannelError if the channel is (or becomes) closed.
        """
        self._flush()
        self._check_open()
        try:
            await self._stream.drain()
        except NetworkError as err:
            self._shutdown(f"write failed: {err}", graceful=False)
        self._check_open()

    async def send(self, cell: ChanCell) -> None:
        """:meth:`write_cell` then :meth:`drain`."""
        self.write_cell(cell)
        await self.drain()

    def _check_open(self) -> None:
        if self._close_reason is not None:
            raise ChannelError(f"channel to {self.target.name} is closed: {self._close_reason}")

    # --- closing ----------------------------------------------------------------------
    def close(self, reason: str = "closed") -> None:
        """Close the channel; every circuit on it is told ``reason``."""
        self._shutdown(reason, graceful=True)

    def _shutdown(self, reason: str, *, graceful: bool) -> None:
        if self._close_reason is not None:
            return
        self._close_reason = reason
        self._rt.trace("chan-close", relay=self.target.name, reason=reason)
        if not self._dispatching and not self._reader.done():
            self._reader.cancel("channel closed")
        if graceful:
            if self._out:  # e.g. the DESTROYs of the circuits just closed
                pending = b"".join(self._out)
                self._out.clear()
                try:
                    self._stream.write(pending)
                except NetworkError:
                    pass
            self._closer = self._rt.spawn(self._close_stream(),
                                          name=f"chan-close {self.target.name[:8]}")
        else:
            self._out.clear()
            self._stream.abort()
        sinks, self._sinks = self._sinks, {}
        for sink in sinks.values():
            sink.channel_closed(reason)
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback(self)

    async def wait_closed(self) -> None:
        """After :meth:`close`: wait until the channel's own tasks (its reader, the TLS
        close) have ended, so that nothing of it outlives its owner."""
        await wait_finished(self._rt, [t for t in (self._reader, self._closer) if t is not None])

    async def _close_stream(self) -> None:
        try:
            await self._stream.aclose()
        except NetworkError:
            self._stream.abort()

    # --- reading ----------------------------------------------------------------------
    async def _read_loop(self, buf: bytearray) -> None:
        """Decode and dispatch cells until the channel ends; then close it with the reason."""
        try:
            reason = await self._read_cells(buf)
        except ProtocolError as err:
            reason = f"protocol violation: {err.reason}"
        except NetworkError as err:
            reason = f"connection failed: {err}"
        except Cancelled:
            return  # closed locally
        except BaseException as err:
            # A bug (in a circuit's cell handling, say): end the channel so that no
            # circuit on it waits for ever, and let the runtime report the error.
            self._shutdown(f"internal error: {err!r}", graceful=False)
            raise
        self._shutdown(reason, graceful=False)

    async def _read_cells(self, buf: bytearray) -> str:
        decode, dispatch, stream = self._codec.decode, self._dispatch, self._stream
        while True:
            while (cell := decode(buf)) is not None:
                self._dispatching = True
                try:
                    dispatch(cell)
                finally:
                    self._dispatching = False
                if self._close_reason is not None:
                    return self._close_reason
            # Every complete cell is taken off before the next read, so the buffer holds
            # at most one incomplete cell (<= 4 + 1 + 2 + 65535 bytes) plus one read.
            data = await stream.read(READ_SIZE)
            if not data:
                return "connection closed by the relay" + (
                    " in the middle of a cell" if buf else "")
            buf += data

    def _dispatch(self, cell: ChanCell) -> None:
        cmd = cell.cmd
        if cmd in _CIRCUIT:
            if cell.circ_id == 0:
                raise ProtocolError(f"{cmd_name(cmd)} cell on circuit ID 0")
            sink = self._sinks.get(cell.circ_id)
            if sink is None:
                self._rt.trace("chan-drop", relay=self.target.name, cmd=cmd_name(cmd),
                               circ=cell.circ_id)
            else:
                sink.cell_received(cell)
        elif cmd in _IGNORED:
            return
        elif cmd in _HANDSHAKE:
            raise ProtocolError(f"{cmd_name(cmd)} cell on an open channel")
        elif cmd in _CREATE:
            self._rt.trace("chan-drop", relay=self.target.name, cmd=cmd_name(cmd),
                           circ=cell.circ_id)
        # Anything else is a command we do not know: dropped (tor-spec §3).
