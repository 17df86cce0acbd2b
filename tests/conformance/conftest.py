"""Fixtures of the runtime conformance suite (the harness is conformance_harness.py)."""

from __future__ import annotations

import pytest
from conformance_harness import Harness

from gotor.runtime.api import TlsCredentials
from simnet.tls import make_credentials
from simnet.world import World


@pytest.fixture(scope="session")
def creds() -> TlsCredentials:
    return make_credentials(World(0), "conformance")


@pytest.fixture(params=["asyncio", "simnet", "simnet-shuffled"])
def harness(request: pytest.FixtureRequest, creds: TlsCredentials) -> Harness:
    return Harness(request.param, creds)
