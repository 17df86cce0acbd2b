"""The user agents: their SOCKS5 client and HTTP checks catch every way a fetch can go wrong.

Runs use the small scenario with a stand-in proxy (gotor's SOCKS server
connecting directly, tests/sim/scenario_helpers.py) whose upstream streams can
be tampered with: a flipped byte down or up is *corruption* (never accepted,
never retried into success), a cut connection is a failed attempt that a retry
repairs, a refused CONNECT surfaces its SOCKS reply code.  The agents' own
SOCKS and HTTP parsers return a value or raise a GotorError on arbitrary
server bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenario_helpers import direct_proxy, small

from gotor.errors import ConnectionRefused, GotorError, ProtocolError
from gotor.runtime.api import ByteStream
from gotor.socks.machine import Isolation
from gotor.socks.server import SocksServer
from simnet.nodes.agent import (
    FetchPlan,
    _Buffered,
    content_length,
    parse_response_head,
    request_head,
    socks5_connect,
    socks_connect_request,
)
from simnet.scenario import ClientSetup, ProxyClient, ScenarioResult, run_scenario


def _by_name(result: ScenarioResult) -> dict[str, bool]:
    return {c.name: c.ok for c in result.invariants}


def test_downloads_and_uploads_verified_through_a_socks_proxy() -> None:
    result = run_scenario(small(traffic={"uploads": 0.5}), 2, factory=direct_proxy)
    assert result.passed, result.invariants
    uploads = [r for r in result.records if r.plan.upload]
    assert uploads and len(uploads) < len(result.records)
    for r in result.records:
        assert r.ok and not r.corrupt and r.attempts == 1 and r.verified == r.plan.size
        assert r.latency is not None and r.ttfb is not None and 0 < r.ttfb <= r.latency
    assert [r.plan.index for r in result.records] == list(range(6))


@dataclass
class Tamper:
    """An upstream stream that flips or cuts bytes at given offsets (per direction)."""

    inner: ByteStream
    flip_down: int | None = None
    flip_up: int | None = None
    cut_down: int | None = None
    down: int = 0
    up: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self.cut_down is not None and self.down >= self.cut_down:
            self.inner.abort()
            return b""
        data = bytearray(await self.inner.read(max_bytes))
        if self.cut_down is not None:
            data = data[: self.cut_down - self.down]
        if self.flip_down is not None and self.down <= self.flip_down < self.down + len(data):
            data[self.flip_down - self.down] ^= 0x01
        self.down += len(data)
        return bytes(data)

    def write(self, data: bytes) -> None:
        buf = bytearray(data)
        if self.flip_up is not None and self.up <= self.flip_up < self.up + len(buf):
            buf[self.flip_up - self.up] ^= 0x80
        self.up += len(buf)
        self.inner.write(bytes(buf))


def tampering_proxy(make: Callable[[int, ByteStream], ByteStream | None]) -> Any:
    """A direct proxy whose n-th upstream connection is ``make(n, stream)`` (None: refuse)."""

    @asynccontextmanager
    async def factory(setup: ClientSetup) -> AsyncIterator[ProxyClient]:
        rt, dns = setup.rt, setup.topology.dns
        count = 0

        async def connect(host: str, port: int, _iso: Isolation | None) -> ByteStream:
            nonlocal count
            count += 1
            n = count
            stream = await rt.connect((dns.lookup(host) or ("",))[0], port)
            wrapped = make(n, stream)
            if wrapped is None:
                stream.abort()
                raise ConnectionRefused("refused by the test")
            return wrapped

        server = SocksServer(rt, connect)
        listener = await server.start(*setup.socks)
        try:
            yield _Client(listener.address)
        finally:
            await server.aclose()

    return factory


@dataclass
class _Client:
    socks_address: tuple[str, int] | None
    stats: object = None


def test_a_flipped_byte_is_corruption_and_fails_the_run() -> None:
    sc = small(traffic={"fetches": 1, "retries": 2})
    # The second connection has a body byte flipped (the head is ~150 bytes).
    result = run_scenario(sc, 1, factory=tampering_proxy(
        lambda n, s: Tamper(s, flip_down=400) if n == 2 else s))
    bad = [r for r in result.records if r.corrupt]
    assert len(bad) == 1 and not bad[0].ok and bad[0].attempts == 1
    assert bad[0].errors[0].startswith("content mismatch at byte ")
    offset = int(bad[0].errors[0].rsplit(" ", 1)[1])
    assert 200 < offset < 400           # the body offset of response byte 400
    assert not result.passed
    checks = _by_name(result)
    assert not checks["no corrupted bytes"] and not checks["all fetches complete"]


def test_a_corrupted_upload_is_reported_by_the_server_and_caught() -> None:
    sc = small(traffic={"fetches": 1, "uploads": 1.0, "retries": 1})
    result = run_scenario(sc, 1, factory=tampering_proxy(
        lambda n, s: Tamper(s, flip_up=300) if n == 1 else s))
    first = min(result.records, key=lambda r: (r.started, r.plan.index))
    corrupt = [r for r in result.records if r.corrupt]
    assert len(corrupt) == 1 and corrupt[0].plan.upload and not corrupt[0].ok
    assert corrupt[0] is first
    assert not _by_name(result)["no corrupted bytes"]


def test_a_cut_connection_fails_an_attempt_and_a_retry_repairs_it() -> None:
    cut_first = tampering_proxy(lambda n, s: Tamper(s, cut_down=300) if n == 1 else s)
    sc = small(traffic={"fetches": 2, "retries": 1, "sizes": [5000]})
    result = run_scenario(sc, 2, factory=cut_first)
    assert result.passed, result.invariants
    retried = [r for r in result.records if r.attempts == 2]
    assert len(retried) == 1 and retried[0].ok and not retried[0].corrupt
    assert "truncated" in retried[0].errors[0] or "closed" in retried[0].errors[0]
    # Without retries the same cut is a failed fetch and the run fails.
    result = run_scenario(small(traffic={"fetches": 2, "sizes": [5000]}), 2,
                          factory=cut_first)
    assert not result.passed and not _by_name(result)["all fetches complete"]
    assert sum(not r.ok for r in result.records) == 1
    assert not any(r.corrupt for r in result.records)


def test_a_refused_connect_reports_the_socks_reply_code() -> None:
    result = run_scenario(small(), 1, factory=tampering_proxy(lambda n, s: None))
    assert result.records and not any(r.ok for r in result.records)
    assert all(r.errors == ["failed: SOCKS CONNECT failed: connection refused (5)"]
               for r in result.records)
    checks = _by_name(result)
    assert not checks["all fetches complete"] and checks["no corrupted bytes"]


def test_isolation_keys_reach_the_proxy_as_socks_credentials() -> None:
    for mode, expected in (("agent", {b"agent0", b"agent1"}),
                           ("fetch", {f"fetch{i}".encode() for i in range(6)})):
        seen: list[Isolation | None] = []

        @asynccontextmanager
        async def spy(setup: ClientSetup, seen: list[Isolation | None] = seen
                      ) -> AsyncIterator[ProxyClient]:
            async with direct_proxy(setup) as client:
                yield client
                seen.extend(iso for _h, _p, iso in client.stats.connects)

        result = run_scenario(small(traffic={"isolation": mode}), 1, factory=spy)
        assert result.passed
        assert {iso[1] for iso in seen if iso} == expected
        assert all(iso is not None and iso[0] == 5 and iso[2] == b"simnet" for iso in seen)


# --- the agent's parsers on arbitrary server bytes -------------------------------------------------
class _Scripted:
    """A stream that replays fixed reads and records writes (no runtime needed)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.written = bytearray()

    async def read(self, max_bytes: int = 65536) -> bytes:
        return self.chunks.pop(0)[:max_bytes] if self.chunks else b""

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None:
        return None


