"""The circuit manager: which circuit carries a stream (path-spec §2, guard-spec §4.6-4.9).

Its rules are C tor's (``circuituse.c``, ``circuitbuild.c``), in short:

* **Exit circuits** form one pool.  A circuit is *clean* until a request takes
  it; the request's isolation key (None is the shared key) then binds it and it
  is *dirty*: it takes further requests with the same key for
  ``max_dirtiness`` (MaxCircuitDirtiness), then none, and closes once its last
  stream is gone (``circuit_expire_old_circuits_clientside``).  A clean circuit
  nobody took closes after ``clean_lifetime``.  A request prefers a circuit
  already bound to its key (most recently dirtied first) over a clean one.
* A request that finds no open circuit joins a build in progress that will
  suit it (same key, or a preemptive build), else launches one, which is kept
  for its key once built (a preemptive one is anybody's).  A failed
  build is retried on a freshly chosen path that avoids the relay that failed
  (:attr:`~gotor.errors.CircuitError.failed_hop`), up to ``build_attempts``
  failures per request (C tor's MAX_CIRCUIT_FAILURES).
* **Guards** come from the :class:`~gotor.guard.GuardManager`.  A build is
  reported as the guard's failure only when the first hop failed without a
  DESTROY (``circuit_build_failed``); otherwise the attempt is released.  A
  circuit whose verdict is WAIT stays unused until
  :meth:`~gotor.guard.GuardManager.poll_waiting` lists it (checked after every
  outcome and every tick), and is closed if it expires; every circuit that
  closes is released.
* **Preemptive circuits**: once a directory is known, each tick keeps
  ``preemptive_circuits`` clean circuits (open or being built) for every
  predicted port — the configured ones, and every port a request used within
  ``prediction_lifetime`` — launching at most one per tick and never more than
  ``max_clean`` clean circuits (``circuit_predict_and_launch_new``).  Failed
  preemptive builds back off exponentially (up to a minute).
* **Directory circuits** (:meth:`CircuitManager.open_dir_stream`, the
  ``open_dir_stream`` of :class:`~gotor.dir.DirClient`): one one-hop circuit
  per directory source, reused; CREATE2 when the source's ntor key is known
  (from the source, or from the consensus), CREATE_FAST otherwise (tor-spec
  §5.1.5: before we have a consensus); closed after ``dir_idle`` seconds
  without streams (IDLE_ONE_HOP_CIRC_TIMEOUT).
* A new :class:`~gotor.netdir.NetDir` (:meth:`CircuitManager.set_netdir`) is
  adopted for every later path choice and handed to the guard manager;
  circuits already built stay.

Every build runs as a task whose outcome is kept on a launch record (a task
nobody waits for any more must not count as an unobserved failure);
:meth:`CircuitManager.aclose` cancels them all and closes every circuit.
"""

from __future__ import annotations

import enum
from collections.abc import Coroutine, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from gotor.circuit import CircParams, Circuit, HopSpec, build_circuit
from gotor.config import CircuitConfig
from gotor.dir.fetch import DirSource
from gotor.errors import (
    Cancelled,
    ChannelError,
    CircuitError,
    GotorError,
    LocalError,
    NoPathError,
    StreamError,
)
from gotor.guard import GuardManager, GuardToken, GuardVerdict
from gotor.link.pool import ChannelPool
from gotor.netdir import NetDir, Relay
from gotor.path import Path, choose_exit_path, needs_stable
from gotor.runtime.api import Runtime, Task
from gotor.runtime.sync import Event, wait_finished
from gotor.stream import Stream

__all__ = ["CircKind", "CircuitManager", "CircuitStats"]


class _Unbound:
    """The isolation of a clean circuit (no request has taken it yet)."""


class _Any:
    """The tag of a preemptive build: a request with any isolation key may take it."""


UNBOUND = _Unbound()
ANY = _Any()
#: A failed preemptive build delays the next one by 2**failures seconds, at most this.
PREEMPTIVE_BACKOFF_MAX = 60.0


class CircKind(enum.Enum):
    EXIT = "exit"
    DIR = "dir"


@dataclass
class CircuitStats:
    """Counters of the circuit manager (exit and directory circuits apart)."""

    built: int = 0
    failed: int = 0
    dir_built: int = 0
    dir_failed: int = 0


@dataclass(eq=False)
class _Entry:
    """A built circuit and what the manager knows of it."""

    circ: Circuit
    kind: CircKind
    hops: tuple[bytes, ...]  # RSA ids, first to last
    born: float
    last: Relay | None = None  # the exit of an exit circuit
    stable: bool = False
    token: GuardToken | None = None
    source: bytes = b""  # the directory source's RSA id (DIR)
    isolation: object = UNBOUND
    dirty_since: float | None = None
    last_used: float = 0.0
    retired: bool = False  # no new streams (C tor's unusable_for_new_conns)
    waiting: bool = False  # guard verdict WAIT: not to be used yet


