"""Channel framing (gotor.cells.codec) and channel messages (gotor.cells.chanmsg).

Vectors: tests/vectors/vectors/cells_channel.json (Arti's testvec_chanmsg.rs,
captured from C tor) and the CERTS cell of certs.json.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.cells.chan import CELL_BODY_LEN, ChanCell, ChanCmd, circ_id_len, is_variable_length
from gotor.cells.chanmsg import (
    AuthChallenge,
    Authenticate,
    Authorize,
    Certs,
    CertType,
    ChanMsg,
    Create,
    Create2,
    Created,
    Created2,
    CreatedFast,
    CreateFast,
    Destroy,
    Netinfo,
    NetinfoAddr,
    Padding,
    PaddingNegotiate,
    PaddingNegotiateCmd,
    Relay,
    RelayEarly,
    Unrecognized,
    Versions,
    Vpadding,
    decode_cell,
    decode_chan_msg,
)
from gotor.cells.codec import ChannelCodec
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
CHANNEL = json.loads((VECTORS / "cells_channel.json").read_text())["vectors"]
CERTS_CELL = json.loads((VECTORS / "certs.json").read_text())["certs_cell"]


def padded(body: bytes) -> bytes:
    return body + bytes(CELL_BODY_LEN - len(body))


def wire(circ_id: int, cmd: int, body: bytes, cid_len: int) -> bytes:
    head = circ_id.to_bytes(cid_len, "big") + bytes([cmd])
    if is_variable_length(cmd):
        return head + len(body).to_bytes(2, "big") + body
    return head + padded(body)


# --- vectors -------------------------------------------------------------------------------


def _check_fields(msg: ChanMsg, want: dict[str, Any]) -> None:
    """Compare a decoded message with the vector's "decoded" description."""
    checks = {
        "versions": lambda m: list(m.versions),
        "challenge": lambda m: m.challenge.hex().upper(),
        "methods": lambda m: list(m.methods),
        "auth_type": lambda m: m.auth_type,
        "auth_len": lambda m: len(m.authentication),
        "authentication_starts_with_ascii": lambda m: m.authentication[:8].decode(),
        "handshake_len": lambda m: len(m.handshake),
        "handshake_type": lambda m: m.handshake_type,
        "handshake_data": lambda m: m.handshake.hex(),
        "X": lambda m: m.x.hex(),
        "Y": lambda m: m.y.hex(),
        "KH": lambda m: m.kh.hex(),
        "reason": lambda m: m.reason,
        "timestamp": lambda m: m.timestamp,
        "other_address": lambda m: None if m.other_ip is None else str(m.other_ip),
        "my_addresses": lambda m: [str(ip) for ip in m.my_ips],
        "len": lambda m: m.length,
        "version": lambda m: 0,  # decode accepts version 0 only
        "command": lambda m: {1: "stop(1)", 2: "start(2)"}[m.command],
        "ito_low_ms": lambda m: m.ito_low_ms,
        "ito_high_ms": lambda m: m.ito_high_ms,
        "ascii": lambda m: m.body[: len(want["ascii"])].decode(),
    }
    for key, value in want.items():
        assert checks[key](msg) == value, key


@pytest.mark.parametrize("vec", CHANNEL, ids=[v["name"] for v in CHANNEL])
def test_channel_vector(vec: dict[str, Any]) -> None:
    body = bytes.fromhex(vec["body"])
    decoded = vec["decoded"]
    if isinstance(decoded, str) and decoded.startswith("error"):
        with pytest.raises(ProtocolError):
            decode_chan_msg(vec["command"], body)
        return
    msg = decode_chan_msg(vec["command"], body)
    assert msg.cmd == vec["command"]
    if isinstance(decoded, dict):
        _check_fields(msg, decoded)
    if vec["fixed_length"]:
        # Fixed-length cells are compared padded; the padded body decodes the same.
        assert padded(msg.encode()) == padded(body)
        from_wire = decode_chan_msg(vec["command"], padded(body))
        if msg.cmd in (ChanCmd.RELAY, ChanCmd.RELAY_EARLY):  # opaque: kept as received
            assert from_wire.encode() == padded(body)
        else:
            assert from_wire == msg
    else:
        assert msg.encode() == body


@pytest.mark.parametrize("vec", CHANNEL, ids=[v["name"] for v in CHANNEL])
@pytest.mark.parametrize("link", [3, 4, 5])
def test_channel_vector_framed(vec: dict[str, Any], link: int) -> None:
    """Each vector as a full cell on the wire: framing round-trips byte-exactly."""
    body = bytes.fromhex(vec["body"])
    codec = ChannelCodec(link)
    raw = wire(7, vec["command"], body, circ_id_len(link))
    buf = bytearray(raw + b"\xaa")
    cell = codec.decode(buf)
    assert cell is not None and buf == b"\xaa"
    assert (cell.circ_id, cell.cmd) == (7, vec["command"])
    assert cell.body == (body if is_variable_length(cell.cmd) else padded(body))
    assert codec.encode(cell) == raw


