"""Entry guards: the guard algorithm of guard-spec §4, as a pure state machine.

The client connects directly only to a few long-lived *guards*.  The state,
in guard-spec's terms:

* ``SAMPLED_GUARDS`` (§4.1): up to a bounded number of relays that were
  listed as guards, chosen bandwidth-weighted (``Wgg``/``Wgd``), kept in
  sample order with the dates that decide their expiry.  Persistent.
* ``FILTERED_GUARDS`` / ``USABLE_FILTERED_GUARDS`` (§4.2): sampled guards
  that are listed now (and not known to be unreachable).  Derived.
* ``CONFIRMED_GUARDS`` (§4.3): guards that carried a usable circuit, in the
  order we first used them.  Persistent.
* ``PRIMARY_GUARDS`` (§4.4): the first ``N_PRIMARY_GUARDS`` (3) filtered
  guards, confirmed ones first.  Derived, but once in, a guard stays until a
  confirmed guard displaces it.
* per guard, transient: reachable yes/no/maybe, failing since, last tried,
  pending (§4.1); no-longer-unreachable after the retry schedule (§4.5).

Circuits (§4.6-4.9): :meth:`GuardManager.pick_guard` returns a guard and a
:class:`GuardToken`; the caller builds the circuit and calls
:meth:`GuardManager.report`.  A circuit through a primary guard is usable on
completion; one through another guard may have to wait until we are sure no
better guard works (:meth:`GuardManager.poll_waiting`).

Every method takes ``now`` (POSIX seconds).  Every change to persistent state
is written through the :class:`GuardStore` given (one transaction per change:
:mod:`gotor.guard_store` keeps it in SQLite), so a restart keeps the sample
and the confirmed order; transient state starts afresh, as in C tor.

Simplified or left out (documented here so that nothing is silent):

* one guard-state instance (§2 "Default"); no bridges, no EntryNodes or
  reachable-address filters, no path-bias disabling, so FILTERED = listed;
* a guard is listed when its entry has Guard, Running, Valid, Fast, Stable
  and V2Dir (§4.0); it can carry circuits only once we have its
  microdescriptor (§4.12: without one it is skipped, not marked down);
  one-hop directory fetches through guards without microdescriptors are not
  offered;
* the restriction of a circuit (§4.6) is "compatible with these relays"
  (not the same relay, family or subnet as the exit).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from gotor.errors import GotorError, LocalError, NoPathError
from gotor.netdir import NetDir, NetParams, Relay, Role
from gotor.netdoc.consensus import RouterStatus
from gotor.path import weighted_choice
from gotor.runtime.api import Rng

__all__ = [
    "GUARD_FLAGS",
    "CircState",
    "GuardManager",
    "GuardRecord",
    "GuardStore",
    "GuardToken",
    "GuardUsage",
    "GuardVerdict",
    "Reachable",
    "retry_delay",
]

#: guard-spec §4.0: "They must have the flags: Stable, Fast, V2Dir, Guard" (and be usable).
GUARD_FLAGS = frozenset({"Guard", "Running", "Valid", "Fast", "Stable", "V2Dir"})

_HOUR, _DAY = 3600, 86400
#: guard-spec A.1 PRIMARY_GUARDS_RETRY_SCHED / GUARDS_RETRY_SCHED, as C tor's
#: ``get_retry_schedule``: (failing for at most, primary delay, non-primary delay).
_RETRY_SCHEDULE = (
    (6 * _HOUR, 10 * 60, 1 * _HOUR),
    (4 * _DAY, 90 * 60, 4 * _HOUR),
    (7 * _DAY, 4 * _HOUR, 18 * _HOUR),
)
_RETRY_LAST = (9 * _HOUR, 36 * _HOUR)


def retry_delay(failing_for: float, *, primary: bool) -> int:
    """How long after the last attempt an unreachable guard becomes "maybe" again."""
    for limit, primary_delay, other_delay in _RETRY_SCHEDULE:
        if failing_for <= limit:
            return primary_delay if primary else other_delay
    return _RETRY_LAST[0] if primary else _RETRY_LAST[1]


class Reachable(enum.Enum):
    MAYBE = "maybe"
    YES = "yes"
    NO = "no"


class GuardUsage(enum.Enum):
    """How a new circuit may be used once built (guard-spec §4.6)."""

    ON_COMPLETION = "usable_on_completion"
    IF_NO_BETTER = "usable_if_no_better_guard"


class CircState(enum.Enum):
    """A circuit attempt's guard state (guard-spec §4.6)."""

    PENDING = "pending"  # being built
    WAITING = "waiting_for_better_guard"
    COMPLETE = "complete"


