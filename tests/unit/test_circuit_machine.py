"""The sans-IO circuit machine with scripted relay cells (tor-spec §5-§7, proposal 289)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import ScriptedPath, fake_relay, seeded_bytes

from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason, HandshakeType
from gotor.cells.chanmsg import Create2, Created2, CreatedFast, Destroy
from gotor.cells.linkspec import LinkSpecEd25519Id, LinkSpecIPv4, LinkSpecIPv6, LinkSpecRsaId
from gotor.cells.relay import RelayCmd, decode_relay_payload
from gotor.cells.relaymsg import (
    Begin,
    Data,
    Drop,
    End,
    Extend2,
    Extended2,
    Sendme,
    Truncated,
)
from gotor.circuit.machine import (
    MAX_RELAY_EARLY,
    CircState,
    CircuitMachine,
    Destroyed,
    HopAdded,
    SendCell,
    StreamMsg,
    TruncatedAt,
    WindowOpened,
)
from gotor.circuit.params import CircParams, HopSpec
from gotor.errors import LocalError, ProtocolError

RELAYS = [fake_relay(n) for n in ("guard", "middle", "exit")]
CIRC = 0x80001234


def _machine(params: CircParams | None = None) -> CircuitMachine:
    return CircuitMachine(CIRC, params or CircParams(), seeded_bytes("client"))


def _built(n_hops: int = 3, params: CircParams | None = None, *, v3: bool = False
           ) -> tuple[CircuitMachine, ScriptedPath]:
    m, path = _machine(params), ScriptedPath(list(RELAYS))
    assert m.handle_cell(path.answer_create(m.create_cell(RELAYS[0].hop(ntor_v3=v3)))) == [
        HopAdded(0)]
    for i in range(1, n_hops):
        assert m.handle_cell(path.answer_extend(m.extend_cell(RELAYS[i].hop(ntor_v3=v3)))) == [
            HopAdded(i)]
    return m, path


def test_create2_uses_ntor_by_default() -> None:
    m = _machine()
    cell = m.create_cell(RELAYS[0].hop())
    create = Create2.decode(cell.body)
    assert cell.circ_id == CIRC and create.handshake_type == HandshakeType.NTOR
    assert len(create.handshake) == 84 and create.handshake[:20] == RELAYS[0].rsa_id
    assert m.state is CircState.CREATING


def test_create2_uses_ntor_v3_when_the_relay_has_it() -> None:
    m = _machine()
    create = Create2.decode(m.create_cell(RELAYS[0].hop(ntor_v3=True)).body)
    assert create.handshake_type == HandshakeType.NTOR_V3
    assert create.handshake[:32] == RELAYS[0].ed_id


def test_ntor_v3_without_ed25519_id_falls_back_to_ntor() -> None:
    hop = HopSpec(RELAYS[0].rsa_id, None, RELAYS[0].ntor_key, ("10.0.0.1", 9001), ntor_v3=True)
    assert Create2.decode(_machine().create_cell(hop).body).handshake_type == HandshakeType.NTOR


@pytest.mark.parametrize("v3", [False, True])
def test_three_hops_with_extend2_in_relay_early(v3: bool) -> None:
    m, _path = _built(3, v3=v3)
    assert m.n_hops == 3 and m.state is CircState.OPEN
    assert m.early_left == MAX_RELAY_EARLY - 2


def test_create_fast() -> None:
    m, path = _machine(), ScriptedPath(list(RELAYS))
    cell = m.create_fast_cell()
    assert cell.cmd == ChanCmd.CREATE_FAST and len(cell.body) == 20
    assert m.handle_cell(path.answer_create(cell)) == [HopAdded(0)]
    begin = m.relay_cell(0, 1, Begin("example.com", 80))
    assert path.forward(begin)[2] == Begin("example.com", 80)


def test_extend2_link_specifiers_in_spec_order() -> None:
    m, path = _built(1)
    hop = HopSpec(RELAYS[1].rsa_id, RELAYS[1].ed_id, RELAYS[1].ntor_key, ("10.0.0.2", 443),
                  ipv6=("[2001:db8::1]", 443))
    cell = m.extend_cell(hop)
    assert cell.cmd == ChanCmd.RELAY_EARLY and m.state is CircState.EXTENDING
    _hop, rc, msg = path.forward(cell)
    assert rc.stream_id == 0 and isinstance(msg, Extend2)
    assert [type(s) for s in msg.link_specs] == [LinkSpecIPv4, LinkSpecRsaId,
                                                 LinkSpecEd25519Id, LinkSpecIPv6]
    assert str(msg.link_specs[0].address) == "10.0.0.2"  # type: ignore[union-attr]


def test_bad_created2_fails_the_handshake() -> None:
    m, path = _machine(), ScriptedPath(list(RELAYS))
    reply = path.answer_create(m.create_cell(RELAYS[0].hop()))
    body = bytearray(reply.body)
    body[40] ^= 1  # inside AUTH
    with pytest.raises(ProtocolError, match="ntor handshake with hop 1 failed: ntor auth"):
        m.handle_cell(ChanCell(CIRC, reply.cmd, bytes(body)))


def test_created_fast_in_answer_to_create2() -> None:
    m = _machine()
    m.create_cell(RELAYS[0].hop())
    with pytest.raises(ProtocolError, match="CREATED_FAST in answer to ntor"):
        m.handle_cell(CreatedFast(bytes(20), bytes(20)).to_cell(CIRC))


def test_bad_extended2_fails_the_extension() -> None:
    m, path = _built(1)
    path.forward(m.extend_cell(RELAYS[1].hop()))
    with pytest.raises(ProtocolError, match="hop 2 failed"):
        m.handle_cell(path.backward(0, Extended2(bytes(64))))


def _destroy(reason: int = DestroyReason.FINISHED) -> ChanCell:
    return Destroy(reason).to_cell(CIRC)


def test_destroy_while_creating() -> None:
    m = _machine()
    m.create_cell(RELAYS[0].hop())
    assert m.handle_cell(_destroy(DestroyReason.RESOURCELIMIT)) == [
        Destroyed(DestroyReason.RESOURCELIMIT)]
    assert m.state is CircState.CLOSED


def test_destroy_while_extending_and_open() -> None:
    m, _path = _built(1)
    m.extend_cell(RELAYS[1].hop())
    assert m.handle_cell(_destroy(DestroyReason.CONNECTFAILED)) == [
        Destroyed(DestroyReason.CONNECTFAILED)]
    m2, _ = _built(3)
    assert m2.handle_cell(_destroy(200)) == [Destroyed(200)]


def test_after_destroy_everything_is_ignored() -> None:
    m, path = _built(2)
    m.handle_cell(_destroy())
    assert m.handle_cell(path.backward(1, Data(b"late"), 3)) == []
    assert m.handle_cell(ChanCell(CIRC, ChanCmd.RELAY_EARLY, bytes(509))) == []
    with pytest.raises(LocalError):
        m.relay_cell(1, 3, Data(b"x"))


def test_unexpected_channel_cells_per_state() -> None:
    m = _machine()
    with pytest.raises(ProtocolError, match="unexpected DESTROY cell on a NEW circuit"):
        m.handle_cell(_destroy())
    m = _machine()
    m.create_cell(RELAYS[0].hop())
    with pytest.raises(ProtocolError, match="unexpected RELAY cell on a CREATING circuit"):
        m.handle_cell(ChanCell(CIRC, ChanCmd.RELAY, bytes(509)))
    m2, _path = _built(1)
    with pytest.raises(ProtocolError, match="unexpected CREATED2 cell on a OPEN circuit"):
        m2.handle_cell(Created2(bytes(64)).to_cell(CIRC))


def test_inbound_relay_early_closes_the_circuit() -> None:
    m, path = _built(1)
    cell = path.backward(0, Drop())
    with pytest.raises(ProtocolError, match="inbound RELAY_EARLY"):
        m.handle_cell(ChanCell(CIRC, ChanCmd.RELAY_EARLY, cell.body))


def test_unrecognized_relay_cell() -> None:
    m, _path = _built(2)
    with pytest.raises(ProtocolError, match="not recognized"):
        m.handle_cell(ChanCell(CIRC, ChanCmd.RELAY, bytes(509)))


def test_unexpected_relay_commands() -> None:
    m, path = _built(2)
    with pytest.raises(ProtocolError, match="EXTENDED2 from hop 2 on a OPEN circuit"):
        m.handle_cell(path.backward(1, Extended2(bytes(64))))
    m, path = _built(2)
    with pytest.raises(ProtocolError, match="BEGIN from hop 2 with a stream ID"):
        m.handle_cell(path.backward(1, Begin("a.b", 1), 7))
    m, path = _built(2)
    with pytest.raises(ProtocolError, match="DATA from hop 2 on stream 0"):
        m.handle_cell(path.backward(1, Data(b"x"), 0))
    m, path = _built(2)
    with pytest.raises(ProtocolError, match="unexpected BEGIN_DIR"):
        m.handle_cell(path.backward_raw(1, RelayCmd.BEGIN_DIR, 0, b""))


def test_extended2_from_a_middle_hop() -> None:
    m, path = _built(2)
    m.extend_cell(RELAYS[2].hop())
    with pytest.raises(ProtocolError, match="not from the last hop"):
        m.handle_cell(path.backward(0, Extended2(bytes(64))))


def test_unknown_relay_commands_and_drop_are_ignored() -> None:
    m, path = _built(3)
    assert m.handle_cell(path.backward_raw(2, 200, 0, b"future")) == []
    assert m.handle_cell(path.backward_raw(2, 200, 9, b"future")) == []
    assert m.handle_cell(path.backward_raw(1, RelayCmd.CONFLUX_LINK, 0, b"")) == []
    assert m.handle_cell(path.backward(2, Drop())) == []
    # ... and the digests stayed in step: a real message still goes through.
    assert m.handle_cell(path.backward(2, End(), 4)) == [
        StreamMsg(2, 4, RelayCmd.END, End().encode())]


def test_stream_messages_come_out_undecoded_with_their_hop() -> None:
    m, path = _built(3)
    events = m.handle_cell(path.backward(2, Data(b"hello"), 77))
    assert events == [StreamMsg(2, 77, RelayCmd.DATA, b"hello")]
    events = m.handle_cell(path.backward(1, Sendme(), 77))
    assert events == [StreamMsg(1, 77, RelayCmd.SENDME, b"")]


def test_truncated() -> None:
    m, path = _built(3)
    assert m.handle_cell(path.backward(1, Truncated(DestroyReason.CONNECTFAILED))) == [
        TruncatedAt(1, DestroyReason.CONNECTFAILED)]
    assert m.state is CircState.CLOSED


def test_relay_early_budget() -> None:
    m, _path = _built(3)
    kinds = [m.relay_cell(2, 1, Data(b"x")).cmd for _ in range(8)]
    assert kinds == [ChanCmd.RELAY_EARLY] * 6 + [ChanCmd.RELAY] * 2
    assert m.relay_cell(0, 0, Drop()).cmd == ChanCmd.RELAY
    with pytest.raises(LocalError, match="no RELAY_EARLY cells left"):
        m.extend_cell(RELAYS[0].hop())


def test_cells_to_the_first_hop_are_plain_relay() -> None:
    m, _path = _built(1)
    assert m.relay_cell(0, 1, Data(b"x")).cmd == ChanCmd.RELAY
    assert m.early_left == MAX_RELAY_EARLY


def test_padding_is_four_zeros_then_random() -> None:
    m, path = _built(1)
    raw, recognized = path.hops[0].decrypt_forward(m.relay_cell(0, 5, Data(b"abc")).body)
    assert recognized and decode_relay_payload(raw).data == b"abc"
    assert raw[14:18] == bytes(4) and raw[18:] != bytes(509 - 18)


# --- circuit windows and authenticated SENDMEs ---------------------------------------------
def _send_data(m: CircuitMachine, path: ScriptedPath, n: int, hop: int = 2) -> list[bytes]:
    """Send n DATA cells to ``hop``; return the relay's received digest after each 100th."""
    digests = []
    for _ in range(n):
        path.forward(m.relay_cell(hop, 1, Data(b"d" * 498)))
        if (m.params.circwindow - m.package_window(hop)) % 100 == 0:
            digests.append(path.hops[hop].last_digest_received)
    return digests


