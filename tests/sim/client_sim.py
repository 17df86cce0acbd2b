"""A small emulated Tor network for the TorClient tests, and a few helpers.

The network is :func:`simnet.topology.build_topology` (3 authorities, a few relays,
one web server); the client runs on its own host and bootstraps from the
authorities' ORPorts (CREATE_FAST + BEGIN_DIR), as configured by C tor
``DirAuthority`` lines.  Tests write their scenario as one coroutine run on the
client host's runtime; :meth:`ClientSim.run` runs the world until it is done.
"""

from __future__ import annotations

import struct
from collections.abc import Coroutine
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from gotor.config import ClientConfig
from gotor.dir import DirConfig
from gotor.errors import ProtocolError
from gotor.runtime.api import ByteStream, Runtime
from simnet.binding import SimRuntime
from simnet.content import content
from simnet.net import Host, Network
from simnet.topology import Topology, build_topology
from simnet.world import World

WEB = "web0.simnet.test"


@dataclass
class ClientSim:
    world: World
    net: Network
    topo: Topology
    host: Host

    @property
    def rt(self) -> SimRuntime:
        return self.host.runtime

    def config(self, data_dir: Path, **options: Any) -> ClientConfig:
        lines = self.topo.client_config.torrc_lines()
        options.setdefault("socks", (self.host.ipv4 or "", 9050))
        return ClientConfig(data_dir, DirConfig.from_dir_authorities(lines), **options)

    def run(self, coro: Coroutine[Any, Any, Any], *, limit: float = 3600.0) -> Any:
        """Run ``coro`` on the client host (after the nodes are listening) to its end."""
        async def main() -> Any:
            await self.rt.sleep(1.0)
            return await coro

        task = self.rt.spawn(main(), name="test")
        env = self.world.env
        # until the test's coroutine ends (its SimPy process), at most ``limit``
        self.world.run(until=env.any_of([task._proc, env.timeout(limit)]))
        assert task.done(), f"still blocked after {limit} virtual seconds"
        assert self.world.errors == [], self.world.errors
        return task.result()

    def trace(self, event: str) -> list[str]:
        return [line for line in self.world.trace.lines if f'"ev":"{event}"' in line]


def client_sim(seed: int = 1, *, n_relays: int = 16, **options: Any) -> ClientSim:
    world = World(seed)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=n_relays, authority_id_bits=1024, **options)
    return ClientSim(world, net, topo, net.add_host("client"))


def request(size: int, seed: str) -> bytes:
    return f"GET /bytes/{size}?seed={seed} HTTP/1.0\r\nHost: {WEB}\r\n\r\n".encode()


async def read_all(stream: ByteStream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


def body_of(response: bytes, size: int, seed: str) -> bytes:
    """The body of a /bytes response, checked against the content it must be."""
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head[:80]
    assert len(body) == size and body == content(seed, size)
    return body


# --- a tiny SOCKS5 client (RFC 1928, RFC 1929, Tor's RESOLVE), written for the tests ---------
async def _read_exact(stream: ByteStream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        data = await stream.read(n - len(buf))
        if not data:
            raise ProtocolError("SOCKS server closed the connection")
        buf += data
    return buf


async def socks5(rt: Runtime, proxy: tuple[str, int], host: str, port: int, *,
                 auth: tuple[bytes, bytes] | None = None, command: int = 1
                 ) -> tuple[int, ByteStream, bytes]:
    """SOCKS5 request; (reply code, the connection, the bound address bytes)."""
    conn = await rt.connect(*proxy)
    conn.write(b"\x05\x01" + (b"\x02" if auth else b"\x00"))
    method = await _read_exact(conn, 2)
    assert method == b"\x05" + (b"\x02" if auth else b"\x00"), method
    if auth:
        user, password = auth
        conn.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        assert await _read_exact(conn, 2) == b"\x01\x00"
    name = host.encode()
    conn.write(bytes([5, command, 0, 3, len(name)]) + name + struct.pack(">H", port))
    ver, code, _, atyp = await _read_exact(conn, 4)
    assert ver == 5
    size = {1: 4, 4: 16}.get(atyp)
    addr = await _read_exact(conn, size if size else (await _read_exact(conn, 1))[0])
    await _read_exact(conn, 2)
    return code, conn, addr


def socks_address_text(addr: bytes) -> str:
    return str(ip_address(addr))
