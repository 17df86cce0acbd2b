"""A private Tor network of real C tor processes on loopback (issue 5).

``gotor testnet up|status|down DIR`` on the command line; in Python::

    net = testnet.up(Path("net"))          # 3 authorities, 3 relays, 2 exits, a C tor client
    print(net.dir_authority_lines())       # point any client at it
    testnet.stop(net)

The parts: :mod:`~gotor.testnet.model` (nodes and ``network.json``),
:mod:`~gotor.testnet.keys` (tor-gencert, tor --list-fingerprint),
:mod:`~gotor.testnet.torrcgen` (torrc files), :mod:`~gotor.testnet.content`
(test files), :mod:`~gotor.testnet.services` (the web and DNS server process), :mod:`~gotor.testnet.procs` (processes by PID) and
:mod:`~gotor.testnet.network` (start, wait, stop).

This package is tooling around gotor, not part of the client: it uses
subprocess, sockets and the wall clock directly, and nothing in the client
imports it.
"""

from gotor.testnet.content import WebFile, file_content
from gotor.testnet.errors import TestnetError
from gotor.testnet.model import Network, NetworkSpec, Node, Role
from gotor.testnet.network import (
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
