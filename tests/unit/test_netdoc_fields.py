"""Shared argument types (times, hex, base64, integers, addresses, Key=Int lists),
subprotocol versions, and the checked-document time window."""

from __future__ import annotations

import base64
import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.errors import DocumentError, ProtocolError
from gotor.netdoc import fields
from gotor.netdoc.checked import (
    ExpiredError,
    NotYetValidError,
    Tolerance,
    Unverified,
    ValidityWindow,
)
from gotor.netdoc.protover import Protocols
from gotor.netdoc.tokenize import tokenize


def item(line: str):  # type: ignore[no-untyped-def]
    return tokenize((line + "\n").encode())[0]


# --- times -------------------------------------------------------------------


def test_time_parse_and_format() -> None:
    assert fields.parse_time("2000-01-01", "00:02:20") == 946684940
    assert fields.format_time(946684940) == "2000-01-01 00:02:20"
    assert fields.parse_time("2038-01-01", "00:00:00") == 2145916800
    assert fields.time_arg(item("t 2020-08-07 12:42:40 extra"), 0) == 1596804160


@pytest.mark.parametrize(
    ("date", "clock"),
    [
        ("2000-13-01", "00:00:00"),
        ("2001-02-29", "00:00:00"),
        ("2000-01-01", "24:00:00"),
        ("2000-1-01", "00:00:00"),
        ("2000-01-01", "00:00"),
        ("0000-01-01", "00:00:00"),
        ("２０００-01-01", "00:00:00"),
        ("2000-01-01", "00:60:00"),
    ],
)
def test_bad_times(date: str, clock: str) -> None:
    assert fields.parse_time(date, clock) is None
    with pytest.raises(DocumentError, match="bad when"):
        fields.time_arg(item(f"t {date} {clock}"), 0, "when")


@given(st.integers(min_value=0, max_value=253402300799))
def test_time_round_trip(when: int) -> None:
    date, clock = fields.format_time(when).split()
    assert fields.parse_time(date, clock) == when
    assert calendar.timegm(tuple(map(int, [*date.split("-"), *clock.split(":")]))) == when


# --- integers, hex, base64 -----------------------------------------------------


@pytest.mark.parametrize("text", ["+1", "1_0", "١", " 1", "0x1", "", "-", "1" * 25])
def test_int_rejects_what_python_would_accept(text: str) -> None:
    assert fields.parse_int(text, -(10**30), 10**30) is None


def test_int_arg_range_and_errors() -> None:
    assert fields.int_arg(item("x -5 7"), 0, "n", -10, 10) == -5
    with pytest.raises(DocumentError, match=r"n must be an integer in \[0, 6\]"):
        fields.int_arg(item("x 7"), 0, "n", 0, 6)


def test_hex_arg() -> None:
    assert fields.hex_arg(item("x " + "aB" * 20), 0, "id") == bytes([0xAB]) * 20
    for bad in ["aB" * 19, "zz" * 20, "a b" * 10]:
        with pytest.raises(DocumentError, match="40 hex digits"):
            fields.hex_arg(item("x " + bad), 0, "id")
    assert fields.format_hex(b"\x0a\xff") == "0AFF"


@pytest.mark.parametrize(
    ("text", "padding", "ok"),
    [
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA", "no", True),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "no", False),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "optional", True),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA", "yes", False),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "yes", True),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAB", "no", False),  # non-zero unused bits: not canonical
        ("AAAAAAAAAAAAAAAAAAAAAAAAAA", "no", False),  # wrong length
        ("AAAAAAAAAAAAAAAAAAAAAAAAAA*", "no", False),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAA==", "optional", False),  # wrong amount of padding
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "no", False),  # 29 characters: not base64 at all
    ],
)
def test_b64_arg_is_canonical_and_exact(text: str, padding: str, ok: bool) -> None:
    if ok:
        assert fields.b64_arg(item("x " + text), 0, "id", 20, padding) == bytes(20)
    else:
        with pytest.raises(DocumentError, match="base64 of 20 bytes"):
            fields.b64_arg(item("x " + text), 0, "id", 20, padding)


@given(st.binary(min_size=1, max_size=40), st.booleans())
def test_b64_round_trip(data: bytes, padded: bool) -> None:
    text = fields.format_b64(data, padded=padded)
    assert text == base64.b64encode(data).decode().rstrip("=" if not padded else "")
    padding = "yes" if padded else "no"
    assert fields.b64_arg(item("x " + text), 0, "v", len(data), padding) == data


