"""NetDir (gotor.netdir): relays joined from consensus + microdescriptors, parameters,
bandwidth weights, families and subnets, "enough directory info" (path-spec §2.1.0)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdir_helpers import BASIC, EXIT, GUARD, GUARD_EXIT, WEIGHTS, Spec, entry, make_netdir, rsa_id
from netdoc_helpers import SHADOW_NOW, doc

from gotor.errors import LocalError
from gotor.netdir import (
    DEFAULT_BANDWIDTH,
    REASONABLY_LIVE_TIME,
    BandwidthWeights,
    Lifetime,
    NetDir,
    NetParams,
    Relay,
    Role,
    same_family,
    same_subnet,
)
from gotor.netdoc.authcert import parse_authcerts
from gotor.netdoc.consensus import Flavor, parse_consensus
from gotor.netdoc.microdesc import parse_microdescs
from gotor.path import compatible

SHADOW = "testnet-arti-shadow/"


def shadow_netdir() -> NetDir:
    certs = [c.verify(now=SHADOW_NOW) for c in parse_authcerts(doc(SHADOW + "cached-certs"))]
    consensus = parse_consensus(doc(SHADOW + "cached-microdesc-consensus")).verify(
        certs, [c.fingerprint for c in certs], now=SHADOW_NOW
    )
    return NetDir(consensus, parse_microdescs(doc(SHADOW + "cached-microdescs.new")))


# --- real documents ----------------------------------------------------------------


def test_shadow_network_joins_every_relay() -> None:
    nd = shadow_netdir()
    assert len(nd.relays) == 7 and nd.missing_microdescs == ()
    assert [r.rsa_id for r in nd.relays] == sorted(r.rsa_id for r in nd.relays)
    first = nd.relays[0]
    assert first.nickname == "test002a" and first.ipv4 == ("127.0.0.1", 5102)
    assert first.weight == 208 and first.dir_port == 7102
    assert nd.by_rsa_id(first.rsa_id) is first
    assert first.ed_id is not None and nd.by_ed_id(first.ed_id) is first
    exits = [r.nickname for r in nd.relays if r.allows_some_exit()]
    assert len(exits) == 2  # two microdescriptors say "p accept 1-65535"
    # Every relay is Guard+Exit+V2Dir: guard weight = bw x Wgd x Wdb (3333 x 10000).
    assert nd.weight(first, Role.GUARD) == 208 * 3333 * 10000
    assert nd.weight(first, Role.MIDDLE) == 208 * 3333 * 10000
    assert nd.weight(first, Role.EXIT) == 208 * 3333 * 10000
    assert nd.weight(first, Role.DIR) == 208 * 3333 * 10000
    assert nd.frac_paths() == 1.0 and nd.has_enough_paths() and nd.has_exit_paths()
    # The shadow consensus says nothing about these: defaults.
    assert nd.params == NetParams()


def test_missing_microdescs_and_with_microdescs() -> None:
    nd = shadow_netdir()
    mds = parse_microdescs(doc(SHADOW + "cached-microdescs.new"))
    partial = NetDir(nd.consensus, mds[:3])
    assert len(partial.relays) == 3 and len(partial.missing_microdescs) == 4
    assert set(partial.missing_microdescs) == {m.digest for m in mds[3:]}
    whole = partial.with_microdescs(mds[3:])
    assert [r.rsa_id for r in whole.relays] == [r.rsa_id for r in nd.relays]
    assert whole.missing_microdescs == ()
    assert len(whole.microdescs) == 7
    assert partial.by_rsa_id(b"\0" * 20) is None


def test_netdir_refuses_an_ns_consensus() -> None:
    c = replace(shadow_netdir().consensus, flavor=Flavor.NS)
    with pytest.raises(LocalError):
        NetDir(c, [])


# --- relays --------------------------------------------------------------------------


def test_relay_fields() -> None:
    rs, md = entry(3, Spec(flags=GUARD, bw=None, ipv6="2001:db8::7", policy="accept 80,443"))
    r = Relay.from_entry(rs, md)
    assert r.rsa_id == rsa_id(3) and r.ed_id == md.ed25519_id and r.ntor_key == md.ntor_onion_key
    assert r.weight == DEFAULT_BANDWIDTH  # no w line
    assert r.ipv6 == ("2001:db8::7", 9001)
    assert r.allows_port(443) and not r.allows_port(22) and not r.allows_port(443, ipv6=True)
    assert r.supports_ntor_v3 and r.md_digest == md.digest and r.has_flag("Guard")
    no_ed = Relay.from_entry(replace(rs, flags=rs.flags | {"NoEdConsensus"}), md)
    assert no_ed.ed_id is None  # dir-spec §3.3: ignore the id with NoEdConsensus
    old = Relay.from_entry(replace(rs, protocols=None), md)
    assert old.protocols is None and not old.supports_ntor_v3


def relays(*specs: Spec) -> list[Relay]:
    return [Relay.from_entry(*entry(i, s)) for i, s in enumerate(specs)]


def test_legacy_family_needs_both_directions() -> None:
    a_id, b_id = rsa_id(0).hex().upper(), rsa_id(1).hex()
    a, b = relays(Spec(family=(f"${b_id}",)), Spec(family=(f"${a_id}=relay0",)))
    assert same_family(a, b) and same_family(b, a)
    a1, b1 = relays(Spec(family=(f"${b_id}",)), Spec())
    assert not same_family(a1, b1) and not same_family(b1, a1)
    # nicknames, case-insensitively (C tor), and $HEX~nick
    a2, b2 = relays(Spec(family=("RELAY1",)), Spec(family=(f"${a_id}~x",)))
    assert same_family(a2, b2)
    # malformed $ entries are ignored
    a3, b3 = relays(Spec(family=("$XYZ", f"${b_id}")), Spec(family=(f"${a_id[:39]}",)))
    assert not same_family(a3, b3)
    assert same_family(a, a)


def test_family_ids_share_an_entry() -> None:
    a, b, c = relays(
        Spec(family_ids=("ed25519:AAAA", "ed25519:BBBB")),
        Spec(family_ids=("ed25519:BBBB",)),
        Spec(family_ids=()),
    )
    assert same_family(a, b) and not same_family(a, c) and not same_family(b, c)


def test_subnets() -> None:
    a, b, c, d = relays(
        Spec(address="192.168.1.1", ipv6="2001:db8:1::1"),
        Spec(address="192.168.200.9"),
        Spec(address="192.169.1.1", ipv6="2001:db8:ffff::2"),
        Spec(address="10.0.0.1", ipv6="2001:db9::1"),
    )
    assert same_subnet(a, b) and not same_subnet(a, d)
    assert same_subnet(a, c)  # different /16, same IPv6 /32
    assert not same_subnet(c, d)


# --- parameters and weights ---------------------------------------------------------


def test_params_defaults_and_clamps() -> None:
    nd = make_netdir(
        [Spec()],
        params={
            "min_paths_for_circs_pct": 99,
            "circwindow": 5,
            "guard-lifetime-days": 2,
            "guard-n-primary-guards": 0,
            "bwweightscale": 100,
        },
    )
    p = nd.params
    assert p.min_paths_for_circs_pct == 95 and nd.circ_params().circwindow == 100
    assert p.guard_lifetime == 2 * 86400 and p.guard_n_primary_guards == 1
    assert p.bwweightscale == 100
    assert p.guard_remove_unlisted_after == 20 * 86400 and p.guard_max_sample_size == 60
    assert nd.param("cc_alg", 2, 0, 2) == 2


def test_weights_by_role_and_class() -> None:
    weights = dict(WEIGHTS, Wgb=5000, Wmb=7000)
    nd = make_netdir([Spec(GUARD), Spec(BASIC), Spec(EXIT), Spec(GUARD_EXIT)], weights=weights)
    g, m, e, d = nd.relays
    bw = 1000
    assert nd.weight(g, Role.GUARD) == bw * 5848 * 5000
    assert nd.weight(m, Role.GUARD) == bw * 5848 * 7000
    assert nd.weight(e, Role.GUARD) == 0  # exits are never weighted as guards
    assert nd.weight(d, Role.GUARD) == 0  # Wgd=0
    assert nd.weight(g, Role.MIDDLE) == bw * 4152 * 5000
    assert nd.weight(e, Role.MIDDLE) == 0 and nd.weight(m, Role.MIDDLE) == bw * 10000 * 7000
    assert nd.weight(d, Role.EXIT) == bw * 10000 * 10000
    # directory role: Wb* and no per-cache factor
    assert nd.weight(g, Role.DIR) == bw * 4152 * 10000 and nd.weight(e, Role.DIR) == 0
    # a non-V2Dir relay gets the scale instead of the cache factor
    nocache = replace(g, flags=g.flags - {"V2Dir"})
    assert nd.weight(nocache, Role.GUARD) == bw * 5848 * 10000


def test_bad_exit_is_weighted_as_a_non_exit() -> None:
    nd = make_netdir([Spec((*EXIT, "BadExit"))])
    assert nd.weight(nd.relays[0], Role.MIDDLE) == 1000 * 10000 * 10000  # Wmm, not Wme=0


def test_missing_or_negative_weights_are_naive_per_role() -> None:
    nd = make_netdir([Spec(GUARD), Spec(EXIT)], weights={"Wgg": 7000, "Wgm": 7000, "Wgd": 0})
    w = nd.weights
    # Guard role lacks W?b: naive like every other role.
    assert w.naive == frozenset(Role)
    assert nd.weight(nd.relays[1], Role.GUARD) == 1000 * 10000 * 10000
    nd2 = make_netdir([Spec(GUARD)], weights=dict(WEIGHTS, Wmg=-5))
    assert nd2.weights.naive == {Role.MIDDLE}
    nd3 = make_netdir([Spec(GUARD)], weights=None)
    assert nd3.weights.naive == frozenset(Role)


def test_weights_above_the_scale_are_clamped() -> None:
    bw = BandwidthWeights.from_consensus(
        make_netdir([Spec()], weights=dict(WEIGHTS, Wmm=20000)).consensus, 10000
    )
    assert bw.weight(frozenset({"V2Dir"}), 10, Role.MIDDLE) == 10 * 10000 * 10000


# --- enough directory information ----------------------------------------------------


def test_frac_paths_weighs_each_position() -> None:
    specs = [Spec(GUARD, bw=300), Spec(GUARD, bw=100), Spec(BASIC, bw=600), Spec(EXIT, bw=400),
             Spec(EXIT, bw=100, policy="accept 80")]
    for s in range(3, 5):
        specs[s] = replace(specs[s], policy="accept 80")
    full = make_netdir(specs)
    assert full.frac_paths() == 1.0
    nd = make_netdir(specs, missing=[0, 3])
    # guards: 100 of 400 (equal Wgg); exits: 100 of 500; middle: Wmg=4152 for guards,
    # Wmm=10000 for plain relays, Wme=0 for exits
    f_guard = 100 / 400
    f_mid = (100 * 4152 + 600 * 10000) / (400 * 4152 + 600 * 10000)
    f_exit = 100 / 500
    assert nd.frac_paths() == pytest.approx(f_guard * f_mid * f_exit)
    assert not nd.has_enough_paths()
    # Microdescriptors counted as had give what the NetDir with them gives.
    by_digest = {md.digest: md for md in full.microdescs}
    assert nd.frac_paths(by_digest) == 1.0
    for digest in nd.missing_microdescs:  # each missing one alone
        one = {md.digest: md for md in full.microdescs if md.digest == digest}
        assert len(one) == 1
        assert nd.frac_paths(one) == nd.with_microdescs(one.values()).frac_paths() < 1.0
    assert nd.frac_paths({}) == nd.frac_paths()


def test_frac_paths_counts_exits_allowed_by_more_microdescriptors() -> None:
    # Without the only exit's microdescriptor, f_exit := f_mid (< 1: a plain relay's is
    # missing too); counting the exit's as had makes f_exit 1, as the fuller NetDir says.
    specs = [Spec(GUARD), Spec(BASIC), Spec(BASIC), Spec(EXIT, policy="accept 80")]
    full, nd = make_netdir(specs), make_netdir(specs, missing=[2, 3])
    (exit_relay,) = (r for r in full.relays if "Exit" in r.flags)
    exit_md = {md.digest: md for md in full.microdescs if md.digest == exit_relay.md_digest}
    with_exit = nd.with_microdescs(exit_md.values())
    assert not nd.has_exit_paths() and with_exit.has_exit_paths()
    f_mid = (4152 + 10000) / (4152 + 20000)
    assert nd.frac_paths() == pytest.approx(f_mid * f_mid)
    assert nd.frac_paths(exit_md) == with_exit.frac_paths() == pytest.approx(f_mid)


def test_enough_paths_threshold_is_the_consensus_parameter() -> None:
    specs = [Spec(GUARD), Spec(BASIC), Spec(EXIT, policy="accept 443"), Spec(BASIC)]
    # missing one of two plain relays: f_mid = 10000/(4152+20000)... compute exactly
    nd = make_netdir(specs, missing=[3], params={"min_paths_for_circs_pct": 25})
    f_mid = (4152 + 10000) / (4152 + 20000)
    assert nd.frac_paths() == pytest.approx(f_mid)
    assert nd.has_enough_paths()
    nd60 = make_netdir(specs, missing=[3])
    assert f_mid < 0.6 and not nd60.has_enough_paths()


def test_no_exits_means_internal_paths_use_f_mid() -> None:
    nd = make_netdir([Spec(GUARD), Spec(BASIC), Spec(BASIC)], missing=[2])
    assert not nd.has_exit_paths()
    f_mid = (4152 + 10000) / (4152 + 20000)
    assert nd.frac_paths() == pytest.approx(f_mid * f_mid)  # f_guard 1, f_exit := f_mid


def test_exit_flag_without_policy_is_no_exit_path() -> None:
    nd = make_netdir([Spec(GUARD), Spec(EXIT)])  # Exit flag, reject-all summary
    assert not nd.has_exit_paths()
    # f_exit (descriptor present) is 1, so it is kept: only the policy check fails
    assert nd.frac_paths() == 1.0


def test_zero_total_weight_counts_relays() -> None:
    nd = make_netdir([Spec(GUARD, bw=0), Spec(GUARD, bw=0), Spec(EXIT, policy="accept 80")],
                     missing=[1])
    # guards weigh nothing: counted (1 of 2); middle: the exit has Wme=0 and the
    # guards 0 bandwidth, so also counted (2 of 3)
    assert nd.frac_paths() == pytest.approx(0.5 * (2 / 3) * 1.0)


def test_non_running_relays_do_not_count() -> None:
    nd = make_netdir([Spec(GUARD), Spec(("Valid", "Fast"))], missing=[1])
    assert nd.frac_paths() == 1.0


# --- lifetime -------------------------------------------------------------------------


def test_lifetime_liveness() -> None:
    lt = Lifetime(1000, 2000, 5000)
    assert lt.is_live(1000) and lt.is_live(5000) and not lt.is_live(999) and not lt.is_live(5001)
    assert lt.is_reasonably_live(5000 + REASONABLY_LIVE_TIME)
    assert not lt.is_reasonably_live(5001 + REASONABLY_LIVE_TIME)
    assert lt.is_reasonably_live(1000 - REASONABLY_LIVE_TIME)
    assert not lt.is_reasonably_live(999 - REASONABLY_LIVE_TIME)
    nd = shadow_netdir()
    assert nd.lifetime == Lifetime.of(nd.consensus) and nd.lifetime.is_live(SHADOW_NOW)


# --- conflicts: the fast form of the path rules ---------------------------------------


@st.composite
def tangled_networks(draw: st.DrawFn) -> list[Spec]:
    n = draw(st.integers(2, 12))
    specs = []
    for i in range(n):
        names = draw(st.lists(st.integers(0, n - 1), max_size=3))
        family = tuple(
            (f"${rsa_id(j).hex()}" if draw(st.booleans()) else f"RELAY{j}") for j in names
        )
        fids = draw(st.one_of(st.none(), st.lists(st.sampled_from(["ed25519:A", "ed25519:B"]),
                                                  max_size=2).map(tuple)))
        specs.append(Spec(
            BASIC,
            address=f"10.{draw(st.integers(0, 3))}.{i}.1",
            ipv6=draw(st.sampled_from([None, f"2001:db8:{i}::1", f"2001:db9::{i}"])),
            family=family,
            family_ids=fids,
        ))
    return specs


@settings(max_examples=80, deadline=None)
@given(specs=tangled_networks())
def test_conflicts_agree_with_the_rules(specs: list[Spec]) -> None:
    nd = make_netdir(specs)
    for r in nd.relays:
        brute = {s.rsa_id for s in nd.relays if not compatible(s, [r])}
        assert nd.conflicts(r) == brute
        assert nd.conflicts(r) is nd.conflicts(r)  # remembered
    foreign = relays(Spec(address=f"10.{0}.99.1"))[0]  # not in nd: computed, not cached
    assert nd.conflicts(foreign) == {s.rsa_id for s in nd.relays
                                     if not compatible(s, [foreign])} | {foreign.rsa_id}


def test_hop_spec_and_circuit_parameters() -> None:
    nd = make_netdir([Spec(GUARD, ipv6="2001:db8::5")], params={"circwindow": 50,
                                                                "sendme_emit_min_version": 1})
    r = nd.relays[0]
    hop = r.hop_spec()
    assert (hop.rsa_id, hop.ed_id, hop.ntor_key) == (r.rsa_id, r.ed_id, r.ntor_key)
    assert hop.ipv4 == r.ipv4 and hop.ipv6 == ("2001:db8::5", 9001)
    assert hop.ntor_v3 and hop.uses_ntor_v3  # Relay=1-4 advertised
    p = nd.circ_params()
    assert p.circwindow == 100 and p.sendme_emit_min_version == 1  # clamped, as C tor
    assert nd.circ_params() is p