def _run(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine suspended on something other than the stream")


def test_socks5_exchange_bytes() -> None:
    reply = bytes([5, 0]) + bytes([5, 0, 0, 1, 10, 0, 0, 7, 0x1F, 0x90])
    stream = _Scripted([reply])
    bound = _run(socks5_connect(_Buffered(stream), "web0.simnet.test", 80, None))  # type: ignore[arg-type]
    assert bound == ("10.0.0.7", 8080)
    assert bytes(stream.written) == bytes([5, 1, 0]) + socks_connect_request("web0.simnet.test", 80)
    assert socks_connect_request("a.b", 443) == b"\x05\x01\x00\x03\x03a.b\x01\xbb"
    stream = _Scripted([bytes([5, 2]), bytes([1, 0]), bytes([5, 0, 0, 3, 3]) + b"x.y\x00\x50"])
    bound = _run(socks5_connect(_Buffered(stream), "h", 80, ("user", "pw")))  # type: ignore[arg-type]
    assert bound == ("x.y", 80)
    assert bytes(stream.written).startswith(b"\x05\x01\x02\x01\x04user\x02pw")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=24), max_size=5), st.booleans())
def test_socks5_client_on_arbitrary_replies_returns_or_raises_gotor_error(
        chunks: list[bytes], auth: bool) -> None:
    stream = _Scripted(chunks)
    try:
        host, port = _run(socks5_connect(_Buffered(stream), "h.test", 80,  # type: ignore[arg-type]
                                         ("u", "p") if auth else None))
    except GotorError:
        return
    assert isinstance(host, str) and 0 <= port < 65536


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_response_head_parser_returns_or_raises_protocol_error(head: bytes) -> None:
    try:
        status, headers = parse_response_head(head)
    except ProtocolError:
        return
    assert 0 <= status <= 999 and all(k == k.lower() for k in headers)


@pytest.mark.parametrize("head", [b"", b"HTTP/1.0 2000 OK", b"SPDY/3 200 OK",
                                  b"HTTP/1.0 200 OK\r\nNoColon", b"HTTP/1.0 abc",
                                  b"HTTP/1.0 2\xb90 OK"])   # latin-1 "¹" is a str digit
def test_malformed_response_heads(head: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_response_head(head)


@pytest.mark.parametrize("value", ["", "-1", "12a", "1" * 16, "5\xb9", "\u0665"])
def test_bad_content_lengths(value: str) -> None:
    with pytest.raises(ProtocolError):
        content_length({"content-length": value})


def test_request_heads() -> None:
    get = FetchPlan(0, 0, 0.0, "web0.simnet.test", 80, 123, "7.0")
    post = FetchPlan(1, 0, 0.0, "web0.simnet.test", 80, 99, "7.1", upload=True)
    assert request_head(get) == (b"GET /bytes/123?seed=7.0 HTTP/1.0\r\n"
                                 b"Host: web0.simnet.test\r\n\r\n")
    assert request_head(post) == (b"POST /upload?seed=7.1 HTTP/1.0\r\nHost: web0.simnet.test"
                                  b"\r\nContent-Length: 99\r\n\r\n")