class GuardVerdict(enum.Enum):
    """What :meth:`GuardManager.report` tells the caller to do with the circuit."""

    USE = "use"  # complete: attach streams
    WAIT = "wait"  # built, but a better guard may still work: keep it, do not use yet
    FAILED = "failed"  # the guard is marked unreachable; close the circuit


@dataclass(frozen=True)
class GuardRecord:
    """The persistent part of a sampled guard (guard-spec §4.1, §4.3, A.5)."""

    rsa_id: bytes
    nickname: str
    sample_idx: int
    added_on: int
    listed: bool = True
    unlisted_since: int | None = None
    confirmed_on: int | None = None
    confirmed_idx: int | None = None


class GuardStore(Protocol):
    """Where the sampled guards persist; ``save`` replaces the whole set atomically
    (a GotorError if it cannot)."""

    def load(self) -> list[GuardRecord]: ...
    def save(self, records: Sequence[GuardRecord]) -> None: ...


@dataclass(frozen=True)
class GuardToken:
    """Names one circuit attempt through one guard; hand it back to ``report``."""

    id: int
    rsa_id: bytes
    usage: GuardUsage


@dataclass
class _Guard:
    record: GuardRecord
    reachable: Reachable = Reachable.MAYBE
    failing_since: float | None = None
    last_tried: float | None = None
    pending: bool = False

    @property
    def rsa_id(self) -> bytes:
        return self.record.rsa_id

    @property
    def confirmed(self) -> bool:
        return self.record.confirmed_idx is not None

    @property
    def usable(self) -> bool:
        """In USABLE_FILTERED_GUARDS (FILTERED is "listed" here)."""
        return self.record.listed and self.reachable is not Reachable.NO


@dataclass
class _Attempt:
    token: GuardToken
    state: CircState
    state_set_at: float
    avoid: tuple[Relay, ...]


def _is_guard(rs: RouterStatus) -> bool:
    return GUARD_FLAGS <= rs.flags


