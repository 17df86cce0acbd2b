"""The server side of SOCKS 4, 4a and 5, sans-IO (RFC 1928, RFC 1929, socks-extensions).

A :class:`SocksServerMachine` is fed the bytes an application sends
(:meth:`~SocksServerMachine.receive`) and says what to send back
(:meth:`~SocksServerMachine.data_to_send`) until the application's request is
complete (:attr:`~SocksServerMachine.request`).  The caller then acts on the
request and finishes with one reply builder: :meth:`reply_connected`,
:meth:`reply_resolved`, :meth:`reply_resolved_ptr` or :meth:`reply_error`.
Bytes that arrived after the request (optimistic data, socks-extensions §5)
are in :attr:`~SocksServerMachine.leftover`.

What is accepted (socks-extensions §1.1, as C tor):

* SOCKS5 method negotiation with "no authentication" (0x00) and
  "username/password" (0x02, RFC 1929) — preferred when offered, since its
  credentials become the stream-isolation key; empty fields are allowed;
* SOCKS5 CONNECT with IPv4, domain-name and IPv6 addresses, and Tor's
  RESOLVE (0xF0) and RESOLVE_PTR (0xF1) commands (socks-extensions §2);
  BIND and UDP ASSOCIATE are refused with "command not supported";
* SOCKS4 CONNECT and RESOLVE, and SOCKS4a hostnames; the SOCKS4 user id is
  the isolation key;
* something that looks like HTTP (socks-extensions §4) gets a short HTTP
  error saying this is not an HTTP proxy.

Malformed input raises :class:`SocksError` (a ProtocolError) whose ``reply``
holds the bytes to send before closing (an error reply, or nothing).  The
parser's states map to one handler each (a dispatch table); every buffer is
capped.  :func:`reply_code_for` maps gotor errors, and RELAY_END reasons
(tor-spec §6.3, as C tor's ``stream_end_reason_to_socks5_response``), to
SOCKS5 reply codes.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from gotor.cells.relaymsg import EndReason
from gotor.errors import (
    ConnectionRefused,
    LocalError,
    NoPathError,
    ProtocolError,
    StreamError,
    Timeout,
)

__all__ = [
    "AddrType",
    "Isolation",
    "Reply",
    "SocksCommand",
    "SocksError",
    "SocksRequest",
    "SocksServerMachine",
    "reply_code_for",
]

Isolation = tuple[int, bytes, bytes]  # (SOCKS version, username, password)

MAX_HANDSHAKE_BYTES = 1024  # a SOCKS request is at most ~520 bytes; anything more is abuse

HTTP_NOT_A_PROXY = (
    b"HTTP/1.0 501 Tor is not an HTTP Proxy\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"This is a SOCKS proxy, not an HTTP proxy: configure your application to use SOCKS.\n"
)


class SocksCommand(enum.IntEnum):
    CONNECT = 0x01
    BIND = 0x02
    UDP_ASSOCIATE = 0x03
    RESOLVE = 0xF0  # socks-extensions §2
    RESOLVE_PTR = 0xF1


class AddrType(enum.IntEnum):
    """SOCKS5 ATYP values (RFC 1928 §4)."""

    IPV4 = 0x01
    HOSTNAME = 0x03
    IPV6 = 0x04


class Reply(enum.IntEnum):
    """SOCKS5 REP values (RFC 1928 §6)."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


_SOCKS4_GRANTED, _SOCKS4_REJECTED = 0x5A, 0x5B
_NO_AUTH, _USER_PASS, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF
_SUPPORTED = frozenset({SocksCommand.CONNECT, SocksCommand.RESOLVE, SocksCommand.RESOLVE_PTR})


@dataclass(frozen=True)
class SocksRequest:
    """What the application asked for.  ``host`` is a hostname or a canonical IP address."""

    version: int
    command: SocksCommand
    host: str
    port: int
    addr_type: AddrType
    username: bytes | None = None
    password: bytes | None = None

    @property
    def isolation(self) -> Isolation | None:
        """The credentials as a stream-isolation key (None without credentials)."""
        if self.username is None:
            return None
        return (self.version, self.username, self.password or b"")


class SocksError(ProtocolError):
    """The application broke the protocol; send ``reply`` (maybe empty), then close."""

    def __init__(self, reason: str, reply: bytes = b"") -> None:
        super().__init__(reason)
        self.reply = reply


