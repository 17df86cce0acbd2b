"""The circuit manager against simnet's emulated network (no TorClient on top), its
configuration, and the client's table of C tor's stream-retry rules.

One network (3 authorities, 16 relays) is bootstrapped once through a circuit
manager's own directory circuits; each test then runs a fresh manager (own host,
channel pool and guard state) over that directory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.cells.relaymsg import EndReason
from gotor.circmgr import ANY, UNBOUND, CircKind, CircuitManager, _fits
from gotor.circuit import Circuit, HopSpec
from gotor.client import _Action, _connect_action, _resolve_action
from gotor.config import CircuitConfig, ClientConfig, StreamConfig
from gotor.dir import DirClient, DirConfig, DirSource
from gotor.errors import CircuitError, LocalError, NoPathError, StreamError
from gotor.guard import GuardManager, GuardToken, GuardVerdict, Reachable
from gotor.link.channel import ChanTarget
from gotor.link.pool import ChannelPool
from gotor.netdir import NetDir
from gotor.runtime.sync import timeout
from simnet.binding import SimRuntime
from simnet.net import Network
from simnet.nodes.relay import Misbehaviour
from simnet.topology import Topology, build_topology
from simnet.world import World


@dataclass
class Env:
    world: World
    net: Network
    topo: Topology
    netdir: NetDir
    sources: tuple[DirSource, ...]
    hosts: int = 0

    def manager(self, config: CircuitConfig | None = None, *,
                guards: GuardManager | None = None) -> tuple[SimRuntime, CircuitManager]:
        self.hosts += 1
        rt = self.net.add_host(f"cm{self.hosts}").runtime
        cm = CircuitManager(rt, ChannelPool(rt), guards or GuardManager(random.Random(self.hosts)),
                            config or CircuitConfig(preemptive_circuits=0))
        cm.set_netdir(self.netdir)
        return rt, cm

    def run(self, rt: SimRuntime, coro: Coroutine[Any, Any, Any], limit: float = 900) -> Any:
        task = rt.spawn(coro, name="test")
        env = self.world.env
        self.world.run(until=env.any_of([task._proc, env.timeout(limit)]))
        assert task.done(), "blocked"
        assert self.world.errors == [], self.world.errors
        return task.result()


@pytest.fixture()
def env() -> Env:
    """A bootstrapped world per test, so no case depends on what ran before it."""
    world = World(3)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=16, authority_id_bits=1024)
    config = DirConfig.from_dir_authorities(topo.client_config.torrc_lines())
    rt = net.add_host("bootstrap").runtime
    cm = CircuitManager(rt, ChannelPool(rt), GuardManager(random.Random(0)), CircuitConfig())
    dc = DirClient(rt, config, cm.open_dir_stream, on_netdir=cm.set_netdir)
    e = Env(world, net, topo, None, config.sources)  # type: ignore[arg-type]

    async def boot() -> NetDir:
        await rt.sleep(1)
        netdir = await dc.bootstrap()
        await cm.aclose()
        return netdir

    e.netdir = e.run(rt, boot())
    return e


def _ids(circ: Circuit) -> list[bytes]:
    return [hop.rsa_id for hop in circ.hops]


# --- exit circuits -------------------------------------------------------------------------
def test_isolation_keys_bind_circuits(env: Env) -> None:
    rt, cm = env.manager()

    async def main() -> list[Circuit]:
        circs = [await cm.get_exit_circuit(80, key) for key in ("a", "a", "b", None, None)]
        assert [cm.isolation_of(c) for c in circs] == ["a", "a", "b", None, None]
        await cm.aclose()
        return circs

    a1, a2, b, n1, n2 = env.run(rt, main())
    assert a1 is a2 and n1 is n2
    assert len({id(a1), id(b), id(n1)}) == 3
    assert cm.stats.built == 3 and len(a1.hops) == 3


def test_concurrent_requests_share_one_build(env: Env) -> None:
    rt, cm = env.manager()

    async def main() -> list[Circuit]:
        tasks = [rt.spawn(cm.get_exit_circuit(443, None), name=f"r{i}") for i in range(5)]
        tasks.append(rt.spawn(cm.get_exit_circuit(443, "other"), name="other"))
        circs = [await t for t in tasks]
        await cm.aclose()
        return circs

    circs = env.run(rt, main())
    assert all(c is circs[0] for c in circs[:5]) and circs[5] is not circs[0]
    assert cm.stats.built == 2


def test_a_clean_circuit_waits_for_its_first_request(env: Env) -> None:
    rt, cm = env.manager()

    async def main() -> tuple[bool, object, Circuit, Circuit]:
        clean = await cm.ensure_exit_circuit(80)
        was_clean = cm.is_clean(clean)
        before = cm.isolation_of(clean)
        taken = await cm.get_exit_circuit(80, "k")
        await cm.aclose()
        return was_clean, before, clean, taken

    was_clean, before, clean, taken = env.run(rt, main())
    assert was_clean and before is UNBOUND and taken is clean and cm.stats.built == 1


def test_dirty_circuits_expire(env: Env) -> None:
    rt, cm = env.manager(CircuitConfig(preemptive_circuits=0, max_dirtiness=30))
    cm.start()

    async def main() -> tuple[Circuit, Circuit, bool]:
        first = await cm.get_exit_circuit(80, None)
        await rt.sleep(31)
        second = await cm.get_exit_circuit(80, None)
        await rt.sleep(2)  # a tick: the first has no streams, so it closes
        closed = first.closed
        await cm.aclose()
        return first, second, closed

    first, second, closed = env.run(rt, main())
    assert second is not first and closed
    assert not cm.circuits()  # aclose closed the rest


def test_avoided_relays_are_in_no_new_path(env: Env) -> None:
    rt, cm = env.manager()
    exits = [r.rsa_id for r in env.netdir.relays if r.allows_port(80)]

    async def main() -> Circuit:
        circ = await cm.get_exit_circuit(80, None, avoid=exits[:-1])
        await cm.aclose()
        return circ

    circ = env.run(rt, main())
    assert _ids(circ)[-1] == exits[-1] and not set(exits[:-1]) & set(_ids(circ))


def test_no_exit_for_the_port_is_a_no_path_error(env: Env) -> None:
    rt, cm = env.manager()
    exits = [r.rsa_id for r in env.netdir.relays if r.allows_port(80)]

    async def main() -> None:
        try:
            with pytest.raises(NoPathError):
                await cm.get_exit_circuit(80, None, avoid=exits)
        finally:
            await cm.aclose()

    env.run(rt, main())
    assert cm.stats.built == cm.stats.failed == 0


def _relays_where(env: Env, pick: Callable[[bytes], bool]) -> list[Any]:
    return [r for r in env.topo.all_relays if pick(r.keys.rsa_id)]


def test_failed_builds_are_retried_around_the_relay_that_failed(env: Env) -> None:
    guards = {r.rsa_id for r in env.netdir.relays if "Guard" in r.flags}
    bad = _relays_where(env, lambda rid: rid not in guards)  # every middle-or-exit-only relay
    rt, cm = env.manager()
    for relay in bad:
        relay.set_misbehaviour(Misbehaviour(bad_created_auth=True))

    async def main() -> list[Circuit]:
        circs = []
        try:
            for key in range(8):  # new circuits until some builds have met a bad relay
                circs.append(await cm.get_exit_circuit(80, key))
                if cm.stats.failed >= 2:
                    break
            return circs
        finally:
            await cm.aclose()

    try:
        circs = env.run(rt, main())
    finally:
        for relay in bad:
            relay.set_misbehaviour(Misbehaviour())
    assert cm.stats.failed >= 2
    bad_ids = {r.keys.rsa_id for r in bad}
    assert all(not bad_ids & set(_ids(c)) for c in circs)
    failed_hops = [line for line in env.world.trace.lines
                   if '"ev":"circ-failed"' in line and f'"node":"{rt.host.name}"' in line]
    assert failed_hops and all('"hop":1' in f or '"hop":2' in f for f in failed_hops)


def test_a_guard_failing_its_own_hop_is_reported(env: Env) -> None:
    rt, cm = env.manager()

    async def first() -> bytes:
        circ = await cm.get_exit_circuit(80, "probe")
        return _ids(circ)[0]

    guard_id = env.run(rt, first())
    guard = _relays_where(env, lambda rid: rid == guard_id)[0]
    guard.set_misbehaviour(Misbehaviour(unexpected_cell=True))

    async def again() -> Circuit:
        try:
            return await cm.get_exit_circuit(80, "after")  # a new circuit, same channel
        finally:
            await cm.aclose()

    try:
        circ = env.run(rt, again())
    finally:
        guard.set_misbehaviour(Misbehaviour())
    assert _ids(circ)[0] != guard_id
    assert cm.guards.reachable(guard_id) is Reachable.NO


def test_every_build_failing_gives_a_circuit_error(env: Env) -> None:
    exits = {r.rsa_id for r in env.netdir.relays if r.allows_port(80)}
    bad = _relays_where(env, lambda rid: rid in exits)
    rt, cm = env.manager(CircuitConfig(preemptive_circuits=0, build_attempts=2))
    for relay in bad:
        relay.set_misbehaviour(Misbehaviour(bad_created_auth=True))

    async def main() -> CircuitError:
        try:
            with pytest.raises(CircuitError) as info:
                await cm.get_exit_circuit(80, None)
            return info.value
        finally:
            await cm.aclose()

    try:
        err = env.run(rt, main())
    finally:
        for relay in bad:
            relay.set_misbehaviour(Misbehaviour())
    assert "builds failed" in err.reason or "make no path" in err.reason
    assert "handshake with hop 3 failed" in err.reason
    assert cm.stats.failed >= 2


def _ports(env: Env, circ: Circuit) -> set[int]:
    exit_ = env.netdir.by_rsa_id(circ.hops[-1].rsa_id)
    assert exit_ is not None
    return {p for p in (80, 443) if exit_.allows_port(p)}


def test_preemption_keeps_the_target_count_per_port(env: Env) -> None:
    rt, cm = env.manager(CircuitConfig(preemptive_circuits=2, predicted_ports=(80, 443)))
    cm.start()

    async def main() -> tuple[int, int, int, int]:
        await rt.sleep(30)
        clean = [c for c in cm.circuits() if cm.is_clean(c)]
        per_port = [sum(1 for c in clean if p in _ports(env, c)) for p in (80, 443)]
        built = cm.stats.built
        await rt.sleep(30)  # nothing more is needed: nothing more is built
        again = cm.stats.built
        await cm.aclose()
        return per_port[0], per_port[1], built, again

    for_80, for_443, built, again = env.run(rt, main())
    assert for_80 >= 2 and for_443 >= 2 and built == again


class _Waiting(GuardManager):
    """Says WAIT for the first circuit, then lets it be used after `release_at`."""

    release_at = float("inf")

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.held: list[GuardToken] = []

    def report(self, token: GuardToken, success: bool, now: float) -> GuardVerdict:
        verdict = super().report(token, success, now)
        if success and not self.held:
            self.held.append(token)
            return GuardVerdict.WAIT
        return verdict

    def poll_waiting(self, now: float) -> tuple[list[GuardToken], list[GuardToken]]:
        if self.held and now >= self.release_at:
            return [self.held.pop()], []
        return [], []


def test_guard_wait_verdicts_hold_a_circuit_until_the_manager_lets_it_go(env: Env) -> None:
    guards = _Waiting(random.Random(9))
    rt, cm = env.manager(guards=guards)
    cm.start()

    async def main() -> tuple[Circuit, float, int]:
        guards.release_at = rt.wallclock() + 20
        start = rt.now()
        circ = await cm.get_exit_circuit(80, None)
        took = rt.now() - start
        await cm.aclose()
        return circ, took, cm.stats.built

    _, took, built = env.run(rt, main())
    assert took >= 19 and built == 1  # it waited for that circuit, building no other


def test_a_request_held_by_a_waiting_circuit_goes_on_when_that_circuit_closes(env: Env) -> None:
    # The request waits because a circuit is held for a better guard; once that circuit
    # dies (here: closed; in life, a DESTROY) the request must look again at once, not
    # sleep until some unrelated event (there is no preemptive circuit here to give one).
    guards = _Waiting(random.Random(9))
    rt, cm = env.manager(guards=guards)
    cm.start()

    async def close_held() -> Circuit:
        while not guards.held:
            await rt.sleep(0.1)
        (held,) = cm.circuits()
        held.close("the relay went away")
        return held

    async def main() -> tuple[Circuit, Circuit, int]:
        closer = rt.spawn(close_held(), name="closer")
        circ = await timeout(rt, 60, cm.get_exit_circuit(80, None), what="the request")
        held = await closer
        await cm.aclose()
        return circ, held, cm.stats.built

    circ, held, built = env.run(rt, main())
    assert circ is not held and built == 2


def test_aclose_cancels_builds_and_fails_waiting_requests(env: Env) -> None:
    rt = env.net.add_host("closing").runtime
    pool = ChannelPool(rt)
    cm = CircuitManager(rt, pool, GuardManager(random.Random(5)))
    cm.set_netdir(env.netdir)
    cm.start()

    async def main() -> tuple[str, int]:
        request = rt.spawn(cm.get_exit_circuit(80, None), name="request")
        await rt.sleep(0.01)  # the build is under way
        assert cm.pending >= 1
        await cm.aclose()
        await pool.aclose()  # the channel handshakes under way (the client does this)
        with pytest.raises(CircuitError) as info:
            await request
        return info.value.reason, cm.pending

    reason, pending = env.run(rt, main())
    assert "closed" in reason and pending == 0
    assert [t.name for t in rt._tasks.values()] == []
    assert cm.guards.pending_attempts() == {}


def test_closed_circuits_are_dropped_and_their_guard_attempts_released(env: Env) -> None:
    rt, cm = env.manager()

    async def main() -> tuple[Circuit, Circuit, int]:
        first = await cm.get_exit_circuit(80, None)
        attempts = len(cm.guards.pending_attempts())
        first.close("test")
        second = await cm.get_exit_circuit(80, None)
        await cm.aclose()
        return first, second, attempts

    first, second, attempts = env.run(rt, main())
    assert first is not second and attempts == 1
    assert cm.guards.pending_attempts() == {}


# --- directory circuits ----------------------------------------------------------------------
def test_directory_circuits_are_shared_reused_and_closed_when_idle(env: Env) -> None:
    rt, cm = env.manager(CircuitConfig(preemptive_circuits=0, dir_idle=20))
    source = env.sources[0]
    cm.start()

    async def main() -> tuple[list[Any], list[Circuit], bool]:
        tasks = [rt.spawn(cm.open_dir_stream(source), name=f"d{i}") for i in range(3)]
        streams = [await t for t in tasks]
        circs = cm.circuits(CircKind.DIR)
        for s in streams:
            s.abort()
        await rt.sleep(25)
        closed = all(c.closed for c in circs)
        await cm.aclose()
        return streams, circs, closed

    streams, circs, closed = env.run(rt, main())
    assert len(streams) == 3 and len(circs) == 1 and closed
    assert cm.stats.dir_built == 1


def test_directory_circuits_use_create2_once_the_ntor_key_is_known(env: Env) -> None:
    source = env.sources[1]
    rt, cm = env.manager()  # has the directory: the authority's relay is listed
    rt2 = env.net.add_host("no-netdir").runtime
    bare = CircuitManager(rt2, ChannelPool(rt2), GuardManager(random.Random(1)))

    async def main(m: CircuitManager) -> Any:
        stream = await m.open_dir_stream(source)
        first = m.circuits(CircKind.DIR)[0].hops[0]
        stream.abort()
        await m.aclose()
        return first

    assert isinstance(env.run(rt, main(cm)), HopSpec)
    assert isinstance(env.run(rt2, main(bare)), ChanTarget)  # CREATE_FAST


# --- configuration and the client's retry table ---------------------------------------------
def test_circuit_and_stream_config_validation() -> None:
    with pytest.raises(LocalError):
        CircuitConfig(max_dirtiness=0)
    with pytest.raises(LocalError):
        CircuitConfig(build_attempts=0)
    with pytest.raises(LocalError):
        CircuitConfig(predicted_ports=(0,))
    with pytest.raises(LocalError):
        StreamConfig(begin_timeouts=())
    with pytest.raises(LocalError):
        StreamConfig(attempts=0)
    cfg = StreamConfig()
    assert [cfg.begin_timeout(i) for i in range(5)] == [10, 10, 15, 15, 15]


def test_client_config_defaults_and_testing_network(env: Env, tmp_path: Any) -> None:
    dir_config = DirConfig.from_dir_authorities(env.topo.client_config.torrc_lines())
    plain = ClientConfig(str(tmp_path), dir_config)  # type: ignore[arg-type]
    testing = ClientConfig(tmp_path, dir_config, testing_network=True)
    explicit = ClientConfig(tmp_path, dir_config, testing_network=True,
                            circuits=CircuitConfig(max_dirtiness=5))
    assert plain.data_dir == tmp_path and plain.circuit_config == CircuitConfig()
    assert testing.circuit_config.channel_timeout < plain.circuit_config.channel_timeout
    assert testing.stream_config.connect_timeout < plain.stream_config.connect_timeout
    assert explicit.circuit_config.max_dirtiness == 5
    with pytest.raises(LocalError):
        ClientConfig(tmp_path, dir_config, socks=("127.0.0.1", 70000))


def test_isolation_matching() -> None:
    assert _fits("a", UNBOUND) and _fits(None, UNBOUND) and _fits(ANY, UNBOUND)
    assert _fits("a", "a") and not _fits("a", "b") and not _fits(None, "a")
    assert not _fits(ANY, None)  # a preemptive use never takes a bound circuit


class _Circ:
    def __init__(self, closed: bool) -> None:
        self.closed = closed


@pytest.mark.parametrize("reason, action", [
    (EndReason.EXITPOLICY, _Action.RETRY_ELSEWHERE),
    (EndReason.HIBERNATING, _Action.RETRY_ELSEWHERE),
    (EndReason.RESOURCELIMIT, _Action.RETRY_ELSEWHERE),
    (EndReason.RESOLVEFAILED, _Action.RETRY_LIMITED),
    (EndReason.MISC, _Action.RETRY_LIMITED),
    (EndReason.NOROUTE, _Action.RETRY_LIMITED),
    (EndReason.TORPROTOCOL, _Action.CLOSE),
    (EndReason.DESTROY, _Action.CLOSE),
    (EndReason.CONNECTREFUSED, _Action.FAIL),
    (EndReason.TIMEOUT, _Action.FAIL),  # in C tor's switch, but not edge_reason_is_retriable
    (EndReason.DONE, _Action.FAIL),
    (EndReason.CONNRESET, _Action.FAIL),
    (EndReason.INTERNAL, _Action.FAIL),
    (200, _Action.FAIL),
])
def test_end_reasons_follow_c_tor(reason: int, action: _Action) -> None:
    err = StreamError("x", end_reason=reason)
    assert _connect_action(err, _Circ(False)) is action  # type: ignore[arg-type]
    assert _resolve_action(err, _Circ(False)) is _Action.FAIL  # type: ignore[arg-type]


def test_no_end_reason_means_retry() -> None:
    err = StreamError("no answer")
    assert _connect_action(err, _Circ(False)) is _Action.RETRY  # type: ignore[arg-type]
    assert _connect_action(err, _Circ(True)) is _Action.RETRY_ELSEWHERE  # type: ignore[arg-type]
    assert _resolve_action(err, _Circ(True)) is _Action.RETRY_ELSEWHERE  # type: ignore[arg-type]


@given(st.integers(0, 255), st.booleans())
def test_every_end_reason_byte_has_an_action(reason: int, circuit_closed: bool) -> None:
    err = StreamError("x", end_reason=reason)
    action = _connect_action(err, _Circ(circuit_closed))  # type: ignore[arg-type]
    retried = {EndReason.EXITPOLICY, EndReason.HIBERNATING, EndReason.RESOURCELIMIT,
               EndReason.RESOLVEFAILED, EndReason.MISC, EndReason.NOROUTE}
    closing = {EndReason.TORPROTOCOL, EndReason.DESTROY}
    assert (action is _Action.FAIL) == (reason not in retried | closing)
    assert (action is _Action.CLOSE) == (reason in closing)
