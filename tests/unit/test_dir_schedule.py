"""Consensus refetch time, liveness and retry backoff (gotor.dir.schedule, dir-spec §5)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.dir.schedule import Backoff, Liveness, consensus_fetch_time, liveness, next_retry_delay
from gotor.netdir import REASONABLY_LIVE_TIME, Lifetime

H = 3600


class Extreme(random.Random):
    """randrange returns its lowest (``low``) or highest possible value."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high
        self.calls: list[tuple[int, Any]] = []

    def randrange(self, start: int, stop: Any = None, step: int = 1) -> int:  # type: ignore[override]
        self.calls.append((start, stop))
        lo, hi = (0, start) if stop is None else (start, stop)
        return hi - 1 if self.high else lo


def test_spec_example() -> None:
    """dir-spec §5.1: valid 1:00, fresh 2:00, expires 4:00 -> between 2:45 and 3:50."""
    lt = Lifetime(1 * H, 2 * H, 4 * H)
    now = 1 * H + 600
    lo = consensus_fetch_time(lt, now, Extreme(False))
    hi = consensus_fetch_time(lt, now, Extreme(True))
    assert lo == 2 * H + 45 * 60
    # dl_interval = 7/8 of 75 minutes = 3937 s (integer); the last possible second
    assert hi == 2 * H + 45 * 60 + 3936
    assert hi < 3 * H + 51 * 60


@given(va=st.integers(0, 10**9), fresh=st.integers(2, 10**5), valid=st.integers(1, 10**5),
       seed=st.integers(0, 2**32))
def test_fetch_time_is_after_fresh_and_before_expiry(va: int, fresh: int, valid: int,
                                                     seed: int) -> None:
    lt = Lifetime(va, va + fresh, va + fresh + valid)
    t = consensus_fetch_time(lt, va, random.Random(seed))
    assert t < lt.valid_until
    if valid >= 2 * fresh:  # the ordinary case: never while the consensus is still fresh
        assert t > lt.fresh_until


def test_crazy_fast_network_still_fetches_before_expiry() -> None:
    # the shadow test network: 20 s fresh, 40 s valid
    lt = Lifetime(140, 160, 180)
    times = {consensus_fetch_time(lt, 150, random.Random(s)) for s in range(50)}
    assert times <= {175, 176, 177, 178} and len(times) > 1
    lt2 = Lifetime(0, 100, 110)  # start (175) is past valid-until: pulled back
    assert consensus_fetch_time(lt2, 50, Extreme(True)) == 108


def test_without_a_live_consensus_fetch_now() -> None:
    lt = Lifetime(1000, 2000, 3000)
    assert consensus_fetch_time(lt, 3001, random.Random(1)) == 3001
    assert consensus_fetch_time(lt, 999, random.Random(1)) == 999


def test_liveness() -> None:
    lt = Lifetime(1000, 2000, 3000)
    assert liveness(lt, 1000) is Liveness.LIVE and liveness(lt, 3000) is Liveness.LIVE
    assert liveness(lt, 3001) is Liveness.STALE
    assert liveness(lt, 3000 + REASONABLY_LIVE_TIME) is Liveness.STALE
    assert liveness(lt, 3001 + REASONABLY_LIVE_TIME) is Liveness.UNUSABLE
    assert liveness(lt, 999) is Liveness.STALE
    assert liveness(lt, 999 - REASONABLY_LIVE_TIME) is Liveness.UNUSABLE


def test_retry_delay_bounds() -> None:
    # lower = max(1, base); upper = max(lower + 1, 3 * previous); half-open
    assert next_retry_delay(0, Extreme(False)) == 1 and next_retry_delay(0, Extreme(True)) == 1
    assert next_retry_delay(10, Extreme(True)) == 29
    assert next_retry_delay(10, Extreme(False), base=6) == 6
    assert next_retry_delay(10, Extreme(True), base=60) == 60
    assert next_retry_delay(1000, Extreme(True), cap=100) == 100
    assert next_retry_delay(2**40, Extreme(True)) <= 2**31 - 1


def test_backoff_grows_and_resets() -> None:
    b = Backoff(random.Random(3), cap=3600)
    delays = [b.next() for _ in range(12)]
    assert delays[0] == 1 and b.failures == 12
    assert all(1 <= d <= 3600 for d in delays)
    # the largest draws grow geometrically (x3 - 1) up to the cap
    high = Backoff(Extreme(True), cap=3600)
    assert [high.next() for _ in range(9)] == [1, 2, 5, 14, 41, 122, 365, 1094, 3281]
    assert high.next() == 3600
    for prev, d in itertools.pairwise(delays):
        assert d < max(2, 3 * prev)
    b.reset()
    assert b.delay == 0 and b.failures == 0 and b.next() == 1


@pytest.mark.parametrize("base", [0, 1, 6])
def test_first_delay_is_the_base(base: int) -> None:
    assert Backoff(random.Random(1), base=base).next() == max(1, base)
