"""Deterministic content for end-to-end byte checks in simnet.

Every byte a simulated web server sends, and every byte a simulated user agent
uploads, is a function of a *seed* (any string; integers are used as their
decimal text) and an offset: the AES-128-CTR keystream under
``SHA-256("gotor-content:" | seed)[:16]``.  Both ends compute it independently,
so a single flipped, lost, duplicated or reordered byte anywhere on a path
through the emulated Tor network is caught, and the check needs no copy of the
data: :class:`ContentChecker` verifies a stream incrementally.

Random access is cheap: the keystream at offset ``o`` starts from counter block
``o // 16`` (the 128-bit big-endian counter of CTR mode), so :func:`content`
never generates the bytes before ``offset``.
"""

from __future__ import annotations

import hashlib

from gotor.crypto.primitives import AesCtr, sha256
from gotor.errors import LocalError

_BLOCK = 16


def content_key(seed: str | int) -> bytes:
    """The AES-128 key of ``seed``'s content."""
    return hashlib.sha256(f"gotor-content:{seed}".encode()).digest()[:16]


def content(seed: str | int, size: int, offset: int = 0) -> bytes:
    """``size`` bytes of ``seed``'s content starting at ``offset``."""
    if size < 0 or offset < 0:
        raise LocalError("content size and offset must not be negative")
    block, skip = divmod(offset, _BLOCK)
    ctr = AesCtr(content_key(seed), block.to_bytes(16, "big"))
    return ctr.update(bytes(skip + size))[skip:]


def content_digest(seed: str | int, size: int) -> str:
    """Hex SHA-256 of ``content(seed, size)`` (what an upload receipt names)."""
    return sha256(content(seed, size)).hex()


class ContentReader:
    """Produces ``seed``'s content in order, ``read(n)`` at a time, up to ``size`` bytes."""

    __slots__ = ("_ctr", "remaining")

    def __init__(self, seed: str | int, size: int) -> None:
        if size < 0:
            raise LocalError("content size must not be negative")
        self._ctr = AesCtr(content_key(seed))
        self.remaining = size

    def read(self, n: int) -> bytes:
        """The next ``min(n, remaining)`` bytes (b"" once everything was read)."""
        n = min(n, self.remaining)
        self.remaining -= n
        return self._ctr.update(bytes(n))


class ContentChecker:
    """Verifies a byte stream against ``seed``'s content as it arrives.

    ``feed`` never raises on a mismatch: it records the first bad offset in
    ``mismatch_at`` (None while everything matched) and keeps counting, so the
    caller decides how to report.  ``digest()`` is the SHA-256 of what was fed.
    """

    __slots__ = ("_ctr", "_hash", "mismatch_at", "received")

    def __init__(self, seed: str | int) -> None:
        self._ctr = AesCtr(content_key(seed))
        self._hash = hashlib.sha256()
        self.received = 0
        self.mismatch_at: int | None = None

    def feed(self, data: bytes) -> None:
        expected = self._ctr.update(bytes(len(data)))
        if self.mismatch_at is None and expected != data:
            self.mismatch_at = self.received + next(
                i for i, (a, b) in enumerate(zip(expected, data, strict=True)) if a != b)
        self.received += len(data)
        self._hash.update(data)

    @property
    def ok(self) -> bool:
        return self.mismatch_at is None

    def digest(self) -> str:
        return self._hash.hexdigest()
