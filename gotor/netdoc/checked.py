"""Typestate for signed, time-bound documents (the role of Arti's tor-checkable).

A parser never hands out a signed document's contents directly.  It returns
an ``Unverified...`` wrapper (a subclass of :class:`Unverified`) whose only
ways in are:

* ``verify(..., now=...)`` — defined by each subclass with the keys it needs:
  checks the signatures and, when ``now`` is a time rather than ``None``, the
  validity window; returns the contents or raises
  :class:`~gotor.errors.VerificationError`;
* :meth:`Unverified.dangerously_assume_verified` — for tests and inspection
  tools only; the name is meant to stand out in review.

``now`` is a required keyword argument of every ``verify``: a caller that
skips the time check writes ``now=None`` and so says so.  Validity windows are
always *reported* (``.validity`` on the wrapper, which is not trust-relevant:
it only says what the document claims) and *judged* only against a ``now``.

A document's window is a :class:`ValidityWindow`; :meth:`ValidityWindow.check`
raises :class:`NotYetValidError` or :class:`ExpiredError`, allowing a
:class:`Tolerance` for clock skew (dir-spec §3.1: certificates "MAY tolerate
some clock skew"; dir-spec §3.4.1: clients keep using a consensus for a while
after valid-until).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from gotor.errors import VerificationError
from gotor.netdoc.fields import format_time

__all__ = [
    "ExpiredError",
    "NotYetValidError",
    "Tolerance",
    "Unverified",
    "ValidityWindow",
]

T = TypeVar("T")


class NotYetValidError(VerificationError):
    """The document's validity starts after ``now`` (beyond the tolerance)."""


class ExpiredError(VerificationError):
    """The document's validity ended before ``now`` (beyond the tolerance)."""


@dataclass(frozen=True)
class Tolerance:
    """Clock-skew allowance in seconds: accept ``before`` seconds early, ``after`` late."""

    before: int = 0
    after: int = 0

    @classmethod
    def of(cls, tolerance: Tolerance | int) -> Tolerance:
        """An int means the same allowance on both sides."""
        return tolerance if isinstance(tolerance, Tolerance) else cls(tolerance, tolerance)


@dataclass(frozen=True)
class ValidityWindow:
    """The interval [not_before, not_after] (POSIX seconds) a document claims."""

    not_before: int
    not_after: int

    def contains(self, now: int, tolerance: Tolerance | int = 0) -> bool:
        tol = Tolerance.of(tolerance)
        return self.not_before - tol.before <= now <= self.not_after + tol.after

    def check(self, now: int, tolerance: Tolerance | int = 0, *, what: str = "document") -> None:
        """Raise NotYetValidError/ExpiredError unless ``now`` is inside (with tolerance)."""
        tol = Tolerance.of(tolerance)
        if now < self.not_before - tol.before:
            raise NotYetValidError(f"{what} not valid until {format_time(self.not_before)}")
        if now > self.not_after + tol.after:
            raise ExpiredError(f"{what} expired at {format_time(self.not_after)}")

    def __str__(self) -> str:
        return f"{format_time(self.not_before)} .. {format_time(self.not_after)}"


class Unverified(Generic[T]):
    """A parsed document whose signatures have not been checked.

    Subclasses add a ``verify(..., now=...)`` method and may expose claims that
    are needed *before* verification (which keys signed it), never the contents.
    """

    __slots__ = ("_content", "_validity")

    def __init__(self, content: T, validity: ValidityWindow) -> None:
        self._content = content
        self._validity = validity

    @property
    def validity(self) -> ValidityWindow:
        """The validity window the document claims (reported, not yet judged)."""
        return self._validity

    def dangerously_assume_verified(self) -> T:
        """The contents WITHOUT any signature or time check: tests and tools only."""
        return self._content

    def _checked(self, now: int | None, tolerance: Tolerance | int, what: str) -> T:
        """For subclasses: the contents, after the time check if ``now`` is given."""
        if now is not None:
            self._validity.check(now, tolerance, what=what)
        return self._content
