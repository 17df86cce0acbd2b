"""TLS inside simnet: OpenSSL's real TLS over simulated byte streams.

The ssl module's memory BIOs (``SSLContext.wrap_bio``) run the very TLS stack
the asyncio binding uses, with the same client context
(:func:`gotor.runtime.aio.client_tls_context`: no CA checks, since Tor
authenticates a link through its CERTS cell, tor-spec §4.2), so the link
handshake code path is the same as in production and the client reads the
relay's certificate with ``peer_cert_der()``.

Ciphertext differs on every run (OpenSSL's ECDHE randomness cannot be seeded)
though its lengths do not; so this layer switches off the tracing of the TCP
stream under it and traces the *plaintext* it delivers instead.

``Network(tls=False)`` is the switch for large load scenarios: no encryption at
all, the server sends its certificate DER in a small length-prefixed frame when
it accepts (one flight, as TLS 1.3's server flight), and the client's
``peer_cert_der()`` returns it.  Everything above sees the same interface.

Certificates: :func:`make_credentials` builds a deterministic self-signed X.509
certificate from a seeded RSA key (:func:`seeded_rsa_key`, cached in memory and
on disk, since generating RSA keys in Python is slow) with validity dates fixed
relative to the world's virtual epoch.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import ClosedError, LocalError, NetworkError, Timeout, TlsError
from gotor.runtime.aio import client_tls_context, server_tls_context
from gotor.runtime.api import ByteStream, ConnHandler, TlsCredentials
from gotor.runtime.sync import timeout
from simnet.link import SimStream, digest

if TYPE_CHECKING:
    from simnet.binding import SimRuntime
    from simnet.world import World

HANDSHAKE_TIMEOUT = 60.0   # asyncio's default ssl_handshake_timeout
_READ = 65536
_KEY_CACHE_VERSION = "v1"  # bump when the seeded key derivation changes

_client_ctx: ssl.SSLContext | None = None
_server_ctx: dict[TlsCredentials, ssl.SSLContext] = {}
_key_memo: dict[tuple[int, str, int], RsaPrivateKey] = {}


# --- sessions ---------------------------------------------------------------------------
class _Session:
    """What both modes share: addresses, drain, abort, no half-close, plaintext tracing."""

    def __init__(self, raw: SimStream) -> None:
        self._raw = raw
        self._closed = False
        self._eof = False
        raw.trace_reads = False

    @property
    def peer(self) -> tuple[str, int]:
        return self._raw.peer

    @property
    def local(self) -> tuple[str, int]:
        return self._raw.local

    async def drain(self) -> None:
        await self._raw.drain()

    def abort(self) -> None:
        self._closed = True
        self._raw.abort()

    def write_eof(self) -> None:
        raise LocalError("a TLS stream cannot half-close; use aclose()")

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("stream is closed")

    def _delivered(self, data: bytes) -> bytes:
        if data:
            self._trace("recv", n=len(data), crc=digest(data))
        elif not self._eof:
            self._eof = True
            self._trace("fin")
        return data

    def _trace(self, event: str, **fields: Any) -> None:
        raw = self._raw
        raw.host.network.world.trace.record(raw.host.name, event, conn=raw.label, **fields)


class TlsSession(_Session):
    """A TLS session driven through memory BIOs over a simulated stream (a ``TlsStream``)."""

    def __init__(self, raw: SimStream, ctx: ssl.SSLContext, *, server_side: bool) -> None:
        super().__init__(raw)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = ctx.wrap_bio(self._in, self._out, server_side=server_side)

    async def handshake(self) -> None:
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self._fill()
            except ssl.SSLError as exc:
                raise TlsError(f"TLS handshake failed: {exc.reason or exc}") from None
        self._flush()
        self._trace("tls")

    async def read(self, max_bytes: int = _READ) -> bytes:
        if max_bytes <= 0:
            raise LocalError("read() needs a positive max_bytes")
        self._check_open()
        while not self._eof:
            try:
                data = self._ssl.read(max_bytes)
            except ssl.SSLWantReadError:
                self._flush()  # post-handshake messages may want an answer
                await self._fill()
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""  # close_notify, or the TCP stream ended without one
            except ssl.SSLError as exc:
                raise TlsError(f"TLS failure: {exc.reason or exc}") from None
            self._flush()
            return self._delivered(data)
        return b""

    def write(self, data: bytes) -> None:
        self._check_open()
        self._raw.check_writable()
        if data:
            try:
                self._ssl.write(data)
            except ssl.SSLError as exc:
                raise TlsError(f"TLS failure: {exc.reason or exc}") from None
            self._flush()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._ssl.unwrap()  # queues close_notify; the peer's is not awaited
        except ssl.SSLError:
            pass
        try:
            self._flush()
        except NetworkError:
            pass
        await self._raw.aclose()

    def peer_cert_der(self) -> bytes | None:
        return self._ssl.getpeercert(binary_form=True)

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._raw.write(data)

    async def _fill(self) -> None:
        data = await self._raw.read(_READ)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()


class PlainSession(_Session):
    """``Network(tls=False)``: no encryption, but the client still gets the server's cert DER."""

    def __init__(self, raw: SimStream) -> None:
        super().__init__(raw)
        self._cert: bytes | None = None   # the server's, once the client has read it
        self._pending = b""

    async def server_hello(self, der: bytes) -> None:
        self._raw.write(len(der).to_bytes(2, "big") + der)
        self._trace("tls")

    async def client_hello(self) -> None:
        size = int.from_bytes(await self._read_exactly(2), "big")
        self._cert = await self._read_exactly(size)
        self._trace("tls")

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._pending) < n:
            data = await self._raw.read(_READ)
            if not data:
                raise TlsError("connection closed during the (plain) handshake")
            self._pending += data
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    async def read(self, max_bytes: int = _READ) -> bytes:
        if max_bytes <= 0:
            raise LocalError("read() needs a positive max_bytes")
        self._check_open()
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return self._delivered(data)
        if self._eof:
            return b""
        return self._delivered(await self._raw.read(max_bytes))

    def write(self, data: bytes) -> None:
        self._check_open()
        self._raw.write(data)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._raw.aclose()

    def peer_cert_der(self) -> bytes | None:
        return self._cert


