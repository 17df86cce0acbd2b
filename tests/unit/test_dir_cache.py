"""The data-directory cache files and atomic replacement (gotor.dir.cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gotor.dir.cache import CERTS_FILE, CONSENSUS_FILE, MICRODESCS_FILE, DirCache, atomic_write


def test_roundtrip_and_names(tmp_path: Path) -> None:
    cache = DirCache(tmp_path / "data")
    assert cache.load_consensus() is None and cache.load_certs() is None
    assert cache.load_microdescs() is None
    cache.store_consensus(b"consensus")
    cache.store_certs(b"certs")
    cache.store_microdescs(b"mds")
    assert (tmp_path / "data" / CONSENSUS_FILE).read_bytes() == b"consensus"
    assert CONSENSUS_FILE == "cached-microdesc-consensus" and CERTS_FILE == "cached-certs"
    assert MICRODESCS_FILE == "cached-microdescs"
    assert cache.load_certs() == b"certs" and cache.load_microdescs() == b"mds"
    cache.store_consensus(b"newer")
    assert cache.load_consensus() == b"newer"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(
        [CONSENSUS_FILE, CERTS_FILE, MICRODESCS_FILE]
    )  # no temporary files left behind


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old contents")

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        atomic_write(target, b"new contents that never land")
    assert target.read_bytes() == b"old contents"


def test_a_crash_while_writing_keeps_the_old_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
