"""The usable directory: a verified microdesc consensus joined with its microdescriptors.

A :class:`NetDir` is what path selection, guard selection and the circuit
layer read.  It is immutable: the directory client builds a new one for
every new consensus and every new batch of microdescriptors, and publishes it.

* :class:`Relay` — one relay the client can build circuits through: its
  router status entry (dir-spec §3.4.1: flags, bandwidth, addresses,
  protocols) joined by digest with its microdescriptor (dir-spec §3.3: ntor
  key, Ed25519 identity, policy summaries, family).  Only relays *with* a
  microdescriptor are relays; the digests still missing are listed.
* :class:`NetParams` — the consensus ``params`` this client reads, with the
  defaults and clamps of param-spec (C tor's ``networkstatus_get_param``).
* :class:`BandwidthWeights` — position weights of dir-spec §3.4.1
  ``bandwidth-weights`` applied as C tor's ``compute_weighted_bandwidths``
  (path-spec §2.2): ``bandwidth x W<position><class> x W<class>b`` for relays
  that are directory caches, in exact integers.
* :meth:`NetDir.has_enough_paths` — path-spec §2.1.0's "enough directory
  information" rule, as C tor's ``compute_frac_paths_available`` computes it
  (see the method for what is simplified).
* :func:`same_family` — the relation path-spec §2.2 forbids inside one path.

The consensus' lifetime and its liveness (dir-spec §5.1, "live" and
"reasonably live") are here too, because both the directory client and the
guard manager (guard-spec §4.1 "we have a live consensus") judge them.
"""

from __future__ import annotations

import bisect
import enum
import ipaddress
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from gotor.circuit.params import CircParams, HopSpec
from gotor.errors import LocalError
from gotor.netdoc.consensus import Consensus, Flavor, RouterStatus
from gotor.netdoc.fields import INT32_MAX
from gotor.netdoc.microdesc import Microdesc, join_microdescs
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols

__all__ = [
    "DEFAULT_BANDWIDTH",
    "REASONABLY_LIVE_TIME",
    "BandwidthWeights",
    "Lifetime",
    "NetDir",
    "NetParams",
    "Relay",
    "Role",
    "same_family",
    "same_subnet",
]

T = TypeVar("T")

#: dir-spec §5.1: a consensus that "expired less than 24 hours ago" is reasonably live
#: (C tor's REASONABLY_LIVE_TIME, applied on both sides of the window).
REASONABLY_LIVE_TIME = 24 * 3600

#: C tor's weight for a router whose entry has no ``w`` line ("chosen arbitrarily":
#: 30000 bytes/s, i.e. 30 in the consensus' kilobyte unit).
DEFAULT_BANDWIDTH = 30


# --- lifetime ----------------------------------------------------------------


@dataclass(frozen=True)
class Lifetime:
    """A consensus' valid-after, fresh-until and valid-until (POSIX seconds)."""

    valid_after: int
    fresh_until: int
    valid_until: int

    @classmethod
    def of(cls, consensus: Consensus) -> Lifetime:
        return cls(consensus.valid_after, consensus.fresh_until, consensus.valid_until)

    def is_live(self, now: float) -> bool:
        """dir-spec §5.1: valid-after has passed and valid-until has not."""
        return self.valid_after <= now <= self.valid_until

    def is_reasonably_live(self, now: float) -> bool:
        """C tor's ``networkstatus_consensus_reasonably_live``: within 24 h of the window."""
        return (
            self.valid_after - REASONABLY_LIVE_TIME <= now <= self.valid_until + REASONABLY_LIVE_TIME
        )


# --- parameters --------------------------------------------------------------


