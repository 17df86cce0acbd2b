"""Cost of the onion-service crypto layer (gotor/crypto: onion_address, hs_keys,
hs_index, hs_ntor, hsdesc_crypto).  Prints microseconds per operation.

    python benchmarks/bench_crypto_hs.py [--repeat N]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from gotor.crypto import hs_index, hs_keys, hs_ntor, hsdesc_crypto
from gotor.crypto.onion_address import decode_onion_address, encode_onion_address
from gotor.crypto.primitives import x25519_public

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors"


def _per_op_us(fn: Callable[[], object], repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def _descriptor_case() -> Callable[[], object]:
    params = json.loads((VECTORS / "vectors" / "hsdesc_params.json").read_text())
    desc = params["descriptors"][0]
    text = (VECTORS / desc["file"]).read_bytes()
    blinded = bytes.fromhex(desc["inputs"]["blinded_public_key"])
    subcred = bytes.fromhex(desc["inputs"]["subcredential"])
    match = re.search(rb"superencrypted\n-----BEGIN MESSAGE-----\n(.*?)-----END", text,
                      re.DOTALL)
    revision = re.search(rb"revision-counter (\d+)", text)
    assert match and revision
    blob, rev = base64.b64decode(match.group(1)), int(revision.group(1))

    def both_layers() -> bytes:
        outer = hsdesc_crypto.strip_nul_padding(
            hsdesc_crypto.decrypt_superencrypted(blob, blinded, subcred, rev))
        inner = re.search(rb"encrypted\n-----BEGIN MESSAGE-----\n(.*?)-----END", outer,
                          re.DOTALL)
        assert inner
        return hsdesc_crypto.decrypt_encrypted(base64.b64decode(inner.group(1)), blinded,
                                               subcred, rev)

    return both_layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    repeat = parser.parse_args().repeat

    seed = bytes(range(32))
    expanded = hs_keys.expand_secret_seed(seed)
    identity = hs_keys.expanded_public_key(expanded)
    address = encode_onion_address(identity)
    blinded_secret = hs_keys.blind_expanded_secret_key(expanded, 19397)
    b, x, y, auth, subcred = (bytes([i]) * 32 for i in (1, 2, 3, 4, 5))
    header, plaintext = bytes(56), bytes(246)
    state, encrypted = hs_ntor.client_send_intro(auth, x25519_public(b), subcred, header,
                                                 plaintext, client_secret=x)
    reply = hs_ntor.service_receive_intro(b, auth, [subcred], header, encrypted,
                                          server_secret=y).handshake_info
    cases: dict[str, Callable[[], object]] = {
        "decode_onion_address": lambda: decode_onion_address(address),
        "blind_public_key": lambda: hs_keys.blind_public_key(identity, 19397),
        "blind_expanded_secret_key": lambda: hs_keys.blind_expanded_secret_key(expanded, 19397),
        "sign_expanded (100 B)": lambda: hs_keys.sign_expanded(blinded_secret, bytes(100)),
        "hsdir_index": lambda: hs_index.hsdir_index(auth, subcred, 19397),
        "hs-ntor client_send_intro": lambda: hs_ntor.client_send_intro(
            auth, x25519_public(b), subcred, header, plaintext, client_secret=x),
        "hs-ntor service_receive_intro (1 subcred)": lambda: hs_ntor.service_receive_intro(
            b, auth, [subcred], header, encrypted, server_secret=y),
        "hs-ntor client_receive_rend": lambda: hs_ntor.client_receive_rend(state, reply),
        "hsdesc decrypt both layers (arti hsdesc1)": _descriptor_case(),
    }
    for name, fn in cases.items():
        print(f"{name:45s} {_per_op_us(fn, repeat):9.1f} us/op")


if __name__ == "__main__":
    main()
