"""The consensus fast path against the general path it must agree with.

gotor.netdoc.consensus parses router entries written in C tor's shape with one
regex per flavour (the note above ``_parse_fast``) and falls back to the general
parser (``_parse_general``, tokenizer + section rules) for everything else.  The
contract tested here: on every document the fast path accepts, it returns what
the general path returns; on every other document it gives way, so that
``parse_consensus`` returns the general path's result or raises its exact error
(message and line number).
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import authorities, consensus, doc

from gotor.errors import DocumentError, ProtocolError
from gotor.netdoc.build_dir import build_consensus
from gotor.netdoc.consensus import (
    Bandwidth,
    Flavor,
    UnverifiedConsensus,
    _parse_fast,
    _parse_general,
    parse_consensus,
)
from gotor.netdoc.fields import _b64decode, _is_canonical_ipv6, parse_or_address
from gotor.netdoc.policy import PortPolicy

REAL = [
    "testnet-arti-shadow/cached-consensus",
    "testnet-arti-shadow/cached-microdesc-consensus",
    "testnet-arti-chutney-2020/mdconsensus1.txt",
    "consdiff-small/consensus1.txt",
    "consdiff-small/consensus2.txt",
]

Outcome = tuple[object, ...]


def _synthetic(flavor: Flavor) -> bytes:
    """A small consensus exercising every router line: a, m/p, v absent, Measured, Unmeasured."""
    auths = authorities(1)
    c = consensus(flavor, 8, auths)
    routers = list(c.routers)
    routers[1] = replace(routers[1], version=None, protocols=None, bandwidth=None, policy=None)
    routers[2] = replace(routers[2], bandwidth=Bandwidth(7, 5, False), flags=frozenset())
    routers[3] = replace(routers[3], addresses=(("2001:db8::7", 9), ("10.9.8.7", 1)))
    if flavor is Flavor.NS:
        routers[5] = replace(routers[5], policy=PortPolicy.parse("accept 1-79,81-65535"))
    return build_consensus(replace(c, routers=tuple(routers)), [auths[0].signer])


SYNTHETIC = {flavor: _synthetic(flavor) for flavor in Flavor}


def _outcome(parse: object, data: bytes) -> Outcome:
    try:
        u = parse(data)  # type: ignore[operator]
    except DocumentError as exc:
        return ("error", str(exc), exc.line)
    assert isinstance(u, UnverifiedConsensus)
    return ("ok", u.dangerously_assume_verified(), u.signed_digest("sha1"))


def _fast(data: bytes) -> Outcome | None:
    try:
        u = _parse_fast(data)
    except ProtocolError:
        return None
    return None if u is None else _outcome(lambda _: u, data)


def _assert_agree(data: bytes) -> bool:
    """The contract; returns whether the fast path took the document."""
    general = _outcome(_parse_general, data)
    fast = _fast(data)
    if fast is not None:
        assert fast == general
    assert _outcome(parse_consensus, data) == general
    return fast is not None


@pytest.mark.parametrize("name", REAL)
def test_real_documents_take_the_fast_path(name: str) -> None:
    assert _assert_agree(doc(name))


@pytest.mark.parametrize("flavor", list(Flavor))
def test_synthetic_documents_take_the_fast_path(flavor: Flavor) -> None:
    data = SYNTHETIC[flavor]
    assert b"\na [2001:db8::7]:9\n" in data and b"\nw Bandwidth=7 Measured=5\n" in data
    assert _assert_agree(data)


# Each edit (a regex substitution, made once in the router section) leaves a
# document the general path accepts, in a shape the fast path leaves to it, or
# one the general path rejects, with the error it must report.
EDITS = {
    "extra r argument": (rb"(\nr .*)\n", rb"\1 extra\n"),
    "tab": (rb"\ns ", rb"\ns\t"),
    "double space": (rb"\nv ", rb"\nv  "),
    "trailing space in v": (rb"\n(v .*)\n", rb"\n\1 \n"),
    "unknown keyword": (rb"\nv ", rb"\nx-new 1\nv "),
    "v twice": (rb"\n(v .*)\n", rb"\n\1\n\1\n"),
    "s after v": (rb"\n(s .*)\n(v .*)\n", rb"\n\2\n\1\n"),
    "padded identity": (rb"\n(r [^ ]+ [^ ]+) ", rb"\n\1= "),
    "bad date": (rb"\n(r .*)-11-", rb"\n\1-13-"),
    "port 0": (rb"\n(r .*) ([0-9]+) ([0-9]+)\n", rb"\n\1 0 \3\n"),
    "w without Bandwidth": (rb"\nw Bandwidth=", rb"\nw Measured="),
    "bad pr": (rb"\npr ", rb"\npr Cons=1-99 "),
    "annotation": (rb"\nv ", rb"\n@ann\nv "),
    "empty line": (rb"\nv ", rb"\n\nv "),
    "object": (rb"\nv ", rb"\n-----BEGIN X-----\n-----END X-----\nv "),
    "reserved keyword": (rb"\nv ", rb"\nknown-flags Fast\nv "),
    "unsorted": (rb"\n(r [^ ]+ )[A-Za-z0-9+/]", rb"\1A"),
}


# Irregular, yet within what the fast path takes (and must get right).
TAKEN = {
    "trailing space": (rb"\n(pr .*)\n", rb"\n\1 \n"),
    "non-canonical IPv6": (rb"\na \[2001:db8::7\]", rb"\na [2001:DB8:0::7]"),
    "unknown w key": (rb"\nw (.*)\n", rb"\nw \1 Future=x\n"),
}


def _edited(flavor: Flavor, pattern: bytes, replacement: bytes) -> bytes:
    original = SYNTHETIC[flavor]
    at = original.index(b"\nr ", original.index(b"\nr ") + 1)  # the second entry
    data = original[:at] + re.sub(pattern, replacement, original[at:], count=1)
    assert data != original
    return data


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("edit", EDITS)
def test_irregular_entries_are_left_to_the_general_path(flavor: Flavor, edit: str) -> None:
    assert not _assert_agree(_edited(flavor, *EDITS[edit]))


@pytest.mark.parametrize("flavor", list(Flavor))
@pytest.mark.parametrize("edit", TAKEN)
def test_unusual_but_regular_entries_take_the_fast_path(flavor: Flavor, edit: str) -> None:
    assert _assert_agree(_edited(flavor, *TAKEN[edit]))


_ALPHABET = [b" ", b"\t", b"=", b"0", b"9", b"A", b"z", b"+", b"/", b":", b"-", b".", b"\xc3\xa9"]
_LINES = [
    b"r x AAAAAAAAAAAAAAAAAAAAAAAAAAA 2023-01-01 00:00:00 1.2.3.4 1 0",
    b"a [::1]:5",
    b"m AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    b"s Fast",
    b"v Tor 0",
    b"pr Link=1",
    b"w Bandwidth=1 Unmeasured=1",
    b"p reject 1-65535",
    b"directory-footer",
    b"future-line ok",
]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_router_sections_agree(data: st.DataObject) -> None:
    flavor = data.draw(st.sampled_from(list(Flavor)))
    lines = SYNTHETIC[flavor].split(b"\n")
    first = next(n for n, line in enumerate(lines) if line.startswith(b"r "))
    last = lines.index(b"directory-footer")
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(first, last))
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "insert", "poke"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "insert":
            lines.insert(i, data.draw(st.sampled_from(_LINES)))
        else:
            k = data.draw(st.integers(0, len(lines[i])))
            cut = data.draw(st.integers(0, 2))
            lines[i] = lines[i][:k] + data.draw(st.sampled_from(_ALPHABET)) + lines[i][k + cut :]
    _assert_agree(b"\n".join(lines))


# --- helpers the fast path leans on (gotor.netdoc.fields), against references --------


def _b64_reference(text: str, length: int, padding: str) -> bytes | None:
    """Canonical base64 by re-encoding (how fields checked it before)."""
    bare = text.rstrip("=")
    if padding == "no" and bare != text:
        return None
    try:
        data = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
    except ValueError:
        return None
    padded = base64.b64encode(data).decode()
    if len(data) != length or padded.rstrip("=") != bare:
        return None
    if text == padded or (text == bare and padding != "yes"):
        return data
    return None


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=34),
    st.sampled_from([0, 1, 2, 3, 20, 32]),
    st.sampled_from(["no", "yes", "optional"]),
    st.integers(0, 3),
    st.text("A=/+z09 é", max_size=3),
)
def test_b64_matches_reencoding(
    data: bytes, length: int, padding: str, strip: int, junk: str
) -> None:
    encoded = base64.b64encode(data).decode()
    for text in (encoded, encoded[: len(encoded) - strip], encoded + junk, junk + encoded):
        assert _b64decode(text, length, padding) == _b64_reference(text, length, padding)


def test_canonical_ipv6_agrees_with_ipaddress() -> None:
    """Every way of writing every address whose groups are 0, 1 or ffff."""
    taken = 0
    for groups in itertools.product(["0", "1", "ffff"], repeat=8):
        forms = {":".join(groups), ":".join(g.upper().zfill(4) for g in groups)}
        for i, j in itertools.combinations(range(9), 2):
            if all(g == "0" for g in groups[i:j]):
                forms.add(":".join(groups[:i]) + "::" + ":".join(groups[j:]))
        for text in forms:
            canonical = str(ipaddress.IPv6Address(text))
            if _is_canonical_ipv6(text):
                taken += 1
                assert text == canonical
            assert parse_or_address(f"[{text}]:1") == (canonical, 1)
    # One canonical form per address, but IPv4-mapped ones (::ffff:a:b) are left to ipaddress.
    assert taken == 3**8 - 3**2
