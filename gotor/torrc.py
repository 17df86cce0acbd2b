"""The subset of C tor's torrc that ``gotor run -f TORRC`` understands.

The file format is tor(1) "THE CONFIGURATION FILE FORMAT": one option per
line, ``Keyword value``, keywords case-insensitive, ``#`` starts a comment, a
line ending in a backslash continues on the next, and a value may be a
C-style quoted string.  Options understood:

==================  ==============================================================
``DirAuthority``    the authorities to trust and bootstrap from (repeatable)
``SocksPort``       ``[address:]port`` or ``auto`` (any free port), ``0`` for none;
                    default 9050 (on 127.0.0.1, as C tor); flags after the
                    address are ignored with a warning; one port only
``DataDirectory``   where the client keeps its state (default ``~/.gotor``)
``TestingTorNetwork`` ``0|1``: the timings of a private network
``Log``             ``minseverity[-maxseverity] stdout|stderr|file PATH`` (repeatable;
                    default ``notice stdout``)
==================  ==============================================================

Any other option is ignored with a warning (kept in :attr:`Torrc.warnings`);
a malformed value of a known option is a :class:`TorrcError` naming the
line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gotor.config import ClientConfig
from gotor.dir.config import DirConfig, parse_dir_authority
from gotor.errors import LocalError

__all__ = ["LogTarget", "Torrc", "TorrcError", "parse_torrc", "read_torrc"]

SEVERITIES = ("debug", "info", "notice", "warn", "err")
DEFAULT_SOCKS = ("127.0.0.1", 9050)
DEFAULT_DATA_DIR = "~/.gotor"

_KEYWORD = re.compile(r"[A-Za-z0-9_%]+")
_DIGITS = re.compile(r"[0-9]{1,5}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


class TorrcError(LocalError):
    """A torrc that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LogTarget:
    """One ``Log`` line: severities ``low``..``high`` (indices into SEVERITIES)."""

    low: str
    high: str
    target: str  # stdout, stderr or file
    path: Path | None = None


@dataclass
class Torrc:
    """The options of a torrc that gotor uses (see the module docstring)."""

    dir_authorities: list[str] = field(default_factory=list)
    socks: tuple[str, int] | None = DEFAULT_SOCKS
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR).expanduser())
    testing_network: bool = False
    logs: list[LogTarget] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str = "torrc"
    socks_lines: int = 0  # SocksPort lines seen

    def client_config(self) -> ClientConfig:
        """The :class:`~gotor.config.ClientConfig` these options describe."""
        if not self.dir_authorities:
            raise TorrcError(f"{self.source}: no DirAuthority lines (gotor has no built-in "
                             "list of the public authorities; give the network's)")
        return ClientConfig(data_dir=self.data_dir,
                            dir=DirConfig.from_dir_authorities(self.dir_authorities),
                            socks=self.socks, testing_network=self.testing_network)


# --- the file format --------------------------------------------------------------


def _unquote(text: str, where: str) -> str:
    """A value: a C-style quoted string, or the text as it is."""
    if not text.startswith('"'):
        return text
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if text[i + 1 :].strip():
                raise TorrcError(f"{where}: text after the closing quote")
            return "".join(out)
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                raise TorrcError(f"{where}: bad escape in a quoted value")
            out.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise TorrcError(f"{where}: unterminated quoted value")


def _strip_comment(line: str) -> str:
    """``line`` without its comment: a ``#`` outside a quoted value and after."""
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i]
    return line


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) with comments removed and continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1] if continued else line)
        if continued:
            continue
        joined = " ".join(p.strip() for p in pending).strip()
        pending = []
        if joined:
            yield start, joined
    joined = " ".join(p.strip() for p in pending).strip()
    if joined:
        yield start, joined