class State(enum.Enum):
    START = "start"  # nothing yet: the first byte says SOCKS4, SOCKS5 or HTTP
    SOCKS5_REQUEST = "socks5 request"
    SOCKS5_AUTH = "socks5 username/password"
    REQUESTED = "request complete"  # waiting for the caller's reply
    DONE = "done"  # a success reply was built
    FAILED = "failed"


def _socks5_reply(code: int, atyp: int = AddrType.IPV4, addr: bytes = bytes(4),
                  port: int = 0) -> bytes:
    return bytes([5, code, 0, atyp]) + addr + port.to_bytes(2, "big")


def _socks4_reply(granted: bool, addr: bytes = bytes(4), port: int = 0) -> bytes:
    return bytes([0, _SOCKS4_GRANTED if granted else _SOCKS4_REJECTED]) + port.to_bytes(2, "big") + addr


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address our caller gives for a reply; anything else is API misuse."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise LocalError(f"{text[:60]!r} is not an IP address") from None


def _hostname(raw: bytes, fail: Callable[[str], SocksError]) -> str:
    """A hostname as the application sent it: printable ASCII, 1-255 bytes."""
    if not raw or any(b <= 0x20 or b >= 0x7F for b in raw):
        raise fail(f"bad hostname {raw[:40]!r}")
    return raw.decode("ascii")


