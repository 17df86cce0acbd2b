"""The pipe model under simnet's TCP-like streams: one direction of one connection.

A connection is two :class:`Pipe` objects (one per direction) and two
:class:`SimStream` endpoints.  The model is Shadow-like and needs no process
and no link object per pair of hosts, so it scales to thousands of hosts:

* **Serialisation and queueing.**  Each host has one :class:`Uplink` that sends
  one chunk (at most :data:`CHUNK` bytes) at a time, round robin over the
  connections that have data, at the host's uplink rate; the receiving host's
  downlink is booked FIFO through a ``down_busy`` time.  The model is
  cut-through: a chunk's last byte arrives no earlier than
  ``uplink end + propagation`` and no earlier than its downlink slot allows, so
  one flow runs at ``min(uplink, downlink)`` whatever the chunk size.
* **Propagation.**  One-way delay = sender access latency + receiver access
  latency (or a per-pair override), plus seeded jitter per chunk.
* **In-order delivery is structural.**  Everything a pipe delivers (the
  handshake's final ACK, data, FIN, RST) goes through one FIFO queue whose
  times never decrease, drained by a single timer.  Two chunks of one
  direction are therefore never separate same-time events that a tie-shuffled
  scheduler could swap; jitter and loss delay later chunks rather than reorder.
* **Flow control.**  The receiver grants a window of ``recv_window`` bytes; the
  sender stops when ``sent - acknowledged`` reaches it.  Window updates travel
  back after the one-way delay when the application reads, so a reader that
  does not read stops the writer (updates cost an event only while the
  sender is blocked on them), and ``drain()`` blocks once more than
  :data:`HIGH_WATER` bytes wait unsent (backpressure end to end).
* **Loss** shows as TCP shows it: a lost chunk arrives one retransmission
  timeout later (doubling per repeated loss), and the chunks behind it wait
  (head-of-line blocking).  Retransmissions do not consume bandwidth again.
* **Partitions** hold a pipe's queue (black hole) until healed; then it flows
  from one propagation delay after the heal, as retransmission would.

Not modelled: congestion control (slow start, cwnd), Nagle, delayed ACKs,
RST-on-close with unread data, and TCP giving up on a connection after a long
partition (a held pipe waits for the heal however long it takes).  Window
updates carry no data and are not held by partitions.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from gotor.errors import ClosedError, ConnectionReset, LocalError
from simnet.binding import SimWaiter

if TYPE_CHECKING:
    from simnet.net import Host, Network

CHUNK = 64 * 1024           # bytes per transmitted chunk: 1 MB is 16 events, not 700
HIGH_WATER = 256 * 1024     # drain() blocks above this many unsent bytes (as the asyncio binding)
LOW_WATER = HIGH_WATER // 4  # ... and resumes at or below this, like asyncio's transports
RECV_WINDOW = 1 << 20       # default receive window (above most bandwidth-delay products)
RTO_MIN = 0.2               # Linux's minimum retransmission timeout (tcp_rto_min)
RTO_MAX = 120.0             # Linux's TCP_RTO_MAX
MAX_RETRANSMITS = 15        # tcp_retries2

_OPEN, _DATA, _FIN, _RST = range(4)


def pop_bytes(chunks: deque[bytes], n: int) -> bytes:
    """Take up to ``n`` bytes off the front of a deque of byte strings."""
    head = chunks[0]
    if len(head) >= n:
        if len(head) == n:
            return chunks.popleft()
        chunks[0] = head[n:]
        return head[:n]
    parts: list[bytes] = []
    while chunks and n > 0:
        head = chunks[0]
        if len(head) <= n:
            parts.append(chunks.popleft())
            n -= len(head)
        else:
            parts.append(head[:n])
            chunks[0] = head[n:]
            n = 0
    return b"".join(parts)


def digest(data: bytes) -> str:
    """The digest traced for delivered bytes (the ``crc`` field of ``recv`` records).

    CRC-32: the trace must show that two runs delivered different bytes, not
    resist forgery, and CRC-32 costs a third of SHA-256 on a 64 KiB read (SHA-256
    was most of the cost of tracing a bulk transfer).
    """
    return f"{zlib.crc32(data):08x}"


class Uplink:
    """A host's uplink: sends one chunk at a time, round robin over ready pipes.

    Bookkeeping only (``busy_until`` plus one pending timer), not a process.
    """

    __slots__ = ("_armed", "_ready", "busy_until", "host")

    def __init__(self, host: Host) -> None:
        self.host = host
        self.busy_until = 0.0
        self._ready: deque[Pipe] = deque()
        self._armed = False

    def want(self, pipe: Pipe) -> None:
        """``pipe`` has something to send: queue it for the uplink."""
        if not pipe.queued:
            pipe.queued = True
            self._ready.append(pipe)
            self._arm()

    def _arm(self) -> None:
        if self._armed or not self._ready:
            return
        self._armed = True
        env = self.host.network.env
        env.timeout(max(0.0, self.busy_until - env.now)).callbacks.append(self._serve)

    def _serve(self, _event: object) -> None:
        self._armed = False
        start = max(self.host.network.env.now, self.busy_until)
        while self._ready:
            pipe = self._ready.popleft()
            pipe.queued = False
            if pipe.transmit(start):
                if pipe.can_send():
                    self.want(pipe)
                break
        self._arm()

    def clear(self) -> None:
        """Forget queued data (the host crashed)."""
        for pipe in self._ready:
            pipe.queued = False
        self._ready.clear()


class Pipe:
    """One direction of a connection: the sender's buffer and window, the wire, the delivery queue."""

    __slots__ = (
        "_ack_armed",
        "_ack_due",
        "_acks",
        "_armed",
        "_buf",
        "_due",
        "_fin_wanted",
        "_last_at",
        "_q",
        "acked",
        "dst",
        "held",
        "label",
        "net",
        "queued",
        "receiver",
        "reverse",
        "sender",
        "sent",
        "src",
        "unsent",
        "window",
    )

    def __init__(self, net: Network, src: Host, dst: Host, label: str) -> None:
        self.net = net
        self.src = src
        self.dst = dst
        self.label = label
        self.sender: SimStream | None = None
        self.receiver: SimStream | None = None
        self.reverse: Pipe | None = None  # linked by pipe_pair(), unlinked when done
        self.queued = False          # in src.uplink's ready queue
        self.unsent = 0              # bytes written, not yet on the wire
        self.sent = 0                # bytes put on the wire
        self.acked = 0               # bytes the receiver has read, as the sender last heard
        self.window = net.recv_window
        self._buf: deque[bytes] = deque()
        self._fin_wanted = False
        self._q: deque[tuple[float, int, Any]] = deque()
        self._last_at = 0.0
        self._armed = False
        self._due = 0.0
        self.held = False            # stalled by a partition
        self._acks: deque[tuple[float, int]] | None = None   # window updates in flight
        self._ack_armed = False
        self._ack_due = 0.0

    # --- sending side -------------------------------------------------------
    def push(self, data: bytes) -> None:
        self._buf.append(data)
        self.unsent += len(data)
        if self.can_send():
            self.src.uplink.want(self)

    def push_fin(self) -> None:
        self._fin_wanted = True
        if not self.unsent:
            self._send_fin()

    def can_send(self) -> bool:
        return self.unsent > 0 and self._room() > 0

    def transmit(self, start: float) -> bool:
        """Put the next chunk on the wire at ``start`` (called by the uplink)."""
        room = self._room()
        if self.unsent <= 0 or room <= 0:
            return False
        chunk = pop_bytes(self._buf, min(CHUNK, self.unsent, room))
        n = len(chunk)
        self.unsent -= n
        self.sent += n
        self._enqueue(_DATA, chunk, self._arrival(n, start))
        if self.sender is not None and self.unsent <= LOW_WATER:
            self.sender.on_drained()
        if not self.unsent and self._fin_wanted:
            self._send_fin()
        return True

    def _arrival(self, n: int, up_start: float) -> float:
        """When a chunk of ``n`` bytes whose uplink slot starts at ``up_start`` is delivered."""
        src, dst, net = self.src, self.dst, self.net
        bits = 8 * n
        up_end = up_start + bits / src.up_now
        src.uplink.busy_until = up_end
        prop = net.one_way(src, dst)
        if src.jitter or dst.jitter:
            prop += src.draw("jitter").uniform(0.0, src.jitter + dst.jitter)
        down_start = max(up_start + prop, dst.down_busy)
        at = max(down_start + bits / dst.down_now, up_end + prop)
        dst.down_busy = at
        return at + self._loss_delay(prop)

    def _loss_delay(self, prop: float) -> float:
        rate = self.net.loss_rate(self.src, self.dst)
        if not rate:
            return 0.0
        rng = self.src.draw("loss")
        rto = RTO_MIN + 2 * prop
        extra = 0.0
        for _ in range(MAX_RETRANSMITS):
            if rng.random() >= rate:
                break
            extra += rto
            rto = min(2 * rto, RTO_MAX)
        return extra

    def _send_fin(self) -> None:
        self._fin_wanted = False
        self.send_control(_FIN)

    def send_control(self, kind: int, payload: Any = None) -> None:
        """OPEN / FIN / RST: no bandwidth, no loss, but in order behind the data."""
        self._enqueue(kind, payload, self.net.env.now + self.net.one_way(self.src, self.dst))

    def send_open(self, ends: tuple[tuple[str, int], tuple[str, int]]) -> None:
        """The handshake's final ACK (client, server addresses): the server accepts on arrival."""
        self.send_control(_OPEN, ends)

    def send_rst(self) -> None:
        self.send_control(_RST)

    def stop_sending(self) -> None:
        """Drop what was not yet on the wire (abort, reset, crash)."""
        self._buf.clear()
        self.unsent = 0
        self._fin_wanted = False

    # --- window updates -----------------------------------------------------
    # An update travels back for one propagation delay.  Rather than one event
    # per update, updates wait in ``_acks`` with their arrival times and are
    # applied whenever the sender looks at its window; a timer is armed only
    # when the sender is blocked on the window, for the next arrival.  The
    # sender's view at any instant is exactly the latest update that has arrived.
    def advertise(self, consumed: int, at: float) -> None:
        """The receiver has read ``consumed`` bytes; the sender learns it at ``at``."""
        acks = self._acks
        if acks is None:
            acks = self._acks = deque()
        elif acks and at < acks[-1][0]:
            at = acks[-1][0]  # the path got faster: still no overtaking an earlier update
        acks.append((at, consumed))
        self._room()

    def _room(self) -> int:
        """Free window as the sender knows it now; arms the update timer if blocked."""
        acks = self._acks
        if acks:
            self._apply_acks(self.net.env.now)
        room = self.window - (self.sent - self.acked)
        if room <= 0 and acks and self.unsent and not self._ack_armed:
            env = self.net.env
            self._ack_armed = True
            self._ack_due = acks[0][0]
            env.timeout(max(0.0, self._ack_due - env.now)).callbacks.append(self._on_ack)
        return room

    def _apply_acks(self, limit: float) -> None:
        acks = self._acks
        while acks and acks[0][0] <= limit:
            consumed = acks.popleft()[1]
            self.acked = max(self.acked, consumed)

    def _on_ack(self, _event: object) -> None:
        self._ack_armed = False
        self._apply_acks(max(self.net.env.now, self._ack_due))  # float-safe, as in _fire
        if self.can_send():
            self.src.uplink.want(self)

    # --- the wire: an in-order delivery queue with one timer -----------------
    def _enqueue(self, kind: int, payload: Any, at: float) -> None:
        at = max(at, self._last_at)  # never overtake what this direction sent earlier
        self._last_at = at
        self._q.append((at, kind, payload))
        if not self._armed and not self.held:
            self._arm(at)

    def _arm(self, at: float) -> None:
        self._armed = True
        self._due = at
        env = self.net.env
        env.timeout(max(0.0, at - env.now)).callbacks.append(self._fire)

    def _fire(self, _event: object) -> None:
        self._armed = False
        # Compare with the due time, not env.now: float rounding of now + (at - now)
        # must not leave an item undelivered at its own time.
        limit = max(self.net.env.now, self._due)
        q = self._q
        while q and q[0][0] <= limit:
            if self.net.blocked(self.src, self.dst):
                self.held = True
                self.net.hold(self)
                return
            _at, kind, payload = q.popleft()
            self._deliver(kind, payload)
        if q:
            self._arm(q[0][0])
        else:
            self.unlink_if_done()

    def unlink_if_done(self) -> None:
        """Once both endpoints are closed or reset and nothing is queued either
        way, nothing can happen on this connection again: drop the pipes' links
        to the endpoints and to each other.  The connection then holds no
        reference cycle, so its objects are freed as soon as they are dropped
        instead of by the cyclic GC (whose passes over thousands of finished
        connections were a large share of a busy run's time)."""
        back = self.reverse
        if back is None or self._q or back._q or self.unsent or back.unsent:
            return
        for end in (self.sender, self.receiver):
            if end is not None and not end.finished:
                return
        for pipe in (self, back):
            pipe.sender = pipe.receiver = pipe.reverse = None

    def release(self, at: float) -> None:
        """A partition healed: resume delivery no earlier than ``at``."""
        self.held = False
        if self._q and not self._armed:
            self._arm(max(self._q[0][0], at))

    def _deliver(self, kind: int, payload: Any) -> None:
        if kind == _OPEN:
            self.receiver = self.net.accept(self, payload)
            return
        receiver = self.receiver
        if receiver is None:
            return  # the connection was refused at OPEN; its data dies with it
        if kind == _DATA:
            receiver.on_data(payload)
        elif kind == _FIN:
            receiver.on_fin()
        else:
            receiver.on_rst()


