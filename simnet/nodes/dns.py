"""The simulated DNS that emulated exits resolve through (tor-spec §6.2, §6.4).

One shared name -> IPv4 map (the topology fills it with its web servers); an
exit asks it for BEGIN hostnames and RESOLVE requests, and answers reverse
(``in-addr.arpa``) lookups from the same map.  Resolution takes ``delay``
virtual seconds, as an exit's resolver would.  Names are case-insensitive
(C tor lower-cases them before resolving); an IP literal resolves to itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from gotor.errors import LocalError

#: What emulated exits put in CONNECTED and RESOLVED (C tor clips TTLs to 5 min .. 1 h).
DEFAULT_TTL = 300


@dataclass
class Dns:
    """A mutable name -> addresses map with a lookup delay (see the module docstring)."""

    records: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ttl: int = DEFAULT_TTL
    delay: float = 0.005

    def add(self, name: str, *addresses: str) -> None:
        for addr in addresses:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                raise LocalError(f"bad address {addr!r} for {name}") from None
        self.records[name.lower().rstrip(".")] = tuple(addresses)

    def lookup(self, name: str) -> tuple[str, ...] | None:
        """Addresses of ``name`` (an IP literal gives itself); None if it does not exist."""
        try:
            return (str(ipaddress.ip_address(name.strip("[]"))),)
        except ValueError:
            pass
        return self.records.get(name.lower().rstrip("."))

    def reverse(self, address: str) -> str | None:
        """The first name whose records include ``address`` (in sorted order), if any."""
        for name in sorted(self.records):
            if address in self.records[name]:
                return name
        return None


def reverse_pointer_address(name: str) -> str | None:
    """``d.c.b.a.in-addr.arpa`` -> ``a.b.c.d``; None for any other name."""
    suffix = ".in-addr.arpa"
    lowered = name.lower().rstrip(".")
    if not lowered.endswith(suffix):
        return None
    octets = lowered[: -len(suffix)].split(".")
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(octets))))
    except ValueError:
        return None
