"""The initiator's link handshake machine (tor-spec §4), driven with scripted responder bytes."""

from __future__ import annotations

import datetime
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stack_helpers import NOW, cells, fake_relay, responder_flight

from gotor.cells.chan import ChanCell, ChanCmd
from gotor.cells.chanmsg import Netinfo, Versions
from gotor.cells.codec import ChannelCodec
from gotor.errors import ChannelError
from gotor.link.handshake import LINK_VERSIONS, HsState, InitiatorHandshake

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
RELAY = fake_relay("hs-a")
OTHER = fake_relay("hs-b")
PEER = IPv4Address("10.1.2.3")


def _hs(relay=RELAY, *, ed: bool = True, tls_der: bytes | None = None) -> InitiatorHandshake:
    return InitiatorHandshake(
        expected_rsa_id=relay.rsa_id, expected_ed_id=relay.ed_id if ed else None,
        tls_cert_der=relay.tls_der if tls_der is None else tls_der, peer_ip=PEER)


def _fail(hs: InitiatorHandshake, data: bytes, now: float = NOW) -> str:
    with pytest.raises(ChannelError) as info:
        hs.receive(data, now)
    assert hs.state is HsState.FAILED
    return str(info.value)


def test_initial_bytes_offer_versions_4_and_5_with_two_byte_circ_ids() -> None:
    raw = _hs().initial_bytes()
    assert raw == b"\x00\x00\x07\x00\x04\x00\x04\x00\x05"
    assert LINK_VERSIONS == (4, 5)
    cell = ChannelCodec().decode(bytearray(raw))
    assert cell is not None and Versions.decode(cell.body).versions == (4, 5)


def test_good_handshake_proves_both_identities_and_answers_netinfo() -> None:
    hs = _hs()
    flight = responder_flight(RELAY, netinfo_time=int(NOW) + 42) + cells((0, ChanCmd.PADDING, b""))
    reply = hs.receive(flight, NOW)
    assert hs.done and hs.state is HsState.OPEN
    result = hs.result
    assert result.link_version == 5
    assert result.identity.rsa_identity == RELAY.rsa_id
    assert result.identity.ed25519_identity == RELAY.ed_id
    assert result.clock_skew == 42.0
    assert result.our_address is None  # the scripted relay sent 0.0.0.0
    # Our NETINFO: timestamp 0, the relay's address as we see it, no addresses of ours.
    cell = ChannelCodec(5).decode(bytearray(reply))
    assert cell is not None and cell.circ_id == 0 and cell.cmd == ChanCmd.NETINFO
    ours = Netinfo.decode(cell.body)
    assert ours.timestamp == 0 and ours.other_ip == PEER and ours.my_addrs == ()
    assert hs.leftover() == cells((0, ChanCmd.PADDING, b""))
    assert hs.codec.link_version == 5


def test_byte_at_a_time_gives_the_same_result() -> None:
    flight = responder_flight(RELAY)
    hs = _hs()
    replies = b"".join(hs.receive(flight[i : i + 1], NOW) for i in range(len(flight)))
    whole = _hs()
    assert replies == whole.receive(flight, NOW)
    assert hs.result == whole.result


def test_highest_common_version_wins() -> None:
    hs = _hs()
    hs.receive(responder_flight(RELAY, versions=(3, 4), link_version=4), NOW)
    assert hs.result.link_version == 4


def test_no_common_version() -> None:
    hs = _hs()
    text = _fail(hs, ChannelCodec().encode(Versions((3,)).to_cell()))
    assert "no common link protocol version" in text and "relay offers 3" in text


def test_rsa_identity_mismatch_is_refused_with_both_ids() -> None:
    hs = InitiatorHandshake(expected_rsa_id=OTHER.rsa_id, tls_cert_der=RELAY.tls_der,
                            peer_ip=PEER)
    text = _fail(hs, responder_flight(RELAY))
    assert "relay identity mismatch" in text
    assert OTHER.rsa_id.hex().upper() in text and RELAY.rsa_id.hex().upper() in text


