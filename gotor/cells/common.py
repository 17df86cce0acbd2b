"""Shared pieces of the cell codecs: the message base class and small helpers.

Every channel and relay message is a frozen dataclass deriving from
:class:`Message`: ``decode(body)`` turns wire bytes into a value (raising only
:class:`~gotor.errors.ProtocolError`), ``encode()`` turns a value back into
bytes (raising :class:`~gotor.errors.LocalError` when the value cannot be
encoded, e.g. a field longer than its length prefix allows).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from gotor.bytesio import Writer
from gotor.errors import LocalError

IpAddress = IPv4Address | IPv6Address

_E = TypeVar("_E", bound=IntEnum)


class Message(ABC):
    """Base of every message body codec (channel and relay).

    Subclasses also define ``decode(body: bytes) -> Self`` as a classmethod
    (except the ``Unrecognized`` holders, which the dispatchers build directly).
    """

    __slots__ = ()

    @abstractmethod
    def write(self, w: Writer) -> None:
        """Append the encoded body to ``w``."""

    def encode(self) -> bytes:
        """The encoded body; an unencodable value raises LocalError."""
        w = Writer()
        try:
            self.write(w)
        except (struct.error, ValueError, OverflowError) as exc:
            raise LocalError(f"cannot encode {type(self).__name__}: {exc}") from exc
        return w.getvalue()


def enum_or_int(enum: type[_E], value: int) -> int:
    """``enum(value)`` if the value is named there, else the plain int (kept, not an error)."""
    try:
        return enum(value)
    except ValueError:
        return value


def put_fixed(w: Writer, value: bytes, length: int, what: str) -> None:
    """Write a fixed-size field, refusing (as API misuse) a value of the wrong size."""
    if len(value) != length:
        raise ValueError(f"{what} must be {length} bytes, not {len(value)}")
    w.put(value)
