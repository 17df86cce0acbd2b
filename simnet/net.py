"""simnet's virtual internet: hosts, addresses, listeners, connections, partitions, crashes.

A :class:`Network` holds :class:`Host` objects, each with IPv4 (and optionally
IPv6) addresses, an access link (uplink and downlink rates, latency, jitter,
loss) and its own :class:`~simnet.binding.SimRuntime` (``host.runtime``).
Paths need no per-pair object: a path's one-way delay is the sum of the two
access latencies unless :meth:`Network.set_path` overrides it, so a network of
a thousand hosts costs a thousand hosts, not a million links.  How bytes move
once a connection exists is :mod:`simnet.link`.

Connections follow TCP's observable behaviour:

* connect is SYN / SYN-ACK: it returns after one round trip; a host with no
  listener answers RST (ConnectionRefused after one round trip); a SYN into a
  partition, to a host that is down, or to an address nobody has, is black-holed
  and retransmitted after 1, 2, 4 ... 64 s as Linux does, so connect fails with
  a NetworkError after 127 s unless the caller's timeout decides first;
* the server accepts when the client's final ACK arrives (1.5 round trips);
* a crashed host's peers see a reset one propagation delay later, its
  listeners vanish and its runtime's tasks are cancelled; ``restart()`` gives it a
  fresh runtime and calls the on-restart callbacks, through which node logic
  starts itself again;
* a partition black-holes traffic between its two sides until healed.

Every such event is traced on the host where it is observed.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gotor.errors import ConnectionRefused, LocalError, NetworkError
from gotor.runtime.api import ConnHandler
from simnet.binding import SimRuntime, SimWaiter
from simnet.link import RECV_WINDOW, Pipe, SimStream, Uplink, conn_label, pipe_pair

if TYPE_CHECKING:
    from simnet.world import World

SYN_RTO = 1.0           # RFC 6298's initial retransmission timeout
SYN_RETRIES = 6         # Linux tcp_syn_retries: gives up after 1+2+4+...+64 = 127 s
EPHEMERAL_FIRST, EPHEMERAL_LAST = 49152, 65535
_ANY = frozenset({"", "0.0.0.0", "::", "*"})

Address = tuple[str, int]


@dataclass(frozen=True)
class Impairment:
    """A temporary degradation of a host's access link; faults add and remove them.

    Several can be active at once: latencies add up, caps take the minimum and
    losses combine as independent events.
    """

    extra_latency: float = 0.0
    up_bps: float | None = None
    down_bps: float | None = None
    loss: float = 0.0


@dataclass(frozen=True)
class PathOverride:
    """A per-pair replacement for the sum of access latencies, and/or an extra path loss."""

    latency: float | None = None
    loss: float = 0.0


class Partition:
    """Two sets of hosts that cannot reach each other until :meth:`heal`.

    ``side_b`` None means "every host not in side_a".
    """

    def __init__(self, net: Network, side_a: frozenset[str], side_b: frozenset[str] | None) -> None:
        self._net = net
        self.side_a = side_a
        self.side_b = side_b
        self.active = True

    def separates(self, a: str, b: str) -> bool:
        in_a, b_in_a = a in self.side_a, b in self.side_a
        if self.side_b is None:
            return in_a != b_in_a
        return (in_a and b in self.side_b) or (b_in_a and a in self.side_b)

    def heal(self) -> None:
        if self.active:
            self.active = False
            self._net.heal(self)


class SimListener:
    """A listening socket; each accepted connection runs ``handler(stream)`` as a task."""

    def __init__(self, host: Host, addr: str, port: int, handler: ConnHandler,
                 rt: SimRuntime) -> None:
        self.host = host
        self._addr = addr
        self._port = port
        self._handler = handler
        self._rt = rt
        self.closed = False

    @property
    def address(self) -> Address:
        return (self._addr, self._port)

    @property
    def key(self) -> Address:
        return ("*" if self._addr in _ANY else self._addr, self._port)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.host.unlisten(self)

    def spawn(self, stream: SimStream) -> None:
        self._rt.spawn(self._serve(stream), name=f"conn {stream.label}")

    async def _serve(self, stream: SimStream) -> None:
        # As the asyncio binding: a handler that returns closes gracefully; a
        # network failure just ends the connection; any other error is a bug,
        # surfaced through the runtime's unobserved-failure report.
        try:
            await self._handler(stream)
        except NetworkError:
            stream.abort()
            return
        except GeneratorExit:
            raise  # a finished world being freed: nothing left to clean up
        except BaseException:
            stream.abort()
            raise
        await stream.aclose()


def _normalise(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr.strip("[]")))
    except ValueError:
        return addr


def _check_port(port: int, *, allow_zero: bool = False) -> None:
    if not isinstance(port, int) or not (0 if allow_zero else 1) <= port <= 65535:
        raise LocalError(f"bad port {port!r}")


class Host:
    """One simulated machine (see the module docstring).

    Link parameters: ``up_bps`` / ``down_bps`` in bits per second, ``latency``
    (one-way access delay) and ``jitter`` (extra uniform [0, jitter] per chunk)
    in seconds, ``loss`` a probability per chunk.  Change them with
    :meth:`configure` (or temporarily with :meth:`impair`).
    """

    def __init__(self, network: Network, name: str, ipv4: str | None, ipv6: str | None, *,
                 up_bps: float, down_bps: float, latency: float, jitter: float,
                 loss: float) -> None:
        self.network = network
        self.name = name
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.alive = True
        self.incarnation = 0
        self.clock_offset = 0.0      # seconds added to this host's wall clock only
        self.up_bps = up_bps
        self.down_bps = down_bps
        self.latency = latency
        self.jitter = jitter
        self.loss = loss
        self._impairments: list[Impairment] = []
        self.lat_extra = self.lat_now = self.up_now = self.down_now = self.loss_now = 0.0
        self._refresh()
        self.uplink = Uplink(self)
        self.down_busy = 0.0
        self.listeners: dict[Address, SimListener] = {}
        self._streams: dict[int, tuple[SimStream, int | None]] = {}
        self._stream_ids = 0
        self._used_ports: set[int] = set()
        self._next_port = EPHEMERAL_FIRST
        self._rngs: dict[str, random.Random] = {}
        self._on_restart: list[Callable[[Host], None]] = []
        self.runtime = self._new_runtime()

    # --- link parameters ----------------------------------------------------------
    def configure(self, **params: float) -> None:
        """Change base link parameters (up_bps, down_bps, latency, jitter, loss)."""
        for key, value in params.items():
            if key not in ("up_bps", "down_bps", "latency", "jitter", "loss"):
                raise LocalError(f"unknown link parameter {key}")
            setattr(self, key, float(value))
        _validate_link(self.up_bps, self.down_bps, self.latency, self.jitter, self.loss)
        self._refresh()

    def impair(self, imp: Impairment) -> None:
        self._impairments.append(imp)
        self._refresh()
        self.network.trace(self, "impair", **_impairment_fields(imp))

    def unimpair(self, imp: Impairment) -> None:
        self._impairments.remove(imp)
        self._refresh()
        self.network.trace(self, "unimpair", **_impairment_fields(imp))

    def set_clock_offset(self, offset: float) -> None:
        """Skew this host's wall clock (its monotonic clock is unaffected)."""
        self.clock_offset = float(offset)
        self.network.trace(self, "clock-skew", offset=self.clock_offset)

    def _refresh(self) -> None:
        imps = self._impairments
        self.lat_extra = sum(i.extra_latency for i in imps)
        self.lat_now = self.latency + self.lat_extra
        self.up_now = min([self.up_bps] + [i.up_bps for i in imps if i.up_bps])
        self.down_now = min([self.down_bps] + [i.down_bps for i in imps if i.down_bps])
        keep = 1.0 - self.loss
        for imp in imps:
            keep *= 1.0 - imp.loss
        self.loss_now = 1.0 - keep

    def draw(self, purpose: str) -> random.Random:
        """This host's seeded stream for ``purpose`` (jitter, loss), one per incarnation."""
        rng = self._rngs.get(purpose)
        if rng is None:
            rng = self._rngs[purpose] = self.network.world.rng(f"net:{self.name}:{purpose}")
        return rng

    # --- connections ----------------------------------------------------------------
    def attach(self, stream: SimStream, port: int | None) -> int:
        self._stream_ids += 1
        self._streams[self._stream_ids] = (stream, port)
        return self._stream_ids

    def detach(self, key: int) -> None:
        entry = self._streams.pop(key, None)
        if entry is not None and entry[1] is not None:
            self._used_ports.discard(entry[1])

    @property
    def streams(self) -> list[SimStream]:
        """The live connection endpoints of this host, oldest first."""
        return [s for s, _ in self._streams.values()]

    def _ephemeral_port(self) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        for _ in range(span):
            port = self._next_port
            self._next_port = EPHEMERAL_FIRST + (port + 1 - EPHEMERAL_FIRST) % span
            if port not in self._used_ports:
                self._used_ports.add(port)
                return port
        raise NetworkError(f"{self.name}: no free ephemeral port")

    async def connect(self, host: str, port: int) -> SimStream:
        """Open a connection from this host (see the module docstring for timing)."""
        _check_port(port)
        if not self.alive:
            raise NetworkError(f"{self.name} is down")
        net = self.network
        addr = host if host in net._by_addr else _normalise(host)  # skip parsing known ones
        dst = net.lookup(addr)
        if dst is not None and addr not in (dst.ipv4, dst.ipv6):
            addr = dst.ipv4 or dst.ipv6 or addr  # connected by host name
        local_ip = self.ipv6 if ":" in addr else self.ipv4
        if local_ip is None:
            raise NetworkError(f"cannot connect to {host}:{port}: network unreachable")
        local, remote = (local_ip, self._ephemeral_port()), (addr, port)
        label = conn_label(local, remote)
        try:
            outcome = await self._handshake(dst, addr, port)
        except BaseException:
            self._used_ports.discard(local[1])
            raise
        if outcome == "ok":
            return net.establish(self, dst, local, remote, label)  # type: ignore[arg-type]
        self._used_ports.discard(local[1])
        if outcome == "refused":
            net.trace(self, "refused", conn=label)
            raise ConnectionRefused(f"connection to {host}:{port} refused")
        net.trace(self, "connect-timeout", conn=label)
        raise NetworkError(f"cannot connect to {host}:{port}: connection timed out")

    async def _handshake(self, dst: Host | None, addr: str, port: int) -> str:
        """SYN with retransmissions: "ok", "refused" or "timeout"."""
        rto = SYN_RTO
        for _ in range(SYN_RETRIES + 1):
            w: SimWaiter[str] = SimWaiter(self.network.env)
            self.network.send_syn(self, dst, addr, port, w)
            self.network.call_later(rto, _expire(w))
            result = await w
            if result != "timeout":
                return result
            rto *= 2
        return "timeout"

    async def listen(self, host: str, port: int, handler: ConnHandler,
                     rt: SimRuntime) -> SimListener:
        _check_port(port, allow_zero=True)
        if not self.alive:
            raise NetworkError(f"{self.name} is down")
        addr = host if host in _ANY else _normalise(host)
        if addr not in _ANY and addr not in (self.ipv4, self.ipv6):
            raise NetworkError(f"cannot listen on {host}:{port}: address not available")
        if port == 0:
            port = self._ephemeral_port()
        listener = SimListener(self, addr, port, handler, rt)
        key = listener.key
        if any(k[1] == port and (k[0] == key[0] or "*" in (k[0], key[0]))
               for k in self.listeners):
            raise NetworkError(f"cannot listen on {host}:{port}: address already in use")
        self._used_ports.add(port)
        self.listeners[key] = listener
        self.network.trace(self, "listen", addr=f"{addr or '*'}:{port}")
        return listener

    def unlisten(self, listener: SimListener) -> None:
        if self.listeners.get(listener.key) is listener:
            del self.listeners[listener.key]
            self._used_ports.discard(listener.key[1])

    def find_listener(self, addr: str, port: int) -> SimListener | None:
        return self.listeners.get((addr, port)) or self.listeners.get(("*", port))

    # --- crash and restart ----------------------------------------------------------
    def on_restart(self, callback: Callable[[Host], None]) -> None:
        """Call ``callback(host)`` after each restart (node logic re-starts itself there)."""
        self._on_restart.append(callback)

    def crash(self) -> None:
        """Die now: connections reset (peers hear it after the latency), listeners
        vanish, queued data is lost and every task of the runtime is cancelled."""
        if not self.alive:
            return
        self.alive = False
        for listener in self.listeners.values():
            listener.closed = True
        self.listeners.clear()
        streams = self.streams
        self._streams.clear()
        self._used_ports.clear()
        for stream in streams:
            stream.kill()
        self.uplink.clear()
        self.network.trace(self, "crash")
        self.runtime.cancel_all("host crashed")

    def restart(self) -> None:
        """Come back with fresh state: a new runtime, then the on-restart callbacks."""
        if self.alive:
            raise LocalError(f"{self.name} is running; crash it first")
        self.alive = True
        self.incarnation += 1
        self._rngs.clear()
        self.runtime = self._new_runtime()
        self.network.trace(self, "restart", incarnation=self.incarnation)
        for callback in list(self._on_restart):
            callback(self)

    def _new_runtime(self) -> SimRuntime:
        rt = SimRuntime(self.network.world, self)
        if self.incarnation:
            # A restarted process draws fresh randomness (its old streams would repeat).
            tag = f"runtime:{self.name}#{self.incarnation}"
            rt.rng = self.network.world.rng(tag)
            rt.random_bytes = self.network.world.byte_stream(tag)
        return rt

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ipv4 or self.ipv6}{'' if self.alive else ' down'}>"


