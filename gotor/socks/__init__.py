"""SOCKS front end: the sans-IO protocol machine and the async listener.

* :mod:`~gotor.socks.machine` — SOCKS 4/4a/5 server handshake (RFC 1928, RFC 1929,
  Tor's socks-extensions), reply codes;
* :mod:`~gotor.socks.server` — :class:`~gotor.socks.server.SocksServer`: accept,
  handshake, ``connect(host, port, isolation)``, splice.
"""

from gotor.socks.machine import (
    AddrType,
    Isolation,
    Reply,
    SocksCommand,
    SocksError,
    SocksRequest,
    SocksServerMachine,
    reply_code_for,
)
from gotor.socks.server import ConnectFn, ResolveFn, SocksServer, splice

__all__ = [
    "AddrType",
    "ConnectFn",
    "Isolation",
    "Reply",
    "ResolveFn",
    "SocksCommand",
    "SocksError",
    "SocksRequest",
    "SocksServer",
    "SocksServerMachine",
    "reply_code_for",
    "splice",
]
