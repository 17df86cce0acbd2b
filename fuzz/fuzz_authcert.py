"""Fuzz authority key certificates (gotor.netdoc.authcert, dir-spec §3.1).

Input: a concatenation of certificates.  Only ProtocolError (DocumentError,
VerificationError) may escape.  A certificate that verifies must re-encode
(gotor.netdoc.build_dir) to a certificate that parses and verifies to an equal value.
"""

from __future__ import annotations

from pathlib import Path

from gotor.errors import VerificationError
from gotor.netdoc.authcert import parse_authcert, parse_authcerts
from gotor.netdoc.build_dir import encode_authcert

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"


def TestOneInput(data: bytes) -> None:
    for unverified in parse_authcerts(data):
        try:
            cert = unverified.verify(now=946684940)
        except VerificationError:
            continue
        if parse_authcert(encode_authcert(cert)).verify(now=None) != cert:
            raise AssertionError("certificate does not survive re-encoding")


def seed_inputs() -> list[bytes]:
    names = [
        "testnet-arti-shadow/cached-certs",
        "testnet-arti-chutney-2020/authcerts2.txt",
        "authcerts/arti-authcert-all",
    ]
    return [(DOCS / n).read_bytes() for n in names]