def _validate_link(up: float, down: float, latency: float, jitter: float, loss: float) -> None:
    if up <= 0 or down <= 0:
        raise LocalError("bandwidth must be positive")
    if latency < 0 or jitter < 0:
        raise LocalError("latency and jitter must not be negative")
    if not 0 <= loss < 1:
        raise LocalError("loss must be in [0, 1)")


def _impairment_fields(imp: Impairment) -> dict[str, Any]:
    return {k: v for k, v in vars(imp).items() if v}


class Network:
    """The virtual internet of one :class:`~simnet.world.World`.

    ``tls=False`` runs ``connect(tls=True)`` without encryption, for large load
    scenarios: the client still receives the server's certificate DER (see
    :mod:`simnet.tls`).  ``recv_window`` is every connection's receive window.
    """

    def __init__(self, world: World, *, tls: bool = True, recv_window: int = RECV_WINDOW) -> None:
        self.world = world
        self.env = world.env
        self.tls = tls
        self.recv_window = recv_window
        self.hosts: dict[str, Host] = {}
        self._by_addr: dict[str, Host] = {}
        self._paths: dict[tuple[str, str], PathOverride] = {}
        self._partitions: list[Partition] = []
        self._held: list[Pipe] = []
        self._next_v4 = 0

    # --- topology -------------------------------------------------------------------
    def add_host(self, name: str, *, ipv4: str | None = None, ipv6: str | None = None,
                 up_bps: float = 100e6, down_bps: float = 100e6, latency: float = 0.01,
                 jitter: float = 0.0, loss: float = 0.0) -> Host:
        """A new host; without ``ipv4`` it gets the next free 10.x.y.z address."""
        if name in self.hosts:
            raise LocalError(f"host {name} already exists")
        _validate_link(up_bps, down_bps, latency, jitter, loss)
        v4 = self._claim(ipv4, 4) if ipv4 is not None else self._next_ipv4()
        v6 = self._claim(ipv6, 6) if ipv6 is not None else None
        host = Host(self, name, v4, v6, up_bps=float(up_bps), down_bps=float(down_bps),
                    latency=float(latency), jitter=float(jitter), loss=float(loss))
        self.hosts[name] = host
        for addr in (v4, v6):
            if addr is not None:
                self._by_addr[addr] = host
        return host

    def _claim(self, addr: str, version: int) -> str:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise LocalError(f"bad IP address {addr!r}") from None
        if ip.version != version:
            raise LocalError(f"{addr} is not an IPv{version} address")
        text = str(ip)
        if text in self._by_addr:
            raise LocalError(f"address {text} is taken")
        return text

    def _next_ipv4(self) -> str:
        while True:
            self._next_v4 += 1
            n = self._next_v4
            if n & 0xFF in (0, 255):
                continue
            addr = f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}"
            if addr not in self._by_addr:
                return addr

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise LocalError(f"no host named {name}") from None

    def lookup(self, addr: str) -> Host | None:
        """The host owning an address (or, for convenience, named so); None if nobody."""
        return self._by_addr.get(addr) or self.hosts.get(addr)

    def set_path(self, a: str, b: str, *, latency: float | None = None, loss: float = 0.0) -> None:
        """Override the one-way latency between two hosts (both directions) and/or add loss."""
        if (latency is not None and latency < 0) or not 0 <= loss < 1:
            raise LocalError("bad path parameters")
        self._paths[_pair(self.host(a).name, self.host(b).name)] = PathOverride(latency, loss)

    # --- path properties (called per chunk: keep them cheap) ---------------------------
    def one_way(self, src: Host, dst: Host) -> float:
        if self._paths:
            ov = self._paths.get(_pair(src.name, dst.name))
            if ov is not None and ov.latency is not None:
                return ov.latency + src.lat_extra + dst.lat_extra
        return src.lat_now + dst.lat_now

    def loss_rate(self, src: Host, dst: Host) -> float:
        keep = (1.0 - src.loss_now) * (1.0 - dst.loss_now)
        if self._paths:
            ov = self._paths.get(_pair(src.name, dst.name))
            if ov is not None:
                keep *= 1.0 - ov.loss
        return 1.0 - keep

    def blocked(self, src: Host, dst: Host) -> bool:
        if not self._partitions:
            return False
        return any(p.separates(src.name, dst.name) for p in self._partitions)

    def _lost(self, src: Host, dst: Host) -> bool:
        rate = self.loss_rate(src, dst)
        return rate > 0 and src.draw("loss").random() < rate

    # --- partitions -------------------------------------------------------------------
    def partition(self, side_a: Iterable[str], side_b: Iterable[str] | None = None) -> Partition:
        """Black-hole traffic between ``side_a`` and ``side_b`` (default: all other hosts)."""
        a = frozenset(self.host(n).name for n in side_a)
        b = None if side_b is None else frozenset(self.host(n).name for n in side_b)
        part = Partition(self, a, b)
        self._partitions.append(part)
        self.world.trace.record("net", "partition", a=sorted(a),
                                b=sorted(b) if b is not None else "rest")
        return part

    def hold(self, pipe: Pipe) -> None:
        self._held.append(pipe)

    def heal(self, part: Partition) -> None:
        self._partitions.remove(part)
        self.world.trace.record("net", "heal", a=sorted(part.side_a))
        held, self._held = self._held, []
        now = self.env.now
        for pipe in held:
            if self.blocked(pipe.src, pipe.dst):
                self._held.append(pipe)
            else:
                pipe.release(now + self.one_way(pipe.src, pipe.dst))

    # --- the connection handshake -------------------------------------------------------
    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        def fire(_event: object) -> None:
            fn()

        self.env.timeout(max(0.0, delay)).callbacks.append(fire)

    def send_syn(self, src: Host, dst: Host | None, addr: str, port: int,
                 answer: SimWaiter[str]) -> None:
        """One SYN; ``answer`` gets "ok" or "refused" a round trip later, unless black-holed."""
        if dst is None:
            return  # nobody has that address

        def arrive() -> None:
            if not dst.alive or self.blocked(src, dst) or self._lost(src, dst):
                return
            reply = "ok" if dst.find_listener(addr, port) is not None else "refused"

            def back() -> None:
                if not self.blocked(dst, src) and not self._lost(dst, src) and not answer.done():
                    answer.set(reply)

            self.call_later(self.one_way(dst, src), back)

        self.call_later(self.one_way(src, dst), arrive)

    def establish(self, src: Host, dst: Host, local: Address, remote: Address,
                  label: str) -> SimStream:
        """The client side after SYN-ACK; the final ACK travels in order before any data."""
        out, back = pipe_pair(self, src, dst, label)
        stream = SimStream(src, label, local, remote, out, back, owns_port=True)
        out.send_open((local, remote))
        self.trace(src, "connect", conn=label)
        return stream

    def accept(self, pipe: Pipe, ends: tuple[Address, Address]) -> SimStream | None:
        """The final ACK arrived: hand the connection to the listener, or reset it."""
        client, server = ends
        dst, back = pipe.dst, pipe.reverse
        assert back is not None  # linked until the connection is done, long after OPEN
        listener = dst.find_listener(*server) if dst.alive else None
        if listener is None:
            back.send_rst()
            return None
        stream = SimStream(dst, pipe.label, server, client, back, pipe, owns_port=False)
        self.trace(dst, "accept", conn=pipe.label)
        listener.spawn(stream)
        return stream

    def trace(self, host: Host, event: str, **fields: Any) -> None:
        self.world.trace.record(host.name, event, **fields)


def _expire(w: SimWaiter[str]) -> Callable[[], None]:
    """A SYN retransmission timer: the attempt timed out unless answered already."""
    def fire() -> None:
        if not w.done():
            w.set("timeout")
    return fire


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
