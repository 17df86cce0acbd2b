"""Build an emulated Tor network from a seed: authorities, relays, exits, web servers, DNS.

:func:`build_topology` adds hosts to a :class:`~simnet.net.Network`, gives each
node its keys (:mod:`simnet.nodes.keys`) and starts it.  Everything is drawn
from *named* random streams, one per node (``topology:relay:<i>``,
``topology:authority:<i>``), so adding relays does not change the ones before:
relay 7 of a 30-relay network is relay 7 of a 300-relay network.

Per relay: a region (its access latency range and its address block), an
uplink/downlink rate from which the advertised bandwidth follows
(``min(up, down) / 8000`` KB/s), an uptime (which drives Stable, Guard and
HSDir), whether it speaks ntor-v3 (``legacy_fraction`` of relays advertise
Relay=1-3 and refuse ntor-v3), whether it shares a /16 with the relay before
it (``shared16_fraction``), whether it forms a family with the relay before it
(``family_fraction``; both declare each other), and, for the first
``n_exits`` relays, one of three exit policies (C tor's default port
rejections, web ports only, everything).

Addresses: relays get their own /16 in their region's block
(``<block + i // 250>.<i % 250 + 1>.0.1``), authorities ``128.<k + 1>.0.1``,
web servers ``93.184.216.<34 + k>``; the DNS maps ``web<k>.simnet.test`` to web
server k, and ``blackhole.simnet.test`` to an address no host has (connects
there time out).

The result's :attr:`Topology.client_config` is what a client needs to
bootstrap: each authority's nickname, v3 identity, relay RSA and Ed25519
identities, address, ORPort and DirPort (and C tor's ``DirAuthority`` lines).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gotor.errors import LocalError
from simnet.net import Network
from simnet.nodes.authority import DEFAULT_PARAMS, AuthorityNode, DirectoryAuthorities
from simnet.nodes.dircache import DirCache
from simnet.nodes.dns import Dns
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.nodes.keys import AuthorityKeys, RelayKeys
from simnet.nodes.relay import RelayConfig, RelayNode
from simnet.nodes.web import WebServer
from simnet.world import World

DAY = 86400.0
OR_PORT = 9001
AUTH_OR_PORT, AUTH_DIR_PORT = 5000, 7000
WEB_PORT = 80

#: name, access latency range (s), first octet of the address block
REGIONS = (("eu", 0.008, 0.030, 31), ("na", 0.020, 0.050, 64), ("asia", 0.045, 0.090, 101))
LINK_RATES = (5e6, 10e6, 20e6, 50e6, 100e6)
UPTIME_DAYS = (0.5, 2.0, 5.0, 10.0, 20.0, 45.0, 90.0)
#: C tor's default exit policy's port rejections, then accept everything else.
DEFAULT_EXIT_POLICY = ("reject *:25, reject *:119, reject *:135-139, reject *:445, "
                       "reject *:563, reject *:1214, reject *:4661-4666, reject *:6346-6429, "
                       "reject *:6699, reject *:6881-6999, accept *:*")
EXIT_POLICIES = (DEFAULT_EXIT_POLICY, "accept *:80, accept *:443, reject *:*", "accept *:*")
BLACKHOLE = ("blackhole.simnet.test", "192.0.2.1")


@dataclass(frozen=True)
class AuthorityEntry:
    """How a client finds and trusts one directory authority."""

    nickname: str
    v3_ident: bytes
    rsa_identity: bytes
    ed_identity: bytes
    address: str
    or_port: int
    dir_port: int

    def torrc_line(self) -> str:
        """The equivalent C tor ``DirAuthority`` line."""
        return (f"DirAuthority {self.nickname} orport={self.or_port} no-v2 "
                f"v3ident={self.v3_ident.hex().upper()} {self.address}:{self.dir_port} "
                f"{self.rsa_identity.hex().upper()}")


@dataclass(frozen=True)
class ClientDirConfig:
    """The directory configuration a client needs to bootstrap in this network."""

    authorities: tuple[AuthorityEntry, ...]

    def torrc_lines(self) -> list[str]:
        return [a.torrc_line() for a in self.authorities]


@dataclass
class Topology:
    """The nodes of one emulated network (see the module docstring)."""

    world: World
    network: Network
    authorities: DirectoryAuthorities
    relays: list[RelayNode]
    web_servers: list[WebServer]
    dns: Dns
    client_config: ClientDirConfig
    started: bool = field(default=False)

    @property
    def all_relays(self) -> list[RelayNode]:
        """Authorities' relays first, then the others."""
        return self.authorities.all_relays()

    @property
    def exits(self) -> list[RelayNode]:
        return [r for r in self.relays if r.config.exit_policy.is_exit()]

    def relay(self, nickname: str) -> RelayNode:
        for node in self.all_relays:
            if node.nickname == nickname:
                return node
        raise LocalError(f"no relay named {nickname}")

    def start(self) -> None:
        """Start every listener and publish the first consensus (once)."""
        if self.started:
            return
        self.started = True
        for auth in self.authorities.authorities:
            auth.start()
        for relay in self.relays:
            relay.start()
        for web in self.web_servers:
            web.start()
        self.authorities.start()