def test_package_window_closes_at_zero_and_sendme_reopens_it() -> None:
    m, path = _built(3)
    digests = _send_data(m, path, 1000)
    assert m.package_window(2) == 0 and not m.can_package(2) and len(digests) == 10
    with pytest.raises(LocalError, match="package window"):
        m.relay_cell(2, 1, Data(b"x"))
    m.relay_cell(2, 1, End())  # only DATA counts
    assert m.handle_cell(path.backward(2, Sendme(1, digests[0]))) == [WindowOpened(2)]
    assert m.package_window(2) == 100


def test_sendme_v1_with_a_wrong_digest_is_rejected() -> None:
    m, path = _built(3)
    _send_data(m, path, 100)
    with pytest.raises(ProtocolError, match="wrong digest"):
        m.handle_cell(path.backward(2, Sendme(1, bytes(20))))


def test_sendme_digests_are_matched_in_order() -> None:
    m, path = _built(3)
    _first, second = _send_data(m, path, 200)
    with pytest.raises(ProtocolError, match="wrong digest"):
        m.handle_cell(path.backward(2, Sendme(1, second)))


def test_unexpected_circuit_sendme_is_rejected() -> None:
    m, path = _built(3)
    with pytest.raises(ProtocolError, match="unexpected circuit SENDME"):
        m.handle_cell(path.backward(2, Sendme()))


