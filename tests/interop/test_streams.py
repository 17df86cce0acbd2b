"""Streams through gotor's SOCKS port over real C tor circuits: concurrent byte-exact
downloads, isolation, and an exit's refusal reported as C tor would."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from interop_helpers import check_file, run, socks5, socks_fetch, with_client

from gotor.cells.relaymsg import EndReason
from gotor.client import TorClient
from gotor.errors import StreamError
from gotor.tools import testnet

SIZES = ("1KB", "64KB", "512KB", "1MB", "4MB", "10MB")
N_STREAMS = 20


def _proxy(client: TorClient) -> tuple[str, int]:
    assert client.socks_address is not None
    return client.socks_address


def test_twenty_concurrent_streams_fetch_byte_exact(network: testnet.Network,
                                                   tmp_path: Path) -> None:
    port = network.services.ports["http"]
    # every size, by name (resolved by the exit through the network's DNS) and by address
    plan = [(SIZES[i % len(SIZES)],
             network.spec.web_hostname if i % 2 else "127.0.0.1") for i in range(N_STREAMS)]

    async def scenario(client: TorClient) -> list[bytes]:
        proxy = _proxy(client)
        return await asyncio.gather(*(socks_fetch(proxy, host, port, name)
                                      for name, host in plan))

    bodies = run(with_client(network, tmp_path, scenario, socks=("127.0.0.1", 0)))
    for (name, _), body in zip(plan, bodies, strict=True):
        check_file(network, name, body)


def test_socks_credentials_isolate_circuits(network: testnet.Network, tmp_path: Path) -> None:
    port = network.services.ports["http"]

    async def scenario(client: TorClient) -> list[object]:
        proxy = _proxy(client)
        for user in (b"alice", b"bob", b"alice"):
            check_file(network, "1KB", await socks_fetch(proxy, "127.0.0.1", port, "1KB",
                                                         auth=(user, b"pw")))
        return [client.circmgr.isolation_of(c) for c in client.circmgr.circuits()
                if not client.circmgr.is_clean(c)]

    keys = run(with_client(network, tmp_path, scenario, socks=("127.0.0.1", 0)))
    users = sorted(key[1] for key in keys if isinstance(key, tuple))
    assert users == [b"alice", b"bob"]  # one circuit per credential, alice's reused


def test_a_refused_connection_is_reported_as_c_tor_reports_it(network: testnet.Network,
                                                             tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]  # bound, never listening: the exit's connect fails
    assert network.client is not None
    c_tor = ("127.0.0.1", network.client.ports["socks"])

    async def scenario(client: TorClient) -> tuple[int | None, int, int]:
        with pytest.raises(StreamError) as info:
            await client.connect("127.0.0.1", port)
        ours, *_ = await socks5(_proxy(client), "127.0.0.1", port)
        theirs, *_ = await socks5(c_tor, "127.0.0.1", port)
        return info.value.end_reason, ours, theirs

    try:
        end_reason, ours, theirs = run(with_client(network, tmp_path, scenario,
                                                   socks=("127.0.0.1", 0)))
    finally:
        closed.close()
    # The exit's END reason: CONNECTREFUSED, or MISC where the kernel reports the refusal
    # in a way tor does not map (gVisor); either way the SOCKS reply is C tor's own.
    assert end_reason in (EndReason.CONNECTREFUSED, EndReason.MISC)
    assert ours == theirs != 0