def _entries(text: str, source: str) -> Iterator[tuple[str, str, str]]:
    """(keyword as written, value, "source line N") for every option line."""
    for number, line in _logical_lines(text):
        where = f"{source} line {number}"
        parts = line.split(None, 1)
        keyword, value = parts[0], parts[1] if len(parts) > 1 else ""
        if not _KEYWORD.fullmatch(keyword):
            raise TorrcError(f"{where}: expected 'Keyword value', got {line[:60]!r}")
        yield keyword, _unquote(value.strip(), where), where


# --- options ----------------------------------------------------------------------


def _port(text: str, where: str) -> int:
    if not _DIGITS.fullmatch(text) or not 0 <= int(text) < 65536:
        raise TorrcError(f"{where}: SocksPort: bad port {text!r}")
    return int(text)


def _socks(conf: Torrc, value: str, where: str) -> None:
    words = value.split()
    if not words:
        raise TorrcError(f"{where}: SocksPort needs a value")
    if conf.socks_lines:
        raise TorrcError(f"{where}: gotor listens on one SocksPort only")
    conf.socks_lines += 1
    if words[1:]:
        conf.warnings.append(f"{where}: SocksPort flags ignored: {' '.join(words[1:])}")
    addr = words[0]
    if addr.lower().startswith("unix:"):
        raise TorrcError(f"{where}: SocksPort on a unix socket is not supported")
    host, sep, port_text = addr.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_SOCKS[0], addr
    host = host.strip("[]") or DEFAULT_SOCKS[0]
    if port_text.lower() == "auto":
        conf.socks = (host, 0)
        return
    port = _port(port_text, where)
    conf.socks = (host, port) if port else None


def _dir_authority(conf: Torrc, value: str, where: str) -> None:
    try:
        parse_dir_authority(value)
    except LocalError as exc:
        raise TorrcError(f"{where}: {exc}") from None
    conf.dir_authorities.append(value)


def _data_dir(conf: Torrc, value: str, where: str) -> None:
    if not value:
        raise TorrcError(f"{where}: DataDirectory needs a path")
    conf.data_dir = Path(value).expanduser()


def _testing(conf: Torrc, value: str, where: str) -> None:
    if value not in ("0", "1"):
        raise TorrcError(f"{where}: TestingTorNetwork must be 0 or 1, not {value!r}")
    conf.testing_network = value == "1"


def _log(conf: Torrc, value: str, where: str) -> None:
    words = value.split()
    if len(words) < 2:
        raise TorrcError(f"{where}: Log needs a severity and a target (stdout, stderr, file PATH)")
    low, _, high = words[0].lower().partition("-")
    high = high or "err"
    if low not in SEVERITIES or high not in SEVERITIES:
        raise TorrcError(f"{where}: Log: unknown severity {words[0]!r} "
                         f"(one of {', '.join(SEVERITIES)}; domains are not supported)")
    target = words[1].lower()
    if target == "file" and len(words) == 3:
        conf.logs.append(LogTarget(low, high, "file", Path(words[2]).expanduser()))
    elif target in ("stdout", "stderr") and len(words) == 2:
        conf.logs.append(LogTarget(low, high, target))
    else:
        raise TorrcError(f"{where}: Log target must be stdout, stderr or file PATH")


_OPTIONS: dict[str, Callable[[Torrc, str, str], None]] = {
    "dirauthority": _dir_authority,
    "socksport": _socks,
    "datadirectory": _data_dir,
    "testingtornetwork": _testing,
    "log": _log,
}


def parse_torrc(text: str, source: str = "torrc") -> Torrc:
    """The options of torrc ``text`` (``source`` names it in messages)."""
    conf = Torrc(source=source)
    for keyword, value, where in _entries(text, source):
        handler = _OPTIONS.get(keyword.lower())
        if handler is None:
            conf.warnings.append(f"{where}: ignoring {keyword}, an option gotor does not "
                                 "support")
            continue
        handler(conf, value, where)
    if not conf.logs:
        conf.logs.append(LogTarget("notice", "err", "stdout"))
    return conf


def read_torrc(path: Path) -> Torrc:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TorrcError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TorrcError(f"{path} is not a text file") from None
    return parse_torrc(text, str(path))
