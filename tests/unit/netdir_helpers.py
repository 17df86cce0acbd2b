"""Build NetDirs with chosen relays for the netdir/path/guard/dir tests.

Relays are described by :class:`Spec` (flags, bandwidth, address, policy,
family); :func:`make_netdir` turns a list of them into a microdesc-flavour
Consensus and microdescriptors (built and re-parsed with gotor.netdoc, so the
digests are real) and joins them.  Nothing here is signed: the bootstrap
tests sign with tests/unit/netdoc_helpers.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gotor.netdir import NetDir
from gotor.netdoc.build_dir import build_microdesc
from gotor.netdoc.consensus import Bandwidth, Consensus, DirSource, Flavor, RouterStatus
from gotor.netdoc.microdesc import Microdesc
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols

T0 = 1_700_000_000
ALL_FLAGS = (
    "BadExit", "Exit", "Fast", "Guard", "HSDir", "NoEdConsensus", "Running", "Stable", "V2Dir",
    "Valid",
)
PROTOCOLS = Protocols.parse("Cons=1-2 Desc=1-2 Link=1-5 Microdesc=1-2 Relay=1-4")
BASIC = ("Fast", "Running", "Stable", "V2Dir", "Valid")
GUARD = (*BASIC, "Guard")
EXIT = (*BASIC, "Exit")
GUARD_EXIT = (*BASIC, "Guard", "Exit")
#: Real-looking weights (from a 2023 consensus), scale 10000.
WEIGHTS = {
    "Wbd": 0, "Wbe": 0, "Wbg": 4152, "Wbm": 10000, "Wdb": 10000, "Web": 10000, "Wed": 10000,
    "Wee": 10000, "Weg": 10000, "Wem": 10000, "Wgb": 10000, "Wgd": 0, "Wgg": 5848, "Wgm": 5848,
    "Wmb": 10000, "Wmd": 0, "Wme": 0, "Wmg": 4152, "Wmm": 10000,
}


@dataclass(frozen=True)
class Spec:
    flags: Sequence[str] = BASIC
    bw: int | None = 1000
    address: str | None = None  # default: 10.<i>.0.1 (distinct /16 per relay)
    policy: str | None = None  # ipv4 summary; default reject all
    family: tuple[str, ...] = ()
    family_ids: tuple[str, ...] | None = None
    ipv6: str | None = None
    nickname: str | None = None


def rsa_id(i: int) -> bytes:
    """Relay i's identity; identities sort in the order of i (i < 65536)."""
    return i.to_bytes(2, "big") + hashlib.sha1(b"id%d" % i).digest()[2:]


def index_of(identity: bytes) -> int:
    """The i of :func:`rsa_id`."""
    return int.from_bytes(identity[:2], "big")


def entry(i: int, spec: Spec) -> tuple[RouterStatus, Microdesc]:
    md = build_microdesc(
        Microdesc(
            ntor_onion_key=hashlib.sha256(b"ntor%d" % i).digest(),
            ed25519_id=hashlib.sha256(b"ed%d" % i).digest(),
            ipv4_policy=PortPolicy.parse(spec.policy) if spec.policy else PortPolicy.reject_all(),
            family=spec.family,
            family_ids=spec.family_ids,
        )
    )
    rs = RouterStatus(
        nickname=spec.nickname or f"relay{i}",
        identity=rsa_id(i),
        published=T0 - 3600,
        address=spec.address or f"10.{i}.0.1",
        or_port=9001,
        dir_port=0,
        flags=frozenset(spec.flags),
        md_digest=md.digest,
        addresses=((spec.ipv6, 9001),) if spec.ipv6 else (),
        protocols=PROTOCOLS,
        bandwidth=Bandwidth(spec.bw) if spec.bw is not None else None,
    )
    return rs, md


def make_consensus(
    routers: Sequence[RouterStatus],
    *,
    weights: Mapping[str, int] | None = WEIGHTS,
    params: Mapping[str, int] | None = None,
    valid_after: int = T0,
) -> Consensus:
    return Consensus(
        flavor=Flavor.MICRODESC,
        consensus_method=34,
        valid_after=valid_after,
        fresh_until=valid_after + 3600,
        valid_until=valid_after + 3 * 3600,
        authorities=(
            DirSource("auth0", b"\x01" * 20, "a", "10.0.0.1", 80, 443, "x@example.org", b"\0" * 20),
        ),
        routers=tuple(sorted(routers, key=lambda rs: rs.identity)),
        known_flags=ALL_FLAGS,
        params=dict(params or {}),
        bandwidth_weights=dict(weights) if weights is not None else None,
    )


def make_netdir(
    specs: Sequence[Spec],
    *,
    weights: Mapping[str, int] | None = WEIGHTS,
    params: Mapping[str, int] | None = None,
    missing: Sequence[int] = (),
    valid_after: int = T0,
) -> NetDir:
    """A NetDir of relays 0..n-1; the microdescriptors of ``missing`` are left out."""
    entries = [entry(i, s) for i, s in enumerate(specs)]
    consensus = make_consensus(
        [rs for rs, _ in entries], weights=weights, params=params, valid_after=valid_after
    )
    mds = [md for i, (_, md) in enumerate(entries) if i not in missing]
    return NetDir(consensus, mds)
