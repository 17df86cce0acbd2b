"""The emulated web server over plain TCP: deterministic downloads, verified uploads, errors;
and a client's bootstrap path to an authority (CREATE_FAST + BEGIN_DIR)."""

from __future__ import annotations

import zlib

from nodes_client import ScriptCircuit, ScriptLink, fetch, http_get, run_test, split_http

from gotor.netdoc.authcert import parse_authcerts
from gotor.netdoc.consensus import parse_consensus
from simnet.content import content
from simnet.net import Network
from simnet.nodes.web import WebServer
from simnet.topology import build_topology
from simnet.world import World


def exchange(requests: list[bytes]) -> list[bytes]:
    world = World(1)
    net = Network(world)
    web = WebServer(net.add_host("web", ipv4="93.184.216.34"))
    web.start()
    client = net.add_host("client")

    async def one(request: bytes) -> bytes:
        stream = await client.runtime.connect("93.184.216.34", 80)
        stream.write(request)
        parts = []
        while data := await stream.read():
            parts.append(data)
        return b"".join(parts)

    async def main() -> list[bytes]:
        return [await one(r) for r in requests]

    return run_test(world, client, main())  # type: ignore[no-any-return]


def test_downloads_uploads_and_errors() -> None:
    up = content("u", 70_000)
    bad = bytearray(up)
    bad[65_000] ^= 0xFF
    replies = exchange([
        http_get("/bytes/100000?seed=q"), http_get("/bytes/5000/q"), http_get("/bytes/77"),
        b"POST /upload?seed=u HTTP/1.0\r\nContent-Length: 70000\r\n\r\n" + up,
        b"POST /upload?seed=u HTTP/1.0\r\nContent-Length: 70000\r\n\r\n" + bytes(bad),
        b"POST /upload HTTP/1.0\r\n\r\n", http_get("/"), http_get("/nothing"),
        http_get("/bytes/x1"), b"NOT HTTP\r\n\r\n",
        http_get("/bytes/1%C2%B9"),     # "1¹": str.isdigit() says yes, int() says no
    ])
    heads = [split_http(r) for r in replies]
    assert heads[0][2] == content("q", 100_000) and heads[0][1]["content-length"] == "100000"
    assert heads[1][2] == content("q", 5_000)         # a prefix of the same content
    assert heads[2][2] == content("77", 77)           # default seed: the size
    assert heads[3][0] == "HTTP/1.0 200 OK" and heads[3][2].startswith(b"ok 70000 ")
    assert heads[4][0].startswith("HTTP/1.0 422") and heads[4][2] == b"mismatch 65000\n"
    assert [h[0][9:12] for h in heads[5:]] == ["400", "200", "404", "400", "400", "400"]


def test_bootstrap_from_an_authority_with_create_fast_and_begin_dir() -> None:
    world = World(1)
    net = Network(world)
    topo = build_topology(world, net, n_relays=4, n_exits=1)
    client = net.add_host("client")
    entry = topo.client_config.authorities[1]
    auth = next(a.relay for a in topo.authorities.authorities if a.nickname == entry.nickname)
    fps = "+".join(sorted(a.v3_ident.hex().upper()[:6] for a in topo.client_config.authorities))

    async def main() -> tuple[bytes, bytes]:
        link = await ScriptLink.open(client.runtime, auth)
        assert link.identity is not None and link.identity.rsa_identity == entry.rsa_identity
        assert link.identity.ed25519_identity == entry.ed_identity
        circ = await ScriptCircuit.create(link, auth, "fast")
        cons, _ = await fetch(circ, 1, "", 0, http_get(
            f"/tor/status-vote/current/consensus-microdesc/{fps}.z"), begin_dir=True)
        keys, _ = await fetch(circ, 2, "", 0, http_get("/tor/keys/authority"), begin_dir=True)
        return cons, keys

    cons, keys = run_test(world, client, main())
    now = int(world.wallclock())
    own = [c.verify(now=now) for c in parse_authcerts(split_http(keys)[2])]
    assert [c.fingerprint for c in own] == [entry.v3_ident]
    all_certs = [c.verify(now=now) for c in
                 parse_authcerts(b"".join(c.text for c in topo.authorities.current.authcerts))]  # type: ignore[union-attr]
    consensus = parse_consensus(zlib.decompress(split_http(cons)[2])).verify(
        all_certs, [a.v3_ident for a in topo.client_config.authorities], now=now)
    assert len(consensus.routers) == 7
