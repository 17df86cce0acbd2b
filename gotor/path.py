"""Path selection: which relays a circuit goes through (path-spec §2.2, §2.2.1).

Pure functions of a :class:`~gotor.netdir.NetDir` and an ``Rng``: the same
directory and the same random stream give the same path, because candidates
are always taken in the NetDir's order (sorted by RSA identity) and the
weighted choice draws one integer from the rng.

Rules (path-spec §2.2; dir-spec §5.4.1):

* every hop is Running and Valid and has a microdescriptor (it is a
  :class:`~gotor.netdir.Relay`); every hop is Fast (all our circuits are
  "fast" circuits); every hop is Stable when the caller asks for a stable
  circuit (long-lived ports, :data:`LONG_LIVED_PORTS`);
* no relay twice, no two relays of one family
  (:func:`~gotor.netdir.same_family`), no two in one IPv4 /16 (or IPv6 /32,
  as C tor) — :func:`compatible`;
* the exit is chosen first, then the guard, then the middle hops
  (path-spec §2.2), each weighted by bandwidth x the consensus weight for its
  position (:class:`~gotor.netdir.Role`);
* the exit is not a BadExit and its policy summary allows the target port
  (dir-spec §3.3 ``p``; with no port — a resolve or an internal exit — it
  allows some port).  As in C tor, the Exit *flag* is not required: it only
  changes the weights;
* the first hop comes from the guard manager (guard-spec) when one is
  given; otherwise (tests, tools) it is a bandwidth-weighted Guard;
* directory fetches use one hop to a V2Dir cache weighted for BEGIN_DIR.

Failures raise :class:`~gotor.errors.NoPathError` naming the position.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

from gotor.errors import LocalError, NoPathError
from gotor.netdir import NetDir, Relay, Role, same_family, same_subnet
from gotor.runtime.api import Rng

if TYPE_CHECKING:
    from gotor.guard import GuardManager, GuardToken

__all__ = [
    "LONG_LIVED_PORTS",
    "Path",
    "choose_dir_cache",
    "choose_exit",
    "choose_exit_path",
    "choose_guard",
    "choose_internal_path",
    "choose_middle",
    "compatible",
    "needs_stable",
    "weighted_choice",
]

T = TypeVar("T")

#: path-spec §2.2 (C tor's LongLivedPorts default): connections that stay open long
#: need Stable relays.
LONG_LIVED_PORTS = frozenset({21, 22, 706, 1863, 5050, 5190, 5222, 5223, 6523, 6667, 6697, 8300})

Predicate = Callable[[Relay], bool]


def needs_stable(port: int | None) -> bool:
    return port in LONG_LIVED_PORTS


@dataclass(frozen=True)
class Path:
    """The chosen hops, first to last, and the guard manager's token for the first."""

    hops: tuple[Relay, ...]
    guard_token: GuardToken | None = None

    @property
    def first(self) -> Relay:
        return self.hops[0]

    @property
    def last(self) -> Relay:
        return self.hops[-1]


def weighted_choice(items: Sequence[T], weights: Sequence[int], rng: Rng) -> T:
    """One item with probability weight/total, using one integer draw.

    If every weight is zero, the choice is uniform (C tor's
    ``choose_array_element_by_weight`` does the same).
    """
    if not items or len(items) != len(weights):
        raise LocalError("weighted_choice needs as many weights as items, at least one")
    if min(weights) < 0:
        raise LocalError("negative weight in weighted_choice")
    cumulative = list(accumulate(weights))
    if cumulative[-1] <= 0:
        return items[rng.randrange(len(items))]
    # the first item whose cumulative weight exceeds the point
    return items[bisect_right(cumulative, rng.randrange(cumulative[-1]))]


def compatible(candidate: Relay, chosen: Sequence[Relay]) -> bool:
    """May ``candidate`` join a path that has ``chosen`` (path-spec §2.2)?"""
    return not any(same_family(candidate, c) or same_subnet(candidate, c) for c in chosen)


def _usable(relay: Relay, stable: bool) -> bool:
    need = ("Running", "Valid", "Fast", "Stable") if stable else ("Running", "Valid", "Fast")
    return all(f in relay.flags for f in need)


def _choose(
    netdir: NetDir,
    rng: Rng,
    role: Role,
    key: Hashable,
    predicate: Predicate,
    avoid: Sequence[Relay],
    what: str,
) -> Relay:
    """A weighted choice among the relays that satisfy ``predicate`` and conflict with
    none of ``avoid``.  The candidates and weights for ``key`` are computed once per
    NetDir; the exclusions come from :meth:`NetDir.conflicts` (same result as
    :func:`compatible`, without comparing every relay with every chosen one)."""

    def pool() -> tuple[list[Relay], list[int]]:
        relays = [r for r in netdir.relays if predicate(r)]
        return relays, [netdir.weight(r, role) for r in relays]

    relays, weights = netdir.memo(("path", role, key), pool)
    if avoid:
        banned = frozenset().union(*(netdir.conflicts(a) for a in avoid))
        keep = [i for i, r in enumerate(relays) if r.rsa_id not in banned]
        relays, weights = [relays[i] for i in keep], [weights[i] for i in keep]
    if not relays:
        raise NoPathError(f"no relay can be the {what}")
    return weighted_choice(relays, weights, rng)


