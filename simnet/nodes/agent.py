"""Simulated user agents: applications that fetch and upload through a SOCKS5 proxy.

A :class:`UserAgent` runs on its own simulated host and plays a list of
:class:`FetchPlan` entries, at most ``concurrency`` at a time, each no earlier
than its planned time.  One fetch is: TCP to the proxy, a SOCKS5 handshake
(RFC 1928; username/password, RFC 1929, when the plan carries an isolation
key, which Tor uses to separate streams onto different circuits), CONNECT to
the web server *by hostname* (the exit resolves it), then HTTP/1.0 with
:mod:`simnet.nodes.web`:

* ``GET /bytes/<N>?seed=<S>``: the N-byte body is checked byte by byte with
  :class:`~simnet.content.ContentChecker` as it arrives;
* ``POST /upload?seed=<S>``: the body is :class:`~simnet.content.ContentReader`
  output, and the server's receipt ``ok <N> <sha256>`` must name exactly what
  was sent.

A failed attempt (SOCKS refusal, reset, truncated body, timeout) is retried
up to ``retries`` times after ``retry_delay``.  A byte mismatch is never
accepted: it marks the fetch *corrupt*, whatever later attempts do.  Every
attempt is traced (``fetch`` records: plan number, attempt, outcome, latency).

The SOCKS5 and HTTP code here is the agent's own, written from RFC 1928/1929
and HTTP/1.0 and deliberately not gotor's (``gotor.socks``, ``gotor.dir.http``):
the two sides of a test must not share a bug.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from gotor.errors import GotorError, NetworkError, ProtocolError, Timeout
from gotor.runtime.api import ByteStream, Runtime
from gotor.runtime.sync import timeout
from simnet.content import ContentChecker, ContentReader
from simnet.net import Host

SOCKS_VERSION = 5
NO_AUTH, USER_PASS, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
CMD_CONNECT, ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x01, 0x03, 0x04
#: RFC 1928 §6 reply codes, for error texts.
SOCKS_REPLIES = {
    1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
    4: "host unreachable", 5: "connection refused", 6: "TTL expired",
    7: "command not supported", 8: "address type not supported",
}
MAX_HEAD = 16 * 1024
_CHUNK = 64 * 1024


class AgentError(GotorError):
    """One attempt failed (the text says how); the agent records it and may retry."""


@dataclass(frozen=True)
class FetchPlan:
    """One request an agent will make (``at``: seconds after the agent starts)."""

    index: int
    agent: int
    at: float
    host: str
    port: int
    size: int
    seed: str
    upload: bool = False
    isolation: tuple[str, str] | None = None   # SOCKS5 username, password

    @property
    def path(self) -> str:
        return f"/upload?seed={self.seed}" if self.upload else f"/bytes/{self.size}?seed={self.seed}"


@dataclass
class FetchRecord:
    """What became of one plan (latency and ttfb: of the successful attempt)."""

    plan: FetchPlan
    ok: bool = False
    corrupt: bool = False
    attempts: int = 0
    started: float | None = None
    latency: float | None = None
    ttfb: float | None = None
    verified: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Attempt:
    """The progress of one attempt (kept outside the coroutine so a timeout still sees it)."""

    start: float
    ttfb: float = 0.0          # when the response head arrived
    done: float = 0.0          # when the last body byte (or the receipt) arrived
    verified: int = 0
    corrupt_at: int | None = None


class _Buffered:
    """Reads exact amounts and delimited heads from a byte stream."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def fill(self) -> bool:
        data = await self.stream.read(_CHUNK)
        self.buf += data
        return bool(data)

    async def exactly(self, n: int, what: str) -> bytes:
        while len(self.buf) < n:
            if not await self.fill():
                raise AgentError(f"connection closed during {what}")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def head(self) -> bytes:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("HTTP response head too long")
            if not await self.fill():
                raise AgentError("connection closed before the HTTP response")
        out = bytes(self.buf[:end])
        del self.buf[: end + 4]
        return out

    def take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


# --- SOCKS5 (RFC 1928, RFC 1929) -----------------------------------------------------------
def socks_greeting(auth: tuple[str, str] | None) -> bytes:
    return bytes([SOCKS_VERSION, 1, USER_PASS if auth else NO_AUTH])


def socks_userpass(auth: tuple[str, str]) -> bytes:
    user, password = auth[0].encode(), auth[1].encode()
    if not 0 < len(user) < 256 or not 0 < len(password) < 256:
        raise AgentError("SOCKS username and password must be 1..255 bytes")
    return bytes([1, len(user)]) + user + bytes([len(password)]) + password