def pipe_pair(net: Network, src: Host, dst: Host, label: str) -> tuple[Pipe, Pipe]:
    """The two directions of a new connection, linked to each other."""
    out, back = Pipe(net, src, dst, label), Pipe(net, dst, src, label)
    out.reverse, back.reverse = back, out
    return out, back


def _fmt(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def conn_label(local: tuple[str, int], remote: tuple[str, int]) -> str:
    """The stable name of a connection in traces: ``client>server``."""
    return f"{_fmt(local)}>{_fmt(remote)}"


class SimStream:
    """One endpoint of a simulated TCP connection; implements ``ByteStream``.

    Semantics follow the asyncio binding: ``read`` returns b"" at EOF, raises
    ConnectionReset after a reset (buffered data is discarded, as TCP does) and
    ClosedError after a local close; ``write`` never blocks; ``drain`` waits
    while more than HIGH_WATER bytes are unsent.
    """

    __slots__ = (
        "_advertised",
        "_closed",
        "_consumed",
        "_drainers",
        "_eof",
        "_eof_sent",
        "_error",
        "_key",
        "_rbuf",
        "_reader",
        "_rlen",
        "_rst_sent",
        "host",
        "inp",
        "label",
        "local",
        "out",
        "peer",
        "trace_reads",
    )

    def __init__(self, host: Host, label: str, local: tuple[str, int], peer: tuple[str, int],
                 out: Pipe, inp: Pipe, *, owns_port: bool) -> None:
        self.host = host
        self.label = label
        self.local = local
        self.peer = peer
        self.out = out
        self.inp = inp
        self.trace_reads = True   # the TLS layer turns this off and traces plaintext itself
        self._rbuf: deque[bytes] = deque()
        self._rlen = 0
        self._eof = 0        # 1: FIN arrived, 2: the reader has seen the EOF
        # Why the connection was reset.  Each raise makes a fresh exception: a stored
        # one would keep every raise's traceback, whose frames refer to this stream.
        self._error: str | None = None
        self._closed = False
        self._eof_sent = False
        self._rst_sent = False
        self._reader: SimWaiter[None] | None = None
        # Every task blocked in drain(): asyncio lets several drain one stream at once.
        self._drainers: list[SimWaiter[None]] = []
        self._consumed = 0
        self._advertised = 0
        self._key = host.attach(self, local[1] if owns_port else None)
        out.sender = self
        inp.receiver = self

    # --- the ByteStream interface ---------------------------------------------
    async def read(self, max_bytes: int = 65536) -> bytes:
        if max_bytes <= 0:
            raise LocalError("read() needs a positive max_bytes")
        while True:
            if self._closed:
                raise ClosedError("read on a closed stream")
            if self._error is not None:
                raise ConnectionReset(self._error)
            if self._rlen:
                return self._take(max_bytes)
            if self._eof:
                if self._eof == 1 and self.trace_reads:
                    self._trace("fin")   # traced where bytes are: when the reader sees it
                self._eof = 2
                return b""
            w: SimWaiter[None] = SimWaiter(self.host.network.env)
            self._reader = w
            await w

    def write(self, data: bytes) -> None:
        self.check_writable()
        if data:
            self.out.push(bytes(data))

    def check_writable(self) -> None:
        """Raise what ``write`` would raise now (reset, closed, after EOF)."""
        if self._error is not None:
            raise ConnectionReset(self._error)
        if self._closed or self._eof_sent:
            raise ClosedError("write on a closed stream" if self._closed else "write after write_eof")

    async def drain(self) -> None:
        if self._error is not None:
            raise ConnectionReset(self._error)
        if self._closed:
            raise ClosedError("drain on a closed stream")
        if self.out.unsent <= HIGH_WATER:
            return
        while self.out.unsent > LOW_WATER and self._error is None and not self._closed:
            w: SimWaiter[None] = SimWaiter(self.host.network.env)
            self._drainers.append(w)
            await w
        if self._error is not None:
            raise ConnectionReset(self._error)

    def write_eof(self) -> None:
        if self._error is not None:
            raise ConnectionReset(self._error)
        if self._closed:
            raise ClosedError("write_eof on a closed stream")
        if not self._eof_sent:
            self._eof_sent = True
            self.out.push_fin()

    async def aclose(self) -> None:
        """Close gracefully: unsent data and a FIN still go out; nothing more is read."""
        if self._closed:
            return
        if self._error is None and not self._eof_sent:
            self._eof_sent = True
            self.out.push_fin()
        self._shut()

    def abort(self) -> None:
        """Reset the connection: unsent data is dropped and the peer sees a reset."""
        if self._closed:
            return
        if self._error is None:
            self.out.stop_sending()
            self._reset_peer()
            self._trace("reset", by="local")
        self._shut()

    def peer_cert_der(self) -> bytes | None:
        return None  # a plain TCP stream, as in the asyncio binding

    @property
    def finished(self) -> bool:
        """Closed or reset: this endpoint will never send or take delivery again."""
        return self._closed or self._error is not None

    # --- fabric side ------------------------------------------------------------
    def on_data(self, chunk: bytes) -> None:
        if self._closed or self._error is not None:
            if self.host.alive and self._error is None:
                self._reset_peer()  # data for a closed socket: TCP answers with RST
            return
        self._rbuf.append(chunk)
        self._rlen += len(chunk)
        self._wake_reader()

    def on_fin(self) -> None:
        if self._closed or self._error is not None:
            return
        self._eof = 1
        self._wake_reader()

    def on_rst(self) -> None:
        if self._closed or self._error is not None:
            return
        self._error = f"connection {self.label} reset by peer"
        self._rbuf.clear()
        self._rlen = 0
        self.out.stop_sending()
        self._trace("reset", by="peer")
        self.host.detach(self._key)
        self._wake_reader()
        self._wake_drainer()
        self.out.unlink_if_done()

    def on_drained(self) -> None:
        self._wake_drainer()

    def kill(self) -> None:
        """The host crashed: the peer hears a reset after the latency (see net.Host.crash)."""
        if self._error is None and not self._closed:
            self.out.stop_sending()
            self._reset_peer()
        self._error = "host crashed"
        self._closed = True
        self._wake_reader()
        self._wake_drainer()
        self.out.unlink_if_done()

    # --- internals ----------------------------------------------------------------
    def _take(self, max_bytes: int) -> bytes:
        data = pop_bytes(self._rbuf, min(max_bytes, self._rlen))
        n = len(data)
        self._rlen -= n
        self._consumed += n
        # Receiver-side silly-window avoidance: advertise when a chunk's worth
        # (or half the window) has been freed, or the buffer is empty.
        freed = self._consumed - self._advertised
        if freed >= min(CHUNK, self.inp.window // 2) or not self._rlen:
            self._advertised = self._consumed
            inp, net = self.inp, self.host.network
            inp.advertise(self._consumed, net.env.now + net.one_way(inp.dst, inp.src))
        if self.trace_reads:
            self._trace("recv", n=n, crc=digest(data))
        return data

    def _reset_peer(self) -> None:
        if not self._rst_sent:
            self._rst_sent = True
            self.out.send_rst()

    def _shut(self) -> None:
        self._closed = True
        self._rbuf.clear()
        self._rlen = 0
        self.host.detach(self._key)
        self._wake_reader()
        self._wake_drainer()
        self.out.unlink_if_done()

    def _wake_reader(self) -> None:
        w, self._reader = self._reader, None
        if w is not None and not w.done():
            w.set(None)

    def _wake_drainer(self) -> None:
        waiters, self._drainers = self._drainers, []
        for w in waiters:
            w.set_if_pending(None)

    def _trace(self, event: str, **fields: Any) -> None:
        self.host.network.world.trace.record(self.host.name, event, conn=self.label, **fields)

    def __repr__(self) -> str:
        return f"<SimStream {self.host.name} {self.label}>"
