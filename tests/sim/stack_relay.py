"""A small scripted Tor relay for the client-stack sim tests, on gotor's pure layer only.

It is independent of gotor.link / gotor.circuit / gotor.stream (a symmetric bug must not
pass unnoticed): link responder (VERSIONS, CERTS from ``build_responder_certs`` bound to
its TLS certificate, AUTH_CHALLENGE, NETINFO), CREATE2 (ntor, ntor-v3) and CREATE_FAST,
EXTEND2 to another ScriptRelay (with a minimal initiator handshake), relay crypto per
hop, and an exit: BEGIN -> TCP through the fabric, DATA both ways with circuit
(1000/100, SENDME v1 checked) and stream (500/50) windows, END, RESOLVE, BEGIN_DIR.

``Misbehave`` switches make it break the protocol on purpose.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

# Re-exported for the sim tests, which reach stack_helpers through this module.
from stack_helpers import FakeRelay, ScriptedPath, cells, fake_relay, server_handshake

from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason
from gotor.cells.chanmsg import (
    AuthChallenge,
    Certs,
    Create2,
    Created2,
    CreatedFast,
    CreateFast,
    Destroy,
    Netinfo,
    Versions,
)
from gotor.cells.codec import ChannelCodec
from gotor.cells.linkspec import LinkSpecIPv4, LinkSpecRsaId
from gotor.cells.relay import RELAY_DATA_MAX, RelayCmd, decode_relay_payload
from gotor.cells.relaymsg import (
    Begin,
    BeginDir,
    Connected,
    Data,
    End,
    EndReason,
    Extend2,
    Extended2,
    RelayMsg,
    Resolve,
    Resolved,
    ResolvedAnswer,
    Sendme,
    decode_relay_msg,
    encode_relay_msg,
)
from gotor.crypto import fast
from gotor.crypto.relaycrypto import TOR1_KEY_MATERIAL_LEN, RelayHopCrypto
from gotor.errors import ConnectionRefused, NetworkError, ProtocolError
from gotor.runtime.api import ByteStream
from gotor.runtime.sync import Event
from simnet.binding import SimRuntime
from simnet.net import Host, Network
from simnet.tls import cert_der, make_credentials

OR_PORT = 9001


@dataclass
class Misbehave:
    """Ways to break the protocol on purpose."""

    certs_for_other_tls: bool = False  # CERTS bound to another TLS certificate
    destroy_after_data: int | None = None  # DESTROY toward the client after n DATA cells sent
    wrong_sendme_digest: bool = False  # our circuit SENDMEs (v1) carry a bad digest
    no_stream_sendmes: bool = False  # never grant the client more stream window
    no_circuit_sendmes: bool = False  # never grant the client more circuit window
    stall_before_created: bool = False  # never answer CREATE2 / EXTEND2
    stall_resolve: bool = False  # never answer RESOLVE
    close_after_versions: bool = False  # answer VERSIONS, then hang up
    inject: bytes = b""  # raw bytes sent half a second after the handshake
    close_after_inject: bool = False  # ... and then the connection is closed


@dataclass
class ExitStream:
    sid: int
    tcp: ByteStream | None = None
    package: int = 500
    deliver: int = 500
    ended: bool = False
    draining: bool = False
    directory: bool = False  # BEGIN_DIR: answers once the request arrives


@dataclass
class Circ:
    prev: Conn
    prev_id: int
    crypto: RelayHopCrypto
    next: Conn | None = None
    next_id: int = 0
    package: int = 1000
    deliver: int = 1000
    sent_data: int = 0
    digests: list[bytes] = field(default_factory=list)
    streams: dict[int, ExitStream] = field(default_factory=dict)
    window: Event | None = None
    dead: bool = False


class Conn:
    """One TLS link of the relay (either direction), after the handshake."""

    def __init__(self, relay: ScriptRelay, stream: ByteStream) -> None:
        self.relay = relay
        self.stream = stream
        self.codec = ChannelCodec(5)
        self.circs: dict[int, Circ] = {}
        self.closed = False
        self._out: list[bytes] = []

    def send(self, cell: ChanCell) -> None:
        """Queue a cell; the cells of one turn of the event loop leave in one write."""
        if not self.closed:
            if not self._out:
                self.relay.rt.call_later(0, self.flush)
            self._out.append(self.codec.encode(cell))

    def flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if data and not self.closed:
            try:
                self.stream.write(data)
            except NetworkError:
                self.closed = True

    async def drain(self) -> None:
        self.flush()
        await self.stream.drain()

    async def run(self, buf: bytearray) -> None:
        try:
            while True:
                while (cell := self.codec.decode(buf)) is not None:
                    self.relay.on_cell(self, cell)
                data = await self.stream.read()
                if not data:
                    break
                buf += data
        except (NetworkError, ProtocolError):
            pass
        self.closed = True
        for circ in list(self.circs.values()):
            self.relay.teardown(circ, from_conn=self)


class ScriptRelay:
    """One scripted relay on its own simnet host (see the module docstring)."""

    def __init__(self, net: Network, name: str, *, dns: dict[str, str] | None = None,
                 reject_ports: frozenset[int] = frozenset(), misbehave: Misbehave | None = None,
                 emit_v1: bool = True) -> None:
        self.net = net
        self.host: Host = net.add_host(name)
        self.creds = make_credentials(net.world, name)
        self.keys: FakeRelay = fake_relay(name, cert_der(self.creds))
        self.dns = dns or {}
        self.reject_ports = reject_ports
        self.bad = misbehave or Misbehave()
        self.emit_v1 = emit_v1
        self.peers: dict[bytes, ScriptRelay] = {}
        self.links: dict[bytes, Conn] = {}
        self.stats: dict[str, int] = {"data_in": 0, "data_out": 0, "early": 0, "destroy_in": 0}

    @property
    def rt(self) -> SimRuntime:
        return self.host.runtime

    @property
    def ip(self) -> str:
        return self.host.ipv4 or ""

    def hop(self, *, ntor_v3: bool = False) -> Any:
        return self.keys.hop(self.ip, OR_PORT, ntor_v3=ntor_v3)

    def target(self) -> Any:
        return self.keys.target(self.ip, OR_PORT)

    async def start(self) -> None:
        await self.rt.listen(self.ip, OR_PORT, self._serve, tls=self.creds)

    # --- link handshakes ------------------------------------------------------------------
    async def _serve(self, stream: ByteStream) -> None:
        buf = bytearray()
        pre = ChannelCodec()
        while (first := pre.decode(buf)) is None:
            data = await stream.read()
            if not data:
                return
            buf += data
        if first.cmd != ChanCmd.VERSIONS or 5 not in Versions.decode(first.body).versions:
            return
        if self.bad.close_after_versions:
            stream.write(pre.encode(Versions((3, 4, 5)).to_cell()))
            return
        certs = self.keys.certs(self.rt.wallclock(), b"another TLS certificate"
                                if self.bad.certs_for_other_tls else None)
        codec = ChannelCodec(5)
        peer_ip = ip_address(stream.peer[0])
        stream.write(pre.encode(Versions((3, 4, 5)).to_cell())
                     + codec.encode(Certs(tuple(certs)).to_cell())
                     + codec.encode(AuthChallenge(bytes(32), (1, 3)).to_cell())
                     + codec.encode(Netinfo.from_ips(int(self.rt.wallclock()), peer_ip,
                                                     (IPv4Address(self.ip),)).to_cell()))
        if self.bad.inject:
            self.rt.spawn(self._inject_later(stream), name="inject")
        conn = Conn(self, stream)
        await conn.run(buf)

    async def _inject_later(self, stream: ByteStream) -> None:
        await self.rt.sleep(0.5)
        stream.write(self.bad.inject)
        if self.bad.close_after_inject:
            await stream.aclose()

    async def _connect(self, peer: ScriptRelay) -> Conn:
        conn = self.links.get(peer.keys.rsa_id)
        if conn is not None and not conn.closed:
            return conn
        stream = await self.rt.connect(peer.ip, OR_PORT, tls=True)
        pre, codec = ChannelCodec(), ChannelCodec(5)
        stream.write(pre.encode(Versions((4, 5)).to_cell()))
        buf = bytearray()
        done = False
        while not done:
            buf += await stream.read()
            decoder = pre if not pre.link_version else codec
            while (cell := decoder.decode(buf)) is not None:
                if cell.cmd == ChanCmd.VERSIONS:
                    pre.link_version = 5
                    decoder = codec
                done = done or cell.cmd == ChanCmd.NETINFO
        stream.write(codec.encode(Netinfo.from_ips(0, None).to_cell()))
        conn = Conn(self, stream)
        self.links[peer.keys.rsa_id] = conn
        self.rt.spawn(conn.run(buf), name="relay-link")
        return conn

    # --- cells ------------------------------------------------------------------------------
    def on_cell(self, conn: Conn, cell: ChanCell) -> None:
        circ = conn.circs.get(cell.circ_id)
        if cell.cmd in (ChanCmd.CREATE2, ChanCmd.CREATE_FAST):
            if not self.bad.stall_before_created:
                self._create(conn, cell)
        elif circ is None:
            return
        elif cell.cmd == ChanCmd.DESTROY:
            self.stats["destroy_in"] += 1
            self.teardown(circ, from_conn=conn)
        elif conn is circ.prev and cell.cmd in (ChanCmd.RELAY, ChanCmd.RELAY_EARLY):
            self.stats["early"] += cell.cmd == ChanCmd.RELAY_EARLY
            self._forward(circ, cell)
        elif conn is circ.next and cell.cmd == ChanCmd.CREATED2:
            reply = Created2.decode(cell.body).handshake
            self.originate(circ, Extended2(reply))
        elif conn is circ.next and cell.cmd == ChanCmd.RELAY:
            circ.prev.send(ChanCell(circ.prev_id, ChanCmd.RELAY,
                                    circ.crypto.encrypt_backward_relay(cell.body)))

    def _create(self, conn: Conn, cell: ChanCell) -> None:
        rnd = self.rt.random_bytes
        if cell.cmd == ChanCmd.CREATE_FAST:
            reply, keys = fast.server_handshake(CreateFast.decode(cell.body).x, rnd(20),
                                                TOR1_KEY_MATERIAL_LEN)
            conn.send(CreatedFast(reply[:20], reply[20:]).to_cell(cell.circ_id))
        else:
            create = Create2.decode(cell.body)
            reply, keys = server_handshake(self.keys, create.handshake_type, create.handshake, rnd)
            conn.send(Created2(reply).to_cell(cell.circ_id))
        circ = Circ(conn, cell.circ_id, RelayHopCrypto(keys), window=Event(self.rt))
        conn.circs[cell.circ_id] = circ

    def _forward(self, circ: Circ, cell: ChanCell) -> None:
        payload, recognized = circ.crypto.decrypt_forward(cell.body)
        if not recognized:
            if circ.next is not None:
                circ.next.send(ChanCell(circ.next_id, cell.cmd, payload))
            return
        rc = decode_relay_payload(payload)
        msg = decode_relay_msg(rc.cmd, rc.data)
        if isinstance(msg, Extend2) and cell.cmd == ChanCmd.RELAY_EARLY:
            if not self.bad.stall_before_created:
                self.rt.spawn(self._extend(circ, msg), name="relay-extend")
        elif rc.stream_id == 0 and isinstance(msg, Sendme):
            self._circuit_sendme(circ, msg)
        else:
            if rc.cmd == RelayCmd.DATA:
                self._count_deliver(circ)
            self._exit_msg(circ, rc.stream_id, msg)

    def originate(self, circ: Circ, msg: RelayMsg, stream_id: int = 0) -> None:
        if circ.dead:
            return
        body = circ.crypto.encrypt_backward_originate(encode_relay_msg(msg, stream_id))
        circ.prev.send(ChanCell(circ.prev_id, ChanCmd.RELAY, body))

    def teardown(self, circ: Circ, *, from_conn: Conn | None = None) -> None:
        if circ.dead:
            return
        circ.dead = True
        circ.prev.circs.pop(circ.prev_id, None)
        if from_conn is not circ.prev:
            circ.prev.send(Destroy(DestroyReason.DESTROYED).to_cell(circ.prev_id))
        if circ.next is not None:
            circ.next.circs.pop(circ.next_id, None)
            if from_conn is not circ.next:
                circ.next.send(Destroy(DestroyReason.NONE).to_cell(circ.next_id))
        for st in circ.streams.values():
            st.ended = True
            if st.tcp is not None:
                st.tcp.abort()
        if circ.window is not None:
            circ.window.set()

    async def _extend(self, circ: Circ, msg: Extend2) -> None:
        ids = [s.rsa_id for s in msg.link_specs if isinstance(s, LinkSpecRsaId)]
        addrs = [s for s in msg.link_specs if isinstance(s, LinkSpecIPv4)]
        peer = self.peers.get(ids[0]) if ids else None
        if peer is None or not addrs or str(addrs[0].address) != peer.ip:
            self.teardown(circ)
            return
        try:
            conn = await self._connect(peer)
        except NetworkError:
            self.teardown(circ)
            return
        circ.next, circ.next_id = conn, 0x8000_0000 | self.rt.rng.getrandbits(31)
        conn.circs[circ.next_id] = circ
        conn.send(Create2(msg.handshake_type, msg.handshake).to_cell(circ.next_id))

    # --- flow control -----------------------------------------------------------------------
    def _count_deliver(self, circ: Circ) -> None:
        self.stats["data_in"] += 1
        circ.deliver -= 1
        if circ.deliver <= 900 and not self.bad.no_circuit_sendmes:
            circ.deliver += 100
            tag = bytes(20) if self.bad.wrong_sendme_digest else circ.crypto.last_digest_received
            self.originate(circ, Sendme(1, tag) if self.emit_v1 else Sendme())

    def _circuit_sendme(self, circ: Circ, msg: Sendme) -> None:
        expected = circ.digests.pop(0) if circ.digests else None
        if expected is None or (msg.version == 1 and msg.data != expected):
            self.teardown(circ)
            return
        circ.package += 100
        assert circ.window is not None
        circ.window.set()

    async def send_data(self, circ: Circ, st: ExitStream, chunk: bytes) -> bool:
        """Queue one DATA cell toward the client, waiting for both windows (no drain)."""
        assert circ.window is not None
        while not (circ.dead or st.ended) and (circ.package <= 0 or st.package <= 0):
            circ.window.clear()
            await circ.window.wait()  # set by either kind of SENDME
        if circ.dead or st.ended:
            return False
        circ.package -= 1
        st.package -= 1
        self.originate(circ, Data(chunk), st.sid)
        self.stats["data_out"] += 1
        circ.sent_data += 1
        if circ.sent_data % 100 == 0:
            circ.digests.append(circ.crypto.last_digest_sent)
        if self.bad.destroy_after_data == circ.sent_data:
            self.teardown(circ)
            return False
        return True

    # --- exit ---------------------------------------------------------------------------------
    def _exit_msg(self, circ: Circ, sid: int, msg: RelayMsg) -> None:
        handlers: dict[type, Callable[[Circ, int, Any], None]] = {
            Begin: self._begin, Data: self._data, End: self._end, Sendme: self._stream_sendme,
            Resolve: self._resolve, BeginDir: self._begin_dir,
        }
        handler = handlers.get(type(msg))
        if handler is not None:
            handler(circ, sid, msg)

    def _begin(self, circ: Circ, sid: int, msg: Begin) -> None:
        st = ExitStream(sid)
        circ.streams[sid] = st
        self.rt.spawn(self._connect_exit(circ, st, msg), name=f"exit-{sid}")

    async def _connect_exit(self, circ: Circ, st: ExitStream, msg: Begin) -> None:
        if msg.port in self.reject_ports:
            self._end_stream(circ, st, EndReason.EXITPOLICY)
            return
        addr = self.dns.get(msg.address, msg.address)
        try:
            ip_address(addr)
        except ValueError:
            self._end_stream(circ, st, EndReason.RESOLVEFAILED)
            return
        try:
            st.tcp = await self.rt.connect(addr, msg.port)
        except ConnectionRefused:
            self._end_stream(circ, st, EndReason.CONNECTREFUSED)
            return
        if st.ended:
            st.tcp.abort()
            return
        ip = ip_address(addr)
        self.originate(circ, Connected(ip, 300), st.sid)
        self.rt.spawn(self._pump_to_client(circ, st), name=f"exit-pump-{st.sid}")

    async def _pump_to_client(self, circ: Circ, st: ExitStream) -> None:
        assert st.tcp is not None
        try:
            while not st.ended:
                data = await st.tcp.read(RELAY_DATA_MAX * 20)
                if not data:
                    self._end_stream(circ, st, EndReason.DONE)
                    return
                for i in range(0, len(data), RELAY_DATA_MAX):
                    if not await self.send_data(circ, st, data[i : i + RELAY_DATA_MAX]):
                        return
                await circ.prev.drain()
        except NetworkError:
            self._end_stream(circ, st, EndReason.CONNRESET)

    def _end_stream(self, circ: Circ, st: ExitStream, reason: int) -> None:
        if not st.ended:
            st.ended = True
            circ.streams.pop(st.sid, None)
            self.originate(circ, End(reason), st.sid)
            if st.tcp is not None:
                st.tcp.abort()
            self._wake(circ)

    def _wake(self, circ: Circ) -> None:
        if circ.window is not None:
            circ.window.set()

    def _data(self, circ: Circ, sid: int, msg: Data) -> None:
        st = circ.streams.get(sid)
        if st is not None and st.directory:
            st.directory = False
            self.rt.spawn(self._serve_dir(circ, st), name="dir-serve")
        if st is None or st.tcp is None:
            return
        st.deliver -= 1
        try:
            st.tcp.write(msg.data)
        except NetworkError:
            return
        if st.deliver <= 450 and not st.draining:
            st.draining = True
            self.rt.spawn(self._after_write(circ, st), name="exit-drain")

    async def _after_write(self, circ: Circ, st: ExitStream) -> None:
        """Stream SENDMEs once what the client sent has been handed to TCP (tor-spec §7.4)."""
        assert st.tcp is not None
        try:
            await st.tcp.drain()
        except NetworkError:
            return
        finally:
            st.draining = False
        while st.deliver <= 450 and not st.ended and not self.bad.no_stream_sendmes:
            st.deliver += 50
            self.originate(circ, Sendme(), st.sid)

    def _end(self, circ: Circ, sid: int, msg: End) -> None:
        st = circ.streams.pop(sid, None)
        if st is not None:
            st.ended = True
            if st.tcp is not None:
                self.rt.spawn(st.tcp.aclose(), name="exit-close")
            self._wake(circ)

    def _stream_sendme(self, circ: Circ, sid: int, msg: Sendme) -> None:
        st = circ.streams.get(sid)
        if st is not None:
            st.package += 50
            self._wake(circ)

    def _resolve(self, circ: Circ, sid: int, msg: Resolve) -> None:
        if self.bad.stall_resolve:
            return
        addr = self.dns.get(msg.hostname)
        answers = ((ResolvedAnswer.for_ip(ip_address(addr), 60),) if addr else
                   (ResolvedAnswer(0xF1, b"Error resolving hostname", 0),))
        self.originate(circ, Resolved(answers), sid)

    def _begin_dir(self, circ: Circ, sid: int, msg: RelayMsg) -> None:
        circ.streams[sid] = ExitStream(sid, directory=True)
        self.originate(circ, Connected(), sid)

    async def _serve_dir(self, circ: Circ, st: ExitStream) -> None:
        body = b"HTTP/1.0 200 OK\r\n\r\n" + b"directory document " * 100
        for i in range(0, len(body), RELAY_DATA_MAX):
            if not await self.send_data(circ, st, body[i : i + RELAY_DATA_MAX]):
                return
        self._end_stream(circ, st, EndReason.DONE)


__all__ = ["Misbehave", "ScriptRelay", "ScriptedPath", "cells", "fake_relay", "link"]


def link(relays: list[ScriptRelay]) -> None:
    """Let every relay extend to every other."""
    for r in relays:
        r.peers = {o.keys.rsa_id: o for o in relays if o is not r}
