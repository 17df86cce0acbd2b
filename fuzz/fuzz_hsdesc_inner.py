"""Fuzz the inner (introduction-point) layer of onion-service descriptors
(gotor.netdoc.hsdesc_inner, rend-spec-v3 §2.5.2.2).

Input: a decrypted second-layer plaintext.  Only ProtocolError may escape
parsing and checking the certificates.  A parsed layer without legacy keys
must survive the builder: encode it with a test signing key, parse it again,
get the same layer, and its certificates verify under that key.
"""

from __future__ import annotations

from pathlib import Path

from gotor.crypto.primitives import ed25519_public
from gotor.errors import VerificationError
from gotor.netdoc.build_hsdesc import encode_inner_layer
from gotor.netdoc.hsdesc_inner import parse_inner_layer

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"
SEED = bytes(range(32))
SIGNING_KEY = ed25519_public(SEED)


def TestOneInput(data: bytes) -> None:
    unverified = parse_inner_layer(data)
    try:
        unverified.verify(signing_key=SIGNING_KEY, now=None)
    except VerificationError:
        pass
    inner = unverified.dangerously_assume_verified()
    if any(p.legacy_key is not None for p in inner.intro_points):
        return  # the builder never writes the obsolete legacy keys
    text = encode_inner_layer(inner, signing_seed=SEED, certs_expire=2**40)
    if parse_inner_layer(text).verify(signing_key=SIGNING_KEY, now=None) != inner:
        raise AssertionError("inner layer does not survive the builder")


def seed_inputs() -> list[bytes]:
    names = [
        "hsdesc/stem-hidden_service_v3_inner_layer",
        "hsdesc/arti-hsdesc-inner-pow-v1.txt",
        "hsdesc/arti-hsdesc-inner-pow-empty.txt",
    ]
    return [(DOCS / n).read_bytes() for n in names]
