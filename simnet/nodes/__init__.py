"""Emulated Tor nodes for simnet: relays, exits, directory caches, authorities, web servers.

They run as ``async`` code on their host's :class:`~simnet.binding.SimRuntime`
and speak the protocol through gotor's *pure* layer (cells, crypto, netdoc
build side) only, never through gotor's client modules (gotor.link,
gotor.circuit, gotor.stream): the two sides of every exchange are written
separately, so that a bug on one side cannot be mirrored on the other and pass
unnoticed (DESIGN.md).  Modules:

* :mod:`~simnet.nodes.keys` — relay and authority key material from the seed;
* :mod:`~simnet.nodes.relay` — :class:`RelayNode`, its config and misbehaviour switches;
* :mod:`~simnet.nodes.channel` — link handshakes (both sides), cell I/O, the extend pool;
* :mod:`~simnet.nodes.circuit` — CREATE*, relay crypto, forwarding, EXTEND2, DESTROY;
* :mod:`~simnet.nodes.exit` — exit streams, BEGIN_DIR, RESOLVE;
* :mod:`~simnet.nodes.sendme` — circuit and stream windows as C tor enforces them;
* :mod:`~simnet.nodes.exitpolicy`, :mod:`~simnet.nodes.dns` — exit policies, simulated DNS;
* :mod:`~simnet.nodes.dircache` — directory documents served over HTTP/1.0;
* :mod:`~simnet.nodes.authority`, :mod:`~simnet.nodes.bwweights` — flags,
  microdescriptors, bandwidth weights, the signed consensus;
* :mod:`~simnet.nodes.web`, :mod:`~simnet.nodes.http` — the web server and HTTP parsing.

The network as a whole is built by :func:`simnet.topology.build_topology`.
"""

from simnet.nodes.authority import AuthorityNode, DirectoryAuthorities
from simnet.nodes.dircache import AuthCertEntry, DirCache, DirDocuments
from simnet.nodes.dns import Dns
from simnet.nodes.exitpolicy import ExitPolicy
from simnet.nodes.keys import AuthorityKeys, RelayKeys
from simnet.nodes.relay import Misbehaviour, RelayConfig, RelayInfo, RelayNode
from simnet.nodes.web import WebServer

__all__ = [
    "AuthCertEntry",
    "AuthorityKeys",
    "AuthorityNode",
    "DirCache",
    "DirDocuments",
    "DirectoryAuthorities",
    "Dns",
    "ExitPolicy",
    "Misbehaviour",
    "RelayConfig",
    "RelayInfo",
    "RelayKeys",
    "RelayNode",
    "WebServer",
]
