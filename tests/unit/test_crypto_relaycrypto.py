"""tor1 relay-cell crypto (tor-spec §5.5, §6.1): arti/C-tor vector, both ends, SENDME digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto.kdf import ShakeStream
from gotor.crypto.primitives import aes_ctr
from gotor.crypto.relaycrypto import (
    PAYLOAD_LEN,
    ClientCircuitCrypto,
    RelayHopCrypto,
    Tor1Keys,
)
from gotor.errors import LocalError, ProtocolError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vectors"
V = json.loads((VECTORS / "relay_crypto_tor1.json").read_text())
HOP_KM = [bytes.fromhex(h) for h in V["hop_key_material_hex"]]
EXPECTED = {e["cell_index"]: bytes.fromhex(e["ciphertext"]) for e in V["expected_ciphertexts"]}


def _vector_cells() -> list[bytes]:
    """The 51 plaintext cells of the vector's procedure."""
    xof = ShakeStream(bytes.fromhex(V["seed_hex"]))
    cells = []
    for _ in range(51):
        body = bytearray(PAYLOAD_LEN)
        body[0] = 2
        body[3:5] = (1).to_bytes(2, "big")
        body[9:11] = (498).to_bytes(2, "big")
        body[11:] = xof.read(498)
        cells.append(bytes(body))
    return cells


def _circuit(materials: list[bytes]) -> tuple[ClientCircuitCrypto, list[RelayHopCrypto]]:
    client = ClientCircuitCrypto()
    for km in materials:
        client.add_hop(km)
    return client, [RelayHopCrypto(km) for km in materials]


def _km(label: bytes) -> bytes:
    return hashlib.shake_256(label).digest(92)


def _payload(seed: bytes, cmd: int = 2) -> bytes:
    body = bytearray(hashlib.shake_256(seed).digest(PAYLOAD_LEN))
    body[0] = cmd
    return bytes(body)


def _sealed_view(payload: bytes, digest4: bytes) -> bytes:
    return payload[:1] + b"\0\0" + payload[3:5] + digest4 + payload[9:]


def test_key_material_layout() -> None:
    keys = Tor1Keys.from_material(bytes(range(92)))
    assert (keys.df, keys.db, keys.kf, keys.kb) == (
        bytes(range(20)), bytes(range(20, 40)), bytes(range(40, 56)), bytes(range(56, 72))
    )
    with pytest.raises(LocalError):
        Tor1Keys.from_material(bytes(71))


def test_vector_outbound_ciphertexts() -> None:
    client, _ = _circuit(HOP_KM)
    for n, cell in enumerate(_vector_cells()):
        out = client.encrypt_outbound(cell, 2)
        if n in EXPECTED:
            assert out == EXPECTED[n], f"cell {n}"


def test_vector_relays_recognize_at_the_third_hop() -> None:
    client, relays = _circuit(HOP_KM)
    for n, cell in enumerate(_vector_cells()):
        wire = client.encrypt_outbound(cell, 2)
        first, for_first = relays[0].decrypt_forward(wire)
        second, for_second = relays[1].decrypt_forward(first)
        plain, for_third = relays[2].decrypt_forward(second)
        assert (for_first, for_second, for_third) == (False, False, True)
        assert plain[:5] + plain[9:] == cell[:5] + cell[9:]
        # Independent check of §6.1: the digest field is the first 4 bytes of the running
        # SHA-1 over every cell so far, each taken with its digest field zeroed.
        assert plain[5:9] == client.last_digest_sent(2)[:4]
        assert relays[2].last_digest_received == client.last_digest_sent(2)
        if n in EXPECTED:
            assert wire == EXPECTED[n]


def test_running_digest_matches_an_independent_sha1() -> None:
    client, _ = _circuit(HOP_KM)
    running = hashlib.sha1(HOP_KM[2][:20])
    for cell in _vector_cells()[:5]:
        client.encrypt_outbound(cell, 2)
        running.update(cell)  # the vector's cells have zero recognized and digest fields
        assert client.last_digest_sent(2) == running.digest()


def test_backward_attribution_and_digests() -> None:
    client, relays = _circuit([_km(b"a"), _km(b"b"), _km(b"c")])
    for origin in (2, 0, 1, 2, 2, 0):
        payload = _payload(bytes([origin, len(relays)]), cmd=4)
        cell = relays[origin].encrypt_backward_originate(payload)
        for j in range(origin - 1, -1, -1):
            cell = relays[j].encrypt_backward_relay(cell)
        hop, plain = client.decrypt_inbound(cell)
        assert hop == origin
        assert plain == _sealed_view(payload, relays[origin].last_digest_sent[:4])
        assert client.last_digest_received(origin) == relays[origin].last_digest_sent


