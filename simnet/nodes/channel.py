"""Channels of emulated relays: the link handshake both ways, cell I/O, the extend pool.

Responder (tor-spec §4, the "in-protocol" handshake): the first cell must be
VERSIONS (VPADDING or AUTHORIZE may precede it); the relay answers VERSIONS
(3, 4, 5 offered; the highest common one wins), then CERTS built by
:func:`gotor.crypto.linkcerts.build_responder_certs` and bound to its TLS
certificate, AUTH_CHALLENGE (methods 1 and 3) and NETINFO carrying its host's
wall clock (so a skewed host shows a skewed clock) and the peer address it sees.
It then waits for the initiator's NETINFO, ignoring VPADDING and an initiator's
CERTS/AUTHENTICATE (emulated relays do not tell relays from clients).  Anything
else before NETINFO closes the connection.

Initiator (for EXTEND2; written here, not imported from gotor.link, so that a
bug shared with the client cannot hide): VERSIONS (4, 5), then VERSIONS, CERTS
verified with :func:`~gotor.crypto.linkcerts.verify_responder_certs` against
the TLS certificate and the identities the EXTEND2 named, AUTH_CHALLENGE
ignored, NETINFO; it answers NETINFO without authenticating.

After the handshake one reader task per channel decodes cells and hands them
to the relay synchronously; sending never blocks (cells queue on the stream),
so a relay never stalls its reader on a slow neighbour; windows bound the queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason
from gotor.cells.chanmsg import AuthChallenge, Certs, Netinfo, Versions
from gotor.cells.codec import ChannelCodec
from gotor.crypto.linkcerts import CertsCellType, verify_responder_certs
from gotor.errors import Cancelled, ChannelError, LocalError, NetworkError, ProtocolError, Timeout
from gotor.runtime.api import ByteStream, Task
from gotor.runtime.sync import timeout

if TYPE_CHECKING:
    from simnet.nodes.circuit import OrCircuit
    from simnet.nodes.relay import RelayNode

RESPONDER_VERSIONS = (3, 4, 5)
INITIATOR_VERSIONS = (4, 5)
HANDSHAKE_TIMEOUT = 60.0
_HANDSHAKE_CELLS = frozenset({ChanCmd.VPADDING, ChanCmd.CERTS, ChanCmd.AUTHENTICATE})
_IGNORED_WHEN_OPEN = frozenset({ChanCmd.PADDING, ChanCmd.VPADDING, ChanCmd.PADDING_NEGOTIATE,
                                ChanCmd.VERSIONS, ChanCmd.AUTHORIZE})
_CREATES = frozenset({ChanCmd.CREATE, ChanCmd.CREATE2, ChanCmd.CREATE_FAST})
_READ = 65536
_CIRC_ID_TRIES = 64


class RelayChannel:
    """One TLS link of an emulated relay, either direction (see the module docstring)."""

    def __init__(self, node: RelayNode, stream: ByteStream, *, outgoing: bool) -> None:
        self.node = node
        self.stream = stream
        self.outgoing = outgoing
        self.codec = ChannelCodec()
        self.circuits: dict[int, OrCircuit] = {}
        self.closed = False
        self.close_reason: str | None = None
        self.peer_rsa_id: bytes | None = None
        self.peer_ed_id: bytes | None = None
        self.cells_sent = 0
        self._buf = bytearray()
        host, port = stream.peer
        self.peer_addr = host
        self.label = f"{host}:{port}"

    @property
    def link_version(self) -> int | None:
        return self.codec.link_version

    # --- cell I/O ---------------------------------------------------------------------
    async def read_cell(self) -> ChanCell:
        """The next cell; ChannelError at end of stream, ProtocolError if malformed."""
        while True:
            cell = self.codec.decode(self._buf)
            if cell is not None:
                return cell
            data = await self.stream.read(_READ)
            if not data:
                raise ChannelError("connection closed by peer")
            self._buf += data

    def send(self, cell: ChanCell) -> None:
        """Queue ``cell`` (never blocks); a dead stream closes the channel."""
        if self.closed:
            return
        data = self.codec.encode(cell)
        cut = self.node.misbehaviour.eof_mid_cell_after
        if cut is not None and self.codec.link_version is not None and self.cells_sent >= cut:
            data = data[: len(data) // 2]       # misbehaviour: EOF in the middle of a cell
            self._write(data)
            self.close("misbehaviour: EOF mid-cell", graceful=True)
            return
        self.cells_sent += 1
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except NetworkError as exc:
            self.close(f"write failed: {exc}")

    async def drain(self) -> None:
        """Wait while this channel's outgoing queue is full (ChannelError once closed)."""
        if self.closed:
            raise ChannelError("channel closed")
        try:
            await self.stream.drain()
        except NetworkError as exc:
            self.close(f"write failed: {exc}")
            raise ChannelError("channel closed") from None

    def alloc_circ_id(self) -> int:
        """A free circuit ID for a circuit we create here: MSB 1 as initiator (tor-spec §5.1.1)."""
        rng = self.node.rt.rng
        for _ in range(_CIRC_ID_TRIES):
            circ_id = rng.getrandbits(31) | (1 << 31)
            if circ_id not in self.circuits:
                return circ_id
        raise ChannelError("no free circuit ID")

    # --- life cycle -------------------------------------------------------------------
    async def run(self) -> None:
        """Read and dispatch cells until the channel ends; never raises for peer faults."""
        try:
            while not self.closed:
                self._dispatch(await self.read_cell())
        except (ChannelError, NetworkError) as exc:
            self.close(str(exc))
        except ProtocolError as exc:
            self.close(f"protocol error: {exc.reason}")

    def _dispatch(self, cell: ChanCell) -> None:
        if cell.cmd in _CREATES:
            from simnet.nodes.circuit import accept_create

            accept_create(self.node, self, cell)
            return
        circ = self.circuits.get(cell.circ_id)
        if circ is not None:
            circ.on_cell(self, cell)
        elif cell.cmd not in _IGNORED_WHEN_OPEN and cell.cmd not in (ChanCmd.RELAY,
                                                                    ChanCmd.RELAY_EARLY,
                                                                    ChanCmd.DESTROY):
            # tor-spec §3: unknown and out-of-place commands are dropped.
            self.node.trace("cell-dropped", chan=self.label, cmd=cell.cmd)

    def close(self, reason: str, *, graceful: bool = False) -> None:
        """Close the link; every circuit on it hears ``channel_closed``."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if graceful:
            self.node.rt.spawn(_quiet_close(self.stream), name=f"chan-close {self.label}")
        else:
            self.stream.abort()
        self.node.channel_closed(self)
        for circ in list(self.circuits.values()):
            circ.channel_closed(self)
        self.circuits.clear()
        self.node.trace("chan-closed", chan=self.label, reason=reason)

    # --- handshakes -------------------------------------------------------------------
    async def respond_handshake(self) -> None:
        """The responder side, up to the initiator's NETINFO."""
        node = self.node
        first = await self.read_cell()
        while first.cmd in (ChanCmd.VPADDING, ChanCmd.AUTHORIZE):
            first = await self.read_cell()
        if first.cmd != ChanCmd.VERSIONS:
            raise ProtocolError(f"first cell is command {first.cmd}, not VERSIONS")
        common = set(Versions.decode(first.body).versions) & set(RESPONDER_VERSIONS)
        if not common:
            raise ProtocolError("no common link protocol version")
        self.send(Versions(RESPONDER_VERSIONS).to_cell())
        self.codec.link_version = max(common)
        now = node.rt.wallclock()
        self.send(Certs(tuple(node.responder_certs(now))).to_cell())
        self.send(AuthChallenge(node.rt.random_bytes(32), (1, 3)).to_cell())
        self.send(self._netinfo(now).to_cell())
        while True:
            cell = await self.read_cell()
            if cell.cmd == ChanCmd.NETINFO:
                Netinfo.decode(cell.body)
                return
            if cell.cmd not in _HANDSHAKE_CELLS:
                raise ProtocolError(f"cell command {cell.cmd} before NETINFO")

    async def initiate_handshake(self, rsa_id: bytes, ed_id: bytes | None) -> None:
        """The initiator side, proving the peer holds ``rsa_id`` (and ``ed_id`` if given)."""
        self.send(Versions(INITIATOR_VERSIONS).to_cell())
        cell = await self._expect(ChanCmd.VERSIONS)
        common = set(Versions.decode(cell.body).versions) & set(INITIATOR_VERSIONS)
        if not common:
            raise ChannelError("no common link protocol version")
        self.codec.link_version = max(common)
        certs = Certs.decode((await self._expect(ChanCmd.CERTS)).body)
        tls_cert = self.stream.peer_cert_der() if hasattr(self.stream, "peer_cert_der") else None
        if tls_cert is None:
            raise ChannelError("peer presented no TLS certificate")
        ident = verify_responder_certs(certs.certs, tls_cert, self.node.rt.wallclock())
        if ident.rsa_identity != rsa_id or (ed_id is not None and ident.ed25519_identity != ed_id):
            raise ExtendError("peer identity is not the one asked for", DestroyReason.OR_IDENTITY)
        self.peer_rsa_id, self.peer_ed_id = ident.rsa_identity, ident.ed25519_identity
        while True:
            cell = await self.read_cell()
            if cell.cmd == ChanCmd.NETINFO:
                Netinfo.decode(cell.body)
                break
            if cell.cmd not in (ChanCmd.AUTH_CHALLENGE, ChanCmd.VPADDING):
                raise ProtocolError(f"cell command {cell.cmd} before NETINFO")
        self.send(self._netinfo(0).to_cell())

    async def _expect(self, cmd: int) -> ChanCell:
        cell = await self.read_cell()
        while cell.cmd == ChanCmd.VPADDING:
            cell = await self.read_cell()
        if cell.cmd != cmd:
            raise ProtocolError(f"expected cell command {cmd}, got {cell.cmd}")
        return cell

    def _netinfo(self, timestamp: float) -> Netinfo:
        host = self.node.host
        mine = tuple(ip_address(a) for a in (host.ipv4, host.ipv6) if a)
        try:
            other = ip_address(self.peer_addr)
        except ValueError:
            other = None
        return Netinfo.from_ips(int(timestamp), other, mine)


