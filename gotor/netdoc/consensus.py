"""Consensus network-status documents, both flavours (dir-spec §3.4.1, §3.9).

A consensus is a preamble, one section per contributing authority
(``dir-source``/``contact``/``vote-digest``), one *router status entry* per
relay (starting at ``r``), and a footer (``directory-footer``,
``bandwidth-weights``, then one or more ``directory-signature`` items).

Two flavours share the format (dir-spec §3.9): ``ns`` (the unflavoured one,
first line ``network-status-version 3``) lists each relay's descriptor digest
in its ``r`` line and an exit-policy summary in ``p``; ``microdesc`` (first
line ``network-status-version 3 microdesc``) drops both and adds the relay's
microdescriptor digest in ``m``.

:func:`parse_consensus` returns an :class:`UnverifiedConsensus`; its contents
(:class:`Consensus`) come out of :meth:`UnverifiedConsensus.verify`, which
checks the signatures against authority certificates and the quorum rule,
and the validity window when given ``now``.  :meth:`UnverifiedConsensus.check_signatures`
gives the per-signature :class:`SignatureReport` without judging it, for
tools that print counts even when the quorum fails.

Parsing is strict where dir-spec is: router entries must be sorted by
identity with no duplicates (dir-spec §3.4.1), the freshness times must be
ordered, only ``vote-status consensus`` is accepted (votes are an authority
matter).  Unknown keywords are kept and ignored (dir-spec §1.2); keywords of
one section appearing in another are errors.

Router entries in the shape C tor writes take a fast path that gives the same
results as the general parser, which handles everything else and reports
errors (see the note above :func:`_parse_fast`).
"""

from __future__ import annotations

import binascii
import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TypeVar

from gotor.errors import DocumentError, ProtocolError
from gotor.netdoc.authcert import AuthCert
from gotor.netdoc.checked import Tolerance, Unverified, ValidityWindow
from gotor.netdoc.fields import (
    INT32_MAX,
    b64_arg,
    hex_arg,
    int_arg,
    ipv4_arg,
    kv_ints,
    or_address_arg,
    parse_int,
    parse_or_address,
    parse_time,
    time_arg,
)
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols
from gotor.netdoc.rules import Count, ObjectRule, Rule, Section, SectionRules, reserve_each_other
from gotor.netdoc.sigcheck import (
    DIGESTS,
    DirectorySignature,
    QuorumError,
    SignatureCheck,
    SignatureReport,
    SignatureStatus,
    check_signatures,
)
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "Bandwidth",
    "Consensus",
    "DirSource",
    "DirectorySignature",
    "Flavor",
    "Kw",
    "QuorumError",
    "RouterStatus",
    "SharedRandValue",
    "SignatureCheck",
    "SignatureReport",
    "SignatureStatus",
    "UnverifiedConsensus",
    "parse_consensus",
]

_U32_MAX = 2**32 - 1
_BANDWIDTH_KEYS = {"Bandwidth": 0, "Measured": 1, "Unmeasured": 2}
_T = TypeVar("_T")
_V = TypeVar("_V")


class Flavor(enum.Enum):
    NS = "ns"
    MICRODESC = "microdesc"

    @property
    def default_algorithm(self) -> str:
        """The digest C tor signs this flavour with (dir-spec §3.4.1, §3.9.2)."""
        return "sha1" if self is Flavor.NS else "sha256"


class Kw:
    """Keyword names (shared with the builder)."""

    VERSION = "network-status-version"
    VOTE_STATUS = "vote-status"
    METHOD = "consensus-method"
    VALID_AFTER = "valid-after"
    FRESH_UNTIL = "fresh-until"
    VALID_UNTIL = "valid-until"
    VOTING_DELAY = "voting-delay"
    CLIENT_VERSIONS = "client-versions"
    SERVER_VERSIONS = "server-versions"
    PACKAGE = "package"
    KNOWN_FLAGS = "known-flags"
    RECOMMENDED_CLIENT = "recommended-client-protocols"
    RECOMMENDED_RELAY = "recommended-relay-protocols"
    REQUIRED_CLIENT = "required-client-protocols"
    REQUIRED_RELAY = "required-relay-protocols"
    PARAMS = "params"
    SRV_PREVIOUS = "shared-rand-previous-value"
    SRV_CURRENT = "shared-rand-current-value"
    DIR_SOURCE = "dir-source"
    CONTACT = "contact"
    VOTE_DIGEST = "vote-digest"
    R = "r"
    A = "a"
    S = "s"
    V = "v"
    PR = "pr"
    W = "w"
    P = "p"
    M = "m"
    FOOTER = "directory-footer"
    WEIGHTS = "bandwidth-weights"
    SIGNATURE = "directory-signature"


