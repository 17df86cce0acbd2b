"""Emulated authorities and directory caches: the documents parse and verify with gotor.netdoc,
flags and weights follow the documented rules, publication follows the schedule and the
authorities' health, caches answer every URL, and the topology is deterministic."""

from __future__ import annotations

import base64
import gzip
import time
import zlib

import pytest
from nodes_client import run_test, split_http

from gotor.netdir import NetDir
from gotor.netdoc.authcert import AuthCert, parse_authcerts
from gotor.netdoc.consensus import Consensus, QuorumError, parse_consensus
from gotor.netdoc.microdesc import parse_microdescs
from simnet.net import Network
from simnet.nodes.bwweights import bandwidth_weights, totals
from simnet.nodes.dircache import DirCache, DirDocuments
from simnet.nodes.http import HttpRequest
from simnet.topology import Topology, build_topology
from simnet.world import World

CONS = "/tor/status-vote/current/consensus-microdesc"


def network(seed: int = 1, **kw: object) -> tuple[World, Network, Topology]:
    world = World(seed)
    world.trace.keep = True
    net = Network(world)
    kw.setdefault("n_relays", 12)
    topo = build_topology(world, net, **kw)  # type: ignore[arg-type]
    world.run(until=0.001)       # let the listeners start (no coroutine is left unstarted)
    return world, net, topo


def verified(topo: Topology, now: int) -> tuple[Consensus, list[AuthCert]]:
    docs = topo.authorities.current
    assert docs is not None
    certs = [c.verify(now=now) for c in parse_authcerts(b"".join(c.text for c in docs.authcerts))]
    trusted = [a.v3_ident for a in topo.client_config.authorities]
    return parse_consensus(docs.consensus).verify(certs, trusted, now=now), certs


def test_documents_parse_and_verify_and_microdescs_match() -> None:
    world, _net, topo = network()
    now = int(world.wallclock())
    consensus, certs = verified(topo, now)
    docs = topo.authorities.current
    assert docs is not None
    assert [c.fingerprint for c in certs] == sorted(a.v3_ident for a in
                                                   topo.client_config.authorities)
    assert consensus.valid_after == now and consensus.fresh_until == now + 3600
    assert consensus.valid_until == now + 3 * 3600
    assert len(consensus.signatures) == 3 and consensus.consensus_method == 35
    assert dict(consensus.params) == {"sendme_accept_min_version": 1,
                                      "sendme_emit_min_version": 1}
    assert {r.identity for r in consensus.routers} == {n.keys.rsa_id for n in topo.all_relays}
    # Every microdescriptor's digest is the one its router's m line names.
    mds = parse_microdescs(b"".join(docs.microdescs.values()))
    netdir = NetDir(consensus, mds)
    assert netdir.missing_microdescs == () and len(netdir.relays) == len(consensus.routers)
    assert netdir.has_enough_paths() and netdir.has_exit_paths()
    for node in topo.all_relays:
        relay = netdir.by_rsa_id(node.keys.rsa_id)
        assert relay is not None and relay.ed_id == node.keys.ed_id
        assert relay.ntor_key == node.keys.ntor_public
        assert relay.supports_ntor_v3 == node.config.ntor_v3
        assert relay.ipv4 == (node.host.ipv4, node.config.or_port)
    # A consensus that only one of three trusted authorities signed fails the quorum.
    with pytest.raises(QuorumError):
        parse_consensus(docs.consensus).verify(certs[:1], [c.fingerprint for c in certs] +
                                               [bytes(20), bytes([1]) * 20], now=now)


def test_flags_follow_the_documented_rules() -> None:
    world, _net, topo = network(n_relays=30)
    consensus, _ = verified(topo, int(world.wallclock()))
    by_id = {r.identity: r for r in consensus.routers}
    exits = guards = 0
    for node in topo.all_relays:
        flags = by_id[node.keys.rsa_id].flags
        assert {"Running", "Valid"} <= flags
        assert ("Exit" in flags) == node.config.exit_policy.is_exit()
        assert ("Authority" in flags) == node.is_authority
        assert ("V2Dir" in flags) == (node.dir_cache is not None)
        if "Guard" in flags:
            assert {"Fast", "Stable", "V2Dir"} <= flags and node.config.uptime >= 8 * 86400
        if "HSDir" in flags:
            assert {"Fast", "Stable", "V2Dir"} <= flags and node.config.uptime >= 96 * 3600
        exits += "Exit" in flags
        guards += "Guard" in flags
    assert exits == 7 and guards > 5
    # Some relays advertise ntor-v3 and some do not.
    assert {r.supports("Relay", 4) for r in consensus.routers} == {True, False}


