"""Path selection (gotor.path, path-spec §2.2): weights per position, flags, policies,
family and subnet exclusion, determinism."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdir_helpers import BASIC, EXIT, GUARD, GUARD_EXIT, Spec, make_netdir, rsa_id

from gotor.errors import LocalError, NoPathError
from gotor.guard import GuardManager
from gotor.netdir import NetDir, Relay, same_family, same_subnet
from gotor.path import (
    choose_dir_cache,
    choose_exit,
    choose_exit_path,
    choose_guard,
    choose_internal_path,
    choose_middle,
    compatible,
    needs_stable,
    weighted_choice,
)


class PointRng(random.Random):
    """randrange(n) returns the preset point (and records n): exact interval checks."""

    def __init__(self, point: int) -> None:
        super().__init__(0)
        self.point = point
        self.totals: list[int] = []

    def randrange(self, start: int, stop: Any = None, step: int = 1) -> int:  # type: ignore[override]
        assert stop is None
        self.totals.append(start)
        return min(self.point, start - 1)


def assert_intervals(choose: Any, expected: Sequence[tuple[Relay, int]]) -> None:
    """choose(rng) picks relay i exactly for points in its weight interval."""
    total = sum(w for _, w in expected)
    bounds = [0, *accumulate(w for _, w in expected)]
    for (relay, w), lo in zip(expected, bounds, strict=False):
        if w == 0:
            continue
        for point in (lo, lo + w - 1):
            rng = PointRng(point)
            assert choose(rng) == relay
            assert rng.totals[0] == total


def test_weighted_choice_is_exact() -> None:
    items = ["a", "b", "c"]
    counts = {k: 0 for k in items}
    for point in range(6):
        counts[weighted_choice(items, [1, 2, 3], PointRng(point))] += 1
    assert counts == {"a": 1, "b": 2, "c": 3}
    assert weighted_choice(items, [0, 0, 0], PointRng(2)) == "c"  # all zero: uniform
    with pytest.raises(LocalError):
        weighted_choice([], [], PointRng(0))
    with pytest.raises(LocalError):
        weighted_choice(items, [1], PointRng(0))


NET = [
    Spec(GUARD, bw=500),                                     # 0
    Spec(GUARD, bw=300),                                     # 1
    Spec(BASIC, bw=800),                                     # 2
    Spec(EXIT, bw=400, policy="accept 80,443"),              # 3
    Spec(EXIT, bw=200, policy="accept 22"),                  # 4
    Spec(GUARD_EXIT, bw=700, policy="reject 25"),            # 5
    Spec((*EXIT, "BadExit"), bw=900, policy="accept 1-65535"),  # 6
    Spec(("Running", "Valid", "V2Dir"), bw=5000, policy="accept 80"),  # 7: not Fast
    Spec(("Fast", "Running", "Valid", "Exit"), bw=100, policy="accept 80"),  # 8: not Stable
]


@pytest.fixture(scope="module")
def nd() -> NetDir:
    return make_netdir(NET)


def r(nd: NetDir, i: int) -> Relay:
    relay = nd.by_rsa_id(rsa_id(i))
    assert relay is not None
    return relay


def test_exit_probabilities_follow_the_exit_weights(nd: NetDir) -> None:
    # Port 80: relays 3 (Wee), 5 (Wed), 8 (Wee, not V2Dir); 6 is a BadExit, 7 not Fast.
    expected = [
        (r(nd, 3), 400 * 10000 * 10000),
        (r(nd, 5), 700 * 10000 * 10000),
        (r(nd, 8), 100 * 10000 * 10000),
    ]
    assert_intervals(lambda rng: choose_exit(nd, rng, port=80), expected)
    # Stable exits only
    assert_intervals(lambda rng: choose_exit(nd, rng, port=80, stable=True), expected[:2])
    # port 22: 4 and 5
    assert_intervals(
        lambda rng: choose_exit(nd, rng, port=22),
        [(r(nd, 4), 200 * 10000 * 10000), (r(nd, 5), 700 * 10000 * 10000)],
    )
    # port 25: 5 rejects it, 6 is a BadExit, 7 is not Fast, the others do not list it
    with pytest.raises(NoPathError, match="port 25"):
        choose_exit(nd, PointRng(0), port=25)


def test_exit_without_port_needs_some_allowed_port(nd: NetDir) -> None:
    picks = {choose_exit(nd, PointRng(p)).nickname for p in range(0, 10**12, 10**10)}
    assert picks <= {"relay3", "relay4", "relay5", "relay8"}


def test_middle_and_guard_probabilities(nd: NetDir) -> None:
    middle = [
        (r(nd, 0), 500 * 4152 * 10000),
        (r(nd, 1), 300 * 4152 * 10000),
        (r(nd, 2), 800 * 10000 * 10000),
        (r(nd, 3), 0), (r(nd, 4), 0), (r(nd, 5), 0),  # Wme = Wmd = 0
        (r(nd, 6), 900 * 10000 * 10000),  # BadExit: weighted as a plain relay
        (r(nd, 8), 0),
    ]
    assert_intervals(lambda rng: choose_middle(nd, rng), middle)
    guards = [(r(nd, 0), 500 * 5848 * 10000), (r(nd, 1), 300 * 5848 * 10000), (r(nd, 5), 0)]
    assert_intervals(lambda rng: choose_guard(nd, rng), guards)


def test_dir_cache_uses_the_b_weights(nd: NetDir) -> None:
    caches = [
        (r(nd, 0), 500 * 4152), (r(nd, 1), 300 * 4152), (r(nd, 2), 800 * 10000),
        (r(nd, 3), 0), (r(nd, 4), 0), (r(nd, 5), 0),
        (r(nd, 6), 900 * 10000),  # a BadExit is weighted as a non-exit (Wbm)
        (r(nd, 7), 5000 * 10000),  # V2Dir without Fast is fine for a one-hop fetch
    ]
    assert_intervals(
        lambda rng: choose_dir_cache(nd, rng), [(rel, w * 10000) for rel, w in caches]
    )


def test_avoid_excludes_family_subnet_and_self(nd: NetDir) -> None:
    for rng_seed in range(30):
        rng = random.Random(rng_seed)
        m = choose_middle(nd, rng, avoid=[r(nd, 2)])
        assert m != r(nd, 2)


FAMILY_NET = [
    Spec(GUARD, bw=1000, address="10.1.0.1", family=(f"${rsa_id(3).hex()}",)),   # 0 ~ 3
    Spec(GUARD, bw=1000, address="10.2.0.1"),                                   # 1 same /16 as 4
    Spec(BASIC, bw=1000, address="10.3.0.1", family_ids=("ed25519:F",)),         # 2 ~ 5
    Spec(EXIT, bw=1000, address="10.4.0.1", policy="accept 80",
         family=(f"${rsa_id(0).hex()}",)),                                       # 3 ~ 0
    Spec(EXIT, bw=1000, address="10.2.9.9", policy="accept 80"),                 # 4
    Spec(BASIC, bw=1000, address="10.5.0.1", family_ids=("ed25519:F",)),         # 5 ~ 2
    Spec(BASIC, bw=1000, address="10.6.0.1"),                                    # 6
    Spec(GUARD, bw=1000, address="10.7.0.1"),                                    # 7
]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_paths_never_share_family_or_subnet(seed: int) -> None:
    nd = family_nd()
    path = choose_exit_path(nd, random.Random(seed), port=80)
    hops = path.hops
    assert len(hops) == 3 and len({h.rsa_id for h in hops}) == 3
    assert "Guard" in hops[0].flags and hops[-1].allows_port(80)
    for i, a in enumerate(hops):
        for b in hops[i + 1:]:
            assert not same_family(a, b) and not same_subnet(a, b)


_FAMILY_ND: list[NetDir] = []


def family_nd() -> NetDir:
    if not _FAMILY_ND:
        _FAMILY_ND.append(make_netdir(FAMILY_NET))
    return _FAMILY_ND[0]


def test_compatible_spells_out_the_rules() -> None:
    nd = family_nd()
    g0, g1, m2, e3, e4, m5 = (r(nd, i) for i in range(6))
    assert not compatible(g0, [e3])  # mutual family
    assert not compatible(g1, [e4])  # same /16
    assert not compatible(m2, [m5])  # shared family id
    assert not compatible(g0, [g0])  # never twice
    assert compatible(g1, [e3, m2])


def test_path_is_deterministic_given_the_rng(nd: NetDir) -> None:
    a = choose_exit_path(nd, random.Random(7), port=443)
    b = choose_exit_path(nd, random.Random(7), port=443)
    assert a == b and a.guard_token is None
    assert a.last.allows_port(443) and a.first.has_flag("Guard")


def test_exit_is_chosen_first_then_guard_then_middle(nd: NetDir) -> None:
    """path-spec §2.2: "we first pick hop 3, then hop 1, then hop 2"."""
    calls: list[int] = []

    class Recorder(random.Random):
        def randrange(self, start: int, stop: Any = None, step: int = 1) -> int:  # type: ignore[override]
            calls.append(start)
            return 0

    path = choose_exit_path(nd, Recorder(0), port=22)
    exit_total = (200 + 700) * 10000 * 10000
    assert calls[0] == exit_total and path.last == r(nd, 4)
    assert calls[1] == (500 + 300) * 5848 * 10000 and path.first == r(nd, 0)
    assert path.hops[1] == r(nd, 1)  # point 0: the first middle candidate


def test_stable_paths_for_long_lived_ports(nd: NetDir) -> None:
    assert needs_stable(22) and not needs_stable(80) and not needs_stable(None)
    for seed in range(20):
        path = choose_exit_path(nd, random.Random(seed), port=22)
        assert all("Stable" in h.flags for h in path.hops)


def test_internal_and_short_paths(nd: NetDir) -> None:
    path = choose_internal_path(nd, random.Random(3), hops=4)
    assert len(path.hops) == 4 and len({h.rsa_id for h in path.hops}) == 4
    one = choose_exit_path(nd, random.Random(3), port=80, hops=1)
    assert len(one.hops) == 1 and one.first.allows_port(80)
    with pytest.raises(LocalError):
        choose_exit_path(nd, random.Random(3), port=80, hops=0)
    with pytest.raises(LocalError):
        choose_internal_path(nd, random.Random(3), hops=1)


def test_no_path_errors_name_the_position() -> None:
    nd = make_netdir([Spec(BASIC), Spec(EXIT, policy="accept 80")])
    with pytest.raises(NoPathError, match="guard"):
        choose_exit_path(nd, random.Random(1), port=80)
    nd2 = make_netdir([Spec(GUARD), Spec(EXIT, policy="accept 80")])
    with pytest.raises(NoPathError, match="middle"):
        choose_exit_path(nd2, random.Random(1), port=80)


def test_guard_manager_supplies_the_first_hop() -> None:
    specs = [Spec(GUARD, bw=1000) for _ in range(4)] + [
        Spec(BASIC, bw=1000), Spec(EXIT, bw=1000, policy="accept 80")
    ]
    nd = make_netdir(specs)
    gm = GuardManager(random.Random(1))
    path = choose_exit_path(nd, random.Random(2), port=80, guards=gm, now=nd.lifetime.valid_after)
    assert path.guard_token is not None and path.first.rsa_id == path.guard_token.rsa_id
    assert path.first.rsa_id in gm.primary
    with pytest.raises(LocalError):
        choose_exit_path(nd, random.Random(2), port=80, guards=gm)


def test_guard_token_released_when_no_middle_exists() -> None:
    nd = make_netdir([Spec(GUARD, bw=1000), Spec(EXIT, bw=1000, policy="accept 80")])
    gm = GuardManager(random.Random(1))
    with pytest.raises(NoPathError, match="middle"):
        choose_exit_path(nd, random.Random(2), port=80, guards=gm, now=nd.lifetime.valid_after)
    assert gm.pending_attempts() == {}
