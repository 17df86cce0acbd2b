"""Shared helpers for the netdoc tests (and benchmarks/bench_netdoc.py).

Deterministic key material and synthetic networks built with
gotor.netdoc.build_dir, so round-trip and quorum tests do not depend on the
few real documents.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gotor.crypto.rsa import RsaPrivateKey
from gotor.netdoc.build_dir import ConsensusSigner, build_authcert, build_microdesc
from gotor.netdoc.consensus import Bandwidth, Consensus, DirSource, Flavor, RouterStatus
from gotor.netdoc.microdesc import Microdesc
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DOCS = VECTORS / "docs"

#: 2000-01-01 00:02:20 UTC: valid-after of the shadow test network.
SHADOW_NOW = 946684940
T0 = 1_700_000_000  # synthetic networks: valid-after
FLAGS = ("Exit", "Fast", "Guard", "HSDir", "Running", "Stable", "V2Dir", "Valid")
PROTOCOLS = Protocols.parse("Cons=1-2 Desc=1-2 Link=1-5 Microdesc=1-2 Relay=1-4")


def doc(name: str) -> bytes:
    return (DOCS / name).read_bytes()


@functools.cache
def expectations(doc_id: str) -> dict[str, object]:
    data = json.loads((VECTORS / "documents.json").read_text())
    return next(d for d in data["documents"] if d["id"] == doc_id)  # type: ignore[no-any-return]


def drbg(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic byte stream (SHAKE-256 in counter mode)."""
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(n)

    return random_bytes


@dataclass(frozen=True)
class Authority:
    nickname: str
    identity: RsaPrivateKey
    signing: RsaPrivateKey

    @property
    def fingerprint(self) -> bytes:
        return self.identity.public.fingerprint()

    @property
    def signer(self) -> ConsensusSigner:
        return ConsensusSigner(self.fingerprint, self.signing)

    def cert(self, published: int = T0 - 86400, expires: int = T0 + 86400 * 365) -> bytes:
        return build_authcert(
            self.identity,
            self.signing,
            published=published,
            expires=expires,
            dir_address=("10.0.0.1", 7000),
        )

    def dir_source(self) -> DirSource:
        return DirSource(
            nickname=self.nickname,
            identity=self.fingerprint,
            address="auth.example",
            ip="10.0.0.1",
            dir_port=7000,
            or_port=5000,
            contact=f"{self.nickname}@example.org",
            vote_digest=hashlib.sha1(self.nickname.encode()).digest(),
        )


@functools.cache
def authorities(n: int) -> tuple[Authority, ...]:
    """``n`` authorities with deterministic 1024-bit keys (cached: key generation is slow)."""
    return tuple(
        Authority(
            f"auth{i}",
            RsaPrivateKey.generate(1024, drbg(b"identity%d" % i)),
            RsaPrivateKey.generate(1024, drbg(b"signing%d" % i)),
        )
        for i in range(n)
    )


def microdescs(n: int) -> list[Microdesc]:
    """``n`` distinct synthetic microdescriptors."""
    out = []
    for i in range(n):
        seed = i.to_bytes(4, "big")
        out.append(
            build_microdesc(
                Microdesc(
                    ntor_onion_key=hashlib.sha256(b"ntor" + seed).digest(),
                    ed25519_id=hashlib.sha256(b"ed" + seed).digest(),
                    ipv4_policy=PortPolicy.parse("accept 80,443")
                    if i % 3 == 0
                    else PortPolicy.reject_all(),
                    family=(f"${i:040X}",) if i % 5 == 0 else (),
                )
            )
        )
    return out


def routers(n: int, flavor: Flavor, mds: list[Microdesc] | None = None) -> tuple[RouterStatus, ...]:
    """``n`` synthetic router entries (sorted by identity, as a consensus lists them)."""
    out = []
    for i in range(n):
        seed = i.to_bytes(4, "big")
        md = flavor is Flavor.MICRODESC
        out.append(
            RouterStatus(
                nickname=f"relay{i}",
                identity=hashlib.sha1(b"id" + seed).digest(),
                published=T0 - 3600 - i,
                address=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                or_port=9001,
                dir_port=0 if i % 2 else 9030,
                flags=frozenset(FLAGS[: 4 + i % 5]),
                descriptor_digest=None if md else hashlib.sha1(b"desc" + seed).digest(),
                md_digest=(mds[i].digest if mds else hashlib.sha256(b"md" + seed).digest())
                if md
                else None,
                addresses=(("2001:db8::%x" % (i + 1), 9001),) if i % 4 == 0 else (),
                version="Tor 0.4.8.10",
                protocols=PROTOCOLS,
                bandwidth=Bandwidth(1000 + i, None, i % 7 == 0),
                policy=None
                if md
                else PortPolicy.parse("reject 1-65535" if i % 3 else "accept 80,443"),
            )
        )
    return tuple(sorted(out, key=lambda rs: rs.identity))


def consensus(
    flavor: Flavor, n_routers: int, auths: tuple[Authority, ...], mds: list[Microdesc] | None = None
) -> Consensus:
    """A synthetic consensus (unsigned: build_consensus signs it)."""
    return Consensus(
        flavor=flavor,
        consensus_method=34,
        valid_after=T0,
        fresh_until=T0 + 3600,
        valid_until=T0 + 3 * 3600,
        authorities=tuple(sorted((a.dir_source() for a in auths), key=lambda d: d.identity)),
        routers=routers(n_routers, flavor, mds),
        voting_delay=(300, 300),
        client_versions=("0.4.8.9", "0.4.8.10"),
        server_versions=("0.4.8.10",),
        known_flags=tuple(sorted(FLAGS)),
        recommended_client_protocols=PROTOCOLS,
        recommended_relay_protocols=PROTOCOLS,
        required_client_protocols=Protocols.parse("Cons=2 Link=4"),
        required_relay_protocols=Protocols.parse("Cons=2 Link=4-5"),
        params={"CircuitPriorityHalflifeMsec": 30000, "bwweightscale": 10000, "cc_alg": 2},
        bandwidth_weights={"Wbd": 0, "Wee": 10000, "Wgg": 5948, "Wmm": 10000},
    )
