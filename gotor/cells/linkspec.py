"""Link specifiers: how EXTEND2, INTRODUCE and HS descriptors name a relay (tor-spec §5.1.2).

Wire form: ``NSPEC [1]`` then NSPEC times ``LSTYPE [1] | LSLEN [1] | LSPEC``.
Known types must have their exact length (a wrong length is malformed, as in
C tor's trunnel parser); unknown types are kept as raw bytes and re-encoded
unchanged, because services must forward lists they do not understand
verbatim (rend-spec-v3 §3.3).  Duplicate identities are a semantic check left
to callers (tor-spec: "SHOULD reject").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar

from gotor.bytesio import Reader, Writer
from gotor.errors import LocalError, ProtocolError

_PORT = struct.Struct(">H")


class LinkSpecType(IntEnum):
    """LSTYPE values (tor-spec §5.1.2)."""

    IPV4 = 0
    IPV6 = 1
    LEGACY_ID = 2
    ED25519_ID = 3


@dataclass(frozen=True, slots=True)
class LinkSpecIPv4:
    """[00] TLS-over-TCP, IPv4 address and ORPort."""

    LSTYPE: ClassVar[int] = LinkSpecType.IPV4
    address: IPv4Address
    port: int

    @classmethod
    def from_body(cls, body: bytes) -> LinkSpecIPv4:
        _expect_len(body, 6, "IPv4")
        return cls(IPv4Address(body[:4]), _PORT.unpack_from(body, 4)[0])

    def body(self) -> bytes:
        return self.address.packed + _PORT.pack(self.port)


@dataclass(frozen=True, slots=True)
class LinkSpecIPv6:
    """[01] TLS-over-TCP, IPv6 address and ORPort."""

    LSTYPE: ClassVar[int] = LinkSpecType.IPV6
    address: IPv6Address
    port: int

    @classmethod
    def from_body(cls, body: bytes) -> LinkSpecIPv6:
        _expect_len(body, 18, "IPv6")
        return cls(IPv6Address(body[:16]), _PORT.unpack_from(body, 16)[0])

    def body(self) -> bytes:
        return self.address.packed + _PORT.pack(self.port)


@dataclass(frozen=True, slots=True)
class LinkSpecRsaId:
    """[02] Legacy identity: SHA-1 of the relay's RSA identity key."""

    LSTYPE: ClassVar[int] = LinkSpecType.LEGACY_ID
    rsa_id: bytes

    @classmethod
    def from_body(cls, body: bytes) -> LinkSpecRsaId:
        _expect_len(body, 20, "legacy identity")
        return cls(body)

    def body(self) -> bytes:
        return self.rsa_id


@dataclass(frozen=True, slots=True)
class LinkSpecEd25519Id:
    """[03] Ed25519 identity key."""

    LSTYPE: ClassVar[int] = LinkSpecType.ED25519_ID
    ed25519_id: bytes

    @classmethod
    def from_body(cls, body: bytes) -> LinkSpecEd25519Id:
        _expect_len(body, 32, "Ed25519 identity")
        return cls(body)

    def body(self) -> bytes:
        return self.ed25519_id


@dataclass(frozen=True, slots=True)
class LinkSpecUnrecognized:
    """A specifier of a type not listed above, kept verbatim."""

    lstype: int
    raw: bytes

    def body(self) -> bytes:
        return self.raw


LinkSpec = LinkSpecIPv4 | LinkSpecIPv6 | LinkSpecRsaId | LinkSpecEd25519Id | LinkSpecUnrecognized

_DECODERS: dict[int, Callable[[bytes], LinkSpec]] = {
    cls.LSTYPE: cls.from_body
    for cls in (LinkSpecIPv4, LinkSpecIPv6, LinkSpecRsaId, LinkSpecEd25519Id)
}


def _expect_len(body: bytes, length: int, what: str) -> None:
    if len(body) != length:
        raise ProtocolError(f"{what} link specifier of {len(body)} bytes, expected {length}")


def link_spec_type(spec: LinkSpec) -> int:
    return spec.lstype if isinstance(spec, LinkSpecUnrecognized) else spec.LSTYPE


def decode_link_spec(lstype: int, body: bytes) -> LinkSpec:
    decoder = _DECODERS.get(lstype)
    return LinkSpecUnrecognized(lstype, body) if decoder is None else decoder(body)


def read_link_specs(r: Reader) -> tuple[LinkSpec, ...]:
    """An NSPEC-counted list of specifiers."""
    specs = []
    for _ in range(r.u8()):
        lstype = r.u8()
        specs.append(decode_link_spec(lstype, r.take_u8_prefixed()))
    return tuple(specs)


def write_link_specs(w: Writer, specs: tuple[LinkSpec, ...]) -> None:
    if len(specs) > 0xFF:
        raise LocalError(f"{len(specs)} link specifiers (max 255)")
    w.u8(len(specs))
    for spec in specs:
        try:
            body = spec.body()
        except struct.error as exc:  # a port outside 0..65535
            raise LocalError(f"unencodable link specifier {spec!r}") from exc
        if len(body) > 0xFF or not 0 <= link_spec_type(spec) <= 0xFF:
            raise LocalError(f"unencodable link specifier {spec!r}")
        w.u8(link_spec_type(spec)).u8_prefixed(body)


def decode_link_spec_list(data: bytes) -> tuple[LinkSpec, ...]:
    """A counted list that must fill ``data`` exactly (as in HS descriptors' link-specifiers)."""
    r = Reader(data, "link specifier list")
    specs = read_link_specs(r)
    r.expect_end()
    return specs


def encode_link_spec_list(specs: tuple[LinkSpec, ...]) -> bytes:
    w = Writer()
    write_link_specs(w, specs)
    return w.getvalue()