def test_ed25519_identity_mismatch() -> None:
    hs = InitiatorHandshake(expected_rsa_id=RELAY.rsa_id, expected_ed_id=OTHER.ed_id,
                            tls_cert_der=RELAY.tls_der, peer_ip=PEER)
    assert "expected Ed25519 identity" in _fail(hs, responder_flight(RELAY))


def test_without_an_expected_ed_id_any_proven_one_is_accepted() -> None:
    hs = _hs(ed=False)
    hs.receive(responder_flight(RELAY), NOW)
    assert hs.result.identity.ed25519_identity == RELAY.ed_id


def _tamper(cert_type: int, edit) -> list[tuple[int, bytes]]:  # type: ignore[no-untyped-def]
    return [(t, edit(b) if t == cert_type else b) for t, b in RELAY.certs()]


def test_bad_signature_is_refused() -> None:
    certs = _tamper(4, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    assert "CERTS cell rejected" in _fail(_hs(), responder_flight(RELAY, certs=certs))


def test_expired_certificate_is_refused() -> None:
    old = RELAY.certs(now=NOW - 90 * 86400)
    text = _fail(_hs(), responder_flight(RELAY, certs=old))
    assert "CERTS cell rejected" in text and "expired" in text


def test_certs_for_another_tls_certificate_are_refused() -> None:
    text = _fail(_hs(tls_der=b"the certificate this TLS session really used"),
                 responder_flight(RELAY))
    assert "does not certify this TLS certificate" in text


def test_missing_certificate_type() -> None:
    certs = [(t, b) for t, b in RELAY.certs() if t != 7]
    assert "no certificate of type 7" in _fail(_hs(), responder_flight(RELAY, certs=certs))


def _split_flight() -> tuple[bytes, bytes, bytes, bytes]:
    """VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO as separate byte strings."""
    flight = bytearray(responder_flight(RELAY))
    pre, codec = ChannelCodec(), ChannelCodec(5)
    parts, before = [], len(flight)
    for c in (pre, codec, codec, codec):
        c.decode(flight)
        parts.append(bytes(responder_flight(RELAY)[sum(map(len, parts)) : before - len(flight)]))
    return tuple(parts)  # type: ignore[return-value]


VERS, CERTS, CHALLENGE, NETINFO = _split_flight()


def test_parts_reassemble() -> None:
    assert VERS + CERTS + CHALLENGE + NETINFO == responder_flight(RELAY)


def test_netinfo_before_certs() -> None:
    assert "unexpected NETINFO cell while waiting for CERTS" in _fail(_hs(), VERS + NETINFO)


def test_second_auth_challenge() -> None:
    assert "second AUTH_CHALLENGE" in _fail(_hs(), VERS + CERTS + CHALLENGE + CHALLENGE)


def test_auth_challenge_is_optional_and_vpadding_may_intervene() -> None:
    vpad = cells((0, ChanCmd.VPADDING, b"xyz"))
    late_versions = cells((0, ChanCmd.VERSIONS, b"\x00\x05"))
    hs = _hs()
    hs.receive(VERS + vpad + CERTS + late_versions + vpad + NETINFO, NOW)
    assert hs.done


def test_vpadding_before_versions_is_allowed() -> None:
    hs = _hs()
    pre = ChannelCodec()
    hs.receive(pre.encode(ChanCell(0, ChanCmd.VPADDING, b"ab"))
               + pre.encode(ChanCell(0, ChanCmd.AUTHORIZE, b"")) + responder_flight(RELAY), NOW)
    assert hs.done


def test_fixed_length_cell_during_handshake_fails() -> None:
    assert "unexpected PADDING cell" in _fail(_hs(), VERS + cells((0, ChanCmd.PADDING, b"")))


def test_garbage_before_versions_fails() -> None:
    assert "link handshake failed" in _fail(_hs(), b"GET / HTTP/1.0\r\n\r\n")


def test_garbage_mid_handshake_fails() -> None:
    text = _fail(_hs(), VERS + cells((0, ChanCmd.CERTS, b"\x02\x01\x00")))
    assert text.startswith("link handshake failed: ") and "CERTS" in text


def test_later_malformed_versions_cells_are_ignored() -> None:
    hs = _hs()
    hs.receive(VERS + cells((0, ChanCmd.VERSIONS, b"odd")) + CERTS + NETINFO, NOW)
    assert hs.done


def test_unknown_variable_cell_mid_handshake_fails() -> None:
    assert "unexpected command 200 cell" in _fail(_hs(), VERS + cells((0, 200, b"??")))


def test_eof_reports_what_was_missing() -> None:
    hs = _hs()
    hs.receive(VERS + CERTS + CHALLENGE, NOW)
    err = hs.eof()
    assert "waiting for NETINFO" in str(err) and "middle of a cell" not in str(err)
    assert hs.state is HsState.FAILED


def test_eof_mid_cell() -> None:
    hs = _hs()
    hs.receive(VERS + CERTS[:100], NOW)
    assert "in the middle of a cell (waiting for CERTS)" in str(hs.eof())


def test_zero_netinfo_time_gives_no_skew() -> None:
    hs = _hs()
    hs.receive(responder_flight(RELAY, netinfo_time=0), NOW)
    assert hs.result.clock_skew is None


def test_receive_after_open_or_failure_is_refused() -> None:
    hs = _hs()
    hs.receive(responder_flight(RELAY), NOW)
    with pytest.raises(ChannelError, match="already open"):
        hs.receive(b"", NOW)
    with pytest.raises(ChannelError, match="not completed"):
        _ = _hs().result


def test_endless_vpadding_is_cut_off() -> None:
    pad = cells((0, ChanCmd.VPADDING, bytes(60000)))
    hs = _hs()
    hs.receive(VERS, NOW)
    with pytest.raises(ChannelError, match="too much data"):
        hs.receive(pad * 5, NOW)


def test_truncation_at_every_offset_never_completes_or_crashes() -> None:
    flight = responder_flight(RELAY)
    for cut in range(0, len(flight), 3):
        hs = _hs()
        assert hs.receive(flight[:cut], NOW) == b""
        assert not hs.done
        assert isinstance(hs.eof(), ChannelError)


def test_real_chutney_certs_cell() -> None:
    vec = json.loads((VECTORS / "certs.json").read_text())
    body = bytes.fromhex(vec["certs_cell"]["body"])
    now = datetime.datetime.fromisoformat(
        vec["notional_time_utc"]).timestamp()
    pairs = []
    pos = 1
    for _ in range(body[0]):
        length = int.from_bytes(body[pos + 1 : pos + 3], "big")
        pairs.append((body[pos], body[pos + 3 : pos + 3 + length]))
        pos += 3 + length
    tls = dict(pairs)[1]
    rsa_id = bytes.fromhex(vec["certs_cell"]["expect"]["expected_from_our_recomputation"]
                           ["rsa_identity_fingerprint_of_type2_cert_key"])
    hs = InitiatorHandshake(expected_rsa_id=rsa_id, tls_cert_der=tls, peer_ip=None)
    codec = ChannelCodec(4)
    data = (ChannelCodec().encode(Versions((3, 4)).to_cell())
            + codec.encode(ChanCell(0, ChanCmd.CERTS, body))
            + codec.encode(Netinfo.from_ips(int(now), None).to_cell()))
    reply = hs.receive(data, now)
    assert hs.result.identity.rsa_identity == rsa_id and hs.result.link_version == 4
    cell = codec.decode(bytearray(reply))
    assert cell is not None and Netinfo.decode(cell.body).other_ip is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_versions_fail_cleanly(data: bytes) -> None:
    hs = _hs()
    hs.receive(VERS, NOW)
    try:
        hs.receive(data, NOW)
    except ChannelError:
        assert hs.state is HsState.FAILED
    else:
        assert hs.state in (HsState.AWAIT_CERTS, HsState.AWAIT_NETINFO)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_first_bytes_fail_cleanly(data: bytes) -> None:
    hs = _hs()
    try:
        hs.receive(data, NOW)
    except ChannelError:
        return
    assert not hs.done