def test_only_one_sendme_per_hundred_cells() -> None:
    m, path = _built(3)
    _send_data(m, path, 150)
    m.handle_cell(path.backward(2, Sendme()))
    assert m.package_window(2) == 950
    with pytest.raises(ProtocolError, match="unexpected circuit SENDME"):
        m.handle_cell(path.backward(2, Sendme()))


def test_sendme_version_rules() -> None:
    m, path = _built(3, CircParams(sendme_accept_min_version=1))
    _send_data(m, path, 100)
    with pytest.raises(ProtocolError, match="below the accepted 1"):
        m.handle_cell(path.backward(2, Sendme()))
    m, path = _built(3)
    _send_data(m, path, 100)
    with pytest.raises(ProtocolError, match="version 2 not supported"):
        m.handle_cell(path.backward(2, Sendme(2, b"future")))
    m, path = _built(3)
    _send_data(m, path, 100)
    assert m.handle_cell(path.backward(2, Sendme())) == [WindowOpened(2)]  # v0 accepted


def test_malformed_sendme_v1() -> None:
    m, path = _built(3)
    _send_data(m, path, 100)
    with pytest.raises(ProtocolError, match="SENDME v1 digest of 3 bytes"):
        m.handle_cell(path.backward_raw(2, RelayCmd.SENDME, 0, b"\x01\x00\x03abc"))


