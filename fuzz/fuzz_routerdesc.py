"""Fuzz server-descriptor parsing and verification (gotor.netdoc.routerdesc, dir-spec §2.1.1).

Input: a concatenation of descriptors, annotations allowed.  Only ProtocolError
(DocumentError, VerificationError) may escape.  Every descriptor's digest must be
the SHA-1 of its own signed bytes, and its exit policy must survive formatting.
"""

from __future__ import annotations

from pathlib import Path

from gotor.crypto.primitives import sha1
from gotor.errors import VerificationError
from gotor.netdoc.exitpolicy import ExitPolicy
from gotor.netdoc.routerdesc import parse_router_descriptors

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"
_SIGNED_END = b"router-signature\n"


def TestOneInput(data: bytes) -> None:
    for unverified in parse_router_descriptors(data):
        desc = unverified.dangerously_assume_verified()
        signed = desc.text[: desc.text.index(_SIGNED_END) + len(_SIGNED_END)]
        if desc.text not in data or desc.digest != sha1(signed):
            raise AssertionError("digest is not over the descriptor's own signed bytes")
        policy = desc.info.exit_policy
        if ExitPolicy.parse(policy.lines()) != policy:
            raise AssertionError("exit policy does not survive formatting")
        try:
            unverified.verify(now=946684940)
        except VerificationError:
            pass


def seed_inputs() -> list[bytes]:
    names = [
        "server-descriptors/arti-routerdesc1-Akka.txt",
        "server-descriptors/stem-server_descriptor_with_ed25519",
        "testnet-arti-shadow/cached-descriptors.new",
    ]
    return [(DOCS / n).read_bytes() for n in names]
