"""Circuits and streams end to end under simnet, against scripted relays (tor-spec §5-§7)."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address

import pytest
from stack_relay import Misbehave
from stack_world import CLOSED_PORT, ECHO, SINK, SOURCE, StackWorld, content, events, stack_world

from gotor.cells.chan import DestroyReason
from gotor.cells.relaymsg import EndReason
from gotor.circuit import CircParams, Circuit, build_circuit
from gotor.errors import CircuitError, ClosedError, StreamError, Timeout
from gotor.link.pool import ChannelPool
from gotor.runtime.sync import timeout, wait_finished
from gotor.stream import Stream

MB = 1 << 20
V1 = CircParams(sendme_emit_min_version=1, sendme_accept_min_version=1)


async def _circuit(w: StackWorld, params: CircParams = V1, *, v3: tuple[bool, ...] = (
        False, True, False)) -> tuple[ChannelPool, Circuit]:
    pool = ChannelPool(w.rt)
    path = [r.hop(ntor_v3=v) for r, v in zip(w.relays, v3, strict=False)]
    return pool, await build_circuit(w.rt, pool, path, params)


async def _read_exactly(stream: Stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = await stream.read()
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def _read_all(stream: Stream) -> bytes:
    parts = []
    while data := await stream.read():
        parts.append(data)
    return b"".join(parts)


def test_three_hops_one_megabyte_both_ways_byte_exact() -> None:
    w = stack_world()
    payload = content(MB, seed=7)

    async def main() -> tuple[bytes, Circuit, Stream]:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", ECHO)
        reader = w.rt.spawn(_read_exactly(stream, len(payload)), name="reader")
        for i in range(0, len(payload), 100_000):
            stream.write(payload[i : i + 100_000])
            await stream.drain()
        echoed = await reader
        await stream.aclose()
        return echoed, circ, stream

    echoed, circ, stream = w.run(main())
    assert echoed == payload
    cells = -(-MB // 498)
    exit_ = w.relays[2]
    # Full cells, except where a write ended before the pump ran (at most one per write).
    assert cells <= exit_.stats["data_in"] <= cells + 11 and exit_.stats["data_out"] >= cells
    assert str(stream.address) == w.web.ipv4 and stream.ttl == 300
    assert len(circ.hops) == 3 and circ.hops[2].rsa_id == exit_.keys.rsa_id
    built = events(w.world, "circ-built")
    assert len(built) == 1 and exit_.keys.rsa_id.hex().upper() in built[0]
    assert events(w.world, "stream-open") and events(w.world, "stream-end")
    # EXTEND2 x2 and the first cells to later hops travel in RELAY_EARLY, at most 8 in all.
    assert w.relays[0].stats["early"] == 8


@pytest.mark.parametrize("emit_v1", [False, True])
def test_download_then_end_done_and_sendme_versions(emit_v1: bool) -> None:
    w = stack_world(emit_v1=emit_v1)
    params = CircParams(sendme_emit_min_version=1) if emit_v1 else CircParams()

    async def main() -> tuple[bytes, bytes]:
        _pool, circ = await _circuit(w, params, v3=(True, True, True))
        stream = await circ.open_stream("web.example", SOURCE)
        stream.write(b"%d\n" % MB)
        data = await _read_all(stream)
        assert await stream.read() == b""  # stays at EOF
        with pytest.raises(StreamError, match="DONE"):
            stream.write(b"more")
        stream.write_eof()  # nothing left to end: not an error
        return data, content(MB)

    got, expected = w.run(main())
    assert got == expected


def test_upload_verified_by_the_target() -> None:
    w = stack_world()
    payload = content(300_000, seed=3)

    async def main() -> bytes:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream(w.web.ipv4 or "", SINK)
        stream.write(b"%d\n" % len(payload) + payload)
        await stream.drain()
        return await _read_all(stream)

    assert w.run(main()) == hashlib.sha256(payload).hexdigest().encode()


def test_a_reader_that_does_not_read_stops_the_exit() -> None:
    w = stack_world()

    async def main() -> tuple[int, int, bytes]:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", SOURCE)
        stream.write(b"%d\n" % MB)
        await w.rt.sleep(30)  # the application reads nothing for 30 s
        stalled = w.relays[2].stats["data_out"]
        await w.rt.sleep(30)
        still = w.relays[2].stats["data_out"]
        data = await _read_all(stream)
        return stalled, still, data

    stalled, still, data = w.run(main())
    assert stalled == still == 500  # the stream window, and not one cell more
    assert data == content(MB)


def test_write_waits_for_the_stream_window() -> None:
    w = stack_world(misbehave={2: Misbehave(no_stream_sendmes=True)})

    async def main() -> int:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", ECHO)
        stream.write(content(MB))
        with pytest.raises(Timeout):
            await timeout(w.rt, 20, stream.drain())
        return w.relays[2].stats["data_in"]

    assert w.run(main()) == 500


def test_destroy_mid_transfer_fails_the_stream_and_closes_the_circuit() -> None:
    w = stack_world(misbehave={2: Misbehave(destroy_after_data=300)})

    async def main() -> tuple[StreamError, Circuit, int]:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", SOURCE)
        stream.write(b"%d\n" % MB)
        got = 0
        with pytest.raises(StreamError) as info:
            while data := await stream.read():
                got += len(data)
        with pytest.raises(CircuitError, match="destroyed") as again:
            await circ.open_stream("web.example", ECHO)
        assert again.value.destroy_reason == DestroyReason.DESTROYED
        return info.value, circ, got

    err, circ, got = w.run(main())
    assert "destroyed by the relay (DESTROYED)" in str(err)
    assert circ.closed and got < MB


def test_channel_reset_mid_transfer() -> None:
    w = stack_world()

    async def main() -> tuple[StreamError, Circuit, ChannelPool]:
        pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", SOURCE)
        stream.write(b"%d\n" % (4 * MB))
        await _read_exactly(stream, 100_000)
        w.relays[0].host.crash()
        with pytest.raises(StreamError) as info:
            await _read_all(stream)
        return info.value, circ, pool

    err, circ, pool = w.run(main())
    assert "channel closed" in str(err) and "reset" in str(err)
    assert circ.closed and pool.channels() == []


@pytest.mark.parametrize("host, port, reason, text", [
    ("web.example", 25, EndReason.EXITPOLICY, "exit policy rejects this address (EXITPOLICY)"),
    ("nowhere.example", 80, EndReason.RESOLVEFAILED, "could not be resolved (RESOLVEFAILED)"),
    ("web.example", CLOSED_PORT, EndReason.CONNECTREFUSED, "(CONNECTREFUSED)"),
])
def test_end_reasons_become_clear_errors(host: str, port: int, reason: int, text: str) -> None:
    w = stack_world()

    async def main() -> tuple[StreamError, Stream]:
        _pool, circ = await _circuit(w)
        with pytest.raises(StreamError) as info:
            await circ.open_stream(host, port)
        ok = await circ.open_stream("web.example", ECHO)  # the circuit is still fine
        ok.write(b"ping")
        assert await ok.read() == b"ping"
        return info.value, ok

    err, _ = w.run(main())
    assert err.end_reason == reason and text in str(err) and host in str(err)


def test_resolve() -> None:
    w = stack_world()

    async def main() -> tuple[list[object], StreamError]:
        _pool, circ = await _circuit(w)
        answers = await circ.resolve("web.example")
        with pytest.raises(StreamError) as info:
            await circ.resolve("nowhere.example")
        return list(answers), info.value

    answers, err = w.run(main())
    assert [a.ip for a in answers] == [IPv4Address(w.web.ipv4)]  # type: ignore[attr-defined]
    assert "could not be resolved (permanent error)" in str(err)



@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_an_unanswered_resolve_leaves_no_active_stream(how: str) -> None:
    # Whether the RESOLVE timed out or its caller gave up, the stream ID is only kept
    # half-closed (a late RESOLVED is still accepted): it must not count as a stream in
    # use, or the circuit manager would never expire the circuit.
    w = stack_world(misbehave={2: Misbehave(stall_resolve=True)})

    async def resolve(circ: Circuit) -> str:
        try:
            await circ.resolve("web.example", timeout_s=5)
        except StreamError as err:
            return str(err)
        return "answered"

    async def main() -> tuple[int, int, str | None]:
        _pool, circ = await _circuit(w)
        task = w.rt.spawn(resolve(circ), name="resolve")
        await w.rt.sleep(1 if how == "cancel" else 6)
        task.cancel("the application gave up")
        await wait_finished(w.rt, [task])
        return circ.n_active_streams, circ.n_streams, None if task.cancelled() else task.result()

    active, total, outcome = w.run(main())
    assert (active, total) == (0, 1)
    assert outcome == (None if how == "cancel" else "resolving web.example: no answer within 5 s")


def test_one_hop_directory_circuit_with_create_fast() -> None:
    w = stack_world(n_relays=1)

    async def main() -> bytes:
        pool = ChannelPool(w.rt)
        circ = await Circuit.create_fast(w.rt, pool, w.relays[0].target(), CircParams())
        stream = await circ.open_dir_stream()
        stream.write(b"GET /tor/status-vote/current/consensus-microdesc HTTP/1.0\r\n\r\n")
        body = await _read_all(stream)
        circ.close()
        return body

    body = w.run(main())
    assert body.startswith(b"HTTP/1.0 200 OK\r\n\r\ndirectory document")


def test_build_timeout_destroys_the_circuit() -> None:
    w = stack_world(misbehave={1: Misbehave(stall_before_created=True)})

    async def main() -> tuple[CircuitError, float]:
        start = w.rt.now()
        with pytest.raises(CircuitError) as info:
            await _circuit(w, CircParams(build_timeout=10))
        return info.value, w.rt.now() - start

    err, took = w.run(main())
    assert "timed out after 10 s" in str(err) and 10 <= took < 11
    assert ["timed out" in line for line in events(w.world, "circ-closed")] == [True]
    assert w.relays[0].stats["destroy_in"] == 1  # our DESTROY reached the first hop


def test_wrong_sendme_digest_closes_the_circuit() -> None:
    w = stack_world(misbehave={2: Misbehave(wrong_sendme_digest=True)})

    async def main() -> tuple[StreamError, Circuit]:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", SINK)
        stream.write(b"%d\n" % MB + content(MB))  # the exit's SENDMEs for our upload are bad
        with pytest.raises(StreamError) as info:
            await _read_all(stream)
        return info.value, circ

    err, circ = w.run(main())
    assert "protocol violation: authenticated SENDME with a wrong digest" in str(err)
    assert w.relays[0].stats["destroy_in"] == 1
    assert circ.closed



def test_a_sendme_from_one_hop_wakes_its_writer_while_another_hop_stays_closed() -> None:
    # Two streams end at different hops of one circuit; each writer waits for its own
    # hop's package window.  Hop 2 never grants more; hop 3's SENDME must still let the
    # writer of hop 3 go on, whoever was woken first and found its own window closed.
    w = stack_world(misbehave={1: Misbehave(no_circuit_sendmes=True)})
    n = 60_000  # more than 100 DATA cells: the circuit window (100 here) closes once
    payload = content(n, seed=3)

    async def main() -> tuple[bytes, int]:
        pool = ChannelPool(w.rt)
        params = CircParams(circwindow=100, sendme_emit_min_version=1,
                            sendme_accept_min_version=1)
        circ = await build_circuit(w.rt, pool, [w.relays[0].hop(), w.relays[1].hop()], params)
        stuck = await circ.open_stream("web.example", SINK)  # ends at hop 2
        await circ.extend(w.relays[2].hop())  # while RELAY_EARLY cells are left
        stuck.write(b"%d\n" % n + payload)
        await w.rt.sleep(1)  # its writer now waits for hop 2's window, for ever
        stream = await circ.open_stream("web.example", SINK)  # ends at hop 3
        stream.write(b"%d\n" % n + payload)
        answer = await timeout(w.rt, 60, _read_exactly(stream, 64), what="the upload's answer")
        return answer, w.relays[1].stats["data_in"]

    answer, stuck_cells = w.run(main())
    assert answer == hashlib.sha256(payload).hexdigest().encode()
    assert stuck_cells == 100  # the other writer did stay blocked


def test_stream_close_semantics() -> None:
    w = stack_world()

    async def main() -> None:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", ECHO)
        stream.write(b"hello")
        stream.write_eof()  # END goes after the queued data
        stream.write_eof()  # once is enough
        with pytest.raises(ClosedError):
            stream.write(b"more")
        assert await stream.read() in (b"hello", b"")
        assert await stream.read() == b""
        other = await circ.open_stream("web.example", ECHO)
        await other.aclose()
        with pytest.raises(ClosedError):
            await other.read()
        third = await circ.open_stream("web.example", ECHO)
        third.write(b"x" * 10_000)
        third.abort()
        # Late cells for those streams are tolerated (half-closed), the circuit lives on.
        await w.rt.sleep(5)
        assert not circ.closed
        fine = await circ.open_stream("web.example", ECHO)
        fine.write(b"still ok")
        assert await fine.read() == b"still ok"

    w.run(main())


def test_circuit_close_tells_every_stream() -> None:
    w = stack_world()

    async def main() -> list[str]:
        _pool, circ = await _circuit(w)
        streams = [await circ.open_stream("web.example", ECHO) for _ in range(3)]
        circ.close("done with it")
        errors = []
        for s in streams:
            with pytest.raises(StreamError) as info:
                await s.read()
            errors.append(str(info.value))
        return errors

    errors = w.run(main())
    assert len(errors) == 3 and all("closed: done with it" in e for e in errors)
    assert w.relays[0].stats["destroy_in"] == 1


def test_destroy_during_the_build() -> None:
    w = stack_world(n_relays=4)
    w.relays[1].peers.pop(w.relays[3].keys.rsa_id)  # relay1 cannot reach relay3

    async def main() -> CircuitError:
        pool = ChannelPool(w.rt)
        path = [w.relays[0].hop(), w.relays[1].hop(), w.relays[3].hop()]
        with pytest.raises(CircuitError) as info:
            await build_circuit(w.rt, pool, path, CircParams())
        return info.value

    err = w.run(main())
    assert "destroyed by the relay (DESTROYED)" in str(err)
    assert err.destroy_reason == DestroyReason.DESTROYED


def _trace_of_a_transfer(seed: int, shuffle: bool) -> str:
    w = stack_world(seed, shuffle=shuffle)

    async def main() -> None:
        _pool, circ = await _circuit(w)
        stream = await circ.open_stream("web.example", SOURCE)
        stream.write(b"%d\n" % 200_000)
        assert await _read_all(stream) == content(200_000)

    w.run(main())
    return w.world.trace.hexdigest()


def test_same_seed_same_trace() -> None:
    assert _trace_of_a_transfer(5, False) == _trace_of_a_transfer(5, False)
    assert _trace_of_a_transfer(5, True) == _trace_of_a_transfer(5, True)


def test_create_then_extend_one_hop_at_a_time() -> None:
    w = stack_world(misbehave={2: Misbehave(stall_before_created=True)})

    async def main() -> tuple[int, CircuitError]:
        pool = ChannelPool(w.rt)
        circ = await Circuit.create(w.rt, pool, w.relays[0].hop(), CircParams(build_timeout=5))
        await circ.extend(w.relays[1].hop(ntor_v3=True))
        hops = len(circ.hops)
        with pytest.raises(CircuitError) as info:
            await circ.extend(w.relays[2].hop())  # relay2 never answers
        return hops, info.value

    hops, err = w.run(main())
    assert hops == 2 and "timed out" in str(err)
    assert w.relays[0].stats["destroy_in"] == 1


def test_an_abandoned_extension_closes_the_circuit() -> None:
    # As a timed-out one: a circuit left EXTENDING would take no stream and no other
    # extension, yet stay open at the relays.
    w = stack_world(misbehave={2: Misbehave(stall_before_created=True)})

    async def main() -> tuple[bool, str | None]:
        pool = ChannelPool(w.rt)
        circ = await build_circuit(w.rt, pool, [w.relays[0].hop(), w.relays[1].hop()], V1)
        task = w.rt.spawn(circ.extend(w.relays[2].hop()), name="extend")
        await w.rt.sleep(1)
        task.cancel("the caller gave up")
        await wait_finished(w.rt, [task])
        await w.rt.sleep(1)
        return circ.closed, circ.close_reason

    closed, reason = w.run(main())
    assert closed and reason is not None and reason.endswith(" abandoned")
    assert w.relays[0].stats["destroy_in"] == 1
