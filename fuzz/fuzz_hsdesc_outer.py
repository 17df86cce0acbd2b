"""Fuzz the outer layer of v3 onion-service descriptors (gotor.netdoc.hsdesc_outer, rend-spec-v3 §2.4).

Input: a descriptor as an HSDir serves it.  Only ProtocolError may escape
parsing and checking the outer layer against the blinded key it claims; for
the arti sample's blinded key and subcredential the whole client path
(decryption of both layers included) runs too.
"""

from __future__ import annotations

import json
from pathlib import Path

from gotor.netdoc.hsdesc import HsDescKeys, parse_hsdesc

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"
_ARTI = json.loads((VECTORS / "vectors" / "hsdesc_params.json").read_text())["descriptors"][0]
KEYS = HsDescKeys(
    bytes.fromhex(_ARTI["inputs"]["blinded_public_key"]),
    bytes.fromhex(_ARTI["inputs"]["subcredential"]),
)


def TestOneInput(data: bytes) -> None:
    unverified = parse_hsdesc(data)
    claimed = unverified.outer.claimed_blinded_key
    if claimed == KEYS.blinded_key:
        desc = unverified.verify(KEYS, now=None)
        if desc.revision_counter != unverified.revision_counter:
            raise AssertionError("revision counter changed on verification")
    else:
        unverified.outer.verify(blinded_key=claimed, now=None)


def seed_inputs() -> list[bytes]:
    names = ["docs/hsdesc/arti-hsdesc1.txt", "docs/hsdesc/stem-hidden_service_v3"]
    return [(VECTORS / n).read_bytes() for n in names]
