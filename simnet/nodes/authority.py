"""Emulated directory authorities: flags, microdescriptors, a signed consensus on a schedule.

The authorities of a simulated network share one view of its relays (each
relay's :class:`~simnet.nodes.relay.RelayInfo`), so instead of exchanging votes
they compute the consensus once per period and every authority that is up
signs the same document (dir-spec §3.4-§3.9, with the vote round collapsed).
A majority of authorities must be up, else no consensus is published that
period (and the previous one stays in the caches).

Per period, at ``valid-after`` (aligned to ``interval``, default 3600 s;
fresh-until = valid-after + interval, valid-until = valid-after + 3 intervals,
as C tor):

* reachability: a relay whose host is down is not Running and, as in C tor's
  consensus, not listed; a relay that comes back is "new" again (its uptime
  restarts);
* flags (dir-spec §3.4.2, deterministic simplifications):
  Running, Valid: every listed relay.  V2Dir: it has a directory cache.
  Fast: bandwidth >= 100 KB/s, or in the top 7/8 of listed relays.
  Stable: uptime >= 7 days, or >= the median uptime.  Exit: its policy
  summary allows ports 80 and 443.  Guard: Fast, Stable, V2Dir, and bandwidth
  >= 2048 KB/s or in the top quarter, and uptime >= 8 days ("familiar").
  HSDir: Fast, Stable, V2Dir and uptime >= 96 hours.  Authority: authorities.
* microdescriptors (dir-spec §3.3, C tor's current form: ``onion-key`` with no
  key object, ``ntor-onion-key``, ``family``, ``p``, ``id ed25519``);
* bandwidth-weights (:mod:`simnet.nodes.bwweights`), consensus ``params``
  (default ``sendme_emit_min_version=1 sendme_accept_min_version=1``) and
  protocol lines (clients are required to speak Relay=2 only, since some relays
  advertise Relay=1-3 and no ntor-v3);
* the microdesc-flavour consensus, signed with SHA-256 by every authority up.

The documents then go to every directory cache (relays' and authorities'),
and the new parameters to every relay.  Vote digests in ``dir-source`` lines
are SHA-1 of a per-authority string (there are no votes to digest).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gotor.crypto.primitives import sha1, sha256
from gotor.errors import ProtocolError
from gotor.netdoc import consensus as cs
from gotor.netdoc.build_dir import ConsensusSigner, build_consensus, build_microdesc
from gotor.netdoc.microdesc import Microdesc
from gotor.netdoc.protover import Protocols
from gotor.runtime.api import ByteStream
from simnet.net import Network
from simnet.nodes.bwweights import bandwidth_weights, totals
from simnet.nodes.dircache import AuthCertEntry, DirDocuments
from simnet.nodes.http import read_request, response
from simnet.nodes.keys import AuthorityKeys
from simnet.nodes.relay import RelayInfo, RelayNode

CONSENSUS_METHOD = 35
DEFAULT_INTERVAL = 3600
DEFAULT_PARAMS: Mapping[str, int] = {"sendme_emit_min_version": 1,
                                     "sendme_accept_min_version": 1}
KNOWN_FLAGS = ("Authority", "Exit", "Fast", "Guard", "HSDir", "Running", "Stable", "V2Dir",
               "Valid")
CLIENT_REQUIRED = "Cons=2 Desc=2 Link=4 Microdesc=2 Relay=2"
CLIENT_RECOMMENDED = ("Cons=2 Desc=2 DirCache=2 FlowCtrl=1 HSDir=2 HSIntro=4 HSRend=2 Link=4-5 "
                      "Microdesc=2 Relay=2")
RELAY_REQUIRED = "Cons=2 Desc=2 DirCache=2 HSDir=2 Link=4-5 LinkAuth=3 Microdesc=2 Relay=2"
RELAY_RECOMMENDED = RELAY_REQUIRED + " FlowCtrl=1 HSIntro=4-5 HSRend=2"
CERT_LIFETIME = 365 * 86400
DAY = 86400


# --- flags ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlagThresholds:
    """The percentile thresholds of one vote (dir-spec §3.4.2)."""

    fast_bw: int
    guard_bw: int
    stable_uptime: float

    @classmethod
    def compute(cls, relays: Sequence[tuple[RelayInfo, float]]) -> FlagThresholds:
        """From the listed relays and their uptimes; only relays of >= 4 KB/s count."""
        counted = [(info.bandwidth, up) for info, up in relays if info.bandwidth >= 4]
        bws = sorted(bw for bw, _ in counted) or [0]
        uptimes = sorted(up for _, up in counted) or [0.0]
        return cls(fast_bw=min(100, bws[len(bws) // 8]),
                   guard_bw=min(2048, bws[(3 * len(bws)) // 4]),
                   stable_uptime=min(7 * DAY, statistics.median_low(uptimes)))


def assign_flags(info: RelayInfo, uptime: float, th: FlagThresholds) -> frozenset[str]:
    """The flags of one listed (hence Running) relay (see the module docstring)."""
    flags = {"Running", "Valid"}
    fast = info.bandwidth >= th.fast_bw
    stable = uptime >= th.stable_uptime
    v2dir = info.dir_cache
    rules = {
        "Fast": fast,
        "Stable": stable,
        "V2Dir": v2dir,
        "Exit": info.exit_policy.is_exit(),
        "Guard": fast and stable and v2dir and info.bandwidth >= th.guard_bw
        and uptime >= 8 * DAY,
        "HSDir": fast and stable and v2dir and uptime >= 96 * 3600,
        "Authority": info.is_authority,
    }
    flags.update(name for name, on in rules.items() if on)
    return frozenset(flags)


def build_relay_microdesc(info: RelayInfo) -> Microdesc:
    """The relay's microdescriptor, with its text and digest (dir-spec §3.3)."""
    return build_microdesc(Microdesc(
        ntor_onion_key=info.keys.ntor_public,
        ipv4_policy=info.exit_policy.summary(),
        ed25519_id=info.keys.ed_id,
        family=tuple(sorted("$" + fp.hex().upper() for fp in info.family)),
    ))


