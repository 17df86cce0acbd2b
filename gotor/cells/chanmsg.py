"""Channel message bodies: one frozen dataclass per channel command (tor-spec §3-§5, §7.2).

``decode_chan_msg(cmd, body)`` interprets the body of a :class:`ChanCell`;
``msg.to_cell(circ_id)`` goes the other way.  Unknown commands decode to
:class:`Unrecognized` (tor-spec §3: receivers drop cells they do not know,
so that is not an error here).

Fixed-length cells arrive zero-padded to 509 bytes, so decoders of fixed-length
messages ignore bytes after their content; so do the variable-length ones whose
section says "ignore extra bytes" (CERTS §4.2, AUTH_CHALLENGE §4.3, AUTHENTICATE
§4.4).  VERSIONS must not be padded (§3), so an odd length is malformed.
Handshake data (CREATE*, CREATED*) and certificates stay opaque bytes: they
belong to gotor.crypto.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, Self

from gotor.bytesio import Reader, Writer
from gotor.cells.chan import ChanCell, ChanCmd, DestroyReason, HandshakeType
from gotor.cells.common import IpAddress, Message, enum_or_int, put_fixed
from gotor.errors import ProtocolError

#: TAP_C_HANDSHAKE_LEN and TAP_S_HANDSHAKE_LEN (tor-spec §0.2, §5.1).
TAP_C_HANDSHAKE_LEN = 128 + 16 + 42
TAP_S_HANDSHAKE_LEN = 128 + 20
#: HASH_LEN: the size of CREATE_FAST key material (tor-spec §5.1.5).
HASH_LEN = 20


class ChanMsg(Message):
    """Base of channel messages; ``cmd`` is the channel command (the class's ``CMD``)."""

    __slots__ = ()
    CMD: ClassVar[int]

    @property
    def cmd(self) -> int:
        return self.CMD

    def to_cell(self, circ_id: int = 0) -> ChanCell:
        return ChanCell(circ_id, self.cmd, self.encode())


class CertType(IntEnum):
    """CertType values of a CERTS cell (tor-spec §4.2)."""

    LINK_X509 = 1
    IDENTITY_X509 = 2
    AUTH_X509 = 3
    IDENTITY_V_SIGNING = 4
    SIGNING_V_TLS_CERT = 5
    SIGNING_V_LINK_AUTH = 6
    RSA_ID_V_IDENTITY = 7


class PaddingNegotiateCmd(IntEnum):
    """The command of a PADDING_NEGOTIATE cell (tor-spec §7.2)."""

    STOP = 1
    START = 2


@dataclass(frozen=True, slots=True)
class Padding(ChanMsg):
    """PADDING: a keepalive whose whole payload is padding (tor-spec §3, §7.2)."""

    CMD: ClassVar[int] = ChanCmd.PADDING

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()

    def write(self, w: Writer) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Vpadding(ChanMsg):
    """VPADDING: ``length`` bytes of variable-length padding (tor-spec §7.2)."""

    CMD: ClassVar[int] = ChanCmd.VPADDING
    length: int = 0

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(len(body))

    def write(self, w: Writer) -> None:
        w.put(bytes(self.length))


@dataclass(frozen=True, slots=True)
class Versions(ChanMsg):
    """VERSIONS: the link protocol versions the sender supports (tor-spec §4.1)."""

    CMD: ClassVar[int] = ChanCmd.VERSIONS
    versions: tuple[int, ...]

    @classmethod
    def decode(cls, body: bytes) -> Self:
        if len(body) % 2:
            raise ProtocolError("VERSIONS cell with an odd number of bytes")
        return cls(struct.unpack(f">{len(body) // 2}H", body))

    def write(self, w: Writer) -> None:
        for version in self.versions:
            w.u16(version)


@dataclass(frozen=True, slots=True)
class Certs(ChanMsg):
    """CERTS: ``(cert_type, raw certificate)`` pairs in wire order (tor-spec §4.2).

    Certificates are not parsed here (X.509 types 1-3, Tor certificates 4-7 are
    gotor.crypto's job); nor are duplicates rejected, which is the link
    handshake's check.
    """

    CMD: ClassVar[int] = ChanCmd.CERTS
    certs: tuple[tuple[int, bytes], ...]

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "CERTS cell")
        certs = []
        for _ in range(r.u8()):
            cert_type = r.u8()
            certs.append((enum_or_int(CertType, cert_type), r.take_u16_prefixed()))
        return cls(tuple(certs))

    def write(self, w: Writer) -> None:
        w.u8(len(self.certs))
        for cert_type, cert in self.certs:
            w.u8(cert_type).u16_prefixed(cert)

    def of_type(self, cert_type: int) -> list[bytes]:
        """Every certificate of ``cert_type``, in wire order."""
        return [cert for t, cert in self.certs if t == cert_type]


