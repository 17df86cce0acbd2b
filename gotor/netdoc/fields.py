"""Argument types shared by the directory documents, each with its inverse.

Parsers call the ``*_arg``/``parse_*`` helpers, which raise
:class:`~gotor.errors.DocumentError` naming the item and line; builders call
the ``format_*`` twins, so the two directions share one definition of every
format: times (dir-spec §1.2 ``YYYY-MM-DD HH:MM:SS``, UTC), hex digests,
base64 with and without trailing ``=`` (dir-spec §3.4.1 identities and digests,
§3.3 keys), decimal integers, IPv4/IPv6 addresses and ``address:port`` pairs
(dir-spec §2.1.1 ``or-address``), and ``Key=Int`` lists (``params``,
``bandwidth-weights``).

Python's own converters are more liberal than dir-spec (``int`` accepts
``"+1"``, ``"1_0"`` and non-ASCII digits; ``bytes.fromhex`` accepts spaces;
``base64`` ignores junk by default), so every helper checks the exact
character set first.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import ipaddress
import re
from functools import lru_cache

from gotor.netdoc.tokenize import Item

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "b64_arg",
    "format_b64",
    "format_hex",
    "format_kv_ints",
    "format_or_address",
    "format_time",
    "hex_arg",
    "int_arg",
    "ipv4_arg",
    "kv_ints",
    "or_address_arg",
    "parse_int",
    "parse_or_address",
    "parse_time",
    "time_arg",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_INT = re.compile(r"-?[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_KV_KEY = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --- integers --------------------------------------------------------------


def parse_int(text: str, lo: int, hi: int) -> int | None:
    """A decimal integer in [lo, hi], or None if ``text`` is not one."""
    if _INT.fullmatch(text) is None or len(text) > 20:
        return None
    value = int(text)
    return value if lo <= value <= hi else None


def int_arg(item: Item, index: int, what: str, lo: int, hi: int) -> int:
    """Argument ``index`` of ``item`` as a decimal integer in [lo, hi]."""
    value = parse_int(item.arg(index, what), lo, hi)
    if value is None:
        raise item.error(f"{what} must be an integer in [{lo}, {hi}], got {item.args[index]!r}")
    return value


# --- times -----------------------------------------------------------------


@lru_cache(maxsize=4096)
def parse_time(date: str, clock: str) -> int | None:
    """POSIX seconds of ``YYYY-MM-DD`` ``HH:MM:SS`` (UTC), or None if malformed.

    Cached: a consensus repeats the same few publication times thousands of times.
    """
    d = _DATE.fullmatch(date)
    c = _CLOCK.fullmatch(clock)
    if d is None or c is None:
        return None
    year, month, day = int(d[1]), int(d[2]), int(d[3])
    hour, minute, second = int(c[1]), int(c[2]), int(c[3])
    if year < 1 or not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second, as C tor allows
        return None
    return calendar.timegm((year, month, day, hour, minute, second))


def time_arg(item: Item, index: int, what: str = "time") -> int:
    """Arguments ``index`` and ``index + 1`` of ``item`` as a time."""
    date, clock = item.arg(index, what), item.arg(index + 1, what)
    value = parse_time(date, clock)
    if value is None:
        raise item.error(f"bad {what} {date} {clock!r}")
    return value


def format_time(when: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return (_EPOCH + datetime.timedelta(seconds=when)).strftime("%Y-%m-%d %H:%M:%S")


# --- hex and base64 --------------------------------------------------------


def hex_arg(item: Item, index: int, what: str, length: int = 20) -> bytes:
    """Argument ``index`` as hex encoding exactly ``length`` bytes (either case)."""
    text = item.arg(index, what)
    if len(text) != 2 * length or _HEX.fullmatch(text) is None:
        raise item.error(f"{what} must be {2 * length} hex digits, got {text[:50]!r}")
    return bytes.fromhex(text)


def format_hex(data: bytes) -> str:
    """Upper-case hex, as dir-spec writes fingerprints and digests."""
    return data.hex().upper()


def _b64decode(text: str, length: int, padding: str) -> bytes | None:
    """``text`` decoded if it is canonical base64 of ``length`` bytes, else None.

    ``padding`` is "no" (trailing ``=`` forbidden), "yes" (required) or
    "optional".  Canonical means re-encoding gives back the same characters,
    which also rules out non-zero unused low bits.
    """
    if _B64.fullmatch(text) is None:
        return None
    bare = text.rstrip("=")
    if (padding == "no" and bare != text) or (padding == "yes" and len(text) % 4):
        return None
    try:
        data = binascii.a2b_base64(bare + "=" * (-len(bare) % 4), strict_mode=True)
    except binascii.Error:
        return None
    if len(data) != length or format_b64(data, padded=False) != bare:
        return None
    if bare != text and format_b64(data, padded=True) != text:
        return None
    return data


def b64_arg(item: Item, index: int, what: str, length: int, padding: str = "no") -> bytes:
    """Argument ``index`` as base64 of exactly ``length`` bytes (see _b64decode)."""
    data = _b64decode(item.arg(index, what), length, padding)
    if data is None:
        raise item.error(f"{what} must be base64 of {length} bytes, got {item.args[index][:60]!r}")
    return data


def format_b64(data: bytes, *, padded: bool) -> str:
    """Base64, with or without the trailing ``=`` signs."""
    text = base64.b64encode(data).decode("ascii")
    return text if padded else text.rstrip("=")


# --- addresses -------------------------------------------------------------


def ipv4_arg(item: Item, index: int, what: str = "IPv4 address") -> str:
    """Argument ``index`` as a dotted-quad IPv4 address (no leading zeros)."""
    text = item.arg(index, what)
    if _IPV4.fullmatch(text) is None or any(int(o) > 255 for o in text.split(".")):
        raise item.error(f"bad {what} {text[:50]!r}")
    return text


def parse_or_address(text: str) -> tuple[str, int] | None:
    """``1.2.3.4:5`` or ``[v6]:5`` (dir-spec §2.1.1 or-address) as (address, port).

    IPv6 addresses come back in their canonical compressed form, without brackets;
    the port must be 1-65535.  None if malformed.
    """
    host, sep, port_text = text.rpartition(":")
    port = parse_int(port_text, 1, 65535)
    if not sep or port is None:
        return None
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1])), port
        except ValueError:
            return None
    if _IPV4.fullmatch(host) is None or any(int(o) > 255 for o in host.split(".")):
        return None
    return host, port


def or_address_arg(item: Item, index: int) -> tuple[str, int]:
    text = item.arg(index, "address:port")
    parsed = parse_or_address(text)
    if parsed is None:
        raise item.error(f"bad address:port {text[:60]!r}")
    return parsed


def format_or_address(address: str, port: int) -> str:
    """The inverse of :func:`parse_or_address` (brackets around IPv6)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- Key=Int lists ---------------------------------------------------------


def kv_ints(item: Item, lo: int = INT32_MIN, hi: int = INT32_MAX) -> dict[str, int]:
    """All arguments as ``Key=Int`` pairs (dir-spec §3.4.1 ``params``, ``bandwidth-weights``).

    Keys are keyword characters plus ``_`` (real parameters such as ``cc_alg``
    use it); a key may appear only once.  Order is preserved.
    """
    out: dict[str, int] = {}
    for arg in item.args:
        key, eq, value_text = arg.partition("=")
        value = parse_int(value_text, lo, hi)
        if not eq or _KV_KEY.fullmatch(key) is None or value is None:
            raise item.error(f"bad Key=Int entry {arg[:60]!r}")
        if key in out:
            raise item.error(f"{key} listed twice")
        out[key] = value
    return out


def format_kv_ints(values: dict[str, int]) -> list[str]:
    """``Key=Int`` arguments sorted by key (dir-spec §3.4.1 requires lexical order)."""
    return [f"{k}={values[k]}" for k in sorted(values)]
