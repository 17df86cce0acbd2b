"""The SOCKS listener end to end under simnet (gotor.socks.server).

An application host speaks SOCKS to a proxy host running SocksServer; the
proxy's ``connect`` callback opens plain simnet TCP to a target host (an echo
server), so the test sees every byte go through the splice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from gotor.cells.relaymsg import EndReason
from gotor.errors import ClosedError, ConnectionReset, LocalError, NetworkError, StreamError
from gotor.runtime.api import ByteStream
from gotor.runtime.sync import Event
from gotor.socks.machine import Isolation
from gotor.socks.server import SocksServer, splice
from simnet.net import Host, Network
from simnet.world import World

PROXY_PORT = 9050
ECHO_PORT = 7
SINK_PORT = 9
NOAUTH = b"\x05\x01\x00"


def connect_req(name: bytes, port: int) -> bytes:
    return b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big")


@dataclass
class Setup:
    world: World
    app: Host
    proxy: Host
    target: Host
    server: SocksServer
    calls: list[tuple[str, int, Isolation | None]] = field(default_factory=list)


async def echo(stream: ByteStream) -> None:
    while data := await stream.read():
        stream.write(data)
        await stream.drain()


async def reset_after_hello(stream: ByteStream) -> None:
    await stream.read()
    stream.write(b"hello")
    await stream.drain()
    stream.abort()


def make(*, handshake_timeout: float = 30.0, fail_with: BaseException | None = None,
         resolver: bool = True) -> Setup:
    world = World(7)
    net = Network(world, tls=False)
    app = net.add_host("app")
    proxy = net.add_host("proxy")
    target = net.add_host("target")
    calls: list[tuple[str, int, Isolation | None]] = []

    async def connect(host: str, port: int, isolation: Isolation | None) -> ByteStream:
        calls.append((host, port, isolation))
        if fail_with is not None:
            raise fail_with
        assert target.ipv4 is not None
        return await proxy.runtime.connect(target.ipv4, port)

    async def resolve(name: str, isolation: Isolation | None) -> str:
        if name == "nowhere.example":
            raise StreamError("no such name", EndReason.RESOLVEFAILED)
        if name == "weird.example":
            return "not an address"
        return "198.51.100.7"

    async def resolve_ptr(addr: str, isolation: Isolation | None) -> str:
        return "ptr.example"

    server = SocksServer(proxy.runtime, connect, resolve=resolve if resolver else None,
                         resolve_ptr=resolve_ptr if resolver else None,
                         handshake_timeout=handshake_timeout)
    setup = Setup(world, app, proxy, target, server, calls)

    async def start() -> None:
        await server.start("0.0.0.0", PROXY_PORT)
        await target.runtime.listen("0.0.0.0", ECHO_PORT, echo)
        await target.runtime.listen("0.0.0.0", SINK_PORT, reset_after_hello)

    proxy.runtime.spawn(start(), name="start")
    return setup


def run(s: Setup, coro: Coroutine[Any, Any, Any], until: float = 1000) -> Any:
    task = s.app.runtime.spawn(coro, name="app")
    s.world.run(until=until)
    assert task.done(), "the application is still blocked"
    assert s.world.errors == [], s.world.errors
    return task.result()


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = await stream.read(n - len(out))
        if not data:
            break
        out += data
    return out


async def read_to_end(stream: ByteStream) -> bytes:
    out = b""
    try:
        while data := await stream.read():
            out += data
    except (ConnectionReset, ClosedError):
        out += b"<reset>"
    return out


async def open_app(s: Setup) -> ByteStream:
    assert s.proxy.ipv4 is not None
    return await s.app.runtime.connect(s.proxy.ipv4, PROXY_PORT)


def test_connect_with_optimistic_data_and_echo() -> None:
    s = make()

    async def app() -> tuple[bytes, bytes, bytes]:
        c = await open_app(s)
        c.write(NOAUTH + connect_req(b"echo.example", ECHO_PORT) + b"early ")
        hello = await read_exactly(c, 2 + 10)
        c.write(b"bytes")
        await c.drain()
        echoed = await read_exactly(c, 11)
        c.write_eof()
        rest = await read_to_end(c)
        return hello, echoed, rest

    hello, echoed, rest = run(s, app())
    assert hello == b"\x05\x00" + b"\x05\x00\x00\x01" + bytes(6)
    assert echoed == b"early bytes" and rest == b""  # half-close passed on, clean end
    assert s.calls == [("echo.example", ECHO_PORT, None)]


def test_bulk_transfer_with_backpressure() -> None:
    s = make()
    payload = hashlib.shake_256(b"payload").digest(1 << 20)

    async def app() -> bytes:
        c = await open_app(s)
        c.write(NOAUTH + connect_req(b"echo.example", ECHO_PORT))
        assert await read_exactly(c, 12) == b"\x05\x00\x05\x00\x00\x01" + bytes(6)

        async def send() -> None:
            for i in range(0, len(payload), 50_000):
                c.write(payload[i : i + 50_000])
                await c.drain()
            c.write_eof()

        sender = s.app.runtime.spawn(send(), name="sender")
        got = await read_to_end(c)
        await sender
        return got

    assert run(s, app(), until=10_000) == payload


def test_credentials_become_the_isolation_key() -> None:
    s = make()

    async def app() -> bytes:
        c = await open_app(s)
        c.write(b"\x05\x01\x02" + b"\x01\x03bob\x06secret" + connect_req(b"x.example", ECHO_PORT))
        return await read_exactly(c, 2 + 2 + 10)

    assert run(s, app()) == b"\x05\x02\x01\x00\x05\x00\x00\x01" + bytes(6)
    assert s.calls == [("x.example", ECHO_PORT, (5, b"bob", b"secret"))]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StreamError("refused", EndReason.CONNECTREFUSED), 0x05),
        (StreamError("exit policy", EndReason.EXITPOLICY), 0x02),
        (StreamError("timeout", EndReason.TIMEOUT), 0x06),
        (NetworkError("down"), 0x01),
    ],
)
def test_connect_failure_gets_its_reply_code(error: BaseException, code: int) -> None:
    s = make(fail_with=error)

    async def app() -> bytes:
        c = await open_app(s)
        c.write(NOAUTH + connect_req(b"x.example", 80))
        return await read_to_end(c)

    assert run(s, app()) == b"\x05\x00" + bytes([5, code, 0, 1]) + bytes(6)


def test_malformed_input_gets_an_error_and_the_server_survives() -> None:
    s = make()

    async def app() -> tuple[bytes, bytes, bytes]:
        bad = await open_app(s)
        bad.write(NOAUTH + b"\x05\x02\x00\x01" + bytes(6))  # BIND
        first = await read_to_end(bad)
        http = await open_app(s)
        http.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        page = await read_to_end(http)
        good = await open_app(s)
        good.write(NOAUTH + connect_req(b"echo.example", ECHO_PORT) + b"ping")
        echoed = await read_exactly(good, 12 + 4)
        good.abort()
        return first, page, echoed

    first, page, echoed = run(s, app())
    assert first == b"\x05\x00\x05\x07\x00\x01" + bytes(6)
    assert page.startswith(b"HTTP/1.0 501")
    assert echoed.endswith(b"ping")


def test_a_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    s = make(handshake_timeout=5.0)

    async def app() -> tuple[bytes, float]:
        c = await open_app(s)
        t0 = s.app.runtime.now()
        c.write(b"\x05")  # then nothing
        got = await read_to_end(c)
        return got, s.app.runtime.now() - t0

    got, waited = run(s, app())
    assert got in (b"", b"<reset>") and 5.0 <= waited < 6.0
    assert s.calls == []


def test_upstream_reset_reaches_the_application() -> None:
    s = make()

    async def app() -> bytes:
        c = await open_app(s)
        c.write(NOAUTH + connect_req(b"sink.example", SINK_PORT) + b"hi")
        return await read_to_end(c)

    got = run(s, app())
    assert got.startswith(b"\x05\x00\x05\x00") and got.endswith(b"<reset>")


def test_resolve_commands() -> None:
    s = make()

    async def ask(req: bytes) -> bytes:
        c = await open_app(s)
        c.write(NOAUTH + req)
        return await read_to_end(c)

    async def app() -> list[bytes]:
        return [
            await ask(b"\x05\xf0\x00\x03\x0bexample.org\x00\x00"),
            await ask(b"\x05\xf0\x00\x03\x0fnowhere.example\x00\x00"),
            await ask(b"\x05\xf0\x00\x03\x0dweird.example\x00\x00"),
            await ask(b"\x05\xf1\x00\x01\x01\x02\x03\x04\x00\x00"),
        ]

    ok, missing, weird, ptr = run(s, app())
    assert ok == b"\x05\x00\x05\x00\x00\x01" + bytes([198, 51, 100, 7]) + b"\x00\x00"
    assert missing == b"\x05\x00\x05\x04\x00\x01" + bytes(6)  # host unreachable
    assert weird == b"\x05\x00\x05\x01\x00\x01" + bytes(6)
    assert ptr == b"\x05\x00\x05\x00\x00\x03\x0bptr.example\x00\x00"


def test_resolve_without_a_resolver_is_not_supported() -> None:
    s = make(resolver=False)

    async def app() -> bytes:
        c = await open_app(s)
        c.write(NOAUTH + b"\x05\xf0\x00\x03\x0bexample.org\x00\x00")
        return await read_to_end(c)

    assert run(s, app()) == b"\x05\x00\x05\x07\x00\x01" + bytes(6)


def test_socks4a_through_the_server() -> None:
    s = make()

    async def app() -> bytes:
        c = await open_app(s)
        c.write(b"\x04\x01\x00\x07\x00\x00\x00\x01carol\0echo.example\0abc")
        got = await read_exactly(c, 8 + 3)
        c.abort()
        return got

    assert run(s, app()) == b"\x00\x5a\x00\x00" + bytes(4) + b"abc"
    assert s.calls == [("echo.example", 7, (4, b"carol", b""))]


def test_server_start_twice_and_close() -> None:
    s = make()

    async def app() -> str:
        try:
            await s.server.start("0.0.0.0", PROXY_PORT + 1)
        except LocalError as exc:
            await s.server.aclose()
            return str(exc)
        return "started twice"

    assert "already listening" in run(s, app())
    assert s.server.listener is None


def test_a_bug_in_one_direction_of_a_splice_is_raised_not_swallowed() -> None:
    # A failure of the streams (GotorError) just ends the splice; anything else is a bug
    # of ours: both streams are aborted and the error reaches the runtime's report.
    world = World(1)
    rt = Network(world, tls=False).add_host("h").runtime

    class Fake:
        peer = local = ("", 0)

        def __init__(self, bug: bool) -> None:
            self.bug, self.aborted = bug, Event(rt)

        async def read(self, max_bytes: int = 65536) -> bytes:
            if self.bug:
                raise TypeError("a bug in the stream code")
            await self.aborted.wait()
            raise ClosedError("aborted")

        def write(self, data: bytes) -> None: ...
        async def drain(self) -> None: ...
        def write_eof(self) -> None: ...
        async def aclose(self) -> None: ...

        def abort(self) -> None:
            self.aborted.set()

    a, b = Fake(bug=True), Fake(bug=False)

    async def main() -> BaseException | None:
        try:
            await splice(rt, a, b)  # type: ignore[arg-type]
        except TypeError as exc:
            return exc
        return None

    task = rt.spawn(main(), name="main")
    world.run(until=10)
    assert isinstance(task.result(), TypeError)
    assert a.aborted.is_set() and b.aborted.is_set()

    # A direction cancelled from outside (its host going down) is no bug: the splice
    # ends quietly, as for a failed stream.
    c, d = Fake(bug=False), Fake(bug=False)
    quiet = rt.spawn(splice(rt, c, d), name="quiet")  # type: ignore[arg-type]

    async def cancel_one_direction() -> None:
        await rt.sleep(1)
        (pump,) = [t for t in rt._tasks.values() if t.name == "splice a->b"]
        pump.cancel("host down")

    rt.spawn(cancel_one_direction(), name="canceller")
    world.run(until=20)
    assert quiet.done() and quiet.exception() is None
    assert c.aborted.is_set() and d.aborted.is_set()