@pytest.mark.parametrize("emit", [0, 1])
def test_deliver_window_sends_a_sendme_every_100_data_cells(emit: int) -> None:
    m, path = _built(3, CircParams(sendme_emit_min_version=emit))
    sendmes = []
    for i in range(1, 301):
        events = m.handle_cell(path.backward(2, Data(b"x" * 498), 5))
        assert events[0] == StreamMsg(2, 5, RelayCmd.DATA, b"x" * 498)
        if i % 100 == 0:
            assert isinstance(events[1], SendCell) and len(events) == 2
            expected = path.hops[2].last_digest_sent  # the relay's digest of its 100th cell
            hop, rc, msg = path.forward(events[1].cell)
            assert hop == 2 and rc.stream_id == 0 and isinstance(msg, Sendme)
            sendmes.append(msg)
            assert msg == (Sendme(1, expected) if emit else Sendme())
        else:
            assert len(events) == 1
    assert len(sendmes) == 3 and m.deliver_window(2) == 1000


def test_circwindow_parameter_sets_the_initial_package_window() -> None:
    m, path = _built(3, CircParams(circwindow=100))
    _send_data(m, path, 100)
    assert not m.can_package(2)


def test_windows_are_per_hop() -> None:
    m, path = _built(3)
    _send_data(m, path, 100, hop=1)
    assert m.package_window(1) == 900 and m.package_window(2) == 1000
    with pytest.raises(ProtocolError, match="unexpected circuit SENDME"):
        m.handle_cell(path.backward(2, Sendme()))


