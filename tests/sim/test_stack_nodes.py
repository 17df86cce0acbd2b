"""Interop: gotor's client stack against simnet's emulated relays (simnet/nodes), written
separately on the pure layer, including their misbehaviour switches."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from gotor.cells.relaymsg import EndReason
from gotor.circuit import CircParams, Circuit, HopSpec, build_circuit
from gotor.errors import ChannelError, CircuitError, StreamError
from gotor.link.pool import ChannelPool
from gotor.stream import Stream
from simnet.content import content
from simnet.net import Network
from simnet.nodes.dns import Dns
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.nodes.keys import RelayKeys
from simnet.nodes.relay import Misbehaviour, RelayConfig, RelayNode
from simnet.nodes.web import WebServer
from simnet.world import World

V1 = {"sendme_emit_min_version": 1, "sendme_accept_min_version": 1}
PARAMS = CircParams(sendme_emit_min_version=1, sendme_accept_min_version=1)
WEB = "web.simnet.test"


class Net:
    def __init__(self, misbehaviour: dict[int, Misbehaviour] | None = None, *,
                 legacy: tuple[int, ...] = (1,)) -> None:
        self.world = World(11)
        self.world.trace.keep = True
        net = Network(self.world)
        self.client = net.add_host("client")
        web = WebServer(net.add_host("web", ipv4="93.184.216.34"), names=(WEB,))
        dns = Dns()
        dns.add(WEB, "93.184.216.34")
        self.relays = []
        for i in range(3):
            name = f"node{i}"
            config = RelayConfig(nickname=name, ntor_v3=i not in legacy,
                                 exit_policy=ExitPolicy.parse("reject *:25, accept *:*"))
            node = RelayNode(net.add_host(name), RelayKeys.generate(self.world, name), config,
                             dns=dns, misbehaviour=(misbehaviour or {}).get(i))
            node.set_params(V1)
            self.relays.append(node)
        self.web = web

    def hop(self, i: int) -> HopSpec:
        node = self.relays[i]
        keys = node.keys
        return HopSpec(keys.rsa_id, keys.ed_id, keys.ntor_public,
                       (node.host.ipv4 or "", node.config.or_port), ntor_v3=node.config.ntor_v3)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        for node in self.relays:
            node.start()
        self.web.start()
        task = self.client.runtime.spawn(coro, name="test")
        self.world.run(until=3600)
        assert task.done(), "blocked"
        assert self.world.errors == [], self.world.errors
        return task.result()

    async def circuit(self, params: CircParams = PARAMS) -> Circuit:
        rt = self.client.runtime
        await rt.sleep(0.1)  # the relays' listeners
        return await build_circuit(rt, ChannelPool(rt), [self.hop(i) for i in range(3)], params)


async def _read_all(stream: Stream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


def _body(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


def test_download_and_upload_through_emulated_relays() -> None:
    n = Net()
    size = 600_000

    async def main() -> tuple[bytes, bytes, list[Any]]:
        circ = await n.circuit()
        down = await circ.open_stream(WEB, 80)
        down.write(b"GET /bytes/%d?seed=interop HTTP/1.0\r\nHost: web\r\n\r\n" % size)
        got = await _read_all(down)
        up = await circ.open_stream(WEB, 80)
        up.write(b"POST /upload?seed=up HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % size)
        up.write(content("up", size))
        answer = await _read_all(up)
        answers = await circ.resolve(WEB)
        return got, answer, answers

    got, answer, answers = n.run(main())
    head, body = _body(got)
    assert head.startswith(b"HTTP/1.0 200") and body == content("interop", size)
    assert _body(answer)[1].startswith(b"ok %d " % size)
    assert [str(a.ip) for a in answers] == ["93.184.216.34"]


def test_exit_policy_end_reason_from_an_emulated_exit() -> None:
    n = Net()

    async def main() -> StreamError:
        circ = await n.circuit()
        with pytest.raises(StreamError) as info:
            await circ.open_stream(WEB, 25)
        return info.value

    assert n.run(main()).end_reason == EndReason.EXITPOLICY


@pytest.mark.parametrize("bad, error, text", [
    (Misbehaviour(bad_certs="signature"), ChannelError, "CERTS cell rejected"),
    (Misbehaviour(bad_certs="missing"), ChannelError, "no certificate of type 7"),
    (Misbehaviour(bad_certs="duplicate"), ChannelError, "more than one certificate"),
    (Misbehaviour(bad_created_auth=True), CircuitError, "handshake with hop 1 failed"),
    (Misbehaviour(malformed_created=True), CircuitError, "protocol violation"),
    (Misbehaviour(unexpected_cell=True), CircuitError, "CREATED_FAST in answer to ntor"),
    (Misbehaviour(corrupt_digest=True), CircuitError, "not recognized"),
    (Misbehaviour(stall_handshake=True), ChannelError, "timed out"),
])
def test_misbehaving_first_hop(bad: Misbehaviour, error: type[Exception], text: str) -> None:
    n = Net({0: bad})

    async def main() -> Exception:
        with pytest.raises(error) as info:
            await n.circuit()
        return info.value

    assert text in str(n.run(main()))


def test_misbehaving_middle_hop_fails_the_build() -> None:
    n = Net({1: Misbehaviour(bad_created_auth=True)})

    async def main() -> str:
        with pytest.raises(CircuitError) as info:
            await n.circuit()
        return str(info.value)

    assert "handshake with hop 2 failed" in n.run(main())


@pytest.mark.parametrize("where, bad, text", [
    (2, Misbehaviour(destroy_after=200), "destroyed by the relay"),
    (0, Misbehaviour(eof_mid_cell_after=300), "in the middle of a cell"),
])
def test_destroy_and_eof_mid_cell_during_a_download(where: int, bad: Misbehaviour,
                                                    text: str) -> None:
    n = Net({where: bad})

    async def main() -> str:
        circ = await n.circuit()
        stream = await circ.open_stream(WEB, 80)
        stream.write(b"GET /bytes/2000000 HTTP/1.0\r\n\r\n")
        with pytest.raises(StreamError) as info:
            await _read_all(stream)
        assert circ.closed
        return str(info.value)

    assert text in n.run(main())
