"""Fuzz microdescriptor parsing (gotor.netdoc.microdesc, dir-spec §3.3).

Input: a concatenation of microdescriptors.  Only ProtocolError may escape.
Each digest must be the SHA-256 of the microdescriptor's own bytes, and each
microdescriptor must survive the builder (gotor.netdoc.build_dir).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from gotor.netdoc.build_dir import build_microdesc
from gotor.netdoc.microdesc import parse_microdescs

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"


def TestOneInput(data: bytes) -> None:
    for md in parse_microdescs(data):
        if md.digest != hashlib.sha256(md.text).digest() or md.text not in data:
            raise AssertionError("digest is not over the microdescriptor's own bytes")
        if build_microdesc(md) != replace(md, annotations=()):
            raise AssertionError("microdescriptor does not survive the builder")


def seed_inputs() -> list[bytes]:
    return [
        (DOCS / "testnet-arti-shadow/cached-microdescs.new").read_bytes(),
        (
            b"@last-listed 2024-01-01 00:00:00\nonion-key\nntor-onion-key "
            b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\nfamily-ids ed25519:x\np accept 80\n"
        ),
    ]