def test_certs_cell_vector() -> None:
    msg = decode_chan_msg(CERTS_CELL["command"], bytes.fromhex(CERTS_CELL["body"]))
    assert isinstance(msg, Certs)
    expect = CERTS_CELL["expect"]
    assert len(msg.certs) == expect["n_certs"]
    assert [t for t, _ in msg.certs] == expect["cert_types_in_order"]
    assert [c.hex() for _, c in msg.certs] == expect["cert_bodies_in_order"]
    assert msg.of_type(CertType.IDENTITY_V_SIGNING) == [
        bytes.fromhex(expect["cert_bodies_in_order"][2])
    ]
    assert msg.of_type(CertType.AUTH_X509) == []
    assert msg.encode() == bytes.fromhex(CERTS_CELL["body"])


# --- framing ---------------------------------------------------------------------------------


def test_circ_id_width() -> None:
    assert [circ_id_len(v) for v in (None, 3, 4, 5)] == [2, 2, 4, 4]
    for bad in (1, 2, 6):
        with pytest.raises(LocalError):
            circ_id_len(bad)
        with pytest.raises(LocalError):
            ChannelCodec(bad)


def test_variable_length_commands() -> None:
    assert is_variable_length(ChanCmd.VERSIONS)
    assert all(is_variable_length(c) for c in range(128, 256))
    assert not any(is_variable_length(c) for c in range(128) if c != ChanCmd.VERSIONS)


def test_before_versions_only_opening_cells() -> None:
    codec = ChannelCodec()
    versions = wire(0, ChanCmd.VERSIONS, bytes.fromhex("000300040005"), 2)
    buf = bytearray(versions)
    cell = codec.decode(buf)
    assert cell == ChanCell(0, ChanCmd.VERSIONS, bytes.fromhex("000300040005"))
    assert decode_cell(cell) == Versions((3, 4, 5))
    for cmd in (ChanCmd.VPADDING, ChanCmd.AUTHORIZE):  # tor-spec §4: also allowed first
        assert codec.decode(bytearray(wire(0, cmd, b"xy", 2))) == ChanCell(0, cmd, b"xy")
    for cmd in (ChanCmd.CERTS, ChanCmd.NETINFO, ChanCmd.PADDING):
        with pytest.raises(ProtocolError):
            codec.decode(bytearray(wire(0, cmd, b"", 2)[:3]))
    with pytest.raises(LocalError):
        codec.encode(ChanCell(0, ChanCmd.PADDING, b""))


def test_switching_width_after_versions() -> None:
    """The peer's VERSIONS has 2-byte circ IDs; what follows uses the negotiated width."""
    codec = ChannelCodec()
    stream = wire(0, 7, b"\x00\x04", 2) + wire(0, 129, b"\x00", 4) + wire(5, 4, b"\x01", 4)
    buf = bytearray(stream)
    first = codec.decode(buf)
    assert first is not None and first.cmd == ChanCmd.VERSIONS
    codec.link_version = 4
    assert codec.link_version == 4
    second, third = codec.decode(buf), codec.decode(buf)
    assert second == ChanCell(0, ChanCmd.CERTS, b"\x00")
    assert third == ChanCell(5, ChanCmd.DESTROY, padded(b"\x01"))
    assert buf == b"" and codec.decode(buf) is None


def _stream(link: int) -> tuple[bytes, list[ChanCell]]:
    cid = circ_id_len(link)
    cells = [
        ChanCell(0, ChanCmd.VPADDING, b""),
        ChanCell(0x1234, ChanCmd.RELAY, padded(b"relay")),
        ChanCell(0, ChanCmd.CERTS, b"\x00" * 300),
        ChanCell(1, 200, b"unknown var"),
        ChanCell(2, 60, padded(b"unknown fixed")),
    ]
    return b"".join(wire(c.circ_id, c.cmd, c.body, cid) for c in cells), cells


@pytest.mark.parametrize("link", [3, 4, 5])
def test_byte_at_a_time(link: int) -> None:
    raw, cells = _stream(link)
    codec, buf, got = ChannelCodec(link), bytearray(), []
    for i in range(len(raw)):
        buf.append(raw[i])
        cell = codec.decode(buf)
        if cell is not None:
            got.append(cell)
            assert buf == b""  # a cell is returned exactly when its last byte arrives
    assert got == cells
    assert b"".join(codec.encode(c) for c in got) == raw


