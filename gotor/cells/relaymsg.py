"""Relay message bodies for streams and circuits, and the relay-message dispatcher.

One frozen dataclass per relay command (tor-spec §5.1.2, §5.4, §6.2-§6.4, §7.3.1;
proposal 324 for XON/XOFF); the onion-service ones live in
:mod:`gotor.cells.hsmsg`.  ``decode_relay_msg(cmd, data)`` interprets the Data
of a relay cell; commands without a codec (unknown ones, and the UDP, conflux
and circuit-padding ones) give :class:`Unrecognized`, which tor-spec §6.1 says
to drop.  As everywhere in tor-spec, receivers ignore bytes after a message's
last field unless its section says otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, Self

from gotor.bytesio import Reader, Writer
from gotor.cells import hsmsg
from gotor.cells.chan import DestroyReason, HandshakeType
from gotor.cells.chanmsg import TAP_C_HANDSHAKE_LEN, TAP_S_HANDSHAKE_LEN
from gotor.cells.common import IpAddress, enum_or_int, put_fixed
from gotor.cells.linkspec import LinkSpec, read_link_specs, write_link_specs
from gotor.cells.relay import RelayCell, RelayCmd, RelayMsg, encode_relay_payload
from gotor.errors import ProtocolError

_U32 = struct.Struct(">I")
#: TTL meaning "absent" in an EXITPOLICY END (tor-spec §6.3).
TTL_ABSENT = 0xFFFFFFFF
SENDME_TAG_LEN = 20
_NO_IPV4 = bytes(4)


class BeginFlags(IntFlag):
    """FLAGS of RELAY_BEGIN; bit 1 is the LSB (tor-spec §6.2)."""

    IPV6_OK = 1
    IPV4_NOT_OK = 2
    IPV6_PREFERRED = 4


class EndReason(IntEnum):
    """RELAY_END reasons (tor-spec §6.3); decoders keep unlisted values as ints."""

    MISC = 1
    RESOLVEFAILED = 2
    CONNECTREFUSED = 3
    EXITPOLICY = 4
    DESTROY = 5
    DONE = 6
    TIMEOUT = 7
    NOROUTE = 8
    HIBERNATING = 9
    INTERNAL = 10
    RESOURCELIMIT = 11
    CONNRESET = 12
    TORPROTOCOL = 13
    NOTDIRECTORY = 14


class ResolvedType(IntEnum):
    """Answer types of RELAY_RESOLVED (tor-spec §6.4)."""

    HOSTNAME = 0x00
    IPV4 = 0x04
    IPV6 = 0x06
    ERROR_TRANSIENT = 0xF0
    ERROR_NONTRANSIENT = 0xF1


def _parse_port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 0xFFFF:
        raise ProtocolError(f"bad port {text[:8]!r} in BEGIN")
    return int(text)


@dataclass(frozen=True, slots=True)
class Begin(RelayMsg):
    """RELAY_BEGIN: address (hostname, IPv4, IPv6 without brackets), port, flags (tor-spec §6.2).

    FLAGS are omitted on the wire when zero, as C tor does; reserved flag bits
    are kept.  The address must be ASCII (Arti's rule) without brackets inside
    (the spec names only hostnames and IP literals, which have none).
    """

    CMD: ClassVar[int] = RelayCmd.BEGIN
    address: str
    port: int
    flags: int = 0

    @classmethod
    def decode(cls, body: bytes) -> Self:
        # ADDRPORT is the NUL-terminated string; split it afterwards, as C tor does.
        nul = body.find(b"\0")
        if nul < 0:
            raise ProtocolError("BEGIN address not NUL-terminated")
        addrport = body[:nul]
        if addrport.startswith(b"["):
            close = addrport.find(b"]")
            if close < 0 or addrport[close + 1 : close + 2] != b":":
                raise ProtocolError("missing port in BEGIN")
            host, port = addrport[1:close], addrport[close + 2 :]
        else:
            host, colon, port = addrport.partition(b":")
            if not colon:
                raise ProtocolError("missing port in BEGIN")
        if not host.isascii():
            raise ProtocolError("BEGIN target address not ASCII")
        if b"[" in host or b"]" in host:
            raise ProtocolError("stray bracket in BEGIN address")
        flags = body[nul + 1 : nul + 5]
        flag_bits = _U32.unpack(flags)[0] if len(flags) == 4 else 0
        return cls(host.decode("ascii"), _parse_port(port), flag_bits)

    def write(self, w: Writer) -> None:
        host = self.address.encode("ascii")
        if b"\0" in host or b"[" in host or b"]" in host:
            raise ValueError(f"unencodable BEGIN address {self.address!r}")
        # Only an IPv6 literal (the one form with ':') is bracketed.
        bracketed = b":" in host
        if not 1 <= self.port <= 0xFFFF:
            raise ValueError(f"BEGIN port {self.port} out of range")
        w.put(b"[" + host + b"]" if bracketed else host)
        w.put(b":%d\0" % self.port)
        if self.flags:
            w.u32(self.flags)


@dataclass(frozen=True, slots=True)
class Data(RelayMsg):
    """RELAY_DATA: stream bytes (tor-spec §6.2)."""

    CMD: ClassVar[int] = RelayCmd.DATA
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(body)

    def write(self, w: Writer) -> None:
        w.put(self.data)

    def encode(self) -> bytes:
        return self.data  # hot path: skip the Writer


@dataclass(frozen=True, slots=True)
class End(RelayMsg):
    """RELAY_END: reason, plus address and TTL for EXITPOLICY (tor-spec §6.3).

    An empty body means MISC.  An EXITPOLICY address of the wrong length is
    ignored, a missing TTL reads as 0xFFFFFFFF (both per §6.3).
    """

    CMD: ClassVar[int] = RelayCmd.END
    reason: int = EndReason.MISC
    address: IpAddress | None = None
    ttl: int = TTL_ABSENT

    @classmethod
    def decode(cls, body: bytes) -> Self:
        if not body:
            return cls()
        reason = enum_or_int(EndReason, body[0])
        rest = body[1:]
        if reason != EndReason.EXITPOLICY or len(rest) not in (4, 8, 16, 20):
            return cls(reason)
        addr_len = 4 if len(rest) in (4, 8) else 16
        address = IPv4Address(rest[:4]) if addr_len == 4 else IPv6Address(rest[:16])
        ttl = _U32.unpack_from(rest, addr_len)[0] if len(rest) > addr_len else TTL_ABSENT
        return cls(reason, address, ttl)

    def write(self, w: Writer) -> None:
        w.u8(self.reason)
        if self.address is None:
            if self.ttl != TTL_ABSENT:
                raise ValueError("an END without address has no TTL")
        elif self.reason != EndReason.EXITPOLICY:
            raise ValueError("only an EXITPOLICY END carries an address")
        else:
            w.put(self.address.packed).u32(self.ttl)


@dataclass(frozen=True, slots=True)
class Connected(RelayMsg):
    """RELAY_CONNECTED: empty, or the address connected to and a TTL (tor-spec §6.2).

    IPv6 uses the ``0.0.0.0 | 6 | address`` form; another type byte there is
    malformed.  (Answers to BEGIN_DIR should be empty and are to be ignored:
    callers need not decode those.)
    """

    CMD: ClassVar[int] = RelayCmd.CONNECTED
    address: IpAddress | None = None
    ttl: int = 0

    @classmethod
    def decode(cls, body: bytes) -> Self:
        if not body:
            return cls()
        r = Reader(body, "CONNECTED")
        ipv4 = r.take(4)
        if ipv4 != _NO_IPV4:
            return cls(IPv4Address(ipv4), r.u32())
        if r.u8() != 6:
            raise ProtocolError("invalid address type in CONNECTED")
        address = IPv6Address(r.take(16))
        return cls(address, r.u32())

    def write(self, w: Writer) -> None:
        if self.address is None:
            if self.ttl:
                raise ValueError("a CONNECTED without address has no TTL")
        elif self.address.version == 4:
            if self.address.is_unspecified:
                raise ValueError("0.0.0.0 would read as the IPv6 marker")
            w.put(self.address.packed).u32(self.ttl)
        else:
            w.put(_NO_IPV4).u8(6).put(self.address.packed).u32(self.ttl)


@dataclass(frozen=True, slots=True)
class Sendme(RelayMsg):
    """RELAY_SENDME (tor-spec §7.3.1): version 0 (empty) or 1 (a 20-byte digest tag).

    Version 0 ignores the rest of the body and encodes as empty.  A version-1
    DATA shorter than 20 bytes is malformed, a longer one is cut to 20.  Other
    versions are kept with their DATA, so the circuit can apply
    ``sendme_accept_min_version`` and close.
    """

    CMD: ClassVar[int] = RelayCmd.SENDME
    version: int = 0
    data: bytes = b""

    @classmethod
    def decode(cls, body: bytes) -> Self:
        if not body or body[0] == 0:
            return cls()
        r = Reader(body, "SENDME")
        version = r.u8()
        data = r.take_u16_prefixed()
        if version == 1:
            if len(data) < SENDME_TAG_LEN:
                raise ProtocolError(f"SENDME v1 digest of {len(data)} bytes")
            data = data[:SENDME_TAG_LEN]
        return cls(version, data)

    @property
    def tag(self) -> bytes | None:
        """The authenticated-SENDME digest, for version 1."""
        return self.data if self.version == 1 else None

    def write(self, w: Writer) -> None:
        if self.version == 0:
            if self.data:
                raise ValueError("SENDME v0 carries no data")
            return
        if self.version == 1 and len(self.data) != SENDME_TAG_LEN:
            raise ValueError(f"SENDME v1 digest of {len(self.data)} bytes")
        w.u8(self.version).u16_prefixed(self.data)


@dataclass(frozen=True, slots=True)
class Extend(RelayMsg):
    """RELAY_EXTEND: the obsolete TAP form (tor-spec §5.1.2)."""

    CMD: ClassVar[int] = RelayCmd.EXTEND
    address: IPv4Address
    port: int
    onionskin: bytes
    rsa_id: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "EXTEND")
        address = IPv4Address(r.take(4))
        port = r.u16()
        onionskin = r.take(TAP_C_HANDSHAKE_LEN)
        return cls(address, port, onionskin, r.take(20))

    def write(self, w: Writer) -> None:
        w.put(self.address.packed).u16(self.port)
        put_fixed(w, self.onionskin, TAP_C_HANDSHAKE_LEN, "TAP onionskin")
        put_fixed(w, self.rsa_id, 20, "RSA identity")


@dataclass(frozen=True, slots=True)
class Extended(RelayMsg):
    """RELAY_EXTENDED: a TAP reply, as in CREATED (tor-spec §5.1.2)."""

    CMD: ClassVar[int] = RelayCmd.EXTENDED
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "EXTENDED").take(TAP_S_HANDSHAKE_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.handshake, TAP_S_HANDSHAKE_LEN, "TAP reply")


@dataclass(frozen=True, slots=True)
class Extend2(RelayMsg):
    """RELAY_EXTEND2: link specifiers, then a CREATE2-style handshake (tor-spec §5.1.2)."""

    CMD: ClassVar[int] = RelayCmd.EXTEND2
    link_specs: tuple[LinkSpec, ...]
    handshake_type: int
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "EXTEND2")
        link_specs = read_link_specs(r)
        htype = enum_or_int(HandshakeType, r.u16())
        return cls(link_specs, htype, r.take_u16_prefixed())

    def write(self, w: Writer) -> None:
        write_link_specs(w, self.link_specs)
        w.u16(self.handshake_type).u16_prefixed(self.handshake)


@dataclass(frozen=True, slots=True)
class Extended2(RelayMsg):
    """RELAY_EXTENDED2: a CREATED2-style reply (tor-spec §5.1.2)."""

    CMD: ClassVar[int] = RelayCmd.EXTENDED2
    handshake: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "EXTENDED2").take_u16_prefixed())

    def write(self, w: Writer) -> None:
        w.u16_prefixed(self.handshake)


@dataclass(frozen=True, slots=True)
class Truncated(RelayMsg):
    """RELAY_TRUNCATED: a DESTROY reason (tor-spec §5.4)."""

    CMD: ClassVar[int] = RelayCmd.TRUNCATED
    reason: int = DestroyReason.NONE

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(enum_or_int(DestroyReason, Reader(body, "TRUNCATED").u8()))

    def write(self, w: Writer) -> None:
        w.u8(self.reason)


@dataclass(frozen=True, slots=True)
class _Empty(RelayMsg):
    """A message without fields whose body, if any, receivers ignore."""

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()

    def write(self, w: Writer) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Truncate(_Empty):
    """RELAY_TRUNCATE (tor-spec §5.4)."""

    CMD: ClassVar[int] = RelayCmd.TRUNCATE


@dataclass(frozen=True, slots=True)
class Drop(_Empty):
    """RELAY_DROP: long-range padding (tor-spec §6.2, §7.2)."""

    CMD: ClassVar[int] = RelayCmd.DROP


@dataclass(frozen=True, slots=True)
class BeginDir(_Empty):
    """RELAY_BEGIN_DIR: sent with an empty body, which relays ignore (tor-spec §6.2.1)."""

    CMD: ClassVar[int] = RelayCmd.BEGIN_DIR


@dataclass(frozen=True, slots=True)
class Resolve(RelayMsg):
    """RELAY_RESOLVE: a NUL-terminated ASCII hostname (or in-addr.arpa name) (tor-spec §6.4)."""

    CMD: ClassVar[int] = RelayCmd.RESOLVE
    hostname: str

    @classmethod
    def reverse(cls, ip: IpAddress) -> Resolve:
        """A reverse lookup of ``ip`` (``d.c.b.a.in-addr.arpa`` / nibble ``ip6.arpa``)."""
        return cls(ip.reverse_pointer)

    @classmethod
    def decode(cls, body: bytes) -> Self:
        name = Reader(body, "RESOLVE").take_until(b"\0")
        if not name.isascii():
            raise ProtocolError("RESOLVE hostname not ASCII")
        return cls(name.decode("ascii"))

    def write(self, w: Writer) -> None:
        name = self.hostname.encode("ascii")
        if b"\0" in name:
            raise ValueError("NUL in RESOLVE hostname")
        w.put(name + b"\0")


@dataclass(frozen=True, slots=True)
class ResolvedAnswer:
    """One RESOLVED answer as sent: type, value, TTL; unknown types are kept.

    IPv4/IPv6 values must have length 4/16 and hostnames must be ASCII, else
    the message is malformed.  Error values carry text receivers must ignore.
    """

    rtype: int
    value: bytes
    ttl: int

    @classmethod
    def for_ip(cls, ip: IpAddress, ttl: int) -> ResolvedAnswer:
        rtype = ResolvedType.IPV4 if ip.version == 4 else ResolvedType.IPV6
        return cls(rtype, ip.packed, ttl)

    @classmethod
    def for_hostname(cls, hostname: str, ttl: int) -> ResolvedAnswer:
        return cls(ResolvedType.HOSTNAME, hostname.encode("ascii"), ttl)

    @property
    def ip(self) -> IpAddress | None:
        if self.rtype == ResolvedType.IPV4:
            return IPv4Address(self.value)
        return IPv6Address(self.value) if self.rtype == ResolvedType.IPV6 else None

    @property
    def hostname(self) -> str | None:
        return self.value.decode("ascii") if self.rtype == ResolvedType.HOSTNAME else None

    @property
    def is_error(self) -> bool:
        return self.rtype in (ResolvedType.ERROR_TRANSIENT, ResolvedType.ERROR_NONTRANSIENT)


_ANSWER_LEN: dict[int, int] = {ResolvedType.IPV4: 4, ResolvedType.IPV6: 16}


def _read_answer(r: Reader) -> ResolvedAnswer:
    rtype = enum_or_int(ResolvedType, r.u8())
    value = r.take_u8_prefixed()
    if len(value) != _ANSWER_LEN.get(rtype, len(value)):
        raise ProtocolError(f"wrong length {len(value)} for RESOLVED answer type {rtype}")
    if rtype == ResolvedType.HOSTNAME and not value.isascii():
        raise ProtocolError("RESOLVED hostname not ASCII")
    return ResolvedAnswer(rtype, value, r.u32())


@dataclass(frozen=True, slots=True)
class Resolved(RelayMsg):
    """RELAY_RESOLVED: any number of answers (tor-spec §6.4)."""

    CMD: ClassVar[int] = RelayCmd.RESOLVED
    answers: tuple[ResolvedAnswer, ...] = ()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "RESOLVED")
        answers = []
        while r.remaining:
            answers.append(_read_answer(r))
        return cls(tuple(answers))

    def write(self, w: Writer) -> None:
        for answer in self.answers:
            w.u8(answer.rtype).u8_prefixed(answer.value).u32(answer.ttl)


def _expect_version_zero(r: Reader) -> None:
    version = r.u8()
    if version != 0:
        # Proposal 324 §4.1: unrecognized versions are a protocol violation.
        raise ProtocolError(f"{r.what} version {version}")


@dataclass(frozen=True, slots=True)
class Xoff(RelayMsg):
    """RELAY_XOFF (version 0): stop sending on this stream (proposal 324 §4.1)."""

    CMD: ClassVar[int] = RelayCmd.XOFF

    @classmethod
    def decode(cls, body: bytes) -> Self:
        _expect_version_zero(Reader(body, "XOFF"))
        return cls()

    def write(self, w: Writer) -> None:
        w.u8(0)


@dataclass(frozen=True, slots=True)
class Xon(RelayMsg):
    """RELAY_XON (version 0): resume, advising a drain rate, 0 = unlimited (prop 324 §4.1)."""

    CMD: ClassVar[int] = RelayCmd.XON
    kbps_ewma: int = 0

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "XON")
        _expect_version_zero(r)
        return cls(r.u32())

    def write(self, w: Writer) -> None:
        w.u8(0).u32(self.kbps_ewma)


@dataclass(frozen=True, slots=True)
class Unrecognized(RelayMsg):
    """A relay message without a codec here, kept verbatim (tor-spec §6.1: drop it)."""

    # A per-instance field here (field() stops dataclass taking the base property as a default).
    cmd: int = field()
    body: bytes

    def write(self, w: Writer) -> None:
        w.put(self.body)


_DECODERS: dict[int, Callable[[bytes], RelayMsg]] = {
    cls.CMD: cls.decode
    for cls in (
        Begin,
        Data,
        End,
        Connected,
        Sendme,
        Extend,
        Extended,
        Truncate,
        Truncated,
        Drop,
        Resolve,
        Resolved,
        BeginDir,
        Extend2,
        Extended2,
        Xoff,
        Xon,
        hsmsg.EstablishIntro,
        hsmsg.EstablishRendezvous,
        hsmsg.Introduce1,
        hsmsg.Introduce2,
        hsmsg.Rendezvous1,
        hsmsg.Rendezvous2,
        hsmsg.IntroEstablished,
        hsmsg.RendezvousEstablished,
        hsmsg.IntroduceAck,
    )
}


def decode_relay_msg(cmd: int, data: bytes) -> RelayMsg:
    """Interpret relay Data by command; commands without a codec give Unrecognized."""
    decoder = _DECODERS.get(cmd)
    return Unrecognized(cmd, data) if decoder is None else decoder(data)


def decode_relay_cell(cell: RelayCell) -> RelayMsg:
    """``decode_relay_msg`` on a decoded relay header."""
    return decode_relay_msg(cell.cmd, cell.data)


def encode_relay_msg(msg: RelayMsg, stream_id: int, padding: bytes = b"") -> bytes:
    """The 509-byte plaintext payload carrying ``msg`` (see ``encode_relay_payload``)."""
    return encode_relay_payload(msg.cmd, stream_id, msg.encode(), padding)