#: The preamble's four protocol lines, in document order, and their Consensus fields.
PROTOCOL_LINES = (
    (Kw.RECOMMENDED_CLIENT, "recommended_client_protocols"),
    (Kw.RECOMMENDED_RELAY, "recommended_relay_protocols"),
    (Kw.REQUIRED_CLIENT, "required_client_protocols"),
    (Kw.REQUIRED_RELAY, "required_relay_protocols"),
)


# --- data ------------------------------------------------------------------


@dataclass(frozen=True)
class DirSource:
    """An authority that contributed to the consensus.

    ``contact`` and ``vote_digest`` are None only for ``-legacy`` entries
    (dir-spec §3.4.1: those have no contact or vote-digest lines).
    """

    nickname: str
    identity: bytes
    address: str
    ip: str
    dir_port: int
    or_port: int
    contact: str | None
    vote_digest: bytes | None

    @property
    def is_legacy(self) -> bool:
        return self.nickname.endswith("-legacy")


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A ``w`` line: the weight (kilobytes/s), and whether it was measured."""

    bandwidth: int
    measured: int | None = None
    unmeasured: bool = False


@dataclass(frozen=True, slots=True)
class RouterStatus:
    """One router status entry.

    ``descriptor_digest`` (SHA-1 of the server descriptor) and ``policy`` occur
    in the ns flavour; ``md_digest`` (SHA-256 of the microdescriptor) in the
    microdesc flavour.  ``addresses`` are the ``a`` lines (usually one IPv6
    ORPort); the ``r`` line's IPv4 address is ``address``/``or_port``.
    ``version`` is the ``v`` line's words joined by single spaces.
    """

    nickname: str
    identity: bytes
    published: int
    address: str
    or_port: int
    dir_port: int
    flags: frozenset[str]
    descriptor_digest: bytes | None = None
    md_digest: bytes | None = None
    addresses: tuple[tuple[str, int], ...] = ()
    version: str | None = None
    protocols: Protocols | None = None
    bandwidth: Bandwidth | None = None
    policy: PortPolicy | None = None

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    def supports(self, protocol: str, version: int) -> bool:
        """Does the ``pr`` line list ``protocol``=``version`` (False if no ``pr`` line)?"""
        return self.protocols is not None and self.protocols.supports(protocol, version)

    @property
    def or_addresses(self) -> tuple[tuple[str, int], ...]:
        """Every advertised ORPort: the ``r`` line's first, then the ``a`` lines."""
        return ((self.address, self.or_port), *self.addresses)


@dataclass(frozen=True)
class SharedRandValue:
    """A ``shared-rand-*-value`` line: how many reveals, and the 32-byte value."""

    n_reveals: int
    value: bytes


@dataclass(frozen=True)
class Consensus:
    """The contents of a consensus document (either flavour)."""

    flavor: Flavor
    consensus_method: int
    valid_after: int
    fresh_until: int
    valid_until: int
    authorities: tuple[DirSource, ...]
    routers: tuple[RouterStatus, ...]
    voting_delay: tuple[int, int] = (300, 300)
    client_versions: tuple[str, ...] | None = None
    server_versions: tuple[str, ...] | None = None
    packages: tuple[str, ...] = ()
    known_flags: tuple[str, ...] = ()
    recommended_client_protocols: Protocols | None = None
    recommended_relay_protocols: Protocols | None = None
    required_client_protocols: Protocols | None = None
    required_relay_protocols: Protocols | None = None
    params: Mapping[str, int] = field(default_factory=dict)
    shared_rand_previous: SharedRandValue | None = None
    shared_rand_current: SharedRandValue | None = None
    bandwidth_weights: Mapping[str, int] | None = None
    signatures: tuple[DirectorySignature, ...] = ()

    @property
    def validity(self) -> ValidityWindow:
        return ValidityWindow(self.valid_after, self.valid_until)

    def param(self, name: str, default: int, lo: int, hi: int) -> int:
        """A consensus parameter, clamped to [lo, hi] as C tor does; ``default`` if absent."""
        value = self.params.get(name, default)
        return min(max(value, lo), hi)