async def _quiet_close(stream: ByteStream) -> None:
    try:
        await stream.aclose()
    except NetworkError:
        pass


async def serve_incoming(node: RelayNode, stream: ByteStream) -> None:
    """Listener handler: run the responder handshake, then the channel until it ends."""
    chan = RelayChannel(node, stream, outgoing=False)
    if node.misbehaviour.stall_handshake:     # read and never answer, for as long as it lasts
        while await stream.read(_READ):
            pass
        return
    try:
        await timeout(node.rt, HANDSHAKE_TIMEOUT, chan.respond_handshake(), what="link handshake")
    except (ChannelError, NetworkError, ProtocolError, Timeout) as exc:
        node.trace("chan-refused", chan=chan.label, reason=str(exc))
        stream.abort()
        return
    node.trace("chan-open", chan=chan.label, direction="in", link=chan.link_version)
    await chan.run()


def corrupt_certs(certs: Sequence[tuple[int, bytes]], how: str) -> list[tuple[int, bytes]]:
    """Misbehaviour: a CERTS cell whose check fails in the way ``how`` names."""
    out = list(certs)
    if how == "signature":           # flip a bit of the identity->signing cert's signature
        out = [(t, c[:-1] + bytes([c[-1] ^ 1]) if t == CertsCellType.ED_ID_SIGNING else c)
               for t, c in out]
    elif how == "missing":           # no RSA->Ed25519 cross-certificate
        out = [(t, c) for t, c in out if t != CertsCellType.RSA_ED_CROSSCERT]
    elif how == "duplicate":         # the same certificate type twice
        out.append(next((t, c) for t, c in out if t == CertsCellType.ED_ID_SIGNING))
    else:
        raise LocalError(f"unknown CERTS misbehaviour {how!r}")
    return out


