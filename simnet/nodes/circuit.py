"""Circuits at an emulated relay: CREATE*, relay crypto, forwarding, EXTEND2, teardown.

One :class:`OrCircuit` per circuit through this relay (C tor's ``or_circuit_t``):
a previous side (the channel and circuit ID it was created on), possibly a next
side (after EXTEND2), one layer of relay crypto
(:class:`~gotor.crypto.relaycrypto.RelayHopCrypto`), and, for the cells that
end here, circuit windows and streams.

Rules, with the C tor behaviour they follow (tor-spec §5, §6.1, §7.3):

* CREATE2 (ntor, type 2; ntor-v3, type 3 when the relay advertises Relay=4,
  whose client extensions are accepted and ignored: no congestion control is
  negotiated) and CREATE_FAST are answered with CREATED2 / CREATED_FAST.  A
  zero or already used circuit ID is dropped; a CREATE on a channel this relay
  opened, a circuit ID with the wrong high bit (link protocol 4+), an unknown
  handshake type or a failed handshake get DESTROY(PROTOCOL).
* A forward RELAY/RELAY_EARLY cell is decrypted; if recognized it is handled
  here, else it goes on to the next hop with the same command, and with no
  next hop the circuit closes (PROTOCOL).  More than 8 RELAY_EARLY cells, or
  any RELAY_EARLY from the next hop, close it (§5.6).
* EXTEND2 only in RELAY_EARLY: otherwise it is dropped, as C tor drops it.
  It needs one RSA identity and an address; extending to ourselves, a second
  EXTEND2, duplicate identities or an unknown handshake type close the
  circuit (PROTOCOL); a channel that cannot be opened, or proves another
  identity, closes it with CONNECTFAILED / OR_IDENTITY.  CREATED2 from the
  next hop becomes EXTENDED2.
* DESTROY from either side closes the circuit and sends DESTROY(DESTROYED) to
  the other (C tor since 0.4.5.13 propagates DESTROY both ways); a dead channel
  sends DESTROY(CHANNEL_CLOSED) the other way.  TRUNCATE sends DESTROY to the
  next hop and answers TRUNCATED(REQUESTED).
* Unknown relay commands, and those meant for clients, are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gotor.bytesio import Reader
from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason, HandshakeType
from gotor.cells.chanmsg import Create2, Created2, CreatedFast, Destroy
from gotor.cells.ext import read_extension_list
from gotor.cells.linkspec import LinkSpecEd25519Id, LinkSpecIPv4, LinkSpecIPv6, LinkSpecRsaId
from gotor.cells.relay import (
    PADDING_ZERO_PREFIX,
    RELAY_DATA_MAX,
    RelayCmd,
    RelayMsg,
    decode_relay_payload,
    encode_relay_payload,
)
from gotor.cells.relaymsg import (
    Data,
    End,
    EndReason,
    Extend2,
    Extended2,
    Sendme,
    Truncated,
    decode_relay_msg,
)
from gotor.crypto import fast, ntor, ntor_v3
from gotor.crypto.relaycrypto import RelayHopCrypto
from gotor.errors import Cancelled, ProtocolError
from gotor.runtime.sync import Event
from simnet.nodes.channel import ExtendError, ExtendTarget, RelayChannel
from simnet.nodes.sendme import CircuitWindows

if TYPE_CHECKING:
    from simnet.nodes.exit import EdgeStream
    from simnet.nodes.relay import RelayNode

MAX_RELAY_EARLY = 8
#: Df | Db | Kf | Kb (72 bytes, relay crypto) | KH (20): what C tor derives per hop.
KEY_MATERIAL_LEN = 92
_ZERO_ED = bytes(32)


class OrCircuit:
    """One circuit through this relay (see the module docstring)."""

    def __init__(self, node: RelayNode, p_chan: RelayChannel, p_id: int,
                 crypto: RelayHopCrypto, *, kind: str) -> None:
        self.node = node
        self.p_chan: RelayChannel | None = p_chan
        self.p_id = p_id
        self.n_chan: RelayChannel | None = None
        self.n_id = 0
        self.crypto = crypto
        self.kind = kind
        self.fast = kind == "fast"
        self.early_left = MAX_RELAY_EARLY
        self.windows = CircuitWindows(node.flow_params)
        self.streams: dict[int, EdgeStream] = {}
        self.extending = False
        self._extend_gen = 0
        self.originated = 0
        self.closed = False
        self.name = f"{p_chan.label}/{p_id:x}"
        self.package_ready = Event(node.rt)
        self.package_ready.set()

    # --- channel cells ------------------------------------------------------------------
    def on_cell(self, chan: RelayChannel, cell: ChanCell) -> None:
        if self.closed:
            return
        forward = chan is self.p_chan and cell.circ_id == self.p_id
        table = _FORWARD if forward else _BACKWARD
        handler = table.get(cell.cmd)
        try:
            if handler is None:
                raise ProtocolError(f"unexpected cell command {cell.cmd} on a circuit")
            handler(self, cell)
        except ProtocolError as exc:
            self.close(DestroyReason.PROTOCOL, exc.reason)

    def _relay_forward(self, cell: ChanCell) -> None:
        early = cell.cmd == ChanCmd.RELAY_EARLY
        if early:
            if self.early_left == 0:
                raise ProtocolError("more than 8 RELAY_EARLY cells")
            self.early_left -= 1
        payload, mine = self.crypto.decrypt_forward(cell.body)
        if not mine:
            if self.n_chan is None or self.extending:
                raise ProtocolError("unrecognized relay cell at the end of the circuit")
            self.n_chan.send(ChanCell(self.n_id, cell.cmd, payload))
            return
        self.windows.note_cell_received(self.crypto.last_digest_received)
        header = decode_relay_payload(payload)
        handler = _RELAY.get(header.cmd)
        if handler is None:
            self.node.trace("relay-dropped", circ=self.name, cmd=header.cmd)
            return
        handler(self, decode_relay_msg(header.cmd, header.data), header.stream_id, early)

    def _relay_backward(self, cell: ChanCell) -> None:
        if self.p_chan is not None:
            self.p_chan.send(ChanCell(self.p_id, ChanCmd.RELAY,
                                      self.crypto.encrypt_backward_relay(cell.body)))

    def _early_backward(self, _cell: ChanCell) -> None:
        raise ProtocolError("inbound RELAY_EARLY cell")

    def _destroy_from_prev(self, _cell: ChanCell) -> None:
        self._detach_prev()
        self.close(DestroyReason.DESTROYED, "DESTROY from the previous hop")

    def _destroy_from_next(self, _cell: ChanCell) -> None:
        self._detach_next()
        self.close(DestroyReason.DESTROYED, "DESTROY from the next hop")

    def _created_from_next(self, cell: ChanCell) -> None:
        if not self.extending:
            raise ProtocolError("CREATED2 without a pending extend")
        self.extending = False
        self.originate(Extended2(Created2.decode(cell.body).handshake))
        self.node.trace("circ-extended", circ=self.name, to=self.n_chan.label if self.n_chan else "")

    def channel_closed(self, chan: RelayChannel) -> None:
        if chan is self.p_chan:
            self.p_chan = None
        if chan is self.n_chan:
            self.n_chan = None
        self.close(DestroyReason.CHANNEL_CLOSED, f"channel {chan.label} closed")

    # --- sending ------------------------------------------------------------------------
    def originate(self, msg: RelayMsg, stream_id: int = 0) -> bytes:
        """Send a relay message from this hop toward the client; returns its running digest."""
        if self.closed or self.p_chan is None:
            return b""
        data = msg.encode()
        pad = max(0, RELAY_DATA_MAX - len(data) - PADDING_ZERO_PREFIX)
        payload = encode_relay_payload(msg.cmd, stream_id, data,
                                       self.node.rt.random_bytes(pad) if pad else b"")
        cell = self.crypto.encrypt_backward_originate(payload)
        bad = self.node.misbehaviour
        if bad.corrupt_digest:
            cell = cell[:5] + bytes([cell[5] ^ 0x80]) + cell[6:]
        self.p_chan.send(ChanCell(self.p_id, ChanCmd.RELAY, cell))
        self.originated += 1
        if bad.destroy_after is not None and self.originated >= bad.destroy_after:
            self.close(DestroyReason.INTERNAL, "misbehaviour: DESTROY after N cells")
        return self.crypto.last_digest_sent

    def send_data(self, stream_id: int, data: bytes) -> None:
        """One DATA cell from a stream ending here (the caller checked the windows)."""
        digest = self.originate(Data(data), stream_id)
        self.windows.note_data_sent(digest)
        if not self.windows.can_package():
            self.package_ready.clear()

    def end_stream(self, stream_id: int, reason: int, **fields: object) -> None:
        self.streams.pop(stream_id, None)
        self.originate(End(reason, **fields), stream_id)  # type: ignore[arg-type]

    # --- relay messages for this hop ------------------------------------------------------
    def _on_data(self, msg: RelayMsg, stream_id: int, _early: bool) -> None:
        sendme = self.windows.note_data_received()
        if sendme is not None:
            self.originate(sendme)
        stream = self.streams.get(stream_id) if stream_id else None
        if stream is None or not isinstance(msg, Data):
            return
        try:
            stream.on_data(msg.data)
        except ProtocolError:
            self.end_stream(stream_id, EndReason.TORPROTOCOL)
            raise

    def _on_sendme(self, msg: RelayMsg, stream_id: int, _early: bool) -> None:
        if not isinstance(msg, Sendme):
            return
        if stream_id == 0:
            self.windows.on_sendme(msg)
            if self.windows.can_package():
                self.package_ready.set()
            return
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.on_sendme()

    def _on_end(self, msg: RelayMsg, stream_id: int, _early: bool) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            stream.on_end()

    def _on_extend2(self, msg: RelayMsg, stream_id: int, early: bool) -> None:
        if stream_id or not isinstance(msg, Extend2):
            return
        if not early:
            # tor-spec §5.6; C tor drops such cells ("EXTEND cell received, but not via
            # RELAY_EARLY. Dropping.") rather than closing the circuit.
            self.node.trace("extend-dropped", circ=self.name, why="not in RELAY_EARLY")
            return
        if self.extending or self.n_chan is not None:
            raise ProtocolError("EXTEND2 on a circuit that already has a next hop")
        target = self._extend_target(msg)
        if msg.handshake_type not in (HandshakeType.NTOR, HandshakeType.NTOR_V3):
            raise ProtocolError(f"EXTEND2 with handshake type {msg.handshake_type}")
        self.extending = True
        self._extend_gen += 1
        self.node.rt.spawn(self._extend(target, msg, self._extend_gen),
                           name=f"extend {self.name}")

    def _extend_target(self, msg: Extend2) -> ExtendTarget:
        by_type: dict[type, list[object]] = {}
        for spec in msg.link_specs:
            by_type.setdefault(type(spec), []).append(spec)
        rsa = by_type.get(LinkSpecRsaId, [])
        ed = by_type.get(LinkSpecEd25519Id, [])
        if len(rsa) != 1 or len(ed) > 1:
            raise ProtocolError("EXTEND2 needs exactly one RSA identity and at most one Ed25519")
        rsa_id = rsa[0].rsa_id  # type: ignore[attr-defined]
        ed_id = ed[0].ed25519_id if ed else None  # type: ignore[attr-defined]
        if rsa_id == bytes(20):
            raise ProtocolError("EXTEND2 with an all-zero RSA identity")
        keys = self.node.keys
        if rsa_id == keys.rsa_id or ed_id == keys.ed_id:
            raise ProtocolError("EXTEND2 back to this relay")
        addr = (by_type.get(LinkSpecIPv4) or by_type.get(LinkSpecIPv6) or [None])[0]
        if addr is None:
            raise ProtocolError("EXTEND2 without an address")
        return ExtendTarget(str(addr.address), addr.port, rsa_id,  # type: ignore[attr-defined]
                            None if ed_id == _ZERO_ED else ed_id)

    async def _extend(self, target: ExtendTarget, msg: Extend2, gen: int) -> None:
        try:
            chan = await self.node.channels.get(target)
        except ExtendError as exc:
            if gen == self._extend_gen:
                self.close(exc.destroy_reason, exc.reason)
            return
        except Cancelled:
            raise
        if self.closed or gen != self._extend_gen or not self.extending:
            return
        self.n_id = chan.alloc_circ_id()
        self.n_chan = chan
        chan.circuits[self.n_id] = self
        chan.send(Create2(msg.handshake_type, msg.handshake).to_cell(self.n_id))

    def _on_truncate(self, _msg: RelayMsg, stream_id: int, _early: bool) -> None:
        if stream_id:
            return
        self._extend_gen += 1
        self.extending = False
        chan, circ_id = self.n_chan, self.n_id
        self._detach_next()
        if chan is not None:
            chan.send(Destroy(DestroyReason.REQUESTED).to_cell(circ_id))
        self.originate(Truncated(DestroyReason.REQUESTED))

    def _on_begin(self, msg: RelayMsg, stream_id: int, _early: bool) -> None:
        from simnet.nodes import exit as exit_mod

        exit_mod.on_begin(self, msg, stream_id)

    def _on_resolve(self, msg: RelayMsg, stream_id: int, _early: bool) -> None:
        from simnet.nodes import exit as exit_mod

        exit_mod.on_resolve(self, msg, stream_id)

    def _on_extend_tap(self, _msg: RelayMsg, _stream_id: int, _early: bool) -> None:
        raise ProtocolError("EXTEND (TAP) is not supported")

    # --- teardown -------------------------------------------------------------------------
    def _detach_prev(self) -> None:
        if self.p_chan is not None:
            self.p_chan.circuits.pop(self.p_id, None)
            self.p_chan = None

    def _detach_next(self) -> None:
        if self.n_chan is not None:
            self.n_chan.circuits.pop(self.n_id, None)
            self.n_chan = None

    def close(self, reason: int, why: str = "") -> None:
        """Tear down: DESTROY(reason) to every side still attached, streams closed."""
        if self.closed:
            return
        self.closed = True
        for chan, circ_id in ((self.p_chan, self.p_id), (self.n_chan, self.n_id)):
            if chan is not None:
                chan.circuits.pop(circ_id, None)
                chan.send(Destroy(reason).to_cell(circ_id))
        self.p_chan = self.n_chan = None
        for stream in list(self.streams.values()):
            stream.abort()
        self.streams.clear()
        self.package_ready.set()
        self.node.trace("circ-closed", circ=self.name, reason=int(reason), why=why)


_Handler = Callable[[OrCircuit, ChanCell], None]
_FORWARD: dict[int, _Handler] = {
    ChanCmd.RELAY: OrCircuit._relay_forward,
    ChanCmd.RELAY_EARLY: OrCircuit._relay_forward,
    ChanCmd.DESTROY: OrCircuit._destroy_from_prev,
}
_BACKWARD: dict[int, _Handler] = {
    ChanCmd.RELAY: OrCircuit._relay_backward,
    ChanCmd.RELAY_EARLY: OrCircuit._early_backward,
    ChanCmd.DESTROY: OrCircuit._destroy_from_next,
    ChanCmd.CREATED2: OrCircuit._created_from_next,
}
_RelayHandler = Callable[[OrCircuit, RelayMsg, int, bool], None]
_RELAY: dict[int, _RelayHandler] = {
    RelayCmd.DATA: OrCircuit._on_data,
    RelayCmd.SENDME: OrCircuit._on_sendme,
    RelayCmd.END: OrCircuit._on_end,
    RelayCmd.BEGIN: OrCircuit._on_begin,
    RelayCmd.BEGIN_DIR: OrCircuit._on_begin,
    RelayCmd.RESOLVE: OrCircuit._on_resolve,
    RelayCmd.EXTEND2: OrCircuit._on_extend2,
    RelayCmd.EXTEND: OrCircuit._on_extend_tap,
    RelayCmd.TRUNCATE: OrCircuit._on_truncate,
}


# --- CREATE handling ----------------------------------------------------------------------
def accept_create(node: RelayNode, chan: RelayChannel, cell: ChanCell) -> None:
    """Answer a CREATE2 / CREATE_FAST (see the module docstring for the refusals)."""
    if cell.circ_id == 0 or cell.circ_id in chan.circuits:
        node.trace("create-dropped", chan=chan.label, circ=cell.circ_id)
        return
    try:
        if chan.outgoing:
            raise ProtocolError("CREATE on a channel this relay initiated")
        version = chan.link_version or 3
        if version >= 4 and not cell.circ_id & (1 << 31):
            raise ProtocolError("CREATE with the high bit of the circuit ID clear")
        reply, keys, kind = _server_handshake(node, cell)
    except ProtocolError as exc:
        chan.send(Destroy(DestroyReason.PROTOCOL).to_cell(cell.circ_id))
        node.trace("create-refused", chan=chan.label, circ=cell.circ_id, why=exc.reason)
        return
    circ = OrCircuit(node, chan, cell.circ_id, RelayHopCrypto(keys), kind=kind)
    chan.circuits[cell.circ_id] = circ
    chan.send(reply)
    node.trace("circ-created", circ=circ.name, kind=kind)


def _server_handshake(node: RelayNode, cell: ChanCell) -> tuple[ChanCell, bytes, str]:
    """(reply cell, key material, handshake name); ProtocolError if it cannot be answered."""
    rt, keys, bad = node.rt, node.keys, node.misbehaviour
    if cell.cmd == ChanCmd.CREATE_FAST:
        y = rt.random_bytes(fast.HASH_LEN)
        reply, material = fast.server_handshake(cell.body[: fast.CREATE_FAST_LEN], y,
                                                KEY_MATERIAL_LEN)
        if bad.bad_created_auth:
            reply = reply[:-1] + bytes([reply[-1] ^ 1])
        return CreatedFast(reply[:20], reply[20:]).to_cell(cell.circ_id), material, "fast"
    if cell.cmd != ChanCmd.CREATE2:
        raise ProtocolError("CREATE (TAP) is not supported")
    create = Create2.decode(cell.body)
    if create.handshake_type == HandshakeType.NTOR:
        reply, material = ntor.server_handshake(keys.rsa_id, keys.ntor_secret, create.handshake,
                                                rt.random_bytes(32), KEY_MATERIAL_LEN)
        kind = "ntor"
    elif create.handshake_type == HandshakeType.NTOR_V3 and node.config.ntor_v3:
        state, message = ntor_v3.server_receive(keys.ed_id, keys.ntor_secret, create.handshake)
        # Both messages are N_EXTENSIONS-counted lists, as C tor parses and writes them
        # (an empty client message is refused); unknown extensions are ignored.
        r = Reader(message, "ntor-v3 client message")
        read_extension_list(r)
        r.expect_end()
        reply, material = ntor_v3.server_reply(state, rt.random_bytes(32), b"\x00",
                                               KEY_MATERIAL_LEN)
        kind = "ntor-v3"
    else:
        raise ProtocolError(f"unsupported CREATE2 handshake type {create.handshake_type}")
    return _created2_cell(cell.circ_id, reply, node), material, kind


def _created2_cell(circ_id: int, reply: bytes, node: RelayNode) -> ChanCell:
    bad = node.misbehaviour
    if bad.bad_created_auth:   # flip a bit of AUTH (bytes 32..64 in ntor and ntor-v3)
        reply = reply[:40] + bytes([reply[40] ^ 1]) + reply[41:]
    if bad.unexpected_cell:    # a cell this state does not allow: CREATED_FAST for a CREATE2
        return CreatedFast(reply[:20], reply[20:40]).to_cell(circ_id)
    if bad.malformed_created:  # HLEN runs past the end of the cell
        return ChanCell(circ_id, ChanCmd.CREATED2, (600).to_bytes(2, "big") + reply)
    return Created2(reply).to_cell(circ_id)
