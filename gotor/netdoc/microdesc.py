"""Microdescriptors (dir-spec §3.3), and joining them to a microdesc consensus.

A microdescriptor is the part of a relay's descriptor a client needs to build
circuits: its ntor onion key, exit-policy summaries, family, Ed25519
identity.  It is not signed: it is authenticated by its SHA-256 digest
appearing in an ``m`` line of a verified microdesc-flavour consensus, so the
digest is computed over its exact bytes, from the start of its ``onion-key``
line up to the start of the next microdescriptor (or of the annotations
preceding it), as C tor does.

``onion-key``: dir-spec §3.3 (as revised by proposal 350, which removes TAP)
keeps the ``onion-key`` *item* as the first line of every microdescriptor —
"while the key is optional, the onion-key element itself is not.  It is used
to denote the start of a microdescriptor" — but makes its RSA key object
optional.  So a microdescriptor must start with ``onion-key``; one starting
with ``ntor-onion-key`` is not a microdescriptor by the spec, and is rejected.
The obsolete key, when present, is kept as DER bytes and not otherwise used.

Missing ``p``/``p6`` lines mean ``reject 1-65535`` (dir-spec §3.3; C tor omits
a reject-all ``p`` line).  ``id`` lines with unknown key types are ignored,
as dir-spec requires; each key type may appear at most once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gotor.crypto.primitives import sha256
from gotor.errors import DocumentError, LocalError, ProtocolError
from gotor.netdoc.consensus import Consensus, Flavor, RouterStatus
from gotor.netdoc.fields import b64_arg, or_address_arg
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols
from gotor.netdoc.rules import (
    Count,
    ObjectRule,
    Rule,
    Section,
    SectionRules,
    Split,
    split_documents,
)
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "Kw",
    "Microdesc",
    "MicrodescJoin",
    "join_microdescs",
    "parse_microdesc",
    "parse_microdescs",
]


class Kw:
    """Keyword names (shared with the builder)."""

    ONION_KEY = "onion-key"
    NTOR_ONION_KEY = "ntor-onion-key"
    A = "a"
    FAMILY = "family"
    FAMILY_IDS = "family-ids"
    P = "p"
    P6 = "p6"
    ID = "id"
    PR = "pr"


RULES = SectionRules(
    "microdescriptor",
    [
        Rule(
            Kw.ONION_KEY, Count.ONCE, max_args=0, obj=ObjectRule.OPTIONAL, tags=("RSA PUBLIC KEY",)
        ),
        Rule(Kw.NTOR_ONION_KEY, Count.ONCE, min_args=1),
        Rule(Kw.A, Count.ANY, min_args=1),
        Rule(Kw.FAMILY, Count.AT_MOST_ONCE, min_args=1),
        Rule(Kw.FAMILY_IDS, Count.AT_MOST_ONCE),
        Rule(Kw.P, Count.AT_MOST_ONCE, min_args=2),
        Rule(Kw.P6, Count.AT_MOST_ONCE, min_args=2),
        Rule(Kw.ID, Count.ANY, min_args=2),
        Rule(Kw.PR, Count.AT_MOST_ONCE),
    ],
    first=Kw.ONION_KEY,
)

#: id key types we read, and the length of the identity each one carries.
ID_TYPES = {"ed25519": 32, "rsa1024": 20}


@dataclass(frozen=True)
class Microdesc:
    """One microdescriptor.

    ``digest`` is SHA-256 of ``text``, the exact bytes (both take no part in
    equality, which compares the meaning).  ``annotations`` are the
    ``(keyword, arguments)`` of the ``@`` lines that preceded it.
    """

    ntor_onion_key: bytes
    ipv4_policy: PortPolicy = field(default_factory=PortPolicy.reject_all)
    ipv6_policy: PortPolicy = field(default_factory=PortPolicy.reject_all)
    ed25519_id: bytes | None = None
    rsa_id: bytes | None = None
    family: tuple[str, ...] = ()
    family_ids: tuple[str, ...] | None = None
    addresses: tuple[tuple[str, int], ...] = ()
    protocols: Protocols | None = None
    onion_key: bytes | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    digest: bytes = field(default=b"", compare=False, repr=False)
    text: bytes = field(default=b"", compare=False, repr=False)


def parse_microdescs(data: bytes) -> list[Microdesc]:
    """Parse a concatenation of microdescriptors (``@`` annotations allowed before each)."""
    raw = bytes(data)
    docs = split_documents(tokenize(raw), Kw.ONION_KEY)
    out = []
    for n, doc in enumerate(docs):
        start = doc.items[0].start
        # The body runs to where the next document (its annotations first) begins.
        end = _first_start(docs[n + 1]) if n + 1 < len(docs) else len(raw)
        out.append(_microdesc(RULES.check(doc.items), doc.annotations, raw[start:end]))
    return out


def parse_microdesc(data: bytes) -> Microdesc:
    """Parse exactly one microdescriptor."""
    mds = parse_microdescs(data)
    if len(mds) != 1:
        raise DocumentError(f"expected one microdescriptor, found {len(mds)}")
    return mds[0]


def _first_start(doc: Split) -> int:
    return (doc.annotations or doc.items)[0].start


def _microdesc(sec: Section, annotations: tuple[Item, ...], text: bytes) -> Microdesc:
    onion = sec.one(Kw.ONION_KEY)
    family, family_ids, pr = sec.maybe(Kw.FAMILY), sec.maybe(Kw.FAMILY_IDS), sec.maybe(Kw.PR)
    ids = _ids(sec.all(Kw.ID))
    return Microdesc(
        ntor_onion_key=b64_arg(sec.one(Kw.NTOR_ONION_KEY), 0, "ntor key", 32, "optional"),
        ipv4_policy=_policy(sec.maybe(Kw.P)),
        ipv6_policy=_policy(sec.maybe(Kw.P6)),
        ed25519_id=ids.get("ed25519"),
        rsa_id=ids.get("rsa1024"),
        family=family.args if family is not None else (),
        family_ids=family_ids.args if family_ids is not None else None,
        addresses=tuple(or_address_arg(a, 0) for a in sec.all(Kw.A)),
        protocols=_protocols(pr) if pr is not None else None,
        onion_key=onion.obj.data if onion.obj is not None else None,
        annotations=tuple((a.keyword, a.args_text) for a in annotations),
        digest=sha256(text),
        text=text,
    )


def _ids(items: list[Item]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    seen: set[str] = set()
    for item in items:
        kind = item.args[0]
        if kind in seen:
            raise item.error(f"more than one {kind} identity")
        seen.add(kind)
        if kind in ID_TYPES:
            out[kind] = b64_arg(item, 1, f"{kind} identity", ID_TYPES[kind])
    return out


def _policy(item: Item | None) -> PortPolicy:
    if item is None:
        return PortPolicy.reject_all()
    try:
        return PortPolicy.from_args(item.args)
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


def _protocols(item: Item) -> Protocols:
    try:
        return Protocols.parse(item.args_text)
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


# --- joining with the consensus --------------------------------------------


@dataclass(frozen=True)
class MicrodescJoin:
    """Which router got which microdescriptor, and what is still to fetch.

    ``matched``: (router, microdescriptor) in consensus order.  ``missing``:
    the ``m`` digests with no microdescriptor yet, in consensus order, each
    once (what the client fetches next, in batches).  ``unused``: given
    microdescriptors that no router lists (stale cache entries).
    """

    matched: tuple[tuple[RouterStatus, Microdesc], ...]
    missing: tuple[bytes, ...]
    unused: tuple[Microdesc, ...]


def join_microdescs(consensus: Consensus, microdescs: Iterable[Microdesc]) -> MicrodescJoin:
    """Match microdescriptors to a *verified* microdesc consensus by digest.

    (dir-spec §3.3: a client MUST ignore a microdescriptor's ed25519 ``id``
    when its router has the NoEdConsensus flag; that judgement is the
    caller's, who has both.)
    """
    if not isinstance(consensus, Consensus) or consensus.flavor is not Flavor.MICRODESC:
        raise LocalError("join_microdescs needs a verified microdesc-flavour Consensus")
    by_digest = {md.digest: md for md in microdescs}
    matched = []
    missing: dict[bytes, None] = {}
    used: set[bytes] = set()
    for rs in consensus.routers:
        digest = rs.md_digest or b""
        md = by_digest.get(digest)
        if md is None:
            missing[digest] = None
        else:
            matched.append((rs, md))
            used.add(digest)
    unused = tuple(md for d, md in by_digest.items() if d not in used)
    return MicrodescJoin(tuple(matched), tuple(missing), unused)
