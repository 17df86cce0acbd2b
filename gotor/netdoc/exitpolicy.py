"""Full exit policies: the ``accept``/``reject`` lines of a server descriptor (dir-spec §2.1.1, §2.1.3).

A relay's descriptor lists its exit policy rule by rule::

    reject 0.0.0.0/8:*
    reject 94.242.246.23:*
    reject *:25
    accept *:*

Each rule is ``("accept" | "reject") addrspec ":" portspec``; they are tried
in order and the first that matches decides; "if no rule matches, the address
will be accepted" (dir-spec §2.1.1).  Consensuses and microdescriptors carry
only a port summary of this (:mod:`gotor.netdoc.policy`); this module is the
whole policy, for bridges' descriptors and for simnet relays.

Grammar (dir-spec §2.1.3)::

    addrspec ::= "*" | ip4 | ip4 "/" bits | ip4 "/" ip4mask | "[" ip6 "]" ("/" bits)?
    portspec ::= "*" | port | port "-" port

Port 0 is accepted in a rule ("Some implementations incorrectly generate ports
with value 0.  Implementations SHOULD accept this") but a connection to port 0
is never allowed.  A dotted-quad mask must be contiguous (C tor rejects the
others).  ``*`` is read as C tor reads it in descriptors: *any IPv4 address*;
IPv6 exits are governed by the separate ``ipv6-policy`` summary, and C tor
never writes IPv6 rules into descriptors (the grammar allows them, so they
parse, and they match only IPv6 addresses).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gotor.errors import LocalError, ProtocolError

__all__ = ["ExitPolicy", "PolicyRule", "ip_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_PORT = 65535
_PORTS = re.compile(r"(0|[1-9][0-9]{0,4})(?:-(0|[1-9][0-9]{0,4}))?")
_BITS = re.compile(r"0|[1-9][0-9]{0,2}")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_ALL_PORTS = (1, MAX_PORT)


@dataclass(frozen=True)
class PolicyRule:
    """One rule: accept or reject ``address/prefix`` (None: ``*``) on ports ``lo..hi``."""

    accept: bool
    address: IPAddress | None
    prefix: int
    ports: tuple[int, int] = _ALL_PORTS
    _network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        lo, hi = self.ports
        if not 0 <= lo <= hi <= MAX_PORT:
            raise ValueError(f"bad port range {lo}-{hi}")
        width = 0 if self.address is None else self.address.max_prefixlen
        if not 0 <= self.prefix <= width:
            raise ValueError(f"bad prefix length {self.prefix}")
        # Host bits beyond the prefix are allowed ("94.242.246.23/24") and ignored.
        network = None
        if self.address is not None:
            network = ipaddress.ip_network(f"{self.address}/{self.prefix}", strict=False)
        object.__setattr__(self, "_network", network)

    @classmethod
    def parse(cls, verb: str, pattern: str) -> PolicyRule:
        """From ``accept``/``reject`` and ``addrspec:portspec``; ProtocolError if malformed."""
        if verb not in ("accept", "reject"):
            raise ProtocolError(f"exit policy rule must be accept or reject, not {verb[:20]!r}")
        addr_text, sep, port_text = pattern.rpartition(":")
        if not sep:
            raise ProtocolError(f"exit pattern {pattern[:60]!r} has no ':port'")
        address, prefix = _parse_addrspec(addr_text)
        return cls(verb == "accept", address, prefix, _parse_portspec(port_text))

    def matches(self, address: IPAddress, port: int) -> bool:
        """Does this rule cover ``address:port``?"""
        if not self.ports[0] <= port <= self.ports[1]:
            return False
        if self._network is None:
            return address.version == 4
        return address.version == self._network.version and address in self._network

    def pattern(self) -> str:
        """``addrspec:portspec`` in canonical form."""
        return f"{_format_addrspec(self.address, self.prefix)}:{_format_portspec(self.ports)}"

    def __str__(self) -> str:
        return f"{'accept' if self.accept else 'reject'} {self.pattern()}"


@dataclass(frozen=True)
class ExitPolicy:
    """An ordered list of rules; the first match decides, no match means accept."""

    rules: tuple[PolicyRule, ...]

    @classmethod
    def parse(cls, lines: Sequence[str]) -> ExitPolicy:
        """From lines such as ``"reject *:25"`` (ProtocolError if one is malformed)."""
        rules = []
        for line in lines:
            verb, _, pattern = line.partition(" ")
            rules.append(PolicyRule.parse(verb, pattern))
        return cls(tuple(rules))

    @classmethod
    def reject_all(cls) -> ExitPolicy:
        return cls((PolicyRule(False, None, 0),))

    @classmethod
    def accept_all(cls) -> ExitPolicy:
        return cls((PolicyRule(True, None, 0),))

    def allows(self, address: str | IPAddress, port: int) -> bool:
        """Would a relay with this policy open a stream to ``address:port``?

        ``address`` is an IP address (LocalError for anything else: hostnames
        are resolved by the exit, so a client can only ask about addresses).
        """
        addr = ip_address(address)
        if not 1 <= port <= MAX_PORT:
            return False  # dir-spec §2.1.3: connections to port 0 are never permitted
        for rule in self.rules:
            if rule.matches(addr, port):
                return rule.accept
        return True

    def lines(self) -> list[str]:
        return [str(rule) for rule in self.rules]


def ip_address(address: str | IPAddress) -> IPAddress:
    """``address`` as an IP address object; LocalError if it is not one."""
    if not isinstance(address, str):
        return address
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise LocalError(f"not an IP address: {address[:60]!r}") from None


def _parse_addrspec(text: str) -> tuple[IPAddress | None, int]:
    if text == "*":
        return None, 0
    host, slash, mask = text.partition("/")
    if host.startswith("[") and host.endswith("]"):
        try:
            v6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ProtocolError(f"bad IPv6 address in exit pattern {text[:60]!r}") from None
        return v6, _prefix(mask, 128, text) if slash else 128
    if _IPV4.fullmatch(host) is None or any(int(o) > 255 for o in host.split(".")):
        raise ProtocolError(f"bad address in exit pattern {text[:60]!r}")
    v4 = ipaddress.IPv4Address(host)
    if not slash:
        return v4, 32
    if _IPV4.fullmatch(mask) is not None:
        return v4, _dotted_mask_bits(mask, text)
    return v4, _prefix(mask, 32, text)


def _prefix(text: str, width: int, pattern: str) -> int:
    if _BITS.fullmatch(text) is None or int(text) > width:
        raise ProtocolError(f"bad mask length in exit pattern {pattern[:60]!r}")
    return int(text)


def _dotted_mask_bits(mask: str, pattern: str) -> int:
    octets = [int(o) for o in mask.split(".")]
    if any(o > 255 for o in octets):
        raise ProtocolError(f"bad mask in exit pattern {pattern[:60]!r}")
    value = int.from_bytes(bytes(octets), "big")
    bits = 32 - (~value & 0xFFFFFFFF).bit_length()
    if value != (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF:
        raise ProtocolError(f"non-contiguous mask in exit pattern {pattern[:60]!r}")
    return bits


def _parse_portspec(text: str) -> tuple[int, int]:
    if text == "*":
        return _ALL_PORTS
    m = _PORTS.fullmatch(text)
    if m is None:
        raise ProtocolError(f"bad port range {text[:20]!r} in exit pattern")
    lo = int(m[1])
    hi = int(m[2]) if m[2] is not None else lo
    if not lo <= hi <= MAX_PORT:
        raise ProtocolError(f"bad port range {text!r} in exit pattern")
    return lo, hi


def _format_addrspec(address: IPAddress | None, prefix: int) -> str:
    if address is None:
        return "*"
    text = f"[{address}]" if address.version == 6 else str(address)
    return text if prefix == address.max_prefixlen else f"{text}/{prefix}"


def _format_portspec(ports: tuple[int, int]) -> str:
    lo, hi = ports
    if ports == _ALL_PORTS:
        return "*"
    return str(lo) if lo == hi else f"{lo}-{hi}"
