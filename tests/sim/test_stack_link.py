"""Channels and the channel pool under simnet, against scripted relays (tor-spec §2-§5)."""

from __future__ import annotations

import pytest
from stack_relay import OR_PORT, Misbehave, cells
from stack_world import events, stack_world

from gotor.cells.chan import ChanCell, ChanCmd
from gotor.errors import ChannelError
from gotor.link.channel import Channel, ChanTarget
from gotor.link.pool import ChannelPool


class Sink:
    def __init__(self) -> None:
        self.cells: list[ChanCell] = []
        self.closed: list[str] = []

    def cell_received(self, cell: ChanCell) -> None:
        self.cells.append(cell)

    def channel_closed(self, reason: str) -> None:
        self.closed.append(reason)


def test_channel_handshake_learns_identity_link_version_and_skew() -> None:
    w = stack_world(n_relays=1)
    relay = w.relays[0]
    relay.host.set_clock_offset(30.0)

    async def main() -> Channel:
        return await Channel.connect(w.rt, relay.target())

    chan = w.run(main())
    assert chan.link_version == 5
    assert chan.peer_rsa_id == relay.keys.rsa_id and chan.peer_ed_id == relay.keys.ed_id
    assert chan.clock_skew == pytest.approx(30.0, abs=1.0)
    assert str(chan.our_address) == w.client.ipv4
    assert len(events(w.world, "chan-open")) == 1


def test_wrong_identity_is_refused() -> None:
    w = stack_world(n_relays=2)
    a, b = w.relays

    async def main() -> str:
        wrong = ChanTarget(a.ip, OR_PORT, b.keys.rsa_id)
        with pytest.raises(ChannelError) as info:
            await Channel.connect(w.rt, wrong)
        return str(info.value)

    text = w.run(main())
    assert "relay identity mismatch" in text and b.keys.rsa_id.hex().upper() in text


def test_certs_bound_to_another_tls_certificate_are_refused() -> None:
    w = stack_world(n_relays=1, misbehave={0: Misbehave(certs_for_other_tls=True)})

    async def main() -> str:
        with pytest.raises(ChannelError) as info:
            await Channel.connect(w.rt, w.relays[0].target())
        return str(info.value)

    assert "does not certify this TLS certificate" in w.run(main())


def test_relay_hanging_up_mid_handshake() -> None:
    w = stack_world(n_relays=1, misbehave={0: Misbehave(close_after_versions=True)})

    async def main() -> str:
        with pytest.raises(ChannelError) as info:
            await Channel.connect(w.rt, w.relays[0].target())
        return str(info.value)

    assert w.run(main()) == ("connection closed by the relay during the link handshake "
                             "(waiting for CERTS)")


def test_unreachable_relay() -> None:
    w = stack_world(n_relays=1)

    async def main() -> str:
        with pytest.raises(ChannelError) as info:
            await Channel.connect(w.rt, ChanTarget(w.relays[0].ip, 1234, w.relays[0].keys.rsa_id))
        return str(info.value)

    assert "refused" in w.run(main())


def test_handshake_timeout() -> None:
    w = stack_world(n_relays=1)
    part = w.net.partition(["client"], [w.relays[0].host.name])

    async def main() -> str:
        with pytest.raises(ChannelError) as info:
            await Channel.connect(w.rt, w.relays[0].target(), timeout_s=5)
        part.heal()
        return str(info.value)

    assert "timed out after 5 s" in w.run(main())


def test_circuit_ids_have_the_msb_set_and_are_unique() -> None:
    w = stack_world(n_relays=1)

    async def main() -> tuple[list[int], Sink, Channel]:
        chan = await Channel.connect(w.rt, w.relays[0].target())
        sink = Sink()
        ids = [chan.open_circuit_slot(sink) for _ in range(200)]
        chan.release(ids[0])
        chan.close("test over")
        return ids, sink, chan

    ids, sink, chan = w.run(main())
    assert all(i & 0x8000_0000 for i in ids) and len(set(ids)) == 200
    assert chan.closed and chan.close_reason == "test over"
    assert sink.closed == ["test over"] * 199  # each open slot told once
    with pytest.raises(ChannelError, match="closed"):
        chan.write_cell(ChanCell(ids[1], ChanCmd.PADDING, b""))


def _after_handshake(inject: bytes, *, close: bool = False) -> tuple[Channel, Sink, list[str]]:
    w = stack_world(n_relays=1, misbehave={0: Misbehave(inject=inject, close_after_inject=close)})

    async def main() -> tuple[Channel, Sink]:
        chan = await Channel.connect(w.rt, w.relays[0].target())
        sink = Sink()
        chan.open_circuit_slot(sink)
        await w.rt.sleep(2)
        return chan, sink

    chan, sink = w.run(main())
    return chan, sink, events(w.world, "chan-drop")


def test_padding_versions_unknown_commands_and_stray_cells_are_dropped() -> None:
    chan, sink, dropped = _after_handshake(cells(
        (0, ChanCmd.PADDING, b""), (0, ChanCmd.VPADDING, b"xx"), (0, ChanCmd.VERSIONS, b"\0\5"),
        (0, ChanCmd.PADDING_NEGOTIATE, b"\0\2"), (0, 200, b"future"), (0, 60, b""),
        (0x8000_0001, ChanCmd.RELAY, b""), (7, ChanCmd.CREATE2, b"")))
    assert not chan.closed and sink.cells == [] and sink.closed == []
    assert len(dropped) == 2 and '"cmd":"RELAY"' in dropped[0] and "CREATE2" in dropped[1]


