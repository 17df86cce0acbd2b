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
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_BARE = re.compile(r"[A-Za-z0-9+/]*")
_B64_VALUE = {c: v for v, c in enumerate(_B64_ALPHABET)}
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# Seconds may be 60: a leap second, as C tor allows.
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9]|60)")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_IPV6_GROUP = re.compile(r"0|[1-9a-f][0-9a-f]{0,3}")
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


def parse_time(date: str, clock: str) -> int | None:
    """POSIX seconds of ``YYYY-MM-DD`` ``HH:MM:SS`` (UTC), or None if malformed."""
    day = _day_number(date)
    c = _CLOCK.fullmatch(clock)
    if day is None or c is None:
        return None
    hour, minute, second = c.groups()
    return day * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)


@lru_cache(maxsize=1024)
def _day_number(date: str) -> int | None:
    """Days from 1970-01-01 to ``YYYY-MM-DD``, or None if malformed.

    Cached: a consensus has thousands of publication times but only a few
    distinct days (caching whole times would thrash: nearly all differ).
    """
    d = _DATE.fullmatch(date)
    if d is None:
        return None
    year, month, day = int(d[1]), int(d[2]), int(d[3])
    if year < 1 or not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return calendar.timegm((year, month, day, 0, 0, 0)) // 86400


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
    "optional".  Canonical means what the encoder writes: the exact number
    of characters (and of ``=``), and zero bits in the unused low bits of
    the last character, so each value has exactly one accepted spelling.
    (Checked arithmetically rather than by re-encoding: a consensus has
    ~14,000 of these.)
    """
    n_chars = (8 * length + 5) // 6  # characters before any padding
    n_pad = -n_chars % 4  # the "=" signs that pad to a multiple of 4
    bare = text.rstrip("=")
    if len(bare) != n_chars or _B64_BARE.fullmatch(bare) is None:
        return None
    pad = len(text) - n_chars
    if pad == 0:
        ok = padding != "yes" or n_pad == 0
    else:
        ok = padding != "no" and pad == n_pad
    if not ok:
        return None
    unused_bits = 6 * n_chars - 8 * length  # 0, 2 or 4
    if unused_bits and _B64_VALUE[bare[-1]] & ((1 << unused_bits) - 1):
        return None
    return binascii.a2b_base64(bare + "=" * n_pad)


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
        address = host[1:-1]
        if _is_canonical_ipv6(address):
            return address, port
        try:
            return str(ipaddress.IPv6Address(address)), port
        except ValueError:
            return None
    if _IPV4.fullmatch(host) is None or any(int(o) > 255 for o in host.split(".")):
        return None
    return host, port


def _is_canonical_ipv6(text: str) -> bool:
    """Is ``text`` an IPv6 address written exactly as ``str(ipaddress.IPv6Address)`` would?

    That is RFC 5952 §4: 8 groups in lower case without leading zeros, the
    longest run of two or more zero groups (the first, on a tie) as ``::``.
    Relays write their addresses so, and this check is several times faster
    than parsing and re-formatting (a consensus has thousands).  Everything
    else, including IPv4-mapped addresses (which Python 3.13 prints as
    ``::ffff:1.2.3.4``), is left to ipaddress.
    """
    left, sep, right = text.partition("::")
    head = left.split(":") if left else []
    tail = right.split(":") if right else []
    omitted = 8 - len(head) - len(tail)
    if omitted < 2 if sep else omitted != 0:
        return False
    if not head and len(tail) == 3 and tail[0] == "ffff":
        return False  # IPv4-mapped, ::ffff:0:0/96
    if not all(_IPV6_GROUP.fullmatch(g) for g in head + tail):
        return False
    if sep and "0" in (head[-1:] + tail[:1]):
        return False  # "::" must take in the whole run of zero groups it is part of
    # No written run of zero groups may be as long as the omitted one and
    # before it, or longer and after it; without "::", none may be 2 long.
    return _zero_run(head) < (omitted if sep else 2) and _zero_run(tail) <= omitted


def _zero_run(groups: list[str]) -> int:
    """The length of the longest run of "0" groups."""
    longest = run = 0
    for g in groups:
        run = run + 1 if g == "0" else 0
        longest = max(longest, run)
    return longest


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
