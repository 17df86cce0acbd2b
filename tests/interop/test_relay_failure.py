"""A relay of a live circuit is killed: its streams fail with a clear error, and new
streams are built around it.  Destructive: runs after every other interop test, and
starts the relay again at the end."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from interop_helpers import check_file, http_body, http_request, run, with_client

from gotor.client import ClientStream, TorClient
from gotor.errors import StreamError
from gotor.tools import testnet

BIG = "50MB"  # far more than the windows let through while nobody reads
RESTART_TIMEOUT = 30.0


async def _read_rest(stream: ClientStream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the restarted relay does not listen on {port}")


@pytest.mark.destructive
def test_killing_a_relay_fails_its_streams_and_new_ones_go_around_it(
        network: testnet.Network, tmp_path: Path) -> None:
    port = network.services.ports["http"]
    by_fp = {str(n.fingerprint): n for n in network.relays}
    killed: list[testnet.Node] = []

    async def scenario(client: TorClient) -> tuple[list[StreamError], list[list[str]]]:
        streams = [await client.connect("127.0.0.1", port) for _ in range(2)]
        assert streams[0].circuit is streams[1].circuit  # same isolation, same circuit
        for stream in streams:
            stream.write(http_request("127.0.0.1", BIG))
            await stream.drain()
            assert await stream.read()  # data flows; then nobody reads: the windows fill
        middle = by_fp[streams[0].circuit.hops[1].rsa_id.hex().upper()]
        killed.append(middle)
        await asyncio.to_thread(testnet.stop_node, network, middle.name)

        errors = []
        for stream in streams:
            with pytest.raises(StreamError) as info:
                await asyncio.wait_for(_read_rest(stream), 60)
            errors.append(info.value)

        paths = []
        for k in range(4):  # new circuits (one per isolation key), none through the dead relay
            stream = await client.connect("127.0.0.1", port, isolation=f"after-{k}")
            stream.write(http_request("127.0.0.1", "64KB"))
            await stream.drain()
            check_file(network, "64KB", http_body(await _read_rest(stream)))
            paths.append([by_fp[h.rsa_id.hex().upper()].name for h in stream.circuit.hops])
        return errors, paths

    try:
        errors, paths = run(with_client(network, tmp_path, scenario))
    finally:
        for node in killed:  # restore the network for whoever uses it next
            testnet.start_node(network, node.name)
            _wait_listening(node.ports["or"])
    victim = killed[0].name
    for error in errors:
        text = str(error)
        assert "circuit" in text and ("destroy" in text or "closed" in text), text
        assert error.end_reason is None  # not an END from the exit: the circuit died
    assert all(victim not in path for path in paths), (victim, paths)
