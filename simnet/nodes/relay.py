"""An emulated Tor relay: configuration, misbehaviour switches, and the node itself.

:class:`RelayNode` runs on one simulated host: it listens on its ORPort with its
TLS credentials and serves each connection as a channel
(:mod:`simnet.nodes.channel`), whose circuits (:mod:`simnet.nodes.circuit`)
end in streams (:mod:`simnet.nodes.exit`) when the relay is the last hop.  It
keeps an outgoing channel pool for EXTEND2, the flow-control parameters of the
current consensus (:meth:`RelayNode.set_params`), an optional directory cache
(V2Dir) and the simulated DNS its exit streams resolve through.

After a host crash and restart the node starts again with no channels or
circuits (its keys and cached directory documents survive, as on disk).

:class:`Misbehaviour` switches make a relay break the protocol in one chosen
way, for the client's bad-input tests; :meth:`RelayNode.descriptor` is what the
authorities learn about the relay (its "server descriptor").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gotor.crypto.linkcerts import build_responder_certs
from gotor.netdoc.protover import Protocols
from gotor.runtime.api import ByteStream
from simnet.binding import SimRuntime
from simnet.net import Host
from simnet.nodes.channel import ChannelPool, RelayChannel, corrupt_certs, serve_incoming
from simnet.nodes.dircache import DirCache
from simnet.nodes.dns import Dns
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.nodes.keys import RelayKeys
from simnet.nodes.sendme import FlowParams

#: What emulated relays advertise (tor-spec §9).  Relay=4 is ntor-v3; no FlowCtrl=2,
#: since they do not negotiate congestion control.
PROTOCOLS = ("Cons=1-2 Desc=1-2 DirCache=2 FlowCtrl=1 HSDir=2 HSIntro=4-5 HSRend=1-2 "
             "Link=1-5 LinkAuth=1,3 Microdesc=1-2 Padding=2 Relay=1-4")
PROTOCOLS_NO_NTOR_V3 = PROTOCOLS.replace("Relay=1-4", "Relay=1-3")
#: Rebuild the CERTS cell when it is this old (its TLS-link certificate lives 2 days).
CERTS_REFRESH = 12 * 3600


@dataclass(frozen=True)
class Misbehaviour:
    """Ways an emulated relay can break the protocol (all off by default).

    * ``stall_handshake``: accept TLS, read whatever comes, never answer;
    * ``bad_certs``: "signature" (a corrupted identity->signing certificate),
      "missing" (no RSA->Ed25519 cross-certificate) or "duplicate" (a type twice);
    * ``bad_created_auth``: CREATED2/CREATED_FAST whose AUTH/KH does not verify;
    * ``malformed_created``: a CREATED2 whose length field runs past the cell;
    * ``unexpected_cell``: answer CREATE2 with CREATED_FAST;
    * ``corrupt_digest``: every relay cell this relay originates fails the
      client's digest check;
    * ``destroy_after``: send DESTROY toward the client after originating this
      many relay cells on a circuit;
    * ``eof_mid_cell_after``: after sending this many cells on a channel, write
      half a cell and close the connection.
    """

    stall_handshake: bool = False
    bad_certs: str | None = None
    bad_created_auth: bool = False
    malformed_created: bool = False
    unexpected_cell: bool = False
    corrupt_digest: bool = False
    destroy_after: int | None = None
    eof_mid_cell_after: int | None = None


@dataclass(frozen=True)
class RelayConfig:
    """A relay's torrc, in effect.  ``bandwidth`` is KB/s; ``uptime`` is how long the
    relay has been up when the simulation starts; ``family`` are RSA identities."""

    nickname: str
    or_port: int = 9001
    dir_port: int = 0
    exit_policy: ExitPolicy = field(default_factory=ExitPolicy.reject_all)
    dir_cache: bool = True
    ntor_v3: bool = True
    bandwidth: int = 1000
    uptime: float = 30 * 86400.0
    family: tuple[bytes, ...] = ()
    version: str = "Tor 0.4.8.13"
    connect_timeout: float = 30.0


@dataclass(frozen=True)
class RelayInfo:
    """What the directory authorities know of a relay (its descriptor, in effect)."""

    nickname: str
    keys: RelayKeys
    address: str
    or_port: int
    dir_port: int
    bandwidth: int
    uptime: float
    exit_policy: ExitPolicy
    family: tuple[bytes, ...]
    protocols: Protocols
    dir_cache: bool
    version: str
    host_name: str
    ipv6: tuple[str, int] | None = None
    is_authority: bool = False


class RelayNode:
    """An emulated relay on ``host`` (see the module docstring)."""

    def __init__(self, host: Host, keys: RelayKeys, config: RelayConfig, *,
                 dns: Dns | None = None, dir_cache: DirCache | None = None,
                 misbehaviour: Misbehaviour | None = None, is_authority: bool = False) -> None:
        self.host = host
        self.keys = keys
        self.config = config
        self.dns = dns
        self.dir_cache = dir_cache if dir_cache is not None else (
            DirCache() if config.dir_cache else None)
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.is_authority = is_authority
        self.flow_params = FlowParams()
        self.channels = ChannelPool(self)
        self._certs: tuple[float, list[tuple[int, bytes]]] | None = None
        self._started = False

    @property
    def rt(self) -> SimRuntime:
        """The host's current runtime (a new one after each restart)."""
        return self.host.runtime

    @property
    def nickname(self) -> str:
        return self.config.nickname

    @property
    def protocols(self) -> Protocols:
        return Protocols.parse(PROTOCOLS if self.config.ntor_v3 else PROTOCOLS_NO_NTOR_V3)

    def trace(self, event: str, **fields: object) -> None:
        self.rt.trace(event, **fields)

    # --- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Listen on the ORPort (as a task of the host); again after every restart."""
        if not self._started:
            self._started = True
            self.host.on_restart(lambda _host: self._restarted())
        self.rt.spawn(self._listen(), name=f"relay {self.nickname}")

    def _restarted(self) -> None:
        self.channels = ChannelPool(self)
        self.start()

    async def _listen(self) -> None:
        address = self.host.ipv4 or self.host.ipv6 or ""
        await self.rt.listen(address, self.config.or_port, self._serve, tls=self.keys.tls)
        self.trace("relay-listening", nickname=self.nickname, port=self.config.or_port)

    async def _serve(self, stream: ByteStream) -> None:
        await serve_incoming(self, stream)

    def channel_closed(self, chan: RelayChannel) -> None:
        self.channels.forget(chan)

    def set_params(self, params: dict[str, int]) -> None:
        """Adopt a new consensus's parameters (for circuits created from now on)."""
        self.flow_params = FlowParams.from_params(params)

    def set_misbehaviour(self, misbehaviour: Misbehaviour) -> None:
        self.misbehaviour = misbehaviour
        self._certs = None

    # --- what it presents -----------------------------------------------------------------
    def responder_certs(self, now: float) -> list[tuple[int, bytes]]:
        """The CERTS cell contents (cached; rebuilt when half a day old)."""
        if self._certs is None or now - self._certs[0] > CERTS_REFRESH or now < self._certs[0]:
            keys = self.keys
            certs = build_responder_certs(keys.rsa_identity, keys.ed_identity_seed,
                                          keys.ed_signing_seed, keys.tls_cert_der, now)
            if self.misbehaviour.bad_certs is not None:
                certs = corrupt_certs(certs, self.misbehaviour.bad_certs)
            self._certs = (now, certs)
        return self._certs[1]

    def descriptor(self) -> RelayInfo:
        cfg = self.config
        ipv6 = (self.host.ipv6, cfg.or_port) if self.host.ipv6 else None
        return RelayInfo(
            nickname=cfg.nickname, keys=self.keys, address=self.host.ipv4 or "",
            or_port=cfg.or_port, dir_port=cfg.dir_port, bandwidth=cfg.bandwidth,
            uptime=cfg.uptime, exit_policy=cfg.exit_policy, family=cfg.family,
            protocols=self.protocols, dir_cache=self.dir_cache is not None,
            version=cfg.version, host_name=self.host.name, ipv6=ipv6,
            is_authority=self.is_authority)

    def __repr__(self) -> str:
        return f"<RelayNode {self.nickname} {self.host.ipv4}:{self.config.or_port}>"