def socks_connect_request(host: str, port: int) -> bytes:
    name = host.encode("idna")
    if not 0 < len(name) < 256:
        raise AgentError(f"hostname {host[:40]!r} cannot be sent over SOCKS5")
    return (bytes([SOCKS_VERSION, CMD_CONNECT, 0, ATYP_DOMAIN, len(name)]) + name
            + port.to_bytes(2, "big"))


async def socks5_connect(reader: _Buffered, host: str, port: int,
                         auth: tuple[str, str] | None) -> tuple[str, int]:
    """Handshake and CONNECT on an open stream; the bound address of the reply."""
    stream = reader.stream
    stream.write(socks_greeting(auth))
    version, method = await reader.exactly(2, "the SOCKS method choice")
    if version != SOCKS_VERSION:
        raise ProtocolError(f"SOCKS server answered version {version}")
    if method != (USER_PASS if auth else NO_AUTH):
        raise AgentError("SOCKS server accepted none of our methods"
                         if method == NO_ACCEPTABLE else f"SOCKS server chose method {method}")
    if auth is not None:
        stream.write(socks_userpass(auth))
        _ver, status = await reader.exactly(2, "SOCKS authentication")
        if status != 0:
            raise AgentError(f"SOCKS authentication refused (status {status})")
    stream.write(socks_connect_request(host, port))
    await stream.drain()
    version, rep, _rsv, atyp = await reader.exactly(4, "the SOCKS reply")
    if version != SOCKS_VERSION:
        raise ProtocolError(f"SOCKS reply has version {version}")
    bound = await _socks_address(reader, atyp)
    if rep != 0:
        raise AgentError(f"SOCKS CONNECT failed: {SOCKS_REPLIES.get(rep, 'unknown')} ({rep})")
    return bound


async def _socks_address(reader: _Buffered, atyp: int) -> tuple[str, int]:
    if atyp == ATYP_IPV4:
        addr = str(IPv4Address(await reader.exactly(4, "the SOCKS reply")))
    elif atyp == ATYP_IPV6:
        addr = str(IPv6Address(await reader.exactly(16, "the SOCKS reply")))
    elif atyp == ATYP_DOMAIN:
        (n,) = await reader.exactly(1, "the SOCKS reply")
        addr = (await reader.exactly(n, "the SOCKS reply")).decode("ascii", "replace")
    else:
        raise ProtocolError(f"SOCKS reply has address type {atyp}")
    return addr, int.from_bytes(await reader.exactly(2, "the SOCKS reply"), "big")