# --- rules -----------------------------------------------------------------

_SIG_TAGS = ("SIGNATURE",)

_PREAMBLE = SectionRules(
    "consensus preamble",
    [
        Rule(Kw.VERSION, Count.ONCE, min_args=1),
        Rule(Kw.VOTE_STATUS, Count.ONCE, min_args=1),
        Rule(Kw.METHOD, Count.AT_MOST_ONCE, min_args=1, max_args=1),
        Rule(Kw.VALID_AFTER, Count.ONCE, min_args=2),
        Rule(Kw.FRESH_UNTIL, Count.ONCE, min_args=2),
        Rule(Kw.VALID_UNTIL, Count.ONCE, min_args=2),
        Rule(Kw.VOTING_DELAY, Count.ONCE, min_args=2),
        Rule(Kw.CLIENT_VERSIONS, Count.AT_MOST_ONCE),
        Rule(Kw.SERVER_VERSIONS, Count.AT_MOST_ONCE),
        Rule(Kw.PACKAGE, Count.ANY, min_args=4),
        Rule(Kw.KNOWN_FLAGS, Count.ONCE),
        *(Rule(kw, Count.AT_MOST_ONCE) for kw, _ in PROTOCOL_LINES),
        Rule(Kw.PARAMS, Count.AT_MOST_ONCE),
        Rule(Kw.SRV_PREVIOUS, Count.AT_MOST_ONCE, min_args=2),
        Rule(Kw.SRV_CURRENT, Count.AT_MOST_ONCE, min_args=2),
    ],
    first=Kw.VERSION,
)
_AUTHORITY = SectionRules(
    "consensus authority section",
    [
        Rule(Kw.DIR_SOURCE, Count.ONCE, min_args=6),
        Rule(Kw.CONTACT, Count.AT_MOST_ONCE),
        Rule(Kw.VOTE_DIGEST, Count.AT_MOST_ONCE, min_args=1),
    ],
    first=Kw.DIR_SOURCE,
)
_ROUTER_COMMON = [
    Rule(Kw.A, Count.ANY, min_args=1),
    Rule(Kw.S, Count.ONCE),
    Rule(Kw.V, Count.AT_MOST_ONCE),
    Rule(Kw.PR, Count.AT_MOST_ONCE),
    Rule(Kw.W, Count.AT_MOST_ONCE, min_args=1),
    Rule(Kw.P, Count.AT_MOST_ONCE, min_args=2),
]
_ROUTER_NS = SectionRules(
    "router status entry", [Rule(Kw.R, Count.ONCE, min_args=8), *_ROUTER_COMMON], first=Kw.R
)
_ROUTER_MD = SectionRules(
    "router status entry",
    [Rule(Kw.R, Count.ONCE, min_args=7), Rule(Kw.M, Count.ONCE, min_args=1), *_ROUTER_COMMON],
    first=Kw.R,
)
_FOOTER = SectionRules(
    "consensus footer",
    [
        Rule(Kw.FOOTER, Count.ONCE, max_args=0),
        Rule(Kw.WEIGHTS, Count.AT_MOST_ONCE),
        Rule(
            Kw.SIGNATURE, Count.AT_LEAST_ONCE, min_args=2, obj=ObjectRule.REQUIRED, tags=_SIG_TAGS
        ),
    ],
    first=Kw.FOOTER,
    last=(Kw.SIGNATURE,),
)
_RULES = {
    Flavor.NS: reserve_each_other(_PREAMBLE, _AUTHORITY, _ROUTER_NS, _FOOTER),
    Flavor.MICRODESC: reserve_each_other(_PREAMBLE, _AUTHORITY, _ROUTER_MD, _FOOTER),
}
_FLAVORS = {"ns": Flavor.NS, "microdesc": Flavor.MICRODESC}
# Section boundaries: the keyword that opens each section after the preamble.
_ENDS_PREAMBLE = frozenset({Kw.DIR_SOURCE, Kw.R, Kw.FOOTER, Kw.SIGNATURE})
_ENDS_AUTHORITIES = frozenset({Kw.R, Kw.FOOTER, Kw.SIGNATURE})
_ENDS_ROUTERS = frozenset({Kw.FOOTER, Kw.SIGNATURE})


