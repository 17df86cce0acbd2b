"""Conformance, streams: connect/listen, EOF, refused, reset, backpressure, half-close, TLS, scale.

Every test runs under every binding (see conftest.py) and must give the same result.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance_harness import Ctx, Harness

from gotor.errors import Cancelled, ClosedError, ConnectionRefused, ConnectionReset, LocalError
from gotor.runtime.api import ByteStream
from gotor.runtime.sync import Event, Queue, timeout

MiB = 1 << 20


async def _join(task: Any) -> None:
    await task


async def read_all(stream: ByteStream) -> bytes:
    parts = []
    while True:
        data = await stream.read()
        if not data:
            return b"".join(parts)
        parts.append(data)


async def serve(c: Ctx, handler: Any, *, tls: bool = False) -> tuple[str, int]:
    listener = await c.srv.listen(c.host, 0, handler, tls=c.creds if tls else None)
    return listener.address


def test_eof_after_data_and_addresses(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[bytes, bytes, bool, bool]:
        seen: Queue[tuple[str, int]] = Queue(c.srv)

        async def handler(s: ByteStream) -> None:
            seen.put_nowait(s.peer)
            s.write(b"hello")

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        data = await read_all(stream)
        again = await stream.read()
        peer_seen_by_server = await seen.get()
        await stream.aclose()
        return data, again, stream.peer == addr, peer_seen_by_server == stream.local

    assert harness.run(main) == (b"hello", b"", True, True)


def test_connect_refused(harness: Harness) -> None:
    async def main(c: Ctx) -> str:
        async def handler(s: ByteStream) -> None:
            pass

        listener = await c.srv.listen(c.host, 0, handler)
        addr = listener.address
        await listener.aclose()   # a port where nothing listens any more
        try:
            await c.rt.connect(*addr)
        except ConnectionRefused:
            return "refused"
        return "connected"

    assert harness.run(main) == "refused"


def test_reset_when_peer_aborts(harness: Harness) -> None:
    async def main(c: Ctx) -> list[str]:
        async def handler(s: ByteStream) -> None:
            await s.read(1)
            s.abort()

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        stream.write(b"x")
        out = []
        try:
            await stream.read()
            out.append("read returned")
        except ConnectionReset:
            out.append("read reset")
        try:
            stream.write(b"more")
            await stream.drain()
            out.append("write ok")
        except ConnectionReset:
            out.append("write reset")
        stream.abort()
        return out

    assert harness.run(main) == ["read reset", "write reset"]


def test_closed_stream_operations(harness: Harness) -> None:
    async def main(c: Ctx) -> list[str]:
        async def handler(s: ByteStream) -> None:
            await read_all(s)

        addr = await serve(c, handler)
        out = []
        stream = await c.rt.connect(*addr)
        stream.write_eof()
        try:
            stream.write(b"late")
        except ClosedError:
            out.append("write after eof")
        await stream.aclose()
        await stream.aclose()   # idempotent
        for op in ("read", "write"):
            try:
                if op == "read":
                    await stream.read()
                else:
                    stream.write(b"x")
            except ClosedError:
                out.append(f"{op} closed")
        return out

    assert harness.run(main) == ["write after eof", "read closed", "write closed"]


def test_half_close(harness: Harness) -> None:
    async def main(c: Ctx) -> bytes:
        async def handler(s: ByteStream) -> None:
            request = await read_all(s)       # the client's EOF ends the request
            s.write(b"pong:" + request)       # ... and this direction still works

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        stream.write(b"ping")
        stream.write_eof()
        reply = await read_all(stream)
        await stream.aclose()
        return reply

    assert harness.run(main) == b"pong:ping"


def test_backpressure_slow_reader_blocks_drain(harness: Harness) -> None:
    total = 64 * MiB
    block = b"\xab" * (64 * 1024)

    async def main(c: Ctx) -> tuple[bool, bool, int, int]:
        go = Event(c.srv)
        received: Queue[int] = Queue(c.srv)

        async def handler(s: ByteStream) -> None:
            await go.wait()               # a reader that does not read...
            received.put_nowait(len(await read_all(s)))

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        written = 0

        async def writer() -> None:
            nonlocal written
            while written < total:
                stream.write(block)
                await stream.drain()      # ... must stop this writer
                written += len(block)
            stream.write_eof()

        task = c.rt.spawn(writer(), name="writer")
        stalled_at = -1
        for _ in range(50):               # poll (bounded) until the writer stops advancing
            await c.rt.sleep(0.2)
            if written == stalled_at or task.done():
                break
            stalled_at = written
        stalled = written == stalled_at and not task.done()
        go.set()
        await task
        got = await received.get()
        await stream.aclose()
        return stalled, 0 < stalled_at < total // 4, written, got

    assert harness.run(main) == (True, True, total, total)


def test_several_tasks_drain_one_stream(harness: Harness) -> None:
    # asyncio lets several tasks wait in drain() on one stream; every one must wake.
    total = 16 * MiB

    async def main(c: Ctx) -> tuple[list[int], int]:
        received: Queue[int] = Queue(c.srv)

        async def handler(s: ByteStream) -> None:
            received.put_nowait(len(await read_all(s)))

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        stream.write(b"\x5a" * total)
        woken: list[int] = []

        async def drainer(i: int) -> None:
            await stream.drain()
            woken.append(i)

        tasks = [c.rt.spawn(drainer(i), name=f"drainer{i}") for i in range(3)]
        for t in tasks:
            await timeout(c.rt, 30, _join(t), what="drain")
        stream.write_eof()
        got = await received.get()
        await stream.aclose()
        return sorted(woken), got

    assert harness.run(main) == ([0, 1, 2], total)


@pytest.mark.parametrize("where", ["read", "drain"])
def test_cancel_while_blocked_in_stream(harness: Harness, where: str) -> None:
    async def main(c: Ctx) -> tuple[str, bool]:
        release = Event(c.srv)

        async def handler(s: ByteStream) -> None:
            await release.wait()          # neither reads nor writes until released

        addr = await serve(c, handler)
        stream = await c.rt.connect(*addr)
        cleaned: list[bool] = []

        async def blocked() -> None:
            try:
                if where == "read":
                    await stream.read()
                else:
                    while True:
                        stream.write(b"\0" * 65536)
                        await stream.drain()
            finally:
                cleaned.append(True)

        task = c.rt.spawn(blocked(), name="blocked")
        await c.rt.sleep(0.3)
        task.cancel()
        try:
            await task
            outcome = "finished"
        except Cancelled:
            outcome = "cancelled"
        release.set()
        stream.abort()
        return outcome, bool(cleaned)

    assert harness.run(main) == ("cancelled", True)


def test_tls_echo_and_peer_certificate(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[bytes, bool, Any, str]:
        server_view: Queue[Any] = Queue(c.srv)

        async def handler(s: ByteStream) -> None:
            server_view.put_nowait(s.peer_cert_der())  # type: ignore[attr-defined]
            data = await s.read()
            s.write(data[::-1])
            await s.drain()

        addr = await serve(c, handler, tls=True)
        stream = await c.rt.connect(*addr, tls=True)
        stream.write(b"hello over tls")
        reply = await stream.read()
        cert = stream.peer_cert_der()  # type: ignore[attr-defined]
        try:
            stream.write_eof()
            half = "half-closed"
        except LocalError:
            half = "no half-close"
        await stream.aclose()
        return reply, cert == c.cert_der, await server_view.get(), half

    assert harness.run(main) == (b"slt revo olleh", True, None, "no half-close")


def test_plain_stream_has_no_peer_certificate(harness: Harness) -> None:
    async def main(c: Ctx) -> Any:
        async def handler(s: ByteStream) -> None:
            pass

        stream = await c.rt.connect(*(await serve(c, handler)))
        cert = stream.peer_cert_der()  # type: ignore[attr-defined]
        await stream.aclose()
        return cert

    assert harness.run(main) is None


def test_many_concurrent_connections(harness: Harness) -> None:
    count = 200

    async def main(c: Ctx) -> list[bytes]:
        async def handler(s: ByteStream) -> None:
            s.write(b"echo:" + await read_all(s))

        addr = await serve(c, handler)

        async def client(i: int) -> bytes:
            stream = await c.rt.connect(*addr)
            stream.write(str(i).encode())
            stream.write_eof()
            reply = await read_all(stream)
            await stream.aclose()
            return reply

        tasks = [c.rt.spawn(client(i), name=f"c{i}") for i in range(count)]
        return [await t for t in tasks]

    assert harness.run(main) == [b"echo:%d" % i for i in range(count)]