# --- binding entry points (called by simnet.binding.SimRuntime) ----------------------------
def _sim_stream(stream: ByteStream) -> SimStream:
    if not isinstance(stream, SimStream):
        raise LocalError("simnet TLS runs over simnet streams only")
    return stream


async def _handshake(rt: SimRuntime, raw: SimStream, step: Any) -> None:
    try:
        await timeout(rt, HANDSHAKE_TIMEOUT, step, what="TLS handshake")
    except Timeout:
        raw.abort()
        raise TlsError(f"TLS handshake timed out after {HANDSHAKE_TIMEOUT:g} s") from None
    except BaseException:
        raw.abort()
        raise


async def tls_client(rt: SimRuntime, stream: ByteStream) -> TlsSession | PlainSession:
    """The client side of TLS over a freshly connected simulated stream."""
    raw = _sim_stream(stream)
    if not raw.host.network.tls:
        plain = PlainSession(raw)
        await _handshake(rt, raw, plain.client_hello())
        return plain
    global _client_ctx
    if _client_ctx is None:
        _client_ctx = client_tls_context()
    session = TlsSession(raw, _client_ctx, server_side=False)
    await _handshake(rt, raw, session.handshake())
    return session


def tls_server_handler(rt: SimRuntime, creds: TlsCredentials, handler: ConnHandler) -> ConnHandler:
    """Wrap a connection handler so that it receives TLS sessions presenting ``creds``."""
    der = cert_der(creds)
    ctx = _server_context(creds) if rt.host.network.tls else None  # bad creds fail listen()

    async def serve(stream: ByteStream) -> None:
        raw = _sim_stream(stream)
        session: TlsSession | PlainSession
        if ctx is not None:
            session = TlsSession(raw, ctx, server_side=True)
            await _handshake(rt, raw, session.handshake())
        else:
            session = PlainSession(raw)
            await _handshake(rt, raw, session.server_hello(der))
        await handler(session)
        await session.aclose()  # with close_notify, as the asyncio binding closes TLS

    return serve


