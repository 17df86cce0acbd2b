"""Helpers of the interop tests: a gotor client for the private network, a SOCKS5
client written for the tests (RFC 1928, RFC 1929, Tor's RESOLVE extensions), HTTP/1.0
fetches checked byte for byte, and running async scenarios with a bound."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from gotor.client import TorClient
from gotor.config import ClientConfig
from gotor.dir import BootstrapEvent
from gotor.dir.config import DirConfig
from gotor.runtime.aio import AsyncioRuntime
from gotor.tools import testnet

T = TypeVar("T")

#: Every async scenario of a test must finish within this (seconds).
SCENARIO_TIMEOUT = 180.0


def gotor_command() -> list[str]:
    """How to run the ``gotor`` command (the console script beside this Python)."""
    script = Path(sys.executable).parent / "gotor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gotor.cli"]


def client_config(net: testnet.Network, data_dir: Path, *,
                  socks: tuple[str, int] | None = None) -> ClientConfig:
    """What a user would configure: the DirAuthority lines and TestingTorNetwork."""
    lines = (net.root / "dir-authorities").read_text().splitlines()
    return ClientConfig(data_dir, DirConfig.from_dir_authorities(lines), socks=socks,
                        testing_network=True)


def run(coro: Coroutine[Any, Any, T], timeout: float = SCENARIO_TIMEOUT) -> T:
    """Run one scenario on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def with_client(net: testnet.Network, data_dir: Path,
                      scenario: Callable[[TorClient], Awaitable[T]], *,
                      socks: tuple[str, int] | None = None,
                      events: list[BootstrapEvent] | None = None) -> T:
    """Bootstrap a TorClient (production runtime, real TCP and TLS), run ``scenario``."""
    config = client_config(net, data_dir, socks=socks)
    sink = events.append if events is not None else None
    async with TorClient(AsyncioRuntime(), config, on_progress=sink) as client:
        return await scenario(client)


def http_request(host: str, path: str) -> bytes:
    return f"GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()


def http_body(response: bytes) -> bytes:
    head, sep, body = response.partition(b"\r\n\r\n")
    assert sep and head.split(b" ")[1] == b"200", head[:120]
    return body


def check_file(net: testnet.Network, name: str, body: bytes) -> None:
    """``body`` is test file ``name``, every byte."""
    f = net.file(name)
    assert len(body) == f.size, (name, len(body), f.size)
    assert body == testnet.file_content(name, f.size), f"{name}: content differs"


# --- SOCKS5 ----------------------------------------------------------------------------
SOCKS_CONNECT, SOCKS_RESOLVE, SOCKS_RESOLVE_PTR = 0x01, 0xF0, 0xF1


async def _exact(reader: asyncio.StreamReader, n: int) -> bytes:
    return await reader.readexactly(n)


async def socks5(proxy: tuple[str, int], host: str, port: int, *, command: int = SOCKS_CONNECT,
                 auth: tuple[bytes, bytes] | None = None
                 ) -> tuple[int, bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """One SOCKS5 request: (reply code, bound address bytes, reader, writer)."""
    reader, writer = await asyncio.open_connection(*proxy, limit=1 << 20)
    writer.write(b"\x05\x01" + (b"\x02" if auth else b"\x00"))
    assert await _exact(reader, 2) == b"\x05" + (b"\x02" if auth else b"\x00")
    if auth:
        user, password = auth
        writer.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        assert await _exact(reader, 2) == b"\x01\x00"
    try:
        packed = ipaddress.ip_address(host).packed
        atyp_addr = (b"\x01" if len(packed) == 4 else b"\x04") + packed
    except ValueError:
        atyp_addr = b"\x03" + bytes([len(host)]) + host.encode()
    writer.write(bytes([5, command, 0]) + atyp_addr + struct.pack(">H", port))
    ver, code, _, atyp = await _exact(reader, 4)
    assert ver == 5
    size = {1: 4, 4: 16}.get(atyp)
    addr = await _exact(reader, size if size is not None else (await _exact(reader, 1))[0])
    await _exact(reader, 2)
    return code, addr, reader, writer


async def socks_fetch(proxy: tuple[str, int], host: str, port: int, path: str, *,
                      auth: tuple[bytes, bytes] | None = None) -> bytes:
    """GET ``path`` from ``host:port`` through the SOCKS proxy; the body."""
    code, _, reader, writer = await socks5(proxy, host, port, auth=auth)
    assert code == 0, f"SOCKS reply {code} for {host}:{port}"
    writer.write(http_request(host, path))
    await writer.drain()
    response = await reader.read()
    writer.close()
    return http_body(response)