@dataclass(frozen=True)
class NetParams:
    """Consensus parameters with param-spec defaults and clamps.

    Only the parameters of path and guard selection; the circuit parameters
    are :meth:`NetDir.circ_params`, others are read with :meth:`NetDir.param`
    by the modules that need them.  Day counts are converted to seconds.
    """

    bwweightscale: int = 10000
    min_paths_for_circs_pct: int = 60
    guard_lifetime: int = 120 * 86400
    guard_confirmed_min_lifetime: int = 60 * 86400
    guard_internet_likely_down_interval: int = 600
    guard_max_sample_size: int = 60
    guard_max_sample_threshold_pct: int = 20
    guard_min_filtered_sample_size: int = 20
    guard_n_primary_guards: int = 3
    guard_n_primary_guards_to_use: int = 1
    guard_n_primary_dir_guards_to_use: int = 3
    guard_nonprimary_connect_timeout: int = 15
    guard_nonprimary_idle_timeout: int = 600
    guard_remove_unlisted_after: int = 20 * 86400

    @classmethod
    def from_consensus(cls, c: Consensus) -> NetParams:
        day, p = 86400, c.param
        return cls(
            bwweightscale=p("bwweightscale", 10000, 1, INT32_MAX),
            min_paths_for_circs_pct=p("min_paths_for_circs_pct", 60, 25, 95),
            guard_lifetime=p("guard-lifetime-days", 120, 1, 3650) * day,
            guard_confirmed_min_lifetime=p("guard-confirmed-min-lifetime-days", 60, 1, 3650) * day,
            guard_internet_likely_down_interval=p(
                "guard-internet-likely-down-interval", 600, 1, INT32_MAX),
            guard_max_sample_size=p("guard-max-sample-size", 60, 1, INT32_MAX),
            guard_max_sample_threshold_pct=p("guard-max-sample-threshold-percent", 20, 1, 100),
            guard_min_filtered_sample_size=p("guard-min-filtered-sample-size", 20, 1, INT32_MAX),
            guard_n_primary_guards=p("guard-n-primary-guards", 3, 1, INT32_MAX),
            guard_n_primary_guards_to_use=p("guard-n-primary-guards-to-use", 1, 1, INT32_MAX),
            guard_n_primary_dir_guards_to_use=p(
                "guard-n-primary-dir-guards-to-use", 3, 1, INT32_MAX),
            guard_nonprimary_connect_timeout=p(
                "guard-nonprimary-guard-connect-timeout", 15, 1, INT32_MAX),
            guard_nonprimary_idle_timeout=p(
                "guard-nonprimary-guard-idle-timeout", 600, 1, INT32_MAX),
            guard_remove_unlisted_after=p(
                "guard-remove-unlisted-guards-after-days", 20, 1, 3650) * day,
        )


# --- bandwidth weights -------------------------------------------------------


class Role(enum.Enum):
    """The position a relay is weighted for (path-spec §2.2); the value is the
    letter after ``W`` in the bandwidth-weights keywords (``b``: BEGIN_DIR requests)."""

    GUARD = "g"
    MIDDLE = "m"
    EXIT = "e"
    DIR = "b"


#: Per role, the weight keywords for (guard-only, neither, exit-only, guard+exit) relays.
#: C tor uses 0 for exit-only relays in the guard position (they are never guards).
_ROLE_KEYS: dict[Role, tuple[str | None, str | None, str | None, str | None]] = {
    Role.GUARD: ("Wgg", "Wgm", None, "Wgd"),
    Role.MIDDLE: ("Wmg", "Wmm", "Wme", "Wmd"),
    Role.EXIT: ("Weg", "Wem", "Wee", "Wed"),
    Role.DIR: ("Wbg", "Wbm", "Wbe", "Wbd"),
}
#: The extra factor for relays that are directory caches, per class, in every role but DIR.
_DIR_KEYS = ("Wgb", "Wmb", "Web", "Wdb")


def _relay_class(flags: frozenset[str]) -> int:
    """0 guard, 1 neither, 2 exit, 3 guard+exit (C tor: BadExit relays are not exits)."""
    guard = "Guard" in flags
    exit_ = "Exit" in flags and "BadExit" not in flags
    return (3 if exit_ else 0) if guard else (2 if exit_ else 1)