@dataclass(eq=False)
class _Launch:
    """A circuit being built, and its outcome once it is done."""

    kind: CircKind
    done: Event
    tag: object = ANY  # the isolation key it was launched for, or ANY
    path: Path | None = None  # EXIT
    port: int | None = None
    source: bytes = b""  # DIR
    task: Task[None] | None = None
    entry: _Entry | None = None
    error: BaseException | None = None
    blame: bytes | None = None  # the relay the failure is put on
    hops: tuple[bytes, ...] = ()


class CircuitManager:
    """Exit and directory circuits for one client (see the module docstring)."""

    def __init__(self, rt: Runtime, pool: ChannelPool, guards: GuardManager,
                 config: CircuitConfig | None = None, *,
                 stats: CircuitStats | None = None) -> None:
        self._rt = rt
        self._pool = pool
        self._guards = guards
        self.config = config or CircuitConfig()
        self.stats = stats or CircuitStats()
        self.netdir: NetDir | None = None
        self._entries: list[_Entry] = []
        self._launches: list[_Launch] = []
        self._ports: dict[int, float] = {}  # predicted port -> when last used
        self._changed = Event(rt)
        self._task: Task[None] | None = None
        self._closed = False
        self._preempt_failures = 0
        self._preempt_after = 0.0

    # --- views ------------------------------------------------------------------------
    def circuits(self, kind: CircKind = CircKind.EXIT) -> list[Circuit]:
        """The open circuits of ``kind``, oldest first."""
        return [e.circ for e in self._entries if e.kind is kind and not e.circ.closed]

    def isolation_of(self, circ: Circuit) -> object:
        """The isolation key a circuit is kept for (:data:`UNBOUND`: anybody's)."""
        return self._entry_of(circ).isolation

    def is_clean(self, circ: Circuit) -> bool:
        return self._entry_of(circ).dirty_since is None

    @property
    def guards(self) -> GuardManager:
        return self._guards

    @property
    def pending(self) -> int:
        """How many builds are in progress."""
        return len(self._launches)

    def _entry_of(self, circ: Circuit) -> _Entry:
        for e in self._entries:
            if e.circ is circ:
                return e
        raise LocalError(f"circuit {circ.name} is not managed here")

    # --- life cycle -------------------------------------------------------------------
    def set_netdir(self, netdir: NetDir) -> None:
        """Adopt a new directory: later paths come from it; the guards learn of it."""
        netdir = netdir.with_distinct_subnets(self.config.distinct_subnets)
        self.netdir = netdir
        self._guards.update(netdir, self._rt.wallclock())
        self._pulse()

    def start(self) -> None:
        """Start the maintenance task (expiry, guard polling, preemptive circuits)."""
        if self._task is not None or self._closed:
            return
        now = self._rt.now()
        for port in self.config.predicted_ports:
            self._ports.setdefault(port, now)
        self._task = self._rt.spawn(self._run(), name="circmgr")

    async def aclose(self) -> None:
        """Cancel every build and the maintenance task, close every circuit, wait."""
        self._closed = True
        tasks = [t for t in (self._task, *(la.task for la in self._launches)) if t is not None]
        for task in tasks:
            task.cancel("circuit manager closed")
        for e in self._entries:
            e.circ.close("client closed")
            self._release(e)
        self._entries.clear()
        self._pulse()
        await wait_finished(self._rt, tasks)

    def _check_open(self) -> None:
        if self._closed:
            raise CircuitError("the circuit manager is closed")

    def _pulse(self) -> None:
        changed, self._changed = self._changed, Event(self._rt)
        changed.set()

    async def _run(self) -> None:
        while True:
            self.maintain()
            await self._rt.sleep(self.config.tick)

    # --- exit circuits: requests --------------------------------------------------------
    async def get_exit_circuit(self, port: int | None, isolation: Hashable = None, *,
                               avoid: Iterable[bytes] = ()) -> Circuit:
        """An open circuit whose exit allows ``port`` (None: a RESOLVE), for ``isolation``.

        ``avoid``: RSA ids of relays that just failed this request; no hop of a
        new path conflicts with them and no circuit through them is taken.
        Raises NoPathError (no relay fits), CircuitError (every build failed).
        """
        entry = await self._obtain(port, isolation, set(avoid))
        now = self._rt.now()
        if entry.isolation is UNBOUND:
            entry.isolation = isolation
        if entry.dirty_since is None:
            entry.dirty_since = now
        entry.last_used = now
        if port is not None:
            self._ports[port] = now
        return entry.circ

    async def ensure_exit_circuit(self, port: int) -> Circuit:
        """Wait until a clean circuit for ``port`` is open (without taking it)."""
        return (await self._obtain(port, ANY, set())).circ

    def retire(self, circ: Circuit) -> None:
        """No new streams on ``circ`` (those on it go on): C tor's unusable_for_new_conns."""
        for e in self._entries:
            if e.circ is circ:
                e.retired = True

    async def _obtain(self, port: int | None, isolation: object, avoid: set[bytes]) -> _Entry:
        failures: list[str] = []
        while True:
            self._check_open()
            self._prune()
            entry = self._find_open(port, isolation, avoid)
            if entry is not None:
                return entry
            launch = self._find_launch(port, isolation, avoid)
            if launch is None and self._any_waiting(port, isolation, avoid):
                await self._changed.wait()  # a guard verdict may change: look again
                continue
            if launch is None:
                if len(failures) >= self.config.build_attempts:
                    what = "a RESOLVE" if port is None else f"port {port}"
                    raise CircuitError(f"no circuit to an exit for {what}: {len(failures)} "
                                       f"builds failed, the last: {failures[-1]}")
                try:
                    launch = self._launch_exit(port, isolation, avoid)
                except NoPathError:
                    if not failures:
                        raise
                    raise CircuitError(f"no circuit to an exit: the relays left after "
                                       f"{len(failures)} failed builds make no path; the "
                                       f"last failure: {failures[-1]}") from None
            await launch.done.wait()
            if launch.error is not None:
                if not isinstance(launch.error, GotorError):
                    raise launch.error  # a bug: do not disguise it as a network failure
                failures.append(str(launch.error))
                if launch.blame is not None:
                    avoid.add(launch.blame)

    def _usable(self, e: _Entry, now: float) -> bool:
        fresh = e.dirty_since is None or now - e.dirty_since < self.config.max_dirtiness
        return fresh and not (e.retired or e.waiting or e.circ.closed)

    def _find_open(self, port: int | None, isolation: object, avoid: set[bytes]) -> _Entry | None:
        now = self._rt.now()
        best: _Entry | None = None
        best_rank = (False, 0.0)
        for e in self._entries:
            if (e.kind is not CircKind.EXIT or not self._usable(e, now)
                    or not _fits(isolation, e.isolation) or not _serves(e, port)
                    or avoid.intersection(e.hops)):
                continue
            # A circuit already bound to the key first, most recently dirtied first (C tor's
            # circuit_is_better), so that clean circuits stay clean for other keys.
            rank = (e.isolation is not UNBOUND, e.dirty_since or 0.0)
            if best is None or rank > best_rank:
                best, best_rank = e, rank
        return best

    def _find_launch(self, port: int | None, isolation: object,
                     avoid: set[bytes]) -> _Launch | None:
        for launch in self._launches:
            if (launch.kind is CircKind.EXIT and launch.path is not None
                    and (launch.tag is ANY or (isolation is not ANY and launch.tag == isolation))
                    and _path_serves(launch.path, port) and not avoid.intersection(launch.hops)):
                return launch
        return None

    def _any_waiting(self, port: int | None, isolation: object, avoid: set[bytes]) -> bool:
        return any(e.waiting and not e.circ.closed and _fits(isolation, e.isolation)
                   and _serves(e, port) and not avoid.intersection(e.hops)
                   for e in self._entries if e.kind is CircKind.EXIT)

    # --- exit circuits: building ----------------------------------------------------------
    def _launch_exit(self, port: int | None, tag: object, avoid: set[bytes]) -> _Launch:
        netdir = self.netdir
        if netdir is None:
            raise LocalError("the circuit manager has no directory yet")
        avoided = [r for rid in sorted(avoid) if (r := netdir.by_rsa_id(rid)) is not None]
        path = choose_exit_path(netdir, self._rt.rng, port=port, guards=self._guards,
                                now=self._rt.wallclock(), avoid=avoided)
        hops = tuple(r.rsa_id for r in path.hops)
        launch = _Launch(CircKind.EXIT, Event(self._rt), tag=tag, path=path, port=port, hops=hops)
        self._rt.trace("circ-launch", purpose="preemptive" if tag is ANY else "request",
                       port=port, hops=[r.nickname for r in path.hops])
        self._start(launch, self._build_exit(launch, self._params(netdir)), f"exit {port}")
        return launch

    def _start(self, launch: _Launch, coro: Coroutine[Any, Any, None], what: str) -> None:
        launch.task = self._rt.spawn(coro, name=f"circ-build {what}")
        self._launches.append(launch)
        launch.task.add_done_callback(lambda task: self._launch_ended(launch, task))

    def _launch_ended(self, launch: _Launch, task: Task[None]) -> None:
        if launch in self._launches:
            self._launches.remove(launch)
        exc = task.exception()
        if exc is not None:  # cancelled (or a bug): nothing was reported for the guard
            launch.error = (CircuitError(f"circuit build cancelled: {task.cancel_reason}")
                            if isinstance(exc, Cancelled) else exc)
            if launch.path is not None and launch.path.guard_token is not None:
                self._guards.release(launch.path.guard_token)
        launch.done.set()
        self._pulse()

    def _params(self, netdir: NetDir | None) -> CircParams:
        params = netdir.circ_params() if netdir is not None else CircParams()
        if self.config.build_timeout is not None:
            params = replace(params, build_timeout=self.config.build_timeout)
        return params

    async def _build_exit(self, launch: _Launch, params: CircParams) -> None:
        path = launch.path
        if path is None:
            raise LocalError("an exit launch without a path")
        try:
            circ = await build_circuit(self._rt, self._pool, [r.hop_spec() for r in path.hops],
                                       params)
        except GotorError as err:
            self._exit_failed(launch, path, err)
            return
        self.stats.built += 1
        now = self._rt.now()
        # A circuit launched for a request is kept for its key (others would otherwise
        # take it first); a preemptive one is anybody's.
        entry = _Entry(circ, CircKind.EXIT, launch.hops, now, last=path.last,
                       stable=all("Stable" in r.flags for r in path.hops),
                       token=path.guard_token, last_used=now,
                       isolation=UNBOUND if launch.tag is ANY else launch.tag)
        if path.guard_token is not None:
            verdict = self._guards.report(path.guard_token, True, self._rt.wallclock())
            entry.waiting = verdict is GuardVerdict.WAIT
        if launch.tag is ANY:
            self._preempt_failures = 0
        self._entries.append(entry)
        launch.entry = entry
        self._poll_guards()

    def _exit_failed(self, launch: _Launch, path: Path, err: GotorError) -> None:
        self.stats.failed += 1
        launch.error = err
        hop = 0 if isinstance(err, ChannelError) else getattr(err, "failed_hop", None)
        if hop is not None and hop < len(path.hops):
            launch.blame = path.hops[hop].rsa_id
        token = path.guard_token
        if token is not None:
            # circuit_build_failed: the guard is to blame only if the first hop failed,
            # and not by a DESTROY (the relay answered; the fault lies further on).
            if hop == 0 and getattr(err, "destroy_reason", None) is None:
                self._guards.report(token, False, self._rt.wallclock())
            else:
                self._guards.release(token)
        if launch.tag is ANY:
            self._preempt_failures += 1
            delay = min(PREEMPTIVE_BACKOFF_MAX, 2.0 ** self._preempt_failures)
            self._preempt_after = self._rt.now() + delay
        self._rt.trace("circ-failed", port=launch.port, hop=hop, reason=str(err))

    # --- directory circuits ---------------------------------------------------------------
    async def open_dir_stream(self, source: DirSource) -> Stream:
        """A BEGIN_DIR stream to ``source`` over a (reused) one-hop circuit."""
        entry, reused = await self._dir_circuit(source)
        try:
            stream = await entry.circ.open_dir_stream()
        except StreamError:
            if not (reused and entry.circ.closed):
                raise
            # The circuit we reused had died meanwhile: one fresh circuit.
            entry, _ = await self._dir_circuit(source)
            stream = await entry.circ.open_dir_stream()
        entry.last_used = self._rt.now()
        return stream

    async def _dir_circuit(self, source: DirSource) -> tuple[_Entry, bool]:
        self._check_open()
        for e in self._entries:
            if e.kind is CircKind.DIR and e.source == source.rsa_id and not e.circ.closed:
                return e, True
        launch = next((la for la in self._launches
                       if la.kind is CircKind.DIR and la.source == source.rsa_id), None)
        if launch is None:
            launch = _Launch(CircKind.DIR, Event(self._rt), source=source.rsa_id,
                             hops=(source.rsa_id,))
            self._start(launch, self._build_dir(launch, source), f"dir {source.nickname}")
        await launch.done.wait()
        if launch.error is not None:
            raise launch.error
        if launch.entry is None:
            raise CircuitError("the circuit manager is closed")
        return launch.entry, False

    def _dir_hop(self, source: DirSource) -> HopSpec | None:
        """CREATE2 when the ntor key is known (the source's, or the consensus's)."""
        hop = source.hop_spec()
        if hop is None and self.netdir is not None:
            relay = self.netdir.by_rsa_id(source.rsa_id)
            if relay is not None:
                hop = replace(relay.hop_spec(), ipv4=source.ipv4)
        return hop

    async def _build_dir(self, launch: _Launch, source: DirSource) -> None:
        hop, params = self._dir_hop(source), self._params(self.netdir)
        try:
            if hop is None:
                circ = await Circuit.create_fast(self._rt, self._pool, source.chan_target(),
                                                 params)
            else:
                circ = await Circuit.create(self._rt, self._pool, hop, params)
        except GotorError as err:
            self.stats.dir_failed += 1
            launch.error = err
            return
        self.stats.dir_built += 1
        now = self._rt.now()
        launch.entry = _Entry(circ, CircKind.DIR, launch.hops, now, source=source.rsa_id,
                              last_used=now)
        self._entries.append(launch.entry)

    # --- maintenance ----------------------------------------------------------------------
    def maintain(self) -> None:
        """One tick: drop dead circuits, expire old ones, poll guards, launch preemptive."""
        if self._closed:
            return
        self._prune()
        self._expire(self._rt.now())
        self._poll_guards()
        self._preempt(self._rt.now())

    def _release(self, e: _Entry) -> None:
        if e.token is not None:
            self._guards.release(e.token)
            e.token = None

    def _prune(self) -> None:
        dead = [e for e in self._entries if e.circ.closed]
        for e in dead:
            self._entries.remove(e)
            self._release(e)
        if dead:
            self._pulse()  # a request held by a WAIT circuit that died must look again

    def _expire(self, now: float) -> None:
        cfg = self.config
        for e in list(self._entries):
            if e.circ.n_active_streams:
                continue
            if e.kind is CircKind.DIR:
                expired = now - e.last_used >= cfg.dir_idle
            elif e.dirty_since is not None:
                expired = now - e.dirty_since >= cfg.max_dirtiness
            else:
                expired = now - e.born >= cfg.clean_lifetime
            if expired:
                e.circ.close("idle" if e.kind is CircKind.DIR else "expired")
                self._entries.remove(e)
                self._release(e)
                self._pulse()

    def _poll_guards(self) -> None:
        usable, expired = self._guards.poll_waiting(self._rt.wallclock())
        if not usable and not expired:
            return
        now_usable = {t.id for t in usable}
        too_late = {t.id for t in expired}
        for e in self._entries:
            if e.token is None or not e.waiting:
                continue
            if e.token.id in now_usable:
                e.waiting = False
            elif e.token.id in too_late:
                e.token = None  # the guard manager has forgotten it already
                e.circ.close("waited too long for a better guard")
        self._pulse()

    def _preempt(self, now: float) -> None:
        cfg = self.config
        if self.netdir is None or not cfg.preemptive_circuits or now < self._preempt_after:
            return
        clean = [e for e in self._entries if e.kind is CircKind.EXIT and e.isolation is UNBOUND
                 and self._usable(e, now)]
        building = [la for la in self._launches if la.kind is CircKind.EXIT and la.tag is ANY]
        if len(clean) + len(building) >= cfg.max_clean:
            return
        for port in [p for p, used in self._ports.items() if now - used >= cfg.prediction_lifetime]:
            del self._ports[port]  # C tor: no longer predicted
        for port in sorted(self._ports):
            handled = (sum(1 for e in clean if _serves(e, port))
                       + sum(1 for la in building if la.path and _path_serves(la.path, port)))
            if handled < cfg.preemptive_circuits:
                try:
                    self._launch_exit(port, ANY, set())
                except NoPathError as err:
                    self._rt.trace("circ-nopath", port=port, reason=str(err))
                    continue
                return  # one launch per tick, as C tor


def _fits(isolation: object, bound: object) -> bool:
    """May a request with ``isolation`` use a circuit bound to ``bound``?"""
    return bound is UNBOUND or (isolation is not ANY and bound == isolation)


def _exit_allows(exit_: Relay, stable: bool, port: int | None) -> bool:
    if port is None:
        return exit_.allows_some_exit()
    return exit_.allows_port(port) and (stable or not needs_stable(port))


def _serves(e: _Entry, port: int | None) -> bool:
    return e.last is not None and _exit_allows(e.last, e.stable, port)


def _path_serves(path: Path, port: int | None) -> bool:
    return _exit_allows(path.last, all("Stable" in r.flags for r in path.hops), port)
