"""When to fetch: the consensus refetch time, liveness, and retry backoff (dir-spec §5).

All pure functions of times (POSIX seconds) and an ``Rng``.

:func:`consensus_fetch_time` is dir-spec §5.1 as C tor computes it
(``update_consensus_networkstatus_fetch_time_impl``, client branch): with a
live consensus valid from VA, fresh until FU, valid until VU, and
``interval = FU - VA``, the next fetch happens at a uniformly random whole
second in ``[start, start + dl_interval)`` where ``start = FU + 3/4 interval``
and ``dl_interval = 7/8 (VU - start)`` (integer arithmetic).  The spec's
example — valid 1:00, fresh 2:00, expiring 4:00 — gives 2:45 .. 3:50.
Without a live consensus, the answer is "now".

:func:`liveness` classifies a consensus as live, reasonably live (usable
while a new one is fetched: up to 24 hours outside its window, like C tor),
or unusable.

:func:`next_retry_delay` is dir-spec §5.5's randomized exponential backoff
("decorrelated jitter"), as C tor's ``next_random_exponential_delay``;
:class:`Backoff` keeps its state between failures.
"""

from __future__ import annotations

import enum

from gotor.netdir import Lifetime
from gotor.runtime.api import Rng

__all__ = [
    "Backoff",
    "Liveness",
    "consensus_fetch_time",
    "liveness",
    "next_retry_delay",
]

_INT_MAX = 2**31 - 1


def consensus_fetch_time(lifetime: Lifetime, now: float, rng: Rng) -> float:
    """The time to fetch the next consensus (see the module docstring)."""
    if not lifetime.is_live(now):
        return float(now)
    va, fu, vu = lifetime.valid_after, lifetime.fresh_until, lifetime.valid_until
    interval = fu - va
    start = fu + (interval * 3) // 4
    dl_interval = ((vu - start) * 7) // 8
    # C tor: "catch low dl_interval in crazy-fast networks", "catch late start".
    dl_interval = max(dl_interval, 1)
    if start + dl_interval >= vu:
        start = vu - dl_interval - 1
    return float(start + rng.randrange(dl_interval))


class Liveness(enum.Enum):
    LIVE = "live"  # valid-after <= now <= valid-until
    STALE = "stale"  # reasonably live: usable, but fetch a new one now
    UNUSABLE = "unusable"


def liveness(lifetime: Lifetime, now: float) -> Liveness:
    if lifetime.is_live(now):
        return Liveness.LIVE
    if lifetime.is_reasonably_live(now):
        return Liveness.STALE
    return Liveness.UNUSABLE


def next_retry_delay(previous: int, rng: Rng, *, base: int = 0, cap: int = _INT_MAX) -> int:
    """dir-spec §5.5: ``min(cap, random_between(lower, upper))`` with
    ``lower = max(1, base)`` and ``upper = max(lower + 1, previous * 3)``
    (``random_between`` is half-open, as C tor's ``crypto_rand_int_range``)."""
    lower = max(1, base)
    upper = max(lower + 1, min(previous, _INT_MAX // 3) * 3)
    return min(cap, rng.randrange(lower, upper))


class Backoff:
    """Successive retry delays for one download; ``reset()`` after a success."""

    def __init__(self, rng: Rng, *, base: int = 0, cap: int = 3600) -> None:
        self._rng = rng
        self.base = base
        self.cap = cap
        self.delay = 0
        self.failures = 0

    def next(self) -> int:
        self.delay = next_retry_delay(self.delay, self._rng, base=self.base, cap=self.cap)
        self.failures += 1
        return self.delay

    def reset(self) -> None:
        self.delay = 0
        self.failures = 0
