"""What a directory client asks for: request paths, batching, size limits (dir-spec §4, §5).

* the microdesc consensus: ``/tor/status-vote/current/consensus-microdesc``,
  optionally followed by ``/<F1>+<F2>...`` — the first bytes of the
  authorities' v3 identities, so that a cache answers only with a consensus
  those authorities signed (dir-spec §4.2 "conditional consensus", as C
  tor's ``directory_get_consensus_url`` writes it: 3 bytes, upper-case hex,
  sorted);
* authority certificates by identity, ``/tor/keys/fp/<F1>+<F2>``, or by
  identity and signing key, ``/tor/keys/fp-sk/<F>-<S>+...`` (dir-spec §4.2);
* microdescriptors by SHA-256 digest: ``/tor/micro/d/<D1>-<D2>...``, each
  digest in base64 without trailing ``=`` (dir-spec §4.3).

:func:`microdesc_batches` splits the digests we miss the way C tor's
``launch_descriptor_downloads`` does: at least 3 requests when there is
enough to split ("to prevent a single screwy cache from confusing us by
selective reply"), never fewer than 32 digests per request, never more than
500 (C tor's limit when requests are tunnelled over BEGIN_DIR, as ours
always are); digests sorted.

The ``MAX_*`` constants cap each response body (after decompression).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

from gotor.errors import LocalError

__all__ = [
    "CONSENSUS_PATH",
    "MAX_CERTS_BYTES",
    "MAX_CONSENSUS_BYTES",
    "MAX_MICRODESCS_PER_REQUEST",
    "MAX_MICRODESC_BYTES",
    "certs_fp_sk_path",
    "certs_path",
    "consensus_path",
    "microdesc_batches",
    "microdesc_path",
]

CONSENSUS_PATH = "/tor/status-vote/current/consensus-microdesc"

#: A real microdesc consensus is about 3 MB; leave room for growth.
MAX_CONSENSUS_BYTES = 16 << 20
#: A certificate is about 2.5 KB; an authority set is nine of them.
MAX_CERTS_BYTES = 1 << 20
#: A microdescriptor is rarely above 1 KB (families make some 10 KB); 500 per request.
MAX_MICRODESC_BYTES = 8 << 20

MAX_MICRODESCS_PER_REQUEST = 500  # C tor's max_dl_per_request() when tunnelling
MIN_MICRODESCS_PER_REQUEST = 32  # C tor's MIN_DL_PER_REQUEST
MIN_REQUESTS = 3  # C tor's MIN_REQUESTS

_CONDITIONAL_FPR_LEN = 3  # C tor's CONDITIONAL_CONSENSUS_FPR_LEN


def _ids(identities: Iterable[bytes], what: str) -> list[str]:
    out = sorted({bytes(i).hex().upper() for i in identities})
    if not out or any(len(h) != 40 for h in out):
        raise LocalError(f"{what} need at least one 20-byte identity")
    return out


def consensus_path(authorities: Iterable[bytes] | None = None) -> str:
    """The microdesc consensus; with ``authorities``, the conditional form."""
    if authorities is None:
        return CONSENSUS_PATH
    prefixes = sorted({h[: 2 * _CONDITIONAL_FPR_LEN] for h in _ids(authorities, "authorities")})
    return f"{CONSENSUS_PATH}/{'+'.join(prefixes)}"


def certs_path(identities: Iterable[bytes]) -> str:
    """The newest certificate of each authority identity."""
    return "/tor/keys/fp/" + "+".join(_ids(identities, "certificate requests"))


def certs_fp_sk_path(pairs: Iterable[tuple[bytes, bytes]]) -> str:
    """Certificates by (identity, signing-key digest) pairs."""
    keys = sorted({(bytes(i).hex().upper(), bytes(s).hex().upper()) for i, s in pairs})
    if not keys or any(len(i) != 40 or len(s) != 40 for i, s in keys):
        raise LocalError("certificate requests need 20-byte identities and key digests")
    return "/tor/keys/fp-sk/" + "+".join(f"{i}-{s}" for i, s in keys)


def microdesc_path(digests: Sequence[bytes]) -> str:
    """Microdescriptors by digest, base64 without padding, joined by ``-``."""
    if not digests or any(len(d) != 32 for d in digests):
        raise LocalError("microdescriptor requests need 32-byte digests")
    return "/tor/micro/d/" + "-".join(
        base64.b64encode(d).decode("ascii").rstrip("=") for d in digests
    )


def microdesc_batches(
    digests: Iterable[bytes], max_per_request: int = MAX_MICRODESCS_PER_REQUEST
) -> list[list[bytes]]:
    """Split the digests into requests as C tor's ``launch_descriptor_downloads`` does."""
    todo = sorted(set(digests))
    if not todo:
        return []
    n = len(todo)
    per = min(-(-n // MIN_REQUESTS), max_per_request)
    if per < MIN_MICRODESCS_PER_REQUEST:
        per = min(MIN_MICRODESCS_PER_REQUEST, n)
    return [todo[i : i + per] for i in range(0, n, per)]
