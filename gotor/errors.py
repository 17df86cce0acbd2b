"""The error types of gotor.

Everything gotor raises on purpose derives from :class:`GotorError`.  The split
follows h11: a *remote* fault (a peer or a document broke the protocol) is a
:class:`ProtocolError`; a *local* fault (our caller misused an API) is a
:class:`LocalError`.  Decoders of cells and documents raise only
:class:`ProtocolError` (or its subclasses) on malformed input, whatever the bytes.
"""

from __future__ import annotations


class GotorError(Exception):
    """Base class of every error gotor raises deliberately."""


class LocalError(GotorError):
    """The caller used an API wrongly (a bug on our side, not the peer's)."""


class ProtocolError(GotorError):
    """Input from outside (a cell, a document, a handshake) violates the protocol.

    ``reason`` is a short human-readable explanation; ``str(err)`` is the same.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentError(ProtocolError):
    """A directory document is malformed; ``line`` is its 1-based line number if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(where + reason)
        self.line = line


class VerificationError(ProtocolError):
    """Well-formed input failed a cryptographic or validity check
    (bad signature, unknown or expired key, digest mismatch, outside its validity window)."""


class Cancelled(BaseException):
    """The awaiting task was cancelled (the same type in every runtime binding).

    Like asyncio's CancelledError it derives from BaseException, so that a
    generic ``except Exception`` in cleanup code does not swallow it.
    """


class Timeout(GotorError):
    """An operation did not complete within its deadline."""


class NetworkError(GotorError):
    """A transport failure, reported the same way by every runtime binding."""


class ConnectionRefused(NetworkError):
    """Nothing accepts connections at that address."""


class ConnectionReset(NetworkError):
    """The connection was reset (the peer or its host died, or it aborted)."""


class ClosedError(NetworkError):
    """The stream was already closed locally."""


class TlsError(NetworkError):
    """The TLS handshake or a TLS record failed."""


class ChannelError(NetworkError):
    """A channel (TLS link to a relay) failed its handshake, was closed, or broke."""


class CircuitError(GotorError):
    """A circuit could not be built, was destroyed, or violated the protocol.

    ``destroy_reason`` is the DESTROY/TRUNCATED reason code when the network sent one.
    ``failed_hop``, for a build that failed, is the 0-based index of the hop that was
    being added (so the caller knows which relay to blame, path-spec §2.1.1).
    """

    def __init__(self, reason: str, destroy_reason: int | None = None, *,
                 failed_hop: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.destroy_reason = destroy_reason
        self.failed_hop = failed_hop


class StreamError(GotorError):
    """A stream failed: the exit ended it with a reason other than DONE, or its circuit died.

    ``end_reason`` is the RELAY_END reason code when the exit sent one.
    """

    def __init__(self, reason: str, end_reason: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.end_reason = end_reason


class BootstrapError(GotorError):
    """No directory source gave a usable consensus and descriptors."""


class NoPathError(GotorError):
    """The directory has no relays that satisfy the request."""
