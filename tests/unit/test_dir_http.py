"""The HTTP/1.0 response parser and request builder (gotor.dir.http)."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.dir.http import HttpResponse, ResponseParser, decode_body, format_request
from gotor.errors import LocalError, ProtocolError

BODY = b"network-status-version 3 microdesc\n" * 20
OK = (
    b"HTTP/1.0 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
DEFLATED = zlib.compress(BODY)
EOF_DELIMITED = (
    b"HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\nContent-Type: text/plain\r\n\r\n" + DEFLATED
)


def parse_whole(data: bytes, **kw: int) -> HttpResponse:
    p = ResponseParser(**kw)
    r = p.feed(data)
    return r if r is not None else p.feed_eof()


def test_request_bytes() -> None:
    assert format_request("/tor/micro/d/AAAA") == (
        b"GET /tor/micro/d/AAAA HTTP/1.0\r\nAccept-Encoding: deflate, gzip, identity\r\n\r\n"
    )
    assert format_request("/x", host="10.0.0.1:80", accept_encoding=()) == (
        b"GET /x HTTP/1.0\r\nHost: 10.0.0.1:80\r\n\r\n"
    )
    for bad in ("", "x", "/a b", "/\r\nEvil: 1", "/é"):
        with pytest.raises(LocalError):
            format_request(bad)


def test_content_length_response() -> None:
    p = ResponseParser()
    r = p.feed(OK)
    assert r is not None and p.complete
    assert r.status == 200 and r.reason == "OK" and r.ok and r.body == BODY
    assert r.header("content-type") == "text/plain" and r.header("X-Missing") is None
    assert r.raw_length == len(BODY)
    assert p.feed_eof() is r and p.feed(b"") is r


def test_byte_at_a_time_gives_the_same_response() -> None:
    for data in (OK, EOF_DELIMITED):
        p = ResponseParser()
        results = [p.feed(data[i : i + 1]) for i in range(len(data))]
        final = results[-1] if results[-1] is not None else p.feed_eof()
        assert final == parse_whole(data)
        if data is OK:  # complete exactly at the last byte
            assert all(r is None for r in results[:-1])
        assert final.body == BODY


def test_eof_delimited_deflate_body() -> None:
    p = ResponseParser()
    assert p.feed(EOF_DELIMITED) is None  # no length: only the end of the stream ends it
    r = p.feed_eof()
    assert r.body == BODY and r.raw_length == len(DEFLATED)
    assert r.header("Content-Encoding") == "deflate"


def test_lf_only_line_endings_and_empty_reason() -> None:
    r = parse_whole(b"HTTP/1.1 404\nServer: x\n\n")
    assert r.status == 404 and r.reason == "" and not r.ok and r.body == b""
    assert r.headers == (("Server", "x"),)


def test_no_body_statuses_complete_at_the_headers() -> None:
    p = ResponseParser()
    r = p.feed(b"HTTP/1.0 304 Not modified\r\n\r\n")
    assert r is not None and r.status == 304 and r.body == b""


def test_encodings() -> None:
    assert decode_body("gzip", gzip.compress(BODY), 10**6) == BODY
    assert decode_body(" Identity ", BODY, 10**6) == BODY
    assert decode_body(None, BODY, 10**6) == BODY
    with pytest.raises(ProtocolError, match="unsupported"):
        decode_body("x-zstd", BODY, 10**6)
    with pytest.raises(ProtocolError, match="corrupt"):
        decode_body("deflate", b"not zlib at all", 10**6)
    with pytest.raises(ProtocolError, match="garbage"):
        decode_body("deflate", DEFLATED + b"junk", 10**6)
    with pytest.raises(ProtocolError, match="truncated"):
        decode_body("deflate", DEFLATED[:-3], 10**6)


def test_zip_bomb_is_stopped() -> None:
    bomb = zlib.compress(b"\0" * 10_000_000, 9)
    assert len(bomb) < 20_000
    with pytest.raises(ProtocolError, match="after decompression"):
        parse_whole(b"HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + bomb,
                    max_body=100_000, max_decoded=1_000_000)


def test_truncation_at_every_offset_is_an_error() -> None:
    for data in (OK, EOF_DELIMITED):
        for cut in range(len(data)):
            p = ResponseParser()
            r = p.feed(data[:cut])
            assert r is None
            with pytest.raises(ProtocolError):
                p.feed_eof()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"ICY 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.0 20 OK\r\n\r\n", "status line"),
        (b"HTTP/1.0 099 X\r\n\r\n", "status code"),
        (b"HTTP/1.0 200 OK\r\nNo colon here\r\n\r\n", "header line"),
        (b"HTTP/1.0 200 OK\r\nA: 1\r\n folded\r\n\r\n", "header line"),
        (b"HTTP/1.0 200 OK\r\nBad Name: 1\r\n\r\n", "header line"),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0x10\r\n\r\n", "Content-Length"),
        # latin-1 superscript digits pass str.isdigit() but not int() (a fuzzer's find)
        (b"HTTP/1.0 200 OK\r\nContent-Length: 57\xb9\r\n\r\n", "Content-Length"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: \xb2\r\n\r\n", "Content-Length"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nabc", "after the end"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 999999999\r\n\r\n", "exceeds"),
    ],
)
def test_garbage_is_rejected(data: bytes, reason: str) -> None:
    p = ResponseParser(max_body=1000)
    with pytest.raises(ProtocolError, match=reason):
        r = p.feed(data)
        if r is None:
            p.feed_eof()
    with pytest.raises(ProtocolError, match="already failed"):
        p.feed(b"more")


def test_caps() -> None:
    p = ResponseParser(max_header_bytes=100)
    with pytest.raises(ProtocolError, match="headers exceed"):
        p.feed(b"HTTP/1.0 200 OK\r\n" + b"X: y\r\n" * 30)
    p = ResponseParser(max_header_bytes=100)
    with pytest.raises(ProtocolError, match="headers exceed"):
        p.feed(b"HTTP/1.0 200 OK\r\n" + b"X: y\r\n" * 30 + b"\r\n")
    p = ResponseParser(max_body=10)
    assert p.feed(b"HTTP/1.0 200 OK\r\n\r\n0123456789") is None
    with pytest.raises(ProtocolError, match="body exceeds"):
        p.feed(b"x")


def test_data_after_a_complete_response() -> None:
    p = ResponseParser()
    assert p.feed(OK) is not None
    with pytest.raises(ProtocolError, match="after the end"):
        p.feed(b"x")


def test_feed_eof_twice_after_failure() -> None:
    p = ResponseParser()
    with pytest.raises(ProtocolError, match="no response"):
        p.feed_eof()
    with pytest.raises(ProtocolError, match="already failed"):
        p.feed_eof()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_give_a_response_or_protocol_error(data: bytes, cuts: list[int]) -> None:
    p = ResponseParser(max_header_bytes=200, max_body=200)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for a, b in itertools.pairwise(bounds):
            p.feed(data[a:b])
        p.feed_eof()
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(prefix=st.sampled_from([OK[:17], b"HTTP/1.0 200 OK\r\n"]), junk=st.binary(max_size=200))
def test_valid_status_then_junk(prefix: bytes, junk: bytes) -> None:
    p = ResponseParser(max_body=300)
    try:
        if p.feed(prefix + junk) is None:
            p.feed_eof()
    except ProtocolError:
        pass
