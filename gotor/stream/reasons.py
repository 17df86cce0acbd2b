"""RELAY_END reasons as clear error messages (tor-spec §6.3).

The exit's reason is advisory and may be any byte (§6.3: "OPs and ORs MUST accept
reasons not on the above list"), so unknown values get a generic text with the number.
"""

from __future__ import annotations

from gotor.cells.relaymsg import End, EndReason
from gotor.errors import StreamError

_TEXT: dict[int, str] = {
    EndReason.MISC: "the exit closed the stream without giving a reason (MISC)",
    EndReason.RESOLVEFAILED: "hostname could not be resolved (RESOLVEFAILED)",
    EndReason.CONNECTREFUSED: "the destination refused the exit's connection (CONNECTREFUSED)",
    EndReason.EXITPOLICY: "exit policy rejects this address (EXITPOLICY)",
    EndReason.DESTROY: "the exit's circuit was destroyed (DESTROY)",
    EndReason.DONE: "the exit closed the stream (DONE)",
    EndReason.TIMEOUT: "the exit timed out connecting to the destination (TIMEOUT)",
    EndReason.NOROUTE: "the exit has no route to the destination (NOROUTE)",
    EndReason.HIBERNATING: "the exit is hibernating (HIBERNATING)",
    EndReason.INTERNAL: "internal error at the exit (INTERNAL)",
    EndReason.RESOURCELIMIT: "the exit is out of resources (RESOURCELIMIT)",
    EndReason.CONNRESET: "the connection to the destination was reset (CONNRESET)",
    EndReason.TORPROTOCOL: "the exit saw a Tor protocol violation (TORPROTOCOL)",
    EndReason.NOTDIRECTORY: "the relay is not a directory server (NOTDIRECTORY)",
}


def end_reason_text(reason: int) -> str:
    """The message for an END reason, e.g. "exit policy rejects this address (EXITPOLICY)"."""
    return _TEXT.get(reason, f"the exit closed the stream (reason {reason})")


def end_error(end: End, target: str) -> StreamError:
    """The StreamError for an END message on the stream to ``target``."""
    text = end_reason_text(end.reason)
    if end.reason == EndReason.EXITPOLICY and end.address is not None:
        text += f"; the exit resolved it to {end.address}"
    return StreamError(f"stream to {target}: {text}", end_reason=end.reason)
