"""The async Circuit and Stream drivers with scripted cells (a fake channel, simnet's clock).

Exact cell sequences that are hard to provoke through a whole network: streams on
unknown IDs, half-closed streams, a hop that is not the stream's, stream SENDMEs that
wait for the application, circuit windows holding back every stream.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from stack_relay import ScriptedPath, fake_relay

from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason
from gotor.cells.relaymsg import (
    Begin,
    Connected,
    Data,
    End,
    EndReason,
    Extend2,
    Resolved,
    Sendme,
)
from gotor.circuit import CircParams, Circuit
from gotor.errors import ChannelError, CircuitError, LocalError, StreamError
from gotor.link.channel import ChanTarget
from gotor.stream import Stream
from simnet.binding import SimRuntime
from simnet.net import Network
from simnet.world import World

RELAYS = [fake_relay(n) for n in ("guard", "middle", "exit")]


class FakeChannel:
    """Enough of a Channel for one circuit: cells go to ``on_cell``."""

    def __init__(self) -> None:
        self.target = ChanTarget("10.0.0.1", 9001, RELAYS[0].rsa_id)
        self.sink: Any = None
        self.sent: list[ChanCell] = []
        self.on_cell: Callable[[ChanCell], None] = self.sent.append
        self.closed = False

    def open_circuit_slot(self, sink: Any) -> int:
        self.sink = sink
        return 0x8000_0042

    def release(self, circ_id: int) -> None:
        self.sink = None

    def write_cell(self, cell: ChanCell) -> None:
        if self.closed:
            raise ChannelError("closed")
        self.on_cell(cell)

    async def drain(self) -> None:
        if self.closed:
            raise ChannelError("closed")


class Bench:
    """A built 3-hop circuit on a fake channel; ``path`` plays the relays."""

    def __init__(self, params: CircParams | None = None) -> None:
        self.world = World(3)
        self.world.trace.keep = True
        self.rt: SimRuntime = Network(self.world).add_host("client").runtime
        self.chan = FakeChannel()
        self.path = ScriptedPath(list(RELAYS))
        self.params = params or CircParams()
        self.circ = Circuit(self.rt, self.chan, self.params, RELAYS[0].hop())  # type: ignore[arg-type]
        self.to_exit: list[tuple[int, int, Any]] = []  # (hop, stream id, msg) the relays got

    def _relay_side(self, cell: ChanCell) -> None:
        if cell.cmd == ChanCmd.DESTROY:
            self.to_exit.append((-1, 0, cell))
            return
        if cell.cmd == ChanCmd.CREATE2:
            reply = self.path.answer_create(cell)
        else:
            hop, rc, msg = self.path.forward(cell)
            if not isinstance(msg, Extend2):
                self.to_exit.append((hop, rc.stream_id, msg))
                return
            reply = self.path.extended(hop, msg)
        self.rt.call_later(0.01, lambda: self.circ.cell_received(reply))

    def run(self, body: Callable[[Bench], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            self.chan.on_cell = self._relay_side
            await self.circ._create(RELAYS[0].hop())
            await self.circ._extend(RELAYS[1].hop())
            await self.circ._extend(RELAYS[2].hop())
            return await body(self)

        task = self.rt.spawn(main(), name="test")
        self.world.run(until=1000)
        assert task.done(), "blocked"
        assert self.world.errors == [], self.world.errors
        return task.result()

    def deliver(self, msg: Any, stream_id: int, hop: int = 2) -> None:
        self.circ.cell_received(self.path.backward(hop, msg, stream_id))

    async def open(self, target: str = "example.com") -> Stream:
        opening = self.rt.spawn(self.circ.open_stream(target, 80), name="open")
        await self.rt.sleep(0.1)
        hop, sid, begin = self.to_exit[-1]
        assert hop == 2 and begin == Begin(target, 80)
        self.deliver(Connected(), sid)
        return await opening

    def sent_to_exit(self, stream_id: int) -> list[Any]:
        return [m for h, s, m in self.to_exit if s == stream_id and h == 2]


def test_unknown_stream_id_is_a_protocol_violation() -> None:
    async def body(b: Bench) -> CircuitError:
        b.deliver(Data(b"who?"), 999)
        with pytest.raises(CircuitError) as info:
            await b.circ.open_stream("x.example", 80)
        return info.value

    b = Bench()
    err = b.run(body)
    assert "protocol violation: DATA for unknown stream 999" in str(err)
    assert err.destroy_reason is None  # we found the violation: the relay sent no reason
    assert b.to_exit[-1][0] == -1  # our DESTROY went out


def test_half_closed_stream_tolerates_late_cells_then_forgets_the_id() -> None:
    async def body(b: Bench) -> tuple[bool, str]:
        stream = await b.open()
        sid = stream.stream_id
        stream.abort()
        assert b.sent_to_exit(sid)[-1] == End(EndReason.MISC)
        for _ in range(10):
            b.deliver(Data(b"late data"), sid)  # in flight when the exit got our END
        b.deliver(End(EndReason.DONE), sid)
        alive = not b.circ.closed
        b.deliver(Data(b"after END"), sid)  # now the ID is unknown again
        return alive, b.circ.close_reason or ""

    alive, reason = Bench().run(body)
    assert alive and "unknown stream" in reason


def test_half_closed_stream_rejects_more_data_than_its_window() -> None:
    async def body(b: Bench) -> str:
        stream = await b.open()
        sid = stream.stream_id
        for _ in range(490):
            b.deliver(Data(b"x"), sid)
        await stream.aclose()  # END: the exit may still send 10 more DATA cells
        await b.rt.sleep(0.1)
        for _ in range(11):
            b.deliver(Data(b"x"), sid)
        return b.circ.close_reason or ""

    assert "DATA on a closed stream beyond what it could owe" in Bench().run(body)


def test_stream_message_from_the_wrong_hop() -> None:
    async def body(b: Bench) -> str:
        stream = await b.open()
        b.deliver(Data(b"x"), stream.stream_id, hop=1)
        with pytest.raises(StreamError) as info:
            await stream.read()
        return str(info.value)

    assert "from hop 2, not hop 3" in Bench().run(body)


def test_stream_sendmes_wait_for_the_application_to_read() -> None:
    async def body(b: Bench) -> tuple[int, int, bytes]:
        stream = await b.open()
        sid = stream.stream_id
        for i in range(100):
            b.deliver(Data(bytes([i]) * 498), sid)
        before = b.sent_to_exit(sid).count(Sendme())
        got = b""
        while len(got) < 100 * 498:
            got += await stream.read(498 * 7)
        after = b.sent_to_exit(sid).count(Sendme())
        return before, after, got

    before, after, got = Bench().run(body)
    assert before == 0 and after == 2
    assert got == b"".join(bytes([i]) * 498 for i in range(100))


def test_circuit_window_holds_back_every_stream() -> None:
    async def body(b: Bench) -> list[int]:
        streams = [await b.open(f"{name}.example") for name in "abc"]
        for s in streams:
            s.write(b"x" * (498 * 600))  # more than a stream window each
        await b.rt.sleep(1)
        return [len([m for m in b.sent_to_exit(s.stream_id) if isinstance(m, Data)])
                for s in streams]

    sent = Bench().run(body)
    assert sum(sent) == 1000 and max(sent) <= 500  # the circuit's window, then each stream's


def test_circuit_sendme_releases_the_streams() -> None:
    async def body(b: Bench) -> int:
        s1 = await b.open()
        s1.write(b"1" * (498 * 1200))
        await b.rt.sleep(1)
        sent = len([m for m in b.sent_to_exit(s1.stream_id) if isinstance(m, Data)])
        assert sent == 500
        b.deliver(Sendme(), s1.stream_id)  # stream window +50
        await b.rt.sleep(1)
        return len([m for m in b.sent_to_exit(s1.stream_id) if isinstance(m, Data)])

    assert Bench().run(body) == 550


def test_destroy_fails_streams_and_opening() -> None:
    async def body(b: Bench) -> tuple[str, str]:
        stream = await b.open()
        opening = b.rt.spawn(b.circ.open_stream("late.example", 80), name="open")
        await b.rt.sleep(0.1)
        b.circ.cell_received(ChanCell(0x8000_0042, ChanCmd.DESTROY, bytes([DestroyReason.FINISHED])))
        with pytest.raises(StreamError) as first:
            await stream.read()
        with pytest.raises(StreamError) as second:
            await opening
        return str(first.value), str(second.value)

    first, second = Bench().run(body)
    assert "destroyed by the relay (FINISHED)" in first and "FINISHED" in second


def test_begin_timeout_leaves_a_half_closed_stream() -> None:
    async def body(b: Bench) -> tuple[str, bool]:
        with pytest.raises(StreamError) as info:
            await b.circ.open_stream("slow.example", 80, timeout_s=5)
        _h, sid, _m = b.to_exit[-2]
        b.deliver(Connected(), sid)  # the answer, too late: tolerated
        b.deliver(End(EndReason.DONE), sid)
        return str(info.value), b.circ.closed

    text, closed = Bench().run(body)
    assert "no answer from the exit within 5 s" in text and not closed


def test_channel_failure_while_sending() -> None:
    async def body(b: Bench) -> str:
        stream = await b.open()
        b.chan.closed = True
        stream.write(b"data")
        with pytest.raises(StreamError) as info:
            await stream.read()
        return str(info.value)

    assert "closed" in Bench().run(body)


def test_partial_reads_and_bytestream_properties() -> None:
    async def body(b: Bench) -> tuple[bytes, bytes, tuple[str, int]]:
        stream = await b.open()
        b.deliver(Data(b"a" * 300), stream.stream_id)
        b.deliver(Data(b"b" * 300), stream.stream_id)
        await b.rt.sleep(0.1)
        with pytest.raises(LocalError):
            await stream.read(0)
        first = await stream.read(100)
        rest = await stream.read()
        return first, rest, stream.peer

    first, rest, peer = Bench().run(body)
    assert first == b"a" * 100 and rest == b"a" * 200 + b"b" * 300
    assert peer == ("example.com", 80)


def test_resolve_outcomes() -> None:
    async def body(b: Bench) -> list[str]:
        out = []
        for answer in (End(EndReason.RESOLVEFAILED), None):
            task = b.rt.spawn(b.circ.resolve("name.example", timeout_s=5), name="resolve")
            await b.rt.sleep(0.1)
            _hop, sid, _msg = b.to_exit[-1]
            if answer is not None:
                b.deliver(answer, sid)
            with pytest.raises(StreamError) as info:
                await task
            out.append(str(info.value))
            if answer is None:
                b.deliver(Resolved(()), sid)  # too late, but tolerated
        task = b.rt.spawn(b.circ.resolve("gone.example"), name="resolve")
        await b.rt.sleep(0.1)
        b.circ.close("bye")
        with pytest.raises(StreamError) as info:
            await task
        out.append(str(info.value))
        return out

    failed, timed_out, closed = Bench().run(body)
    assert "hostname could not be resolved (RESOLVEFAILED)" in failed
    assert "no answer within 5 s" in timed_out
    assert "resolving gone.example" in closed and "closed: bye" in closed
