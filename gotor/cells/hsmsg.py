"""Onion-service relay messages and the decrypted INTRODUCE payload (rend-spec-v3 §3, §4).

Cryptography stays outside: these codecs expose exactly the bytes each MAC or
signature covers so gotor.crypto can check or produce them.

* ESTABLISH_INTRO (§3.1.1): ``HANDSHAKE_AUTH`` is a MAC over every field before
  it (:meth:`EstablishIntro.mac_covered`); ``SIG`` signs
  ``"Tor establish-intro cell v1"`` followed by every field before ``SIG_LEN``
  (:meth:`EstablishIntro.signed_message`).
* INTRODUCE1/2 (§3.2.1, §3.3.2): the hs-ntor MAC covers the header (everything
  before ENCRYPTED, :meth:`Introduce1.header`) and ENCRYPTED minus its last
  32 bytes.

Legacy (v2) forms are malformed here: ESTABLISH_INTRO with an auth key type
other than Ed25519 and INTRODUCE1 with a non-zero LEGACY_KEY_ID, as in Arti.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from gotor.bytesio import Reader, Writer
from gotor.cells.common import Message, enum_or_int, put_fixed
from gotor.cells.ext import Extension, read_extension_list, write_extension_list
from gotor.cells.linkspec import LinkSpec, read_link_specs, write_link_specs
from gotor.cells.relay import RelayCmd, RelayMsg
from gotor.errors import ProtocolError

REND_COOKIE_LEN = 20
#: AUTH_KEY_TYPE [02]: Ed25519 key, SHA3-256 MAC (rend-spec-v3 §3.1.1).
AUTH_KEY_ED25519 = 2
ED25519_KEY_LEN = 32
ED25519_SIG_LEN = 64
#: MAC_LEN for SHA3-256 (rend-spec-v3 §0.3).
MAC_LEN = 32
ESTABLISH_INTRO_SIG_PREFIX = b"Tor establish-intro cell v1"
#: EXT_FIELD_TYPE of the DoS-parameters extension of ESTABLISH_INTRO (§3.1.1.1).
EXT_DOS_PARAMS = 1
_LEGACY_KEY_ID = bytes(20)


class IntroduceAckStatus(IntEnum):
    """INTRODUCE_ACK status values (rend-spec-v3 §3.2.2)."""

    SUCCESS = 0
    SERVICE_NOT_RECOGNIZED = 1
    BAD_MESSAGE_FORMAT = 2
    CANT_RELAY = 3


class OnionKeyType(IntEnum):
    """ONION_KEY_TYPE of the INTRODUCE plaintext (rend-spec-v3 §3.3)."""

    NTOR = 1


class DosParam(IntEnum):
    """PARAM_TYPE values of the DoS extension (rend-spec-v3 §3.1.1.1)."""

    INTRODUCE2_RATE_PER_SEC = 1
    INTRODUCE2_BURST_PER_SEC = 2


def decode_dos_params(body: bytes) -> tuple[tuple[int, int], ...]:
    """``(PARAM_TYPE, PARAM_VALUE)`` pairs of a DoS extension body (range checks: the caller)."""
    r = Reader(body, "DoS extension")
    params = []
    for _ in range(r.u8()):
        param_type = enum_or_int(DosParam, r.u8())
        params.append((param_type, r.u64()))
    return tuple(params)


def encode_dos_params(params: tuple[tuple[int, int], ...]) -> Extension:
    w = Writer().u8(len(params))
    for param_type, value in params:
        w.u8(param_type).u64(value)
    return Extension(EXT_DOS_PARAMS, w.getvalue())


@dataclass(frozen=True, slots=True)
class EstablishIntro(RelayMsg):
    """ESTABLISH_INTRO with an Ed25519 auth key (rend-spec-v3 §3.1.1).

    Decoding fixes the key type and both lengths and keeps extensions verbatim
    and in order, so :meth:`mac_covered` and :meth:`signed_message` rebuild
    exactly the received bytes.
    """

    CMD: ClassVar[int] = RelayCmd.ESTABLISH_INTRO
    auth_key: bytes
    extensions: tuple[Extension, ...]
    handshake_auth: bytes
    signature: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "ESTABLISH_INTRO")
        key_type = r.u8()
        if key_type != AUTH_KEY_ED25519:
            raise ProtocolError(f"ESTABLISH_INTRO with unrecognized auth key type {key_type}")
        auth_key = _take_exact(r, ED25519_KEY_LEN, "auth key")
        extensions = read_extension_list(r)
        handshake_auth = r.take(MAC_LEN)
        # Bytes after SIG are ignored, like the padding of any relay message.
        signature = _take_exact(r, ED25519_SIG_LEN, "signature")
        return cls(auth_key, extensions, handshake_auth, signature)

    def write(self, w: Writer) -> None:
        w.put(self.mac_covered())
        put_fixed(w, self.handshake_auth, MAC_LEN, "handshake auth")
        w.u16(ED25519_SIG_LEN)
        put_fixed(w, self.signature, ED25519_SIG_LEN, "signature")

    def mac_covered(self) -> bytes:
        """The bytes HANDSHAKE_AUTH authenticates: every field before it."""
        w = Writer().u8(AUTH_KEY_ED25519).u16(ED25519_KEY_LEN)
        put_fixed(w, self.auth_key, ED25519_KEY_LEN, "auth key")
        write_extension_list(w, self.extensions)
        return w.getvalue()

    def signed_message(self) -> bytes:
        """What SIG signs: the prefix string, then every field before SIG_LEN."""
        return ESTABLISH_INTRO_SIG_PREFIX + self.mac_covered() + self.handshake_auth


def _take_exact(r: Reader, length: int, what: str) -> bytes:
    """A u16-length-prefixed field that must be exactly ``length`` bytes long."""
    value = r.take_u16_prefixed()
    if len(value) != length:
        raise ProtocolError(f"{r.what} {what} of {len(value)} bytes, expected {length}")
    return value


@dataclass(frozen=True, slots=True)
class IntroEstablished(RelayMsg):
    """INTRO_ESTABLISHED: an extension list (rend-spec-v3 §3.1.3)."""

    CMD: ClassVar[int] = RelayCmd.INTRO_ESTABLISHED
    extensions: tuple[Extension, ...] = ()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(read_extension_list(Reader(body, "INTRO_ESTABLISHED")))

    def write(self, w: Writer) -> None:
        write_extension_list(w, self.extensions)


@dataclass(frozen=True, slots=True)
class _Introduce(RelayMsg):
    """The shared format of INTRODUCE1 and INTRODUCE2 (rend-spec-v3 §3.2.1).

    ``encrypted`` is CLIENT_PK | ENCRYPTED_DATA | MAC for hs-ntor (§3.3.2),
    opaque here.
    """

    auth_key_type: int
    auth_key: bytes
    extensions: tuple[Extension, ...]
    encrypted: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "INTRODUCE")
        if r.take(20) != _LEGACY_KEY_ID:
            raise ProtocolError("legacy key id in INTRODUCE cell (v2 format unsupported)")
        key_type = r.u8()
        auth_key = r.take_u16_prefixed()
        extensions = read_extension_list(r)
        return cls(key_type, auth_key, extensions, r.rest())

    def header(self) -> bytes:
        """Every field before ENCRYPTED, as encoded (the start of what the hs-ntor MAC covers)."""
        w = Writer().put(_LEGACY_KEY_ID).u8(self.auth_key_type).u16_prefixed(self.auth_key)
        write_extension_list(w, self.extensions)
        return w.getvalue()

    def write(self, w: Writer) -> None:
        w.put(self.header()).put(self.encrypted)


@dataclass(frozen=True, slots=True)
class Introduce1(_Introduce):
    """INTRODUCE1: client to introduction point."""

    CMD: ClassVar[int] = RelayCmd.INTRODUCE1


@dataclass(frozen=True, slots=True)
class Introduce2(_Introduce):
    """INTRODUCE2: introduction point to service, same contents as the INTRODUCE1."""

    CMD: ClassVar[int] = RelayCmd.INTRODUCE2


@dataclass(frozen=True, slots=True)
class IntroduceAck(RelayMsg):
    """INTRODUCE_ACK: status and extensions (rend-spec-v3 §3.2.2); unknown statuses kept."""

    CMD: ClassVar[int] = RelayCmd.INTRODUCE_ACK
    status: int = IntroduceAckStatus.SUCCESS
    extensions: tuple[Extension, ...] = ()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "INTRODUCE_ACK")
        status = enum_or_int(IntroduceAckStatus, r.u16())
        return cls(status, read_extension_list(r))

    def write(self, w: Writer) -> None:
        w.u16(self.status)
        write_extension_list(w, self.extensions)


@dataclass(frozen=True, slots=True)
class EstablishRendezvous(RelayMsg):
    """ESTABLISH_RENDEZVOUS: a 20-byte cookie; extra bytes ignored (rend-spec-v3 §4.1)."""

    CMD: ClassVar[int] = RelayCmd.ESTABLISH_RENDEZVOUS
    cookie: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(Reader(body, "ESTABLISH_RENDEZVOUS").take(REND_COOKIE_LEN))

    def write(self, w: Writer) -> None:
        put_fixed(w, self.cookie, REND_COOKIE_LEN, "rendezvous cookie")


@dataclass(frozen=True, slots=True)
class RendezvousEstablished(RelayMsg):
    """RENDEZVOUS_ESTABLISHED: empty; extra bytes ignored (rend-spec-v3 §4.1)."""

    CMD: ClassVar[int] = RelayCmd.RENDEZVOUS_ESTABLISHED

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()

    def write(self, w: Writer) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Rendezvous1(RelayMsg):
    """RENDEZVOUS1: cookie and HANDSHAKE_INFO (Y | AUTH for hs-ntor) (rend-spec-v3 §4.2)."""

    CMD: ClassVar[int] = RelayCmd.RENDEZVOUS1
    cookie: bytes
    handshake_info: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        r = Reader(body, "RENDEZVOUS1")
        cookie = r.take(REND_COOKIE_LEN)
        return cls(cookie, r.rest())

    def write(self, w: Writer) -> None:
        put_fixed(w, self.cookie, REND_COOKIE_LEN, "rendezvous cookie")
        w.put(self.handshake_info)


@dataclass(frozen=True, slots=True)
class Rendezvous2(RelayMsg):
    """RENDEZVOUS2: the HANDSHAKE_INFO of the matching RENDEZVOUS1 (rend-spec-v3 §4.2)."""

    CMD: ClassVar[int] = RelayCmd.RENDEZVOUS2
    handshake_info: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(body)

    def write(self, w: Writer) -> None:
        w.put(self.handshake_info)


@dataclass(frozen=True, slots=True)
class IntroducePayload(Message):
    """The decrypted ENCRYPTED_DATA of an INTRODUCE2 (rend-spec-v3 §3.3).

    ``padding`` is whatever follows the link specifiers (the sender pads the
    plaintext to a fixed size); it is kept so the value re-encodes exactly.
    """

    cookie: bytes
    extensions: tuple[Extension, ...]
    onion_key_type: int
    onion_key: bytes
    link_specs: tuple[LinkSpec, ...]
    padding: bytes = b""

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "INTRODUCE payload")
        cookie = r.take(REND_COOKIE_LEN)
        extensions = read_extension_list(r)
        key_type = enum_or_int(OnionKeyType, r.u8())
        onion_key = r.take_u16_prefixed()
        link_specs = read_link_specs(r)
        return cls(cookie, extensions, key_type, onion_key, link_specs, r.rest())

    def write(self, w: Writer) -> None:
        put_fixed(w, self.cookie, REND_COOKIE_LEN, "rendezvous cookie")
        write_extension_list(w, self.extensions)
        w.u8(self.onion_key_type).u16_prefixed(self.onion_key)
        write_link_specs(w, self.link_specs)
        w.put(self.padding)
