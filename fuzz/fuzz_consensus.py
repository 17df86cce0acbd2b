"""Fuzz consensus parsing and signature checking (gotor.netdoc.consensus, dir-spec §3.4.1).

Input: a consensus of either flavour.  Only ProtocolError may escape parsing;
checking signatures against the shadow network's certificates must return a
report, never raise.  A parsed consensus must re-encode (gotor.netdoc.build_dir)
to a document that parses to the same routers and signatures.
"""

from __future__ import annotations

from pathlib import Path

from gotor.netdoc.authcert import parse_authcerts
from gotor.netdoc.build_dir import encode_consensus
from gotor.netdoc.consensus import parse_consensus

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"
CERTS = [
    c.verify(now=None)
    for c in parse_authcerts((DOCS / "testnet-arti-shadow/cached-certs").read_bytes())
]
AUTHORITIES = [c.fingerprint for c in CERTS]


def TestOneInput(data: bytes) -> None:
    unverified = parse_consensus(data)
    unverified.check_signatures(CERTS, AUTHORITIES, now=946684940)
    c = unverified.dangerously_assume_verified()
    again = parse_consensus(encode_consensus(c)).dangerously_assume_verified()
    if (again.routers, again.signatures, again.flavor) != (c.routers, c.signatures, c.flavor):
        raise AssertionError("consensus does not survive re-encoding")


def seed_inputs() -> list[bytes]:
    names = [
        "testnet-arti-shadow/cached-consensus",
        "testnet-arti-shadow/cached-microdesc-consensus",
        "testnet-arti-chutney-2020/mdconsensus1.txt",
        "consdiff-small/consensus1.txt",
    ]
    return [(DOCS / n).read_bytes() for n in names]
