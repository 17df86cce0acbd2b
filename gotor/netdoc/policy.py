"""Exit-policy summaries: ``accept|reject PortList`` (dir-spec §3.4.1 "p", §3.3 "p6", §3.8.2).

A summary says to which ports a relay allows exits to "most addresses":
either the listed ports (``accept``) or all ports but the listed ones
(``reject``).  ``PortList`` is ``PortOrRange ("," PortOrRange)*``, ports
1-65535, sorted ascending and compressed (dir-spec §3.8.2), which this parser
requires: ranges must be strictly increasing and not overlap.

:meth:`PortPolicy.summarize` is the authority side of §3.8.2: given the set of
accepted ports, choose the shorter of the accept- and reject-style
summaries (accept on ties; an allow-all policy is ``accept 1-65535`` and a
reject-all one ``reject 1-65535``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from gotor.errors import ProtocolError

__all__ = ["MAX_PORT", "PortPolicy"]

MAX_PORT = 65535
_PORT_RANGE = re.compile(r"([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?")


@dataclass(frozen=True)
class PortPolicy:
    """``accept`` (True) or reject the listed, sorted, disjoint inclusive port ranges."""

    accept: bool
    ranges: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        prev = 0
        for lo, hi in self.ranges:
            if not prev < lo <= hi <= MAX_PORT:
                raise ValueError(f"port ranges must be ascending and disjoint: {self.ranges}")
            prev = hi
        if not self.ranges:
            raise ValueError("a policy summary lists at least one port")

    @staticmethod
    def parse(text: str) -> PortPolicy:
        """Parse ``accept 80,443`` / ``reject 1-1024``; raises ProtocolError if malformed."""
        return _parse_cached(text)

    @classmethod
    def from_args(cls, args: tuple[str, ...]) -> PortPolicy:
        """From the arguments of a p/p6 item (extra arguments are ignored, per dir-spec §1.2)."""
        if len(args) < 2:
            raise ProtocolError("policy summary needs accept|reject and a port list")
        return _parse_cached(f"{args[0]} {args[1]}")

    @classmethod
    def reject_all(cls) -> PortPolicy:
        """What a missing p/p6 line means (dir-spec §3.3)."""
        return cls(False, ((1, MAX_PORT),))

    @classmethod
    def accept_all(cls) -> PortPolicy:
        return cls(True, ((1, MAX_PORT),))

    @classmethod
    def summarize(cls, accepted: Iterable[tuple[int, int]]) -> PortPolicy:
        """The dir-spec §3.8.2 summary of a policy accepting the given port ranges."""
        acc = _normalize(accepted)
        rej = _complement(acc)
        if not acc:
            return cls.reject_all()
        if not rej:
            return cls.accept_all()
        accept, reject = cls(True, acc), cls(False, rej)
        return accept if len(str(accept)) <= len(str(reject)) else reject

    def allows_port(self, port: int) -> bool:
        """Does this summary allow exits to ``port`` (for most addresses)?"""
        # The last range starting at or below port: (port, MAX_PORT + 1) sorts
        # after every (lo, hi) with lo <= port.
        k = bisect.bisect_right(self.ranges, (port, MAX_PORT + 1)) - 1
        listed = k >= 0 and port <= self.ranges[k][1]
        return listed == self.accept

    def allows_some_port(self) -> bool:
        """False only for policies that allow nothing (a non-exit)."""
        return self.accept or self.ranges != ((1, MAX_PORT),)

    def __str__(self) -> str:
        ports = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)
        return f"{'accept' if self.accept else 'reject'} {ports}"


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> PortPolicy:
    verb, sep, ports = text.partition(" ")
    if not sep or verb not in ("accept", "reject"):
        raise ProtocolError(f"policy summary must start with accept or reject: {text[:40]!r}")
    ranges: list[tuple[int, int]] = []
    for part in ports.split(","):
        m = _PORT_RANGE.fullmatch(part)
        if m is None:
            raise ProtocolError(f"bad port range {part[:20]!r} in policy summary")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo or hi > MAX_PORT:
            raise ProtocolError(f"bad port range {part!r} in policy summary")
        if ranges and lo <= ranges[-1][1]:
            raise ProtocolError(f"port ranges not ascending and disjoint at {part!r}")
        ranges.append((lo, hi))
    return PortPolicy(verb == "accept", tuple(ranges))


def _normalize(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if not 1 <= lo <= hi <= MAX_PORT:
            raise ValueError(f"bad port range {lo}-{hi}")
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out = []
    nxt = 1
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_PORT:
        out.append((nxt, MAX_PORT))
    return tuple(out)