@pytest.mark.parametrize("link", [None, 3, 4, 5])
def test_every_truncation_is_incomplete(link: int | None) -> None:
    codec = ChannelCodec(link)
    cid = circ_id_len(link)
    cells = [wire(9, ChanCmd.VERSIONS, b"\x00\x03\x00\x04", cid)]
    if link is not None:
        cells += [wire(9, ChanCmd.CREATE2, b"\x00\x02\x00\x01x", cid), wire(1, 131, b"a" * 40, cid)]
    for raw in cells:
        for cut in range(len(raw)):
            buf = bytearray(raw[:cut])
            assert codec.decode(buf) is None
            assert buf == raw[:cut]  # nothing consumed


def test_encode_rejects_misuse() -> None:
    codec3, codec4 = ChannelCodec(3), ChannelCodec(4)
    with pytest.raises(LocalError):
        codec3.encode(ChanCell(0x10000, ChanCmd.RELAY, b""))
    assert len(codec4.encode(ChanCell(0xFFFFFFFF, ChanCmd.RELAY, b""))) == 514
    with pytest.raises(LocalError):
        codec4.encode(ChanCell(-1, ChanCmd.RELAY, b""))
    with pytest.raises(LocalError):
        codec4.encode(ChanCell(1, ChanCmd.RELAY, bytes(CELL_BODY_LEN + 1)))
    with pytest.raises(LocalError):
        codec4.encode(ChanCell(1, ChanCmd.VPADDING, bytes(0x10000)))
    with pytest.raises(LocalError):
        codec4.encode(ChanCell(1, 256, b""))
    assert len(codec3.encode(ChanCell(1, ChanCmd.VPADDING, bytes(0xFFFF)))) == 3 + 2 + 0xFFFF


def test_largest_variable_cell_frames() -> None:
    raw = wire(3, ChanCmd.VPADDING, bytes(0xFFFF), 4)
    buf = bytearray(raw)
    assert ChannelCodec(5).decode(buf) == ChanCell(3, ChanCmd.VPADDING, bytes(0xFFFF))


@settings(max_examples=300)
@given(st.sampled_from([None, 3, 4, 5]), st.binary(max_size=1200))
def test_codec_arbitrary_bytes(link: int | None, data: bytes) -> None:
    """Arbitrary input yields cells, then None (incomplete), or ProtocolError; nothing else."""
    codec, buf = ChannelCodec(link), bytearray(data)
    try:
        while (cell := codec.decode(buf)) is not None:
            assert 0 <= cell.cmd <= 255
            decode_cell_or_error(cell)
    except ProtocolError:
        pass


def decode_cell_or_error(cell: ChanCell) -> None:
    try:
        decode_cell(cell)
    except ProtocolError:
        pass


_U16 = st.integers(0, 0xFFFF)


@given(
    st.sampled_from([3, 4, 5]),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.binary(max_size=600),
)
def test_codec_round_trip(link: int, circ_id: int, cmd: int, body: bytes) -> None:
    codec = ChannelCodec(link)
    if not is_variable_length(cmd):
        body = body[:CELL_BODY_LEN]
    raw = codec.encode(ChanCell(circ_id, cmd, body))
    buf = bytearray(raw)
    cell = codec.decode(buf)
    assert buf == b"" and cell is not None
    assert cell == ChanCell(circ_id, cmd, body if is_variable_length(cmd) else padded(body))


# --- messages --------------------------------------------------------------------------------


_IPS = st.one_of(
    st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 2**128 - 1).map(IPv6Address)
)
_NETINFO_ADDR = st.one_of(
    st.builds(NetinfoAddr, st.integers(0, 255), st.binary(max_size=20)),
    _IPS.map(NetinfoAddr.from_ip),
)
CHAN_MSGS = st.one_of(
    st.just(Padding()),
    st.builds(Vpadding, st.integers(0, 1000)),
    st.builds(Versions, st.lists(_U16, max_size=10).map(tuple)),
    st.builds(
        Certs,
        st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=6).map(tuple),
    ),
    st.builds(
        AuthChallenge, st.binary(min_size=32, max_size=32), st.lists(_U16, max_size=6).map(tuple)
    ),
    st.builds(Authenticate, _U16, st.binary(max_size=300)),
    st.builds(Authorize, st.binary(max_size=100)),
    st.builds(
        Netinfo,
        st.integers(0, 2**32 - 1),
        _NETINFO_ADDR,
        st.lists(_NETINFO_ADDR, max_size=5).map(tuple),
    ),
    st.builds(Create, st.binary(min_size=186, max_size=186)),
    st.builds(Created, st.binary(min_size=148, max_size=148)),
    st.builds(CreateFast, st.binary(min_size=20, max_size=20)),
    st.builds(
        CreatedFast, st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20)
    ),
    st.builds(Create2, _U16, st.binary(max_size=505)),
    st.builds(Created2, st.binary(max_size=507)),
    st.builds(Destroy, st.integers(0, 255)),
    st.builds(PaddingNegotiate, st.integers(0, 255), _U16, _U16),
    st.builds(Relay, st.binary(min_size=509, max_size=509)),
    st.builds(RelayEarly, st.binary(min_size=509, max_size=509)),
    st.builds(
        Unrecognized,
        st.integers(0, 255).filter(lambda c: c not in ChanCmd._value2member_map_),
        st.binary(max_size=50),
    ),
)


