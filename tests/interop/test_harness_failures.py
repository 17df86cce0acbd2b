"""The harness when a network cannot come up: a clear error that quotes tor, and
nothing left running.  (Small networks of their own, not the session's.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from gotor.tools import testnet
from gotor.tools.testnet import NetworkSpec

SMALL = NetworkSpec(authorities=1, relays=0, exits=1, client=False, files={"1KB": 1024})


def _nothing_runs(net: testnet.Network) -> bool:
    return not any(s.running for s in testnet.status(testnet.Network.load(net.root)))


def test_a_node_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    net = testnet.create(tmp_path / "net", SMALL)
    exit_ = net.by_role(testnet.Role.EXIT)[0]
    with net.torrc(exit_).open("a") as torrc:
        torrc.write("NoSuchOption 1\n")
    with pytest.raises(testnet.TestnetError) as info:
        testnet.start(net, consensus_timeout=60)
    message = str(info.value)
    assert message.startswith("exit0 exited; its last log lines:"), message
    assert "NoSuchOption" in message  # tor's own words about the bad option
    assert _nothing_runs(net)


def test_a_consensus_that_does_not_come_in_time_is_reported(tmp_path: Path) -> None:
    net = testnet.create(tmp_path / "net", SMALL)
    with pytest.raises(testnet.TestnetError) as info:
        testnet.start(net, consensus_timeout=1)
    message = str(info.value)
    assert "no consensus listing every relay on every authority and exit after 1 s" in message
    assert "auth0: " in message and "warnings in the logs:" in message
    assert _nothing_runs(net)