def _exit_predicate(port: int | None, stable: bool) -> Predicate:
    def ok(r: Relay) -> bool:
        if not _usable(r, stable) or "BadExit" in r.flags:
            return False
        return r.allows_some_exit() if port is None else r.allows_port(port)

    return ok


def choose_exit(
    netdir: NetDir,
    rng: Rng,
    *,
    port: int | None = None,
    stable: bool = False,
    avoid: Sequence[Relay] = (),
) -> Relay:
    """An exit whose policy summary allows ``port`` (any port if None)."""
    what = f"exit to port {port}" if port is not None else "exit"
    key = ("exit", port, stable)
    return _choose(netdir, rng, Role.EXIT, key, _exit_predicate(port, stable), avoid, what)


def choose_middle(
    netdir: NetDir, rng: Rng, *, avoid: Sequence[Relay] = (), stable: bool = False
) -> Relay:
    return _choose(netdir, rng, Role.MIDDLE, ("middle", stable), lambda r: _usable(r, stable),
                   avoid, "middle hop")


def choose_guard(
    netdir: NetDir, rng: Rng, *, avoid: Sequence[Relay] = (), stable: bool = False
) -> Relay:
    """A bandwidth-weighted Guard-flagged first hop, without guard state (tests, tools)."""

    def ok(r: Relay) -> bool:
        return "Guard" in r.flags and _usable(r, stable)

    return _choose(netdir, rng, Role.GUARD, ("guard", stable), ok, avoid, "guard")


def choose_dir_cache(netdir: NetDir, rng: Rng, *, avoid: Sequence[Relay] = ()) -> Relay:
    """A directory cache for a one-hop BEGIN_DIR fetch (weighted with the Wb* weights)."""

    def ok(r: Relay) -> bool:
        return {"Running", "Valid", "V2Dir"} <= r.flags

    return _choose(netdir, rng, Role.DIR, "dir", ok, avoid, "directory cache")


def _first_hop(
    netdir: NetDir,
    rng: Rng,
    avoid: Sequence[Relay],
    stable: bool,
    guards: GuardManager | None,
    now: float | None,
) -> tuple[Relay, GuardToken | None]:
    if guards is None:
        return choose_guard(netdir, rng, avoid=avoid, stable=stable), None
    if now is None:
        raise LocalError("choosing a guard through the guard manager needs `now`")
    return guards.pick_guard(netdir, now, avoid=avoid)


def choose_exit_path(
    netdir: NetDir,
    rng: Rng,
    *,
    port: int | None,
    stable: bool | None = None,
    guards: GuardManager | None = None,
    now: float | None = None,
    hops: int = 3,
    avoid: Sequence[Relay] = (),
) -> Path:
    """A path ending at an exit for ``port``: exit, then guard, then middles.

    ``stable`` defaults to :func:`needs_stable` of the port.  When the guard
    manager is given, the caller reports the circuit's fate with the
    returned token (guard-spec §4.7-4.8).  No hop conflicts with a relay in
    ``avoid`` (relays that just failed us: the retry takes a fresh path).
    """
    if hops < 1:
        raise LocalError("a path has at least one hop")
    stable = needs_stable(port) if stable is None else stable
    exit_ = choose_exit(netdir, rng, port=port, stable=stable, avoid=avoid)
    if hops == 1:
        return Path((exit_,))
    return _fill(netdir, rng, exit_, stable, guards, now, hops, avoid)


def choose_internal_path(
    netdir: NetDir,
    rng: Rng,
    *,
    stable: bool = False,
    guards: GuardManager | None = None,
    now: float | None = None,
    hops: int = 3,
) -> Path:
    """An internal path (path-spec §1.1): its last hop is chosen like a middle hop."""
    if hops < 2:
        raise LocalError("an internal path has at least two hops")
    last = choose_middle(netdir, rng, stable=stable)
    return _fill(netdir, rng, last, stable, guards, now, hops)


def _fill(
    netdir: NetDir,
    rng: Rng,
    last: Relay,
    stable: bool,
    guards: GuardManager | None,
    now: float | None,
    hops: int,
    avoid: Sequence[Relay] = (),
) -> Path:
    first, token = _first_hop(netdir, rng, [last, *avoid], stable, guards, now)
    chosen = [first, last]
    middles: list[Relay] = []
    try:
        for _ in range(hops - 2):
            middle = choose_middle(netdir, rng, avoid=[*chosen, *avoid], stable=stable)
            middles.append(middle)
            chosen.append(middle)
    except NoPathError:
        if guards is not None and token is not None:
            guards.release(token)  # no circuit will be built: not the guard's fault
        raise
    return Path((first, *middles, last), token)
