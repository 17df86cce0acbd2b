"""Exit policies of emulated relays: full rules, their evaluation, and the "p" summary.

A relay's exit policy is an ordered list of ``accept|reject ADDR[/BITS]:PORT[-PORT]``
rules (dir-spec §2.1.1 "accept"/"reject"; ``*`` for any address or port).  The
first rule that matches an (address, port) decides; if none does, the
connection is refused (our policies always end with an explicit catch-all, as
C tor's default policy does).

Emulated exits are IPv4-only (C tor without ``IPv6Exit``), so an IPv6 target is
always refused and the ``p6`` summary is reject-all.

:meth:`ExitPolicy.summary` is the authority's "p" line (dir-spec §3.4.2): the
ports to which the policy permits "most" addresses.  Simplification of C tor's
``policy_summarize``, documented here: an ``accept`` counts for a port only if
it is for every address (``*``); a ``reject`` counts only if it blocks more than
2^25 addresses (prefix length 6 or shorter); smaller rejects are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from gotor.errors import LocalError
from gotor.netdoc.policy import MAX_PORT, PortPolicy

_ANY_NET = ipaddress.IPv4Network("0.0.0.0/0")
#: "Most addresses" (dir-spec §3.4.2): a reject blocking at most 2^25 addresses is ignored.
_MOST_PREFIX = 6


@dataclass(frozen=True)
class PolicyRule:
    accept: bool
    network: ipaddress.IPv4Network
    ports: tuple[int, int]

    @classmethod
    def parse(cls, text: str) -> PolicyRule:
        verb, _, target = text.strip().partition(" ")
        if verb not in ("accept", "reject"):
            raise LocalError(f"exit policy rule must start with accept or reject: {text!r}")
        addr, colon, ports = target.strip().rpartition(":")
        if not colon:
            raise LocalError(f"exit policy rule without a port: {text!r}")
        try:
            network = _ANY_NET if addr == "*" else ipaddress.IPv4Network(addr, strict=False)
        except ValueError:
            raise LocalError(f"bad address in exit policy rule {text!r}") from None
        return cls(verb == "accept", network, _port_range(ports, text))

    def matches(self, ip: ipaddress.IPv4Address, port: int) -> bool:
        return ip in self.network and self.ports[0] <= port <= self.ports[1]

    def __str__(self) -> str:
        addr = "*" if self.network == _ANY_NET else str(self.network)
        lo, hi = self.ports
        ports = "*" if (lo, hi) == (1, MAX_PORT) else str(lo) if lo == hi else f"{lo}-{hi}"
        return f"{'accept' if self.accept else 'reject'} {addr}:{ports}"


def _port_range(text: str, rule: str) -> tuple[int, int]:
    if text == "*":
        return (1, MAX_PORT)
    lo_text, _, hi_text = text.partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text or lo_text)
    except ValueError:
        raise LocalError(f"bad port in exit policy rule {rule!r}") from None
    if not 1 <= lo <= hi <= MAX_PORT:
        raise LocalError(f"bad port range in exit policy rule {rule!r}")
    return (lo, hi)


@dataclass(frozen=True)
class ExitPolicy:
    """An ordered exit policy (see the module docstring)."""

    rules: tuple[PolicyRule, ...]

    @classmethod
    def parse(cls, rules: Iterable[str] | str) -> ExitPolicy:
        """From rule strings (or one comma-separated string, as in a torrc ExitPolicy)."""
        items = rules.split(",") if isinstance(rules, str) else list(rules)
        return cls(tuple(PolicyRule.parse(r) for r in items if r.strip()))

    @classmethod
    def reject_all(cls) -> ExitPolicy:
        return cls.parse(["reject *:*"])

    @classmethod
    def accept_all(cls) -> ExitPolicy:
        return cls.parse(["accept *:*"])

    def allows(self, address: str, port: int) -> bool:
        """May this exit connect to ``address:port``?  (IPv6 and bad addresses: no.)"""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if not isinstance(ip, ipaddress.IPv4Address):
            return False
        for rule in self.rules:
            if rule.matches(ip, port):
                return rule.accept
        return False

    def may_allow_port(self, port: int) -> bool:
        """Could some address be allowed on ``port``?  (False: refuse before resolving.)"""
        for rule in self.rules:
            if rule.ports[0] <= port <= rule.ports[1]:
                if rule.accept:
                    return True
                if rule.network == _ANY_NET:
                    return False
        return False

    def summary(self) -> PortPolicy:
        """The dir-spec §3.4.2 "p" summary (see the module docstring for the rule)."""
        accepted: list[tuple[int, int]] = []
        for lo, hi in self._segments():
            for rule in self.rules:
                if not (rule.ports[0] <= lo and hi <= rule.ports[1]):
                    continue
                if rule.accept and rule.network == _ANY_NET:
                    accepted.append((lo, hi))
                    break
                if not rule.accept and rule.network.prefixlen <= _MOST_PREFIX:
                    break
        return PortPolicy.summarize(accepted)

    def _segments(self) -> list[tuple[int, int]]:
        """Port ranges inside which every rule either covers all ports or none."""
        cuts = {1, MAX_PORT + 1}
        for rule in self.rules:
            cuts.update((rule.ports[0], rule.ports[1] + 1))
        edges = sorted(cuts)
        return [(a, b - 1) for a, b in pairwise(edges)]

    def is_exit(self) -> bool:
        """dir-spec §3.4.2 "Exit": exits to most addresses on both ports 80 and 443."""
        summary = self.summary()
        return summary.allows_port(80) and summary.allows_port(443)

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.rules)
