"""KDF-TOR, the ntor HKDF, RFC 5869 and SHAKE-256 (vectors/kdf.json)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.crypto.kdf import KDF_TOR_MAX, ShakeStream, kdf_tor, ntor_kdf
from gotor.crypto.primitives import hkdf_sha256
from gotor.errors import LocalError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
KDF = json.loads((VECTORS / "kdf.json").read_text())
H = bytes.fromhex


@pytest.mark.parametrize("v", KDF["kdf_tor"]["vectors"])
def test_kdf_tor(v: dict[str, object]) -> None:
    assert kdf_tor(H(str(v["input_hex"])), int(str(v["length"]))) == H(str(v["expected"]))


@pytest.mark.parametrize("v", KDF["hkdf_sha256_ntor"]["vectors"])
def test_ntor_hkdf(v: dict[str, object]) -> None:
    assert ntor_kdf(H(str(v["input_hex"])), int(str(v["length"]))) == H(str(v["expected"]))


def test_ntor_hkdf_uses_the_proposal_216_strings() -> None:
    family = KDF["hkdf_sha256_ntor"]
    v = family["vectors"][1]
    direct = hkdf_sha256(H(v["input_hex"]), salt=family["salt_ascii"].encode(),
                         info=family["info_ascii"].encode(), length=v["length"])
    assert direct == H(v["expected"])


@pytest.mark.parametrize("v", KDF["hkdf_sha256_rfc5869"]["vectors"])
def test_hkdf_rfc5869(v: dict[str, object]) -> None:
    out = hkdf_sha256(H(str(v["ikm"])), salt=H(str(v["salt"])), info=H(str(v["info"])),
                      length=int(str(v["length"])))
    assert out == H(str(v["expected"]))


@pytest.mark.parametrize("v", KDF["shake256_kdf"]["vectors"])
def test_shake_stream_vector(v: dict[str, str]) -> None:
    expected = H(v["expected"])
    assert ShakeStream(H(v["input"])).read(len(expected)) == expected


@given(st.binary(max_size=40), st.lists(st.integers(0, 300), max_size=12))
def test_shake_stream_reads_concatenate_to_one_xof(data: bytes, sizes: list[int]) -> None:
    stream = ShakeStream(data)
    out = b"".join(stream.read(n) for n in sizes)
    assert out == hashlib.shake_256(data).digest(sum(sizes))


@given(st.binary(max_size=40), st.integers(0, 400))
def test_kdf_tor_prefix_property(k0: bytes, n: int) -> None:
    # Counter mode: a shorter output is a prefix of a longer one.
    assert kdf_tor(k0, 400)[:n] == kdf_tor(k0, n)


def test_kdf_limits() -> None:
    assert len(kdf_tor(b"x", KDF_TOR_MAX)) == KDF_TOR_MAX
    with pytest.raises(LocalError):
        kdf_tor(b"x", KDF_TOR_MAX + 1)
    with pytest.raises(LocalError):
        ntor_kdf(b"x", 255 * 32 + 1)
    with pytest.raises(LocalError):
        ShakeStream(b"").read(-1)