@dataclass(frozen=True)
class ExtendTarget:
    """Where an EXTEND2 asks to go: address, port and the identities to insist on."""

    address: str
    port: int
    rsa_id: bytes
    ed_id: bytes | None


class ChannelPool:
    """A relay's outgoing channels by RSA identity, reused across EXTEND2s (tor-spec §5.3.1)."""

    def __init__(self, node: RelayNode) -> None:
        self.node = node
        self.open: dict[bytes, RelayChannel] = {}
        self._pending: dict[bytes, Task[Any]] = {}

    async def get(self, target: ExtendTarget) -> RelayChannel:
        """An open channel to ``target``; ChannelError (with a DESTROY reason) if impossible."""
        chan = self.open.get(target.rsa_id)
        if chan is not None and not chan.closed:
            if target.ed_id is not None and chan.peer_ed_id != target.ed_id:
                # tor-spec §5.1.2: same RSA identity, other Ed25519 one: fail, do not reconnect.
                raise ExtendError("Ed25519 identity differs from the open channel's",
                                  DestroyReason.OR_IDENTITY)
            return chan
        task = self._pending.get(target.rsa_id)
        if task is None:
            task = self.node.rt.spawn(self._connect(target), name=f"extend-connect {target.address}")
            self._pending[target.rsa_id] = task
        outcome = await task
        if isinstance(outcome, ExtendError):
            raise outcome
        if outcome.closed:
            raise ExtendError("channel closed before use", DestroyReason.CHANNEL_CLOSED)
        return outcome  # type: ignore[no-any-return]

    async def _connect(self, target: ExtendTarget) -> RelayChannel | ExtendError:
        node = self.node
        try:
            stream = await timeout(node.rt, node.config.connect_timeout,
                                   node.rt.connect(target.address, target.port, tls=True),
                                   what="extend connect")
        except (NetworkError, Timeout) as exc:
            self._pending.pop(target.rsa_id, None)
            return ExtendError(f"cannot connect: {exc}", DestroyReason.CONNECTFAILED)
        chan = RelayChannel(node, stream, outgoing=True)
        try:
            await timeout(node.rt, HANDSHAKE_TIMEOUT,
                          chan.initiate_handshake(target.rsa_id, target.ed_id), what="handshake")
        except (ChannelError, NetworkError, ProtocolError, Timeout) as exc:
            self._pending.pop(target.rsa_id, None)
            stream.abort()
            reason = (exc.destroy_reason if isinstance(exc, ExtendError)
                      else DestroyReason.CONNECTFAILED)
            return ExtendError(f"link handshake failed: {exc}", reason)
        except Cancelled:
            stream.abort()
            raise
        self._pending.pop(target.rsa_id, None)
        self.open[target.rsa_id] = chan
        node.trace("chan-open", chan=chan.label, direction="out", link=chan.link_version)
        node.rt.spawn(chan.run(), name=f"chan {chan.label}")
        return chan

    def forget(self, chan: RelayChannel) -> None:
        if chan.peer_rsa_id is not None and self.open.get(chan.peer_rsa_id) is chan:
            del self.open[chan.peer_rsa_id]


class ExtendError(ChannelError):
    """An EXTEND2 cannot be carried out; ``destroy_reason`` goes back to the client."""

    def __init__(self, reason: str, destroy_reason: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.destroy_reason = destroy_reason
