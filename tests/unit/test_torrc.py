"""The torrc subset of ``gotor run`` (gotor/torrc.py): format, options, errors, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.config import ClientConfig
from gotor.torrc import DEFAULT_SOCKS, LogTarget, TorrcError, parse_torrc, read_torrc

FP = "9638018506DA06755CFDF3D5F778D5F3D957E402"
V3 = "5A4F640E32FBEACAD341BA3D15CB393311AABE06"
AUTH = f"DirAuthority auth0 orport=39883 no-v2 v3ident={V3} 127.0.0.1:51543 {FP}"


def test_the_options_of_the_readme_flow() -> None:
    conf = parse_torrc(f"TestingTorNetwork 1\nDataDirectory /tmp/d\n"
                       f"SocksPort 127.0.0.1:9150\n{AUTH}\n")
    assert conf.testing_network and conf.data_dir == Path("/tmp/d")
    assert conf.socks == ("127.0.0.1", 9150)
    assert conf.dir_authorities == [AUTH.removeprefix("DirAuthority ")]
    assert conf.warnings == []
    config = conf.client_config()
    assert isinstance(config, ClientConfig) and config.testing_network
    assert config.dir.authorities == (bytes.fromhex(V3),)
    assert config.dir.sources[0].ipv4 == ("127.0.0.1", 39883)
    assert config.socks == ("127.0.0.1", 9150)


def test_defaults_are_c_tor_s() -> None:
    conf = parse_torrc(AUTH)
    assert conf.socks == DEFAULT_SOCKS == ("127.0.0.1", 9050)
    assert conf.logs == [LogTarget("notice", "err", "stdout")]
    assert conf.data_dir == Path("~/.gotor").expanduser()
    assert not conf.testing_network


@pytest.mark.parametrize(("value", "socks"), [
    ("9150", ("127.0.0.1", 9150)),
    ("127.0.0.2:9150", ("127.0.0.2", 9150)),
    ("[::1]:9150", ("::1", 9150)),
    ("auto", ("127.0.0.1", 0)),
    ("127.0.0.1:auto", ("127.0.0.1", 0)),
    ("0", None),
])
def test_socks_port_forms(value: str, socks: tuple[str, int] | None) -> None:
    assert parse_torrc(f"SocksPort {value}").socks == socks


def test_socks_port_flags_are_ignored_with_a_warning() -> None:
    conf = parse_torrc("SocksPort 9150 IsolateDestAddr")
    assert conf.socks == ("127.0.0.1", 9150)
    assert conf.warnings == ["torrc line 1: SocksPort flags ignored: IsolateDestAddr"]


@pytest.mark.parametrize(("text", "message"), [
    ("SocksPort 9150\nSocksPort 9151", "line 2: gotor listens on one SocksPort only"),
    ("SocksPort unix:/run/tor/socks", "line 1: SocksPort on a unix socket"),
    ("\nSocksPort 70000", "line 2: SocksPort: bad port '70000'"),
    ("SocksPort 9²", "bad port"),
    ("SocksPort", "SocksPort needs a value"),
    ("TestingTorNetwork yes", "line 1: TestingTorNetwork must be 0 or 1"),
    ("DataDirectory", "DataDirectory needs a path"),
    ("Log loud stdout", "unknown severity 'loud'"),
    ("Log notice", "Log needs a severity and a target"),
    ("Log notice syslog", "Log target must be stdout, stderr or file PATH"),
    ("Log [net]notice stdout", "domains are not supported"),
    ("DirAuthority auth0 127.0.0.1:80 " + FP, "line 1: DirAuthority line needs orport="),
    ("DirAuthority nonsense", "line 1: DirAuthority line without address:port"),
    ('DataDirectory "/tmp/x', "unterminated quoted value"),
    ('DataDirectory "/tmp/x" y', "text after the closing quote"),
    ('DataDirectory "/tmp/\\q"', "bad escape"),
    ("Socks-Port 9050", "expected 'Keyword value'"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TorrcError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_torrc(text)


def test_unknown_options_are_ignored_with_a_warning_and_keywords_ignore_case() -> None:
    conf = parse_torrc("# a comment\n\nRunAsDaemon 1\nsocksport 9150\nCONTROLPORT 9151\n")
    assert conf.socks == ("127.0.0.1", 9150)
    assert conf.warnings == [
        "torrc line 3: ignoring RunAsDaemon, an option gotor does not support",
        "torrc line 5: ignoring CONTROLPORT, an option gotor does not support",
    ]


def test_comments_continuations_and_quoted_values() -> None:
    conf = parse_torrc(
        'DataDirectory "/tmp/a b#c\\t\\"q\\""  # the data\n'
        "DirAuthority auth0 orport=39883 \\\n"
        f"   no-v2 v3ident={V3} \\\n"
        f"   127.0.0.1:51543 {FP}\n"
        "SocksPort 9150 # comment after a value\n")
    assert conf.data_dir == Path('/tmp/a b#c\t"q"')
    assert conf.dir_authorities == [f"auth0 orport=39883 no-v2 v3ident={V3} 127.0.0.1:51543 {FP}"]
    assert conf.socks == ("127.0.0.1", 9150)


def test_log_lines() -> None:
    conf = parse_torrc("Log info-warn file ~/gotor.log\nLog err stderr\nLog debug stdout")
    assert conf.logs == [LogTarget("info", "warn", "file", Path("~/gotor.log").expanduser()),
                         LogTarget("err", "err", "stderr"), LogTarget("debug", "err", "stdout")]


def test_a_torrc_without_authorities_cannot_make_a_client() -> None:
    with pytest.raises(TorrcError, match="no DirAuthority lines"):
        parse_torrc("SocksPort 9150").client_config()


def test_reading_files(tmp_path: Path) -> None:
    path = tmp_path / "torrc"
    path.write_text("SocksPort 0\n")
    assert read_torrc(path).socks is None
    with pytest.raises(TorrcError, match="cannot read"):
        read_torrc(tmp_path / "missing")
    path.write_bytes(b"\xff\xfe SocksPort")
    with pytest.raises(TorrcError, match="not a text file"):
        read_torrc(path)
    with pytest.raises(TorrcError, match=f"{path} line 1"):
        path.write_text("SocksPort x")
        read_torrc(path)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('SocksPort DirAuthority Log "\\#\n:=0123456789abc'
                                        'TestingTorNetwork DataDirectory file stdout'),
               max_size=200))
def test_arbitrary_text_parses_or_is_a_torrc_error(text: str) -> None:
    try:
        conf = parse_torrc(text)
    except TorrcError:
        return
    assert conf.logs  # a parsed torrc always has somewhere to log
