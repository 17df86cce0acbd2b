"""DirConfig and C tor's DirAuthority lines (gotor.dir.config)."""

from __future__ import annotations

import pytest

from gotor.dir import DirConfig, DirSource, SourceKind, parse_dir_authority
from gotor.errors import LocalError

# From C tor's src/app/config/auth_dirs.inc (the format clients ship with).
MORIA1 = ("moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 "
          "128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498")
TOR26 = ("tor26 orport=443 v3ident=2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C "
         "ipv6=[2a02:16a8:662:2203::1]:443 "
         "217.196.147.77:80 FAA4 BCA4 A6AC 0FB4 CA2F 8AD5 A11D 9E12 2BA8 94F6")
SERGE = "Serge orport=9001 bridge 66.111.2.131:9030 BA44 A889 E64B 93FA A2B1 14E0 2C2A 279A 8555 C533"


def test_parse_real_lines() -> None:
    v3, src = parse_dir_authority(MORIA1)
    assert v3 == bytes.fromhex("F533C81CEF0BC0267857C99B2F471ADF249FA232")
    assert src == DirSource("moria1", bytes.fromhex("1A25C6358DB91342AA51720A5038B72742732498"),
                            ("128.31.0.39", 9201), kind=SourceKind.AUTHORITY)
    v3, src = parse_dir_authority("DirAuthority " + TOR26)
    assert v3.hex().upper() == "2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C"
    assert src.rsa_id.hex().upper() == "FAA4BCA4A6AC0FB4CA2F8AD5A11D9E122BA894F6"
    assert src.ipv4 == ("217.196.147.77", 443) and src.nickname == "tor26"


@pytest.mark.parametrize(
    "line",
    [
        SERGE,  # a bridge authority: no v3ident
        "moria1 orport=9201 v3ident=F533 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",
        ("moria1 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 "
        "1A25C6358DB91342AA51720A5038B72742732498"),
        ("moria1 orport=0 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 "
        "1A25C6358DB91342AA51720A5038B72742732498"),
        "moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232",
        "moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 XYZ",
    ],
)
def test_bad_lines(line: str) -> None:
    with pytest.raises(LocalError):
        parse_dir_authority(line)


def test_config_from_lines() -> None:
    cfg = DirConfig.from_dir_authorities([MORIA1, TOR26], request_timeout=30.0)
    assert len(cfg.authorities) == 2 and [s.nickname for s in cfg.sources] == ["moria1", "tor26"]
    assert cfg.request_timeout == 30.0
    with pytest.raises(LocalError):
        DirConfig(cfg.authorities, cfg.sources, parallel_fetches=0)


def test_dir_source_targets() -> None:
    _, src = parse_dir_authority(MORIA1)
    assert src.hop_spec() is None  # no ntor key before the consensus: CREATE_FAST
    target = src.chan_target()
    assert (target.host, target.port, target.rsa_id) == ("128.31.0.39", 9201, src.rsa_id)
    from dataclasses import replace
    keyed = replace(src, ntor_key=b"k" * 32, ed_id=b"e" * 32)
    hop = keyed.hop_spec()
    assert hop is not None and hop.ntor_key == b"k" * 32 and hop.ed_id == b"e" * 32
    assert str(src) == "authority moria1 at 128.31.0.39:9201"