@pytest.mark.parametrize("inject, reason", [
    (cells((0, ChanCmd.CERTS, b"")), "protocol violation: CERTS cell on an open channel"),
    (cells((0, ChanCmd.RELAY, b"")), "protocol violation: RELAY cell on circuit ID 0"),
    (cells((0, ChanCmd.NETINFO, b"")), "protocol violation: NETINFO cell on an open channel"),
])
def test_violations_close_the_channel_and_tell_circuits(inject: bytes, reason: str) -> None:
    chan, sink, _ = _after_handshake(inject)
    assert chan.closed and chan.close_reason == reason
    assert sink.closed == [reason]


def test_eof_mid_cell() -> None:
    chan, sink, _ = _after_handshake(cells((0x8000_0001, ChanCmd.RELAY, b""))[:100], close=True)
    assert chan.close_reason == "connection closed by the relay in the middle of a cell"
    assert sink.closed == [chan.close_reason]


def test_clean_eof() -> None:
    chan, _sink, _ = _after_handshake(cells((0, ChanCmd.PADDING, b"")), close=True)
    assert chan.close_reason == "connection closed by the relay"


def test_relay_crash_resets_the_channel() -> None:
    w = stack_world(n_relays=1)

    async def main() -> tuple[Channel, Sink]:
        chan = await Channel.connect(w.rt, w.relays[0].target())
        sink = Sink()
        chan.open_circuit_slot(sink)
        w.relays[0].host.crash()
        await w.rt.sleep(1)
        return chan, sink

    chan, sink = w.run(main())
    assert chan.closed and "reset" in (chan.close_reason or "")
    assert len(sink.closed) == 1


def test_pool_shares_one_handshake_and_reuses_channels() -> None:
    w = stack_world(n_relays=2)
    a, b = w.relays

    async def main() -> tuple[list[Channel], Channel, Channel]:
        pool = ChannelPool(w.rt)
        tasks = [w.rt.spawn(pool.get(a.target()), name=f"get{i}") for i in range(5)]
        chans = [await t for t in tasks]
        other = await pool.get(b.target())
        chans[0].close("gone")
        fresh = await pool.get(a.target())
        assert pool.channels() == [other, fresh]
        pool.close_all()
        return chans, other, fresh

    chans, other, fresh = w.run(main())
    assert all(c is chans[0] for c in chans)
    assert other is not chans[0] and fresh is not chans[0] and not chans[0] is fresh
    assert len(events(w.world, "chan-open")) == 3


def test_pool_failure_reaches_every_waiter_and_is_not_cached() -> None:
    w = stack_world(n_relays=2)
    a, b = w.relays

    async def main() -> list[str]:
        pool = ChannelPool(w.rt)
        bad = ChanTarget(a.ip, OR_PORT, b.keys.rsa_id)  # a's address, b's identity
        tasks = [w.rt.spawn(pool.get(bad), name=f"get{i}") for i in range(3)]
        errors = []
        for t in tasks:
            with pytest.raises(ChannelError) as info:
                await t
            errors.append(str(info.value))
        assert await pool.get(b.target())  # a later request tries again
        return errors

    errors = w.run(main())
    assert len(errors) == 3 and all("identity mismatch" in e for e in errors)


def test_pool_refuses_another_ed25519_identity_for_a_known_relay() -> None:
    w = stack_world(n_relays=2)
    a, b = w.relays

    async def main() -> str:
        pool = ChannelPool(w.rt)
        await pool.get(a.target())
        with pytest.raises(ChannelError) as info:
            await pool.get(ChanTarget(a.ip, OR_PORT, a.keys.rsa_id, b.keys.ed_id))
        return str(info.value)

    assert "Ed25519 identity" in w.run(main())


def test_a_bug_in_a_circuit_closes_the_channel_and_is_still_reported() -> None:
    # The reader task must not die and leave the channel open with every other circuit
    # on it waiting for cells that no longer come; the bug itself is not hidden.
    class Buggy(Sink):
        def cell_received(self, cell: ChanCell) -> None:
            raise RuntimeError("a bug in the circuit code")

    w = stack_world(n_relays=1, misbehave={0: Misbehave(
        inject=cells((0x8000_0001, ChanCmd.RELAY, b"")))})
    out: list[tuple[Channel, Sink]] = []

    async def main() -> None:
        chan = await Channel.connect(w.rt, w.relays[0].target())
        chan._sinks[0x8000_0001] = Buggy()  # the ID the relay's stray cell names
        other = Sink()
        chan.open_circuit_slot(other)
        out.append((chan, other))
        await w.rt.sleep(2)

    async def start() -> None:
        await w.relays[0].start()
        await main()

    task = w.rt.spawn(start(), name="test")
    w.world.run(until=60)
    assert task.done() and task.exception() is None
    chan, other = out[0]
    assert chan.closed and "RuntimeError" in (chan.close_reason or "")
    assert other.closed == [chan.close_reason]
    assert any("a bug in the circuit code" in e for e in w.world.errors), w.world.errors
