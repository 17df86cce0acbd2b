"""gotor bootstraps from real C tor directory authorities (production runtime, TCP + TLS)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from interop_helpers import gotor_command, run, with_client

from gotor.client import TorClient
from gotor.dir import BootstrapEvent
from gotor.dir.cache import CERTS_FILE, CONSENSUS_FILE
from gotor.netdir import NetDir
from gotor.tools import testnet
from gotor.tools.testnet import Role


def test_gotor_bootstraps_from_the_private_authorities(network: testnet.Network,
                                                       tmp_path: Path) -> None:
    events: list[BootstrapEvent] = []

    async def scenario(client: TorClient) -> NetDir:
        assert client.netdir is not None
        return client.netdir

    netdir = run(with_client(network, tmp_path, scenario, events=events))
    authorities = network.by_role(Role.AUTHORITY)

    # the consensus is signed by the network's authorities, a majority of them
    v3idents = {bytes.fromhex(str(a.v3ident)) for a in authorities}
    signers = {sig.identity for sig in netdir.consensus.signatures}
    assert signers <= v3idents and 2 * len(signers) > len(v3idents)

    # every relay is listed and usable (its microdescriptor fetched), with its identities
    assert netdir.missing_microdescs == ()
    by_fp = {r.rsa_id.hex().upper(): r for r in netdir.relays}
    assert set(by_fp) == {str(n.fingerprint) for n in network.relays}
    for node in network.relays:
        relay = by_fp[str(node.fingerprint)]
        assert relay.nickname == node.name
        assert relay.ipv4 == ("127.0.0.1", node.ports["or"])
        assert relay.ed_id is not None
        assert relay.ed_id == _b64(str(node.ed25519))
        assert relay.supports_ntor_v3  # tor 0.4.9 advertises Relay=4
    exits = {r.nickname for r in netdir.relays if r.allows_port(network.services.ports["http"])}
    assert exits == {n.name for n in network.by_role(Role.EXIT)}
    assert netdir.has_enough_paths()

    # progress as C tor reports it, ending with a built circuit
    steps = [(e.percent, e.tag) for e in events if e.warning is None]
    assert steps[0] == (0, "starting") and steps[-1] == (100, "done")
    assert [p for p, _ in steps] == sorted(p for p, _ in steps)
    assert {"requesting_status", "loading_keys", "enough_dirinfo"} <= {t for _, t in steps}

    # what gotor cached verifies with `gotor doc` against the authorities' own certificates
    certs = tmp_path / "authority-certificates"
    certs.write_text("".join((network.node_dir(a) / "keys" / "authority_certificate").read_text()
                             for a in authorities))
    doc = subprocess.run([*gotor_command(), "doc", str(tmp_path / CONSENSUS_FILE),
                          "--certs", str(certs)], check=False, capture_output=True, text=True, timeout=60)
    assert doc.returncode == 0, doc.stdout + doc.stderr
    cached_certs = (tmp_path / CERTS_FILE).read_text()
    assert all(f"fingerprint {a.v3ident}" in cached_certs for a in authorities)


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
