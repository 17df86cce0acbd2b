"""Directory request paths and microdescriptor batching (gotor.dir.requests)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gotor.dir.requests import (
    CONSENSUS_PATH,
    certs_fp_sk_path,
    certs_path,
    consensus_path,
    microdesc_batches,
    microdesc_path,
)
from gotor.errors import LocalError

ID_A = bytes.fromhex("0B8997614EC647C1C6B6A044E2B5408F0B823FB0")
ID_B = bytes.fromhex("5B591AD684C1AB8E0AB76C839E93FD097526A4BC")


def digests(n: int) -> list[bytes]:
    return [hashlib.sha256(b"%d" % i).digest() for i in range(n)]


def test_consensus_paths() -> None:
    assert consensus_path() == CONSENSUS_PATH == "/tor/status-vote/current/consensus-microdesc"
    # C tor's conditional consensus: 3-byte upper-case hex prefixes, sorted, "+"-joined
    assert consensus_path([ID_B, ID_A]) == CONSENSUS_PATH + "/0B8997+5B591A"
    with pytest.raises(LocalError):
        consensus_path([b"short"])


def test_cert_paths() -> None:
    assert certs_path([ID_B, ID_A, ID_A]) == (
        "/tor/keys/fp/0B8997614EC647C1C6B6A044E2B5408F0B823FB0+"
        "5B591AD684C1AB8E0AB76C839E93FD097526A4BC"
    )
    assert certs_fp_sk_path([(ID_A, ID_B)]) == (
        "/tor/keys/fp-sk/0B8997614EC647C1C6B6A044E2B5408F0B823FB0-"
        "5B591AD684C1AB8E0AB76C839E93FD097526A4BC"
    )
    for bad in ([], [b"x" * 19]):
        with pytest.raises(LocalError):
            certs_path(bad)
    with pytest.raises(LocalError):
        certs_fp_sk_path([(ID_A, b"x")])


def test_microdesc_path_is_unpadded_base64_joined_by_dashes() -> None:
    ds = digests(3)
    path = microdesc_path(ds)
    assert path.startswith("/tor/micro/d/")
    parts = path.removeprefix("/tor/micro/d/").split("-")
    assert len(parts) == 3 and all(len(p) == 43 and "=" not in p for p in parts)
    assert [base64.b64decode(p + "=") for p in parts] == ds
    for bad in ([], [b"\0" * 31]):
        with pytest.raises(LocalError):
            microdesc_path(bad)


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (0, []),
        (1, [1]),
        (30, [30]),  # fewer than 32: one request
        (64, [32, 32]),  # ceil(64/3)=22 < 32 -> 32 per request
        (100, [34, 34, 32]),  # at least 3 requests
        (2000, [500, 500, 500, 500]),  # at most 500 per request (BEGIN_DIR)
        (1501, [500, 500, 500, 1]),
    ],
)
def test_batches_follow_c_tor(n: int, sizes: list[int]) -> None:
    ds = digests(n)
    batches = microdesc_batches(ds + ds[: n // 2])  # duplicates count once
    assert [len(b) for b in batches] == sizes
    flat = [d for b in batches for d in b]
    assert flat == sorted(set(ds))


def test_batch_limit_is_a_parameter() -> None:
    assert [len(b) for b in microdesc_batches(digests(300), max_per_request=90)] == [90] * 3 + [30]