@dataclass(frozen=True, slots=True)
class AuthChallenge(ChanMsg):
    """AUTH_CHALLENGE: a 32-byte challenge and the accepted auth methods (tor-spec §4.3)."""

    CMD: ClassVar[int] = ChanCmd.AUTH_CHALLENGE
    challenge: bytes
    methods: tuple[int, ...]

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "AUTH_CHALLENGE cell")
        challenge = r.take(32)
        n_methods = r.u16()
        return cls(challenge, tuple(r.u16() for _ in range(n_methods)))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.challenge, 32, "challenge")
        w.u16(len(self.methods))
        for method in self.methods:
            w.u16(method)


@dataclass(frozen=True, slots=True)
class Authenticate(ChanMsg):
    """AUTHENTICATE: auth type and the opaque authentication blob (tor-spec §4.4)."""

    CMD: ClassVar[int] = ChanCmd.AUTHENTICATE
    auth_type: int
    authentication: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "AUTHENTICATE cell")
        auth_type = r.u16()
        return cls(auth_type, r.take_u16_prefixed())

    def write(self, w: Writer) -> None:
        w.u16(self.auth_type).u16_prefixed(self.authentication)


@dataclass(frozen=True, slots=True)
class Authorize(ChanMsg):
    """AUTHORIZE: reserved, payload unspecified (tor-spec §3, §4); kept opaque."""

    CMD: ClassVar[int] = ChanCmd.AUTHORIZE
    body: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(body)

    def write(self, w: Writer) -> None:
        w.put(self.body)


@dataclass(frozen=True, slots=True)
class NetinfoAddr:
    """One NETINFO address: ATYPE and AVAL as sent (tor-spec §4.5).

    Unknown types and wrong lengths are kept (so the cell round-trips) but
    yield ``ip is None``: the spec says such addresses are ignored, not fatal.
    """

    atype: int
    value: bytes

    @classmethod
    def from_ip(cls, ip: IpAddress) -> NetinfoAddr:
        return cls(4 if ip.version == 4 else 6, ip.packed)

    @property
    def ip(self) -> IpAddress | None:
        if self.atype == 4 and len(self.value) == 4:
            return IPv4Address(self.value)
        if self.atype == 6 and len(self.value) == 16:
            return IPv6Address(self.value)
        return None


def _read_netinfo_addr(r: Reader) -> NetinfoAddr:
    atype = r.u8()
    return NetinfoAddr(atype, r.take_u8_prefixed())


def _write_netinfo_addr(w: Writer, addr: NetinfoAddr) -> None:
    w.u8(addr.atype).u8_prefixed(addr.value)


@dataclass(frozen=True, slots=True)
class Netinfo(ChanMsg):
    """NETINFO: sender's time, the address it sees for us, its own addresses (tor-spec §4.5)."""

    CMD: ClassVar[int] = ChanCmd.NETINFO
    timestamp: int
    other_addr: NetinfoAddr
    my_addrs: tuple[NetinfoAddr, ...] = ()

    @classmethod
    def from_ips(
        cls, timestamp: int, other: IpAddress | None, mine: tuple[IpAddress, ...] = ()
    ) -> Netinfo:
        """Build one; an unknown ``other`` is sent as 0.0.0.0, as C tor and Arti do."""
        other_addr = NetinfoAddr.from_ip(other if other is not None else IPv4Address(0))
        return cls(timestamp, other_addr, tuple(NetinfoAddr.from_ip(ip) for ip in mine))

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "NETINFO cell")
        timestamp = r.u32()
        other = _read_netinfo_addr(r)
        mine = tuple(_read_netinfo_addr(r) for _ in range(r.u8()))
        return cls(timestamp, other, mine)

    def write(self, w: Writer) -> None:
        w.u32(self.timestamp)
        _write_netinfo_addr(w, self.other_addr)
        w.u8(len(self.my_addrs))
        for addr in self.my_addrs:
            _write_netinfo_addr(w, addr)

    @property
    def other_ip(self) -> IpAddress | None:
        """The usable address the peer sees for us; unspecified (0.0.0.0, ::) counts as none."""
        ip = self.other_addr.ip
        return None if ip is None or ip.is_unspecified else ip

    @property
    def my_ips(self) -> tuple[IpAddress, ...]:
        """The peer's own addresses that are well-formed IPv4/IPv6."""
        return tuple(ip for ip in (a.ip for a in self.my_addrs) if ip is not None)


@dataclass(frozen=True, slots=True)
class Create(ChanMsg):
    """CREATE: a TAP onionskin (tor-spec §5.1); obsolete, decoded for completeness."""

    CMD: ClassVar[int] = ChanCmd.CREATE
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "CREATE cell").take(TAP_C_HANDSHAKE_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.handshake, TAP_C_HANDSHAKE_LEN, "TAP onionskin")


@dataclass(frozen=True, slots=True)
class Created(ChanMsg):
    """CREATED: a TAP reply (tor-spec §5.1)."""

    CMD: ClassVar[int] = ChanCmd.CREATED
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "CREATED cell").take(TAP_S_HANDSHAKE_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.handshake, TAP_S_HANDSHAKE_LEN, "TAP reply")


