"""The directory client's configuration: trusted authorities and bootstrap sources.

:class:`DirConfig` says which v3 identities count for the consensus quorum
and which relays to ask for directory documents before there is a
consensus.  :func:`parse_dir_authority` reads C tor's ``DirAuthority`` lines
(the format of tor's ``auth_dirs.inc`` and of torrc, tor(1) "DirAuthority"):

    [DirAuthority] [nickname] [flags] address:dirport fingerprint

with flags ``orport=N``, ``v3ident=HEX`` (both needed here), ``ipv6=[addr]:port``
and words such as ``no-v2``; the relay fingerprint may be written in groups
of four hex digits.  An authority without ``v3ident`` (a bridge authority)
is not a directory authority for us and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gotor.dir.fetch import DirSource, SourceKind
from gotor.errors import LocalError

__all__ = ["DirConfig", "parse_dir_authority"]


@dataclass(frozen=True)
class DirConfig:
    """What the directory client trusts and where it starts.

    ``authorities``: the v3 identities (key-certificate fingerprints) whose
    signatures count for the quorum — more than half of them must sign.
    ``sources``: authorities' and fallback directories' relay addresses to
    bootstrap from.
    """

    authorities: tuple[bytes, ...]
    sources: tuple[DirSource, ...]
    request_timeout: float = 60.0
    parallel_fetches: int = 3
    refresh_caches: int = 3  # caches from the consensus tried first when refreshing
    retry_cap: int = 3600  # longest wait between failed refresh attempts (seconds)

    def __post_init__(self) -> None:
        if not self.authorities or any(len(a) != 20 for a in self.authorities):
            raise LocalError("DirConfig needs the 20-byte v3 identities of the authorities")
        if not self.sources:
            raise LocalError("DirConfig needs at least one directory source")
        if self.parallel_fetches < 1 or self.request_timeout <= 0:
            raise LocalError("DirConfig needs parallel_fetches >= 1 and a positive timeout")

    @classmethod
    def from_dir_authorities(cls, lines: Iterable[str], **options: Any) -> DirConfig:
        """A configuration trusting (and bootstrapping from) these ``DirAuthority`` lines."""
        parsed = [parse_dir_authority(line) for line in lines]
        return cls(
            authorities=tuple(v3 for v3, _ in parsed),
            sources=tuple(source for _, source in parsed),
            **options,
        )


def parse_dir_authority(line: str) -> tuple[bytes, DirSource]:
    """One ``DirAuthority`` line: (v3 identity, where to fetch from over its ORPort)."""
    words = line.split()
    if words[:1] == ["DirAuthority"]:
        words = words[1:]
    addr_at = next((i for i, w in enumerate(words) if ":" in w and "=" not in w), None)
    if addr_at is None:
        raise LocalError(f"DirAuthority line without address:port: {line[:80]!r}")
    head, address, fingerprint = words[:addr_at], words[addr_at], "".join(words[addr_at + 1 :])
    nickname = head[0] if head and "=" not in head[0] else "authority"
    flags = dict(w.split("=", 1) for w in head if "=" in w)
    try:
        rsa_id = _hex20(fingerprint, "fingerprint")
        v3 = _hex20(flags.get("v3ident", ""), "v3ident")
        or_port = int(flags["orport"])
    except (KeyError, ValueError):
        raise LocalError(f"DirAuthority line needs orport= and v3ident=: {line[:80]!r}") from None
    host = address.rsplit(":", 1)[0]
    if not 0 < or_port < 65536 or not host:
        raise LocalError(f"bad address or orport in {line[:80]!r}")
    return v3, DirSource(nickname, rsa_id, (host, or_port), kind=SourceKind.AUTHORITY)


def _hex20(text: str, what: str) -> bytes:
    if len(text) != 40:
        raise ValueError(f"{what} must be 40 hex digits")
    return bytes.fromhex(text)
