"""The client side of the circuit handshakes, one interface for all three (tor-spec §5.1).

* ntor (CREATE2/EXTEND2 type 2, tor-spec §5.1.4), the default;
* ntor-v3 (type 3, proposal 332) for relays that advertise Relay=4: it names the relay
  by its Ed25519 identity; we send no extensions (an empty client message) and accept
  and ignore whatever extensions the relay's message carries (proposal 332 §A.2);
* CREATE_FAST (tor-spec §5.1.5), only for one-hop directory circuits.

Each ``start_*`` function takes fresh randomness and returns a :class:`PendingHandshake`:
the bytes to send and ``complete(reply)``, which checks the relay's answer and returns the
72 bytes of tor1 key material ``Df | Db | Kf | Kb`` (tor-spec §5.2), or raises
:class:`~gotor.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gotor.cells.chan import HandshakeType
from gotor.cells.ext import decode_extension_sequence
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
    state, onionskin = ntor_v3.client_handshake(hop.ed_id, hop.ntor_key, random_bytes(32))

    def complete(reply: bytes) -> bytes:
        server_message, keys = ntor_v3.client_complete(state, reply, TOR1_KEY_MATERIAL_LEN)
        decode_extension_sequence(server_message)  # well-formed, content ignored (prop 332)
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
