"""Subprotocol version lists: the "proto"/"pr" entries of dir-spec §2.1.1.

``Link=1-5 LinkAuth=1,3 Relay=1-4`` says which versions of each subprotocol
(tor-spec §9) a relay supports, or (in a consensus preamble,
dir-spec §3.4.1) which the network recommends or requires.  Versions are
integers 0-63 (dir-spec: "Ints must be no larger than 63"), so each
protocol's set is kept as a 64-bit mask and ``supports`` is one shift.

Parsing is cached: a consensus repeats a handful of distinct ``pr`` lines
thousands of times, and :class:`Protocols` is immutable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from gotor.errors import ProtocolError

__all__ = ["MAX_VERSION", "Protocols"]

MAX_VERSION = 63
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_RANGE = re.compile(r"(0|[1-9][0-9]?)(?:-(0|[1-9][0-9]?))?")


class Protocols(Mapping[str, frozenset[int]]):
    """An immutable map from subprotocol name to the set of its versions."""

    __slots__ = ("_masks",)

    def __init__(self, masks: Mapping[str, int]) -> None:
        self._masks = {name: masks[name] for name in sorted(masks)}

    @classmethod
    def from_versions(cls, versions: Mapping[str, Iterable[int]]) -> Protocols:
        """From ``{"Link": {1, 2, 3}}``-style sets (each version 0-63)."""
        masks = {}
        for name, vs in versions.items():
            mask = 0
            for v in vs:
                if not 0 <= v <= MAX_VERSION:
                    raise ValueError(f"{name} version {v} out of range")
                mask |= 1 << v
            masks[name] = mask
        return cls(masks)

    @staticmethod
    def parse(text: str) -> Protocols:
        """Parse ``Name=Ranges Name=Ranges ...``; raises ProtocolError when malformed."""
        return _parse_cached(text)

    def supports(self, name: str, version: int) -> bool:
        """Does the set include ``name``=``version`` (e.g. Relay=4)?"""
        return 0 <= version <= MAX_VERSION and bool((self._masks.get(name, 0) >> version) & 1)

    def supports_all(self, required: Protocols) -> bool:
        """True if every version in ``required`` is in this set too."""
        return all(mask & ~self._masks.get(n, 0) == 0 for n, mask in required._masks.items())

    def missing(self, required: Protocols) -> Protocols:
        """The versions of ``required`` that this set lacks (empty if none)."""
        out = {n: m & ~self._masks.get(n, 0) for n, m in required._masks.items()}
        return Protocols({n: m for n, m in out.items() if m})

    def __getitem__(self, name: str) -> frozenset[int]:
        mask = self._masks[name]
        return frozenset(v for v in range(MAX_VERSION + 1) if (mask >> v) & 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Protocols) and other._masks == self._masks

    def __hash__(self) -> int:
        return hash(tuple(self._masks.items()))

    def __str__(self) -> str:
        """Canonical form: names sorted, versions ascending, ranges compressed."""
        return " ".join(f"{n}={_format_mask(m)}" for n, m in self._masks.items())

    def __repr__(self) -> str:
        return f"Protocols({str(self)!r})"


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> Protocols:
    masks: dict[str, int] = {}
    for entry in text.split():
        name, eq, ranges = entry.partition("=")
        if not eq or _NAME.fullmatch(name) is None:
            raise ProtocolError(f"bad protocol entry {entry[:40]!r}")
        if name in masks:
            raise ProtocolError(f"protocol {name} listed twice")
        masks[name] = _parse_ranges(name, ranges)
    return Protocols(masks)


def _parse_ranges(name: str, text: str) -> int:
    mask = 0
    if not text:
        return mask  # "Values" may be empty (dir-spec §2.1.1)
    for part in text.split(","):
        m = _RANGE.fullmatch(part)
        if m is None:
            raise ProtocolError(f"bad version range {part[:20]!r} for {name}")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo or hi > MAX_VERSION:
            raise ProtocolError(f"bad version range {part!r} for {name}")
        mask |= ((1 << (hi - lo + 1)) - 1) << lo
    return mask


def _format_mask(mask: int) -> str:
    parts = []
    v = 0
    while mask >> v:
        if not (mask >> v) & 1:
            v += 1
            continue
        lo = v
        while (mask >> (v + 1)) & 1:
            v += 1
        parts.append(str(lo) if v == lo else f"{lo}-{v}")
        v += 1
    return ",".join(parts)
