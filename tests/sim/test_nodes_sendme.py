"""SENDME flow control at emulated exits, end to end: windows respected and enforced,
authenticated SENDMEs (prop 289) checked and emitted, as C tor does."""

from __future__ import annotations

from collections.abc import Mapping

from nodes_client import Destroyed, ScriptCircuit, ScriptLink, http_get, run_test

from gotor.cells.chan import DestroyReason
from gotor.cells.relaymsg import Begin, Connected, Data, End, EndReason, Sendme
from gotor.errors import Timeout
from gotor.runtime.sync import timeout
from simnet.net import Host, Network
from simnet.nodes.relay import RelayNode
from simnet.topology import Topology, build_topology
from simnet.world import World

WEB = "web0.simnet.test"


def network(params: Mapping[str, int] | None = None) -> tuple[World, Topology, Host]:
    world = World(1)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=8, n_exits=3, params=params)
    return world, topo, net.add_host("client")


async def two_hops(client: Host, topo: Topology) -> ScriptCircuit:
    """A circuit to an exit that accepts port 80 (the exit is the last hop)."""
    exit_: RelayNode = next(r for r in topo.exits if r.config.exit_policy.allows(
        "93.184.216.34", 80))
    first = next(r for r in topo.relays if r is not exit_)
    link = await ScriptLink.open(client.runtime, first)
    circ = await ScriptCircuit.create(link, first)
    await circ.extend(exit_)
    return circ


async def open_get(circ: ScriptCircuit, sid: int, size: int) -> None:
    circ.send(Begin(WEB, 80), sid)
    circ.send(Data(http_get(f"/bytes/{size}/s{sid}")), sid)   # optimistic data
    _hop, msg, _sid = await circ.recv()
    assert isinstance(msg, Connected), msg


def exit_closes(world: World) -> list[str]:
    """The exit's circ-closed trace lines with reason PROTOCOL (the client sees DESTROYED)."""
    return [line for line in world.trace.lines
            if '"ev":"circ-closed"' in line and '"reason":1,' in line]


async def read_to_end(circ: ScriptCircuit, sid: int, stream_cells: int) -> int | None:
    """Read like a well-behaved client until END (-reason) or DESTROY (reason)."""
    try:
        while True:
            hop, msg, got = await circ.recv()
            if isinstance(msg, End):
                return -int(msg.reason)
            if isinstance(msg, Data) and got == sid:
                stream_cells += 1
                if stream_cells % 50 == 0:
                    circ.send(Sendme(), sid)
                if circ.data_received[hop] % 100 == 0:
                    circ.circuit_sendme(hop)
    except Destroyed as exc:
        return exc.reason


async def count_data(circ: ScriptCircuit, quiet: float = 5.0) -> dict[int, int]:
    """DATA cells per stream until nothing arrives for ``quiet`` seconds."""
    counts: dict[int, int] = {}
    while True:
        try:
            _hop, msg, sid = await timeout(circ.link.rt, quiet, circ.recv())
        except Timeout:
            return counts
        if isinstance(msg, Data):
            counts[sid] = counts.get(sid, 0) + 1


def test_exit_stops_at_the_stream_window_and_resumes_per_sendme() -> None:
    world, topo, client = network()

    async def main() -> tuple[dict[int, int], dict[int, int]]:
        circ = await two_hops(client, topo)
        await open_get(circ, 1, 1_000_000)
        first = await count_data(circ)
        circ.send(Sendme(), 1)          # stream-level: 50 more cells
        return first, await count_data(circ)

    first, second = run_test(world, client, main())
    assert first == {1: 500}
    assert second == {1: 50}


def test_exit_stops_at_the_circuit_window_and_resumes_per_sendme() -> None:
    world, topo, client = network()

    async def main() -> tuple[int, int]:
        circ = await two_hops(client, topo)
        for sid in (1, 2, 3):
            circ.send(Begin(WEB, 80), sid)
            circ.send(Data(http_get(f"/bytes/400000/s{sid}")), sid)
        total = 0
        per_stream = {1: 0, 2: 0, 3: 0}
        first_tag = b""
        # Keep every stream window open; never acknowledge the circuit.
        while True:
            try:
                _hop, msg, sid = await timeout(client.runtime, 5.0, circ.recv())
            except Timeout:
                break
            if isinstance(msg, Data):
                total += 1
                if total == 100:       # the exit expects SENDMEs in order: cell 100 first
                    first_tag = circ.crypto.last_digest_received(1)
                per_stream[sid] += 1
                if per_stream[sid] % 50 == 0:
                    circ.send(Sendme(), sid)
        circ.send(Sendme(1, first_tag))
        more = sum((await count_data(circ)).values())
        return total, more

    total, more = run_test(world, client, main())
    assert total == 1000
    assert more == 100


