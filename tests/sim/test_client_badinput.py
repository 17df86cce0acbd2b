"""Bad input (issue 4): relays that break the protocol, and what the TorClient makes of it.

Every misbehaviour switch of simnet's emulated relays is turned on for some relays of
a running network: the client's circuits and channels to them close with a typed
reason (traced), a request either succeeds through other relays (the client retried)
or fails with a clear :class:`~gotor.errors.GotorError`, nothing hangs (every run is
bounded), nothing crashes (no unobserved task failure in the world), and once the
relays behave again the same client fetches normally.

The network is learnt once by a first client (its guards, the relays' flags); each
case then starts a client from a copy of that data directory, so that it begins with
the same guards: channel-level switches are put on its primary guards, circuit-level
switches on relays that cannot be guards (so that they meet us as middles and exits).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from client_sim import WEB, ClientSim, body_of, client_sim, read_all, request

from gotor import BootstrapEvent, GotorError, StreamError, TorClient
from gotor.guard import Reachable
from simnet.nodes.relay import Misbehaviour, RelayNode

FETCHES = 6
SIZE = 20_000


@dataclass
class Net:
    sim: ClientSim
    pristine: Path  # the first client's data directory: consensus cache and guards
    primary: list[bytes]  # its primary guards
    guard_flag: frozenset[bytes]  # relays listed with the Guard flag

    def relays(self, ids: Callable[[bytes], bool]) -> list[RelayNode]:
        return [r for r in self.sim.topo.all_relays if ids(r.keys.rsa_id)]


@pytest.fixture()
def net(tmp_path_factory: pytest.TempPathFactory) -> Net:
    """A fresh world per test: one shared by the module made a case's outcome depend on the
    cases that ran before it in the same process (virtual time, consensus and guard state
    carried over), which pytest-xdist changes from run to run."""
    sim = client_sim(3)
    data = tmp_path_factory.mktemp("pristine")

    async def learn(client: TorClient) -> tuple[list[bytes], frozenset[bytes]]:
        nd = client.netdir
        assert nd is not None
        flagged = frozenset(r.rsa_id for r in nd.relays if "Guard" in r.flags)
        return client.circmgr.guards.primary, flagged

    primary, flagged = _with_client(sim, data, learn)
    return Net(sim, data, primary, flagged)


def _with_client(sim: ClientSim, data: Path, scenario: Callable[[TorClient], Any],
                 events: list[BootstrapEvent] | None = None) -> Any:
    async def main() -> Any:
        async with TorClient(sim.rt, sim.config(data), on_progress=events.append
                             if events is not None else None) as client:
            return await scenario(client)

    return sim.run(main(), limit=1800)


@dataclass
class Outcome:
    results: list[str]  # "ok" or the error's type and text, per fetch
    healed: bool
    reachable: dict[bytes, Reachable | None]
    stats: Any
    circuit_reasons: list[str]  # circ-failed and circ-closed reasons of the client


def run_case(net: Net, tmp_path: Path, bad: Misbehaviour, victims: list[RelayNode]) -> Outcome:
    data = tmp_path / "data"
    shutil.copytree(net.pristine, data)
    for relay in victims:
        relay.set_misbehaviour(bad)
    mark = len(net.sim.world.trace.lines)

    async def scenario(client: TorClient) -> Outcome:
        results = []
        for i in range(FETCHES):
            try:
                stream = await client.connect(WEB, 80, isolation=i)
                stream.write(request(SIZE, f"bad{i}"))
                body_of(await read_all(stream), SIZE, f"bad{i}")
                results.append("ok")
            except GotorError as err:
                results.append(f"{type(err).__name__}: {err}")
        reach = {r.keys.rsa_id: client.circmgr.guards.reachable(r.keys.rsa_id) for r in victims}
        for relay in victims:
            relay.set_misbehaviour(Misbehaviour())
        stream = await client.connect(WEB, 80, isolation="healed")
        stream.write(request(SIZE, "healed"))
        healed = len(body_of(await read_all(stream), SIZE, "healed")) == SIZE
        return Outcome(results, healed, reach, client.stats, [])

    try:
        outcome: Outcome = _with_client(net.sim, data, scenario)
    finally:
        for relay in victims:
            relay.set_misbehaviour(Misbehaviour())
    lines = net.sim.world.trace.lines[mark:]
    outcome.circuit_reasons = [
        line for line in lines if '"node":"client"' in line
        and ('"ev":"circ-failed"' in line or '"ev":"circ-closed"' in line)
        and "client closed" not in line]
    return outcome


def _not_guards(net: Net) -> list[RelayNode]:
    # every other relay that can never be a guard: middles and exits only
    return net.relays(lambda rid: rid not in net.guard_flag)[::2]


def _primaries(net: Net) -> list[RelayNode]:
    return net.relays(lambda rid: rid in net.primary)


@pytest.mark.parametrize("bad, reason", [
    (Misbehaviour(bad_created_auth=True), "handshake with hop"),
    (Misbehaviour(malformed_created=True), "destroyed by the relay"),
    (Misbehaviour(unexpected_cell=True), "destroyed by the relay"),
    (Misbehaviour(corrupt_digest=True), "relay cell not recognized by any hop"),
])
def test_bad_middles_and_exits_are_built_around(net: Net, tmp_path: Path, bad: Misbehaviour,
                                                reason: str) -> None:
    """Broken handshakes, malformed or unexpected cells and corrupt digests from middles
    and exits: every fetch succeeds through other relays."""
    out = run_case(net, tmp_path, bad, _not_guards(net))
    assert out.results == ["ok"] * FETCHES and out.healed
    assert any(reason in line for line in out.circuit_reasons), out.circuit_reasons
    assert out.stats.circuits_failed + out.stats.stream_retries > 0


@pytest.mark.parametrize("bad, reason", [
    (Misbehaviour(bad_certs="signature"), "CERTS cell rejected"),
    (Misbehaviour(bad_certs="missing"), "no certificate of type 7"),
    (Misbehaviour(bad_certs="duplicate"), "more than one certificate"),
    (Misbehaviour(stall_handshake=True), "timed out"),
    (Misbehaviour(eof_mid_cell_after=2), "in the middle of a cell"),
    (Misbehaviour(bad_created_auth=True), "handshake with hop 1 failed"),
    (Misbehaviour(malformed_created=True), "CREATED2 cell truncated"),
    (Misbehaviour(unexpected_cell=True), "CREATED_FAST in answer to"),
])
def test_bad_primary_guards_are_marked_unreachable(net: Net, tmp_path: Path,
                                                   bad: Misbehaviour, reason: str) -> None:
    """Bad certificates, a stalled handshake, EOF in the middle of the handshake, a bad,
    malformed or unexpected answer to CREATE2 from our primary guards: the first hop
    failed without a DESTROY, so the guards are marked unreachable (guard-spec §4.8,
    C tor's circuit_build_failed) and every fetch goes through another guard."""
    victims = _primaries(net)
    out = run_case(net, tmp_path, bad, victims)
    assert out.results == ["ok"] * FETCHES and out.healed
    assert Reachable.NO in out.reachable.values()
    assert any(reason in line for line in out.circuit_reasons), out.circuit_reasons


#: A primary guard that is the middle of one of our circuits breaks its link to our guard,
#: which tells us with DESTROY(CHANNEL_CLOSED).
BROKEN_FURTHER_ON = "destroyed by the relay (CHANNEL_CLOSED)"


@pytest.mark.parametrize("bad, where, reasons", [
    (Misbehaviour(destroy_after=3), _not_guards, ("destroyed by the relay",)),
    (Misbehaviour(eof_mid_cell_after=10), _not_guards, ("destroyed by the relay",)),
    (Misbehaviour(eof_mid_cell_after=8), _primaries,
     ("in the middle of a cell", BROKEN_FURTHER_ON)),
    (Misbehaviour(destroy_after=1), _primaries, ("destroyed by the relay",)),
    (Misbehaviour(corrupt_digest=True), _primaries, ("relay cell not recognized by any hop",)),
])
def test_destroy_eof_and_bad_digests_give_clear_errors(
        net: Net, tmp_path: Path, bad: Misbehaviour,
        where: Callable[[Net], list[RelayNode]], reasons: tuple[str, ...]) -> None:
    """DESTROY or a broken link after some cells, at a guard or further on, and a guard
    whose relay cells fail the digest check: what cannot be retried (data was flowing)
    fails with a StreamError that says why, and a guard that fails circuits after its
    own hop is not abandoned (C tor blames a guard only for the first hop: switching
    guards on such failures would help an attacker), so requests fail with a
    CircuitError naming the last failure; the client recovers once the relays behave.
    The first of ``reasons`` is the failure met at the client's own link or circuit."""
    out = run_case(net, tmp_path, bad, where(net))
    failed = [r for r in out.results if r != "ok"]
    assert failed, "the misbehaviour was never met"
    assert all(r.startswith(("StreamError", "CircuitError")) for r in failed), failed
    assert all(any(reason in r for reason in reasons) or "no circuit to an exit" in r
               for r in failed), failed
    assert any(reasons[0] in line for line in out.circuit_reasons), out.circuit_reasons
    assert out.healed


def test_a_misbehaving_authority_does_not_stop_the_bootstrap(net: Net, tmp_path: Path) -> None:
    """A fresh client (no cache) whose directory sources include an authority that
    answers CREATE_FAST with a bad key hash and one that stalls its handshake: the
    directory client fails over (warning events) and the bootstrap completes."""
    auths = [a.relay for a in net.sim.topo.authorities.authorities]
    auths[0].set_misbehaviour(Misbehaviour(bad_created_auth=True))
    auths[1].set_misbehaviour(Misbehaviour(stall_handshake=True))
    events: list[BootstrapEvent] = []

    async def scenario(client: TorClient) -> int:
        stream = await client.connect(WEB, 80)
        stream.write(request(SIZE, "boot"))
        return len(body_of(await read_all(stream), SIZE, "boot"))

    try:
        size = _with_client(net.sim, tmp_path / "fresh", scenario, events)
    finally:
        for relay in auths[:2]:
            relay.set_misbehaviour(Misbehaviour())
    assert size == SIZE
    assert events[-1].tag == "done"
    warnings = [e.warning or "" for e in events if e.warning]
    assert any(("from authority auth0" in w or "from authority auth1" in w) and "failed" in w
               for w in warnings), warnings


def test_a_stream_error_names_the_reason(net: Net, tmp_path: Path) -> None:
    """A DESTROY in the middle of a transfer: the reader gets StreamError with the
    circuit's reason after the bytes that did arrive, and later reads keep raising it."""
    victims = _not_guards(net)
    data = tmp_path / "data"
    shutil.copytree(net.pristine, data)

    async def scenario(client: TorClient) -> tuple[int, str, str]:
        for relay in victims:
            relay.set_misbehaviour(Misbehaviour(destroy_after=20))
        try:
            for i in range(FETCHES):
                stream = await client.connect(WEB, 80, isolation=("mid", i))
                if stream.circuit.hops[-1].rsa_id in {r.keys.rsa_id for r in victims}:
                    break
            else:
                pytest.fail("no circuit through a misbehaving exit")
            stream.write(request(400_000, "mid"))
            got = b""
            with pytest.raises(StreamError) as first:
                while data := await stream.read():
                    got += data
            with pytest.raises(StreamError) as again:
                await stream.read()
        finally:
            for relay in victims:
                relay.set_misbehaviour(Misbehaviour())
        return len(got), first.value.reason, again.value.reason

    got, reason, again = _with_client(net.sim, data, scenario)
    assert 0 < got < 400_000
    assert "destroyed by the relay (DESTROYED)" in reason and again == reason
