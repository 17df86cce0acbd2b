"""Onion-service messages, link specifiers and extension fields (gotor.cells.hsmsg, linkspec, ext).

The byte ranges exposed for MACs and signatures are checked with real
cryptography against C tor output: the canned ESTABLISH_INTRO of
cells_relay.json and the INTRODUCE1 of hs_ntor.json (rend-spec-v3 App. G.1).
rend-spec-v3 §0.3: MAC(key, msg) = SHA3-256(htonll(len(key)) | key | msg).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.bytesio import Reader, Writer
from gotor.cells.ext import (
    Extension,
    first_of_type,
    read_extension_list,
    write_extension_list,
)
from gotor.cells.hsmsg import (
    EXT_DOS_PARAMS,
    DosParam,
    EstablishIntro,
    Introduce1,
    Introduce2,
    IntroduceAck,
    IntroducePayload,
    OnionKeyType,
    decode_dos_params,
    encode_dos_params,
)
from gotor.cells.linkspec import (
    LinkSpecEd25519Id,
    LinkSpecIPv4,
    LinkSpecIPv6,
    LinkSpecRsaId,
    LinkSpecUnrecognized,
    decode_link_spec_list,
    encode_link_spec_list,
    link_spec_type,
)
from gotor.cells.relay import RelayCmd
from gotor.cells.relaymsg import decode_relay_msg
from gotor.crypto.primitives import ed25519_public, ed25519_sign, ed25519_verify, sha3_256
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
RELAY = json.loads((VECTORS / "cells_relay.json").read_text())
HS_NTOR = json.loads((VECTORS / "hs_ntor.json").read_text())["vectors"][0]


def hs_mac(key: bytes, msg: bytes) -> bytes:
    return sha3_256(len(key).to_bytes(8, "big") + key + msg)


# --- ESTABLISH_INTRO ----------------------------------------------------------------------------


def test_canned_establish_intro_mac_and_signature() -> None:
    canned = RELAY["establish_intro_canned"]
    body, kh = bytes.fromhex(canned["body"]), bytes.fromhex(canned["circuit_key_KH"])
    msg = decode_relay_msg(RelayCmd.ESTABLISH_INTRO, body)
    assert isinstance(msg, EstablishIntro)
    assert msg.encode() == body
    covered = msg.mac_covered()
    assert body.startswith(covered) and body[len(covered) : len(covered) + 32] == msg.handshake_auth
    assert hs_mac(kh, covered) == msg.handshake_auth
    signed = msg.signed_message()
    assert signed == b"Tor establish-intro cell v1" + body[: len(covered) + 32]
    assert ed25519_verify(msg.auth_key, signed, msg.signature)
    # The ranges are tight: a change anywhere in them breaks the checks.
    other = EstablishIntro(msg.auth_key, (Extension(9, b""),), msg.handshake_auth, msg.signature)
    assert hs_mac(kh, other.mac_covered()) != msg.handshake_auth
    assert not ed25519_verify(msg.auth_key, other.signed_message(), msg.signature)


def test_build_establish_intro_like_a_service() -> None:
    """The build side: MAC over mac_covered(), then sign signed_message()."""
    seed, kh = bytes(range(32)), b"k" * 20
    draft = EstablishIntro(
        ed25519_public(seed), (encode_dos_params(((1, 25), (2, 200))),), bytes(32), bytes(64)
    )
    with_mac = EstablishIntro(
        draft.auth_key, draft.extensions, hs_mac(kh, draft.mac_covered()), bytes(64)
    )
    final = EstablishIntro(
        with_mac.auth_key,
        with_mac.extensions,
        with_mac.handshake_auth,
        ed25519_sign(seed, with_mac.signed_message()),
    )
    decoded = EstablishIntro.decode(final.encode())
    assert decoded == final
    assert hs_mac(kh, decoded.mac_covered()) == decoded.handshake_auth
    assert ed25519_verify(decoded.auth_key, decoded.signed_message(), decoded.signature)


def test_dos_extension_vector() -> None:
    vec = next(v for v in RELAY["vectors"] if v["name"].startswith("ESTABLISH_INTRO with DoS"))
    msg = EstablishIntro.decode(bytes.fromhex(vec["body"]))
    ext = first_of_type(msg.extensions, EXT_DOS_PARAMS)
    assert ext is not None
    params = decode_dos_params(ext.body)
    assert params == ((DosParam.INTRODUCE2_RATE_PER_SEC, 1), (DosParam.INTRODUCE2_BURST_PER_SEC, 2))
    assert encode_dos_params(params) == ext
    with pytest.raises(ProtocolError):
        decode_dos_params(ext.body[:-1])


@pytest.mark.parametrize(
    "hexbody",
    [
        "01" + "0020" + "33" * 32 + "00" + "01" * 32 + "0040" + "15" * 64,  # key type 1
        "02" + "001f" + "33" * 31 + "00" + "01" * 32 + "0040" + "15" * 64,  # 31-byte key
        "02" + "0020" + "33" * 32 + "00" + "01" * 32 + "003f" + "15" * 63,  # 63-byte signature
        "02" + "0020" + "33" * 32 + "00" + "01" * 31,  # MAC cut short
    ],
)
def test_establish_intro_rejects(hexbody: str) -> None:
    with pytest.raises(ProtocolError):
        EstablishIntro.decode(bytes.fromhex(hexbody))


def test_establish_intro_ignores_trailing_bytes() -> None:
    body = bytes.fromhex("02" + "0020" + "33" * 32 + "00" + "01" * 32 + "0040" + "15" * 64)
    assert EstablishIntro.decode(body + b"pad").encode() == body


# --- INTRODUCE1 / INTRODUCE2 ----------------------------------------------------------------------


def test_introduce1_hs_ntor_vector() -> None:
    """The header is H of the hs-ntor vector, and the MAC covers header | encrypted[:-32]."""
    body = bytes.fromhex(HS_NTOR["expected_introduce1_body"])
    msg = decode_relay_msg(RelayCmd.INTRODUCE1, body)
    assert isinstance(msg, Introduce1) and msg.encode() == body
    assert msg.header() == bytes.fromhex(HS_NTOR["intro1_header_H"])
    assert msg.auth_key == bytes.fromhex(HS_NTOR["KP_hs_ipt_sid_auth_key"])
    assert msg.encrypted.startswith(bytes.fromhex(HS_NTOR["client_X"]))
    mac_key = bytes.fromhex(HS_NTOR["MAC_KEY"])
    assert hs_mac(mac_key, msg.header() + msg.encrypted[:-32]) == msg.encrypted[-32:]


def test_introduce2_is_the_same_format_with_its_own_command() -> None:
    body = bytes.fromhex(HS_NTOR["expected_introduce1_body"])
    one, two = Introduce1.decode(body), decode_relay_msg(RelayCmd.INTRODUCE2, body)
    assert isinstance(two, Introduce2) and two.cmd == RelayCmd.INTRODUCE2
    assert two.encode() == body and one != two


def test_introduce_ack_unknown_status_kept() -> None:
    ack = IntroduceAck.decode(bytes.fromhex("0009" + "01" + "0502abcd"))
    assert ack.status == 9 and ack.extensions == (Extension(5, b"\xab\xcd"),)


# --- the INTRODUCE plaintext ----------------------------------------------------------------------


def test_introduce_plaintext_vector() -> None:
    vec = RELAY["introduce_plaintext_payload"]
    data, want = bytes.fromhex(vec["body"]), vec["decoded"]
    payload = IntroducePayload.decode(data)
    assert payload.cookie.hex() == want["rendezvous_cookie"]
    assert len(payload.extensions) == want["n_extensions"]
    assert payload.onion_key_type == want["onion_key_type"] == OnionKeyType.NTOR
    assert payload.onion_key.hex() == want["onion_key"]
    assert [
        {"type": link_spec_type(s), "data": s.body().hex()} for s in payload.link_specs
    ] == want["link_specifiers"]
    assert payload.link_specs[0] == LinkSpecIPv4(IPv4Address("127.0.0.1"), 5002)
    assert payload.padding == bytes(want["padding_len"])
    assert payload.encode() == data


def test_introduce_plaintext_hs_ntor_vector() -> None:
    data = bytes.fromhex(HS_NTOR["intro_plaintext_P"])
    payload = IntroducePayload.decode(data)
    assert payload.extensions == (Extension(1, b""),)
    assert [type(s) for s in payload.link_specs] == [LinkSpecIPv4, LinkSpecRsaId, LinkSpecEd25519Id]
    assert payload.encode() == data
    with pytest.raises(ProtocolError):
        IntroducePayload.decode(data[:40])


# --- link specifiers ------------------------------------------------------------------------------


_LINK_SPEC = st.one_of(
    st.builds(LinkSpecIPv4, st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 0xFFFF)),
    st.builds(LinkSpecIPv6, st.integers(0, 2**128 - 1).map(IPv6Address), st.integers(0, 0xFFFF)),
    st.builds(LinkSpecRsaId, st.binary(min_size=20, max_size=20)),
    st.builds(LinkSpecEd25519Id, st.binary(min_size=32, max_size=32)),
    st.builds(LinkSpecUnrecognized, st.integers(4, 255), st.binary(max_size=255)),
)


@given(st.lists(_LINK_SPEC, max_size=8).map(tuple))
def test_link_spec_list_round_trip(specs: tuple) -> None:  # type: ignore[type-arg]
    assert decode_link_spec_list(encode_link_spec_list(specs)) == specs


@given(st.binary(max_size=300))
def test_link_spec_list_arbitrary(data: bytes) -> None:
    try:
        specs = decode_link_spec_list(data)
    except ProtocolError:
        return
    assert encode_link_spec_list(specs) == data  # every accepted list is canonical


def test_link_spec_details() -> None:
    raw = bytes.fromhex("02" + "01" + "12" + "00" * 15 + "01" + "2329" + "07" + "03" + "616263")
    specs = decode_link_spec_list(raw)
    assert specs == (LinkSpecIPv6(IPv6Address(1), 9001), LinkSpecUnrecognized(7, b"abc"))
    for bad in (
        raw + b"\x00",
        raw[:-1],
        bytes.fromhex("01 02 13") + bytes(19),
        bytes.fromhex("01 03 1f") + bytes(31),
    ):
        with pytest.raises(ProtocolError):
            decode_link_spec_list(bad)
    with pytest.raises(LocalError):
        encode_link_spec_list((LinkSpecIPv4(IPv4Address(1), 70000),))
    with pytest.raises(LocalError):
        encode_link_spec_list((LinkSpecUnrecognized(7, bytes(256)),))
    with pytest.raises(LocalError):
        encode_link_spec_list((LinkSpecRsaId(bytes(20)),) * 256)


# --- extension fields -----------------------------------------------------------------------------

_EXT = st.builds(Extension, st.integers(0, 255), st.binary(max_size=255))


@given(st.lists(_EXT, max_size=10).map(tuple))
def test_extension_list_round_trips(exts: tuple[Extension, ...]) -> None:
    w = Writer()
    write_extension_list(w, exts)
    assert read_extension_list(Reader(w.getvalue())) == exts


def test_extension_rules() -> None:
    exts = (Extension(2, b"a"), Extension(1, b""), Extension(2, b"b"))
    assert first_of_type(exts, 2) == Extension(2, b"a")  # later duplicates are ignored
    assert first_of_type(exts, 3) is None
    with pytest.raises(ProtocolError):
        read_extension_list(Reader(bytes.fromhex("010105aabb")))
    with pytest.raises(ProtocolError):
        read_extension_list(Reader(bytes.fromhex("020100")))
    for bad in ((Extension(256, b""),), (Extension(1, bytes(256)),), (Extension(1, b""),) * 256):
        with pytest.raises(LocalError):
            write_extension_list(Writer(), bad)
    with pytest.raises(LocalError):
        write_extension_list(Writer(), (Extension(-1, b""),))
