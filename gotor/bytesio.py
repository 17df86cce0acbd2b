"""Byte cursors for the pure codecs (the role of Arti's tor-bytes).

:class:`Reader` walks a complete message; running out of bytes *inside* a
message is malformed input and raises :class:`~gotor.errors.ProtocolError`.
("Need more bytes" is decided one level up, by the framing code, which knows
how long a message must be before it hands it to a Reader.)
:class:`Writer` builds messages.
"""

from __future__ import annotations

import struct

from gotor.errors import ProtocolError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """A cursor over ``data``; ``what`` names the message in error reasons."""

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "message") -> None:
        self._data = bytes(data)
        self._pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def _need(self, n: int) -> int:
        pos = self._pos
        if n < 0 or pos + n > len(self._data):
            raise ProtocolError(
                f"{self.what} truncated: wanted {n} bytes at offset {pos}, "
                f"{len(self._data) - pos} left"
            )
        self._pos = pos + n
        return pos

    def u8(self) -> int:
        pos = self._need(1)
        return self._data[pos]

    def u16(self) -> int:
        pos = self._need(2)
        value: int = _U16.unpack_from(self._data, pos)[0]
        return value

    def u32(self) -> int:
        pos = self._need(4)
        value: int = _U32.unpack_from(self._data, pos)[0]
        return value

    def u64(self) -> int:
        pos = self._need(8)
        value: int = _U64.unpack_from(self._data, pos)[0]
        return value

    def take(self, n: int) -> bytes:
        pos = self._need(n)
        return self._data[pos : pos + n]

    def take_u8_prefixed(self) -> bytes:
        return self.take(self.u8())

    def take_u16_prefixed(self) -> bytes:
        return self.take(self.u16())

    def rest(self) -> bytes:
        pos = self._pos
        self._pos = len(self._data)
        return self._data[pos:]

    def take_until(self, terminator: bytes) -> bytes:
        """Bytes up to ``terminator`` (consumed, not returned); malformed if absent."""
        end = self._data.find(terminator, self._pos)
        if end < 0:
            raise ProtocolError(f"{self.what}: missing terminator {terminator!r}")
        out = self._data[self._pos : end]
        self._pos = end + len(terminator)
        return out

    def expect_end(self) -> None:
        if self._pos != len(self._data):
            raise ProtocolError(f"{self.what}: {self.remaining} unexpected trailing bytes")


class Writer:
    """Accumulates an encoded message."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> Writer:
        self._parts.append(bytes((v,)))
        return self

    def u16(self, v: int) -> Writer:
        self._parts.append(_U16.pack(v))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(_U32.pack(v))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(_U64.pack(v))
        return self

    def put(self, b: bytes) -> Writer:
        self._parts.append(bytes(b))
        return self

    def u8_prefixed(self, b: bytes) -> Writer:
        if len(b) > 0xFF:
            raise ValueError("field longer than 255 bytes")
        return self.u8(len(b)).put(b)

    def u16_prefixed(self, b: bytes) -> Writer:
        if len(b) > 0xFFFF:
            raise ValueError("field longer than 65535 bytes")
        return self.u16(len(b)).put(b)

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)