@dataclass(frozen=True)
class BandwidthWeights:
    """dir-spec §3.4.1 bandwidth-weights, resolved per role into integer factors.

    ``factors[role]`` holds, for each relay class (guard, neither, exit,
    guard+exit), the pair (position weight, directory-cache weight), both
    in units of ``scale``.  A role whose weights are missing or negative is
    weighted naively (every factor = ``scale``), as C tor does when
    ``networkstatus_get_bw_weight`` returns -1; weights above the scale are
    clamped to it, as C tor does.
    """

    scale: int
    factors: Mapping[Role, tuple[tuple[int, int], ...]]
    naive: frozenset[Role] = frozenset()

    @classmethod
    def from_consensus(cls, consensus: Consensus, scale: int) -> BandwidthWeights:
        given = consensus.bandwidth_weights or {}

        def get(key: str | None) -> int:
            if key is None:
                return 0
            value = given.get(key, -1)
            return min(value, scale) if value >= 0 else -1

        factors: dict[Role, tuple[tuple[int, int], ...]] = {}
        naive = set()
        dir_factors = [get(k) for k in _DIR_KEYS]
        for role, keys in _ROLE_KEYS.items():
            position = [get(k) for k in keys]
            per_dir = [scale] * 4 if role is Role.DIR else dir_factors
            if min(position) < 0 or min(per_dir) < 0:
                naive.add(role)
                factors[role] = ((scale, scale),) * 4
            else:
                factors[role] = tuple(zip(position, per_dir, strict=True))
        return cls(scale, MappingProxyType(factors), frozenset(naive))

    def weight(self, flags: frozenset[str], bandwidth: int, role: Role) -> int:
        """The relay's selection weight for ``role``, in units of bandwidth x scale^2."""
        position, dir_factor = self.factors[role][_relay_class(flags)]
        return bandwidth * position * (dir_factor if "V2Dir" in flags else self.scale)


# --- relays ------------------------------------------------------------------


def _family_parts(entries: Iterable[str]) -> tuple[frozenset[bytes], frozenset[str]]:
    """Split md ``family`` entries into RSA identities and (casefolded) nicknames.

    ``$HEX``, ``$HEX=nick`` and ``$HEX~nick`` name an identity (dir-spec
    §2.1.1 "family"); anything else is a nickname, matched case-insensitively
    as C tor does.  Malformed ``$`` entries are ignored.
    """
    ids, nicks = set(), set()
    for entry in entries:
        if entry.startswith("$"):
            hexid = entry[1:41]
            if len(hexid) == 40 and all(c in "0123456789abcdefABCDEF" for c in hexid):
                ids.add(bytes.fromhex(hexid))
        elif entry:
            nicks.add(entry.casefold())
    return frozenset(ids), frozenset(nicks)


@dataclass(frozen=True)
class Relay:
    """A listed relay with its microdescriptor: everything needed to use it.

    ``weight`` is the consensus bandwidth (``w Bandwidth=``, kilobytes/s;
    :data:`DEFAULT_BANDWIDTH` when absent).  ``ed_id`` is None when the
    microdescriptor has none or the router has the NoEdConsensus flag
    (dir-spec §3.3: the client MUST then ignore it).  ``protocols`` is the
    consensus' ``pr`` line, else the microdescriptor's.
    """

    rsa_id: bytes
    ed_id: bytes | None
    nickname: str
    ipv4: tuple[str, int]
    ipv6: tuple[str, int] | None
    flags: frozenset[str]
    weight: int
    ntor_key: bytes
    protocols: Protocols | None
    ipv4_policy: PortPolicy
    ipv6_policy: PortPolicy
    family: tuple[str, ...]
    family_ids: tuple[str, ...] | None
    md_digest: bytes
    dir_port: int = 0
    family_rsa_ids: frozenset[bytes] = field(default=frozenset(), repr=False)
    family_nicknames: frozenset[str] = field(default=frozenset(), repr=False)
    net16: str = field(default="", repr=False)  # the IPv4 /16, e.g. "10.3"
    net32v6: str | None = field(default=None, repr=False)  # the IPv6 /32, if any

    @classmethod
    def from_entry(cls, rs: RouterStatus, md: Microdesc) -> Relay:
        ipv6 = next((a for a in (*rs.addresses, *md.addresses) if ":" in a[0]), None)
        ids, nicks = _family_parts(md.family)
        return cls(
            rsa_id=rs.identity,
            ed_id=None if "NoEdConsensus" in rs.flags else md.ed25519_id,
            nickname=rs.nickname,
            ipv4=(rs.address, rs.or_port),
            ipv6=ipv6,
            flags=rs.flags,
            weight=rs.bandwidth.bandwidth if rs.bandwidth is not None else DEFAULT_BANDWIDTH,
            ntor_key=md.ntor_onion_key,
            protocols=rs.protocols if rs.protocols is not None else md.protocols,
            ipv4_policy=md.ipv4_policy,
            ipv6_policy=md.ipv6_policy,
            family=md.family,
            family_ids=md.family_ids,
            md_digest=md.digest,
            dir_port=rs.dir_port,
            family_rsa_ids=ids,
            family_nicknames=nicks,
            net16=_net16(rs.address),
            net32v6=_net32v6(ipv6[0]) if ipv6 is not None else None,
        )

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    def hop_spec(self) -> HopSpec:
        """What the circuit layer needs to create a circuit to this relay or extend to it."""
        return HopSpec(self.rsa_id, self.ed_id, self.ntor_key, self.ipv4, self.ipv6,
                       ntor_v3=self.supports_ntor_v3)

    @property
    def supports_ntor_v3(self) -> bool:
        """The relay advertises Relay=4 (tor-spec §5.1.4: ntor-v3 in CREATE2)."""
        return self.protocols is not None and self.protocols.supports("Relay", 4)

    def allows_port(self, port: int, *, ipv6: bool = False) -> bool:
        """Does the exit-policy summary allow exits to ``port`` (dir-spec §3.3 p/p6)?"""
        return (self.ipv6_policy if ipv6 else self.ipv4_policy).allows_port(port)

    def allows_some_exit(self) -> bool:
        """C tor's ``! node_exit_policy_rejects_all``: some port is allowed somewhere."""
        return self.ipv4_policy.allows_some_port() or self.ipv6_policy.allows_some_port()

    def lists_in_family(self, other: Relay) -> bool:
        """Does this relay's legacy ``family`` line name ``other`` (by id or nickname)?"""
        return (
            other.rsa_id in self.family_rsa_ids
            or other.nickname.casefold() in self.family_nicknames
        )

    def __str__(self) -> str:
        return f"{self.nickname}~{self.rsa_id.hex().upper()[:8]}"


