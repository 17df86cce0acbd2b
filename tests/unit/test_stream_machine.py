"""The sans-IO stream machine, half-closed streams and END reasons (tor-spec §6.2-§6.4, §7.4)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.cells.relay import RelayCmd
from gotor.cells.relaymsg import (
    Connected,
    End,
    EndReason,
    Resolved,
    ResolvedAnswer,
)
from gotor.errors import LocalError, ProtocolError
from gotor.stream.machine import (
    STREAM_WINDOW,
    UNREAD_LIMIT,
    Ended,
    HalfClosedStream,
    Opened,
    Received,
    ResolvedAnswers,
    StreamKind,
    StreamMachine,
    StreamState,
    WindowOpened,
)
from gotor.stream.reasons import end_error, end_reason_text

CONNECTED, DATA, END, SENDME, RESOLVED = (RelayCmd.CONNECTED, RelayCmd.DATA, RelayCmd.END,
                                         RelayCmd.SENDME, RelayCmd.RESOLVED)


def _open(kind: StreamKind = StreamKind.CONNECT) -> StreamMachine:
    m = StreamMachine(kind)
    m.receive(CONNECTED, b"")
    return m


@pytest.mark.parametrize("msg, expected", [
    (Connected(), Opened(None, 0)),
    (Connected(IPv4Address("93.184.216.34"), 300), Opened(IPv4Address("93.184.216.34"), 300)),
    (Connected(IPv6Address("2001:db8::5"), 60), Opened(IPv6Address("2001:db8::5"), 60)),
])
def test_connected_forms(msg: Connected, expected: Opened) -> None:
    m = StreamMachine(StreamKind.CONNECT)
    assert m.state is StreamState.OPENING
    assert m.receive(CONNECTED, msg.encode()) == expected
    assert m.state is StreamState.OPEN


def test_malformed_connected() -> None:
    with pytest.raises(ProtocolError, match="invalid address type"):
        StreamMachine(StreamKind.CONNECT).receive(CONNECTED, bytes(4) + b"\x05" + bytes(20))
    with pytest.raises(ProtocolError):
        StreamMachine(StreamKind.CONNECT).receive(CONNECTED, b"\x01\x02")


def test_begin_dir_ignores_the_connected_payload() -> None:
    m = StreamMachine(StreamKind.DIR)
    assert m.receive(CONNECTED, b"\x00\x00\x00\x00\x05junk") == Opened(None, 0)


def test_data_before_connected_is_a_violation() -> None:
    with pytest.raises(ProtocolError, match="unexpected DATA on a stream in state OPENING"):
        StreamMachine(StreamKind.CONNECT).receive(DATA, b"early")


def test_end_before_connected() -> None:
    m = StreamMachine(StreamKind.CONNECT)
    end = End(EndReason.EXITPOLICY, IPv4Address("1.2.3.4"), 600)
    assert m.receive(END, end.encode()) == Ended(end)
    assert m.state is StreamState.CLOSED
    with pytest.raises(ProtocolError, match="state CLOSED"):
        m.receive(DATA, b"")


def test_empty_end_means_misc() -> None:
    assert _open().receive(END, b"") == Ended(End(EndReason.MISC))


def test_deliver_window() -> None:
    m = _open()
    for _ in range(STREAM_WINDOW):
        assert m.receive(DATA, b"x") == Received(b"x")
    with pytest.raises(ProtocolError, match="beyond the stream's deliver window"):
        m.receive(DATA, b"x")


def test_sendmes_owed_wait_for_the_application() -> None:
    m = _open()
    for _ in range(49):
        m.receive(DATA, b"x")
    assert m.sendmes_owed(0) == 0  # window 451: nothing owed yet
    m.receive(DATA, b"x")
    assert m.sendmes_owed(UNREAD_LIMIT + 1) == 0  # the application is behind
    assert m.sendmes_owed(UNREAD_LIMIT) == 1
    assert m.deliver == STREAM_WINDOW and m.sendmes_owed(0) == 0
    for _ in range(150):
        m.receive(DATA, b"x")
    assert m.sendmes_owed(0) == 3 and m.deliver == STREAM_WINDOW


def test_package_window_and_stream_sendmes() -> None:
    m = _open()
    with pytest.raises(ProtocolError, match="unexpected stream SENDME"):
        m.receive(SENDME, b"")
    for _ in range(STREAM_WINDOW):
        m.note_data_sent()
    assert not m.can_package()
    with pytest.raises(LocalError):
        m.note_data_sent()
    assert m.receive(SENDME, b"\x01\x00\x14" + bytes(20)) == WindowOpened()  # body ignored
    assert m.package == 50


def test_data_only_once_open() -> None:
    with pytest.raises(LocalError):
        StreamMachine(StreamKind.CONNECT).note_data_sent()


def test_flow_control_messages_are_not_negotiated() -> None:
    with pytest.raises(ProtocolError, match="XON"):
        _open().receive(RelayCmd.XON, b"\x00" + bytes(4))


def test_resolve() -> None:
    m = StreamMachine(StreamKind.RESOLVE)
    assert m.state is StreamState.RESOLVING
    answers = (ResolvedAnswer.for_ip(IPv4Address("10.0.0.9"), 60),)
    assert m.receive(RESOLVED, Resolved(answers).encode()) == ResolvedAnswers(answers)
    assert m.state is StreamState.CLOSED
    with pytest.raises(ProtocolError):
        StreamMachine(StreamKind.RESOLVE).receive(CONNECTED, b"")
    with pytest.raises(ProtocolError, match="wrong length"):
        StreamMachine(StreamKind.RESOLVE).receive(RESOLVED, b"\x04\x03abc\x00\x00\x00\x00")


# --- half-closed streams -------------------------------------------------------------------
def test_half_closed_open_stream_accepts_what_it_could_owe() -> None:
    m = _open()
    for _ in range(100):
        m.note_data_sent()
    for _ in range(480):
        m.receive(DATA, b"x")
    half = m.end_sent()
    assert m.state is StreamState.CLOSED
    assert (half.data_left, half.sendmes_left, half.connected_pending) == (20, 2, False)
    for _ in range(20):
        assert half.relay_received(DATA, b"late") is False
    with pytest.raises(ProtocolError, match="DATA on a closed stream"):
        half.relay_received(DATA, b"one too many")


def test_half_closed_sendmes_and_end() -> None:
    m = _open()
    for _ in range(100):
        m.note_data_sent()
    half = m.end_sent()
    assert half.relay_received(SENDME, b"") is False
    assert half.relay_received(SENDME, b"") is False
    with pytest.raises(ProtocolError, match="SENDME"):
        half.relay_received(SENDME, b"")
    assert half.relay_received(END, b"\x06") is True


def test_half_closed_while_opening_accepts_one_connected() -> None:
    half = StreamMachine(StreamKind.CONNECT).end_sent()
    assert half.connected_pending and half.data_left == STREAM_WINDOW
    assert half.relay_received(CONNECTED, b"") is False
    with pytest.raises(ProtocolError, match="CONNECTED"):
        half.relay_received(CONNECTED, b"")


def test_half_closed_resolve_expects_resolved_and_no_data() -> None:
    half = StreamMachine(StreamKind.RESOLVE).end_sent()
    assert half.data_left == 0
    with pytest.raises(ProtocolError):
        half.relay_received(DATA, b"")
    assert half.relay_received(RESOLVED, b"") is True
    assert HalfClosedStream(connected_pending=False, resolved_pending=False, data_left=0,
                            sendmes_left=0).relay_received(END, b"") is True


def test_half_closed_rejects_other_commands() -> None:
    half = _open().end_sent()
    with pytest.raises(ProtocolError, match="RESOLVED"):
        half.relay_received(RESOLVED, b"")
    with pytest.raises(ProtocolError, match="relay command 99"):
        half.relay_received(99, b"")


# --- END reasons ---------------------------------------------------------------------------
@pytest.mark.parametrize("reason", list(EndReason))
def test_every_end_reason_has_a_message_naming_it(reason: EndReason) -> None:
    assert f"({reason.name})" in end_reason_text(reason)


def test_end_messages() -> None:
    assert end_reason_text(EndReason.EXITPOLICY) == "exit policy rejects this address (EXITPOLICY)"
    assert end_reason_text(EndReason.RESOLVEFAILED) == (
        "hostname could not be resolved (RESOLVEFAILED)")
    assert "CONNECTREFUSED" in end_reason_text(EndReason.CONNECTREFUSED)
    assert end_reason_text(77) == "the exit closed the stream (reason 77)"
    err = end_error(End(EndReason.EXITPOLICY, IPv4Address("1.2.3.4"), 60), "example.com:80")
    assert err.end_reason == EndReason.EXITPOLICY
    assert str(err) == ("stream to example.com:80: exit policy rejects this address "
                        "(EXITPOLICY); the exit resolved it to 1.2.3.4")


# --- arbitrary input -----------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(StreamKind)), st.booleans(),
       st.lists(st.tuples(st.integers(0, 60), st.binary(max_size=40)), max_size=8))
def test_arbitrary_messages_give_events_or_protocol_errors(
        kind: StreamKind, connect: bool, msgs: list[tuple[int, bytes]]) -> None:
    m = StreamMachine(kind)
    if connect and kind is not StreamKind.RESOLVE:
        m.receive(CONNECTED, b"")
    for cmd, data in msgs:
        try:
            m.receive(cmd, data)
        except ProtocolError:
            return