# --- HTTP/1.0 ------------------------------------------------------------------------------
def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-cased) of an HTTP/1.x response head."""
    try:
        lines = head.decode("iso-8859-1").split("\r\n")
        proto, code, *_reason = lines[0].split(" ", 2)
        if not proto.startswith("HTTP/1.") or len(code) != 3 or not _ascii_digits(code):
            raise ValueError
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    except ValueError:
        raise ProtocolError("malformed HTTP response head") from None
    return int(code), headers


def _ascii_digits(text: str) -> bool:
    # str.isdigit() alone also takes "¹" (latin-1 0xB9) and other digits int() refuses.
    return text.isascii() and text.isdigit()


def content_length(headers: dict[str, str]) -> int:
    value = headers.get("content-length", "")
    if not _ascii_digits(value) or len(value) > 15:
        raise ProtocolError(f"bad or missing Content-Length {value[:20]!r}")
    return int(value)


def request_head(plan: FetchPlan) -> bytes:
    lines = [f"{'POST' if plan.upload else 'GET'} {plan.path} HTTP/1.0", f"Host: {plan.host}"]
    if plan.upload:
        lines.append(f"Content-Length: {plan.size}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class UserAgent:
    """One simulated application behind the proxy (see the module docstring)."""

    def __init__(self, host: Host, name: str, proxy: tuple[str, int], plans: list[FetchPlan],
                 *, concurrency: int = 1, retries: int = 0, retry_delay: float = 1.0,
                 attempt_timeout: float = 120.0) -> None:
        self.host = host
        self.name = name
        self.proxy = proxy
        self.records = [FetchRecord(plan) for plan in sorted(plans, key=lambda p: p.index)]
        self.concurrency = concurrency
        self.retries = retries
        self.retry_delay = retry_delay
        self.attempt_timeout = attempt_timeout
        self._next = 0

    async def run(self) -> list[FetchRecord]:
        """Play every plan; returns the records (also kept in ``records``)."""
        rt = self.host.runtime
        start = rt.now()
        workers = [rt.spawn(self._worker(start), name=f"{self.name} worker {k}")
                   for k in range(min(self.concurrency, len(self.records)))]
        for worker in workers:
            await worker
        return self.records

    async def _worker(self, start: float) -> None:
        rt = self.host.runtime
        while self._next < len(self.records):
            record = self.records[self._next]
            self._next += 1
            delay = start + record.plan.at - rt.now()
            if delay > 0:
                await rt.sleep(delay)
            await self._play(rt, record)

    async def _play(self, rt: Runtime, record: FetchRecord) -> None:
        record.started = rt.now()
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                await rt.sleep(self.retry_delay)
            record.attempts = attempt
            progress = _Attempt(rt.now())
            try:
                await timeout(rt, self.attempt_timeout, self._attempt(record.plan, progress),
                              what="fetch")
                error = None
            except (GotorError, UnicodeError) as exc:
                # Network failures, SOCKS refusals, malformed replies and timeouts all end the
                # attempt the same way; their text is the record.
                error = _describe(exc)
            if progress.corrupt_at is not None:
                record.corrupt = True
                error = f"content mismatch at byte {progress.corrupt_at}"
            rt.trace("fetch", id=record.plan.index, attempt=attempt, size=record.plan.size,
                     upload=record.plan.upload, outcome=error or "ok",
                     latency=rt.now() - progress.start, verified=progress.verified)
            if error is None:
                record.ok, record.verified = True, progress.verified
                record.latency = progress.done - progress.start
                record.ttfb = progress.ttfb - progress.start
                return
            record.errors.append(error)
            if record.corrupt:
                return

    async def _attempt(self, plan: FetchPlan, progress: _Attempt) -> None:
        rt = self.host.runtime
        stream = await rt.connect(*self.proxy)
        try:
            reader = _Buffered(stream)
            await socks5_connect(reader, plan.host, plan.port, plan.isolation)
            stream.write(request_head(plan))
            digest = await _send_upload(stream, plan) if plan.upload else ""
            await stream.drain()
            status, headers = parse_response_head(await reader.head())
            progress.ttfb = rt.now()
            if plan.upload:
                await _check_receipt(reader, status, headers, plan, digest, progress)
            else:
                await _check_download(reader, status, headers, plan, progress)
            progress.done = rt.now()
            # HTTP/1.0: the server closes after its response; anything more is an error.
            if reader.buf or await reader.fill():
                raise ProtocolError("data after the end of the response")
        except BaseException:
            stream.abort()
            raise
        await stream.aclose()


async def _send_upload(stream: ByteStream, plan: FetchPlan) -> str:
    source, digest = ContentReader(plan.seed, plan.size), hashlib.sha256()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        stream.write(chunk)
        await stream.drain()
    return digest.hexdigest()


async def _check_download(reader: _Buffered, status: int, headers: dict[str, str],
                          plan: FetchPlan, progress: _Attempt) -> None:
    if status != 200:
        raise AgentError(f"HTTP status {status}")
    length = content_length(headers)
    if length != plan.size:
        raise ProtocolError(f"Content-Length {length}, asked for {plan.size}")
    checker = ContentChecker(plan.seed)
    while True:
        data = reader.take(plan.size - checker.received)
        checker.feed(data)
        if not checker.ok:
            progress.corrupt_at = checker.mismatch_at
            raise AgentError("content mismatch")
        progress.verified = checker.received
        if checker.received == plan.size:
            return
        if not await reader.fill():
            raise AgentError(f"body truncated at {checker.received} of {plan.size} bytes")


async def _check_receipt(reader: _Buffered, status: int, headers: dict[str, str],
                         plan: FetchPlan, digest: str, progress: _Attempt) -> None:
    body = (await reader.exactly(content_length(headers), "the upload receipt")).decode()
    words = body.split()
    if status == 422 and words[:1] == ["mismatch"]:
        # The server saw different bytes from the ones we sent: corruption on the way.
        progress.corrupt_at = int(words[1]) if len(words) > 1 and _ascii_digits(words[1]) else 0
        raise AgentError("upload arrived corrupted")
    if status != 200:
        raise AgentError(f"HTTP status {status}")
    if words != ["ok", str(plan.size), digest]:
        raise ProtocolError(f"unexpected upload receipt {body[:80]!r}")
    progress.verified = plan.size


def _describe(exc: BaseException) -> str:
    kinds = {Timeout: "timeout", NetworkError: "network", ProtocolError: "protocol",
             AgentError: "failed"}
    kind = next((v for k, v in kinds.items() if isinstance(exc, k)), type(exc).__name__)
    return f"{kind}: {exc}"