def same_family(a: Relay, b: Relay) -> bool:
    """Are two relays of one family (path-spec §2.2)?

    Either (proposal 321 "happy families") their ``family-ids`` share an
    entry, or (the legacy rule) each lists the other in its ``family`` line.
    A relay is in its own family.
    """
    if a.rsa_id == b.rsa_id:
        return True
    if a.family_ids and b.family_ids and set(a.family_ids) & set(b.family_ids):
        return True
    return a.lists_in_family(b) and b.lists_in_family(a)


def _net16(ipv4: str) -> str:
    return ".".join(ipv4.split(".")[:2])


def _net32v6(ipv6: str) -> str:
    return str(ipaddress.IPv6Network((ipv6, 32), strict=False).network_address)


def same_subnet(a: Relay, b: Relay) -> bool:
    """Same IPv4 /16 (path-spec §2.2), or same IPv6 /32 as C tor also checks
    (``router_addrs_in_same_network``)."""
    return a.net16 == b.net16 or (a.net32v6 is not None and a.net32v6 == b.net32v6)


# --- the directory -----------------------------------------------------------


class _Index:
    """Relays by /16, by IPv6 /32, by nickname and by family id, for
    :meth:`NetDir.conflicts` (built once per NetDir, on first use)."""

    def __init__(self, relays: Sequence[Relay]) -> None:
        self.net16: dict[str, list[Relay]] = {}
        self.net6: dict[str, list[Relay]] = {}
        self.nicknamed: dict[str, list[Relay]] = {}  # casefolded nickname -> relays
        self.family_id: dict[str, list[Relay]] = {}
        for r in relays:
            self.net16.setdefault(r.net16, []).append(r)
            if r.net32v6 is not None:
                self.net6.setdefault(r.net32v6, []).append(r)
            self.nicknamed.setdefault(r.nickname.casefold(), []).append(r)
            for fid in r.family_ids or ():
                self.family_id.setdefault(fid, []).append(r)



def _some_exit_allowed(exits: Iterable[RouterStatus], mds: Mapping[bytes, Microdesc]) -> bool:
    """Does one of ``exits`` have a microdescriptor in ``mds`` that allows some port?"""
    for rs in exits:
        md = mds.get(rs.md_digest or b"")
        if md is not None and (
            md.ipv4_policy.allows_some_port() or md.ipv6_policy.allows_some_port()
        ):
            return True
    return False