# --- the authorities -------------------------------------------------------------------------
@dataclass
class AuthorityNode:
    """One directory authority: its v3 keys, its relay (ORPort + cache) and DirPort."""

    keys: AuthorityKeys
    relay: RelayNode
    dir_port: int
    contact: str
    certificate: AuthCertEntry = field(init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        host = self.relay.host
        epoch = int(host.network.world.epoch) // DAY * DAY
        published = epoch - 30 * DAY
        text = self.keys.certificate(published=published, expires=published + CERT_LIFETIME,
                                     dir_address=(host.ipv4 or "", self.dir_port))
        self.certificate = AuthCertEntry(self.keys.v3_ident,
                                         self.keys.signing.public.fingerprint(), text)
        cache = self.relay.dir_cache
        if cache is not None:
            cache.own_authcert = self.certificate

    @property
    def nickname(self) -> str:
        return self.relay.nickname

    @property
    def alive(self) -> bool:
        return self.relay.host.alive

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.relay.start()
        if self.dir_port:
            self._listen_dirport()
            self.relay.host.on_restart(lambda _h: self._listen_dirport())

    def _listen_dirport(self) -> None:
        rt = self.relay.rt
        rt.spawn(rt.listen(self.relay.host.ipv4 or "", self.dir_port, self._serve_http),
                 name=f"dirport {self.nickname}")

    async def _serve_http(self, stream: ByteStream) -> None:
        """Plain HTTP/1.0 on the DirPort (dir-spec §4, for clients that do not tunnel)."""
        rt, cache = self.relay.rt, self.relay.dir_cache
        try:
            got = await read_request(stream)
        except ProtocolError:
            reply = response(400, now=rt.wallclock())
        else:
            if got is None:
                return  # the client left before asking anything
            reply = (response(404, now=rt.wallclock()) if cache is None
                     else cache.respond(got[0], now=rt.wallclock(), client=stream.peer[0]))
        stream.write(reply)
        await stream.drain()


class DirectoryAuthorities:
    """The authorities of one simulated network, acting together (module docstring)."""

    def __init__(self, network: Network, authorities: Sequence[AuthorityNode],
                 relays: Sequence[RelayNode], *, interval: int = DEFAULT_INTERVAL,
                 params: Mapping[str, int] | None = None) -> None:
        self.network = network
        self.authorities = list(authorities)
        self.relays = list(relays)
        self.interval = interval
        self.params = dict(DEFAULT_PARAMS if params is None else params)
        self.current: DirDocuments | None = None
        self.published = 0
        self._up_since: dict[bytes, float] = {}

    def all_relays(self) -> list[RelayNode]:
        return [a.relay for a in self.authorities] + self.relays

    def start(self) -> None:
        """Publish a consensus now, then at every ``interval`` boundary of the wall clock."""
        self.publish()
        self._schedule()

    def _schedule(self) -> None:
        world = self.network.world
        now = world.wallclock()
        nxt = (int(now) // self.interval + 1) * self.interval
        self.network.call_later(nxt - now, self._tick)

    def _tick(self) -> None:
        self.publish()
        self._schedule()

    def publish(self) -> DirDocuments | None:
        """Vote, sign and distribute one consensus; None (traced) without a majority."""
        world = self.network.world
        now = world.wallclock()
        valid_after = int(now) // self.interval * self.interval
        signers = [a for a in self.authorities if a.alive]
        if 2 * len(signers) <= len(self.authorities):
            world.trace.record("authorities", "consensus-failed", signers=len(signers))
            return None
        docs = self._documents(valid_after, now, signers)
        self.current = docs
        self.published += 1
        for relay in self.all_relays():
            relay.set_params(self.params)
            if relay.dir_cache is not None:
                relay.dir_cache.publish(docs)
        world.trace.record("authorities", "consensus-published", valid_after=valid_after,
                           signers=len(signers), digest=sha256(docs.consensus).hex()[:16])
        return docs

    def _documents(self, valid_after: int, now: float,
                   signers: Sequence[AuthorityNode]) -> DirDocuments:
        listed = self._listed(now)
        thresholds = FlagThresholds.compute(listed)
        routers, mds = [], {}
        for info, uptime in listed:
            md = build_relay_microdesc(info)
            mds[md.digest] = md.text
            routers.append(_router_status(info, assign_flags(info, uptime, thresholds),
                                          md.digest, valid_after))
        weights = bandwidth_weights(*totals(
            (r.bandwidth.bandwidth if r.bandwidth else 0, "Guard" in r.flags, "Exit" in r.flags)
            for r in routers))
        consensus = cs.Consensus(
            flavor=cs.Flavor.MICRODESC, consensus_method=CONSENSUS_METHOD,
            valid_after=valid_after, fresh_until=valid_after + self.interval,
            valid_until=valid_after + 3 * self.interval,
            authorities=tuple(self._dir_source(a, valid_after) for a in self.authorities),
            routers=tuple(routers), voting_delay=_voting_delay(self.interval),
            client_versions=(), server_versions=(), known_flags=KNOWN_FLAGS,
            recommended_client_protocols=Protocols.parse(CLIENT_RECOMMENDED),
            recommended_relay_protocols=Protocols.parse(RELAY_RECOMMENDED),
            required_client_protocols=Protocols.parse(CLIENT_REQUIRED),
            required_relay_protocols=Protocols.parse(RELAY_REQUIRED),
            params=dict(sorted(self.params.items())), bandwidth_weights=weights)
        text = build_consensus(consensus, [ConsensusSigner(a.keys.v3_ident, a.keys.signing)
                                           for a in signers])
        return DirDocuments(
            consensus=text, valid_after=valid_after, fresh_until=consensus.fresh_until,
            valid_until=consensus.valid_until,
            signers=tuple(sorted(a.keys.v3_ident for a in signers)),
            authcerts=tuple(sorted((a.certificate for a in self.authorities),
                                   key=lambda c: c.v3_ident)),
            microdescs=mds)

    def _listed(self, now: float) -> list[tuple[RelayInfo, float]]:
        """Reachable relays (hosts up) and their uptimes; a returning relay starts again."""
        epoch = self.network.world.epoch
        out = []
        for relay in self.all_relays():
            info = relay.descriptor()
            rid = info.keys.rsa_id
            if not relay.host.alive:
                self._up_since[rid] = float("inf")
                continue
            since = self._up_since.setdefault(rid, epoch - info.uptime)
            if since == float("inf"):
                since = self._up_since[rid] = now
            out.append((info, max(0.0, now - since)))
        return out

    @staticmethod
    def _dir_source(auth: AuthorityNode, valid_after: int) -> cs.DirSource:
        relay = auth.relay
        ip = relay.host.ipv4 or ""
        return cs.DirSource(
            nickname=auth.nickname, identity=auth.keys.v3_ident, address=ip, ip=ip,
            dir_port=auth.dir_port, or_port=relay.config.or_port, contact=auth.contact,
            vote_digest=sha1(f"simnet-vote:{auth.nickname}:{valid_after}".encode()))


def _router_status(info: RelayInfo, flags: frozenset[str], md_digest: bytes,
                   valid_after: int) -> cs.RouterStatus:
    return cs.RouterStatus(
        nickname=info.nickname, identity=info.keys.rsa_id, published=valid_after,
        address=info.address, or_port=info.or_port, dir_port=info.dir_port, flags=flags,
        md_digest=md_digest, addresses=(info.ipv6,) if info.ipv6 else (),
        version=info.version, protocols=info.protocols,
        bandwidth=cs.Bandwidth(info.bandwidth))


def _voting_delay(interval: int) -> tuple[int, int]:
    delay = max(1, min(300, interval // 4))
    return (delay, delay)
