"""The directory client, path selection and guards against simnet's emulated authorities.

The authorities of simnet.topology (written separately, from the specs) vote,
sign and serve a microdesc consensus on a schedule; the client fetches it over
their DirPorts (plain HTTP/1.0, dir-spec §4), then chooses paths and guards
from what it got.  The network has families and shared /16s, so the path
rules meet real conflicts.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from gotor.circuit.circuit import Circuit, build_circuit
from gotor.circuit.params import CircParams
from gotor.dir import BootstrapEvent, DirClient, DirConfig, DirSource, SourceKind
from gotor.guard import GuardManager, GuardUsage, GuardVerdict
from gotor.link.pool import ChannelPool
from gotor.netdir import NetDir, same_family, same_subnet
from gotor.path import choose_exit_path
from gotor.runtime.api import ByteStream
from simnet.net import Host, Network
from simnet.topology import Topology, build_topology
from simnet.world import World

N_RELAYS = 30


@dataclass
class Sim:
    world: World
    net: Network
    topo: Topology
    client: Host
    dir_client: DirClient
    events: list[BootstrapEvent]

    def run(self, coro: Coroutine[Any, Any, Any], until: float) -> Any:
        task = self.client.runtime.spawn(coro, name="test")
        self.world.run(until=until)
        assert task.done() and self.world.errors == [], self.world.errors
        return task.result()


@pytest.fixture()
def sim() -> Sim:
    """A bootstrapped world per test: the refresh case moves virtual time by hours."""
    world = World(11)
    net = Network(world)
    topo = build_topology(world, net, n_relays=N_RELAYS, authority_id_bits=1024,
                          family_fraction=0.3, shared16_fraction=0.3)
    client = net.add_host("client")
    cc = topo.client_config
    config = DirConfig(
        authorities=tuple(a.v3_ident for a in cc.authorities),
        sources=tuple(DirSource(a.nickname, a.rsa_identity, (a.address, a.dir_port),
                                ed_id=a.ed_identity, kind=SourceKind.AUTHORITY)
                      for a in cc.authorities),
        refresh_caches=0,  # the caches in the consensus speak BEGIN_DIR only
    )
    rt = client.runtime

    async def dirport(source: DirSource) -> ByteStream:
        return await rt.connect(source.ipv4[0], source.ipv4[1])

    events: list[BootstrapEvent] = []
    dc = DirClient(rt, config, dirport, on_progress=events.append)
    s = Sim(world, net, topo, client, dc, events)
    s.run(dc.bootstrap(), until=world.now() + 600)
    return s


def test_bootstrap_against_the_emulated_authorities(sim: Sim) -> None:
    nd = sim.dir_client.netdir
    assert nd is not None and nd.lifetime.is_live(sim.client.runtime.wallclock())
    assert len(nd.relays) == N_RELAYS + 3 and nd.missing_microdescs == ()
    assert nd.has_enough_paths() and nd.has_exit_paths()
    assert sim.events[-1].tag == "enough_dirinfo"
    assert not any(e.warning for e in sim.events)
    flags = {f for r in nd.relays for f in r.flags}
    assert {"Guard", "Exit", "Fast", "Stable", "Running", "Valid", "V2Dir"} <= flags


def test_paths_over_the_emulated_network_obey_the_rules(sim: Sim) -> None:
    nd = sim.dir_client.netdir
    assert nd is not None
    conflicts = sum(
        1 for a in nd.relays for b in nd.relays
        if a.rsa_id < b.rsa_id and (same_family(a, b) or same_subnet(a, b))
    )
    assert conflicts > 0  # the topology has families and shared /16s to avoid
    rng = random.Random(5)
    exits = set()
    for _ in range(200):
        path = choose_exit_path(nd, rng, port=80)
        first, middle, last = path.hops
        exits.add(last.rsa_id)
        assert "Guard" in first.flags and last.allows_port(80)
        for a, b in ((first, middle), (first, last), (middle, last)):
            assert a.rsa_id != b.rsa_id and not same_family(a, b) and not same_subnet(a, b)
    assert len(exits) > 1


def test_guards_over_the_emulated_network(sim: Sim) -> None:
    nd = sim.dir_client.netdir
    assert nd is not None
    now = sim.client.runtime.wallclock()
    gm = GuardManager(random.Random(2))
    gm.update(nd, now)
    guards = [r for r in nd.relays if {"Guard", "Stable", "Fast", "V2Dir"} <= r.flags]
    assert guards and len(gm.sampled) == len(guards)  # fewer than 20: all sampled
    path = choose_exit_path(nd, random.Random(3), port=443, guards=gm, now=now)
    assert path.guard_token is not None and path.guard_token.usage is GuardUsage.ON_COMPLETION
    assert path.first.rsa_id in gm.primary


def test_refresh_follows_the_authorities_schedule(sim: Sim) -> None:
    dc = sim.dir_client
    before = dc.netdir
    assert before is not None

    async def scenario() -> NetDir:
        task = dc.start_refresh()
        new = await dc.wait_for_update(before)
        task.cancel()
        return new

    new = sim.run(scenario(), until=sim.world.now() + 4 * 3600)
    assert new.lifetime.valid_after > before.lifetime.valid_after
    fetched = sim.client.runtime.wallclock()
    # dir-spec §5.1: not before 3/4 of an interval past fresh-until
    interval = before.lifetime.fresh_until - before.lifetime.valid_after
    assert fetched >= before.lifetime.fresh_until + interval * 3 // 4
    assert len(new.relays) == N_RELAYS + 3


def test_bootstrap_over_one_hop_circuits_then_a_three_hop_circuit(sim: Sim) -> None:
    """The wiring the client uses: CREATE_FAST + BEGIN_DIR to the authorities' ORPorts
    before there is a consensus, CREATE2 to caches afterwards (gotor.circuit)."""
    host = sim.net.add_host("client2")
    rt = host.runtime
    pool = ChannelPool(rt)
    cc = sim.topo.client_config
    config = DirConfig(
        authorities=tuple(a.v3_ident for a in cc.authorities),
        sources=tuple(DirSource(a.nickname, a.rsa_identity, (a.address, a.or_port),
                                ed_id=a.ed_identity, kind=SourceKind.AUTHORITY)
                      for a in cc.authorities),
    )
    circuits: list[Circuit] = []

    async def begin_dir(source: DirSource) -> ByteStream:
        hop = source.hop_spec()
        if hop is None:
            circ = await Circuit.create_fast(rt, pool, source.chan_target(), CircParams())
        else:
            circ = await Circuit.create(rt, pool, hop, CircParams())
        circuits.append(circ)
        return await circ.open_dir_stream()

    dc = DirClient(rt, config, begin_dir)

    async def scenario() -> tuple[NetDir, GuardVerdict]:
        nd = await dc.bootstrap()
        gm = GuardManager(random.Random(4))
        path = choose_exit_path(nd, rt.rng, port=80, guards=gm, now=rt.wallclock())
        circ = await build_circuit(rt, pool, [h.hop_spec() for h in path.hops],
                                   nd.circ_params())
        assert path.guard_token is not None
        verdict = gm.report(path.guard_token, True, rt.wallclock())
        circ.close()
        for c in circuits:
            c.close()
        return nd, verdict

    task = rt.spawn(scenario(), name="client2")
    sim.world.run(until=sim.world.now() + 600)
    assert task.done() and sim.world.errors == [], sim.world.errors
    nd, verdict = task.result()
    assert len(nd.relays) == N_RELAYS + 3 and verdict is GuardVerdict.USE
    assert circuits and all(c.hops for c in circuits)
