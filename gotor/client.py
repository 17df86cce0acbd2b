"""TorClient: the library facade — bootstrap, streams, name resolution, SOCKS.

``async with TorClient(rt, config) as client`` bootstraps the directory
(:class:`~gotor.dir.DirClient`, progress as C tor's bootstrap events), builds a
first exit circuit (``circuit_create`` 95 %, ``done`` 100 %), then keeps the
directory fresh, keeps preemptive circuits ready
(:class:`~gotor.circmgr.CircuitManager`) and serves SOCKS if configured.
Leaving the block cancels every task the client started and closes every
circuit and channel.

:meth:`TorClient.connect` asks the circuit manager for a circuit whose exit
allows the port, sends BEGIN (tor-spec §6.2) and, when the attempt fails in a
way that another exit may not, retries on another circuit — C tor's
``connection_ap_process_end_not_open`` and ``connection_ap_expire_beginning``:

==========================================  ==========================================
outcome before CONNECTED                    what happens
==========================================  ==========================================
END EXITPOLICY, HIBERNATING, RESOURCELIMIT  retire the circuit, retry avoiding its exit
END RESOLVEFAILED, MISC, NOROUTE            retire the circuit, retry, at most
                                            ``resolve_failures`` times (MAX_RESOLVE_FAILURES)
no CONNECTED within the attempt's timeout   retire the circuit, retry (10 s, 10 s, 15 s)
the circuit died (DESTROY, channel lost,    retry on a new circuit, avoiding that exit
protocol violation)
END TORPROTOCOL, DESTROY                    close the circuit (C tor: a possible tagging
                                            attack); the request fails
any other END (CONNECTREFUSED, TIMEOUT,     the request fails with that StreamError
DONE, CONNRESET, INTERNAL, ...)
==========================================  ==========================================

Choices of ours: C tor fails a stream whose circuit is destroyed before
CONNECTED (END reason DESTROY); we retry it, since nothing of the
application's has been sent yet, and keep that exit out of the request's
later paths.  When avoided exits leave no path, the request fails with the
last exit's error.  Every request is bounded by ``StreamConfig.attempts`` as
well as by ``connect_timeout`` (SocksTimeout).
Errors: :class:`~gotor.errors.StreamError` (with the exit's ``end_reason``),
:class:`~gotor.errors.CircuitError` / :class:`~gotor.errors.ChannelError` when
no circuit could be built, :class:`~gotor.errors.NoPathError` when no exit
allows the port, :class:`~gotor.errors.Timeout` after ``connect_timeout``.

:meth:`TorClient.resolve` sends RESOLVE (tor-spec §6.4) with the same retries
for a dead circuit or a missing answer; an error answer or END is final.  An
IP address is answered at once, without a circuit, as C tor does (its exits
refuse to "resolve" an address).  The
SOCKS listener (:mod:`gotor.socks`) turns SOCKS credentials into the
isolation key (C tor's IsolateSOCKSAuth).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Self, TypeVar

from gotor.cells.relaymsg import EndReason
from gotor.circmgr import CircuitManager, CircuitStats
from gotor.circuit import Circuit
from gotor.config import ClientConfig
from gotor.dir import BootstrapEvent, DirClient
from gotor.dir.cache import DirCache
from gotor.errors import GotorError, LocalError, NoPathError, StreamError, Timeout
from gotor.guard import GuardManager
from gotor.guard_store import SqliteGuardStore
from gotor.link.pool import ChannelPool
from gotor.netdir import NetDir
from gotor.runtime.api import ByteStream, Runtime, Task
from gotor.runtime.sync import Event, timeout, wait_finished
from gotor.socks import Isolation, SocksServer
from gotor.stream import Stream

__all__ = ["ClientStats", "ClientStream", "TorClient"]

T = TypeVar("T")

#: How long closing waits for relays to finish the TLS close of our channels.
CLOSE_TIMEOUT = 10.0


@dataclass
class ClientStats:
    """What the client has done so far (``circuits`` is the circuit manager's own).

    ``streams_opened`` / ``streams_failed`` count :meth:`TorClient.connect` requests
    (a stream that fails later, mid-transfer, was opened); ``stream_retries`` the
    attempts repeated on another circuit; the bytes are what the application read
    from and wrote to connect() streams (SOCKS included).
    """

    circuits: CircuitStats = field(default_factory=CircuitStats)
    streams_opened: int = 0
    streams_failed: int = 0
    stream_retries: int = 0
    resolves: int = 0
    resolves_failed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def circuits_built(self) -> int:
        return self.circuits.built

    @property
    def circuits_failed(self) -> int:
        return self.circuits.failed


class ClientStream:
    """A stream from :meth:`TorClient.connect`: a :class:`~gotor.stream.Stream` (the
    ByteStream semantics are its own) plus the client's byte accounting."""

    def __init__(self, stream: Stream, circuit: Circuit, stats: ClientStats) -> None:
        self.stream = stream
        self.circuit = circuit
        self._stats = stats

    @property
    def target(self) -> tuple[str, int]:
        return self.stream.target

    @property
    def peer(self) -> tuple[str, int]:
        return self.stream.peer

    @property
    def local(self) -> tuple[str, int]:
        return self.stream.local

    async def read(self, max_bytes: int = 65536) -> bytes:
        data = await self.stream.read(max_bytes)
        self._stats.bytes_read += len(data)
        return data

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self._stats.bytes_written += len(data)

    async def drain(self) -> None:
        await self.stream.drain()

    def write_eof(self) -> None:
        self.stream.write_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()

    def abort(self) -> None:
        self.stream.abort()


class _Action(enum.Enum):
    RETRY = "retry"  # retire the circuit, try again on another
    RETRY_ELSEWHERE = "retry-elsewhere"  # the same, and no new path through that exit
    RETRY_LIMITED = "retry-limited"  # RETRY, counted against resolve_failures
    CLOSE = "close"  # close the circuit; the request fails
    FAIL = "fail"


#: C tor's edge_reason_is_retriable and the cases of connection_ap_process_end_not_open
#: (for EXITPOLICY it learns that the exit rejects the address; for HIBERNATING and
#: RESOURCELIMIT it treats the exit as rejecting everything: we avoid it for the request).
_END_ACTIONS: dict[int, _Action] = {
    EndReason.EXITPOLICY: _Action.RETRY_ELSEWHERE,
    EndReason.HIBERNATING: _Action.RETRY_ELSEWHERE,
    EndReason.RESOURCELIMIT: _Action.RETRY_ELSEWHERE,
    EndReason.RESOLVEFAILED: _Action.RETRY_LIMITED,
    EndReason.MISC: _Action.RETRY_LIMITED,
    EndReason.NOROUTE: _Action.RETRY_LIMITED,
    EndReason.TORPROTOCOL: _Action.CLOSE,
    EndReason.DESTROY: _Action.CLOSE,
}


def _no_end_action(circ: Circuit) -> _Action:
    # No END: the circuit died (another exit, please) or no answer came in time
    # (C tor retries on another circuit, exit unchanged).
    return _Action.RETRY_ELSEWHERE if circ.closed else _Action.RETRY


def _address_literal(host: str) -> str | None:
    """``host`` as a canonical IPv4/IPv6 address text, or None if it is a hostname."""
    try:
        return str(ip_address(host[1:-1] if host.startswith("[") else host))
    except ValueError:
        return None


def _connect_action(err: StreamError, circ: Circuit) -> _Action:
    if err.end_reason is None:
        return _no_end_action(circ)
    return _END_ACTIONS.get(err.end_reason, _Action.FAIL)


def _resolve_action(err: StreamError, circ: Circuit) -> _Action:
    # An error answer or END comes from the exit's resolver: asking another will not help.
    return _no_end_action(circ) if err.end_reason is None else _Action.FAIL


class TorClient:
    """A Tor client (see the module docstring)."""

    def __init__(self, rt: Runtime, config: ClientConfig, *,
                 on_progress: Callable[[BootstrapEvent], None] | None = None) -> None:
        self._rt = rt
        self.config = config
        self._on_progress = on_progress
        self.stats = ClientStats()
        self.socks_address: tuple[str, int] | None = None
        self._store: SqliteGuardStore | None = None
        self._pool: ChannelPool | None = None
        self._circmgr: CircuitManager | None = None
        self._dir: DirClient | None = None
        self._refresh: Task[None] | None = None
        self._socks: SocksServer | None = None
        self._started = Event(rt)
        self._closed = False

    # --- views ------------------------------------------------------------------------
    @property
    def netdir(self) -> NetDir | None:
        """The directory in use (the latest the directory client published)."""
        return None if self._circmgr is None else self._circmgr.netdir

    @property
    def circmgr(self) -> CircuitManager:
        if self._circmgr is None:
            raise LocalError("the client has not started")
        return self._circmgr

    # --- life cycle -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the SOCKS port (:meth:`open_socks`), bootstrap, then start the directory
        refresh and the circuit manager.  After a BootstrapError, ``start()`` may be
        called again; the SOCKS port stays open meanwhile."""
        await self.open_socks()
        await self.bootstrap()
        self._refresh = self._require_dir().start_refresh()
        self.circmgr.start()
        self._started.set()

    async def bootstrap(self) -> None:
        """Directory information (BootstrapError if no source gives it), then a first
        exit circuit; if that cannot be built, a warning event, and the client goes on."""
        self._setup()
        await self._require_dir().bootstrap()
        self._emit(BootstrapEvent(95, "circuit_create", "Establishing a Tor circuit"))
        ports = self.config.circuit_config.predicted_ports or (80,)
        try:
            await timeout(self._rt, self.config.stream_config.connect_timeout,
                          self.circmgr.ensure_exit_circuit(ports[0]), what="a first circuit")
        except GotorError as err:
            text = f"no circuit could be built yet: {err}"
            self._emit(BootstrapEvent(95, "warning", text, warning=text))
            return
        self._emit(BootstrapEvent(100, "done", "Done"))

    def _setup(self) -> None:
        if self._closed:
            raise LocalError("the client is closed")
        if self._circmgr is not None:
            return
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._store = SqliteGuardStore.in_data_dir(data_dir)
        circ_config = self.config.circuit_config
        self._pool = ChannelPool(self._rt, connect_timeout=circ_config.channel_timeout)
        guards = GuardManager(self._rt.rng, self._store, on_store_error=self._guard_store_failed)
        self._circmgr = CircuitManager(self._rt, self._pool, guards, circ_config,
                                       stats=self.stats.circuits)
        self._dir = DirClient(self._rt, self.config.dir, self._circmgr.open_dir_stream,
                              cache=DirCache(data_dir), on_progress=self._emit,
                              on_netdir=self._circmgr.set_netdir)

    def _guard_store_failed(self, exc: GotorError) -> None:
        # The guards live on in memory; the next change of the sample is saved again.
        self._rt.trace("guard-warning", text=str(exc))

    def _require_dir(self) -> DirClient:
        if self._dir is None:
            raise LocalError("the client has not started")
        return self._dir

    def _emit(self, event: BootstrapEvent) -> None:
        if event.tag in ("circuit_create", "done"):
            self._rt.trace("bootstrap", percent=event.percent, tag=event.tag)
        if self._on_progress is not None:
            self._on_progress(event)

    async def aclose(self) -> None:
        """Stop everything the client started; idempotent."""
        self._closed = True
        if self._socks is not None:
            await self._socks.aclose()
        if self._refresh is not None:
            self._refresh.cancel("client closed")
        if self._circmgr is not None:
            await self._circmgr.aclose()
        if self._refresh is not None:
            await wait_finished(self._rt, [self._refresh])
        if self._pool is not None:
            try:
                await timeout(self._rt, CLOSE_TIMEOUT, self._pool.aclose("client closed"),
                              what="closing the channels")
            except Timeout:
                pass  # a relay that never finishes the TLS close: its task dies with the link
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- streams ----------------------------------------------------------------------
    def _check_running(self) -> CircuitManager:
        if self._closed or self._circmgr is None or self._circmgr.netdir is None:
            raise LocalError("the client is not running (bootstrap it first)")
        return self._circmgr

    async def connect(self, host: str, port: int, *,
                      isolation: Hashable = None) -> ClientStream:
        """A stream to ``host:port`` through an exit (see the module docstring).

        ``host`` is a hostname (resolved by the exit), an IPv4 or an IPv6 address;
        streams with different ``isolation`` keys never share a circuit.
        """
        if not host or not 0 < port < 65536:
            raise LocalError(f"bad target {host!r}:{port}")
        self._check_running()
        try:
            stream, circ = await timeout(
                self._rt, self.config.stream_config.connect_timeout,
                self._attempts(port, isolation, _connect_action,
                               lambda c, t: c.open_stream(host, port, timeout_s=t)),
                what=f"connecting to {host}:{port}",
                discard=lambda opened: opened[0].abort())
        except GotorError:
            self.stats.streams_failed += 1
            raise
        self.stats.streams_opened += 1
        return ClientStream(stream, circ, self.stats)

    async def resolve(self, host: str, *, isolation: Hashable = None) -> list[str]:
        """The addresses the exit's resolver gives for ``host`` (a hostname for an
        ``in-addr.arpa`` / ``ip6.arpa`` name), as text."""
        if not host:
            raise LocalError("resolve needs a hostname")
        self._check_running()
        literal = _address_literal(host)
        if literal is not None:
            # An address is its own answer, as C tor's client gives it without asking
            # (connection_ap_handshake_rewrite_and_attach): a C tor exit answers a
            # RESOLVE of an address with an error (dns.c, send_resolved_cell).
            self.stats.resolves += 1
            return [literal]
        try:
            answers, _ = await timeout(
                self._rt, self.config.stream_config.connect_timeout,
                self._attempts(None, isolation, _resolve_action,
                               lambda c, t: c.resolve(host, timeout_s=t)),
                what=f"resolving {host}")
        except GotorError:
            self.stats.resolves_failed += 1
            raise
        self.stats.resolves += 1
        return [str(a.ip) if a.ip is not None else a.hostname or "" for a in answers
                if a.ip is not None or a.hostname is not None]

    async def _attempts(self, port: int | None, isolation: Hashable,
                        classify: Callable[[StreamError, Circuit], _Action],
                        attempt: Callable[[Circuit, float], Awaitable[T]]) -> tuple[T, Circuit]:
        """Run ``attempt`` on circuits from the manager until it succeeds or must fail."""
        circmgr, cfg = self._check_running(), self.config.stream_config
        avoid: set[bytes] = set()
        tries = limited = 0
        last: StreamError | None = None
        while True:
            try:
                circ = await circmgr.get_exit_circuit(port, isolation, avoid=avoid)
            except NoPathError:
                if last is None:
                    raise
                raise last from None  # every other exit was avoided: the exits' answer
            try:
                return await attempt(circ, cfg.begin_timeout(tries)), circ
            except StreamError as err:
                last = err
                action = classify(err, circ)
                tries += 1
                limited += action is _Action.RETRY_LIMITED
                if action is _Action.CLOSE:
                    circ.close(f"the exit reported {err.reason}")
                    raise
                circmgr.retire(circ)
                if (action is _Action.FAIL or tries >= cfg.attempts
                        or limited >= cfg.resolve_failures):
                    raise
                if action is _Action.RETRY_ELSEWHERE:
                    avoid.add(circ.hops[-1].rsa_id)
                self.stats.stream_retries += 1
                self._rt.trace("stream-retry", attempt=tries, reason=err.reason)

    # --- SOCKS ------------------------------------------------------------------------
    async def open_socks(self) -> None:
        """Listen on the configured SOCKS port, if any and not yet (``socks_address``
        says where).  As C tor's SocksPort, it may open before the client has started:
        a request that comes early waits for :meth:`start` (within the stream connect
        timeout)."""
        if self.config.socks is None or self._socks is not None:
            return
        if self._closed:
            raise LocalError("the client is closed")
        self._socks = SocksServer(self._rt, self._socks_connect, resolve=self._socks_resolve,
                                  resolve_ptr=self._socks_resolve_ptr,
                                  handshake_timeout=self.config.socks_handshake_timeout)
        self.socks_address = (await self._socks.start(*self.config.socks)).address

    async def _until_started(self) -> None:
        """What a SOCKS request does first: wait until the client has started."""
        await timeout(self._rt, self.config.stream_config.connect_timeout,
                      self._started.wait(), what="waiting for the bootstrap")

    async def _socks_connect(self, host: str, port: int,
                             isolation: Isolation | None) -> ByteStream:
        await self._until_started()
        return await self.connect(host, port, isolation=isolation)

    async def _socks_resolve(self, host: str, isolation: Isolation | None) -> str:
        await self._until_started()
        answers = await self.resolve(host, isolation=isolation)
        if not answers:
            raise StreamError(f"no address for {host}", end_reason=EndReason.RESOLVEFAILED)
        return min(answers, key=lambda a: ":" in a)  # one answer: IPv4 first, as C tor

    async def _socks_resolve_ptr(self, address: str, isolation: Isolation | None) -> str:
        try:
            name = ip_address(address).reverse_pointer
        except ValueError:
            raise StreamError(f"{address!r} is not an IP address",
                              end_reason=EndReason.RESOLVEFAILED) from None
        return await self._socks_resolve(name, isolation)