class NetDir:
    """A verified microdesc consensus and the microdescriptors we have for it.

    ``relays``: listed routers that have a microdescriptor, sorted by RSA
    identity (the consensus order), so that every choice made by iterating
    them is deterministic.  ``missing_microdescs``: ``m`` digests we still
    lack, in consensus order.
    """

    def __init__(self, consensus: Consensus, microdescs: Iterable[Microdesc] = (), *,
                 distinct_subnets: bool = True) -> None:
        if consensus.flavor is not Flavor.MICRODESC:
            raise LocalError("a NetDir is built from a microdesc-flavour consensus")
        join = join_microdescs(consensus, microdescs)
        self.consensus = consensus
        self.lifetime = Lifetime.of(consensus)
        self.params = NetParams.from_consensus(consensus)
        self.weights = BandwidthWeights.from_consensus(consensus, self.params.bwweightscale)
        self.relays: tuple[Relay, ...] = tuple(Relay.from_entry(rs, md) for rs, md in join.matched)
        self.missing_microdescs: tuple[bytes, ...] = join.missing
        self._microdescs: dict[bytes, Microdesc] = {md.digest: md for _, md in join.matched}
        self._ids = [r.rsa_id for r in self.relays]
        self._by_ed = {r.ed_id: r for r in self.relays if r.ed_id is not None}
        self._memo: dict[Hashable, Any] = {}
        #: C tor's EnforceDistinctSubnets: relays in one /16 (IPv6 /32) never share a
        #: path.  A private network on one address turns it off (TestingTorNetwork does
        #: in C tor), else every path conflicts with itself.
        self.distinct_subnets = distinct_subnets

    # --- construction ----------------------------------------------------------
    @property
    def microdescs(self) -> Sequence[Microdesc]:
        """The microdescriptors in use (what a cache file should keep)."""
        return tuple(self._microdescs.values())

    def with_microdescs(self, microdescs: Iterable[Microdesc]) -> NetDir:
        """A new NetDir with more microdescriptors (those not listed are ignored)."""
        return NetDir(self.consensus, [*self._microdescs.values(), *microdescs],
                      distinct_subnets=self.distinct_subnets)

    def with_distinct_subnets(self, enabled: bool) -> NetDir:
        """This directory with the subnet rule on or off (itself if unchanged)."""
        if enabled == self.distinct_subnets:
            return self
        return NetDir(self.consensus, self._microdescs.values(), distinct_subnets=enabled)

    # --- lookups ---------------------------------------------------------------
    def by_rsa_id(self, rsa_id: bytes) -> Relay | None:
        k = bisect.bisect_left(self._ids, rsa_id)
        return self.relays[k] if k < len(self._ids) and self._ids[k] == rsa_id else None

    def by_ed_id(self, ed_id: bytes) -> Relay | None:
        return self._by_ed.get(ed_id)

    def memo(self, key: Hashable, factory: Callable[[], T]) -> T:
        """``factory()``, computed once per NetDir and key (derived data such as the
        candidate lists of path selection; a NetDir never changes)."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]  # type: ignore[no-any-return]

    def conflicts(self, relay: Relay) -> frozenset[bytes]:
        """RSA identities of the listed relays that may not share a path with ``relay``:
        itself, its family, its subnets (see :func:`same_family`, :func:`same_subnet`;
        subnets only with :attr:`distinct_subnets`)."""
        if self.by_rsa_id(relay.rsa_id) is not relay:
            return self._conflicts(relay)  # not one of ours: nothing to remember
        return self.memo(("conflicts", relay.rsa_id), lambda: self._conflicts(relay))

    def _conflicts(self, relay: Relay) -> frozenset[bytes]:
        index = self.memo("index", lambda: _Index(self.relays))
        near: list[Relay] = []
        if self.distinct_subnets:
            near += index.net16.get(relay.net16, ())
            if relay.net32v6 is not None:
                near += index.net6.get(relay.net32v6, ())
        # Family members are among the relays this one names (by id or by nickname)
        # or shares a family id with; same_family() then checks both directions.
        maybe = [r for r in map(self.by_rsa_id, relay.family_rsa_ids) if r is not None]
        for nick in relay.family_nicknames:
            maybe += index.nicknamed.get(nick, ())
        for fid in relay.family_ids or ():
            maybe += index.family_id.get(fid, ())
        out = {relay.rsa_id, *(r.rsa_id for r in near)}
        out.update(r.rsa_id for r in maybe if same_family(relay, r))
        return frozenset(out)

    def compatible(self, candidate: Relay, chosen: Sequence[Relay]) -> bool:
        """May ``candidate`` join a path that has ``chosen``?  As
        :func:`gotor.path.compatible`, under this directory's subnet rule."""
        return not any(candidate.rsa_id in self.conflicts(c) for c in chosen)

    def circ_params(self) -> CircParams:
        """The circuit parameters this consensus sets (tor-spec §7.3, C tor's bounds)."""
        return self.memo("circ_params", lambda: CircParams.from_consensus(self.consensus.params))

    def param(self, name: str, default: int, lo: int, hi: int) -> int:
        """Any consensus parameter, clamped as C tor does."""
        return self.consensus.param(name, default, lo, hi)

    def weight(self, relay: Relay | RouterStatus, role: Role) -> int:
        """Bandwidth-weighted selection weight of a relay (or router entry) for ``role``."""
        if isinstance(relay, Relay):
            return self.weights.weight(relay.flags, relay.weight, role)
        bw = relay.bandwidth.bandwidth if relay.bandwidth is not None else DEFAULT_BANDWIDTH
        return self.weights.weight(relay.flags, bw, role)

    # --- enough directory information (path-spec §2.1.0) -----------------------
    def frac_paths(self, more: Mapping[bytes, Microdesc] | None = None) -> float:
        """The fraction of bandwidth-weighted paths we could build (C tor's
        ``compute_frac_paths_available``, without EntryNodes/ExitNodes options).

        f_guard x f_mid x f_exit: for the usable (Running) routers with the
        Guard flag, all of them, and those with the Exit flag, the fraction of
        their weight for that position whose microdescriptor we have.  A class
        whose total weight is zero is counted by number instead.  When no
        exit could be used (none has a microdescriptor whose policy allows
        some port) and f_exit is zero, f_exit is f_mid: only internal paths.

        ``more`` (by digest) counts as had too: a fetch in progress reports the
        fraction it has reached without building a NetDir for every batch.
        """
        mds = {**self._microdescs, **more} if more else self._microdescs
        usable = [rs for rs in self.consensus.routers if "Running" in rs.flags]
        guards = [rs for rs in usable if "Guard" in rs.flags]
        exits = [rs for rs in usable if "Exit" in rs.flags]
        f_guard = self._frac_present(guards, Role.GUARD, mds)
        f_mid = self._frac_present(usable, Role.MIDDLE, mds)
        f_exit = self._frac_present(exits, Role.EXIT, mds)
        if not _some_exit_allowed(exits, mds) and f_exit <= 0.0:
            f_exit = f_mid
        return f_guard * f_mid * f_exit

    def has_exit_paths(self) -> bool:
        """C tor's ``router_have_consensus_path() == CONSENSUS_PATH_EXIT``: some
        Running Exit-flagged router has a microdescriptor allowing some port."""
        exits = (rs for rs in self.consensus.routers if {"Running", "Exit"} <= rs.flags)
        return _some_exit_allowed(exits, self._microdescs)

    def has_enough_paths(self) -> bool:
        """path-spec §2.1.0 / dir-spec §5.1: enough microdescriptors to build circuits
        (``min_paths_for_circs_pct`` of paths, default 60%)."""
        return self.frac_paths() >= self.params.min_paths_for_circs_pct / 100

    def _frac_present(self, routers: list[RouterStatus], role: Role,
                      mds: Mapping[bytes, Microdesc]) -> float:
        if not routers:
            return 0.0
        weights = [self.weight(rs, role) for rs in routers]
        present = [(rs.md_digest or b"") in mds for rs in routers]
        total = sum(weights)
        if total <= 0:
            return sum(present) / len(routers)
        return sum(w for w, p in zip(weights, present, strict=True) if p) / total

    def __repr__(self) -> str:
        return (
            f"<NetDir valid-after {self.lifetime.valid_after}: {len(self.relays)} relays, "
            f"{len(self.missing_microdescs)} microdescriptors missing>"
        )
