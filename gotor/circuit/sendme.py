"""Circuit-level flow control: windows and authenticated SENDMEs (tor-spec §7.3, proposal 289).

One :class:`HopWindows` per hop (the client keeps a pair of windows for every relay of
its circuit, §7.3).  Only RELAY_DATA cells count.

Sending: the package window starts at ``circwindow`` and drops by one per DATA cell; at
zero, nothing more is packaged until a SENDME from that hop adds 100.  The running
digest after every 100th DATA cell sent is remembered: that hop's next SENDME v1 must
echo it (proposal 289 §4; C tor's ``sendme_record_sending_cell_digest``).

Receiving: the deliver window starts at 1000 and drops by one per DATA cell; when it
falls to 900 we owe a SENDME (and add 100 back), sent at once as C tor does: circuit
SENDMEs do not wait for the application (stream SENDMEs do, see gotor.stream).  The
SENDME carries, when ``sendme_emit_min_version >= 1``, the running digest of the DATA
cell that triggered it.

Checking a received SENDME follows C tor (``sendme_is_valid``): a version below
``sendme_accept_min_version`` or above the highest we know is refused; the oldest
remembered digest is consumed whatever the version (so v0 peers do not make the list
grow), and its absence means the SENDME was not owed; a v1 digest must match.  (That
also keeps the package window from passing its start, C tor's separate check.)  Any
failure is a ProtocolError: the circuit is closed.
"""

from __future__ import annotations

from collections import deque

from gotor.cells.relaymsg import Sendme
from gotor.circuit.params import CIRCWINDOW_MAX, SENDME_MAX_VERSION, CircParams
from gotor.crypto.primitives import constant_time_eq
from gotor.errors import LocalError, ProtocolError

#: tor-spec §7.3: the fixed-window increment, and the deliver window's start.
CIRCWINDOW_INCREMENT = 100
DELIVER_WINDOW_START = CIRCWINDOW_MAX


class HopWindows:
    """The package and deliver windows for one hop, and the SENDME digests owed to us."""

    __slots__ = ("_digests", "_params", "_sent", "deliver", "package")

    def __init__(self, params: CircParams) -> None:
        self._params = params
        self.package = params.circwindow
        self.deliver = DELIVER_WINDOW_START
        self._sent = 0
        self._digests: deque[bytes] = deque()

    # --- sending ----------------------------------------------------------------------
    def note_data_sent(self, digest: bytes) -> None:
        """A DATA cell went to this hop; ``digest`` is the running digest after it."""
        if self.package <= 0:
            raise LocalError("DATA packaged with the circuit package window closed")
        self.package -= 1
        self._sent += 1
        if self._sent % CIRCWINDOW_INCREMENT == 0:
            self._digests.append(digest)

    def sendme_received(self, msg: Sendme) -> None:
        """Check a circuit SENDME from this hop and open the package window by 100."""
        accept_min = self._params.sendme_accept_min_version
        if msg.version < accept_min:
            raise ProtocolError(f"SENDME version {msg.version} below the accepted {accept_min}")
        if msg.version > SENDME_MAX_VERSION or accept_min > SENDME_MAX_VERSION:
            raise ProtocolError(f"SENDME version {msg.version} not supported")
        if not self._digests:
            raise ProtocolError("unexpected circuit SENDME (no DATA cells were owed one)")
        expected = self._digests.popleft()
        tag = msg.tag
        if tag is not None and not constant_time_eq(tag, expected):
            raise ProtocolError("authenticated SENDME with a wrong digest")
        # A digest is owed only after 100 DATA cells, so the window cannot pass its start
        # (C tor checks that separately, "Unexpected sendme cell from exit relay").
        self.package += CIRCWINDOW_INCREMENT

    # --- receiving --------------------------------------------------------------------
    def note_data_received(self) -> bool:
        """A DATA cell came from this hop; True when a SENDME is now owed (and counted).

        The SENDME is sent at once, so the window never gets near zero here: a relay
        that ignored our window would only be noticed by its own stream windows.
        """
        self.deliver -= 1
        if self.deliver <= DELIVER_WINDOW_START - CIRCWINDOW_INCREMENT:
            self.deliver += CIRCWINDOW_INCREMENT
            return True
        return False

    def sendme_to_send(self, last_digest: bytes) -> Sendme:
        """The SENDME to answer with; ``last_digest`` is the digest of the triggering cell."""
        if self._params.sendme_emit_min_version >= 1:
            return Sendme(1, last_digest)
        return Sendme()