# --- addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5002", ("127.0.0.1", 5002)),
        ("[::1]:5002", ("::1", 5002)),
        ("[2001:DB8:0:0::1]:443", ("2001:db8::1", 443)),
        ("1.2.3.4:0", None),
        ("1.2.3.4:65536", None),
        ("1.2.3.256:1", None),
        ("01.2.3.4:1", None),
        ("::1:5", None),
        ("[zz::1]:5", None),
        ("1.2.3.4", None),
    ],
)
def test_or_addresses(text: str, expected: tuple[str, int] | None) -> None:
    assert fields.parse_or_address(text) == expected
    if expected is not None:
        assert fields.parse_or_address(fields.format_or_address(*expected)) == expected


def test_ipv4_arg() -> None:
    assert fields.ipv4_arg(item("x 10.0.0.255"), 0) == "10.0.0.255"
    for bad in ["10.0.0", "10.0.0.256", "10.00.0.1", "a.b.c.d"]:
        with pytest.raises(DocumentError, match="bad IPv4"):
            fields.ipv4_arg(item("x " + bad), 0)


def test_kv_ints() -> None:
    assert fields.kv_ints(item("params b=-1 a=2 cc_alg=2")) == {"b": -1, "a": 2, "cc_alg": 2}
    assert fields.format_kv_ints({"b": -1, "a": 2}) == ["a=2", "b=-1"]
    for bad in ["a", "a=", "=1", "a=2147483648", "a=1 a=2", "a.b=1"]:
        with pytest.raises(DocumentError):
            fields.kv_ints(item("params " + bad))


# --- subprotocol versions (dir-spec §2.1.1 "proto") ---------------------------------


def test_protocols_parse_query_and_format() -> None:
    p = Protocols.parse("Link=1-5 LinkAuth=1,3 Relay=1-4 Padding=")
    assert p.supports("Relay", 4) and p.supports("Link", 5) and not p.supports("Relay", 5)
    assert not p.supports("HSDir", 2) and not p.supports("Link", 64) and not p.supports("Link", -1)
    assert p["LinkAuth"] == {1, 3} and p["Padding"] == frozenset()
    assert str(p) == "Link=1-5 LinkAuth=1,3 Padding= Relay=1-4"
    assert Protocols.parse(str(p)) == p and hash(Protocols.parse(str(p))) == hash(p)
    assert str(Protocols.parse("B=5,1-3,4 A=63")) == "A=63 B=1-5"
    assert len(p) == 4 and list(p) == ["Link", "LinkAuth", "Padding", "Relay"]
    assert repr(Protocols.parse("A=1")) == "Protocols('A=1')"


def test_protocols_required_and_missing() -> None:
    have = Protocols.parse("Link=1-5 Relay=1-4")
    assert have.supports_all(Protocols.parse("Link=4 Relay=2"))
    need = Protocols.parse("Link=4-6 Cons=2")
    assert not have.supports_all(need)
    assert str(have.missing(need)) == "Cons=2 Link=6"
    assert Protocols.from_versions({"Relay": {1, 2, 4}}) == Protocols.parse("Relay=1-2,4")
    with pytest.raises(ValueError):
        Protocols.from_versions({"Relay": {64}})


@pytest.mark.parametrize(
    "text", ["Link", "Link=64", "Link=5-3", "Link=01", "Link=1 Link=2", "-x=1", "Link=1,", "Link=a"]
)
def test_protocols_malformed(text: str) -> None:
    with pytest.raises(ProtocolError):
        Protocols.parse(text)


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True),
        st.frozensets(st.integers(0, 63), max_size=10),
        max_size=5,
    )
)
def test_protocols_round_trip(versions: dict[str, frozenset[int]]) -> None:
    p = Protocols.from_versions(versions)
    assert Protocols.parse(str(p)) == p
    assert all(p[name] == vs for name, vs in versions.items())


# --- validity windows and the Unverified wrapper ------------------------------------


def test_validity_window_with_tolerance() -> None:
    w = ValidityWindow(100, 200)
    assert w.contains(100) and w.contains(200) and not w.contains(99) and not w.contains(201)
    assert (
        w.contains(90, 10)
        and w.contains(210, Tolerance(0, 10))
        and not w.contains(90, Tolerance(0, 10))
    )
    w.check(150)
    with pytest.raises(NotYetValidError, match="not valid until 1970-01-01 00:01:40"):
        w.check(99, what="thing")
    with pytest.raises(ExpiredError, match="expired at 1970-01-01 00:03:20"):
        w.check(201)
    w.check(205, Tolerance(after=5))
    assert str(w) == "1970-01-01 00:01:40 .. 1970-01-01 00:03:20"


def test_unverified_hides_content_behind_explicit_calls() -> None:
    u = Unverified("secret", ValidityWindow(1, 2))
    assert not hasattr(u, "document") and not hasattr(u, "content")
    assert u.validity == ValidityWindow(1, 2)
    assert u.dangerously_assume_verified() == "secret"
    assert u._checked(None, 0, "x") == "secret"
    with pytest.raises(ExpiredError):
        u._checked(3, 0, "x")