# --- parsing ---------------------------------------------------------------


def parse_consensus(data: bytes) -> UnverifiedConsensus:
    """Parse a consensus of either flavour; raises DocumentError if malformed."""
    raw = bytes(data)
    try:
        fast = _parse_fast(raw)
    except ProtocolError:
        fast = None  # the general path below raises the precise error
    return fast if fast is not None else _parse_general(raw)


def _parse_general(raw: bytes) -> UnverifiedConsensus:
    """The reference parser: every item tokenized and checked against its section's rules."""
    items = tokenize(raw)
    if not items:
        raise DocumentError("empty document")
    flavor = _flavor(items[0])
    preamble_rules, authority_rules, router_rules, footer_rules = _RULES[flavor]
    i = _next_boundary(items, 0, _ENDS_PREAMBLE)
    j = _next_boundary(items, i, _ENDS_AUTHORITIES)
    k = _next_boundary(items, j, _ENDS_ROUTERS)
    preamble = preamble_rules.check(items[:i])
    if i == j:
        raise items[min(i, len(items) - 1)].error("consensus has no dir-source section")
    authorities = _authorities(authority_rules, items[i:j])
    routers = _routers(router_rules, items[j:k], flavor)
    if k == len(items):
        raise DocumentError("consensus has no directory-footer", items[-1].line)
    footer = footer_rules.check(items[k:])
    consensus = _consensus(preamble, flavor, authorities, routers, footer)
    return UnverifiedConsensus(consensus, _signed_part(raw, items[0].start, footer, 0))


def _signed_part(raw: bytes, begin: int, footer: Section, footer_offset: int) -> bytes:
    """The signed bytes; ``footer_offset``: where the footer items' offsets count from."""
    end = footer_offset + footer.all(Kw.SIGNATURE)[0].start
    # dir-spec §3.4.1: the digest runs "through the space after directory-signature".
    return raw[begin : end + len(Kw.SIGNATURE) + 1]


def _next_boundary(items: list[Item], start: int, keywords: frozenset[str]) -> int:
    for n in range(start, len(items)):
        if items[n].keyword in keywords:
            return n
    return len(items)


def _flavor(first: Item) -> Flavor:
    if first.keyword != Kw.VERSION:
        raise first.error(f"a consensus starts with {Kw.VERSION!r}")
    if first.args[:1] != ("3",):
        raise first.error("only network-status-version 3 is supported")
    name = first.args[1] if len(first.args) > 1 else "ns"
    flavor = _FLAVORS.get(name)
    if flavor is None:
        raise first.error(f"unsupported consensus flavor {name[:30]!r}")
    return flavor


