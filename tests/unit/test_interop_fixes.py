"""Client changes that running against real C tor called for (issue 5), one test each.

Each test shows the behaviour the private C tor network needed and that the
default stays as it was.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from netdir_helpers import BASIC, EXIT, GUARD, Spec, make_netdir

from gotor.circuit.handshake import start_ntor_v3
from gotor.circuit.params import HopSpec
from gotor.config import CircuitConfig, ClientConfig
from gotor.crypto import ntor_v3
from gotor.crypto.primitives import ed25519_public, x25519_public
from gotor.crypto.relaycrypto import TOR1_KEY_MATERIAL_LEN
from gotor.dir.config import DirConfig
from gotor.errors import NoPathError, ProtocolError
from gotor.guard import GuardManager
from gotor.path import choose_exit_path


class RandomBytes:
    """Deterministic bytes for handshakes: a counter stream from a seed."""

    def __init__(self, seed: int) -> None:
        self._next = seed

    def __call__(self, n: int) -> bytes:
        self._next += 1
        return bytes((self._next + i) % 256 for i in range(n))


AUTH_LINE = ("DirAuthority auth0 orport=5000 no-v2 v3ident=" + "AB" * 20
             + " 127.0.0.1:7000 " + "CD" * 20)


def _one_address_network() -> list[Spec]:
    """A private network's shape: every relay on 127.0.0.1 (one /16)."""
    return ([Spec(GUARD, address="127.0.0.1") for _ in range(3)]
            + [Spec(BASIC, address="127.0.0.1")]
            + [Spec(EXIT, address="127.0.0.1", policy="accept 1-65535") for _ in range(2)])


def test_relays_on_one_subnet_share_a_path_only_without_the_subnet_rule() -> None:
    # C tor's EnforceDistinctSubnets (on by default, off under TestingTorNetwork): on
    # a network whose relays share one address, the rule leaves no path at all.
    strict = make_netdir(_one_address_network())
    assert strict.distinct_subnets
    with pytest.raises(NoPathError):
        choose_exit_path(strict, random.Random(1), port=80)
    relaxed = strict.with_distinct_subnets(False)
    path = choose_exit_path(relaxed, random.Random(1), port=80)
    assert len({r.rsa_id for r in path.hops}) == 3  # still three different relays
    assert strict.with_distinct_subnets(True) is strict
    # the rule survives adding microdescriptors
    assert not relaxed.with_microdescs([]).distinct_subnets


def test_the_guard_manager_follows_the_directory_subnet_rule() -> None:
    nd = make_netdir(_one_address_network())
    now = nd.lifetime.valid_after
    exit_ = next(r for r in nd.relays if "Exit" in r.flags)
    with pytest.raises(NoPathError, match="may share a path"):
        GuardManager(random.Random(1)).pick_guard(nd, now, avoid=[exit_])
    relaxed = nd.with_distinct_subnets(False)
    guard, _ = GuardManager(random.Random(1)).pick_guard(relaxed, now, avoid=[exit_])
    assert guard.rsa_id != exit_.rsa_id
    assert relaxed.compatible(guard, [exit_]) and not nd.compatible(guard, [exit_])
    assert not relaxed.compatible(exit_, [exit_])  # never the same relay twice


def test_testing_network_turns_the_subnet_rule_off(tmp_path: Path) -> None:
    dir_config = DirConfig.from_dir_authorities([AUTH_LINE])
    assert CircuitConfig().distinct_subnets
    assert not CircuitConfig.testing().distinct_subnets
    assert ClientConfig(tmp_path, dir_config).circuit_config.distinct_subnets
    assert not ClientConfig(tmp_path, dir_config, testing_network=True).circuit_config \
        .distinct_subnets


# --- ntor-v3 messages are N_EXTENSIONS-counted lists ------------------------------------


def _relay_keys() -> tuple[bytes, bytes, bytes]:
    ntor_secret = bytes(range(32))
    return ed25519_public(bytes(32)), ntor_secret, x25519_public(ntor_secret)


def _hop(ed_id: bytes, ntor_public: bytes) -> HopSpec:
    return HopSpec(rsa_id=b"\x11" * 20, ed_id=ed_id, ntor_key=ntor_public,
                   ipv4=("127.0.0.1", 9001), ntor_v3=True)


def test_ntor_v3_client_message_is_an_empty_counted_list() -> None:
    # C tor parses the client message as trunnel trn_extension (a count byte first) and
    # destroys the circuit (PROTOCOL) when the message is empty.
    ed_id, ntor_secret, ntor_public = _relay_keys()
    pending = start_ntor_v3(_hop(ed_id, ntor_public), RandomBytes(1))
    _, message = ntor_v3.server_receive(ed_id, ntor_secret, pending.onionskin)
    assert message == b"\x00"


@pytest.mark.parametrize(("server_message", "ok"), [
    (b"\x00", True),                     # what C tor sends without congestion control
    (bytes.fromhex("0102011f"), True),   # one CC_RESPONSE extension (sendme_inc 31): ignored
    (b"", False),                        # no count byte
    (bytes.fromhex("02011f"), False),    # an uncounted sequence reads as a truncated list
    (b"\x00\x00", False),                # bytes after the list
])
def test_ntor_v3_server_message_must_be_a_counted_list(server_message: bytes, ok: bool) -> None:
    ed_id, ntor_secret, ntor_public = _relay_keys()
    pending = start_ntor_v3(_hop(ed_id, ntor_public), RandomBytes(2))
    state, _ = ntor_v3.server_receive(ed_id, ntor_secret, pending.onionskin)
    reply, keys = ntor_v3.server_reply(state, bytes(range(1, 33)), server_message,
                                       TOR1_KEY_MATERIAL_LEN)
    if ok:
        assert pending.complete(reply) == keys
    else:
        with pytest.raises(ProtocolError):
            pending.complete(reply)
