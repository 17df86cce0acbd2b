"""Channel framing: bytes from the TLS stream <-> :class:`ChanCell` (tor-spec §3, §4.1).

:class:`ChannelCodec` is sans-IO.  ``decode(buf)`` takes one cell off the front
of a ``bytearray`` the caller keeps appending to, and returns ``None`` while
the cell is incomplete; a header that can never become a valid cell raises
:class:`~gotor.errors.ProtocolError`.  The circuit-ID width follows the
negotiated link protocol: the owner sets ``codec.link_version`` after handling
the peer's VERSIONS cell and before decoding the next cell.

Before negotiation only the cells tor-spec §4 allows first are framable (with
2-byte circuit IDs): VERSIONS, VPADDING and AUTHORIZE.  Fixed-length cells
cannot even be delimited then, so they are a protocol error.

Buffer cap: a variable-length cell is at most ``4 + 1 + 2 + 65535`` bytes (its
length field is 16 bits), so ``decode`` never waits for more than that.

Round trip: ``encode(decode(raw)) == raw`` for every decoded cell (fixed cells
keep their padding in ``body``), which lets the link handshake hash exactly
what crossed the wire.
"""

from __future__ import annotations

import struct

from gotor.cells.chan import CELL_BODY_LEN, ChanCell, ChanCmd, circ_id_len
from gotor.errors import LocalError, ProtocolError

_HEADER = {2: struct.Struct(">HB"), 4: struct.Struct(">IB")}
_LENGTH = struct.Struct(">H")
_MAX_VAR_BODY = 0xFFFF
_PRE_VERSIONS_CMDS = frozenset({ChanCmd.VERSIONS, ChanCmd.VPADDING, ChanCmd.AUTHORIZE})
_VERSIONS = int(ChanCmd.VERSIONS)  # a plain int: enum attribute lookups cost on the hot path
_ZEROS = bytes(CELL_BODY_LEN)


class ChannelCodec:
    """Frames and unframes channel cells for one channel."""

    __slots__ = ("_header", "_link_version")

    def __init__(self, link_version: int | None = None) -> None:
        self._link_version: int | None = None
        self._header = _HEADER[2]
        self.link_version = link_version

    @property
    def link_version(self) -> int | None:
        """The negotiated link protocol, or ``None`` before VERSIONS."""
        return self._link_version

    @link_version.setter
    def link_version(self, version: int | None) -> None:
        self._header = _HEADER[circ_id_len(version)]  # validates the version
        self._link_version = version

    def decode(self, buf: bytearray) -> ChanCell | None:
        """Remove and return the first complete cell of ``buf``, or ``None`` if it is incomplete."""
        header = self._header
        start = header.size
        have = len(buf)
        if have < start:
            return None
        circ_id, cmd = header.unpack_from(buf)
        if cmd >= 128 or cmd == _VERSIONS:
            if self._link_version is None and cmd not in _PRE_VERSIONS_CMDS:
                raise ProtocolError(f"cell command {cmd} not allowed before VERSIONS")
            if have < start + 2:
                return None
            end = start + 2 + _LENGTH.unpack_from(buf, start)[0]
            start += 2
        else:
            if self._link_version is None:
                raise ProtocolError(f"fixed-length cell command {cmd} before VERSIONS")
            end = start + CELL_BODY_LEN
        if have < end:
            return None
        body = bytes(buf[start:end])
        del buf[:end]
        return ChanCell(circ_id, cmd, body)

    def encode(self, cell: ChanCell) -> bytes:
        """The wire bytes of ``cell``; fixed-length bodies are zero-padded to 509 bytes."""
        header = self._header
        body = cell.body
        if not 0 <= cell.circ_id < 1 << (8 * (header.size - 1)):
            raise LocalError(f"circuit ID {cell.circ_id} does not fit the link protocol")
        if not 0 <= cell.cmd <= 0xFF:
            raise LocalError(f"cell command {cell.cmd} out of range")
        cmd = cell.cmd
        if cmd >= 128 or cmd == _VERSIONS:
            if len(body) > _MAX_VAR_BODY:
                raise LocalError(f"variable-length cell body of {len(body)} bytes")
            return header.pack(cell.circ_id, cmd) + _LENGTH.pack(len(body)) + body
        if self._link_version is None:
            raise LocalError("fixed-length cells need a negotiated link protocol")
        if len(body) > CELL_BODY_LEN:
            raise LocalError(f"fixed-length cell body of {len(body)} bytes")
        return header.pack(cell.circ_id, cmd) + body + _ZEROS[len(body) :]