def _consensus(
    pre: Section,
    flavor: Flavor,
    authorities: tuple[DirSource, ...],
    routers: tuple[RouterStatus, ...],
    footer: Section,
) -> Consensus:
    status = pre.one(Kw.VOTE_STATUS)
    if status.args[0] != "consensus":
        raise status.error("only consensus documents are supported, not votes")
    method, delay = pre.maybe(Kw.METHOD), pre.one(Kw.VOTING_DELAY)
    params, weights = pre.maybe(Kw.PARAMS), footer.maybe(Kw.WEIGHTS)
    protocols = {name: _protocols(pre.maybe(kw)) for kw, name in PROTOCOL_LINES}
    consensus = Consensus(
        flavor=flavor,
        consensus_method=int_arg(method, 0, "method", 1, INT32_MAX) if method else 1,
        valid_after=time_arg(pre.one(Kw.VALID_AFTER), 0),
        fresh_until=time_arg(pre.one(Kw.FRESH_UNTIL), 0),
        valid_until=time_arg(pre.one(Kw.VALID_UNTIL), 0),
        authorities=authorities,
        routers=routers,
        voting_delay=(
            int_arg(delay, 0, "vote seconds", 0, INT32_MAX),
            int_arg(delay, 1, "distribution seconds", 0, INT32_MAX),
        ),
        client_versions=_versions(pre.maybe(Kw.CLIENT_VERSIONS)),
        server_versions=_versions(pre.maybe(Kw.SERVER_VERSIONS)),
        packages=tuple(p.args_text for p in pre.all(Kw.PACKAGE)),
        known_flags=pre.one(Kw.KNOWN_FLAGS).args,
        recommended_client_protocols=protocols["recommended_client_protocols"],
        recommended_relay_protocols=protocols["recommended_relay_protocols"],
        required_client_protocols=protocols["required_client_protocols"],
        required_relay_protocols=protocols["required_relay_protocols"],
        params=kv_ints(params) if params is not None else {},
        shared_rand_previous=_srv(pre.maybe(Kw.SRV_PREVIOUS)),
        shared_rand_current=_srv(pre.maybe(Kw.SRV_CURRENT)),
        bandwidth_weights=kv_ints(weights) if weights is not None else None,
        signatures=tuple(_signature(s) for s in footer.all(Kw.SIGNATURE)),
    )
    if not consensus.valid_after <= consensus.fresh_until <= consensus.valid_until:
        raise pre.one(Kw.FRESH_UNTIL).error("valid-after <= fresh-until <= valid-until fails")
    return consensus


def _versions(item: Item | None) -> tuple[str, ...] | None:
    if item is None:
        return None
    return tuple(item.args[0].split(",")) if item.args else ()


def _srv(item: Item | None) -> SharedRandValue | None:
    if item is None:
        return None
    n = int_arg(item, 0, "number of reveals", 0, INT32_MAX)
    return SharedRandValue(n, b64_arg(item, 1, "shared random value", 32, padding="optional"))


def _protocols(item: Item | None) -> Protocols | None:
    return None if item is None else _at(item, Protocols.parse, item.args_text)


def _at(item: Item, parse: Callable[[_T], _V], value: _T) -> _V:
    """``parse(value)``, its ProtocolError re-raised as a DocumentError naming ``item``."""
    try:
        return parse(value)
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


def _authorities(rules: SectionRules, items: list[Item]) -> tuple[DirSource, ...]:
    out = []
    for chunk in _chunks(items, Kw.DIR_SOURCE):
        sec = rules.check(chunk)
        src = sec.one(Kw.DIR_SOURCE)
        contact, digest = sec.maybe(Kw.CONTACT), sec.maybe(Kw.VOTE_DIGEST)
        source = DirSource(
            nickname=_nickname(src, src.args[0], legacy_ok=True),
            identity=hex_arg(src, 1, "identity"),
            address=src.args[2],
            ip=ipv4_arg(src, 3),
            dir_port=int_arg(src, 4, "dirport", 0, 65535),
            or_port=int_arg(src, 5, "orport", 0, 65535),
            contact=contact.args_text if contact is not None else None,
            vote_digest=hex_arg(digest, 0, "vote digest") if digest is not None else None,
        )
        if not source.is_legacy and (contact is None or digest is None):
            raise src.error("needs contact and vote-digest lines")
        out.append(source)
    return tuple(out)


def _nickname(item: Item, text: str, legacy_ok: bool = False) -> str:
    """dir-spec §2.1.1 nickname: 1-19 alphanumerics (plus ``-legacy`` for dir-sources)."""
    base = text.removesuffix("-legacy") if legacy_ok else text
    if not (0 < len(base) <= 19 and base.isascii() and base.isalnum()):
        raise item.error(f"bad nickname {text[:30]!r}")
    return text


def _routers(rules: SectionRules, items: list[Item], flavor: Flavor) -> tuple[RouterStatus, ...]:
    flag_cache: dict[tuple[str, ...], frozenset[str]] = {}
    out: list[RouterStatus] = []
    previous = b""
    for chunk in _chunks(items, Kw.R):
        rs = _router(rules.check(chunk).by_keyword, flavor, flag_cache)
        if rs.identity <= previous:
            raise chunk[0].error("router entries are not sorted by identity (or repeat one)")
        previous = rs.identity
        out.append(rs)
    return tuple(out)


