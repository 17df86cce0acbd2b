"""Relay-cell cryptography "tor1": per-hop AES-128-CTR and running SHA-1 digests.

tor-spec §5.5 (routing relay cells), §6.1 (the 'recognized' and 'digest' fields).

Every hop shares with the client, from its handshake's key material::

    Df (20) | Db (20) | Kf (16) | Kb (16) [| KH (20), the onion-service nonce]

The same layout comes out of every handshake gotor speaks: KDF-TOR after KH for
CREATE_FAST (tor-spec §5.2.1), HKDF-SHA256 for ntor (§5.2.2), and the ntor-v3
keystream after its ENC_KEY (proposal 332 §A.2).  Only the first 72 bytes matter here.

* Forward (client -> relay): AES-128-CTR keyed with Kf, zero IV, one keystream for the
  life of the circuit; running digest SHA-1 seeded with Df.
* Backward (relay -> client): likewise with Kb and Db.

A cell is *recognized* at a hop when, after that hop's decryption, its 'recognized'
field is zero and its 'digest' field equals the first 4 bytes of the hop's running
digest updated with the whole 509-byte payload taken with the digest field zeroed.
A digest that does not match must leave the running digest untouched (§6.1), hence the
``copy()`` before every check.  The full 20-byte running digest after each cell is
kept for authenticated SENDMEs (tor-spec §7.3-7.4, proposal 289).

This is the hot path of the client (goal: >= 80k cells/s through 3 layers on one
core), so per-cell work is kept to hashlib and AES-CTR calls on whole payloads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gotor.crypto.primitives import AesCtr, constant_time_eq
from gotor.errors import LocalError, ProtocolError

# The only relay-cell layout this layer needs (tor-spec §6.1): command at 0,
# 'recognized' at 1..3, stream id at 3..5, digest at 5..9, length at 9..11, data at 11.
# Defined here rather than imported so that crypto never depends on gotor.cells.
PAYLOAD_LEN = 509
RECOGNIZED = slice(1, 3)
DIGEST = slice(5, 9)
_ZERO2 = bytes(2)
_ZERO4 = bytes(4)

DIGEST_LEN = 20
CIPHER_KEY_LEN = 16
TOR1_KEY_MATERIAL_LEN = 2 * DIGEST_LEN + 2 * CIPHER_KEY_LEN  # 72


@dataclass(frozen=True, repr=False)
class Tor1Keys:
    """One hop's tor1 keys: digest seeds Df/Db and AES-128 keys Kf/Kb."""

    df: bytes
    db: bytes
    kf: bytes
    kb: bytes

    @classmethod
    def from_material(cls, key_material: bytes) -> Tor1Keys:
        """Split handshake key material (at least 72 bytes; the rest, e.g. KH, is ignored)."""
        if len(key_material) < TOR1_KEY_MATERIAL_LEN:
            raise LocalError(f"tor1 needs {TOR1_KEY_MATERIAL_LEN} bytes of key material")
        km = bytes(key_material)
        return cls(km[0:20], km[20:40], km[40:56], km[56:72])


# A running SHA-1 (hashlib's type is private, so it is typed loosely) and a keystream.
_Digest = Any
_Cipher = Callable[[bytes], bytes]


def _seal(running: _Digest, payload: bytes) -> tuple[bytes, bytes]:
    """Zero 'recognized' and 'digest', update ``running``, write the digest's first 4 bytes.

    Returns the sealed (still unencrypted) payload and the full 20-byte running digest.
    """
    if len(payload) != PAYLOAD_LEN:
        raise LocalError(f"relay payload must be {PAYLOAD_LEN} bytes, not {len(payload)}")
    cell = bytearray(payload)
    cell[RECOGNIZED] = _ZERO2
    cell[DIGEST] = _ZERO4
    running.update(cell)
    full: bytes = running.digest()
    cell[DIGEST] = full[:4]
    return bytes(cell), full


def _recognize(running: _Digest, plain: bytes) -> tuple[_Digest, bytes] | None:
    """If ``plain`` is recognized at this hop: the updated copy of ``running`` and its
    full 20-byte digest (for SENDME v1); else None."""
    if plain[1] or plain[2]:
        return None
    candidate = running.copy()
    candidate.update(plain[:5])
    candidate.update(_ZERO4)
    candidate.update(plain[9:])
    full: bytes = candidate.digest()
    if constant_time_eq(full[:4], plain[DIGEST]):
        return candidate, full
    return None


def _check_inbound_len(cell: bytes) -> None:
    if len(cell) != PAYLOAD_LEN:
        raise ProtocolError(f"relay cell payload must be {PAYLOAD_LEN} bytes, not {len(cell)}")