class SocksServerMachine:
    """One SOCKS handshake, server side (see the module docstring)."""

    def __init__(self, *, allow_socks4: bool = True) -> None:
        self.allow_socks4 = allow_socks4
        self.state = State.START
        self.version = 0
        self.request: SocksRequest | None = None
        self.leftover = b""
        self._buf = bytearray()
        self._out = bytearray()
        self._creds: tuple[bytes, bytes] | None = None
        self._handlers: dict[State, Callable[[], int]] = {
            State.START: self._start,
            State.SOCKS5_AUTH: self._socks5_auth,
            State.SOCKS5_REQUEST: self._socks5_request,
        }

    # --- input -----------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Consume bytes from the application; raises SocksError on a protocol violation."""
        if self.state is State.FAILED:
            raise SocksError("the SOCKS handshake already failed")
        if self.state in (State.REQUESTED, State.DONE):
            self.leftover += data  # optimistic data (socks-extensions §5)
            return
        self._buf += data
        try:
            while self._buf and self.state in self._handlers:
                used = self._handlers[self.state]()
                if used == 0:
                    break
                del self._buf[:used]
            if len(self._buf) > MAX_HANDSHAKE_BYTES:
                raise SocksError(f"SOCKS handshake longer than {MAX_HANDSHAKE_BYTES} bytes")
        except SocksError as exc:
            # Whatever was due before the error (a method choice) goes out first.
            exc.reply = self.data_to_send() + exc.reply
            self.state = State.FAILED
            raise
        if self.request is not None and self._buf:
            self.leftover += bytes(self._buf)
            self._buf.clear()

    def data_to_send(self) -> bytes:
        """Bytes to write to the application now (method choice, auth status)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # --- handlers (each returns how many bytes it consumed; 0 = need more) -------
    def _start(self) -> int:
        first = self._buf[0]
        if first == 5:
            return self._socks5_greeting()
        if first == 4 and self.allow_socks4:
            return self._socks4_request()
        if chr(first) in "GHPCO":  # GET, HEAD, POST, PUT, CONNECT, OPTIONS
            raise SocksError("an HTTP request on a SOCKS port", HTTP_NOT_A_PROXY)
        raise SocksError(f"unsupported SOCKS version {first}")

    def _socks5_greeting(self) -> int:
        if len(self._buf) < 2:
            return 0
        n = self._buf[1]
        if len(self._buf) < 2 + n:
            return 0
        methods = set(self._buf[2 : 2 + n])
        self.version = 5
        if _USER_PASS in methods:
            self._out += bytes([5, _USER_PASS])
            self.state = State.SOCKS5_AUTH
        elif _NO_AUTH in methods:
            self._out += bytes([5, _NO_AUTH])
            self.state = State.SOCKS5_REQUEST
        else:
            raise SocksError("no acceptable SOCKS5 authentication method",
                             bytes([5, _NO_ACCEPTABLE]))
        return 2 + n

    def _socks5_auth(self) -> int:
        """RFC 1929: VER=1 ULEN UNAME PLEN PASSWD (empty fields allowed, as Tor)."""
        buf = self._buf
        if buf[0] != 1:
            raise SocksError(f"bad username/password version {buf[0]}", bytes([1, 1]))
        if len(buf) < 2 or len(buf) < 3 + buf[1]:
            return 0
        ulen = buf[1]
        plen = buf[2 + ulen]
        end = 3 + ulen + plen
        if len(buf) < end:
            return 0
        self._creds = (bytes(buf[2 : 2 + ulen]), bytes(buf[3 + ulen : end]))
        self._out += bytes([1, 0])
        self.state = State.SOCKS5_REQUEST
        return end

    def _socks5_request(self) -> int:
        buf = self._buf
        if len(buf) < 4:
            return 0
        if buf[0] != 5:
            raise SocksError(f"SOCKS5 request with version {buf[0]}",
                             _socks5_reply(Reply.GENERAL_FAILURE))
        command = self._command(buf[1], _socks5_reply)
        addr = self._socks5_address(buf[3], 4)
        if addr is None:
            return 0
        host, atyp, end = addr
        if len(buf) < end + 2:
            return 0
        port = int.from_bytes(buf[end : end + 2], "big")
        self._finish(command, host, port, atyp, _socks5_reply)
        return end + 2

    def _command(self, code: int, reply: Callable[[int], bytes]) -> SocksCommand:
        unsupported = SocksError(f"unsupported SOCKS command {code:#x}",
                                 reply(Reply.COMMAND_NOT_SUPPORTED))
        try:
            command = SocksCommand(code)
        except ValueError:
            raise unsupported from None
        if command not in _SUPPORTED:
            raise unsupported
        return command

    def _socks5_address(self, atyp: int, at: int) -> tuple[str, AddrType, int] | None:
        buf = self._buf
        if atyp == AddrType.IPV4:
            end = at + 4
            return (str(ipaddress.IPv4Address(bytes(buf[at:end]))), AddrType.IPV4, end) \
                if len(buf) >= end else None
        if atyp == AddrType.IPV6:
            end = at + 16
            return (str(ipaddress.IPv6Address(bytes(buf[at:end]))), AddrType.IPV6, end) \
                if len(buf) >= end else None
        if atyp == AddrType.HOSTNAME:
            if len(buf) < at + 1 or len(buf) < at + 1 + buf[at]:
                return None
            end = at + 1 + buf[at]
            host = _hostname(bytes(buf[at + 1 : end]),
                             lambda r: SocksError(r, _socks5_reply(Reply.GENERAL_FAILURE)))
            return host, AddrType.HOSTNAME, end
        raise SocksError(f"unsupported SOCKS5 address type {atyp}",
                         _socks5_reply(Reply.ADDRESS_TYPE_NOT_SUPPORTED))

    def _socks4_request(self) -> int:
        """VN=4 CD DSTPORT DSTIP USERID NUL [HOSTNAME NUL if DSTIP is 0.0.0.x, x != 0]."""
        buf = self._buf
        if len(buf) < 9:
            return 0
        self.version = 4
        command = self._command(buf[1], lambda r: _socks4_reply(False))
        if command is SocksCommand.RESOLVE_PTR:
            raise SocksError("RESOLVE_PTR is SOCKS5 only", _socks4_reply(False))
        user_end = buf.find(b"\0", 8)
        if user_end < 0:
            return 0
        port = int.from_bytes(buf[2:4], "big")
        ip = bytes(buf[4:8])
        self._creds = (bytes(buf[8:user_end]), b"") if user_end > 8 else None
        if ip[:3] == b"\0\0\0" and ip[3] != 0:  # SOCKS4a
            host_end = buf.find(b"\0", user_end + 1)
            if host_end < 0:
                return 0
            host = _hostname(bytes(buf[user_end + 1 : host_end]),
                             lambda r: SocksError(r, _socks4_reply(False)))
            self._finish(command, host, port, AddrType.HOSTNAME, None)
            return host_end + 1
        self._finish(command, str(ipaddress.IPv4Address(ip)), port, AddrType.IPV4, None)
        return user_end + 1

    def _finish(self, command: SocksCommand, host: str, port: int, atyp: AddrType,
                reply5: Callable[..., bytes] | None) -> None:
        def fail(reason: str, code: Reply) -> SocksError:
            return SocksError(reason, reply5(code) if reply5 else _socks4_reply(False))

        if command is SocksCommand.CONNECT and port == 0:
            raise fail("CONNECT to port 0", Reply.GENERAL_FAILURE)
        if command is SocksCommand.RESOLVE_PTR and atyp is AddrType.HOSTNAME:
            raise fail("RESOLVE_PTR needs an IP address", Reply.ADDRESS_TYPE_NOT_SUPPORTED)
        user, password = self._creds if self._creds is not None else (None, None)
        self.request = SocksRequest(self.version, command, host, port, atyp, user, password)
        self.state = State.REQUESTED

    # --- replies ------------------------------------------------------------------
    def _replying(self, success: bool, command: SocksCommand | None = None) -> SocksRequest:
        if self.state is not State.REQUESTED or self.request is None:
            raise LocalError(f"no SOCKS request awaits a reply (state {self.state.value})")
        if command is not None and self.request.command is not command:
            raise LocalError(f"a {self.request.command.name} is not answered as a {command.name}")
        self.state = State.DONE if success else State.FAILED
        return self.request

    def reply_connected(self, bound: tuple[str, int] = ("0.0.0.0", 0)) -> bytes:
        """CONNECT succeeded (Tor reports 0.0.0.0:0 as the bound address)."""
        ip = _ip_address(bound[0])  # LocalError before any state change
        req = self._replying(True, SocksCommand.CONNECT)
        if req.version == 4:
            return _socks4_reply(True, ip.packed if ip.version == 4 else bytes(4), bound[1])
        atyp = AddrType.IPV4 if ip.version == 4 else AddrType.IPV6
        return _socks5_reply(Reply.SUCCEEDED, atyp, ip.packed, bound[1])

    def reply_resolved(self, address: str) -> bytes:
        """RESOLVE succeeded with ``address`` (socks-extensions §2)."""
        ip = _ip_address(address)  # LocalError before any state change
        req = self._replying(True, SocksCommand.RESOLVE)
        if req.version == 4:
            if ip.version != 4:
                self.state = State.FAILED
                return _socks4_reply(False)
            return _socks4_reply(True, ip.packed)
        atyp = AddrType.IPV4 if ip.version == 4 else AddrType.IPV6
        return _socks5_reply(Reply.SUCCEEDED, atyp, ip.packed)

    def reply_resolved_ptr(self, hostname: str) -> bytes:
        """RESOLVE_PTR succeeded: the name goes in the bound-address field."""
        self._replying(True, SocksCommand.RESOLVE_PTR)
        name = hostname.encode("ascii", "replace")[:255]
        return _socks5_reply(Reply.SUCCEEDED, AddrType.HOSTNAME, bytes([len(name)]) + name)

    def reply_error(self, code: Reply) -> bytes:
        """The request failed; close after sending this."""
        if code is Reply.SUCCEEDED:
            raise LocalError("reply_error needs an error code")
        req = self._replying(False)
        return _socks4_reply(False) if req.version == 4 else _socks5_reply(code)


# --- errors to reply codes ----------------------------------------------------------

#: C tor's stream_end_reason_to_socks5_response (DONE before CONNECTED means refused).
_END_REASONS: dict[int, Reply] = {
    EndReason.MISC: Reply.GENERAL_FAILURE,
    EndReason.RESOLVEFAILED: Reply.HOST_UNREACHABLE,
    EndReason.CONNECTREFUSED: Reply.CONNECTION_REFUSED,
    EndReason.EXITPOLICY: Reply.NOT_ALLOWED,
    EndReason.DESTROY: Reply.GENERAL_FAILURE,
    EndReason.DONE: Reply.CONNECTION_REFUSED,
    EndReason.TIMEOUT: Reply.TTL_EXPIRED,
    EndReason.NOROUTE: Reply.HOST_UNREACHABLE,
    EndReason.HIBERNATING: Reply.GENERAL_FAILURE,
    EndReason.INTERNAL: Reply.GENERAL_FAILURE,
    EndReason.RESOURCELIMIT: Reply.GENERAL_FAILURE,
    EndReason.CONNRESET: Reply.CONNECTION_REFUSED,
    EndReason.TORPROTOCOL: Reply.GENERAL_FAILURE,
}


def reply_code_for(exc: BaseException) -> Reply:
    """The SOCKS5 reply for a failed request.

    A StreamError carries the exit's RELAY_END reason (mapped as C tor
    does); a timeout is "TTL expired" (as END reason TIMEOUT); a path that no
    exit policy allows is "not allowed by ruleset"; anything else is a
    general failure.
    """
    if isinstance(exc, StreamError) and exc.end_reason is not None:
        return _END_REASONS.get(exc.end_reason, Reply.GENERAL_FAILURE)
    if isinstance(exc, Timeout):
        return Reply.TTL_EXPIRED
    if isinstance(exc, NoPathError):
        return Reply.NOT_ALLOWED
    if isinstance(exc, ConnectionRefused):
        return Reply.CONNECTION_REFUSED
    return Reply.GENERAL_FAILURE