def _server_context(creds: TlsCredentials) -> ssl.SSLContext:
    # Loading a key pair costs about a millisecond: once per credentials, not per connection.
    ctx = _server_ctx.get(creds)
    if ctx is None:
        ctx = _server_ctx[creds] = server_tls_context(creds)
    return ctx


# --- deterministic keys and certificates -----------------------------------------------------
def cert_der(creds: TlsCredentials) -> bytes:
    """The DER of the first certificate in ``creds`` (the one a client sees)."""
    pem = creds.cert_chain_pem.decode("ascii", "replace")
    end = pem.find("-----END CERTIFICATE-----")
    if end < 0:
        raise LocalError("credentials hold no PEM certificate")
    return ssl.PEM_cert_to_DER_cert(pem[: end + len("-----END CERTIFICATE-----")])


def _cache_dir() -> Path | None:
    setting = os.environ.get("GOTOR_SIMNET_CACHE", "")
    if setting.lower() == "off":
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "gotor-simnet"


def seeded_rsa_key(world: World, name: str, bits: int) -> RsaPrivateKey:
    """The RSA key named ``name`` in this world: a function of (seed, name, bits).

    Primes come from ``world.byte_stream("rsa:" + name)``.  Keys are memoised
    and cached on disk (``$GOTOR_SIMNET_CACHE``, default ``~/.cache/gotor-simnet``,
    ``off`` to disable) because generation takes 0.1-1 s each.
    """
    memo_key = (world.seed, name, bits)
    key = _key_memo.get(memo_key)
    if key is not None:
        return key
    tag = f"{_KEY_CACHE_VERSION}:{world.seed}:{name}:{bits}".encode()
    directory = _cache_dir()
    path = directory / f"rsa-{hashlib.sha256(tag).hexdigest()[:32]}.der" if directory else None
    key = _load_key(path, bits)
    if key is None:
        key = RsaPrivateKey.generate(bits, world.byte_stream("rsa:" + name))
        _store_key(path, key)
    _key_memo[memo_key] = key
    return key


def _load_key(path: Path | None, bits: int) -> RsaPrivateKey | None:
    if path is None:
        return None
    try:
        key = RsaPrivateKey.from_der(path.read_bytes(), trusted=True)
    except (OSError, ValueError, TypeError):
        return None
    return key if key.public.bits == bits else None


def _store_key(path: Path | None, key: RsaPrivateKey) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel test workers may race
        tmp.write_bytes(key.private_der())
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time



def _hostname(rng: random.Random) -> x509.Name:
    # Tor's link certificates carry random hostnames of this shape.
    host = "www." + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567")
                            for _ in range(rng.randint(8, 20))) + ".net"
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])


def make_credentials(world: World, name: str, *, bits: int = 2048, days: int = 365,
                     key: RsaPrivateKey | None = None,
                     issuer_key: RsaPrivateKey | None = None) -> TlsCredentials:
    """A deterministic X.509 certificate and key for host or relay ``name``.

    Same seed and name, same bytes: the key is ``key`` or :func:`seeded_rsa_key`,
    the serial and hostnames come from ``world.rng``, validity starts the day
    before the world's epoch, and RSA PKCS#1 v1.5 signatures are deterministic.
    Self-signed unless ``issuer_key`` is given; a Tor relay's link certificate is
    issued by its RSA identity key (tor-spec §2), which is what that is for.
    """
    subject_key = (key or seeded_rsa_key(world, "tls:" + name, bits)).library_key
    signer = issuer_key.library_key if issuer_key is not None else subject_key
    rng = world.rng("tls-cert:" + name)
    subject = _hostname(rng)
    issuer = _hostname(rng) if issuer_key is not None else subject
    day = int(world.epoch // 86400) * 86400 - 86400
    start = datetime.datetime.fromtimestamp(day, tz=datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(subject_key.public_key())
            .serial_number(rng.getrandbits(63) | 1)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .sign(signer, hashes.SHA256()))
    key_pem = subject_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption())
    return TlsCredentials(cert.public_bytes(serialization.Encoding.PEM), key_pem)
