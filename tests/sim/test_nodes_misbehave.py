"""Each Misbehaviour switch of an emulated relay produces the fault it names, as a client
sees it (the client-side handling of these faults is tested with the client)."""

from __future__ import annotations

import pytest
from nodes_client import Destroyed, ScriptCircuit, ScriptLink, fetch, http_get, run_test

from gotor.cells.chan import DestroyReason
from gotor.errors import ProtocolError, Timeout, VerificationError
from gotor.runtime.sync import timeout
from simnet.net import Host, Network
from simnet.nodes.relay import Misbehaviour, RelayNode
from simnet.topology import Topology, build_topology
from simnet.world import World


def network(bad: Misbehaviour) -> tuple[World, Topology, Host, RelayNode]:
    world = World(1)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=4, n_exits=1)
    relay = next(r for r in topo.relays if r.config.ntor_v3)
    relay.set_misbehaviour(bad)
    return world, topo, net.add_host("client"), relay


def outcome(bad: Misbehaviour, kind: str = "ntor", *, begin_dir: bool = False) -> str:
    """What the scripted client hits: 'ok', or the exception's type and text."""
    world, _topo, client, relay = network(bad)

    async def main() -> str:
        try:
            link = await timeout(client.runtime, 70.0, ScriptLink.open(client.runtime, relay))
            circ = await ScriptCircuit.create(link, relay, kind)
            if begin_dir:
                await fetch(circ, 1, "", 0, http_get("/tor/keys/all"), begin_dir=True)
        except (ProtocolError, Timeout, Destroyed) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    return run_test(world, client, main())  # type: ignore[no-any-return]


def test_well_behaved_baseline() -> None:
    assert outcome(Misbehaviour(), begin_dir=True) == "ok"


def test_stalled_handshake_times_out() -> None:
    assert outcome(Misbehaviour(stall_handshake=True)).startswith("Timeout")


@pytest.mark.parametrize("how,text", [("signature", "signature"), ("missing", "type 7"),
                                      ("duplicate", "more than one")])
def test_bad_certs_fail_verification(how: str, text: str) -> None:
    got = outcome(Misbehaviour(bad_certs=how))
    assert got.startswith("VerificationError") and text in got
    assert issubclass(VerificationError, ProtocolError)


@pytest.mark.parametrize("kind,text", [("ntor", "ntor auth mismatch"),
                                       ("ntor-v3", "ntor-v3 auth mismatch"),
                                       ("fast", "CREATE_FAST KH mismatch")])
def test_bad_created_auth(kind: str, text: str) -> None:
    assert outcome(Misbehaviour(bad_created_auth=True), kind) == f"ProtocolError: {text}"


def test_malformed_created2() -> None:
    got = outcome(Misbehaviour(malformed_created=True))
    assert got.startswith("ProtocolError") and "CREATED2" in got


def test_unexpected_cell_for_the_state() -> None:
    assert outcome(Misbehaviour(unexpected_cell=True)) == "ProtocolError: expected cell 11, got 6"


def test_corrupt_digest_is_not_recognized() -> None:
    got = outcome(Misbehaviour(corrupt_digest=True), begin_dir=True)
    assert got == "ProtocolError: relay cell not recognized by any hop of the circuit"


def test_destroy_after_n_cells() -> None:
    got = outcome(Misbehaviour(destroy_after=1), begin_dir=True)
    assert got == f"Destroyed: destroyed: {int(DestroyReason.INTERNAL)}"


def test_eof_in_the_middle_of_a_cell() -> None:
    world, _topo, client, relay = network(Misbehaviour(eof_mid_cell_after=4))

    async def main() -> tuple[str, str | None, int]:
        link = await ScriptLink.open(client.runtime, relay)   # 4 cells: the handshake
        try:
            await ScriptCircuit.create(link, relay)
        except Destroyed as exc:
            return f"destroyed {exc.reason}", link.closed_reason, len(link.buf)
        return "ok", link.closed_reason, len(link.buf)

    result, reason, leftover = run_test(world, client, main())
    assert result == "destroyed None" and reason == "closed"
    assert 0 < leftover < 514       # half a CREATED2 cell was left undecodable
