"""A private Tor network of real C tor processes on loopback (issue 5).

``gotor testnet up|status|down DIR`` on the command line; in Python::

    net = testnet.up(Path("net"))          # 3 authorities, 3 relays, 2 exits, a C tor client
    print(net.dir_authority_lines())       # point any client at it
    testnet.stop(net)

The parts: :mod:`~gotor.tools.testnet.model` (nodes and ``network.json``),
:mod:`~gotor.tools.testnet.keys` (tor-gencert, tor --list-fingerprint),
:mod:`~gotor.tools.testnet.torrcgen` (torrc files), :mod:`~gotor.tools.testnet.content`
(test files), :mod:`~gotor.tools.testnet.services` (the web and DNS server process), :mod:`~gotor.tools.testnet.procs` (processes by PID) and
:mod:`~gotor.tools.testnet.network` (start, wait, stop).

This package is tooling around gotor, not part of the client: it uses
subprocess, sockets and the wall clock directly, and nothing in the client
imports it.
"""

from gotor.tools.testnet.content import WebFile, file_content
from gotor.tools.testnet.errors import TestnetError
from gotor.tools.testnet.model import Network, NetworkSpec, Node, Role
from gotor.tools.testnet.network import (
    NodeStatus,
    add_client,
    create,
    is_running,
    start,
    start_node,
    status,
    stop,
    stop_node,
    up,
    wait_for_bootstrap,
    wait_for_consensus,
)

__all__ = [
    "Network", "NetworkSpec", "Node", "NodeStatus", "Role", "TestnetError", "WebFile",
    "add_client", "create", "file_content", "is_running", "start", "start_node", "status", "stop",
    "stop_node", "up", "wait_for_bootstrap", "wait_for_consensus",
]
