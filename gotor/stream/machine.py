"""One stream's protocol state, sans-IO (tor-spec §6.2-§6.4, §7.4).

:class:`StreamMachine` checks what the exit sends on a stream against the stream's state
and keeps its windows; :class:`HalfClosedStream` is what remains once we have sent END.
Both take relay messages as ``(command, data)`` and decode them themselves, so that the
circuit need not know what a stream's messages mean.

States and the commands the exit may send in each (transitions as data, ``_ALLOWED``):

==========  =========================  =========================================
state       entered by                 accepted
==========  =========================  =========================================
OPENING     we sent BEGIN / BEGIN_DIR  CONNECTED -> OPEN, END -> CLOSED
RESOLVING   we sent RESOLVE            RESOLVED -> CLOSED, END -> CLOSED
OPEN        CONNECTED                  DATA, SENDME, END -> CLOSED
CLOSED      END either way             (the circuit routes nothing here any more)
==========  =========================  =========================================

Anything else (DATA before CONNECTED, XON/XOFF without negotiated flow control,
proposal 324) is a ProtocolError, which closes the circuit.

Windows (tor-spec §7.4): 500 cells each way, SENDMEs add 50.  A DATA cell beyond the
deliver window, or a SENDME that would open the package window beyond 500, is a
protocol violation (C tor: "Unexpected stream sendme").  We owe the exit a SENDME when
our deliver window is at or below 450 *and* the application has read all but at most
ten cells' worth (:data:`UNREAD_LIMIT`) of what arrived: that is how a reader that stops
reading stops the exit (C tor's ``sendme_connection_edge_consider_sending``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from gotor.cells.common import IpAddress
from gotor.cells.relay import RELAY_DATA_MAX, RelayCmd, relay_cmd_name
from gotor.cells.relaymsg import Connected, End, Resolved, ResolvedAnswer
from gotor.errors import LocalError, ProtocolError

STREAM_WINDOW = 500
STREAM_INCREMENT = 50
#: Stream SENDMEs wait while more than ten cells of data are unread (C tor's outbuf check).
UNREAD_LIMIT = 10 * RELAY_DATA_MAX


class StreamKind(Enum):
    CONNECT = auto()  # BEGIN
    DIR = auto()  # BEGIN_DIR: CONNECTED's body is ignored (tor-spec §6.2.1)
    RESOLVE = auto()  # RESOLVE: no stream is created at the exit (§6.4)


class StreamState(Enum):
    OPENING = auto()
    RESOLVING = auto()
    OPEN = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Opened:
    """CONNECTED: the address the exit connected to and its TTL, when it said."""

    address: IpAddress | None
    ttl: int


@dataclass(frozen=True, slots=True)
class Received:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ended:
    end: End


@dataclass(frozen=True, slots=True)
class ResolvedAnswers:
    answers: tuple[ResolvedAnswer, ...]


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """A stream SENDME: more DATA may be packaged."""


StreamEvent = Opened | Received | Ended | ResolvedAnswers | WindowOpened

_ALLOWED: dict[StreamState, frozenset[int]] = {
    StreamState.OPENING: frozenset({RelayCmd.CONNECTED, RelayCmd.END}),
    StreamState.RESOLVING: frozenset({RelayCmd.RESOLVED, RelayCmd.END}),
    StreamState.OPEN: frozenset({RelayCmd.DATA, RelayCmd.SENDME, RelayCmd.END}),
    StreamState.CLOSED: frozenset(),
}
_DATA = int(RelayCmd.DATA)


class StreamMachine:
    """The protocol state of one stream (see the module docstring)."""

    __slots__ = ("_handlers", "deliver", "kind", "package", "state")

    def __init__(self, kind: StreamKind) -> None:
        self.kind = kind
        self.state = StreamState.RESOLVING if kind is StreamKind.RESOLVE else StreamState.OPENING
        self.package = STREAM_WINDOW
        self.deliver = STREAM_WINDOW
        self._handlers: dict[int, Callable[[bytes], StreamEvent]] = {
            RelayCmd.CONNECTED: self._on_connected,
            RelayCmd.DATA: self._on_data,
            RelayCmd.SENDME: self._on_sendme,
            RelayCmd.END: self._on_end,
            RelayCmd.RESOLVED: self._on_resolved,
        }

    def receive(self, cmd: int, data: bytes) -> StreamEvent:
        """Check and apply one message from the exit; ProtocolError if not acceptable now."""
        if cmd == _DATA and self.state is StreamState.OPEN:  # the hot path first
            return self._on_data(data)
        if cmd not in _ALLOWED[self.state]:
            raise ProtocolError(f"unexpected {relay_cmd_name(cmd)} on a stream in state {self.state.name}")
        return self._handlers[cmd](data)

    def _on_connected(self, data: bytes) -> StreamEvent:
        self.state = StreamState.OPEN
        if self.kind is StreamKind.DIR:
            return Opened(None, 0)  # tor-spec §6.2.1: clients MUST ignore the payload
        msg = Connected.decode(data)
        return Opened(msg.address, msg.ttl)

    def _on_data(self, data: bytes) -> StreamEvent:
        if self.deliver <= 0:
            raise ProtocolError("DATA beyond the stream's deliver window")
        self.deliver -= 1
        return Received(data)

    def _on_sendme(self, data: bytes) -> StreamEvent:
        # Stream SENDMEs are unauthenticated and their body is ignored (tor-spec §7.4).
        if self.package + STREAM_INCREMENT > STREAM_WINDOW:
            raise ProtocolError("unexpected stream SENDME (window would exceed 500)")
        self.package += STREAM_INCREMENT
        return WindowOpened()

    def _on_end(self, data: bytes) -> StreamEvent:
        self.state = StreamState.CLOSED
        return Ended(End.decode(data))

    def _on_resolved(self, data: bytes) -> StreamEvent:
        self.state = StreamState.CLOSED
        return ResolvedAnswers(Resolved.decode(data).answers)

    # --- our side ---------------------------------------------------------------------
    def can_package(self) -> bool:
        return self.package > 0

    def note_data_sent(self) -> None:
        if self.state is not StreamState.OPEN or self.package <= 0:
            raise LocalError("DATA on a stream that is not open or has no package window")
        self.package -= 1

    def sendmes_owed(self, unread: int) -> int:
        """How many stream SENDMEs to send now that ``unread`` bytes await the application.

        The deliver window is credited for each one (tor-spec §7.4).
        """
        if unread > UNREAD_LIMIT or self.state is not StreamState.OPEN:
            return 0
        owed = 0
        while self.deliver <= STREAM_WINDOW - STREAM_INCREMENT:
            self.deliver += STREAM_INCREMENT
            owed += 1
        return owed

    def end_sent(self) -> HalfClosedStream:
        """We sent END: the machine closes; the returned tracker judges late cells."""
        half = HalfClosedStream(
            connected_pending=self.state is StreamState.OPENING,
            resolved_pending=self.state is StreamState.RESOLVING,
            data_left=self.deliver if self.state is not StreamState.RESOLVING else 0,
            sendmes_left=(STREAM_WINDOW - self.package) // STREAM_INCREMENT,
        )
        self.state = StreamState.CLOSED
        return half


class HalfClosedStream:
    """A stream we ended that the exit may not know about yet (tor-spec §6.3).

    "After sending a RELAY_END cell, the sender ... SHOULD remember how many cells of
    which types (CONNECTED, SENDME, DATA) it would have accepted on that stream, and
    SHOULD kill the circuit if it receives more than permitted."  As C tor's half-closed
    edges: CONNECTED once if we were still waiting for it, as many DATA cells as the
    deliver window allowed (none for a RESOLVE), as many SENDMEs as our DATA earned;
    END (or RESOLVED, for a RESOLVE) makes the stream ID free again.

    It has the stream sink interface, so the circuit routes late cells to it.
    """

    __slots__ = ("connected_pending", "data_left", "resolved_pending", "sendmes_left")

    def __init__(self, *, connected_pending: bool, resolved_pending: bool, data_left: int,
                 sendmes_left: int) -> None:
        self.connected_pending = connected_pending
        self.resolved_pending = resolved_pending
        self.data_left = data_left
        self.sendmes_left = sendmes_left

    def relay_received(self, cmd: int, data: bytes) -> bool:
        """Judge a late message; True when the stream ID can be forgotten."""
        if cmd == RelayCmd.END or (cmd == RelayCmd.RESOLVED and self.resolved_pending):
            return True
        if cmd == RelayCmd.DATA and self.data_left > 0:
            self.data_left -= 1
        elif cmd == RelayCmd.SENDME and self.sendmes_left > 0:
            self.sendmes_left -= 1
        elif cmd == RelayCmd.CONNECTED and self.connected_pending:
            self.connected_pending = False
        else:
            raise ProtocolError(f"{relay_cmd_name(cmd)} on a closed stream beyond what it could owe")
        return False

    def circuit_closed(self, error: object) -> None:
        """Nothing waits on a half-closed stream."""