class GuardManager:
    """guard-spec's algorithm over one persistent guard sample (see the module docstring)."""

    def __init__(self, rng: Rng, store: GuardStore | None = None, *,
                 on_store_error: Callable[[GotorError], None] | None = None) -> None:
        self._rng = rng
        self._store = store
        self._on_store_error = on_store_error
        records = store.load() if store is not None else []
        self._guards: dict[bytes, _Guard] = {r.rsa_id: _Guard(r) for r in records}
        # Sample indices only grow (C tor's next_sampled_idx): order survives removals.
        self._next_idx = max((r.sample_idx for r in records), default=-1) + 1
        self._primary: list[bytes] = []
        self._attempts: dict[int, _Attempt] = {}
        self._next_token = 0
        self._last_on_internet: float | None = None  # None: "infinitely far in the past"
        self._params = NetParams()
        self._netdir: NetDir | None = None

    # --- views (for tests, tools and the controller) ----------------------------
    @property
    def sampled(self) -> list[GuardRecord]:
        """SAMPLED_GUARDS in sample order."""
        return [g.record for g in self._sample_order()]

    @property
    def confirmed(self) -> list[bytes]:
        """CONFIRMED_GUARDS in confirmed order."""
        return [g.rsa_id for g in self._confirmed_order()]

    @property
    def primary(self) -> list[bytes]:
        return list(self._primary)

    def reachable(self, rsa_id: bytes) -> Reachable | None:
        g = self._guards.get(rsa_id)
        return g.reachable if g is not None else None

    def pending_attempts(self) -> dict[int, CircState]:
        return {k: a.state for k, a in sorted(self._attempts.items())}

    # --- ordering -----------------------------------------------------------------
    def _sample_order(self) -> list[_Guard]:
        return sorted(self._guards.values(), key=lambda g: g.record.sample_idx)

    def _confirmed_order(self) -> list[_Guard]:
        confirmed = [g for g in self._guards.values() if g.confirmed]
        return sorted(confirmed, key=lambda g: g.record.confirmed_idx or 0)

    def _higher_priority(self, a: _Guard, b: _Guard) -> bool:
        """C tor's ``entry_guard_has_higher_priority`` (guard-spec §4.3)."""
        ia, ib = a.record.confirmed_idx, b.record.confirmed_idx
        if ia is not None or ib is not None:
            return ib is None or (ia is not None and ia < ib)
        if a.pending != b.pending:
            return a.pending
        return a.pending and (a.last_tried or 0) < (b.last_tried or 0)

    # --- persistence ----------------------------------------------------------------
    def _persist(self) -> None:
        if self._store is None:
            return
        try:
            self._store.save(self.sampled)
        except GotorError as exc:
            # As C tor when it cannot write its state file: the guard state lives on in
            # memory (the next change tries again); the caller is told, circuits go on.
            if self._on_store_error is not None:
                self._on_store_error(exc)

    def _set(self, g: _Guard, **changes: object) -> None:
        g.record = replace(g.record, **changes)  # type: ignore[arg-type]

    # --- ON_CONSENSUS (guard-spec §4.10) -------------------------------------------
    def update(self, netdir: NetDir, now: float) -> None:
        """A new directory: update listing, expire, re-derive filtered and primary."""
        self._netdir = netdir
        self._params = netdir.params
        before = self.sampled
        listed = {rs.identity for rs in netdir.consensus.routers if _is_guard(rs)}
        for g in self._sample_order():
            self._update_listed(g, g.rsa_id in listed, now)
        if netdir.lifetime.is_live(now):
            for g in self._sample_order():
                if self._expired(g, now):
                    del self._guards[g.rsa_id]
        self._expand_sample(netdir, now)
        self._update_primary()
        if self.sampled != before:
            self._persist()

    def _update_listed(self, g: _Guard, listed: bool, now: float) -> None:
        if listed and not g.record.listed:
            self._set(g, listed=True, unlisted_since=None)
        elif not listed and g.record.listed:
            slop = self._params.guard_remove_unlisted_after // 5
            self._set(g, listed=False, unlisted_since=self._rand_past(now, slop))

    def _expired(self, g: _Guard, now: float) -> bool:
        """guard-spec §4.1's two removal rules."""
        p, r = self._params, g.record
        unlisted = r.unlisted_since if not r.listed else None
        if unlisted is not None and unlisted + p.guard_remove_unlisted_after < now:
            return True
        if r.added_on + p.guard_lifetime < now:
            return r.confirmed_on is None or r.confirmed_on + p.guard_confirmed_min_lifetime < now
        return False

    def _rand_past(self, now: float, interval: int) -> int:
        """guard-spec A.2 RAND(now, INTERVAL): uniformly in the INTERVAL before now."""
        return int(now) - self._rng.randrange(max(1, interval))

    # --- sampling (guard-spec §4.1-4.2) ----------------------------------------------
    def _max_sample(self, n_guards: int) -> int:
        p = self._params
        by_pct = n_guards * p.guard_max_sample_threshold_pct // 100
        return max(p.guard_min_filtered_sample_size, min(by_pct, p.guard_max_sample_size))

    def _expand_sample(self, netdir: NetDir, now: float) -> None:
        """Add weighted guards until USABLE_FILTERED is large enough or the sample is full."""
        eligible = [rs for rs in netdir.consensus.routers if _is_guard(rs)]
        limit = self._max_sample(len(eligible))
        fresh = [rs for rs in eligible if rs.identity not in self._guards]
        want = self._params.guard_min_filtered_sample_size
        weights = [netdir.weight(rs, Role.GUARD) for rs in fresh]
        usable = sum(1 for g in self._guards.values() if g.usable)
        while fresh and len(self._guards) < limit and usable < want:
            k = weighted_choice(range(len(fresh)), weights, self._rng)
            rs = fresh.pop(k)
            del weights[k]
            usable += 1  # a new guard is listed and "maybe" reachable
            added = self._rand_past(now, self._params.guard_lifetime // 10)
            record = GuardRecord(rs.identity, rs.nickname, self._next_idx, added)
            self._guards[rs.identity] = _Guard(record)
            self._next_idx += 1

    # --- primary guards (guard-spec §4.4) ---------------------------------------------
    def _update_primary(self) -> None:
        n = self._params.guard_n_primary_guards
        new = [g.rsa_id for g in self._confirmed_order() if g.record.listed][:n]
        old = [k for k in self._primary if k in self._guards and self._guards[k].record.listed]
        rest = [g.rsa_id for g in self._sample_order() if g.record.listed]
        for rsa_id in (*old, *rest):
            if len(new) >= n:
                break
            if rsa_id not in new:
                new.append(rsa_id)
        self._primary = new

    def _is_primary(self, g: _Guard) -> bool:
        return g.rsa_id in self._primary

    # --- retrying (guard-spec §4.5) -----------------------------------------------------
    def _consider_retry(self, now: float) -> None:
        for g in self._guards.values():
            if g.reachable is not Reachable.NO:
                continue
            failing_for = now - (g.failing_since if g.failing_since is not None else now)
            delay = retry_delay(failing_for, primary=self._is_primary(g))
            if g.last_tried is None or now >= g.last_tried + delay:
                g.reachable = Reachable.MAYBE

    def _mark_maybe(self, guards: Sequence[_Guard]) -> None:
        for g in guards:
            if g.reachable is Reachable.NO:
                g.reachable = Reachable.MAYBE

    # --- selecting (guard-spec §4.6) ----------------------------------------------------
    def pick_guard(
        self, netdir: NetDir, now: float, *, avoid: Sequence[Relay] = (), for_dir: bool = False
    ) -> tuple[Relay, GuardToken]:
        """A guard for a new circuit, compatible with the relays in ``avoid``.

        Raises NoPathError when no sampled guard can be used (for example,
        none has a microdescriptor yet).
        """
        if netdir is not self._netdir:
            self.update(netdir, now)
        self._consider_retry(now)
        picked = self._select(netdir, avoid, for_dir, now)
        if picked is None:
            # "we have exhausted all the sampled guards": everything is "maybe" again.
            self._mark_maybe(list(self._guards.values()))
            picked = self._select(netdir, avoid, for_dir, now)
        if picked is None:
            raise NoPathError("no usable entry guard (none sampled is reachable, has a "
                              "microdescriptor and may share a path with the other hops)")
        g, usage, relay = picked
        g.last_tried = now
        if usage is GuardUsage.IF_NO_BETTER:
            g.pending = True
        self._next_token += 1
        token = GuardToken(self._next_token, g.rsa_id, usage)
        self._attempts[token.id] = _Attempt(token, CircState.PENDING, now, tuple(avoid))
        return relay, token

    def _select(
        self, netdir: NetDir, avoid: Sequence[Relay], for_dir: bool, now: float
    ) -> tuple[_Guard, GuardUsage, Relay] | None:
        def ok(g: _Guard) -> Relay | None:
            relay = netdir.by_rsa_id(g.rsa_id)
            return relay if relay is not None and netdir.compatible(relay, avoid) else None

        p = self._params
        n_use = p.guard_n_primary_dir_guards_to_use if for_dir else p.guard_n_primary_guards_to_use
        primary = [self._guards[k] for k in self._primary]
        live = [(g, r) for g in primary if g.reachable is not Reachable.NO and (r := ok(g))]
        if live:
            # "return one of the first NUM_USABLE_PRIMARY_GUARDS such guards, chosen
            # uniformly at random"
            first = live[:n_use]
            g, relay = first[self._rng.randrange(len(first))]
            return g, GuardUsage.ON_COMPLETION, relay
        confirmed = [(g, r) for g in self._confirmed_order() if g.usable and (r := ok(g))]
        if not confirmed:
            self._expand_sample(netdir, now)
        others = [
            (g, r) for g in self._sample_order() if not g.confirmed and g.usable and (r := ok(g))
        ]
        for group in (confirmed, others):
            if group:
                g, relay = next(((g, r) for g, r in group if not g.pending), group[0])
                return g, GuardUsage.IF_NO_BETTER, relay
        return None

    # --- outcomes (guard-spec §4.7-4.9) ---------------------------------------------
    def report(self, token: GuardToken, success: bool, now: float) -> GuardVerdict:
        """The circuit through ``token``'s guard was built (or failed because of the guard)."""
        att = self._attempts.get(token.id)
        if att is None or att.state is not CircState.PENDING:
            raise LocalError(f"guard token {token.id} is not a pending attempt")
        g = self._guards.get(token.rsa_id)
        if g is None:  # removed from the sample meanwhile: judge the circuit alone
            if not success:
                del self._attempts[token.id]
                return GuardVerdict.FAILED
            att.state = CircState.COMPLETE
            return GuardVerdict.USE
        if not success:
            g.reachable = Reachable.NO
            g.pending = False
            if g.failing_since is None:
                g.failing_since = now
            del self._attempts[token.id]
            return GuardVerdict.FAILED
        return self._on_success(att, g, now)

    def _on_success(self, att: _Attempt, g: _Guard, now: float) -> GuardVerdict:
        last_on_internet, self._last_on_internet = self._last_on_internet, now
        g.reachable, g.failing_since, g.pending = Reachable.YES, None, False
        if not g.confirmed:
            idx = max((c.record.confirmed_idx or 0 for c in self._confirmed_order()), default=-1)
            confirmed_on = self._rand_past(now, self._params.guard_lifetime // 10)
            self._set(g, confirmed_on=confirmed_on, confirmed_idx=idx + 1)
            self._update_primary()
            self._persist()
        complete = att.token.usage is GuardUsage.ON_COMPLETION or self._is_primary(g)
        att.state, att.state_set_at = (
            (CircState.COMPLETE if complete else CircState.WAITING),
            now,
        )
        if not self._is_primary(g):
            interval = self._params.guard_internet_likely_down_interval
            if last_on_internet is None or last_on_internet + interval < now:
                self._mark_maybe([self._guards[k] for k in self._primary])
        if complete:
            return GuardVerdict.USE
        return GuardVerdict.USE if att in self._upgrade(now) else GuardVerdict.WAIT

    def release(self, token: GuardToken) -> None:
        """The circuit is gone (closed, or abandoned for a reason that is not the guard's)."""
        att = self._attempts.pop(token.id, None)
        if att is not None and att.state is CircState.PENDING:
            g = self._guards.get(token.rsa_id)
            if g is not None:
                g.pending = False

    def poll_waiting(self, now: float) -> tuple[list[GuardToken], list[GuardToken]]:
        """guard-spec §4.9: (circuits now complete, circuits that waited too long).

        The expired ones are forgotten; the caller closes them.
        """
        idle = self._params.guard_nonprimary_idle_timeout
        expired = [
            a.token
            for a in self._attempts.values()
            if a.state is CircState.WAITING and a.state_set_at + idle < now
        ]
        for token in expired:
            del self._attempts[token.id]
        return [a.token for a in self._upgrade(now)], expired

    def _upgrade(self, now: float) -> list[_Attempt]:
        """C tor's ``entry_guards_upgrade_waiting_circuits``."""
        self._consider_retry(now)
        if any(self._guards[k].reachable is not Reachable.NO for k in self._primary):
            return []
        waiting = [a for a in self._attempts.values() if a.state is CircState.WAITING]
        if not waiting:
            return []
        best = waiting[0]
        for a in waiting[1:]:
            if self._att_higher(a, best, None):
                best = a
        cutoff = now - self._params.guard_nonprimary_connect_timeout
        for a in self._attempts.values():
            blocking = a.state is CircState.COMPLETE or (
                a.state is CircState.PENDING
                and a.token.usage is GuardUsage.IF_NO_BETTER
                and a.state_set_at > cutoff
            )
            if blocking and self._att_higher(a, best, best.avoid):
                return []
        # Complete the best, and (when it had no restriction) every waiting circuit
        # of equal priority.
        done = [
            a
            for a in waiting
            if a is best or (not best.avoid and not self._att_higher(best, a, None))
        ]
        for a in done:
            a.state, a.state_set_at = CircState.COMPLETE, now
        return done

    def _att_higher(self, a: _Attempt, b: _Attempt, avoid: tuple[Relay, ...] | None) -> bool:
        """C tor's ``circ_state_has_higher_priority`` (restriction = ``avoid``)."""
        ga, gb = self._guards.get(a.token.rsa_id), self._guards.get(b.token.rsa_id)
        if ga is None:
            return False
        if gb is None:
            return True
        if avoid and self._netdir is not None:
            relay = self._netdir.by_rsa_id(ga.rsa_id)
            if relay is None or not self._netdir.compatible(relay, avoid):
                return False
        return self._higher_priority(ga, gb)
