"""The relay cell header and relay commands (tor-spec §6.1).

A decrypted RELAY/RELAY_EARLY payload is 509 bytes::

    Relay command [1] | 'Recognized' [2] | StreamID [2] | Digest [4] | Length [2]
    | Data [Length] | Padding [509 - 11 - Length]

:func:`encode_relay_payload` builds one with ``recognized`` and ``digest``
zero (relay crypto fills the digest in, see ``DIGEST_OFFSET``);
:func:`decode_relay_payload` splits one.  Both sit on the per-cell hot path, so
they use precompiled ``struct`` formats and no Reader objects.

:class:`RelayMsg` is the base of the message bodies in
:mod:`gotor.cells.relaymsg` and :mod:`gotor.cells.hsmsg`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from gotor.cells.chan import CELL_BODY_LEN
from gotor.cells.common import Message, enum_or_int
from gotor.errors import LocalError, ProtocolError

RELAY_HEADER_LEN = 11
#: The most Data one relay cell can carry (RELAY_BODY_LEN in tor-spec terms).
RELAY_DATA_MAX = CELL_BODY_LEN - RELAY_HEADER_LEN
#: Where the 4-byte digest sits in the payload; the running digest covers the
#: payload with these bytes zeroed (tor-spec §6.1).
DIGEST_OFFSET = 5
DIGEST_LEN = 4
#: Padding starts with this many zero bytes before any random ones (tor-spec §6.1, prop 289).
PADDING_ZERO_PREFIX = 4

_HEADER = struct.Struct(">BHH4sH")
_ZEROS = bytes(CELL_BODY_LEN)


class RelayCmd(IntEnum):
    """Relay commands (tor-spec §6.1, rend-spec-v3 §0.5, prop 324 for XOFF/XON).

    16-22 (UDP, conflux) and 41-42 (circuit padding negotiation) are named but
    have no message codec here: they decode as ``Unrecognized``.  XOFF/XON use
    C tor's and Arti's numbering (43/44); the tor-spec text of June 2023 lists
    them the other way round.
    """

    BEGIN = 1
    DATA = 2
    END = 3
    CONNECTED = 4
    SENDME = 5
    EXTEND = 6
    EXTENDED = 7
    TRUNCATE = 8
    TRUNCATED = 9
    DROP = 10
    RESOLVE = 11
    RESOLVED = 12
    BEGIN_DIR = 13
    EXTEND2 = 14
    EXTENDED2 = 15
    CONNECT_UDP = 16
    CONNECTED_UDP = 17
    DATAGRAM = 18
    CONFLUX_LINK = 19
    CONFLUX_LINKED = 20
    CONFLUX_LINKED_ACK = 21
    CONFLUX_SWITCH = 22
    ESTABLISH_INTRO = 32
    ESTABLISH_RENDEZVOUS = 33
    INTRODUCE1 = 34
    INTRODUCE2 = 35
    RENDEZVOUS1 = 36
    RENDEZVOUS2 = 37
    INTRO_ESTABLISHED = 38
    RENDEZVOUS_ESTABLISHED = 39
    INTRODUCE_ACK = 40
    PADDING_NEGOTIATE = 41
    PADDING_NEGOTIATED = 42
    XOFF = 43
    XON = 44


def relay_cmd_name(cmd: int) -> str:
    """A relay command's name for messages (``relay command N`` if unknown)."""
    named = enum_or_int(RelayCmd, cmd)
    return named.name if isinstance(named, RelayCmd) else f"relay command {cmd}"


@dataclass(frozen=True, slots=True)
class RelayCell:
    """The fields of a decrypted relay payload (``data`` already cut to Length)."""

    cmd: int
    recognized: int
    stream_id: int
    digest: bytes
    data: bytes


def encode_relay_payload(cmd: int, stream_id: int, data: bytes, padding: bytes = b"") -> bytes:
    """A 509-byte relay payload with recognized = 0 and digest = 0.

    The padding area (``498 - len(data)`` bytes) is four zero bytes followed by
    ``padding`` (tor-spec §6.1 asks for random bytes there: the caller supplies
    them, so this module stays deterministic); a short ``padding`` is followed
    by zeros, a long one is cut.
    """
    if len(data) > RELAY_DATA_MAX:
        raise LocalError(f"relay data of {len(data)} bytes (max {RELAY_DATA_MAX})")
    if not 0 <= cmd <= 0xFF or not 0 <= stream_id <= 0xFFFF:
        raise LocalError(f"relay command {cmd} or stream ID {stream_id} out of range")
    header = _HEADER.pack(cmd, 0, stream_id, b"\0\0\0\0", len(data))
    pad_len = RELAY_DATA_MAX - len(data)
    zero_len = min(pad_len, PADDING_ZERO_PREFIX)
    tail = padding[: pad_len - zero_len]
    return header + data + _ZEROS[:zero_len] + tail + _ZEROS[: pad_len - zero_len - len(tail)]


def decode_relay_payload(payload: bytes) -> RelayCell:
    """Split a decrypted 509-byte relay payload; Length > 498 is malformed."""
    if len(payload) != CELL_BODY_LEN:
        raise ProtocolError(f"relay payload of {len(payload)} bytes, expected {CELL_BODY_LEN}")
    cmd, recognized, stream_id, digest, length = _HEADER.unpack_from(payload)
    if length > RELAY_DATA_MAX:
        raise ProtocolError(f"relay cell length {length} exceeds {RELAY_DATA_MAX}")
    data = payload[RELAY_HEADER_LEN : RELAY_HEADER_LEN + length]
    return RelayCell(cmd, recognized, stream_id, digest, data)


class RelayMsg(Message):
    """Base of relay message bodies; ``cmd`` is the relay command (the class's ``CMD``)."""

    __slots__ = ()
    CMD: ClassVar[int]

    @property
    def cmd(self) -> int:
        return self.CMD
