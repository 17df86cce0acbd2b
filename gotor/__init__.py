"""gotor: a Tor client in Python, built simulation-first.

The library API (h11-style: everything a user needs is importable from here)::

    async with TorClient(rt, ClientConfig(data_dir, DirConfig.from_dir_authorities(lines)))
            as client:
        stream = await client.connect("example.com", 443, isolation="tab-1")

``rt`` is a runtime (:class:`gotor.runtime.aio.AsyncioRuntime` in production,
simnet's ``SimRuntime`` in simulation).  Every error gotor raises on purpose is a
:class:`GotorError`.

The names are loaded on first use (PEP 562), so that ``import gotor.cells`` in a
fuzz harness or ``gotor doc`` does not pay for the whole client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "CircuitStats": "gotor.circmgr",
    "ClientStats": "gotor.client",
    "ClientStream": "gotor.client",
    "TorClient": "gotor.client",
    "CircuitConfig": "gotor.config",
    "ClientConfig": "gotor.config",
    "StreamConfig": "gotor.config",
    "BootstrapEvent": "gotor.dir",
    "DirConfig": "gotor.dir",
    "DirSource": "gotor.dir",
    "SourceKind": "gotor.dir",
    **{name: "gotor.errors" for name in (
        "BootstrapError", "Cancelled", "ChannelError", "CircuitError", "GotorError",
        "LocalError", "NetworkError", "NoPathError", "ProtocolError", "StreamError",
        "Timeout")},
}

if TYPE_CHECKING:
    from gotor.circmgr import CircuitStats
    from gotor.client import ClientStats, ClientStream, TorClient
    from gotor.config import CircuitConfig, ClientConfig, StreamConfig
    from gotor.dir import BootstrapEvent, DirConfig, DirSource, SourceKind
    from gotor.errors import (
        BootstrapError,
        Cancelled,
        ChannelError,
        CircuitError,
        GotorError,
        LocalError,
        NetworkError,
        NoPathError,
        ProtocolError,
        StreamError,
        Timeout,
    )

__all__ = [
    "BootstrapError",
    "BootstrapEvent",
    "Cancelled",
    "ChannelError",
    "CircuitConfig",
    "CircuitError",
    "CircuitStats",
    "ClientConfig",
    "ClientStats",
    "ClientStream",
    "DirConfig",
    "DirSource",
    "GotorError",
    "LocalError",
    "NetworkError",
    "NoPathError",
    "ProtocolError",
    "SourceKind",
    "StreamConfig",
    "StreamError",
    "Timeout",
    "TorClient",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gotor' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