# --- misuse --------------------------------------------------------------------------------
def test_api_misuse_is_a_local_error() -> None:
    m = _machine()
    with pytest.raises(LocalError):
        m.extend_cell(RELAYS[1].hop())
    with pytest.raises(LocalError):
        m.relay_cell(0, 1, Data(b""))
    m.create_cell(RELAYS[0].hop())
    with pytest.raises(LocalError):
        m.create_fast_cell()


def test_params_validation_and_consensus_mapping() -> None:
    with pytest.raises(LocalError):
        CircParams(circwindow=50)
    with pytest.raises(LocalError):
        CircParams(build_timeout=0)
    p = CircParams.from_consensus({"circwindow": 5000, "sendme_emit_min_version": 1,
                                   "cbtinitialtimeout": 30_000})
    assert p == CircParams(circwindow=1000, sendme_emit_min_version=1, build_timeout=30.0)
    assert CircParams.from_consensus({}) == CircParams()
    assert CircParams.from_consensus({"circwindow": 1}).circwindow == 100


def test_hopspec_validation() -> None:
    with pytest.raises(LocalError):
        HopSpec(b"short", None, bytes(32), ("10.0.0.1", 1))
    with pytest.raises(LocalError):
        HopSpec(bytes(20), bytes(3), bytes(32), ("10.0.0.1", 1))
    hop = RELAYS[0].hop("10.9.9.9", 443)
    assert hop.chan_target().host == "10.9.9.9" and hop.chan_target().rsa_id == hop.rsa_id


# --- arbitrary input -----------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=509), st.sampled_from(
    [ChanCmd.RELAY, ChanCmd.DESTROY, ChanCmd.CREATED2, ChanCmd.RELAY_EARLY, 77]))
def test_arbitrary_cells_give_events_or_protocol_errors(body: bytes, cmd: int) -> None:
    m, _path = _built(2)
    try:
        m.handle_cell(ChanCell(CIRC, cmd, body.ljust(509, b"\0")))
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=498), st.integers(0, 255), st.integers(0, 3))
def test_arbitrary_relay_messages_from_a_hop(data: bytes, cmd: int, stream_id: int) -> None:
    m, path = _built(3)
    try:
        m.handle_cell(path.backward_raw(2, cmd, stream_id, data))
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_created_bodies(body: bytes) -> None:
    m = _machine()
    m.create_cell(RELAYS[0].hop())
    try:
        m.handle_cell(ChanCell(CIRC, ChanCmd.CREATED2, body))
    except ProtocolError:
        assert m.state is CircState.CREATING
