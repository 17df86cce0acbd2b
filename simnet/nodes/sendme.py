"""Relay-side SENDME flow control, exactly as C tor enforces it (tor-spec §7.3-§7.4, prop 289).

Pure window accounting for the hop at which a circuit ends (an exit, or any hop
serving BEGIN_DIR): no I/O, so every rule is unit-testable.  Fixed windows only
(no congestion control: emulated relays do not advertise FlowCtrl=2).

Circuit level (C tor ``sendme.c``, ``relay.c``):

* *package window* starts at the ``circwindow`` consensus parameter (default
  1000); each DATA cell sent takes one.  Before the decrement, when the window
  is not at its start and ``(window - 1) % 100 == 0``, the full backward running
  digest of that cell is queued: the client's next SENDME must echo it.
* a circuit SENDME first must be acceptable (version >= ``sendme_accept_min_version``,
  version <= 1), then pops the oldest queued digest (none queued: invalid), then
  for version 1 must carry exactly that digest; only then, if the window would
  exceed 1000, it is still a violation; otherwise the window grows by 100.
  Any failure closes the circuit (TORPROTOCOL).
* *deliver window* starts at 1000; every recognized cell received when
  ``(1000 - (window - 1)) % 100 == 0`` records its forward digest; each DATA cell
  takes one from the window (below 0 closes the circuit); at 900 or less a
  SENDME goes out at once (version 1 with the recorded digest when
  ``sendme_emit_min_version`` >= 1, else version 0) and the window grows by 100.

Stream level: package and deliver windows of 500; a stream SENDME beyond 500
closes the circuit; the deliver side sends a SENDME (always version 0, empty)
per 50 cells once the data has been handed on (the edge's outbuf flushed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from gotor.cells.relaymsg import Sendme
from gotor.errors import ProtocolError

CIRCWINDOW_START = 1000
CIRCWINDOW_START_MAX = 1000
CIRCWINDOW_INCREMENT = 100
STREAMWINDOW_START = 500
STREAMWINDOW_START_MAX = 500
STREAMWINDOW_INCREMENT = 50
SENDME_MAX_SUPPORTED_VERSION = 1


@dataclass(frozen=True)
class FlowParams:
    """The consensus parameters a relay's flow control reads (C tor defaults)."""

    circwindow: int = CIRCWINDOW_START
    emit_min_version: int = 1
    accept_min_version: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, int]) -> FlowParams:
        """Clamped as C tor clamps them (circwindow 100..1000, versions 0..255)."""
        def get(name: str, default: int, lo: int, hi: int) -> int:
            return min(max(params.get(name, default), lo), hi)

        return cls(get("circwindow", CIRCWINDOW_START, 100, CIRCWINDOW_START_MAX),
                   get("sendme_emit_min_version", 1, 0, 255),
                   get("sendme_accept_min_version", 0, 0, 255))


class CircuitWindows:
    """Circuit-level windows of the hop at which a circuit ends (module docstring)."""

    __slots__ = ("_expected", "_params", "_sendme_digest", "deliver", "package")

    def __init__(self, params: FlowParams) -> None:
        self._params = params
        self.package = params.circwindow
        self.deliver = CIRCWINDOW_START
        self._expected: deque[bytes] = deque()
        self._sendme_digest = bytes(20)

    def can_package(self) -> bool:
        return self.package > 0

    def note_data_sent(self, digest: bytes) -> None:
        """A DATA cell went out; ``digest`` is the backward running digest after it."""
        if self.package != CIRCWINDOW_START and (self.package - 1) % CIRCWINDOW_INCREMENT == 0:
            self._expected.append(digest)
        self.package -= 1

    def note_cell_received(self, digest: bytes) -> None:
        """Any recognized cell arrived; ``digest`` is the forward running digest after it."""
        if (CIRCWINDOW_START - (self.deliver - 1)) % CIRCWINDOW_INCREMENT == 0:
            self._sendme_digest = digest

    def note_data_received(self) -> Sendme | None:
        """A DATA cell arrived: the SENDME to send now, if one is due."""
        self.deliver -= 1
        if self.deliver < 0:
            raise ProtocolError("circuit deliver window below 0")
        if self.deliver > CIRCWINDOW_START - CIRCWINDOW_INCREMENT:
            return None
        self.deliver += CIRCWINDOW_INCREMENT
        if self._params.emit_min_version >= 1:
            return Sendme(1, self._sendme_digest)
        return Sendme()

    def on_sendme(self, msg: Sendme) -> None:
        """Apply a circuit-level SENDME; raises ProtocolError if C tor would close."""
        if msg.version < self._params.accept_min_version:
            raise ProtocolError(f"SENDME version {msg.version} below the accepted minimum")
        if msg.version > SENDME_MAX_SUPPORTED_VERSION:
            raise ProtocolError(f"unsupported SENDME version {msg.version}")
        if not self._expected:
            raise ProtocolError("SENDME without a cell digest to match")
        expected = self._expected.popleft()
        if msg.version == 1 and msg.data != expected:
            raise ProtocolError("SENDME v1 digest does not match")
        if self.package + CIRCWINDOW_INCREMENT > CIRCWINDOW_START_MAX:
            raise ProtocolError("unexpected circuit SENDME (window full)")
        self.package += CIRCWINDOW_INCREMENT


class StreamWindows:
    """Stream-level windows of one exit or directory stream (tor-spec §7.4)."""

    __slots__ = ("deliver", "package")

    def __init__(self) -> None:
        self.package = STREAMWINDOW_START
        self.deliver = STREAMWINDOW_START

    def can_package(self) -> bool:
        return self.package > 0

    def note_data_sent(self) -> None:
        self.package -= 1

    def note_data_received(self) -> None:
        self.deliver -= 1
        if self.deliver < 0:
            raise ProtocolError("stream deliver window below 0")

    def sendmes_due(self) -> int:
        """How many stream SENDMEs to send now that the data has been handed on."""
        due = 0
        while self.deliver <= STREAMWINDOW_START - STREAMWINDOW_INCREMENT:
            self.deliver += STREAMWINDOW_INCREMENT
            due += 1
        return due

    def on_sendme(self) -> None:
        if self.package + STREAMWINDOW_INCREMENT > STREAMWINDOW_START_MAX:
            raise ProtocolError("unexpected stream SENDME (window full)")
        self.package += STREAMWINDOW_INCREMENT