def _chunks(items: list[Item], keyword: str) -> list[list[Item]]:
    """Cut a section into entries, each starting at ``keyword``.

    The section itself starts at ``keyword`` by construction (see _ENDS_*).
    """
    bounds = [n for n, it in enumerate(items) if it.keyword == keyword] + [len(items)]
    return [items[a:b] for a, b in pairwise(bounds)]


def _router(
    sec: Mapping[str, list[Item]], flavor: Flavor, flags: dict[tuple[str, ...], frozenset[str]]
) -> RouterStatus:
    r = sec[Kw.R][0]
    md = flavor is Flavor.MICRODESC
    k = 2 if md else 3  # index of the publication date: ns has the descriptor digest first
    s = sec[Kw.S][0].args
    if s not in flags:
        flags[s] = frozenset(s)
    v, pr, w, p = (sec.get(kw) for kw in (Kw.V, Kw.PR, Kw.W, Kw.P))
    return RouterStatus(
        nickname=_nickname(r, r.args[0]),
        identity=b64_arg(r, 1, "identity", 20),
        descriptor_digest=None if md else b64_arg(r, 2, "descriptor digest", 20),
        published=time_arg(r, k, "publication time"),
        address=ipv4_arg(r, k + 2),
        or_port=int_arg(r, k + 3, "ORPort", 1, 65535),
        dir_port=int_arg(r, k + 4, "DirPort", 0, 65535),
        flags=flags[s],
        md_digest=b64_arg(sec[Kw.M][0], 0, "microdescriptor digest", 32) if md else None,
        addresses=tuple(or_address_arg(a, 0) for a in sec.get(Kw.A, ())),
        version=" ".join(v[0].args) if v else None,  # as the builder writes it
        protocols=_protocols(pr[0]) if pr else None,
        bandwidth=_at(w[0], _bandwidth, w[0].args) if w else None,
        policy=_at(p[0], PortPolicy.from_args, p[0].args) if p else None,
    )


def _bandwidth(args: Sequence[str]) -> Bandwidth:
    """A ``w`` line's arguments; raises ProtocolError if malformed."""
    values: list[int | None] = [None, None, None]  # in _BANDWIDTH_KEYS order
    for arg in args:
        key, eq, text = arg.partition("=")
        k = _BANDWIDTH_KEYS.get(key)
        # k is None: dir-spec §3.4.1 "Clients MUST ignore keywords they do not recognize."
        if k is not None:
            value = parse_int(text, 0, _U32_MAX)
            if not eq or value is None or values[k] is not None:
                raise ProtocolError(f"bad {key} value {arg[:40]!r}")
            values[k] = value
    bandwidth, measured, unmeasured = values
    if bandwidth is None:
        raise ProtocolError("Bandwidth= missing")
    return Bandwidth(bandwidth, measured, bool(unmeasured))


def _signature(item: Item) -> DirectorySignature:
    explicit = len(item.args) >= 3
    base = 1 if explicit else 0
    return DirectorySignature(
        algorithm=item.args[0] if explicit else "sha1",
        identity=hex_arg(item, base, "identity"),
        signing_key_digest=hex_arg(item, base + 1, "signing key digest"),
        signature=item.object_data(),
        explicit_algorithm=explicit,
    )


# --- the fast path -----------------------------------------------------------
#
# Why: a consensus is mostly router entries (~44,000 lines for 7,000 relays),
# and tokenizing each line into an Item and checking every entry against
# SectionRules made the general path no faster than stem.  C tor writes every
# entry in one shape, so _parse_fast matches the router section entry by entry
# with one precompiled regex per flavour and builds RouterStatus directly; the
# few dozen items around it (preamble, authorities, footer) still go through
# tokenize() and the section rules.
#
# The regexes accept a strict SUBSET of what the general path accepts: C tor's
# line order (r, a*, m, s, v, pr, w, p), the exact argument counts, single
# spaces, printable ASCII, values already in canonical form; from that subset
# the fast path computes exactly what the general path would.  On anything
# else (an unknown or repeated keyword, an extra argument, a tab, a bad value,
# any DocumentError) it gives up, and parse_consensus parses the document
# again with the general path, which accepts what dir-spec allows and raises
# the precise error with its line number.  The fast path never decides that a
# document is malformed.  (So a new kind of router line in some future
# consensus method sends every document down the general path: still correct,
# about 3x slower, until the regexes learn it.)

