"""Streams that end at an emulated relay: exit connections, directory streams, RESOLVE.

BEGIN (tor-spec §6.2, C tor ``connection_exit_begin_conn``): refused with END
TORPROTOCOL on a CREATE_FAST circuit (a one-hop proxy attempt, §5.4), with END
EXITPOLICY when IPv4 is not acceptable to the client (emulated exits are
IPv4-only) or the policy allows the port for no address; otherwise the name is
resolved through the simulated DNS (END RESOLVEFAILED), the address checked
against the full policy (END EXITPOLICY with address and TTL), and a TCP
connection opened through the fabric (END CONNECTREFUSED / TIMEOUT / NOROUTE);
then CONNECTED with the address and TTL, and bytes are spliced both ways.
Data the client sends before CONNECTED (optimistic data) is queued.

BEGIN_DIR (§6.2.1): END NOTDIRECTORY on a relay without a directory cache;
else an empty CONNECTED and one HTTP/1.0 request answered from the
:class:`~simnet.nodes.dircache.DirCache`, then END DONE.

Flow control (:mod:`simnet.nodes.sendme`): a DATA cell leaves only while both
the circuit and the stream package windows allow; a stream SENDME goes back
once received data has been handed to the target connection.  END DONE when
the target closes; END CONNRESET when it resets; an END from the client closes
the target connection after flushing what was already queued.

RESOLVE (§6.4): RESOLVED with the IPv4 answers, a hostname for an
``in-addr.arpa`` query, or an error answer (type 0xF1) for unknown names.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import TYPE_CHECKING, Protocol

from gotor.cells.relay import RELAY_DATA_MAX, RelayMsg
from gotor.cells.relaymsg import (
    Begin,
    BeginDir,
    BeginFlags,
    Connected,
    EndReason,
    Resolve,
    Resolved,
    ResolvedAnswer,
    ResolvedType,
    Sendme,
)
from gotor.errors import (
    ClosedError,
    ConnectionRefused,
    NetworkError,
    ProtocolError,
    Timeout,
)
from gotor.runtime.sync import Event, Queue, timeout
from simnet.nodes.dns import reverse_pointer_address
from simnet.nodes.http import parse_head, response
from simnet.nodes.sendme import StreamWindows

if TYPE_CHECKING:
    from simnet.nodes.circuit import OrCircuit
    from simnet.nodes.dircache import DirCache
    from simnet.nodes.relay import RelayNode


class _Conn(Protocol):
    """What a stream splices with: a TCP connection, or an in-memory directory request."""

    async def read(self, max_bytes: int = 65536) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def aclose(self) -> None: ...
    def abort(self) -> None: ...


class EdgeStream:
    """One stream ending at this relay, spliced with a connection (module docstring)."""

    def __init__(self, circ: OrCircuit, stream_id: int, what: str) -> None:
        self.circ = circ
        self.stream_id = stream_id
        self.what = what
        self.windows = StreamWindows()
        self.conn: _Conn | None = None
        self.ended = False
        rt = circ.node.rt
        self._incoming: Queue[bytes] = Queue(rt)
        self._window_open = Event(rt)
        self._window_open.set()
        self._tasks = [rt.spawn(self._open_then_splice(), name=f"stream {what}")]

    # --- events from the circuit ----------------------------------------------------------
    def on_data(self, data: bytes) -> None:
        self.windows.note_data_received()   # ProtocolError: the circuit closes
        if not self._incoming.closed:
            self._incoming.put_nowait(data)

    def on_sendme(self) -> None:
        self.windows.on_sendme()            # ProtocolError: the circuit closes
        self._window_open.set()

    def on_end(self) -> None:
        """The client ended the stream: flush what is queued, then close the connection."""
        self.ended = True
        self._incoming.close()
        if self.conn is None:
            self.abort()

    def abort(self) -> None:
        self.ended = True
        self._incoming.close()
        for task in self._tasks:
            task.cancel("stream closed")
        if self.conn is not None:
            self.conn.abort()

    # --- the splice -------------------------------------------------------------------------
    async def connect(self) -> _Conn | None:
        """Open the connection, or send END and return None (subclasses)."""
        raise NotImplementedError

    async def _open_then_splice(self) -> None:
        conn = await self.connect()
        if conn is None:
            return
        self.conn = conn
        rt = self.circ.node.rt
        self._tasks.append(rt.spawn(self._to_target(conn), name=f"stream-in {self.what}"))
        await self._to_client(conn)

    async def _to_client(self, conn: _Conn) -> None:
        circ = self.circ
        while await self._windows_open():
            try:
                data = await conn.read(RELAY_DATA_MAX)
            except NetworkError:
                self._finish(EndReason.CONNRESET)
                return
            if not data:
                self._finish(EndReason.DONE)
                return
            # Another stream of the circuit may have used the last of its window meanwhile.
            if not await self._windows_open():
                return
            circ.send_data(self.stream_id, data)
            self.windows.note_data_sent()
            await self._drain_client()

    async def _windows_open(self) -> bool:
        """Wait until both package windows allow a DATA cell; False once the stream ended."""
        circ = self.circ
        while not (self.ended or circ.closed):
            if not circ.windows.can_package():
                await circ.package_ready.wait()
            elif not self.windows.can_package():
                await self._wait_stream_window()
            else:
                return True
        return False

    async def _wait_stream_window(self) -> None:
        self._window_open.clear()
        await self._window_open.wait()

    async def _drain_client(self) -> None:
        chan = self.circ.p_chan
        if chan is not None:
            try:
                await chan.drain()
            except NetworkError:
                pass

    async def _to_target(self, conn: _Conn) -> None:
        circ = self.circ
        try:
            while True:
                data = await self._incoming.get()
                conn.write(data)
                await conn.drain()
                for _ in range(self.windows.sendmes_due()):
                    circ.originate(Sendme(), self.stream_id)
        except ClosedError:
            if self.ended:                     # END from the client: close after the flush
                await _close_quietly(conn)
        except NetworkError:
            conn.abort()

    def _finish(self, reason: int) -> None:
        """The connection ended on our side: END to the client, stop both directions."""
        if self.ended:
            return
        self.ended = True
        self._incoming.close()
        self.circ.end_stream(self.stream_id, reason)
        self.circ.node.trace("stream-end", circ=self.circ.name, stream=self.stream_id,
                             reason=int(reason))
        if self.conn is not None:
            self.circ.node.rt.spawn(_close_quietly(self.conn), name="stream-close")
        for task in self._tasks[1:]:
            task.cancel("stream finished")


async def _close_quietly(conn: _Conn) -> None:
    try:
        await conn.aclose()
    except NetworkError:
        pass


class ExitStream(EdgeStream):
    """BEGIN: a TCP connection from the exit's host to the target."""

    def __init__(self, circ: OrCircuit, stream_id: int, begin: Begin) -> None:
        self.begin = begin
        super().__init__(circ, stream_id, f"{begin.address}:{begin.port}")

    async def connect(self) -> _Conn | None:
        circ, begin = self.circ, self.begin
        node = circ.node
        dns = node.dns
        literal = ip_address_or_none(begin.address)
        if literal is not None:
            addresses: tuple[str, ...] | None = (str(literal),)
        elif dns is not None:
            await node.rt.sleep(dns.delay)
            addresses = dns.lookup(begin.address)
        else:
            addresses = None
        ipv4 = [a for a in addresses or () if ":" not in a]
        if not ipv4:
            self._refuse(EndReason.RESOLVEFAILED)
            return None
        address, ttl = ipv4[0], dns.ttl if dns is not None else 0
        if not node.config.exit_policy.allows(address, begin.port):
            self._refuse(EndReason.EXITPOLICY, address=IPv4Address(address), ttl=ttl)
            return None
        try:
            conn: _Conn = await timeout(node.rt, node.config.connect_timeout,
                                        node.rt.connect(address, begin.port), what="exit connect")
        except ConnectionRefused:
            self._refuse(EndReason.CONNECTREFUSED)
            return None
        except Timeout:
            self._refuse(EndReason.TIMEOUT)
            return None
        except NetworkError as exc:
            self._refuse(EndReason.TIMEOUT if "timed out" in str(exc) else EndReason.NOROUTE)
            return None
        if self.ended or circ.closed:
            conn.abort()
            return None
        circ.originate(Connected(IPv4Address(address), ttl), self.stream_id)
        node.trace("stream-open", circ=circ.name, stream=self.stream_id, target=self.what,
                   address=address)
        return conn

    def _refuse(self, reason: int, **fields: object) -> None:
        if not self.ended and not self.circ.closed:
            self.ended = True
            self.circ.end_stream(self.stream_id, reason, **fields)
            self.circ.node.trace("stream-refused", circ=self.circ.name, stream=self.stream_id,
                                 target=self.what, reason=int(reason))


