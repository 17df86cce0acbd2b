"""What a circuit needs to know about its hops and the network's parameters.

:class:`HopSpec` names a relay well enough to create a circuit to it (CREATE2) or extend
to it (EXTEND2 link specifiers, tor-spec §5.1.2).  :class:`CircParams` holds the
consensus parameters that govern circuits (dir-spec §3.4.1 "params", tor-spec §7.3), with
:meth:`CircParams.from_consensus` applying C tor's defaults and bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from gotor.cells.linkspec import (
    LinkSpec,
    LinkSpecEd25519Id,
    LinkSpecIPv4,
    LinkSpecIPv6,
    LinkSpecRsaId,
)
from gotor.errors import LocalError
from gotor.link.channel import ChanTarget


@dataclass(frozen=True)
class HopSpec:
    """Everything needed to create a circuit to a relay or extend one to it."""

    rsa_id: bytes
    ed_id: bytes | None
    ntor_key: bytes  # the relay's 32-byte curve25519 onion key
    ipv4: tuple[str, int]
    ipv6: tuple[str, int] | None = None
    ntor_v3: bool = False  # the relay advertises Relay=4: use the ntor-v3 handshake

    def __post_init__(self) -> None:
        if len(self.rsa_id) != 20 or len(self.ntor_key) != 32:
            raise LocalError("a HopSpec needs a 20-byte RSA id and a 32-byte ntor key")
        if self.ed_id is not None and len(self.ed_id) != 32:
            raise LocalError("a HopSpec's Ed25519 id must be 32 bytes")

    @property
    def name(self) -> str:
        return self.rsa_id.hex().upper()

    def chan_target(self) -> ChanTarget:
        """Where a channel to this relay goes (its IPv4 ORPort)."""
        return ChanTarget(self.ipv4[0], self.ipv4[1], self.rsa_id, self.ed_id)

    @property
    def uses_ntor_v3(self) -> bool:
        # ntor-v3 names the relay by its Ed25519 identity (proposal 332), so without
        # one we fall back to ntor.
        return self.ntor_v3 and self.ed_id is not None

    def link_specs(self) -> tuple[LinkSpec, ...]:
        """EXTEND2 link specifiers in the order tor-spec §5.1.2 asks for: [00] [02] [03] [01]."""
        specs: list[LinkSpec] = [
            LinkSpecIPv4(IPv4Address(self.ipv4[0]), self.ipv4[1]),
            LinkSpecRsaId(self.rsa_id),
        ]
        if self.ed_id is not None:
            specs.append(LinkSpecEd25519Id(self.ed_id))
        if self.ipv6 is not None:
            specs.append(LinkSpecIPv6(IPv6Address(self.ipv6[0].strip("[]")), self.ipv6[1]))
        return tuple(specs)


#: tor-spec §7.3: the circuit window starts at 'circwindow' (default, and maximum, 1000).
CIRCWINDOW_MAX = 1000
CIRCWINDOW_MIN = 100
#: The highest authenticated-SENDME version we speak (proposal 289).
SENDME_MAX_VERSION = 1


def _param(params: Mapping[str, int], name: str, default: int, low: int, high: int) -> int:
    # As C tor's networkstatus_get_param: absent gives the default, out of range is clamped.
    value = params.get(name, default)
    return min(max(value, low), high)


@dataclass(frozen=True)
class CircParams:
    """Consensus parameters for circuits (defaults as tor-spec and C tor).

    The circuit SENDME increment is not here: with Tor's fixed-window flow control it is
    always 100 (tor-spec §7.3).  The consensus ``sendme_inc`` parameter belongs to
    congestion control (proposal 324), which gotor does not negotiate.
    """

    circwindow: int = CIRCWINDOW_MAX
    sendme_emit_min_version: int = 0
    sendme_accept_min_version: int = 0
    build_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not CIRCWINDOW_MIN <= self.circwindow <= CIRCWINDOW_MAX:
            raise LocalError(f"circwindow {self.circwindow} outside 100..1000")
        if self.build_timeout <= 0:
            raise LocalError("build_timeout must be positive")

    @classmethod
    def from_consensus(cls, params: Mapping[str, int]) -> CircParams:
        """From a consensus "params" line: circwindow, sendme_emit_min_version,
        sendme_accept_min_version, cbtinitialtimeout (milliseconds)."""
        return cls(
            circwindow=_param(params, "circwindow", CIRCWINDOW_MAX, CIRCWINDOW_MIN,
                              CIRCWINDOW_MAX),
            sendme_emit_min_version=_param(params, "sendme_emit_min_version", 0, 0, 255),
            sendme_accept_min_version=_param(params, "sendme_accept_min_version", 0, 0, 255),
            build_timeout=_param(params, "cbtinitialtimeout", 60_000, 10, 2**31 - 1) / 1000,
        )
