"""Fuzz the middle (client-authorization) layer of onion-service descriptors
(gotor.netdoc.hsdesc_middle, rend-spec-v3 §2.5.1.2).

Input: a decrypted first-layer plaintext, NUL padding allowed.  Only
ProtocolError may escape; every field of a parsed layer has its fixed size.
"""

from __future__ import annotations

from pathlib import Path

from gotor.netdoc.hsdesc_middle import parse_middle_layer

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"


def TestOneInput(data: bytes) -> None:
    middle = parse_middle_layer(data)
    if len(middle.ephemeral_key) != 32 or not middle.auth_clients:
        raise AssertionError("middle layer without its ephemeral key or auth-client lines")
    for client in middle.auth_clients:
        sizes = (len(client.client_id), len(client.iv), len(client.encrypted_cookie))
        if sizes != (8, 16, 16):
            raise AssertionError(f"auth-client fields of sizes {sizes}")


def seed_inputs() -> list[bytes]:
    outer = (DOCS / "hsdesc/stem-hidden_service_v3_outer_layer").read_bytes()
    return [outer, outer.rstrip(b"\0") + b"\n"]
