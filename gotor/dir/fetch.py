"""One directory request to one source, and the documents it returns (dir-spec §4, §5).

The directory client does not know how a directory stream is made: it calls
``open_dir_stream(source)`` (:data:`OpenDirStream`), which the client wires
to a one-hop circuit and BEGIN_DIR (CREATE_FAST to an authority or fallback
before there is a consensus; CREATE2 to a cache afterwards, when its
microdescriptor gives the ntor key), and a test wires to a plain TCP
connection.  Each function here opens one stream, sends one ``GET``, reads
the response under one deadline, and returns parsed documents:

* :func:`fetch_consensus` — an *unverified* consensus (the caller checks it);
* :func:`fetch_certs` — authority certificates, each verified on its own,
  only for the identities asked for (dir-spec §5.1, §5.2: "discard any
  [documents] that it did not request");
* :func:`fetch_microdescs` — microdescriptors whose digests were asked for.

Any failure raises a :class:`~gotor.errors.GotorError`: the runtime's network
errors, :class:`~gotor.errors.Timeout`, whatever the stream opener raises
(channel, circuit, stream errors), :class:`~gotor.errors.ProtocolError` for
bad HTTP or bad documents, and :class:`DirResponseError` for a non-200 status.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from gotor.circuit.params import HopSpec
from gotor.dir.http import HttpResponse, ResponseParser, format_request
from gotor.dir.requests import (
    MAX_CERTS_BYTES,
    MAX_CONSENSUS_BYTES,
    MAX_MICRODESC_BYTES,
    certs_path,
    consensus_path,
    microdesc_path,
)
from gotor.errors import GotorError, ProtocolError
from gotor.link.channel import ChanTarget
from gotor.netdir import Relay
from gotor.netdoc.authcert import AuthCert, parse_authcerts
from gotor.netdoc.consensus import Flavor, UnverifiedConsensus, parse_consensus
from gotor.netdoc.microdesc import Microdesc, parse_microdescs
from gotor.runtime.api import ByteStream, Runtime
from gotor.runtime.sync import timeout

__all__ = [
    "DirResponseError",
    "DirSource",
    "OpenDirStream",
    "SourceKind",
    "fetch_certs",
    "fetch_consensus",
    "fetch_microdescs",
    "http_get",
]


class SourceKind(enum.Enum):
    AUTHORITY = "authority"
    FALLBACK = "fallback"
    CACHE = "cache"  # a directory cache listed in the consensus


@dataclass(frozen=True)
class DirSource:
    """A relay to send directory requests to (over a one-hop circuit and BEGIN_DIR).

    ``rsa_id`` is the relay identity its link handshake must prove (for an
    authority this is its relay key, not its v3 signing identity);
    ``ntor_key`` is known once the relay is listed with a microdescriptor,
    and allows CREATE2 instead of CREATE_FAST.
    """

    nickname: str
    rsa_id: bytes
    ipv4: tuple[str, int]
    ed_id: bytes | None = None
    ntor_key: bytes | None = None
    kind: SourceKind = SourceKind.FALLBACK

    @classmethod
    def from_relay(cls, relay: Relay) -> DirSource:
        return cls(relay.nickname, relay.rsa_id, relay.ipv4, relay.ed_id, relay.ntor_key,
                   SourceKind.CACHE)

    def hop_spec(self) -> HopSpec | None:
        """For CREATE2, once the ntor key is known; None means use CREATE_FAST."""
        if self.ntor_key is None:
            return None
        return HopSpec(self.rsa_id, self.ed_id, self.ntor_key, self.ipv4)

    def chan_target(self) -> ChanTarget:
        """Where the channel goes and whom it must reach (for CREATE_FAST)."""
        return ChanTarget(self.ipv4[0], self.ipv4[1], self.rsa_id, self.ed_id)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.nickname} at {self.ipv4[0]}:{self.ipv4[1]}"


OpenDirStream = Callable[[DirSource], Awaitable[ByteStream]]


class DirResponseError(ProtocolError):
    """The directory answered with a status other than 200 (``status`` says which)."""

    def __init__(self, status: int, reason: str, path: str) -> None:
        super().__init__(f"HTTP {status} {reason[:60]} for {path[:60]}")
        self.status = status


async def http_get(
    rt: Runtime,
    open_stream: OpenDirStream,
    source: DirSource,
    path: str,
    *,
    max_body: int,
    deadline: float,
) -> HttpResponse:
    """GET ``path`` from ``source``: the 200 response, within ``deadline`` seconds in all."""

    async def exchange() -> HttpResponse:
        stream = await open_stream(source)
        try:
            response = await _request(stream, path, max_body)
        except BaseException:
            stream.abort()  # a failure or a cancellation (the deadline): no goodbyes
            raise
        try:
            await stream.aclose()
        except GotorError:
            pass  # we have the whole response; how the stream ends does not matter
        return response

    response = await timeout(rt, deadline, exchange(), what=f"directory request to {source}")
    if not response.ok:
        raise DirResponseError(response.status, response.reason, path)
    return response


async def _request(stream: ByteStream, path: str, max_body: int) -> HttpResponse:
    stream.write(format_request(path))
    await stream.drain()
    parser = ResponseParser(max_body=max_body)
    while True:
        data = await stream.read(65536)
        response = parser.feed(data) if data else parser.feed_eof()
        if response is not None:
            return response


async def fetch_consensus(
    rt: Runtime, open_stream: OpenDirStream, source: DirSource, *, deadline: float,
    authorities: Iterable[bytes] | None = None,
) -> tuple[UnverifiedConsensus, bytes]:
    """The source's microdesc consensus, parsed but not verified, and its bytes."""
    response = await http_get(rt, open_stream, source, consensus_path(authorities),
                              max_body=MAX_CONSENSUS_BYTES, deadline=deadline)
    unverified = parse_consensus(response.body)
    if unverified.flavor is not Flavor.MICRODESC:
        raise ProtocolError(f"asked for a microdesc consensus, got {unverified.flavor.value}")
    return unverified, response.body


async def fetch_certs(
    rt: Runtime, open_stream: OpenDirStream, source: DirSource, identities: Sequence[bytes],
    *, now: int, deadline: float,
) -> list[AuthCert]:
    """Certificates for ``identities``, each verified (and valid at ``now``).

    Certificates for identities we did not ask for are dropped; a certificate
    that fails verification makes the whole answer an error, since the
    source is misbehaving.
    """
    response = await http_get(rt, open_stream, source, certs_path(identities),
                              max_body=MAX_CERTS_BYTES, deadline=deadline)
    wanted = set(identities)
    return [u.verify(now=now) for u in parse_authcerts(response.body) if u.fingerprint in wanted]


async def fetch_microdescs(
    rt: Runtime, open_stream: OpenDirStream, source: DirSource, digests: Sequence[bytes],
    *, deadline: float,
) -> list[Microdesc]:
    """The microdescriptors among ``digests`` that the source sent (maybe fewer)."""
    response = await http_get(rt, open_stream, source, microdesc_path(digests),
                              max_body=MAX_MICRODESC_BYTES, deadline=deadline)
    wanted = set(digests)
    found: dict[bytes, Microdesc] = {}
    for md in parse_microdescs(response.body):
        if md.digest in wanted:
            found.setdefault(md.digest, md)
    return list(found.values())
