"""3-hop circuits through real C tor relays, with ntor and with ntor-v3, carrying streams."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from interop_helpers import check_file, http_body, http_request, run, with_client

from gotor import testnet
from gotor.circuit import HopSpec, build_circuit
from gotor.client import TorClient
from gotor.link import ChannelPool
from gotor.netdir import Relay
from gotor.runtime.aio import AsyncioRuntime
from gotor.runtime.api import ByteStream

FILE = "64KB"


async def _read_all(stream: ByteStream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


@pytest.mark.parametrize("handshake", ["ntor", "ntor-v3"])
def test_three_hop_circuits_through_every_exit(network: testnet.Network, tmp_path: Path,
                                               handshake: str) -> None:
    """One circuit per exit, every hop created with ``handshake`` (CREATE2 to the
    guard, EXTEND2 to the others); every non-exit relay serves as guard or middle."""
    port = network.services.ports["http"]
    v3 = handshake == "ntor-v3"

    async def scenario(client: TorClient) -> list[tuple[list[str], bytes]]:
        netdir = client.netdir
        assert netdir is not None
        exits = [r for r in netdir.relays if r.allows_port(port)]
        others = sorted((r for r in netdir.relays if r not in exits), key=lambda r: r.nickname)
        rt = AsyncioRuntime()
        pool = ChannelPool(rt)
        out = []
        try:
            for k in range(max(len(exits), -(-len(others) // 2))):
                path: list[Relay] = [others[2 * k % len(others)],
                                     others[(2 * k + 1) % len(others)], exits[k % len(exits)]]
                hops: list[HopSpec] = [replace(r.hop_spec(), ntor_v3=v3) for r in path]
                assert all(h.uses_ntor_v3 == v3 for h in hops)
                circ = await build_circuit(rt, pool, hops, netdir.circ_params())
                stream = await circ.open_stream(network.spec.web_hostname, port)
                stream.write(http_request(network.spec.web_hostname, FILE))
                await stream.drain()
                out.append(([r.nickname for r in path], http_body(await _read_all(stream))))
                circ.close("done")
        finally:
            await pool.aclose("done")
        return out

    results = run(with_client(network, tmp_path, scenario))
    used = {name for path, _ in results for name in path}
    assert used == {n.name for n in network.relays}
    assert {path[-1] for path, _ in results} == {n.name for n in network.by_role(testnet.Role.EXIT)}
    for _, body in results:
        check_file(network, FILE, body)
