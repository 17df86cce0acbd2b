"""The client side of the circuit handshakes, one interface for all three (tor-spec §5.1).

* ntor (CREATE2/EXTEND2 type 2, tor-spec §5.1.4), the default;
* ntor-v3 (type 3, proposal 332) for relays that advertise Relay=4: it names the relay
  by its Ed25519 identity; we send no extensions and accept and ignore whatever
  extensions the relay's message carries.  Both messages are ``N_EXTENSIONS``-counted
  lists (tor-spec "ntor-v3"; C tor parses them as trunnel ``trn_extension``, arti as
  ``ExtList``), so "no extensions" is the one byte 00: C tor destroys a circuit whose
  client message is empty (PROTOCOL), and answers 00 itself.  (Proposal 332 §A.2's
  text shows an uncounted sequence; no implementation uses it.);
* CREATE_FAST (tor-spec §5.1.5), only for one-hop directory circuits.

Each ``start_*`` function takes fresh randomness and returns a :class:`PendingHandshake`:
the bytes to send and ``complete(reply)``, which checks the relay's answer and returns the
72 bytes of tor1 key material ``Df | Db | Kf | Kb`` (tor-spec §5.2), or raises
:class:`~gotor.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gotor.bytesio import Reader
from gotor.cells.chan import HandshakeType
from gotor.cells.ext import read_extension_list
from gotor.circuit.params import HopSpec
from gotor.crypto import fast, ntor, ntor_v3
from gotor.crypto.relaycrypto import TOR1_KEY_MATERIAL_LEN
from gotor.errors import LocalError

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class PendingHandshake:
    """A handshake in flight: what to send, and how to finish it."""

    htype: int  # HandshakeType for CREATE2/EXTEND2; -1 for CREATE_FAST
    onionskin: bytes
    complete: Callable[[bytes], bytes]

    @property
    def name(self) -> str:
        return _NAMES.get(self.htype, str(self.htype))


CREATE_FAST = -1
#: The ntor-v3 client message without extensions: N_EXTENSIONS = 0.
NO_EXTENSIONS = b"\x00"
_NAMES = {HandshakeType.NTOR: "ntor", HandshakeType.NTOR_V3: "ntor-v3", CREATE_FAST: "CREATE_FAST"}


def start_ntor(hop: HopSpec, random_bytes: RandomBytes) -> PendingHandshake:
    state, onionskin = ntor.client_handshake(hop.rsa_id, hop.ntor_key, random_bytes(32))
    return PendingHandshake(
        HandshakeType.NTOR, onionskin,
        lambda reply: ntor.client_complete(state, reply, TOR1_KEY_MATERIAL_LEN),
    )


def start_ntor_v3(hop: HopSpec, random_bytes: RandomBytes) -> PendingHandshake:
    if hop.ed_id is None:
        raise LocalError("ntor-v3 needs the relay's Ed25519 identity")
    state, onionskin = ntor_v3.client_handshake(hop.ed_id, hop.ntor_key, random_bytes(32),
                                                NO_EXTENSIONS)

    def complete(reply: bytes) -> bytes:
        server_message, keys = ntor_v3.client_complete(state, reply, TOR1_KEY_MATERIAL_LEN)
        r = Reader(server_message, "ntor-v3 server message")
        read_extension_list(r)  # well-formed; the content is ignored (we asked for nothing)
        r.expect_end()
        return keys

    return PendingHandshake(HandshakeType.NTOR_V3, onionskin, complete)


def start_for_hop(hop: HopSpec, random_bytes: RandomBytes) -> PendingHandshake:
    """ntor-v3 when the relay supports it (and we know its Ed25519 id), else ntor."""
    return (start_ntor_v3 if hop.uses_ntor_v3 else start_ntor)(hop, random_bytes)


def start_fast(random_bytes: RandomBytes) -> PendingHandshake:
    state, x = fast.client_handshake(random_bytes(fast.HASH_LEN))
    return PendingHandshake(
        CREATE_FAST, x, lambda reply: fast.client_complete(state, reply, TOR1_KEY_MATERIAL_LEN)
    )
