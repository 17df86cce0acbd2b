"""Name resolution through real C tor exits (RESOLVE, tor-spec §6.4), and Tor's SOCKS
RESOLVE / RESOLVE_PTR extensions checked with C tor's own tor-resolve tool."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from interop_helpers import run, with_client

from gotor.client import TorClient
from gotor.errors import StreamError
from gotor.tools import testnet


def test_resolve_through_an_exit(network: testnet.Network, tmp_path: Path) -> None:
    names = network.dns_names()

    async def scenario(client: TorClient) -> tuple[dict[str, list[str]], StreamError]:
        answers = {name: await client.resolve(name) for name in sorted(names)}
        with pytest.raises(StreamError) as info:
            await client.resolve("nosuch.gotor.test")  # NXDOMAIN from the network's DNS
        return answers, info.value

    answers, error = run(with_client(network, tmp_path, scenario))
    assert answers == {name: [address] for name, address in names.items()}
    assert "nosuch.gotor.test" in str(error)


QUERIES = [
    ["web.gotor.test"],
    ["localhost"],
    ["-x", "192.0.2.1"],  # RESOLVE_PTR: the exit asks the network's DNS for the PTR record
    ["nosuch.gotor.test"],
    ["127.0.0.1"],  # an address: answered by the client itself (C tor and gotor alike)
]


def test_tor_resolve_gets_the_same_answers_from_gotor_and_c_tor(network: testnet.Network,
                                                                tmp_path: Path) -> None:
    tor_resolve = shutil.which("tor-resolve")
    if tor_resolve is None:
        pytest.fail("tor-resolve (part of the tor package) is missing", pytrace=False)
    assert network.client is not None
    c_tor_port = network.client.ports["socks"]

    async def ask(port: int, query: list[str]) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            tor_resolve, "-5", "-p", str(port), *query,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode().strip()

    async def scenario(client: TorClient) -> list[tuple[tuple[int, str], tuple[int, str]]]:
        assert client.socks_address is not None
        ours = client.socks_address[1]
        return [(await ask(ours, q), await ask(c_tor_port, q)) for q in QUERIES]

    results = run(with_client(network, tmp_path, scenario, socks=("127.0.0.1", 0)))
    for query, (ours, theirs) in zip(QUERIES, results, strict=True):
        assert ours == theirs, (query, ours, theirs)
    assert [ours for ours, _ in results] == [
        (0, "127.0.0.1"), (0, "127.0.0.1"), (0, "reverse.gotor.test"), (1, ""),
        (0, "127.0.0.1")]