@dataclass(frozen=True, slots=True)
class CreateFast(ChanMsg):
    """CREATE_FAST: the client's key material X (tor-spec §5.1.5)."""

    CMD: ClassVar[int] = ChanCmd.CREATE_FAST
    x: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "CREATE_FAST cell").take(HASH_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.x, HASH_LEN, "CREATE_FAST X")


@dataclass(frozen=True, slots=True)
class CreatedFast(ChanMsg):
    """CREATED_FAST: the relay's key material Y and derivative key data KH (tor-spec §5.1.5)."""

    CMD: ClassVar[int] = ChanCmd.CREATED_FAST
    y: bytes
    kh: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "CREATED_FAST cell")
        y = r.take(HASH_LEN)
        return cls(y, r.take(HASH_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.y, HASH_LEN, "CREATED_FAST Y")
        put_fixed(w, self.kh, HASH_LEN, "CREATED_FAST KH")


@dataclass(frozen=True, slots=True)
class Create2(ChanMsg):
    """CREATE2: handshake type and client handshake data (tor-spec §5.1)."""

    CMD: ClassVar[int] = ChanCmd.CREATE2
    handshake_type: int
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "CREATE2 cell")
        htype = enum_or_int(HandshakeType, r.u16())
        return cls(htype, r.take_u16_prefixed())

    def write(self, w: Writer) -> None:
        w.u16(self.handshake_type).u16_prefixed(self.handshake)


@dataclass(frozen=True, slots=True)
class Created2(ChanMsg):
    """CREATED2: server handshake data (tor-spec §5.1)."""

    CMD: ClassVar[int] = ChanCmd.CREATED2
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "CREATED2 cell").take_u16_prefixed())

    def write(self, w: Writer) -> None:
        w.u16_prefixed(self.handshake)


@dataclass(frozen=True, slots=True)
class Destroy(ChanMsg):
    """DESTROY: tear down a circuit, with a reason (tor-spec §5.4)."""

    CMD: ClassVar[int] = ChanCmd.DESTROY
    reason: int = DestroyReason.NONE

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(enum_or_int(DestroyReason, Reader(body, "DESTROY cell").u8()))

    def write(self, w: Writer) -> None:
        w.u8(self.reason)


@dataclass(frozen=True, slots=True)
class PaddingNegotiate(ChanMsg):
    """PADDING_NEGOTIATE (version 0): start/stop link padding (tor-spec §7.2, padding-spec §2).

    Only version 0 is defined; any other version is malformed (as in Arti).
    """

    CMD: ClassVar[int] = ChanCmd.PADDING_NEGOTIATE
    command: int
    ito_low_ms: int = 0
    ito_high_ms: int = 0

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "PADDING_NEGOTIATE cell")
        version = r.u8()
        if version != 0:
            raise ProtocolError(f"unrecognized padding negotiation version {version}")
        command = enum_or_int(PaddingNegotiateCmd, r.u8())
        low = r.u16()
        return cls(command, low, r.u16())

    def write(self, w: Writer) -> None:
        w.u8(0).u8(self.command).u16(self.ito_low_ms).u16(self.ito_high_ms)


@dataclass(frozen=True, slots=True)
class _RelayBody(ChanMsg):
    """The shared shape of RELAY and RELAY_EARLY: an opaque (encrypted) payload."""

    body: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(body)

    def write(self, w: Writer) -> None:
        w.put(self.body)


@dataclass(frozen=True, slots=True)
class Relay(_RelayBody):
    """RELAY: an onion-encrypted relay payload (tor-spec §5.5, §6.1)."""

    CMD: ClassVar[int] = ChanCmd.RELAY


@dataclass(frozen=True, slots=True)
class RelayEarly(_RelayBody):
    """RELAY_EARLY: a relay payload that may carry EXTEND/EXTEND2 (tor-spec §5.6)."""

    CMD: ClassVar[int] = ChanCmd.RELAY_EARLY


@dataclass(frozen=True, slots=True)
class Unrecognized(ChanMsg):
    """A cell whose command this codec does not know; kept so the caller can drop it."""

    # A per-instance field here (field() stops dataclass taking the base property as a default).
    cmd: int = field()
    body: bytes

    def write(self, w: Writer) -> None:
        w.put(self.body)


_DECODERS: dict[int, Callable[[bytes], ChanMsg]] = {
    cls.CMD: cls.decode
    for cls in (
        Padding,
        Vpadding,
        Versions,
        Certs,
        AuthChallenge,
        Authenticate,
        Authorize,
        Netinfo,
        Create,
        Created,
        CreateFast,
        CreatedFast,
        Create2,
        Created2,
        Destroy,
        PaddingNegotiate,
        Relay,
        RelayEarly,
    )
}


def decode_chan_msg(cmd: int, body: bytes) -> ChanMsg:
    """Interpret a channel cell body by its command; unknown commands give Unrecognized."""
    decoder = _DECODERS.get(cmd)
    if decoder is None:
        return Unrecognized(cmd, body)
    return decoder(body)


def decode_cell(cell: ChanCell) -> ChanMsg:
    """``decode_chan_msg`` on a framed cell."""
    return decode_chan_msg(cell.cmd, cell.body)
