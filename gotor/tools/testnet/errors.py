"""The harness's one error type (a GotorError: ``gotor testnet`` prints it as one line)."""

from __future__ import annotations

from gotor.errors import GotorError

__all__ = ["TestnetError"]


class TestnetError(GotorError):
    """The private network could not be made, started, reached or stopped."""

    __test__ = False  # a pytest-importable name that is not a test class