@given(CHAN_MSGS, st.integers(0, 0xFFFF))
def test_message_round_trip(msg: ChanMsg, circ_id: int) -> None:
    assert decode_chan_msg(msg.cmd, msg.encode()) == msg
    cell = msg.to_cell(circ_id)
    assert (cell.circ_id, cell.cmd, cell.body) == (circ_id, msg.cmd, msg.encode())


@settings(max_examples=400)
@given(st.integers(0, 255), st.binary(max_size=600))
def test_decode_arbitrary_body(cmd: int, body: bytes) -> None:
    """Arbitrary bodies: a value that re-encodes to itself, or ProtocolError."""
    try:
        msg = decode_chan_msg(cmd, body)
    except ProtocolError:
        return
    assert msg.cmd == cmd
    assert decode_chan_msg(cmd, msg.encode()) == msg


@pytest.mark.parametrize("vec", CHANNEL, ids=[v["name"] for v in CHANNEL])
def test_truncated_bodies(vec: dict[str, Any]) -> None:
    """Every prefix of a vector body decodes or raises ProtocolError, nothing else."""
    body = bytes.fromhex(vec["body"])
    for cut in range(len(body)):
        try:
            decode_chan_msg(vec["command"], body[:cut])
        except ProtocolError:
            pass


def test_versions_must_be_even() -> None:
    with pytest.raises(ProtocolError):
        Versions.decode(b"\x00\x03\x00")
    assert Versions.decode(b"") == Versions(())


def test_truncated_fields_are_protocol_errors() -> None:
    cases = [
        (Certs, "0101000a" + "00" * 9),
        (AuthChallenge, "00" * 32 + "0002" + "0001"),
        (Authenticate, "00030010" + "00" * 15),
        (Netinfo, "00000000" + "0404" + "7f0000"),
        (Create2, "00020054" + "00" * 83),
        (CreatedFast, "00" * 39),
        (Destroy, ""),
        (PaddingNegotiate, "0002"),
    ]
    for cls, hexbody in cases:
        with pytest.raises(ProtocolError):
            cls.decode(bytes.fromhex(hexbody))


def test_netinfo_helpers() -> None:
    msg = Netinfo.from_ips(5, ip_address("::1"), (ip_address("10.0.0.1"), ip_address("::2")))
    assert msg.other_ip == ip_address("::1")
    assert msg.my_ips == (ip_address("10.0.0.1"), ip_address("::2"))
    anon = Netinfo.from_ips(0, None)
    assert anon.other_addr == NetinfoAddr(4, bytes(4)) and anon.other_ip is None
    assert anon.encode() == bytes.fromhex("00000000040400000000" + "00")
    assert NetinfoAddr(4, bytes(16)).ip is None and NetinfoAddr(6, bytes(4)).ip is None
    assert NetinfoAddr(9, b"").ip is None


def test_unknown_values_are_kept() -> None:
    assert Destroy.decode(b"\x63").reason == 99
    assert PaddingNegotiate.decode(bytes.fromhex("000700010002")).command == 7
    assert (
        PaddingNegotiate.decode(bytes.fromhex("000200010002")).command is PaddingNegotiateCmd.START
    )
    assert decode_chan_msg(77, b"abc") == Unrecognized(77, b"abc")
    assert decode_chan_msg(77, b"abc").to_cell(3) == ChanCell(3, 77, b"abc")


def test_encode_misuse_is_local_error() -> None:
    for msg in (
        AuthChallenge(b"short", ()),
        CreateFast(b"x"),
        Create(b"x" * 10),
        Versions((0x10000,)),
        Destroy(256),
        Authenticate(1, bytes(0x10000)),
        Netinfo(0, NetinfoAddr(4, bytes(300))),
    ):
        with pytest.raises(LocalError):
            msg.encode()
