"""TorClient behaviour that running against real C tor called for (issue 5), in simnet."""

from __future__ import annotations

from pathlib import Path

from client_sim import WEB, ClientSim, client_sim

from gotor import TorClient


def test_resolving_an_address_needs_no_exit(tmp_path: Path) -> None:
    # A C tor exit answers RESOLVE of an IP address with an error; C tor's client
    # answers it itself, and so do we: no RESOLVE leaves the client.
    sim: ClientSim = client_sim(5, n_relays=8)

    async def main() -> tuple[list[list[str]], int]:
        async with TorClient(sim.rt, sim.config(tmp_path, socks=None)) as client:
            answers = [await client.resolve(h)
                       for h in ("127.0.0.1", "::1", "[2001:db8::1]", "192.0.2.7")]
            return answers, client.stats.resolves

    answers, resolves = sim.run(main())
    assert answers == [["127.0.0.1"], ["::1"], ["2001:db8::1"], ["192.0.2.7"]]
    assert resolves == 4
    assert sim.trace("resolved") == []  # no exit was asked


def test_hostnames_are_still_resolved_by_an_exit(tmp_path: Path) -> None:
    sim: ClientSim = client_sim(6, n_relays=8)

    async def main() -> list[str]:
        async with TorClient(sim.rt, sim.config(tmp_path, socks=None)) as client:
            return await client.resolve(WEB)

    assert sim.run(main()) and len(sim.trace("resolved")) == 1