def test_unrecognized_inbound_cell_is_a_protocol_error() -> None:
    client, relays = _circuit([_km(b"a"), _km(b"b")])
    cell = bytearray(relays[1].encrypt_backward_originate(_payload(b"x")))
    cell[20] ^= 1  # corrupt the body: the digest no longer matches anywhere
    cell = bytearray(relays[0].encrypt_backward_relay(bytes(cell)))
    with pytest.raises(ProtocolError, match="not recognized"):
        client.decrypt_inbound(bytes(cell))


def test_wrong_length_inbound_is_a_protocol_error() -> None:
    client, relays = _circuit([_km(b"a")])
    with pytest.raises(ProtocolError):
        client.decrypt_inbound(bytes(508))
    with pytest.raises(ProtocolError):
        relays[0].decrypt_forward(bytes(510))
    with pytest.raises(ProtocolError):
        relays[0].encrypt_backward_relay(bytes(1))


def test_local_misuse() -> None:
    client, relays = _circuit([_km(b"a")])
    with pytest.raises(LocalError):
        client.encrypt_outbound(_payload(b"p"), 1)
    with pytest.raises(LocalError):
        client.encrypt_outbound(bytes(100), 0)
    with pytest.raises(LocalError):
        relays[0].encrypt_backward_originate(bytes(100))
    assert client.n_hops == 1
    assert client.last_digest_sent(0) == b"" and relays[0].last_digest_sent == b""


# A hop whose AES-128-CTR keystream starts with zero bytes at offsets 1..2, found by a
# search over labels: a cell passing *through* the previous hop then has 'recognized'
# == 0 there (the 2^-16 false positive of tor-spec §6.1), so the digest check runs, fails,
# and must leave that hop's running digest untouched.
_FP_KEY = hashlib.shake_256(b"false-positive hop 68165").digest(72)[56:72]
_FP_KM = _km(b"fp")[:40] + _FP_KEY + _FP_KEY


def test_false_positive_key_has_the_property() -> None:
    assert aes_ctr(_FP_KEY, bytes(3))[1:3] == b"\0\0"


def test_failed_digest_check_leaves_client_digest_unchanged() -> None:
    client, relays = _circuit([_km(b"h0"), _FP_KM])
    cell = relays[0].encrypt_backward_relay(relays[1].encrypt_backward_originate(_payload(b"1")))
    assert client.decrypt_inbound(cell)[0] == 1  # hop 0 saw recognized == 0, digest wrong
    cell = relays[0].encrypt_backward_originate(_payload(b"2"))
    assert client.decrypt_inbound(cell)[0] == 0  # so hop 0's digest must still be intact


def test_failed_digest_check_leaves_relay_digest_unchanged() -> None:
    client, relays = _circuit([_km(b"h0"), _FP_KM])
    passing, ours = relays[0].decrypt_forward(client.encrypt_outbound(_payload(b"1"), 1))
    assert not ours and passing[1:3] == b"\0\0"
    assert relays[1].decrypt_forward(passing)[1]
    assert relays[0].decrypt_forward(client.encrypt_outbound(_payload(b"2"), 0))[1]
    assert relays[0].last_digest_received == client.last_digest_sent(0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=72, max_size=92), min_size=1, max_size=4),
    st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.binary(max_size=8)), max_size=12),
)
def test_round_trip_both_directions(materials: list[bytes],
                                    ops: list[tuple[bool, int, bytes]]) -> None:
    client, relays = _circuit(materials)
    for outbound, target, seed in ops:
        hop = target % len(relays)
        payload = _payload(seed)
        if outbound:
            cell = client.encrypt_outbound(payload, hop)
            for j in range(hop + 1):
                cell, ours = relays[j].decrypt_forward(cell)
                assert ours == (j == hop)
            assert cell == _sealed_view(payload, client.last_digest_sent(hop)[:4])
            assert relays[hop].last_digest_received == client.last_digest_sent(hop)
        else:
            cell = relays[hop].encrypt_backward_originate(payload)
            for j in range(hop - 1, -1, -1):
                cell = relays[j].encrypt_backward_relay(cell)
            got_hop, plain = client.decrypt_inbound(cell)
            assert got_hop == hop
            assert plain == _sealed_view(payload, relays[hop].last_digest_sent[:4])
            assert client.last_digest_received(hop) == relays[hop].last_digest_sent
