"""Emulated relays against a scripted client: link handshake, circuits, extends, streams,
RESOLVE, BEGIN_DIR, exit policies, RELAY_EARLY, DESTROY/TRUNCATE, crashes."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from nodes_client import (
    Destroyed,
    ScriptCircuit,
    ScriptLink,
    _onionskin,
    fetch,
    http_get,
    run_test,
    split_http,
)

from gotor.cells.chan import DestroyReason
from gotor.cells.linkspec import LinkSpecEd25519Id, LinkSpecIPv4, LinkSpecRsaId
from gotor.cells.relaymsg import (
    Begin,
    BeginFlags,
    Connected,
    Data,
    End,
    EndReason,
    Extend2,
    Resolve,
    Resolved,
    ResolvedType,
    Truncate,
    Truncated,
)
from gotor.crypto.linkcerts import verify_responder_certs
from gotor.errors import ConnectionReset, Timeout
from gotor.netdoc.authcert import parse_authcerts
from gotor.netdoc.consensus import parse_consensus
from gotor.runtime.sync import timeout
from simnet.content import content
from simnet.net import Host, Network
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.topology import DEFAULT_EXIT_POLICY, Topology, build_topology
from simnet.world import World


def network(seed: int = 1, **kw: object) -> tuple[World, Topology, Host]:
    world = World(seed)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=kw.pop("n_relays", 8),  # type: ignore[arg-type]
                          n_exits=kw.pop("n_exits", 3), **kw)  # type: ignore[arg-type]
    return world, topo, net.add_host("client")


def pick(topo: Topology, *, ntor_v3: bool | None = None, exit_: bool = False,
         skip: tuple[object, ...] = ()) -> object:
    for relay in topo.relays:
        if relay in skip or relay.config.exit_policy.is_exit() != exit_:
            continue
        if ntor_v3 is None or relay.config.ntor_v3 == ntor_v3:
            return relay
    raise LookupError("no such relay in this topology")


def events(world: World, name: str) -> list[str]:
    return [line for line in world.trace.lines if f'"ev":"{name}"' in line]


def test_link_handshake_certs_and_netinfo_clock() -> None:
    world, topo, client = network()
    relay = topo.relays[4]
    relay.host.set_clock_offset(-120.0)

    async def main() -> ScriptLink:
        return await ScriptLink.open(client.runtime, relay)

    link = run_test(world, client, main())
    assert link.identity is not None
    assert link.identity.rsa_identity == relay.keys.rsa_id
    assert link.identity.ed25519_identity == relay.keys.ed_id
    assert link.codec.link_version == 5
    # NETINFO carries the relay host's (skewed) wall clock and the address it sees for us.
    assert link.netinfo is not None
    assert abs(link.netinfo.timestamp - (world.wallclock() - 120)) < 2
    assert link.netinfo.other_ip == IPv4Address(client.ipv4)
    assert [str(ip) for ip in link.netinfo.my_ips] == [relay.host.ipv4]
    # The CERTS cell is bound to this TLS certificate: checked against another one, it fails.
    assert link.certs is not None
    with pytest.raises(Exception, match="TLS certificate"):
        verify_responder_certs(link.certs.certs, topo.relays[0].keys.tls_cert_der,
                               world.wallclock())


def test_link_version_3_and_no_common_version() -> None:
    world, topo, client = network()

    async def main() -> tuple[int | None, str]:
        link = await ScriptLink.open(client.runtime, topo.relays[1], versions=(3,))
        stream = await client.runtime.connect(topo.relays[1].host.ipv4 or "", 9001, tls=True)
        stream.write(b"\x00\x00\x07\x00\x02\x00\x02")   # VERSIONS offering only version 2
        try:
            closed = await stream.read()
        except ConnectionReset:
            return link.codec.link_version, "reset"
        return link.codec.link_version, "closed" if closed == b"" else "open"

    version, state = run_test(world, client, main())
    assert version == 3
    assert state == "reset"   # a failed handshake aborts the connection


@pytest.mark.parametrize("kind", ["ntor", "ntor-v3", "fast"])
def test_create_each_handshake_and_begin_dir_on_the_first_hop(kind: str) -> None:
    world, topo, client = network()
    relay = pick(topo, ntor_v3=True)

    async def main() -> tuple[bytes, End | None]:
        link = await ScriptLink.open(client.runtime, relay)  # type: ignore[arg-type]
        circ = await ScriptCircuit.create(link, relay, kind)  # type: ignore[arg-type]
        return await fetch(circ, 7, "", 0, http_get("/tor/status-vote/current/consensus-microdesc"),
                           begin_dir=True)

    raw, end = run_test(world, client, main())
    assert end is not None and end.reason == EndReason.DONE
    status, headers, body = split_http(raw)
    assert status == "HTTP/1.0 200 OK" and headers["content-encoding"] == "identity"
    assert body == topo.authorities.current.consensus  # type: ignore[union-attr]
    assert any(f'"kind":"{kind}"' in line for line in events(world, "circ-created"))


def test_ntor_v3_refused_by_a_relay_without_relay_4() -> None:
    world, topo, client = network()
    legacy = pick(topo, ntor_v3=False)
    assert "Relay=1-3" in str(legacy.protocols)  # type: ignore[attr-defined]

    async def main() -> int | None:
        link = await ScriptLink.open(client.runtime, legacy)  # type: ignore[arg-type]
        try:
            await ScriptCircuit.create(link, legacy, "ntor-v3")  # type: ignore[arg-type]
        except Destroyed as exc:
            return exc.reason
        return -1

    assert run_test(world, client, main()) == DestroyReason.PROTOCOL


def three_hops(topo: Topology) -> tuple[object, object, object]:
    guard = pick(topo, ntor_v3=True)
    middle = pick(topo, ntor_v3=False, skip=(guard,))
    exit_ = next(r for r in topo.exits if r.config.exit_policy.allows("93.184.216.34", 80))
    return guard, middle, exit_


async def build3(client: Host, topo: Topology) -> ScriptCircuit:
    guard, middle, exit_ = three_hops(topo)
    link = await ScriptLink.open(client.runtime, guard)  # type: ignore[arg-type]
    circ = await ScriptCircuit.create(link, guard, "ntor-v3")  # type: ignore[arg-type]
    await circ.extend(middle, "ntor")  # type: ignore[arg-type]
    await circ.extend(exit_, "ntor-v3" if exit_.config.ntor_v3 else "ntor")  # type: ignore[attr-defined]
    return circ


def test_three_hop_download_and_upload_are_byte_exact() -> None:
    world, topo, client = network()

    async def main() -> tuple[bytes, bytes]:
        circ = await build3(client, topo)
        got, end = await fetch(circ, 1, "web0.simnet.test", 80, http_get("/bytes/700000/s1"))
        assert end is not None and end.reason == EndReason.DONE
        body = content("up", 150_000)
        post = (b"POST /upload?seed=up HTTP/1.0\r\nContent-Length: 150000\r\n\r\n" + body)
        receipt, end2 = await fetch(circ, 2, "93.184.216.34", 80, post)
        assert end2 is not None and end2.reason == EndReason.DONE
        return got, receipt

    got, receipt = run_test(world, client, main())
    status, headers, body = split_http(got)
    assert status == "HTTP/1.0 200 OK" and headers["content-length"] == "700000"
    assert body == content("s1", 700_000)
    status, _, text = split_http(receipt)
    assert status == "HTTP/1.0 200 OK"
    assert text.split()[:2] == [b"ok", b"150000"]
    assert len(events(world, "circ-extended")) == 2
    assert world.errors == []


def test_connected_carries_address_and_ttl_and_resolve_answers() -> None:
    world, topo, client = network()

    async def main() -> list[object]:
        circ = await build3(client, topo)
        circ.send(Begin("WEB0.simnet.test", 80), 3)
        _hop, connected, _ = await circ.recv()
        out: list[object] = [connected]
        for sid, name in ((4, "web0.simnet.test"), (5, "nowhere.simnet.test"),
                          (6, "34.216.184.93.in-addr.arpa"), (7, "10.9.8.7")):
            circ.send(Resolve(name), sid)
            out.append(await circ.recv())
        return out

    connected, *answers = run_test(world, client, main())
    assert connected == Connected(IPv4Address("93.184.216.34"), 300)
    by_sid = {sid: msg for _hop, msg, sid in answers}
    assert all(isinstance(m, Resolved) for m in by_sid.values())
    assert by_sid[4].answers[0].ip == IPv4Address("93.184.216.34")  # type: ignore[attr-defined]
    assert by_sid[5].answers[0].rtype == ResolvedType.ERROR_NONTRANSIENT  # type: ignore[attr-defined]
    assert by_sid[6].answers[0].hostname == "web0.simnet.test"  # type: ignore[attr-defined]
    assert by_sid[7].answers[0].ip == IPv4Address("10.9.8.7")  # type: ignore[attr-defined]


def test_exit_end_reasons() -> None:
    world, topo, client = network()
    _guard, _middle, exit_ = three_hops(topo)
    exit_.config = replace(exit_.config,  # type: ignore[attr-defined]
                           exit_policy=ExitPolicy.parse(DEFAULT_EXIT_POLICY))

    async def attempt(circ: ScriptCircuit, sid: int, begin: Begin) -> End:
        circ.send(begin, sid)
        _hop, msg, got_sid = await circ.recv()
        assert isinstance(msg, End) and got_sid == sid, msg
        return msg

    async def main() -> dict[str, End]:
        circ = await build3(client, topo)
        ends = {
            "refused": await attempt(circ, 1, Begin("web0.simnet.test", 8080)),
            "resolve": await attempt(circ, 2, Begin("nowhere.simnet.test", 80)),
            "timeout": await attempt(circ, 3, Begin("blackhole.simnet.test", 80)),
            "ipv6only": await attempt(circ, 4, Begin("web0.simnet.test", 80,
                                                     BeginFlags.IPV4_NOT_OK)),
            "smtp": await attempt(circ, 5, Begin("web0.simnet.test", 25)),
        }
        middle_only = await ScriptLink.open(client.runtime, topo.relays[-1])
        one_hop = await ScriptCircuit.create(middle_only, topo.relays[-1], "ntor")
        await one_hop.extend(pick(topo, exit_=False, skip=(topo.relays[-1],)), "ntor")
        ends["non-exit"] = await attempt(one_hop, 1, Begin("web0.simnet.test", 80))
        fast_circ = await ScriptCircuit.create(middle_only, topo.relays[-1], "fast")
        ends["first-hop"] = await attempt(fast_circ, 1, Begin("web0.simnet.test", 80))
        return ends

    ends = run_test(world, client, main())
    assert ends["refused"].reason == EndReason.CONNECTREFUSED
    assert ends["resolve"].reason == EndReason.RESOLVEFAILED
    assert ends["timeout"].reason == EndReason.TIMEOUT
    assert ends["ipv6only"].reason == EndReason.EXITPOLICY
    assert ends["non-exit"].reason == EndReason.EXITPOLICY
    assert ends["first-hop"].reason == EndReason.TORPROTOCOL
    # C tor's default policy rejects port 25 everywhere: END before any resolution.
    assert ends["smtp"].reason == EndReason.EXITPOLICY and ends["smtp"].address is None


def test_exitpolicy_end_names_the_address_when_rejected_after_resolution() -> None:
    world, topo, client = network()
    exit_ = topo.relays[0]
    exit_.config = replace(exit_.config,
                           exit_policy=ExitPolicy.parse("reject 93.184.216.0/24:*, accept *:*"))

    async def main() -> End:
        link = await ScriptLink.open(client.runtime, topo.relays[1])
        circ = await ScriptCircuit.create(link, topo.relays[1])
        await circ.extend(exit_)
        circ.send(Begin("web0.simnet.test", 80), 9)
        _hop, msg, _sid = await circ.recv()
        assert isinstance(msg, End)
        return msg

    end = run_test(world, client, main())
    assert end.reason == EndReason.EXITPOLICY
    assert end.address == IPv4Address("93.184.216.34") and end.ttl == 300


def test_extend2_outside_relay_early_is_dropped_and_early_cells_are_limited() -> None:
    world, topo, client = network()
    guard, middle, _exit = three_hops(topo)

    async def main() -> tuple[bool, int | None]:
        link = await ScriptLink.open(client.runtime, guard)  # type: ignore[arg-type]
        circ = await ScriptCircuit.create(link, guard)  # type: ignore[arg-type]
        try:
            await timeout(client.runtime, 5.0, circ.extend(middle, early=False))  # type: ignore[arg-type]
            dropped = False
        except Timeout:
            dropped = True
        circ2 = await ScriptCircuit.create(link, guard)  # type: ignore[arg-type]
        for _ in range(9):     # the 9th RELAY_EARLY closes the circuit (tor-spec §5.6)
            circ2.send(Data(b"x"), 1, early=True)
        try:
            await circ2.recv()
        except Destroyed as exc:
            return dropped, exc.reason
        return dropped, -1

    dropped, reason = run_test(world, client, main())
    assert dropped
    assert any('"why":"not in RELAY_EARLY"' in line for line in events(world, "extend-dropped"))
    assert reason == DestroyReason.PROTOCOL


def test_destroy_propagates_forward_and_truncate_answers_truncated() -> None:
    world, topo, client = network()

    async def main() -> tuple[object, object]:
        circ = await build3(client, topo)
        circ.send(Truncate(), 0, hop=1)       # the middle drops the exit
        _hop, truncated, _ = await circ.recv()
        circ.destroy()
        await client.runtime.sleep(2.0)
        return truncated, _hop

    truncated, hop = run_test(world, client, main())
    assert truncated == Truncated(DestroyReason.REQUESTED) and hop == 1
    closed = events(world, "circ-closed")
    # exit: DESTROY from the middle after TRUNCATE; guard and middle: after our DESTROY.
    assert len(closed) == 3
    assert sum('"reason":11' in line for line in closed) == 3


def test_crash_of_the_middle_relay_reaches_the_client_as_destroy() -> None:
    world, topo, client = network()
    _guard, middle, _exit = three_hops(topo)

    async def main() -> int | None:
        circ = await build3(client, topo)
        middle.host.crash()  # type: ignore[attr-defined]
        try:
            while True:
                await circ.recv()
        except Destroyed as exc:
            return exc.reason

    assert run_test(world, client, main()) == DestroyReason.CHANNEL_CLOSED
    exit_closed = [line for line in events(world, "circ-closed") if '"reason":8' in line]
    assert len(exit_closed) == 2   # guard and exit both saw their channel to the middle die


def test_a_restarted_relay_serves_again() -> None:
    world, topo, client = network()
    relay = topo.relays[2]

    async def main() -> bytes:
        relay.host.crash()
        await client.runtime.sleep(1.0)
        relay.host.restart()
        await client.runtime.sleep(0.5)
        link = await ScriptLink.open(client.runtime, relay)
        circ = await ScriptCircuit.create(link, relay, "fast")
        raw, _end = await fetch(circ, 1, "", 0, http_get("/tor/keys/all"), begin_dir=True)
        return raw

    raw = run_test(world, client, main())
    certs = parse_authcerts(split_http(raw)[2])
    assert len(certs) == 3


def test_consensus_over_begin_dir_verifies() -> None:
    world, topo, client = network()

    async def main() -> tuple[bytes, bytes]:
        circ = await build3(client, topo)
        cons, _ = await fetch(circ, 1, "", 0,
                              http_get("/tor/status-vote/current/consensus-microdesc.z"),
                              begin_dir=True)
        keys, _ = await fetch(circ, 2, "", 0, http_get("/tor/keys/all"), begin_dir=True)
        return cons, keys

    cons_raw, keys_raw = run_test(world, client, main())
    import zlib

    _status, headers, body = split_http(cons_raw)
    assert headers["content-encoding"] == "deflate"
    now = int(world.wallclock())
    certs = [c.verify(now=now) for c in parse_authcerts(split_http(keys_raw)[2])]
    trusted = [a.v3_ident for a in topo.client_config.authorities]
    consensus = parse_consensus(zlib.decompress(body)).verify(certs, trusted, now=now)
    assert len(consensus.routers) == 3 + 8


def _traced_run(shuffle: bool) -> tuple[list[str], bytes]:
    world = World(1, shuffle_ties=shuffle)
    world.trace.keep = True
    net = Network(world)
    topo = build_topology(world, net, n_relays=8, n_exits=3)
    client = net.add_host("client")

    async def main() -> bytes:
        circ = await build3(client, topo)
        got, _ = await fetch(circ, 1, "web0.simnet.test", 80, http_get("/bytes/200000/d"))
        circ.send(Resolve("web0.simnet.test"), 2)
        await circ.recv()
        return got

    got = run_test(world, client, main())
    # A snapshot: when the finished world is garbage-collected, its abandoned coroutines
    # close and may still record (the fabric's listeners abort their streams then).
    return list(world.trace.lines), got


@pytest.mark.parametrize("shuffle", [False, True])
def test_same_seed_same_trace(shuffle: bool) -> None:
    lines1, got1 = _traced_run(shuffle)
    lines2, got2 = _traced_run(shuffle)
    assert lines1 == lines2 and len(lines1) > 100
    assert split_http(got1)[2] == split_http(got2)[2] == content("d", 200_000)


def test_extend_failures_and_channel_reuse() -> None:
    world, topo, client = network()
    guard, middle, exit_ = three_hops(topo)

    async def extend_raw(link: ScriptLink, specs: tuple[object, ...]) -> int | None:
        circ = await ScriptCircuit.create(link, guard)  # type: ignore[arg-type]
        htype, onion, _finish = _onionskin(middle, "ntor", bytes(range(32)))  # type: ignore[arg-type]
        circ.send(Extend2(specs, htype, onion), early=True)  # type: ignore[arg-type]
        try:
            await circ.recv()
        except Destroyed as exc:
            return exc.reason
        return -1

    async def main() -> dict[str, int | None]:
        link = await ScriptLink.open(client.runtime, guard)  # type: ignore[arg-type]
        for _ in range(2):       # two circuits through the same guard -> middle channel
            circ = await ScriptCircuit.create(link, guard)  # type: ignore[arg-type]
            await circ.extend(middle)  # type: ignore[arg-type]
        m, g = middle.keys, guard.keys  # type: ignore[attr-defined]
        addr = LinkSpecIPv4(IPv4Address(middle.host.ipv4), 9001)  # type: ignore[attr-defined]
        return {
            "identity": await extend_raw(link, (addr, LinkSpecRsaId(exit_.keys.rsa_id))),  # type: ignore[attr-defined]
            # (an open channel to the middle would be reused whatever the address: its
            # address is canonical, tor-spec §5.3.1; so ask for a relay we have none to)
            "unreachable": await extend_raw(link, (LinkSpecIPv4(IPv4Address("192.0.2.7"), 9001),
                                                   LinkSpecRsaId(exit_.keys.rsa_id))),  # type: ignore[attr-defined]
            "self": await extend_raw(link, (addr, LinkSpecRsaId(g.rsa_id))),
            "no-rsa": await extend_raw(link, (addr, LinkSpecEd25519Id(m.ed_id))),
            "two-rsa": await extend_raw(link, (addr, LinkSpecRsaId(m.rsa_id),
                                               LinkSpecRsaId(m.rsa_id))),
            # The right relay, whose certificates fail the guard's check ("RSA identity
            # certificate has expired" at the guard's skewed clock): a failed link, not
            # another identity.
            "expired": await expired(link),
        }

    async def expired(link: ScriptLink) -> int | None:
        guard.host.set_clock_offset(20 * 365 * 86400.0)  # type: ignore[attr-defined]
        at_exit = LinkSpecIPv4(IPv4Address(exit_.host.ipv4), 9001)  # type: ignore[attr-defined]
        return await extend_raw(link, (at_exit, LinkSpecRsaId(exit_.keys.rsa_id)))  # type: ignore[attr-defined]

    reasons = run_test(world, client, main())
    assert reasons == {"identity": DestroyReason.OR_IDENTITY,
                       "unreachable": DestroyReason.CONNECTFAILED,
                       "self": DestroyReason.PROTOCOL, "no-rsa": DestroyReason.PROTOCOL,
                       "two-rsa": DestroyReason.PROTOCOL,
                       "expired": DestroyReason.CONNECTFAILED}
    assert any("RSA identity certificate has expired" in line
               for line in events(world, "circ-closed"))
    guard_out = [line for line in events(world, "chan-open")
                 if '"direction":"out"' in line and f'"node":"{guard.nickname}"' in line]  # type: ignore[attr-defined]
    assert len(guard_out) == 1       # the two circuits shared one channel to the middle
