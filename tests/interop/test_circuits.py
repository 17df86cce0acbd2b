"""3-hop circuits through real C tor relays, with ntor and with ntor-v3, carrying streams."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from interop_helpers import check_file, http_body, http_request, run, with_client

from gotor.cells.chan import DestroyReason
from gotor.circuit import CircParams, Circuit, HopSpec, build_circuit
from gotor.client import TorClient
from gotor.errors import CircuitError
from gotor.link import ChannelPool
from gotor.netdir import Relay
from gotor.runtime.aio import AsyncioRuntime
from gotor.runtime.api import ByteStream
from gotor.tools import testnet

#: Fetched at once over every circuit: several streams and both windows (SENDMEs) in play.
FILES = ("1KB", "1MB", "4MB")


async def _read_all(stream: ByteStream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


#: Builds of one path destroyed by C tor's idle-circuit sweep (see _build) that we retry.
FIRST_HOP_RACE_RETRIES = 2


async def _build(rt: AsyncioRuntime, pool: ChannelPool, hops: list[HopSpec],
                 params: CircParams) -> Circuit:
    """``build_circuit`` of exactly this path, retried when the guard destroys it with
    FINISHED before it has a next hop.  That is C tor's own race, not a refusal of our
    handshake: circuit_expire_old_circuits_serverside closes (FINISHED) every circuit
    from a client channel that has no next hop and no streams when the channel has
    transmitted no cell for 60 s, and a new channel's transmit time stays 0 until its
    first cell (our CREATED2) leaves the scheduler, so a sweep in between kills the
    circuit.  C tor clients, and gotor's circuit manager, retry such a build."""
    for _ in range(FIRST_HOP_RACE_RETRIES):
        try:
            return await build_circuit(rt, pool, hops, params)
        except CircuitError as exc:
            if exc.failed_hop != 0 or exc.destroy_reason != DestroyReason.FINISHED:
                raise
    return await build_circuit(rt, pool, hops, params)


async def _fetch(circ: Circuit, network: testnet.Network, name: str) -> bytes:
    host = network.spec.web_hostname  # resolved by the exit
    stream = await circ.open_stream(host, network.services.ports["http"])
    stream.write(http_request(host, name))
    await stream.drain()
    return http_body(await _read_all(stream))


@pytest.mark.parametrize("handshake", ["ntor", "ntor-v3"])
def test_three_hop_circuits_through_every_exit(network: testnet.Network, tmp_path: Path,
                                               handshake: str) -> None:
    """Circuits whose every hop is created with ``handshake`` (CREATE2 to the guard,
    EXTEND2 to the others), through every exit, with every other relay as guard or
    middle; each carries concurrent streams, byte-exact."""
    port = network.services.ports["http"]
    v3 = handshake == "ntor-v3"

    async def scenario(client: TorClient) -> list[tuple[list[str], list[bytes]]]:
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
                circ = await _build(rt, pool, hops, netdir.circ_params())
                bodies = await asyncio.gather(*(_fetch(circ, network, name) for name in FILES))
                out.append(([r.nickname for r in path], bodies))
                circ.close("done")
        finally:
            await pool.aclose("done")
        return out

    results = run(with_client(network, tmp_path, scenario))
    used = {name for path, _ in results for name in path}
    assert used == {n.name for n in network.relays}
    assert {path[-1] for path, _ in results} == {n.name for n in network.by_role(testnet.Role.EXIT)}
    for _, bodies in results:
        for name, body in zip(FILES, bodies, strict=True):
            check_file(network, name, body)