@dataclass(frozen=True)
class _Draw:
    """One relay's random choices (from its own named stream)."""

    region: tuple[str, float, float, int]
    latency: float
    up_bps: float
    down_bps: float
    uptime: float
    legacy: bool
    share16: bool
    family: bool
    policy: str
    dir_cache: bool


def _draw(world: World, i: int, *, legacy_fraction: float, shared16_fraction: float,
          family_fraction: float) -> _Draw:
    rng = world.rng(f"topology:relay:{i}")
    region = rng.choice(REGIONS)
    up = rng.choice(LINK_RATES)
    return _Draw(region=region, latency=round(rng.uniform(region[1], region[2]), 4),
                 up_bps=up, down_bps=max(up, rng.choice(LINK_RATES)),
                 uptime=rng.choice(UPTIME_DAYS) * DAY,
                 legacy=rng.random() < legacy_fraction,
                 share16=i > 0 and rng.random() < shared16_fraction,
                 family=i > 0 and rng.random() < family_fraction,
                 policy=rng.choice(EXIT_POLICIES), dir_cache=rng.random() >= 0.1)


def build_topology(world: World, network: Network, *, n_authorities: int = 3,
                   n_relays: int = 30, n_exits: int | None = None, n_web: int = 1,
                   interval: int = 3600, params: Mapping[str, int] | None = None,
                   legacy_fraction: float = 0.3, shared16_fraction: float = 0.1,
                   family_fraction: float = 0.15, start: bool = True,
                   authority_id_bits: int = 3072) -> Topology:
    """Build (and by default start) a network; see the module docstring."""
    if n_authorities < 1 or n_relays < 0 or n_web < 0:
        raise LocalError("need at least one authority")
    exits = max(1, n_relays // 4) if n_exits is None else n_exits
    if not 0 <= exits <= n_relays:
        raise LocalError("n_exits must be between 0 and n_relays")
    dns = Dns()
    web = _web_servers(network, dns, n_web)
    auths = [_authority(world, network, k, authority_id_bits) for k in range(n_authorities)]
    relays = _relays(world, network, dns, n_relays, exits, legacy_fraction=legacy_fraction,
                     shared16_fraction=shared16_fraction, family_fraction=family_fraction)
    merged = {**DEFAULT_PARAMS, **(params or {})}
    group = DirectoryAuthorities(network, auths, relays, interval=interval, params=merged)
    for node in group.all_relays():
        node.dns = dns
    topo = Topology(world, network, group, relays, web, dns, _client_config(auths))
    if start:
        topo.start()
    return topo


def _web_servers(network: Network, dns: Dns, n: int) -> list[WebServer]:
    servers = []
    for k in range(n):
        host = network.add_host(f"web{k}", ipv4=f"93.184.216.{34 + k}", latency=0.01,
                                up_bps=1e9, down_bps=1e9)
        name = f"web{k}.simnet.test"
        dns.add(name, host.ipv4 or "")
        servers.append(WebServer(host, port=WEB_PORT, names=(name,)))
    dns.add(*BLACKHOLE)
    return servers


def _authority(world: World, network: Network, k: int, id_bits: int) -> AuthorityNode:
    rng = world.rng(f"topology:authority:{k}")
    region = rng.choice(REGIONS)
    name = f"auth{k}"
    host = network.add_host(name, ipv4=f"128.{k + 1}.0.1", up_bps=100e6, down_bps=100e6,
                            latency=round(rng.uniform(region[1], region[2]), 4))
    config = RelayConfig(nickname=name, or_port=AUTH_OR_PORT, dir_port=AUTH_DIR_PORT,
                         bandwidth=int(100e6 / 8000), uptime=90 * DAY)
    relay = RelayNode(host, RelayKeys.generate(world, name), config, dir_cache=DirCache(),
                      is_authority=True)
    keys = AuthorityKeys.generate(world, name, identity_bits=id_bits)
    return AuthorityNode(keys, relay, AUTH_DIR_PORT, f"{name}@simnet.test")


def _relays(world: World, network: Network, dns: Dns, n: int, n_exits: int, *,
            legacy_fraction: float, shared16_fraction: float,
            family_fraction: float) -> list[RelayNode]:
    draws = [_draw(world, i, legacy_fraction=legacy_fraction,
                   shared16_fraction=shared16_fraction, family_fraction=family_fraction)
             for i in range(n)]
    names = [f"relay{i:03d}" for i in range(n)]
    keys = [RelayKeys.generate(world, name) for name in names]
    families = _families(draws, keys)
    nodes: list[RelayNode] = []
    addresses: list[str] = []
    for i, draw in enumerate(draws):
        address = _relay_address(i, draw, addresses)
        addresses.append(address)
        host = network.add_host(names[i], ipv4=address, up_bps=draw.up_bps,
                                down_bps=draw.down_bps, latency=draw.latency)
        policy = ExitPolicy.parse(draw.policy) if i < n_exits else ExitPolicy.reject_all()
        config = RelayConfig(nickname=names[i], or_port=OR_PORT, exit_policy=policy,
                             dir_cache=draw.dir_cache, ntor_v3=not draw.legacy,
                             bandwidth=int(min(draw.up_bps, draw.down_bps) / 8000),
                             uptime=draw.uptime, family=families.get(i, ()))
        nodes.append(RelayNode(host, keys[i], config, dns=dns))
    return nodes


def _families(draws: list[_Draw], keys: list[RelayKeys]) -> dict[int, tuple[bytes, ...]]:
    """Pairs (i-1, i) where relay i drew ``family`` and i-1 is not already paired."""
    out: dict[int, tuple[bytes, ...]] = {}
    for i, draw in enumerate(draws):
        if draw.family and (i - 1) not in out:
            out[i - 1] = (keys[i].rsa_id,)
            out[i] = (keys[i - 1].rsa_id,)
    return out


def _relay_address(i: int, draw: _Draw, previous: list[str]) -> str:
    if draw.share16 and previous:
        a, b, c, _ = previous[-1].split(".")
        return f"{a}.{b}.{int(c) + 1}.1"
    return f"{draw.region[3] + i // 250}.{i % 250 + 1}.0.1"


def _client_config(auths: list[AuthorityNode]) -> ClientDirConfig:
    return ClientDirConfig(tuple(
        AuthorityEntry(nickname=a.nickname, v3_ident=a.keys.v3_ident,
                       rsa_identity=a.relay.keys.rsa_id, ed_identity=a.relay.keys.ed_id,
                       address=a.relay.host.ipv4 or "", or_port=a.relay.config.or_port,
                       dir_port=a.dir_port)
        for a in auths))
