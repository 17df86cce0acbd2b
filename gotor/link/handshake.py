"""The initiator's side of the link handshake, sans-IO (tor-spec §4, "in-protocol" handshake).

After TLS, a client and a relay exchange::

    client  VERSIONS                                     (2-byte circuit IDs)
    relay   VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO     (circuit-ID width now negotiated)
    client  NETINFO

:class:`InitiatorHandshake` is that exchange as a machine: ``initial_bytes()`` is our
VERSIONS cell; ``receive(data, now)`` takes bytes from the TLS stream and returns the
bytes to send (our NETINFO, once the relay's NETINFO arrived).  Nothing else: no I/O,
no clock (``now`` is a parameter), so it is tested cell by cell.

What it checks, per state (transitions as data, ``_ALLOWED``):

* VERSIONS first (VPADDING and AUTHORIZE may precede it, §4); the highest version in
  both lists wins (§4.1); we offer 4 and 5 only (4-byte circuit IDs, §5.1.1);
* CERTS, verified in full with :func:`gotor.crypto.linkcerts.verify_responder_certs`
  against the TLS certificate of this connection, and the proven RSA (and, when the
  caller knows it, Ed25519) identity compared with the one we asked for;
* AUTH_CHALLENGE is ignored (clients do not authenticate, §4.4) but allowed once;
* NETINFO ends the handshake: its timestamp gives the clock-skew estimate, and the
  address the relay saw for us is kept.  Ours carries timestamp 0 (clients SHOULD
  send 0, §4.5), the relay's address as we see it, and no addresses of our own.

VPADDING may intervene anywhere; later VERSIONS cells are ignored (§4.1).  Any other
cell, or the right cell at the wrong time, fails the handshake, as in C tor, which
closes a handshaking connection on any unexpected command.  Every failure is a
:class:`~gotor.errors.ChannelError` whose text says what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from gotor.cells.chan import ChanCell, ChanCmd
from gotor.cells.chanmsg import Certs, Netinfo, Versions
from gotor.cells.codec import ChannelCodec
from gotor.cells.common import IpAddress, enum_or_int
from gotor.crypto.linkcerts import ResponderIdentity, verify_responder_certs
from gotor.errors import ChannelError, LocalError, ProtocolError, VerificationError

#: The link protocols we offer: 4 (4-byte circuit IDs) and 5 (link padding), tor-spec §4.1.
LINK_VERSIONS = (4, 5)

#: A relay's whole handshake flight is a few kilobytes; a peer that keeps sending
#: (VPADDING, say) instead of finishing is cut off once it has sent this much.
MAX_HANDSHAKE_BYTES = 256 * 1024


class HsState(Enum):
    AWAIT_VERSIONS = auto()
    AWAIT_CERTS = auto()
    AWAIT_NETINFO = auto()  # AUTH_CHALLENGE may come first
    OPEN = auto()
    FAILED = auto()


_ALLOWED: dict[HsState, frozenset[int]] = {
    # tor-spec §4: the first cell must be VERSIONS, VPADDING or AUTHORIZE.
    HsState.AWAIT_VERSIONS: frozenset({ChanCmd.VERSIONS, ChanCmd.VPADDING, ChanCmd.AUTHORIZE}),
    HsState.AWAIT_CERTS: frozenset({ChanCmd.CERTS, ChanCmd.VPADDING, ChanCmd.VERSIONS}),
    HsState.AWAIT_NETINFO: frozenset(
        {ChanCmd.AUTH_CHALLENGE, ChanCmd.NETINFO, ChanCmd.VPADDING, ChanCmd.VERSIONS}
    ),
}


@dataclass(frozen=True)
class HandshakeResult:
    """What a completed handshake established."""

    link_version: int
    identity: ResponderIdentity
    #: The relay's NETINFO time minus our wall clock when it arrived (positive: the
    #: relay is ahead); None if the relay sent 0.
    clock_skew: float | None
    #: The address the relay says it sees for us, if it gave a usable one.
    our_address: IpAddress | None
    #: The relay's own addresses from its NETINFO.
    relay_addresses: tuple[IpAddress, ...]


def _hexid(value: bytes) -> str:
    return value.hex().upper()


class InitiatorHandshake:
    """The client side of one link handshake (see the module docstring)."""

    def __init__(
        self,
        *,
        expected_rsa_id: bytes,
        tls_cert_der: bytes,
        peer_ip: IpAddress | None,
        expected_ed_id: bytes | None = None,
        versions: tuple[int, ...] = LINK_VERSIONS,
    ) -> None:
        self._expected_rsa_id = bytes(expected_rsa_id)
        self._expected_ed_id = None if expected_ed_id is None else bytes(expected_ed_id)
        self._tls_cert_der = bytes(tls_cert_der)
        self._peer_ip = peer_ip
        self._versions = tuple(versions)
        self._codec = ChannelCodec()
        self._buf = bytearray()
        self._received = 0
        self.state = HsState.AWAIT_VERSIONS
        self._link_version: int | None = None
        self._identity: ResponderIdentity | None = None
        self._seen_challenge = False
        self._result: HandshakeResult | None = None
        self._handlers: dict[int, Callable[[ChanCell, float], bytes]] = {
            ChanCmd.VERSIONS: self._on_versions,
            ChanCmd.CERTS: self._on_certs,
            ChanCmd.AUTH_CHALLENGE: self._on_auth_challenge,
            ChanCmd.NETINFO: self._on_netinfo,
            ChanCmd.VPADDING: self._ignore,
            ChanCmd.AUTHORIZE: self._ignore,
        }

    # --- interface ------------------------------------------------------------------
    def initial_bytes(self) -> bytes:
        """Our VERSIONS cell (circuit ID 0, 2-byte circuit IDs: tor-spec §3, §4.1)."""
        return self._codec.encode(Versions(self._versions).to_cell())

    @property
    def done(self) -> bool:
        return self.state is HsState.OPEN

    @property
    def result(self) -> HandshakeResult:
        if self._result is None:
            raise ChannelError("the link handshake has not completed")
        return self._result

    @property
    def codec(self) -> ChannelCodec:
        """The codec, set to the negotiated link version (for the channel to keep using)."""
        return self._codec

    def leftover(self) -> bytes:
        """Bytes received after the relay's NETINFO (the first cells of the open channel)."""
        return bytes(self._buf) if self.done else b""

    def receive(self, data: bytes, now: float) -> bytes:
        """Feed bytes from the TLS stream; return the bytes to send (empty until NETINFO).

        ``now`` is the wall clock (POSIX seconds), used for certificate validity and
        the clock-skew estimate.  Raises :class:`ChannelError` on any failure.
        """
        if self.state in (HsState.OPEN, HsState.FAILED):
            raise ChannelError(f"link handshake is already {self.state.name.lower()}")
        self._buf += data
        self._received += len(data)
        out = b""
        try:
            while not self.done:
                cell = self._codec.decode(self._buf)
                if cell is None:
                    break
                out += self._handle(cell, now)
        except ProtocolError as err:
            self.state = HsState.FAILED
            raise ChannelError(f"link handshake failed: {err.reason}") from err
        except ChannelError:
            self.state = HsState.FAILED
            raise
        if not self.done and self._received > MAX_HANDSHAKE_BYTES:
            self.state = HsState.FAILED
            raise ChannelError("link handshake failed: too much data before NETINFO")
        return out

    def eof(self) -> ChannelError:
        """The error for a connection that ended before the handshake completed."""
        where = " in the middle of a cell" if self._buf else ""
        error = ChannelError(
            f"connection closed by the relay during the link handshake{where} "
            f"(waiting for {self._waiting_for()})"
        )
        self.state = HsState.FAILED
        return error

    # --- cell handlers --------------------------------------------------------------
    def _handle(self, cell: ChanCell, now: float) -> bytes:
        if cell.cmd not in _ALLOWED[self.state]:
            raise ChannelError(
                f"link handshake failed: unexpected {cmd_name(cell.cmd)} cell while waiting for "
                f"{self._waiting_for()}"
            )
        return self._handlers[cell.cmd](cell, now)

    def _waiting_for(self) -> str:
        return {
            HsState.AWAIT_VERSIONS: "VERSIONS",
            HsState.AWAIT_CERTS: "CERTS",
            HsState.AWAIT_NETINFO: "NETINFO",
        }.get(self.state, "nothing")

    def _ignore(self, cell: ChanCell, now: float) -> bytes:
        return b""

    def _on_versions(self, cell: ChanCell, now: float) -> bytes:
        if self.state is not HsState.AWAIT_VERSIONS:
            return b""  # tor-spec §4.1: later VERSIONS cells MUST be ignored
        theirs = Versions.decode(cell.body).versions
        common = set(theirs) & set(self._versions)
        if not common:
            raise ChannelError(
                "link handshake failed: no common link protocol version (we offer "
                f"{_fmt_versions(self._versions)}, the relay offers {_fmt_versions(theirs)})"
            )
        self._link_version = max(common)
        # Every cell after VERSIONS uses the negotiated circuit-ID width (tor-spec §3).
        self._codec.link_version = self._link_version
        self.state = HsState.AWAIT_CERTS
        return b""

    def _on_certs(self, cell: ChanCell, now: float) -> bytes:
        certs = Certs.decode(cell.body)
        try:
            identity = verify_responder_certs(certs.certs, self._tls_cert_der, now)
        except VerificationError as err:
            raise ChannelError(f"relay's CERTS cell rejected: {err.reason}") from err
        if identity.rsa_identity != self._expected_rsa_id:
            raise ChannelError(
                f"relay identity mismatch: expected RSA identity "
                f"{_hexid(self._expected_rsa_id)}, the relay proved "
                f"{_hexid(identity.rsa_identity)}"
            )
        if self._expected_ed_id is not None and identity.ed25519_identity != self._expected_ed_id:
            raise ChannelError(
                f"relay identity mismatch: expected Ed25519 identity "
                f"{self._expected_ed_id.hex()}, the relay proved "
                f"{identity.ed25519_identity.hex()}"
            )
        self._identity = identity
        self.state = HsState.AWAIT_NETINFO
        return b""

    def _on_auth_challenge(self, cell: ChanCell, now: float) -> bytes:
        # We do not authenticate (tor-spec §4.4), so the challenge itself is not needed;
        # a second one would be a protocol violation.
        if self._seen_challenge:
            raise ChannelError("link handshake failed: second AUTH_CHALLENGE cell")
        self._seen_challenge = True
        return b""

    def _on_netinfo(self, cell: ChanCell, now: float) -> bytes:
        theirs = Netinfo.decode(cell.body)
        if self._identity is None or self._link_version is None:
            raise LocalError("NETINFO handled before CERTS")  # _ALLOWED makes this unreachable
        skew = None if theirs.timestamp == 0 else float(theirs.timestamp) - now
        self._result = HandshakeResult(
            link_version=self._link_version,
            identity=self._identity,
            clock_skew=skew,
            our_address=theirs.other_ip,
            relay_addresses=theirs.my_ips,
        )
        self.state = HsState.OPEN
        ours = Netinfo.from_ips(0, self._peer_ip)
        return self._codec.encode(ours.to_cell())


def cmd_name(cmd: int) -> str:
    """A channel command's name for messages (its number if unknown)."""
    named = enum_or_int(ChanCmd, cmd)
    return named.name if isinstance(named, ChanCmd) else f"command {cmd}"


def _fmt_versions(versions: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in versions) or "none"