_ARG = r"[!-~]+"  # one argument: printable ASCII, no space
_TEXT = r"[!-~][ -~]*"  # the text after a keyword: starts with an argument
# Canonical unpadded base64 of 20 and 32 bytes (dir-spec §3.4.1): 27 and 43
# characters, the last one's 2 unused low bits zero (fields.b64_arg's rule).
_B64_20 = r"[A-Za-z0-9+/]{26}[AEIMQUYcgkosw048]"
_B64_32 = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # as fields.ipv4_arg
_R_START = rf"r ([A-Za-z0-9]{{1,19}}) ({_B64_20}) "  # nickname as _nickname
_R_END = (
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2}) "
    rf"({_OCTET}(?:\.{_OCTET}){{3}}) ([0-9]{{1,5}}) ([0-9]{{1,5}})\n"
    rf"((?:a {_ARG}\n)*)"
)
_S_TO_W = (
    rf"s((?: {_ARG})*)\n"
    rf"(?:v ({_ARG}(?: {_ARG})*)\n)?"  # single spaces: RouterStatus.version is kept so
    rf"(?:pr ({_TEXT})\n)?"
    rf"(?:w ({_TEXT})\n)?"
)
_FAST_ENTRY = {
    Flavor.NS: re.compile(rf"{_R_START}({_B64_20}) {_R_END}{_S_TO_W}(?:p ({_ARG} {_ARG})\n)?"),
    Flavor.MICRODESC: re.compile(rf"{_R_START}{_R_END}m ({_B64_32})\n{_S_TO_W}"),
}


def _parse_fast(raw: bytes) -> UnverifiedConsensus | None:
    """A consensus whose router entries have C tor's shape; None when unsure (see above)."""
    text = raw.decode("latin-1")  # one character per byte: string offsets are byte offsets
    start = text.find("\nr ") + 1  # the first router entry
    head = tokenize(raw[:start]) if start else []
    if not head:
        return None
    flavor = _flavor(head[0])
    preamble_rules, authority_rules, _, footer_rules = _RULES[flavor]
    i = _next_boundary(head, 0, _ENDS_PREAMBLE)
    if i == len(head) or _next_boundary(head, i, _ENDS_AUTHORITIES) < len(head):
        return None
    found = _fast_routers(text, start, flavor)
    if found is None:
        return None
    routers, end = found
    # The footer's offsets and line numbers count from `end`; the line numbers
    # are never shown, since any error here sends parse_consensus down the general path.
    tail = tokenize(raw[end:])
    if not tail or tail[0].keyword != Kw.FOOTER:
        return None
    preamble = preamble_rules.check(head[:i])
    authorities = _authorities(authority_rules, head[i:])
    footer = footer_rules.check(tail)
    consensus = _consensus(preamble, flavor, authorities, routers, footer)
    return UnverifiedConsensus(consensus, _signed_part(raw, head[0].start, footer, end))


def _fast_routers(
    text: str, pos: int, flavor: Flavor
) -> tuple[tuple[RouterStatus, ...], int] | None:
    """The entries from ``pos`` on that match the flavour's regex, and where they stop."""
    match = _FAST_ENTRY[flavor].match
    md = flavor is Flavor.MICRODESC
    flag_sets: dict[str, frozenset[str]] = {}
    out: list[RouterStatus] = []
    previous = b""
    while (m := match(text, pos)) is not None:
        rs = _fast_router(m.groups(), md, flag_sets)
        if rs is None or rs.identity <= previous:
            return None
        previous = rs.identity
        out.append(rs)
        pos = m.end()
    return tuple(out), pos


