"""Channel cells: commands, the cell value, and the circuit-ID width rules (tor-spec §3).

A channel cell is ``CircID | Command | Payload``.  Fixed-length cells carry a
509-byte payload; variable-length cells (VERSIONS, and every command >= 128 on
link protocol 3 and later) carry a 2-byte length and then that many bytes.
CircID is 2 bytes on link protocols below 4 and for every cell before the
first VERSIONS cell, 4 bytes on link protocols 4 and 5 (tor-spec §3, §4.1).

This module only names things; :mod:`gotor.cells.codec` frames bytes and
:mod:`gotor.cells.chanmsg` interprets payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gotor.errors import LocalError

#: PAYLOAD_LEN of tor-spec §0.2: the body of every fixed-length cell.
CELL_BODY_LEN = 509

#: The link protocol versions whose cell format this package implements (tor-spec §4.1).
SUPPORTED_LINK_VERSIONS = (3, 4, 5)


class ChanCmd(IntEnum):
    """Channel cell commands (tor-spec §3)."""

    PADDING = 0
    CREATE = 1
    CREATED = 2
    RELAY = 3
    DESTROY = 4
    CREATE_FAST = 5
    CREATED_FAST = 6
    VERSIONS = 7
    NETINFO = 8
    RELAY_EARLY = 9
    CREATE2 = 10
    CREATED2 = 11
    PADDING_NEGOTIATE = 12
    VPADDING = 128
    CERTS = 129
    AUTH_CHALLENGE = 130
    AUTHENTICATE = 131
    AUTHORIZE = 132


class DestroyReason(IntEnum):
    """Reasons carried by DESTROY cells and RELAY_TRUNCATED messages (tor-spec §5.4).

    Decoders keep values outside this list as plain ints: the spec lets new
    reasons appear, and the reason is advisory.
    """

    NONE = 0
    PROTOCOL = 1
    INTERNAL = 2
    REQUESTED = 3
    HIBERNATING = 4
    RESOURCELIMIT = 5
    CONNECTFAILED = 6
    OR_IDENTITY = 7
    CHANNEL_CLOSED = 8
    FINISHED = 9
    TIMEOUT = 10
    DESTROYED = 11
    NOSUCHSERVICE = 12


class HandshakeType(IntEnum):
    """CREATE2 / EXTEND2 handshake types (tor-spec §5.1; ntor-v3 is proposal 332)."""

    TAP = 0
    NTOR = 2
    NTOR_V3 = 3


@dataclass(frozen=True, slots=True)
class ChanCell:
    """One framed channel cell: ``body`` is the payload after CircID and Command.

    For fixed-length cells received from the wire ``body`` is the full
    509-byte payload, padding included; when sending, a shorter body is
    zero-padded by the codec.
    """

    circ_id: int
    cmd: int
    body: bytes


def is_variable_length(cmd: int) -> bool:
    """True for commands framed with a length field on link protocol 3+ (tor-spec §3)."""
    return cmd == ChanCmd.VERSIONS or cmd >= 128


def circ_id_len(link_version: int | None) -> int:
    """CIRCID_LEN in bytes; ``None`` means "before VERSIONS negotiation" (tor-spec §3)."""
    if link_version is None:
        return 2
    if link_version not in SUPPORTED_LINK_VERSIONS:
        raise LocalError(f"unsupported link protocol version {link_version}")
    return 2 if link_version < 4 else 4
