"""The link handshake with every relay of the network, validating their real CERTS cells."""

from __future__ import annotations

import base64

import pytest
from interop_helpers import run

from gotor.errors import ChannelError
from gotor.link import Channel, ChanTarget
from gotor.runtime.aio import AsyncioRuntime
from gotor.tools import testnet


def _target(node: testnet.Node, *, rsa_of: testnet.Node | None = None) -> ChanTarget:
    claimed = rsa_of or node
    ed = str(claimed.ed25519)
    return ChanTarget("127.0.0.1", node.ports["or"], bytes.fromhex(str(claimed.fingerprint)),
                      base64.b64decode(ed + "=" * (-len(ed) % 4)))


def test_link_handshake_with_every_relay(network: testnet.Network) -> None:
    async def scenario() -> list[tuple[str, int, bytes, bytes, float | None]]:
        rt = AsyncioRuntime()
        out = []
        for node in network.relays:  # authorities, middles and exits
            target = _target(node)
            chan = await Channel.connect(rt, target, timeout_s=20)
            out.append((node.name, chan.link_version, chan.peer_rsa_id, chan.peer_ed_id,
                        chan.clock_skew))
            assert (chan.peer_rsa_id, chan.peer_ed_id) == (target.rsa_id, target.ed_id)
            chan.close("done")
            await chan.wait_closed()
        return out

    results = run(scenario())
    assert [name for name, *_ in results] == [n.name for n in network.relays]
    for name, version, _, _, skew in results:
        assert version == 5, name  # tor 0.4.9 and gotor both speak link protocol 5
        assert skew is None or abs(skew) < 5, (name, skew)  # same machine, same clock


@pytest.mark.parametrize("claim", ["rsa", "ed25519"])
def test_a_relay_that_is_not_who_we_expect_is_refused(network: testnet.Network,
                                                      claim: str) -> None:
    # The CERTS cell proves the relay's own identities; expecting another relay's
    # RSA (or Ed25519) identity at this address must fail the handshake.
    first, other = network.relays[0], network.relays[1]

    async def scenario() -> str:
        target = _target(first)
        wrong = _target(first, rsa_of=other)
        target = (ChanTarget(target.host, target.port, wrong.rsa_id, target.ed_id)
                  if claim == "rsa" else
                  ChanTarget(target.host, target.port, target.rsa_id, wrong.ed_id))
        with pytest.raises(ChannelError) as info:
            await Channel.connect(AsyncioRuntime(), target, timeout_s=20)
        return str(info.value)

    message = run(scenario())
    assert "identity" in message.lower() or "ed25519" in message.lower(), message
