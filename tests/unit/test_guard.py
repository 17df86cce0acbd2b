"""Guard selection (gotor.guard, guard-spec §4) and its SQLite persistence (gotor.guard_store).

Time advances explicitly (``now``); the directory is built with
tests/unit/netdir_helpers.py so that every relay is known.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from netdir_helpers import BASIC, EXIT, GUARD, T0, Spec, index_of, make_netdir, rsa_id

from gotor.errors import LocalError, NoPathError
from gotor.guard import (
    GuardManager,
    GuardRecord,
    GuardUsage,
    GuardVerdict,
    Reachable,
    retry_delay,
)
from gotor.guard_store import SqliteGuardStore
from gotor.netdir import NetDir, Role

N_GUARDS = 25
DAY = 86400


def network(*, params: dict[str, int] | None = None, unlisted: Sequence[int] = (),
            missing: Sequence[int] = (), valid_after: int = T0) -> NetDir:
    """Guards 0..24 (bandwidth 100*(i+1)), then a middle and an exit."""
    specs = [
        Spec(GUARD if i not in unlisted else BASIC, bw=100 * (i + 1)) for i in range(N_GUARDS)
    ]
    specs += [Spec(BASIC), Spec(EXIT, policy="accept 80")]
    return make_netdir(specs, params=params, missing=missing, valid_after=valid_after)


@pytest.fixture
def nd() -> NetDir:
    return network()


def fresh(nd: NetDir, seed: int = 1, store: Any = None) -> GuardManager:
    gm = GuardManager(random.Random(seed), store)
    gm.update(nd, T0)
    return gm


# --- sampling (§4.1) ----------------------------------------------------------------------


def test_sample_size_and_order(nd: NetDir) -> None:
    gm = fresh(nd)
    sampled = gm.sampled
    # max(MIN_FILTERED_SAMPLE=20, min(25 * 20%, 60)) = 20
    assert len(sampled) == 20 and len({s.rsa_id for s in sampled}) == 20
    assert [s.sample_idx for s in sampled] == list(range(20))
    lifetime = 120 * DAY
    assert all(T0 - lifetime // 10 < s.added_on <= T0 for s in sampled)
    assert all(s.listed and s.confirmed_idx is None for s in sampled)
    assert gm.primary == [s.rsa_id for s in sampled[:3]]  # §4.4: sample order
    assert gm.confirmed == []
    # deterministic given the rng
    assert fresh(nd).sampled == sampled


class FirstDraw(random.Random):
    """randrange returns the preset point on its first call, 0 afterwards."""

    def __init__(self, point: int) -> None:
        super().__init__(0)
        self.point: int | None = point

    def randrange(self, start: int, stop: Any = None, step: int = 1) -> int:  # type: ignore[override]
        point, self.point = self.point, None
        return min(point, start - 1) if point is not None else 0


def test_sampling_is_weighted_by_guard_bandwidth() -> None:
    one = network(params={"guard-min-filtered-sample-size": 1, "guard-max-sample-size": 1})
    weights = [one.weight(one.by_rsa_id(rsa_id(i)), Role.GUARD) for i in range(N_GUARDS)]  # type: ignore[arg-type]
    assert weights[3] == 400 * 5848 * 10000
    lo = 0
    for i, w in enumerate(weights):
        for point in (lo, lo + w - 1):
            gm = GuardManager(FirstDraw(point))
            gm.update(one, T0)
            assert [s.rsa_id for s in gm.sampled] == [rsa_id(i)]
        lo += w


def test_small_networks_sample_every_guard() -> None:
    nd = make_netdir([Spec(GUARD) for _ in range(4)] + [Spec(BASIC)])
    gm = fresh(nd)
    assert sorted(s.rsa_id for s in gm.sampled) == [rsa_id(i) for i in range(4)]


def test_guards_need_the_guard_spec_flags() -> None:
    nd = make_netdir([Spec(GUARD), Spec(tuple(f for f in GUARD if f != "V2Dir")),
                      Spec(tuple(f for f in GUARD if f != "Stable")), Spec(BASIC)])
    assert [s.rsa_id for s in fresh(nd).sampled] == [rsa_id(0)]


# --- selecting and outcomes (§4.6-4.8) --------------------------------------------------


def test_primary_guard_used_first_and_confirmed_on_success(nd: NetDir) -> None:
    gm = fresh(nd)
    p0 = gm.primary[0]
    relay, token = gm.pick_guard(nd, T0)
    assert relay.rsa_id == p0 and token.usage is GuardUsage.ON_COMPLETION
    assert gm.report(token, True, T0 + 1) is GuardVerdict.USE
    assert gm.confirmed == [p0] and gm.reachable(p0) is Reachable.YES
    rec = gm.sampled[0]
    assert rec.confirmed_idx == 0 and T0 + 1 - 12 * DAY < (rec.confirmed_on or 0) <= T0 + 1
    with pytest.raises(LocalError):
        gm.report(token, True, T0 + 2)  # already reported


def test_failing_primaries_are_skipped_then_retried_on_schedule(nd: NetDir) -> None:
    gm = fresh(nd)
    prim = gm.primary
    for k in range(3):
        relay, token = gm.pick_guard(nd, T0)
        assert relay.rsa_id == prim[k] and token.usage is GuardUsage.ON_COMPLETION
        assert gm.report(token, False, T0) is GuardVerdict.FAILED
        assert gm.reachable(prim[k]) is Reachable.NO
    # all primaries down: a non-primary from the sample, usable only if no better guard
    relay, token = gm.pick_guard(nd, T0 + 1)
    assert relay.rsa_id == gm.sampled[3].rsa_id and token.usage is GuardUsage.IF_NO_BETTER
    gm.release(token)
    # primary retry schedule: 10 minutes in the first six hours
    relay, token = gm.pick_guard(nd, T0 + 599)
    assert relay.rsa_id not in prim
    gm.release(token)
    relay, token = gm.pick_guard(nd, T0 + 600)
    assert relay.rsa_id == prim[0] and gm.reachable(prim[1]) is Reachable.MAYBE


def test_retry_schedule_table() -> None:
    assert retry_delay(0, primary=True) == 600 and retry_delay(0, primary=False) == 3600
    assert retry_delay(6 * 3600, primary=True) == 600
    assert retry_delay(6 * 3600 + 1, primary=True) == 90 * 60
    assert retry_delay(4 * DAY + 1, primary=False) == 18 * 3600
    assert retry_delay(7 * DAY + 1, primary=True) == 9 * 3600
    assert retry_delay(30 * DAY, primary=False) == 36 * 3600


def test_non_primary_retry_is_hourly(nd: NetDir) -> None:
    gm = fresh(nd)
    for _ in range(3):
        _, t = gm.pick_guard(nd, T0)
        gm.report(t, False, T0)
    relay, t = gm.pick_guard(nd, T0)
    nonprimary = relay.rsa_id
    gm.report(t, False, T0)
    assert gm.reachable(nonprimary) is Reachable.NO
    gm.pick_guard(nd, T0 + 3599)
    assert gm.reachable(nonprimary) is Reachable.NO
    gm.pick_guard(nd, T0 + 3600)
    assert gm.reachable(nonprimary) is Reachable.MAYBE


def down_all_primaries(gm: GuardManager, nd: NetDir, now: float) -> None:
    """Fail circuits through primary guards until the manager offers another guard."""
    while True:
        relay, t = gm.pick_guard(nd, now)
        if t.usage is not GuardUsage.ON_COMPLETION:
            gm.release(t)
            break
        assert relay.rsa_id in gm.primary
        gm.report(t, False, now)
    assert all(gm.reachable(k) is Reachable.NO for k in gm.primary)


def three_confirmed(nd: NetDir) -> GuardManager:
    """A manager whose three primary guards are confirmed (in sample order)."""
    gm = fresh(nd)
    for k in range(3):
        _relay, t = gm.pick_guard(nd, T0)
        assert gm.report(t, True, T0) is GuardVerdict.USE
        gm.release(t)  # that circuit is closed again
        if k < 2:
            _relay2, t2 = gm.pick_guard(nd, T0)
            gm.report(t2, False, T0)  # down, so that the next pick uses the next primary
    assert gm.confirmed == gm.primary
    return gm


def test_nonprimary_success_right_after_internet_activity_is_usable(nd: NetDir) -> None:
    gm = three_confirmed(nd)
    down_all_primaries(gm, nd, T0 + 1)
    relay, t = gm.pick_guard(nd, T0 + 2)
    assert t.usage is GuardUsage.IF_NO_BETTER and relay.rsa_id not in gm.primary
    # success within INTERNET_LIKELY_DOWN_INTERVAL of the last one, all primaries down,
    # nothing better pending: complete at once (§4.9)
    assert gm.report(t, True, T0 + 3) is GuardVerdict.USE
    assert gm.confirmed[-1] == relay.rsa_id and relay.rsa_id not in gm.primary


def test_waiting_for_better_guard_after_the_net_was_down(nd: NetDir) -> None:
    gm = three_confirmed(nd)
    t1 = T0 + 3600
    down_all_primaries(gm, nd, t1)
    _relay, t = gm.pick_guard(nd, t1)
    # the last success was an hour ago (> 10 min): primaries become "maybe" and we wait
    assert gm.report(t, True, t1 + 1) is GuardVerdict.WAIT
    assert all(gm.reachable(k) is Reachable.MAYBE for k in gm.primary)
    assert gm.poll_waiting(t1 + 2) == ([], [])
    down_all_primaries(gm, nd, t1 + 3)
    ready, expired = gm.poll_waiting(t1 + 4)
    assert ready == [t] and expired == []


def test_waiting_circuits_expire(nd: NetDir) -> None:
    gm = three_confirmed(nd)
    t1 = T0 + 3600
    down_all_primaries(gm, nd, t1)
    _, t = gm.pick_guard(nd, t1)
    assert gm.report(t, True, t1) is GuardVerdict.WAIT
    assert gm.poll_waiting(t1 + 600) == ([], [])
    assert gm.poll_waiting(t1 + 601) == ([], [t])
    assert gm.pending_attempts() == {}


def test_higher_priority_pending_attempt_blocks() -> None:
    # (a long "internet likely down" interval keeps that rule out of the way)
    nd = network(params={"guard-internet-likely-down-interval": 10**6})
    gm = three_confirmed(nd)
    s3, s4 = gm.sampled[3].rsa_id, gm.sampled[4].rsa_id
    down_all_primaries(gm, nd, T0 + 1)
    # confirm s3 and s4 (non-primary, confirmed order 3 and 4)
    r, t = gm.pick_guard(nd, T0 + 2)
    assert r.rsa_id == s3 and gm.report(t, True, T0 + 2) is GuardVerdict.USE
    gm.release(t)
    r, t = gm.pick_guard(nd, T0 + 3)
    assert r.rsa_id == s3 and gm.report(t, False, T0 + 3) is GuardVerdict.FAILED
    r, t = gm.pick_guard(nd, T0 + 4)
    assert r.rsa_id == s4 and gm.report(t, True, T0 + 4) is GuardVerdict.USE
    gm.release(t)
    assert gm.confirmed[3:] == [s3, s4]
    # an hour later: s3 may be retried; the primaries are down again
    t1 = T0 + 3700
    down_all_primaries(gm, nd, t1)
    r3, t3 = gm.pick_guard(nd, t1)
    r4, t4 = gm.pick_guard(nd, t1 + 1)
    assert (r3.rsa_id, r4.rsa_id) == (s3, s4)
    assert t3.usage is t4.usage is GuardUsage.IF_NO_BETTER
    # s4 works first, but s3 (higher priority) is still pending: wait ...
    assert gm.report(t4, True, t1 + 2) is GuardVerdict.WAIT
    # ... for NONPRIMARY_GUARD_CONNECT_TIMEOUT (15 s) after s3's attempt started
    assert gm.poll_waiting(t1 + 14) == ([], [])
    assert gm.poll_waiting(t1 + 15) == ([t4], [])


def test_complete_circuit_through_a_better_guard_blocks() -> None:
    nd = network(params={"guard-internet-likely-down-interval": 10**6})
    gm = three_confirmed(nd)
    _r0, t0 = gm.pick_guard(nd, T0 + 1)  # a primary: complete, kept open
    assert gm.report(t0, True, T0 + 1) is GuardVerdict.USE
    down_all_primaries(gm, nd, T0 + 2)
    _r, t = gm.pick_guard(nd, T0 + 3)
    assert gm.report(t, True, T0 + 4) is GuardVerdict.WAIT  # t0's guard is better
    gm.release(t0)
    assert gm.poll_waiting(T0 + 5) == ([t], [])


def test_exhausted_sample_marks_everything_maybe() -> None:
    nd = make_netdir([Spec(GUARD) for _ in range(2)] + [Spec(BASIC)])
    gm = fresh(nd)
    for _ in range(2):
        _, t = gm.pick_guard(nd, T0)
        gm.report(t, False, T0)
    assert all(gm.reachable(s.rsa_id) is Reachable.NO for s in gm.sampled)
    relay, _ = gm.pick_guard(nd, T0 + 1)
    assert relay.rsa_id == gm.primary[0]
    assert gm.reachable(gm.primary[1]) is Reachable.MAYBE


def test_restriction_avoids_the_exits_family(nd: NetDir) -> None:
    gm = fresh(nd)
    p0 = nd.by_rsa_id(gm.primary[0])
    assert p0 is not None
    relay, t = gm.pick_guard(nd, T0, avoid=[p0])
    assert relay.rsa_id == gm.primary[1] and t.usage is GuardUsage.ON_COMPLETION


def test_directory_usage_spreads_over_three_primaries(nd: NetDir) -> None:
    seen = set()
    for seed in range(40):
        gm = fresh(nd, seed=1)
        gm._rng = random.Random(seed)  # same sample, different pick
        relay, t = gm.pick_guard(nd, T0, for_dir=True)
        seen.add(relay.rsa_id)
        assert t.usage is GuardUsage.ON_COMPLETION
    assert seen == set(fresh(nd, seed=1).primary)


def test_guards_without_microdescriptors_are_skipped() -> None:
    nd = network(missing=range(N_GUARDS))
    gm = fresh(nd)
    with pytest.raises(NoPathError):
        gm.pick_guard(nd, T0)
    assert gm.pending_attempts() == {}
    nd2 = network(missing=[index_of(gm.primary[0])])
    relay, _ = gm.pick_guard(nd2, T0)
    assert relay.rsa_id == gm.primary[1]


def test_release_clears_pending(nd: NetDir) -> None:
    gm = three_confirmed(nd)
    down_all_primaries(gm, nd, T0 + 1)
    r1, t1 = gm.pick_guard(nd, T0 + 2)
    gm.release(t1)
    r2, _ = gm.pick_guard(nd, T0 + 3)
    assert r2.rsa_id == r1.rsa_id  # not pending any more: first in sample order again


# --- consensus changes (§4.10) and expiry (§4.1) ----------------------------------------


def test_unlisted_guards_leave_filtered_and_expire() -> None:
    nd = network()
    gm = fresh(nd)
    victim = gm.primary[0]
    i = index_of(victim)
    nd2 = network(unlisted=[i], valid_after=T0 + 3600)
    gm.update(nd2, T0 + 3600)
    rec = next(s for s in gm.sampled if s.rsa_id == victim)
    assert not rec.listed and T0 + 3600 - 4 * DAY < (rec.unlisted_since or 0) <= T0 + 3600
    assert victim not in gm.primary and len(gm.primary) == 3
    # relisted: back, and it keeps its place in sample order
    gm.update(nd, T0 + 7200)
    rec = next(s for s in gm.sampled if s.rsa_id == victim)
    assert rec.listed and rec.unlisted_since is None
    # unlisted for 20 days (with a live consensus): removed
    gm.update(nd2, T0 + 3600)
    later = T0 + 21 * DAY
    gm.update(network(unlisted=[i], valid_after=later), later)
    assert victim not in [s.rsa_id for s in gm.sampled]


def test_no_removal_without_a_live_consensus() -> None:
    nd = network()
    gm = fresh(nd)
    later = T0 + 200 * DAY
    gm.update(nd, later)  # nd expired long ago: nothing is removed
    assert len(gm.sampled) == 20


def test_guard_lifetime_and_confirmed_min_lifetime() -> None:
    nd = network()
    gm = fresh(nd)
    relay, t = gm.pick_guard(nd, T0 + 100 * DAY)
    gm.report(t, True, T0 + 100 * DAY)
    keep = relay.rsa_id
    later = T0 + 125 * DAY  # every added_on is more than 120 days ago
    gm.update(network(valid_after=later), later)
    assert [s.rsa_id for s in gm.sampled if s.sample_idx < 20] == [keep]
    assert len(gm.sampled) == 20  # refilled from the network
    much_later = T0 + 100 * DAY + 61 * DAY
    gm.update(network(valid_after=much_later), much_later)
    assert gm.confirmed == []  # removed (it may be sampled afresh, unconfirmed)
    assert all(s.sample_idx >= 20 for s in gm.sampled)


# --- persistence ---------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    nd = network()
    store = SqliteGuardStore.in_data_dir(tmp_path)
    gm = fresh(nd, store=store)
    relay, t = gm.pick_guard(nd, T0)
    gm.report(t, True, T0)
    sampled, confirmed, primary = gm.sampled, gm.confirmed, gm.primary
    store.close()
    store2 = SqliteGuardStore(tmp_path / "guards.sqlite")
    gm2 = GuardManager(random.Random(99), store2)
    assert gm2.sampled == sampled and gm2.confirmed == confirmed == [relay.rsa_id]
    gm2.update(nd, T0 + 10)
    assert gm2.sampled == sampled and gm2.primary == primary
    relay2, t2 = gm2.pick_guard(nd, T0 + 10)
    assert relay2.rsa_id == relay.rsa_id and t2.usage is GuardUsage.ON_COMPLETION


class Exploding(Sequence[GuardRecord]):
    """A record list whose iteration dies half-way: a crash in the middle of a write."""

    def __init__(self, records: list[GuardRecord]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i: Any) -> Any:
        return self._records[i]

    def __iter__(self) -> Iterator[GuardRecord]:
        yield from self._records[: len(self._records) // 2]
        raise RuntimeError("power cut")


def test_a_failed_write_leaves_the_previous_state(tmp_path: Path) -> None:
    store = SqliteGuardStore(tmp_path / "g.sqlite")
    records = [GuardRecord(rsa_id(i), f"r{i}", i, T0) for i in range(6)]
    store.save(records)
    changed = [replace(r, listed=False, unlisted_since=T0) for r in records[:4]]
    with pytest.raises(RuntimeError):
        store.save(Exploding(changed))
    assert store.load() == records
    with pytest.raises(sqlite3.IntegrityError):  # a constraint failure mid-way: same
        store.save([records[0], replace(records[1], sample_idx=0)])
    assert SqliteGuardStore(tmp_path / "g.sqlite").load() == records


def test_store_refuses_an_unknown_schema(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    SqliteGuardStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(LocalError, match="schema 99"):
        SqliteGuardStore(path)


def test_store_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "guards.sqlite"
    path.write_bytes(b"not a database, whatever happened to it" * 100)
    with pytest.raises(LocalError, match=r"guards\.sqlite: unusable guard state"):
        SqliteGuardStore(path)
    assert path.read_bytes().startswith(b"not a database")  # left as it was


def test_every_change_is_written(tmp_path: Path) -> None:
    saves: list[list[GuardRecord]] = []

    class Recorder:
        def load(self) -> list[GuardRecord]:
            return []

        def save(self, records: Sequence[GuardRecord]) -> None:
            saves.append(list(records))

    nd = network()
    gm = GuardManager(random.Random(1), Recorder())
    gm.update(nd, T0)
    assert len(saves) == 1 and len(saves[0]) == 20
    gm.update(nd, T0 + 1)
    assert len(saves) == 1  # nothing changed, nothing written
    _, t = gm.pick_guard(nd, T0 + 2)
    gm.report(t, False, T0 + 2)
    assert len(saves) == 1  # reachability is transient
    _, t = gm.pick_guard(nd, T0 + 3)
    gm.report(t, True, T0 + 3)
    assert len(saves) == 2 and saves[-1] == gm.sampled



def test_a_store_that_cannot_be_written_is_a_typed_error_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "guards.sqlite"
    store = SqliteGuardStore(path)
    writable = store._db
    store._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    record = GuardRecord(rsa_id(1), "g1", 0, int(T0))
    with pytest.raises(LocalError, match=r"guards\.sqlite: cannot save the guard state"):
        store.save([record])
    store._db.close()
    store._db = writable  # the disk is writable again: the next save works
    store.save([record])
    assert store.load() == [record]
    store.close()


def test_guards_live_on_in_memory_when_the_store_fails(nd: NetDir) -> None:
    # C tor keeps running on its in-memory guard state when it cannot write the state
    # file; a failing store must not turn a built circuit's report into an error.
    failures: list[str] = []

    class Full:
        def load(self) -> list[GuardRecord]:
            return []

        def save(self, records: Sequence[GuardRecord]) -> None:
            raise LocalError("guards.sqlite: cannot save the guard state: disk full")

    gm = GuardManager(random.Random(1), Full(), on_store_error=lambda e: failures.append(str(e)))
    gm.update(nd, T0)
    _, token = gm.pick_guard(nd, T0 + 1)
    assert gm.report(token, True, T0 + 1) is GuardVerdict.USE
    assert gm.confirmed == [token.rsa_id]
    assert failures == ["guards.sqlite: cannot save the guard state: disk full"] * 2

# --- priorities and corner cases ----------------------------------------------------------


def test_priority_rules() -> None:
    """guard-spec §4.3: confirmed first (lower index first); then pending, earlier tried."""
    from gotor.guard import _Guard

    def g(idx: int | None, pending: bool = False, tried: float | None = None) -> _Guard:
        rec = GuardRecord(rsa_id(0), "x", 0, T0, confirmed_idx=idx)
        return _Guard(rec, pending=pending, last_tried=tried)

    gm = GuardManager(random.Random(1))
    hp = gm._higher_priority
    assert hp(g(0), g(1)) and not hp(g(1), g(0))
    assert hp(g(5), g(None, pending=True)) and not hp(g(None, pending=True), g(5))
    assert hp(g(None, True, 10), g(None)) and not hp(g(None), g(None, True, 10))
    assert hp(g(None, True, 10), g(None, True, 20)) and not hp(g(None, True, 20), g(None, True, 10))
    assert not hp(g(None), g(None))  # neither pending: equal


def test_waiting_circuits_complete_best_first() -> None:
    nd = network(params={"guard-internet-likely-down-interval": 10**6})
    gm = three_confirmed(nd)
    _, t0 = gm.pick_guard(nd, T0 + 1)
    assert gm.report(t0, True, T0 + 1) is GuardVerdict.USE  # kept open: blocks
    down_all_primaries(gm, nd, T0 + 2)
    r1, t1 = gm.pick_guard(nd, T0 + 3)
    r2, t2 = gm.pick_guard(nd, T0 + 3)
    assert (r1.rsa_id, r2.rsa_id) == (gm.sampled[3].rsa_id, gm.sampled[4].rsa_id)
    assert gm.report(t1, True, T0 + 4) is GuardVerdict.WAIT
    assert gm.report(t2, True, T0 + 4) is GuardVerdict.WAIT
    gm.release(t0)
    # t1's guard was confirmed first: it completes, and then blocks t2
    assert gm.poll_waiting(T0 + 5) == ([t1], [])
    assert gm.poll_waiting(T0 + 6) == ([], [])
    gm.release(t1)
    assert gm.poll_waiting(T0 + 7) == ([t2], [])


def test_report_after_the_guard_left_the_sample() -> None:
    nd = network()
    gm = fresh(nd)
    _, t_ok = gm.pick_guard(nd, T0)
    _, t_bad = gm.pick_guard(nd, T0)
    later = T0 + 200 * DAY
    gone = [index_of(t_ok.rsa_id), index_of(t_bad.rsa_id)]
    gm.update(network(valid_after=later, unlisted=gone), later)  # expired, not resampled
    assert not {t_ok.rsa_id, t_bad.rsa_id} & {s.rsa_id for s in gm.sampled}
    assert gm.report(t_ok, True, later) is GuardVerdict.USE
    assert gm.report(t_bad, False, later) is GuardVerdict.FAILED
    assert gm.confirmed == []