def test_bandwidth_weights_are_computed_from_the_listed_relays() -> None:
    world, _net, topo = network(n_relays=30)
    consensus, _ = verified(topo, int(world.wallclock()))
    rows = [(r.bandwidth.bandwidth if r.bandwidth else 0, "Guard" in r.flags, "Exit" in r.flags)
            for r in consensus.routers]
    expected = bandwidth_weights(*totals(rows))
    assert expected is not None
    assert dict(consensus.bandwidth_weights or {}) == expected
    scale = 10000
    w = expected
    assert w["Wgg"] + w["Wmg"] == scale and w["Wee"] + w["Wme"] == scale
    assert abs(w["Wed"] + w["Wmd"] + w["Wgd"] - scale) <= 10


def test_microdescs_carry_families_and_policies() -> None:
    _world, _net, topo = network(n_relays=30)
    docs = topo.authorities.current
    assert docs is not None
    mds = {md.ed25519_id: md for md in parse_microdescs(b"".join(docs.microdescs.values()))}
    families = 0
    for node in topo.relays:
        md = mds[node.keys.ed_id]
        assert md.onion_key is None and md.ntor_onion_key == node.keys.ntor_public
        assert md.ipv4_policy == node.config.exit_policy.summary()
        assert md.family == tuple("$" + fp.hex().upper() for fp in node.config.family)
        for member in node.config.family:     # declared both ways
            other = next(n for n in topo.relays if n.keys.rsa_id == member)
            assert node.keys.rsa_id in other.config.family
            families += 1
    assert families >= 2


def test_publication_schedule_and_authority_health() -> None:
    world, net, topo = network(interval=600)
    group = topo.authorities
    first = group.current
    relay = topo.relays[3]
    world.run(until=100)
    relay.host.crash()
    net.host("auth2").crash()
    world.run(until=700)                     # the 600 s boundary: 2 of 3 authorities sign
    second = group.current
    assert second is not None and first is not None
    assert second.valid_after == first.valid_after + 600
    assert len(second.signers) == 2
    consensus = parse_consensus(second.consensus).dangerously_assume_verified()
    assert relay.keys.rsa_id not in {r.identity for r in consensus.routers}
    # Every cache got the new documents (a crashed relay's cache too: it is on disk).
    assert all(n.dir_cache.docs is second for n in topo.relays if n.dir_cache is not None)
    net.host("auth1").crash()
    world.run(until=1300)                    # no majority: nothing new is published
    assert group.current is second
    assert any('"ev":"consensus-failed"' in line for line in world.trace.lines)
    relay.host.restart()
    net.host("auth1").restart()
    world.run(until=1900)
    third = group.current
    assert third is not second and third is not None
    listed = parse_consensus(third.consensus).dangerously_assume_verified().routers
    entry = next(r for r in listed if r.identity == relay.keys.rsa_id)
    assert "Stable" not in entry.flags        # it just came back: its uptime restarted