class ClientCircuitCrypto:
    """The client's relay crypto for one circuit: one layer per hop, hop 0 nearest."""

    __slots__ = ("_bwd", "_bwd_digests", "_fwd", "_fwd_digests", "_last_received", "_last_sent")

    def __init__(self) -> None:
        self._fwd: list[_Cipher] = []
        self._bwd: list[_Cipher] = []
        self._fwd_digests: list[_Digest] = []
        self._bwd_digests: list[_Digest] = []
        self._last_sent: list[bytes] = []
        self._last_received: list[bytes] = []

    def add_hop(self, key_material: bytes) -> None:
        """Add the next hop, from its handshake's key material (``Df|Db|Kf|Kb[|...]``)."""
        keys = Tor1Keys.from_material(key_material)
        self._fwd.append(AesCtr(keys.kf).update)
        self._bwd.append(AesCtr(keys.kb).update)
        self._fwd_digests.append(hashlib.sha1(keys.df))
        self._bwd_digests.append(hashlib.sha1(keys.db))
        self._last_sent.append(b"")
        self._last_received.append(b"")

    @property
    def n_hops(self) -> int:
        return len(self._fwd)

    def encrypt_outbound(self, payload: bytes, hop: int) -> bytes:
        """Seal a 509-byte relay payload for ``hop`` and encrypt it with hops ``hop``..0.

        'recognized' and 'digest' (bytes 1..3 and 5..9) belong to this layer and are
        overwritten; the rest of the payload is the caller's.
        """
        if not 0 <= hop < len(self._fwd):
            raise LocalError(f"no hop {hop} on this circuit ({len(self._fwd)} hops)")
        cell, full = _seal(self._fwd_digests[hop], payload)
        self._last_sent[hop] = full
        fwd = self._fwd
        for i in range(hop, -1, -1):
            cell = fwd[i](cell)
        return cell

    def decrypt_inbound(self, cell: bytes) -> tuple[int, bytes]:
        """Peel layers from hop 0 outwards; returns (index of the originating hop, payload).

        A cell no hop recognizes is a ProtocolError; by then every layer's keystream has
        advanced, so the circuit cannot continue and must be closed (tor-spec §5.5.3).
        """
        _check_inbound_len(cell)
        digests = self._bwd_digests
        plain = cell
        for i, decrypt in enumerate(self._bwd):
            plain = decrypt(plain)
            recognized = _recognize(digests[i], plain)
            if recognized is not None:
                digests[i], self._last_received[i] = recognized
                return i, plain
        raise ProtocolError("relay cell not recognized by any hop of the circuit")

    def last_digest_sent(self, hop: int) -> bytes:
        """The 20-byte forward running digest of ``hop`` after the last cell sent to it
        (b"" before any); a SENDME v1 from that hop must echo it (proposal 289)."""
        return self._last_sent[hop]

    def last_digest_received(self, hop: int) -> bytes:
        """The 20-byte backward running digest of ``hop`` after the last cell it originated
        (b"" before any); what our SENDME v1 to that hop carries (proposal 289)."""
        return self._last_received[hop]


class RelayHopCrypto:
    """One relay's layer of a circuit (used by simnet relays)."""

    __slots__ = ("_bwd", "_bwd_digest", "_fwd", "_fwd_digest",
                 "last_digest_received", "last_digest_sent")

    def __init__(self, key_material: bytes) -> None:
        keys = Tor1Keys.from_material(key_material)
        self._fwd: _Cipher = AesCtr(keys.kf).update
        self._bwd: _Cipher = AesCtr(keys.kb).update
        self._fwd_digest: _Digest = hashlib.sha1(keys.df)
        self._bwd_digest: _Digest = hashlib.sha1(keys.db)
        #: 20-byte running digests after the last cell recognized here / originated here
        #: (b"" before any), for authenticated SENDMEs (proposal 289).
        self.last_digest_received = b""
        self.last_digest_sent = b""

    def decrypt_forward(self, cell: bytes) -> tuple[bytes, bool]:
        """Remove this hop's layer; returns (payload, True if the cell is for this hop).

        An unrecognized payload is still encrypted for later hops and is forwarded.
        """
        _check_inbound_len(cell)
        plain = self._fwd(cell)
        recognized = _recognize(self._fwd_digest, plain)
        if recognized is None:
            return plain, False
        self._fwd_digest, self.last_digest_received = recognized
        return plain, True

    def encrypt_backward_originate(self, payload: bytes) -> bytes:
        """Seal a 509-byte payload this relay originates and add its backward layer."""
        cell, self.last_digest_sent = _seal(self._bwd_digest, payload)
        return self._bwd(cell)

    def encrypt_backward_relay(self, cell: bytes) -> bytes:
        """Add this relay's backward layer to a cell coming from further along."""
        _check_inbound_len(cell)
        return self._bwd(cell)