def _digest_run(params: Mapping[str, int] | None, sendme: str) -> tuple[int | None, World]:
    """Download 100 cells, answer with a circuit SENDME of kind ``sendme``, read on."""
    world, topo, client = network(params)

    async def main() -> int | None:
        circ = await two_hops(client, topo)
        await open_get(circ, 1, 300_000)
        got = 0
        while got < 100:
            _hop, msg, _sid = await circ.recv()
            got += isinstance(msg, Data)
        if sendme == "v0":
            circ.circuit_sendme(version=0)
        elif sendme == "bad-digest":
            circ.send(Sendme(1, bytes(20)))
        elif sendme == "twice":          # the second names cell 200, unless far too early
            circ.circuit_sendme()
            circ.circuit_sendme()
        else:
            circ.circuit_sendme()
        circ.send(Sendme(), 1)
        circ.send(Sendme(), 1)
        return await read_to_end(circ, 1, 100)

    return run_test(world, client, main()), world


def test_authenticated_sendme_is_checked() -> None:
    # sendme_accept_min_version=1 (the topology's default): v0 is refused ...
    # ... and so is a v1 SENDME with the wrong digest, or one with nothing to acknowledge.
    for kind, why in (("v0", "below the accepted minimum"), ("bad-digest", "does not match"),
                      ("twice", "does not match")):
        reason, world = _digest_run(None, kind)
        assert reason == DestroyReason.DESTROYED     # the exit's PROTOCOL, relayed
        closes = exit_closes(world)
        assert len(closes) == 1 and why in closes[0], (kind, closes)
    # The right digest keeps the stream going until the server closes it (END DONE).
    assert _digest_run(None, "v1")[0] == -EndReason.DONE


def test_circuit_sendme_with_nothing_to_acknowledge_closes_the_circuit() -> None:
    world, topo, client = network()

    async def main() -> int | None:
        circ = await two_hops(client, topo)
        circ.send(Begin(WEB, 80), 1)
        await circ.recv()
        circ.circuit_sendme()             # no DATA was ever sent on this circuit
        return await read_to_end(circ, 1, 0)

    assert run_test(world, client, main()) == DestroyReason.DESTROYED
    assert "without a cell digest" in exit_closes(world)[0]


def test_v0_sendme_accepted_when_the_consensus_allows_it() -> None:
    assert _digest_run({"sendme_accept_min_version": 0}, "v0")[0] == -EndReason.DONE


def test_exit_emits_authenticated_sendmes_for_uploaded_data() -> None:
    def upload(params: Mapping[str, int] | None) -> tuple[Sendme, bytes]:
        world, topo, client = network(params)

        async def main() -> tuple[Sendme, bytes]:
            circ = await two_hops(client, topo)
            circ.send(Begin(WEB, 80), 1)
            _hop, msg, _sid = await circ.recv()
            assert isinstance(msg, Connected)
            head = b"POST /upload?seed=u HTTP/1.0\r\nContent-Length: 100000\r\n\r\n"
            circ.send(Data(head), 1)
            expected = b""
            for n in range(2, 101):             # cells 2..100 of the circuit
                circ.send(Data(bytes(400)), 1)
                if n == 100:
                    expected = circ.crypto.last_digest_sent(1)
            while True:
                _hop, msg, sid = await circ.recv()
                if isinstance(msg, Sendme) and sid == 0:
                    return msg, expected

        return run_test(world, client, main())  # type: ignore[no-any-return]

    sendme, expected = upload(None)
    assert sendme.version == 1 and sendme.data == expected and len(expected) == 20
    assert upload({"sendme_emit_min_version": 0}) == (Sendme(), upload(None)[1])


def test_exceeding_the_stream_window_closes_the_circuit() -> None:
    world, topo, client = network()

    async def main() -> tuple[list[object], int | None]:
        circ = await two_hops(client, topo)
        circ.send(Begin("blackhole.simnet.test", 80), 1)  # connect pending: nothing flushes
        for _ in range(501):
            circ.send(Data(b"optimistic"), 1)
        seen: list[object] = []
        try:
            while True:
                seen.append((await circ.recv())[1])
        except Destroyed as exc:
            return seen, exc.reason

    seen, reason = run_test(world, client, main())
    assert End(EndReason.TORPROTOCOL) in seen
    assert reason == DestroyReason.DESTROYED
    assert "stream deliver window below 0" in exit_closes(world)[0]


def test_stream_sendme_beyond_the_window_closes_the_circuit() -> None:
    world, topo, client = network()

    async def main() -> int | None:
        circ = await two_hops(client, topo)
        circ.send(Begin(WEB, 80), 1)
        await circ.recv()
        circ.send(Sendme(), 1)           # nothing was sent on the stream yet
        try:
            while True:
                await circ.recv()
        except Destroyed as exc:
            return exc.reason

    assert run_test(world, client, main()) == DestroyReason.DESTROYED
    assert "unexpected stream SENDME" in exit_closes(world)[0]