def get(cache: DirCache, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    req = HttpRequest("GET", path, "HTTP/1.0", {k.replace("_", "-"): v for k, v in
                                               headers.items()})
    return split_http(cache.respond(req, now=1767225600.0, client="10.0.0.1"))


def test_dircache_urls() -> None:
    _world, _net, topo = network()
    docs = topo.authorities.current
    assert docs is not None
    cache = topo.relays[0].dir_cache
    assert cache is not None
    status, headers, body = get(cache, CONS)
    assert status == "HTTP/1.0 200 OK" and body == docs.consensus
    assert headers["x-your-address-is"] == "10.0.0.1" and "expires" in headers
    assert zlib.decompress(get(cache, CONS + ".z")[2]) == docs.consensus
    _, h, body = get(cache, CONS, accept_encoding="x-zstd, gzip")
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == docs.consensus
    assert get(cache, CONS + ".z", accept_encoding="identity")[2] == docs.consensus
    fps = sorted(a.v3_ident.hex() for a in topo.client_config.authorities)
    assert get(cache, f"{CONS}/{fps[0][:6]}+{fps[1][:6].upper()}")[0].endswith("200 OK")
    assert get(cache, f"{CONS}/{fps[0][:6]}+{'AB' * 3}")[0].endswith("404 Not found")
    assert get(cache, f"{CONS}/{fps[0][:5]}")[0].endswith("400 Bad request")
    assert get(cache, CONS, if_modified_since="Thu, 01 Jan 2026 00:00:00 GMT")[0] \
        .endswith("304 Not modified")
    certs = docs.authcerts
    assert get(cache, "/tor/keys/all")[2] == b"".join(c.text for c in certs)
    one = certs[1]
    assert get(cache, f"/tor/keys/fp/{one.v3_ident.hex()}")[2] == one.text
    assert get(cache, f"/tor/keys/sk/{one.signing_key_digest.hex()}")[2] == one.text
    pair = f"{one.v3_ident.hex()}-{one.signing_key_digest.hex()}"
    assert get(cache, f"/tor/keys/fp-sk/{pair}.z")[2] == zlib.compress(one.text)
    assert get(cache, f"/tor/keys/fp/{'00' * 20}")[0].endswith("404 Not found")
    assert get(cache, "/tor/keys/authority")[0].endswith("404 Not found")   # not an authority
    auth_cache = topo.authorities.authorities[0].relay.dir_cache
    assert auth_cache is not None
    assert get(auth_cache, "/tor/keys/authority")[2] == \
        topo.authorities.authorities[0].certificate.text
    digests = list(docs.microdescs)
    b64 = [base64.b64encode(d).decode().rstrip("=") for d in digests]
    unknown = base64.b64encode(bytes(32)).decode().rstrip("=")
    assert get(cache, f"/tor/micro/d/{b64[0]}-{unknown}-{b64[2]}")[2] == \
        docs.microdescs[digests[0]] + docs.microdescs[digests[2]]
    assert get(cache, f"/tor/micro/d/{unknown}")[0].endswith("404 Not found")
    for bad in ("/tor/micro/d/abc", "/tor/micro/d/", "/tor/keys/fp/zz", "/tor/keys/fp-sk/00"):
        assert get(cache, bad)[0].endswith("400 Bad request"), bad
    assert get(cache, "/tor/status-vote/current/consensus")[0].endswith("404 Not found")
    post = HttpRequest("POST", "/tor/", "HTTP/1.0", {})
    assert split_http(cache.respond(post, now=0.0))[0].endswith("400 Bad request")
    assert get(DirCache(), CONS)[0].endswith("404 Not found")


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_if_modified_since_without_a_zone_is_utc(zone: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 5322's "-0000" (and a date with no zone) means UTC whatever the machine's zone:
    # the answer must not depend on where the simulation runs.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        valid_after = 1767225600      # 2026-01-01 00:00:00 UTC
        cache = DirCache()
        cache.publish(DirDocuments(b"consensus", valid_after, valid_after + 3600,
                                   valid_after + 10800, (), ()))
        statuses = [get(cache, CONS, if_modified_since=when)[0][9:12] for when in (
            "Thu, 01 Jan 2026 00:00:00 -0000", "Wed, 31 Dec 2025 23:59:59 -0000",
            "01 Jan 2026 00:00:00", "Thu, 01 Jan 2026 09:00:00 +0900")]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert statuses == ["304", "200", "304", "304"]


def test_dirport_serves_plain_http() -> None:
    world, net, topo = network()
    client = net.add_host("client")
    auth = topo.client_config.authorities[0]

    async def get(request: bytes) -> bytes:
        stream = await client.runtime.connect(auth.address, auth.dir_port)
        stream.write(request)
        parts = []
        while data := await stream.read():
            parts.append(data)
        return b"".join(parts)

    async def main() -> tuple[bytes, bytes]:
        return (await get(b"GET /tor/keys/all.z HTTP/1.0\r\n\r\n"),
                await get(b"GARBAGE\r\n\r\n"))

    good, bad = run_test(world, client, main())
    assert split_http(bad)[0] == "HTTP/1.0 400 Bad request"
    status, headers, body = split_http(good)
    assert status == "HTTP/1.0 200 OK" and headers["content-encoding"] == "deflate"
    assert len(parse_authcerts(zlib.decompress(body))) == 3


def test_topology_is_deterministic_and_stable_under_growth() -> None:
    _w1, _n1, small = network(seed=1, n_relays=6, n_exits=2)
    _w2, _n2, big = network(seed=1, n_relays=12, n_exits=2)
    _w3, _n3, again = network(seed=1, n_relays=6, n_exits=2)
    assert small.authorities.current.consensus == again.authorities.current.consensus  # type: ignore[union-attr]
    for a, b in zip(small.relays, big.relays, strict=False):
        assert (a.host.ipv4, a.host.latency, a.config) == (b.host.ipv4, b.host.latency, b.config) \
            or a.config.family != b.config.family
        assert a.keys.rsa_id == b.keys.rsa_id
    lines = small.client_config.torrc_lines()
    first = small.client_config.authorities[0]
    assert lines[0] == (f"DirAuthority auth0 orport=5000 no-v2 v3ident="
                        f"{first.v3_ident.hex().upper()} 128.1.0.1:7000 "
                        f"{first.rsa_identity.hex().upper()}")
    # Every relay has its own /16 unless it drew "share"; no two relays share an address.
    addresses = [r.host.ipv4 for r in big.all_relays]
    assert len(set(addresses)) == len(addresses)