def _fast_router(
    groups: tuple[str, ...], md: bool, flag_sets: dict[str, frozenset[str]]
) -> RouterStatus | None:
    """The RouterStatus of one matched entry; None if a value is out of range.

    Raises ProtocolError from the pr, w and p parsers (which the general path shares).
    """
    # The digest is in the r line in ns, in the m line (after the a lines) in microdesc.
    if md:
        nickname, identity, date, clock, address, or_port, dir_port, a, digest, s = groups[:10]
        p = None
    else:
        nickname, identity, digest, date, clock, address, or_port, dir_port, a, s = groups[:10]
        p = groups[13]
    v, pr, w = groups[10:13]
    published = parse_time(date, clock)
    orp, dirp = int(or_port), int(dir_port)
    addresses = tuple(parse_or_address(line[2:]) for line in a.splitlines()) if a else ()
    if published is None or not 0 < orp <= 65535 or dirp > 65535 or None in addresses:
        return None
    flags = flag_sets.get(s)
    if flags is None:
        flags = flag_sets[s] = frozenset(s.split())
    decoded = binascii.a2b_base64(digest + "=")  # 27 or 43 characters: one "=" pads them
    return RouterStatus(
        nickname=nickname,
        identity=binascii.a2b_base64(identity + "="),
        descriptor_digest=None if md else decoded,
        published=published,
        address=address,
        or_port=orp,
        dir_port=dirp,
        flags=flags,
        md_digest=decoded if md else None,
        addresses=addresses,  # type: ignore[arg-type]  # no None: checked above
        version=v,
        protocols=Protocols.parse(pr) if pr is not None else None,
        bandwidth=_bandwidth(w.split()) if w is not None else None,
        policy=PortPolicy.parse(p) if p is not None else None,
    )


# --- verification ----------------------------------------------------------


class UnverifiedConsensus(Unverified[Consensus]):
    """A parsed consensus whose signatures have not been checked.

    What it shows before verification are the claims needed to verify it:
    the flavour, the signatures (which certificates to fetch), the window.
    """

    __slots__ = ("_digests", "_signed")

    def __init__(self, consensus: Consensus, signed: bytes) -> None:
        super().__init__(consensus, consensus.validity)
        self._signed = signed
        self._digests: dict[str, bytes] = {}

    @property
    def flavor(self) -> Flavor:
        return self._content.flavor

    @property
    def signatures(self) -> tuple[DirectorySignature, ...]:
        return self._content.signatures

    def signed_digest(self, algorithm: str) -> bytes | None:
        """Digest of the signed part with ``algorithm`` ("sha1"/"sha256"); None if unknown."""
        fn = DIGESTS.get(algorithm)
        if fn is None:
            return None
        if algorithm not in self._digests:
            self._digests[algorithm] = fn(self._signed)
        return self._digests[algorithm]

    def check_signatures(
        self,
        certs: Iterable[AuthCert],
        authorities: Iterable[bytes],
        *,
        now: int | None,
        tolerance: Tolerance | int = 0,
    ) -> SignatureReport:
        """Classify every signature (see :mod:`~gotor.netdoc.sigcheck`); never raises for
        bad signatures: a tool can print the counts even when the quorum fails."""
        return check_signatures(
            self._content.signatures,
            self.signed_digest,
            certs,
            authorities,
            now=now,
            tolerance=tolerance,
        )

    def verify(
        self,
        certs: Iterable[AuthCert],
        authorities: Iterable[bytes],
        *,
        now: int | None,
        tolerance: Tolerance | int = 0,
    ) -> Consensus:
        """The contents, if more than half of ``authorities`` signed validly.

        ``certs``: verified authority certificates.  ``authorities``: the v3
        identity fingerprints the caller trusts — never taken from the
        document's own dir-source lines.  (A tool that wants to "trust the
        certificates given" passes ``[c.fingerprint for c in certs]``.)
        Raises :class:`QuorumError` (with the report) or, when ``now`` is
        given and outside the window (with ``tolerance``), a validity error.
        """
        report = self.check_signatures(certs, authorities, now=now, tolerance=tolerance)
        if not report.quorum:
            raise QuorumError(report)
        return self._checked(now, tolerance, "consensus")