class DirStream(EdgeStream):
    """BEGIN_DIR: one HTTP/1.0 request answered by the relay's directory cache."""

    async def connect(self) -> _Conn | None:
        circ = self.circ
        cache = circ.node.dir_cache
        if cache is None:
            return None
        circ.originate(Connected(), self.stream_id)
        circ.node.trace("dir-stream", circ=circ.name, stream=self.stream_id)
        client = circ.p_chan.peer_addr if circ.p_chan is not None else None
        return DirRequestConn(circ.node, cache, client)


class DirRequestConn:
    """An in-memory "connection" to a directory cache: request in, response out, EOF."""

    def __init__(self, node: RelayNode, cache: DirCache, client: str | None) -> None:
        self._node = node
        self._cache = cache
        self._client = client
        self._request = bytearray()
        self._response: bytes | None = None
        self._ready = Event(node.rt)

    def write(self, data: bytes) -> None:
        if self._response is not None:
            return        # HTTP/1.0: one request per connection; the rest is ignored
        self._request += data
        now = self._node.rt.wallclock()
        try:
            head = parse_head(self._request)
        except ProtocolError:
            self._respond(response(400, now=now))
            return
        if head is not None:
            self._respond(self._cache.respond(head[0], now=now, client=self._client))
            self._node.trace("dir-request", path=head[0].path[:120])

    def _respond(self, data: bytes) -> None:
        self._response = data
        self._ready.set()

    async def read(self, max_bytes: int = 65536) -> bytes:
        await self._ready.wait()
        if self._response is None:
            return b""
        out, self._response = self._response[:max_bytes], self._response[max_bytes:]
        return out

    async def drain(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def abort(self) -> None:
        return None


def ip_address_or_none(text: str) -> object | None:
    try:
        return ip_address(text.strip("[]"))
    except ValueError:
        return None


# --- entry points from the circuit -----------------------------------------------------------
def on_begin(circ: OrCircuit, msg: RelayMsg, stream_id: int) -> None:
    """BEGIN / BEGIN_DIR arrived for this hop."""
    if stream_id == 0 or stream_id in circ.streams:
        circ.node.trace("begin-dropped", circ=circ.name, stream=stream_id)
        return
    if isinstance(msg, BeginDir):
        if circ.node.dir_cache is None:
            circ.end_stream(stream_id, EndReason.NOTDIRECTORY)
            return
        circ.streams[stream_id] = DirStream(circ, stream_id, "begin-dir")
        return
    if not isinstance(msg, Begin):
        return
    if circ.fast:
        circ.end_stream(stream_id, EndReason.TORPROTOCOL)
        return
    if msg.flags & BeginFlags.IPV4_NOT_OK or \
            not circ.node.config.exit_policy.may_allow_port(msg.port):
        circ.end_stream(stream_id, EndReason.EXITPOLICY)
        return
    circ.streams[stream_id] = ExitStream(circ, stream_id, msg)


def on_resolve(circ: OrCircuit, msg: RelayMsg, stream_id: int) -> None:
    if isinstance(msg, Resolve) and stream_id:
        circ.node.rt.spawn(_resolve(circ, msg.hostname, stream_id), name="resolve")


async def _resolve(circ: OrCircuit, name: str, stream_id: int) -> None:
    node = circ.node
    dns = node.dns
    if dns is not None and dns.delay:
        await node.rt.sleep(dns.delay)
    ttl = dns.ttl if dns is not None else 0
    reverse = reverse_pointer_address(name)
    if reverse is not None:
        host = dns.reverse(reverse) if dns is not None else None
        answers: tuple[ResolvedAnswer, ...] = (
            (ResolvedAnswer.for_hostname(host, ttl),) if host else ())
    else:
        found = dns.lookup(name) if dns is not None else None
        answers = tuple(ResolvedAnswer.for_ip(ip_address(a), ttl) for a in found or ())
    if not answers:
        answers = (ResolvedAnswer(ResolvedType.ERROR_NONTRANSIENT, b"", 0),)
    if not circ.closed:
        circ.originate(Resolved(answers), stream_id)
        node.trace("resolved", circ=circ.name, name=name[:100], answers=len(answers))
