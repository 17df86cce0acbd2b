"""The SOCKS 4/4a/5 server machine (gotor.socks.machine): RFC 1928, RFC 1929, Tor's
socks-extensions; every error path, byte-at-a-time feeding, arbitrary input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.cells.relaymsg import EndReason
from gotor.errors import (
    CircuitError,
    ConnectionRefused,
    ConnectionReset,
    LocalError,
    NoPathError,
    StreamError,
    Timeout,
)
from gotor.socks.machine import (
    HTTP_NOT_A_PROXY,
    AddrType,
    Reply,
    SocksCommand,
    SocksError,
    SocksRequest,
    SocksServerMachine,
    State,
    reply_code_for,
)

NOAUTH = b"\x05\x01\x00"
USERPASS = b"\x05\x02\x00\x02"
AUTH = b"\x01\x04user\x04pass"


def socks5(cmd: int, atyp: int, addr: bytes, port: int) -> bytes:
    return bytes([5, cmd, 0, atyp]) + addr + port.to_bytes(2, "big")


def host(name: bytes) -> bytes:
    return bytes([len(name)]) + name


CONNECT_HOST = NOAUTH + socks5(1, 3, host(b"example.com"), 443)
CONNECT_V4 = NOAUTH + socks5(1, 1, bytes([93, 184, 216, 34]), 80)
CONNECT_V6 = NOAUTH + socks5(1, 4, bytes.fromhex("20010db8" + "00" * 11 + "01"), 8080)
RESOLVE = NOAUTH + socks5(0xF0, 3, host(b"torproject.org"), 0)
RESOLVE_PTR = NOAUTH + socks5(0xF1, 1, bytes([1, 2, 3, 4]), 0)
AUTH_CONNECT = USERPASS + AUTH + socks5(1, 3, host(b"a.example"), 22)
SOCKS4 = b"\x04\x01\x00\x50" + bytes([10, 0, 0, 1]) + b"alice\0"
SOCKS4A = b"\x04\x01\x01\xbb" + bytes([0, 0, 0, 1]) + b"\0" + b"onion.example\0"
SOCKS4_RESOLVE = b"\x04\xf0\x00\x00" + bytes([0, 0, 0, 1]) + b"\0" + b"example.org\0"

VALID = {
    "connect-host": (CONNECT_HOST, SocksRequest(5, SocksCommand.CONNECT, "example.com", 443,
                                                AddrType.HOSTNAME)),
    "connect-v4": (CONNECT_V4, SocksRequest(5, SocksCommand.CONNECT, "93.184.216.34", 80,
                                            AddrType.IPV4)),
    "connect-v6": (CONNECT_V6, SocksRequest(5, SocksCommand.CONNECT, "2001:db8::1", 8080,
                                            AddrType.IPV6)),
    "resolve": (RESOLVE, SocksRequest(5, SocksCommand.RESOLVE, "torproject.org", 0,
                                      AddrType.HOSTNAME)),
    "resolve-ptr": (RESOLVE_PTR, SocksRequest(5, SocksCommand.RESOLVE_PTR, "1.2.3.4", 0,
                                              AddrType.IPV4)),
    "auth-connect": (AUTH_CONNECT, SocksRequest(5, SocksCommand.CONNECT, "a.example", 22,
                                                AddrType.HOSTNAME, b"user", b"pass")),
    "socks4": (SOCKS4, SocksRequest(4, SocksCommand.CONNECT, "10.0.0.1", 80, AddrType.IPV4,
                                    b"alice", b"")),
    "socks4a": (SOCKS4A, SocksRequest(4, SocksCommand.CONNECT, "onion.example", 443,
                                      AddrType.HOSTNAME)),
    "socks4-resolve": (SOCKS4_RESOLVE, SocksRequest(4, SocksCommand.RESOLVE, "example.org", 0,
                                                    AddrType.HOSTNAME)),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_requests_whole_and_byte_at_a_time(name: str) -> None:
    data, expected = VALID[name]
    whole = SocksServerMachine()
    whole.receive(data)
    assert whole.request == expected and whole.state is State.REQUESTED
    out_whole = whole.data_to_send()
    slow = SocksServerMachine()
    out = b""
    for i in range(len(data)):
        assert slow.request is None
        slow.receive(data[i : i + 1])
        out += slow.data_to_send()
    assert slow.request == expected and out == out_whole
    assert whole.leftover == b"" and whole.data_to_send() == b""


def test_every_prefix_is_incomplete_not_an_error() -> None:
    for data, _ in VALID.values():
        for cut in range(len(data)):
            m = SocksServerMachine()
            m.receive(data[:cut])
            assert m.request is None and m.state is not State.FAILED


def test_method_negotiation_bytes() -> None:
    m = SocksServerMachine()
    m.receive(NOAUTH)
    assert m.data_to_send() == b"\x05\x00"
    m = SocksServerMachine()
    m.receive(b"\x05\x02\x00\x02")  # both offered: username/password preferred (isolation)
    assert m.data_to_send() == b"\x05\x02"
    m.receive(AUTH)
    assert m.data_to_send() == b"\x01\x00" and m.state is State.SOCKS5_REQUEST


def test_empty_credentials_are_allowed_and_isolate() -> None:
    m = SocksServerMachine()
    m.receive(USERPASS + b"\x01\x00\x00" + socks5(1, 3, host(b"x.example"), 80))
    assert m.request is not None and m.request.isolation == (5, b"", b"")
    plain = SocksServerMachine()
    plain.receive(CONNECT_HOST)
    assert plain.request is not None and plain.request.isolation is None
    four = SocksServerMachine()
    four.receive(SOCKS4)
    assert four.request is not None and four.request.isolation == (4, b"alice", b"")


def test_optimistic_data_is_kept() -> None:
    m = SocksServerMachine()
    m.receive(CONNECT_HOST + b"GET / HTTP/1.1\r\n")
    m.receive(b"Host: example.com\r\n\r\n")
    assert m.leftover == b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
    assert m.reply_connected() == b"\x05\x00\x00\x01" + bytes(6)
    m.receive(b"more")
    assert m.leftover.endswith(b"more") and m.state is State.DONE


def test_success_replies() -> None:
    m = SocksServerMachine()
    m.receive(CONNECT_V6)
    assert m.reply_connected(("2001:db8::2", 1234)) == (
        b"\x05\x00\x00\x04" + bytes.fromhex("20010db8" + "00" * 11 + "02") + b"\x04\xd2"
    )
    r = SocksServerMachine()
    r.receive(RESOLVE)
    assert r.reply_resolved("1.2.3.4") == b"\x05\x00\x00\x01\x01\x02\x03\x04\x00\x00"
    r6 = SocksServerMachine()
    r6.receive(RESOLVE)
    assert r6.reply_resolved("::1") == b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x00"
    p = SocksServerMachine()
    p.receive(RESOLVE_PTR)
    assert p.reply_resolved_ptr("one.example") == b"\x05\x00\x00\x03\x0bone.example\x00\x00"


def test_socks4_replies() -> None:
    m = SocksServerMachine()
    m.receive(SOCKS4)
    assert m.reply_connected() == b"\x00\x5a\x00\x00" + bytes(4)
    e = SocksServerMachine()
    e.receive(SOCKS4A)
    assert e.reply_error(Reply.HOST_UNREACHABLE) == b"\x00\x5b\x00\x00" + bytes(4)
    r = SocksServerMachine()
    r.receive(SOCKS4_RESOLVE)
    assert r.reply_resolved("9.8.7.6") == b"\x00\x5a\x00\x00\x09\x08\x07\x06"
    r6 = SocksServerMachine()
    r6.receive(SOCKS4_RESOLVE)
    assert r6.reply_resolved("2001:db8::1") == b"\x00\x5b\x00\x00" + bytes(4)
    assert r6.state is State.FAILED


@pytest.mark.parametrize(
    ("data", "reply", "reason"),
    [
        (b"\x05\x01\x01", b"\x05\xff", "no acceptable"),  # GSSAPI only
        (b"\x05\x00", b"\x05\xff", "no acceptable"),
        (USERPASS + b"\x02\x01u\x01p", b"\x01\x01", "username/password version"),
        (NOAUTH + b"\x04\x01\x00\x01", b"\x05\x01", "version 4"),
        (NOAUTH + socks5(2, 1, bytes(4), 80), b"\x05\x07", "command 0x2"),  # BIND
        (NOAUTH + socks5(3, 1, bytes(4), 80), b"\x05\x07", "command 0x3"),  # UDP
        (NOAUTH + socks5(0x42, 1, bytes(4), 80), b"\x05\x07", "command 0x42"),
        (NOAUTH + socks5(1, 2, bytes(4), 80), b"\x05\x08", "address type 2"),
        (NOAUTH + socks5(1, 3, host(b""), 80), b"\x05\x01", "hostname"),
        (NOAUTH + socks5(1, 3, host(b"a b"), 80), b"\x05\x01", "hostname"),
        (NOAUTH + socks5(1, 3, host("é.fr".encode()), 80), b"\x05\x01", "hostname"),
        (NOAUTH + socks5(1, 3, host(b"x.example"), 0), b"\x05\x01", "port 0"),
        (NOAUTH + socks5(0xF1, 3, host(b"x.example"), 0), b"\x05\x08", "IP address"),
        (b"\x04\x02\x00\x50" + bytes(4) + b"\0", b"\x00\x5b", "command 0x2"),
        (b"\x04\xf1\x00\x50" + bytes(4) + b"\0", b"\x00\x5b", "SOCKS5 only"),
        (b"\x04\x01\x00\x00" + bytes([1, 2, 3, 4]) + b"\0", b"\x00\x5b", "port 0"),
        (b"\x04\x01\x00\x50" + bytes([0, 0, 0, 9]) + b"\0\x01\0", b"\x00\x5b", "hostname"),
        (b"\x06\x01\x00", b"", "version 6"),
        (b"GET / HTTP/1.1\r\n", HTTP_NOT_A_PROXY[:8], "HTTP"),
        (b"CONNECT example.com:443 HTTP/1.1\r\n", HTTP_NOT_A_PROXY[:8], "HTTP"),
    ],
)
def test_errors_have_the_right_reply(data: bytes, reply: bytes, reason: str) -> None:
    m = SocksServerMachine()
    with pytest.raises(SocksError, match=reason) as info:
        m.receive(data)
    # the method choice due before the error is sent first, then the error reply
    lead = b"\x05\x00" if data.startswith(NOAUTH) else (
        b"\x05\x02" if data.startswith(USERPASS) else b"")
    assert info.value.reply.startswith(lead)
    body = info.value.reply[len(lead):]
    assert body[: len(reply)] == reply
    if reply[:1] == b"\x05" and len(body) > 2:
        assert len(body) == 10  # VER REP RSV ATYP=1 0.0.0.0:0
    assert m.state is State.FAILED
    with pytest.raises(SocksError, match="already failed"):
        m.receive(b"\x05")


def test_socks4_can_be_disabled() -> None:
    m = SocksServerMachine(allow_socks4=False)
    with pytest.raises(SocksError, match="version 4"):
        m.receive(SOCKS4)


def test_handshake_size_cap() -> None:
    m = SocksServerMachine()
    with pytest.raises(SocksError, match="longer than"):
        m.receive(b"\x04\x01\x00\x50" + bytes([1, 2, 3, 4]) + b"u" * 2000)


def test_reply_misuse_is_a_local_error() -> None:
    m = SocksServerMachine()
    with pytest.raises(LocalError):
        m.reply_connected()  # no request yet
    m.receive(CONNECT_HOST)
    with pytest.raises(LocalError):
        m.reply_error(Reply.SUCCEEDED)
    for builder in ("reply_resolved", "reply_resolved_ptr"):
        other = SocksServerMachine()
        other.receive(CONNECT_HOST)
        with pytest.raises(LocalError):
            getattr(other, builder)("1.1.1.1")  # a CONNECT answered as a resolve
    assert m.reply_error(Reply.TTL_EXPIRED) == b"\x05\x06\x00\x01" + bytes(6)
    with pytest.raises(LocalError):
        m.reply_connected()  # already answered
    r = SocksServerMachine()
    r.receive(RESOLVE)
    with pytest.raises(LocalError):
        r.reply_connected()
    with pytest.raises(LocalError, match="not an IP address"):
        r.reply_resolved("ptr.example")  # a resolver's answer that is no address
    c = SocksServerMachine()
    c.receive(CONNECT_HOST)
    with pytest.raises(LocalError, match="not an IP address"):
        c.reply_connected(("nowhere", 0))
    # Neither changed the state: the request can still be answered.
    assert r.reply_error(Reply.GENERAL_FAILURE) == b"\x05\x01\x00\x01" + bytes(6)
    assert c.reply_connected() == b"\x05\x00\x00\x01" + bytes(6)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (StreamError("x", EndReason.MISC), Reply.GENERAL_FAILURE),
        (StreamError("x", EndReason.RESOLVEFAILED), Reply.HOST_UNREACHABLE),
        (StreamError("x", EndReason.CONNECTREFUSED), Reply.CONNECTION_REFUSED),
        (StreamError("x", EndReason.EXITPOLICY), Reply.NOT_ALLOWED),
        (StreamError("x", EndReason.DESTROY), Reply.GENERAL_FAILURE),
        (StreamError("x", EndReason.DONE), Reply.CONNECTION_REFUSED),
        (StreamError("x", EndReason.TIMEOUT), Reply.TTL_EXPIRED),
        (StreamError("x", EndReason.NOROUTE), Reply.HOST_UNREACHABLE),
        (StreamError("x", EndReason.HIBERNATING), Reply.GENERAL_FAILURE),
        (StreamError("x", EndReason.INTERNAL), Reply.GENERAL_FAILURE),
        (StreamError("x", EndReason.RESOURCELIMIT), Reply.GENERAL_FAILURE),
        (StreamError("x", EndReason.CONNRESET), Reply.CONNECTION_REFUSED),
        (StreamError("x", EndReason.TORPROTOCOL), Reply.GENERAL_FAILURE),
        (StreamError("x", 99), Reply.GENERAL_FAILURE),
        (StreamError("circuit died"), Reply.GENERAL_FAILURE),
        (Timeout("slow"), Reply.TTL_EXPIRED),
        (NoPathError("no exit"), Reply.NOT_ALLOWED),
        (ConnectionRefused("no"), Reply.CONNECTION_REFUSED),
        (ConnectionReset("gone"), Reply.GENERAL_FAILURE),
        (CircuitError("destroyed", 1), Reply.GENERAL_FAILURE),
    ],
)
def test_reply_codes_for_errors(exc: BaseException, code: Reply) -> None:
    assert reply_code_for(exc) is code


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_arbitrary_input_is_a_request_or_a_socks_error(data: bytes, cuts: list[int]) -> None:
    m = SocksServerMachine()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for a, b in itertools.pairwise(bounds):
            m.receive(data[a:b])
            m.data_to_send()
    except SocksError:
        assert m.state is State.FAILED
        return
    if m.request is not None:
        assert 0 <= m.request.port <= 65535 and m.request.host


@settings(max_examples=200, deadline=None)
@given(head=st.sampled_from([NOAUTH, USERPASS, USERPASS + AUTH, b"\x04\x01"]),
       tail=st.binary(max_size=300))
def test_valid_start_then_junk(head: bytes, tail: bytes) -> None:
    m = SocksServerMachine()
    try:
        m.receive(head + tail)
    except SocksError:
        pass
