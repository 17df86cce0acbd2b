"""The relay side of the client stack's tests, on gotor's pure layer only.

Deliberately small and independent of gotor.link / gotor.circuit / gotor.stream: keys of
a fake relay, the responder's handshake cells, and the server side of circuits
(CREATE2/CREATE_FAST/EXTEND2 answers, per-hop relay crypto) so that unit tests can
script cells and the simnet responder (tests/sim/stack_relay.py) can run on it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from gotor.cells.chan import ChanCell, ChanCmd, HandshakeType
from gotor.cells.chanmsg import (
    AuthChallenge,
    Certs,
    Create2,
    Created2,
    CreatedFast,
    CreateFast,
    Netinfo,
    Versions,
)
from gotor.cells.codec import ChannelCodec
from gotor.cells.linkspec import LinkSpecRsaId
from gotor.cells.relay import RelayCell, decode_relay_payload, encode_relay_payload
from gotor.cells.relaymsg import Extend2, Extended2, RelayMsg, decode_relay_msg, encode_relay_msg
from gotor.circuit.params import HopSpec
from gotor.crypto import fast, ntor, ntor_v3
from gotor.crypto.linkcerts import build_responder_certs
from gotor.crypto.primitives import ed25519_public, x25519_public
from gotor.crypto.relaycrypto import TOR1_KEY_MATERIAL_LEN, RelayHopCrypto
from gotor.crypto.rsa import RsaPrivateKey
from gotor.link.channel import ChanTarget
from simnet.tls import seeded_rsa_key
from simnet.world import World

#: 2026-01-01T00:00:00Z, simnet's virtual epoch: certificates are valid around it.
NOW = 1767225600.0


def seeded_bytes(label: str) -> Callable[[int], bytes]:
    """A deterministic byte source (SHA-256 in counter mode)."""
    counter = 0

    def take(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
            counter += 1
        return out[:n]

    return take


@dataclass
class FakeRelay:
    """Keys of one emulated relay."""

    name: str
    rsa: RsaPrivateKey
    ed_seed: bytes
    signing_seed: bytes
    ntor_secret: bytes
    tls_der: bytes = b""

    @property
    def rsa_id(self) -> bytes:
        return self.rsa.public.fingerprint()

    @property
    def ed_id(self) -> bytes:
        return ed25519_public(self.ed_seed)

    @property
    def ntor_key(self) -> bytes:
        return x25519_public(self.ntor_secret)

    def hop(self, ip: str = "10.0.0.1", port: int = 9001, *, ntor_v3: bool = False) -> HopSpec:
        return HopSpec(self.rsa_id, self.ed_id, self.ntor_key, (ip, port), ntor_v3=ntor_v3)

    def target(self, ip: str = "10.0.0.1", port: int = 9001, *, ed: bool = True) -> ChanTarget:
        return ChanTarget(ip, port, self.rsa_id, self.ed_id if ed else None)

    def certs(self, now: float = NOW, tls_der: bytes | None = None) -> list[tuple[int, bytes]]:
        return build_responder_certs(self.rsa, self.ed_seed, self.signing_seed,
                                     self.tls_der if tls_der is None else tls_der, now)


@functools.cache
def fake_relay(name: str, tls_der: bytes = b"tls certificate of a fake relay") -> FakeRelay:
    """A relay's keys, a function of ``name`` (RSA keys come from simnet's cache)."""
    stream = seeded_bytes("fake relay " + name)
    rsa = seeded_rsa_key(World(4242), "stack-test:" + name, 1024)
    return FakeRelay(name, rsa, stream(32), stream(32), stream(32), tls_der)


# --- the responder's link handshake ------------------------------------------------------
def responder_flight(relay: FakeRelay, *, link_version: int = 5, now: float = NOW,
                     certs: list[tuple[int, bytes]] | None = None,
                     versions: tuple[int, ...] = (3, 4, 5),
                     netinfo_time: int | None = None) -> bytes:
    """VERSIONS, CERTS, AUTH_CHALLENGE and NETINFO as a relay answers a client."""
    pre = ChannelCodec()
    out = pre.encode(Versions(versions).to_cell())
    codec = ChannelCodec(link_version)
    out += codec.encode(Certs(tuple(certs if certs is not None else relay.certs(now))).to_cell())
    out += codec.encode(AuthChallenge(bytes(32), (1, 3)).to_cell())
    ts = int(now) if netinfo_time is None else netinfo_time
    out += codec.encode(Netinfo.from_ips(ts, None).to_cell())
    return out


def cells(*msgs: tuple[int, int, bytes], link_version: int = 5) -> bytes:
    codec = ChannelCodec(link_version)
    return b"".join(codec.encode(ChanCell(c, cmd, body)) for c, cmd, body in msgs)


# --- the server side of circuits ---------------------------------------------------------
def server_handshake(relay: FakeRelay, htype: int, onionskin: bytes,
                     random_bytes: Callable[[int], bytes]) -> tuple[bytes, bytes]:
    """Answer a CREATE2/EXTEND2 handshake: (reply, key material)."""
    if htype == HandshakeType.NTOR:
        return ntor.server_handshake(relay.rsa_id, relay.ntor_secret, onionskin,
                                     random_bytes(32), TOR1_KEY_MATERIAL_LEN)
    state, _cm = ntor_v3.server_receive(relay.ed_id, relay.ntor_secret, onionskin)
    # as C tor: the server message is an N_EXTENSIONS-counted list, here empty
    return ntor_v3.server_reply(state, random_bytes(32), b"\x00", TOR1_KEY_MATERIAL_LEN)


@dataclass
class ScriptedPath:
    """The relays of one circuit seen from the network side, for scripting cells.

    ``answer_create`` plays the first hop; ``forward`` peels a client cell until a hop
    recognizes it; ``backward`` makes a cell that hop ``i`` originates; ``answer_extend``
    lets the last hop extend the circuit to ``relays[len(hops)]``.
    """

    relays: list[FakeRelay]
    circ_id: int = 0
    hops: list[RelayHopCrypto] = field(default_factory=list)
    random_bytes: Callable[[int], bytes] = field(default_factory=lambda: seeded_bytes("path"))

    def answer_create(self, cell: ChanCell) -> ChanCell:
        self.circ_id = cell.circ_id
        if cell.cmd == ChanCmd.CREATE_FAST:
            reply, keys = fast.server_handshake(CreateFast.decode(cell.body).x,
                                                self.random_bytes(20), TOR1_KEY_MATERIAL_LEN)
            self.hops.append(RelayHopCrypto(keys))
            return CreatedFast(reply[:20], reply[20:]).to_cell(cell.circ_id)
        create = Create2.decode(cell.body)
        reply, keys = server_handshake(self.relays[0], create.handshake_type, create.handshake,
                                       self.random_bytes)
        self.hops.append(RelayHopCrypto(keys))
        return Created2(reply).to_cell(cell.circ_id)

    def forward(self, cell: ChanCell) -> tuple[int, RelayCell, RelayMsg]:
        payload = cell.body
        for i, hop in enumerate(self.hops):
            payload, recognized = hop.decrypt_forward(payload)
            if recognized:
                rc = decode_relay_payload(payload)
                return i, rc, decode_relay_msg(rc.cmd, rc.data)
        raise AssertionError("no hop recognized the cell")

    def backward_payload(self, hop: int, payload: bytes) -> ChanCell:
        body = self.hops[hop].encrypt_backward_originate(payload)
        for i in range(hop - 1, -1, -1):
            body = self.hops[i].encrypt_backward_relay(body)
        return ChanCell(self.circ_id, ChanCmd.RELAY, body)

    def backward(self, hop: int, msg: RelayMsg, stream_id: int = 0) -> ChanCell:
        return self.backward_payload(hop, encode_relay_msg(msg, stream_id))

    def backward_raw(self, hop: int, cmd: int, stream_id: int, data: bytes) -> ChanCell:
        return self.backward_payload(hop, encode_relay_payload(cmd, stream_id, data))

    def answer_extend(self, cell: ChanCell) -> ChanCell:
        hop, _rc, msg = self.forward(cell)
        assert isinstance(msg, Extend2), msg
        return self.extended(hop, msg)

    def extended(self, hop: int, msg: Extend2) -> ChanCell:
        """The EXTENDED2 that hop ``hop`` sends after extending to the next relay."""
        nxt = self.relays[len(self.hops)]
        ids = [s for s in msg.link_specs if isinstance(s, LinkSpecRsaId)]
        assert ids and ids[0].rsa_id == nxt.rsa_id
        reply, keys = server_handshake(nxt, msg.handshake_type, msg.handshake,
                                       self.random_bytes)
        self.hops.append(RelayHopCrypto(keys))
        return self.backward(hop, Extended2(reply))
