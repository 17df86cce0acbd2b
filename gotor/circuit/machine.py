"""The client's circuit as a sans-IO machine (tor-spec §5-§7).

:class:`CircuitMachine` holds one circuit's state: its hops' relay crypto
(:class:`~gotor.crypto.relaycrypto.ClientCircuitCrypto`), the handshake in flight,
per-hop windows (:mod:`gotor.circuit.sendme`) and the RELAY_EARLY budget.  It makes the
cells to send (``create_cell``, ``extend_cell``, ``relay_cell``, ``destroy_cell``) and
turns each received channel cell into events (``handle_cell``).  It never waits and
never touches the channel: the async :class:`~gotor.circuit.circuit.Circuit` does.

States and what each accepts (transitions as data, ``_CHAN_ALLOWED`` / ``_CONTROL_ALLOWED``):

=========  ========================================  ==================================
state      channel cells                             circuit-level relay commands
=========  ========================================  ==================================
NEW        none                                      -
CREATING   CREATED2 or CREATED_FAST (as sent),       -
           DESTROY
OPEN       RELAY, DESTROY                            SENDME, DROP, TRUNCATED
EXTENDING  RELAY, DESTROY                            SENDME, DROP, TRUNCATED, EXTENDED2
CLOSED     everything ignored (tor-spec §5.4)        -
=========  ========================================  ==================================

Relay cells carrying a stream ID become :class:`StreamMsg` events if their command is a
stream command the relay may send (DATA, END, CONNECTED, SENDME, RESOLVED, XON, XOFF);
which stream IDs exist is the driver's business.  Unrecognized relay commands are
dropped after their digest counted (tor-spec §6.1).  Everything else is a
:class:`~gotor.errors.ProtocolError` (the driver then closes the circuit): an inbound
RELAY_EARLY (§5.6 "MUST close the circuit immediately"), a cell no hop recognizes
(§5.5.3), a command that only clients send, a stream command on stream 0 (§6.1), a
circuit command with a stream ID, EXTENDED2 when not extending, a bad SENDME (§7.3).

RELAY_EARLY (tor-spec §5.6): EXTEND2 always travels in one; like C tor, so does every
cell for a hop beyond the first while the budget of 8 per circuit lasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason
from gotor.cells.chanmsg import Create2, Created2, CreatedFast, CreateFast, Destroy
from gotor.cells.relay import (
    PADDING_ZERO_PREFIX,
    RELAY_DATA_MAX,
    RelayCmd,
    RelayMsg,
    decode_relay_payload,
    encode_relay_payload,
    relay_cmd_name,
)
from gotor.cells.relaymsg import (
    Extend2,
    Extended2,
    Sendme,
    Truncated,
    Unrecognized,
    decode_relay_msg,
)
from gotor.circuit.handshake import (
    CREATE_FAST,
    PendingHandshake,
    RandomBytes,
    start_fast,
    start_for_hop,
)
from gotor.circuit.params import CircParams, HopSpec
from gotor.circuit.sendme import HopWindows
from gotor.crypto.relaycrypto import ClientCircuitCrypto
from gotor.errors import LocalError, ProtocolError
from gotor.link.handshake import cmd_name

#: tor-spec §5.6: relays close a circuit after more than 8 RELAY_EARLY cells.
MAX_RELAY_EARLY = 8


class CircState(Enum):
    NEW = auto()
    CREATING = auto()
    OPEN = auto()
    EXTENDING = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class HopAdded:
    """CREATED*/EXTENDED2 completed the handshake: hop ``hop`` (0-based) is usable."""

    hop: int


@dataclass(frozen=True, slots=True)
class StreamMsg:
    """A stream-level relay message from hop ``hop``, undecoded (the stream decodes it)."""

    hop: int
    stream_id: int
    cmd: int
    data: bytes


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """A valid circuit SENDME from ``hop`` opened its package window."""

    hop: int


@dataclass(frozen=True, slots=True)
class Destroyed:
    """The first hop sent DESTROY; the circuit is gone (no DESTROY goes back)."""

    reason: int


@dataclass(frozen=True, slots=True)
class TruncatedAt:
    """Hop ``hop`` sent TRUNCATED: we must DESTROY the rest (tor-spec §5.4)."""

    hop: int
    reason: int


@dataclass(frozen=True, slots=True)
class SendCell:
    """A cell the machine wants sent now (circuit SENDMEs)."""

    cell: ChanCell


CircEvent = HopAdded | StreamMsg | WindowOpened | Destroyed | TruncatedAt | SendCell

_CHAN_ALLOWED: dict[CircState, frozenset[int]] = {
    CircState.NEW: frozenset(),
    CircState.CREATING: frozenset({ChanCmd.CREATED2, ChanCmd.CREATED_FAST, ChanCmd.DESTROY}),
    CircState.OPEN: frozenset({ChanCmd.RELAY, ChanCmd.RELAY_EARLY, ChanCmd.DESTROY}),
    CircState.EXTENDING: frozenset({ChanCmd.RELAY, ChanCmd.RELAY_EARLY, ChanCmd.DESTROY}),
}
_CONTROL_ALLOWED: dict[CircState, frozenset[int]] = {
    CircState.OPEN: frozenset({RelayCmd.SENDME, RelayCmd.DROP, RelayCmd.TRUNCATED}),
    CircState.EXTENDING: frozenset(
        {RelayCmd.SENDME, RelayCmd.DROP, RelayCmd.TRUNCATED, RelayCmd.EXTENDED2}
    ),
}
#: Stream commands a relay may send us (tor-spec §6.1 "backward" or "either"; prop 324).
STREAM_CMDS = frozenset({RelayCmd.DATA, RelayCmd.END, RelayCmd.CONNECTED, RelayCmd.SENDME,
                         RelayCmd.RESOLVED, RelayCmd.XON, RelayCmd.XOFF})
_DATA = int(RelayCmd.DATA)


class CircuitMachine:
    """One client circuit's protocol state (see the module docstring)."""

    def __init__(self, circ_id: int, params: CircParams, random_bytes: RandomBytes) -> None:
        self.circ_id = circ_id
        self.params = params
        self._random = random_bytes
        self.state = CircState.NEW
        self._crypto = ClientCircuitCrypto()
        self._windows: list[HopWindows] = []
        self._pending: PendingHandshake | None = None
        self.early_left = MAX_RELAY_EARLY
        self._chan_handlers: dict[int, Callable[[ChanCell], list[CircEvent]]] = {
            ChanCmd.CREATED2: self._on_created2,
            ChanCmd.CREATED_FAST: self._on_created_fast,
            ChanCmd.DESTROY: self._on_destroy,
            ChanCmd.RELAY: self._on_relay,
            ChanCmd.RELAY_EARLY: self._on_relay_early,
        }
        self._control_handlers: dict[int, Callable[[int, RelayMsg], list[CircEvent]]] = {
            RelayCmd.SENDME: self._on_sendme,
            RelayCmd.DROP: lambda hop, msg: [],
            RelayCmd.TRUNCATED: self._on_truncated,
            RelayCmd.EXTENDED2: self._on_extended2,
        }

    @property
    def n_hops(self) -> int:
        return self._crypto.n_hops

    def package_window(self, hop: int) -> int:
        return self._windows[hop].package

    def deliver_window(self, hop: int) -> int:
        return self._windows[hop].deliver

    # --- cells we make ------------------------------------------------------------------
    def create_cell(self, hop: HopSpec) -> ChanCell:
        """CREATE2 (ntor-v3 if the relay supports it, else ntor) for the first hop."""
        self._expect(CircState.NEW, "create")
        self._pending = start_for_hop(hop, self._random)
        self.state = CircState.CREATING
        return Create2(self._pending.htype, self._pending.onionskin).to_cell(self.circ_id)

    def create_fast_cell(self) -> ChanCell:
        """CREATE_FAST for a one-hop directory circuit (tor-spec §5.1.5)."""
        self._expect(CircState.NEW, "create")
        self._pending = start_fast(self._random)
        self.state = CircState.CREATING
        return CreateFast(self._pending.onionskin).to_cell(self.circ_id)

    def extend_cell(self, hop: HopSpec) -> ChanCell:
        """EXTEND2 to ``hop``, for the last hop, in RELAY_EARLY (tor-spec §5.1.2, §5.6)."""
        self._expect(CircState.OPEN, "extend")
        if self.early_left == 0:
            raise LocalError("no RELAY_EARLY cells left to extend this circuit")
        pending = start_for_hop(hop, self._random)
        cell = self.relay_cell(self.n_hops - 1, 0,
                               Extend2(hop.link_specs(), pending.htype, pending.onionskin))
        self._pending = pending
        self.state = CircState.EXTENDING
        return cell

    def can_package(self, hop: int) -> bool:
        return self._windows[hop].package > 0

    def relay_cell(self, hop: int, stream_id: int, msg: RelayMsg) -> ChanCell:
        """Encrypt ``msg`` for ``hop``; a DATA cell needs (and uses) package window."""
        if self.state not in (CircState.OPEN, CircState.EXTENDING):
            raise LocalError(f"cannot send relay cells on a {self.state.name} circuit")
        cmd = msg.cmd
        data = msg.encode()
        early = self.early_left > 0 and (hop > 0 or cmd == RelayCmd.EXTEND2)
        if cmd == _DATA and self._windows[hop].package <= 0:
            raise LocalError("DATA with the circuit package window closed")
        pad = RELAY_DATA_MAX - len(data) - PADDING_ZERO_PREFIX
        # tor-spec §6.1, prop 289: random padding makes the SENDME digest unpredictable.
        payload = encode_relay_payload(cmd, stream_id, data, self._random(pad) if pad > 0 else b"")
        body = self._crypto.encrypt_outbound(payload, hop)
        if cmd == _DATA:
            self._windows[hop].note_data_sent(self._crypto.last_digest_sent(hop))
        if early:
            self.early_left -= 1
        return ChanCell(self.circ_id, ChanCmd.RELAY_EARLY if early else ChanCmd.RELAY, body)

    def destroy_cell(self) -> ChanCell:
        """Our DESTROY (reason NONE, as tor-spec §5.4 asks of clients); closes the machine."""
        self.state = CircState.CLOSED
        return Destroy(DestroyReason.NONE).to_cell(self.circ_id)

    def close(self) -> None:
        self.state = CircState.CLOSED

    def _expect(self, state: CircState, what: str) -> None:
        if self.state is not state:
            raise LocalError(f"cannot {what} a circuit in state {self.state.name}")

    # --- cells we receive ---------------------------------------------------------------
    def handle_cell(self, cell: ChanCell) -> list[CircEvent]:
        """Process one channel cell for this circuit; ProtocolError on any violation."""
        if self.state is CircState.CLOSED:
            return []  # tor-spec §5.4: after DESTROY, everything is ignored
        if cell.cmd not in _CHAN_ALLOWED[self.state]:
            raise ProtocolError(
                f"unexpected {cmd_name(cell.cmd)} cell on a {self.state.name} circuit")
        return self._chan_handlers[cell.cmd](cell)

    def _complete(self, reply: bytes) -> list[CircEvent]:
        pending = self._pending
        if pending is None:
            raise LocalError("no handshake in flight")
        hop = self.n_hops
        try:
            keys = pending.complete(reply)
        except ProtocolError as err:
            raise ProtocolError(f"{pending.name} handshake with hop {hop + 1} failed: "
                                f"{err.reason}") from err
        self._pending = None
        self._crypto.add_hop(keys)
        self._windows.append(HopWindows(self.params))
        self.state = CircState.OPEN
        return [HopAdded(hop)]

    def _check_pending_kind(self, fast: bool, got: str) -> None:
        pending = self._pending
        if pending is None or (pending.htype == CREATE_FAST) != fast:
            sent = pending.name if pending is not None else "nothing"
            raise ProtocolError(f"{got} in answer to {sent}")

    def _on_created2(self, cell: ChanCell) -> list[CircEvent]:
        self._check_pending_kind(False, "CREATED2")
        return self._complete(Created2.decode(cell.body).handshake)

    def _on_created_fast(self, cell: ChanCell) -> list[CircEvent]:
        self._check_pending_kind(True, "CREATED_FAST")
        reply = CreatedFast.decode(cell.body)
        return self._complete(reply.y + reply.kh)

    def _on_destroy(self, cell: ChanCell) -> list[CircEvent]:
        self.state = CircState.CLOSED
        return [Destroyed(Destroy.decode(cell.body).reason)]

    def _on_relay_early(self, cell: ChanCell) -> list[CircEvent]:
        raise ProtocolError("inbound RELAY_EARLY cell (tor-spec §5.6)")

    def _on_relay(self, cell: ChanCell) -> list[CircEvent]:
        hop, payload = self._crypto.decrypt_inbound(cell.body)
        rc = decode_relay_payload(payload)
        cmd = rc.cmd
        if rc.stream_id:
            if cmd in STREAM_CMDS:
                return self._on_stream_msg(hop, rc.stream_id, cmd, rc.data)
            if isinstance(decode_relay_msg(cmd, rc.data), Unrecognized):
                return []  # tor-spec §6.1: unknown commands are dropped; the digest counted
            raise ProtocolError(f"{relay_cmd_name(cmd)} from hop {hop + 1} with a stream ID")
        msg = decode_relay_msg(cmd, rc.data)
        if isinstance(msg, Unrecognized):
            return []
        if cmd != RelayCmd.SENDME and cmd in STREAM_CMDS:
            raise ProtocolError(f"{relay_cmd_name(cmd)} from hop {hop + 1} on stream 0")
        if cmd not in _CONTROL_ALLOWED[self.state]:
            raise ProtocolError(f"unexpected {relay_cmd_name(cmd)} from hop {hop + 1} "
                                f"on a {self.state.name} circuit")
        return self._control_handlers[cmd](hop, msg)

    def _on_stream_msg(self, hop: int, stream_id: int, cmd: int, data: bytes
                       ) -> list[CircEvent]:
        event = StreamMsg(hop, stream_id, cmd, data)
        if cmd == _DATA and self._windows[hop].note_data_received():
            sendme = self._windows[hop].sendme_to_send(self._crypto.last_digest_received(hop))
            return [event, SendCell(self.relay_cell(hop, 0, sendme))]
        return [event]

    def _on_sendme(self, hop: int, msg: RelayMsg) -> list[CircEvent]:
        if not isinstance(msg, Sendme):
            raise LocalError("SENDME handler got another message")
        self._windows[hop].sendme_received(msg)
        return [WindowOpened(hop)]

    def _on_truncated(self, hop: int, msg: RelayMsg) -> list[CircEvent]:
        reason = msg.reason if isinstance(msg, Truncated) else DestroyReason.NONE
        self.state = CircState.CLOSED
        return [TruncatedAt(hop, reason)]

    def _on_extended2(self, hop: int, msg: RelayMsg) -> list[CircEvent]:
        if hop != self.n_hops - 1 or not isinstance(msg, Extended2):
            raise ProtocolError(f"EXTENDED2 from hop {hop + 1}, not from the last hop")
        return self._complete(msg.handshake)
