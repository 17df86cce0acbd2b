"""An emulated directory cache: the documents it holds and the HTTP/1.0 it answers.

Every emulated relay with the V2Dir flag (and every authority) carries one and
serves it over BEGIN_DIR streams (tor-spec §6.2.1); authorities also serve it on
their DirPort.  The URLs (dir-spec §4, appendix B):

* ``/tor/status-vote/current/consensus-microdesc`` — the microdesc consensus;
  ``.../consensus-microdesc/<F1>+<F2>...`` only if more than half of the listed
  authority fingerprints (hex, any even-length prefix, any case) signed it,
  else 404;
* ``/tor/keys/all``, ``/tor/keys/authority`` (authorities only),
  ``/tor/keys/fp/<F1>+...``, ``/tor/keys/sk/<S1>+...``,
  ``/tor/keys/fp-sk/<F1>-<S1>+...`` — authority key certificates;
* ``/tor/micro/d/<D1>-<D2>...`` — microdescriptors by unpadded base64 SHA-256.

Each may end in ``.z`` (deflate).  An ``Accept-Encoding`` header overrides the
suffix (dir-spec §6.1): deflate, then gzip, then identity, whichever the client
lists first in that order of preference.  A malformed URL or request gets 400,
anything unknown or unavailable 404 (dir-spec §6.2).  Only the microdesc
flavour exists in simnet, so the ns consensus URL is a 404.

:meth:`DirCache.respond` is pure (request, time, client address -> bytes).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import gzip
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gotor.errors import ProtocolError
from simnet.nodes.http import HttpRequest, http_date, response

CONSENSUS_PATH = "/tor/status-vote/current/consensus-microdesc"
_MD_DIGEST_B64_LEN = 43
_MAX_ITEMS = 128


@dataclass(frozen=True)
class AuthCertEntry:
    """One authority key certificate: v3 identity, signing-key digest, exact bytes."""

    v3_ident: bytes
    signing_key_digest: bytes
    text: bytes


@dataclass(frozen=True)
class DirDocuments:
    """What the authorities published for one period: immutable, shared by every cache."""

    consensus: bytes
    valid_after: int
    fresh_until: int
    valid_until: int
    signers: tuple[bytes, ...]
    authcerts: tuple[AuthCertEntry, ...]
    microdescs: Mapping[bytes, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    lifetime: int | None = None      # seconds for Expires; None: Pragma: no-cache


class DirCache:
    """Holds the current :class:`DirDocuments` and answers directory requests."""

    def __init__(self, *, own_authcert: AuthCertEntry | None = None) -> None:
        self.own_authcert = own_authcert
        self.docs: DirDocuments | None = None
        self._compressed: dict[str, bytes] = {}

    def publish(self, docs: DirDocuments) -> None:
        self.docs = docs
        self._compressed = {}

    def respond(self, request: HttpRequest, *, now: float, client: str | None = None) -> bytes:
        """The full HTTP/1.0 response to ``request`` at wall-clock time ``now``."""
        path = request.path
        suffix_z = path.endswith(".z")
        if suffix_z:
            path = path[:-2]
        try:
            reply = self._route(request, path, now)
        except ProtocolError:
            reply = _Reply(400)
        if reply.status != 200:
            return response(reply.status, now=now)
        encoding = choose_encoding(request.headers.get("accept-encoding"), suffix_z)
        body = self._encode(reply.body, encoding, cache=path == CONSENSUS_PATH)
        headers = {"Content-Type": "text/plain"}
        if client is not None:
            headers["X-Your-Address-Is"] = client
        headers["Content-Encoding"] = encoding
        if reply.lifetime is not None:
            headers["Expires"] = http_date(now + reply.lifetime)
        else:
            headers["Pragma"] = "no-cache"
        return response(200, body, now=now, headers=headers)

    # --- routing -------------------------------------------------------------------
    def _route(self, request: HttpRequest, path: str, now: float) -> _Reply:
        if request.method != "GET":
            return _Reply(400)     # dir-spec §6.2: posting to a non-authority is a 400
        for prefix, handler in self._routes():
            if path == prefix:
                return handler("", request, now)
            if path.startswith(prefix + "/"):
                return handler(path[len(prefix) + 1 :], request, now)
        return _Reply(404)

    def _routes(self) -> tuple[tuple[str, Callable[[str, HttpRequest, float], _Reply]], ...]:
        return (
            (CONSENSUS_PATH, self._consensus),
            ("/tor/keys/all", self._keys_all),
            ("/tor/keys/authority", self._keys_authority),
            ("/tor/keys/fp-sk", self._keys_fp_sk),
            ("/tor/keys/fp", self._keys_fp),
            ("/tor/keys/sk", self._keys_sk),
            ("/tor/micro/d", self._microdescs),
        )

    def _consensus(self, rest: str, request: HttpRequest, now: float) -> _Reply:
        docs = self.docs
        if docs is None:
            return _Reply(404)
        if rest:
            wanted = _hex_list(rest, "+")
            signed = sum(1 for w in wanted if any(s.startswith(w) for s in docs.signers))
            if 2 * signed <= len(wanted):
                return _Reply(404)
        since = _if_modified_since(request)
        if since is not None and since >= docs.valid_after:
            return _Reply(304)
        return _Reply(200, docs.consensus, max(0, docs.valid_until - int(now)))

    def _keys_all(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        if rest or self.docs is None:
            return _Reply(404)
        return _certs_reply(list(self.docs.authcerts))

    def _keys_authority(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        if rest or self.own_authcert is None:
            return _Reply(404)
        return _certs_reply([self.own_authcert])

    def _keys_fp(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        wanted = set(_hex_list(rest, "+", exact=20))
        return _certs_reply([c for c in self._certs() if c.v3_ident in wanted])

    def _keys_sk(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        wanted = set(_hex_list(rest, "+", exact=20))
        return _certs_reply([c for c in self._certs() if c.signing_key_digest in wanted])

    def _keys_fp_sk(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        pairs = set()
        for item in _split(rest, "+"):
            fp, dash, sk = item.partition("-")
            if not dash:
                raise ProtocolError("fp-sk item without '-'")
            pairs.add((_hex(fp, 20), _hex(sk, 20)))
        return _certs_reply([c for c in self._certs()
                             if (c.v3_ident, c.signing_key_digest) in pairs])

    def _microdescs(self, rest: str, _request: HttpRequest, _now: float) -> _Reply:
        digests = [_md_digest(item) for item in _split(rest, "-")]
        known = self.docs.microdescs if self.docs is not None else {}
        found = [known[d] for d in dict.fromkeys(digests) if d in known]
        return _Reply(200, b"".join(found)) if found else _Reply(404)

    def _certs(self) -> tuple[AuthCertEntry, ...]:
        return self.docs.authcerts if self.docs is not None else ()

    def _encode(self, body: bytes, encoding: str, *, cache: bool) -> bytes:
        if encoding == "identity":
            return body
        if cache and encoding in self._compressed:
            return self._compressed[encoding]
        out = zlib.compress(body) if encoding == "deflate" else gzip.compress(body, mtime=0)
        if cache:
            self._compressed[encoding] = out
        return out


def choose_encoding(accept: str | None, suffix_z: bool) -> str:
    """dir-spec §6.1: Accept-Encoding overrides the ``.z`` suffix when present."""
    if accept is None:
        return "deflate" if suffix_z else "identity"
    offered = {token.split(";")[0].strip().lower() for token in accept.split(",")}
    for encoding in ("deflate", "gzip"):
        if encoding in offered:
            return encoding
    return "identity"


def _certs_reply(certs: list[AuthCertEntry]) -> _Reply:
    if not certs:
        return _Reply(404)
    return _Reply(200, b"".join(c.text for c in sorted(certs, key=lambda c: c.v3_ident)))


def _split(text: str, sep: str) -> list[str]:
    items = text.split(sep)
    if not text or "" in items or len(items) > _MAX_ITEMS:
        raise ProtocolError("empty or oversized item list in directory URL")
    return items


def _hex(text: str, length: int) -> bytes:
    if len(text) != 2 * length:
        raise ProtocolError(f"fingerprint of {len(text)} hex digits")
    return _hex_bytes(text)


def _hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ProtocolError("bad hex in directory URL") from None


def _hex_list(text: str, sep: str, *, exact: int | None = None) -> list[bytes]:
    out = []
    for item in _split(text, sep):
        if exact is not None:
            out.append(_hex(item, exact))
        elif not item or len(item) % 2 or len(item) > 40:
            raise ProtocolError("bad fingerprint prefix in directory URL")
        else:
            out.append(_hex_bytes(item))
    return out


def _md_digest(text: str) -> bytes:
    if len(text) != _MD_DIGEST_B64_LEN:
        raise ProtocolError("microdescriptor digest of the wrong length")
    try:
        return base64.b64decode(text + "=", validate=True)
    except binascii.Error:
        raise ProtocolError("bad base64 microdescriptor digest") from None


def _if_modified_since(request: HttpRequest) -> int | None:
    text = request.headers.get("if-modified-since")
    if text is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # "-0000" or no zone at all: UTC, not the zone of the machine running the simulation.
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())
