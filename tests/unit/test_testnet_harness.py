"""The private-network harness (gotor/tools/testnet) without a network: torrc files, the
network description, the web and DNS services, processes by PID, key files, the CLI.

The harness against real C tor is exercised by tests/interop (every test there
runs on a network it made)."""

from __future__ import annotations

import ast
import hashlib
import http.client
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.cli import main as gotor_main
from gotor.dir.config import parse_dir_authority
from gotor.tools import testnet
from gotor.tools.testnet import keys, procs, torrcgen
from gotor.tools.testnet.content import file_content, write_files
from gotor.tools.testnet.model import EXTRA_DNS_NAMES, Network, NetworkSpec, Node, Role
from gotor.tools.testnet.network import (
    _b64_id,
    _listed,
    _md_digests,
    _nodes,
    add_client,
    exits_missing_relays,
)
from gotor.tools.testnet.services import dns_answer

GOTOR = Path(__file__).resolve().parents[2] / "gotor"


def _fake_network(root: Path, spec: NetworkSpec | None = None) -> Network:
    """A laid-out network with made-up identities (no tor needed)."""
    spec = spec or NetworkSpec(files={"1KB": 1024, "3B": 3})
    net = Network(root, spec, _nodes(spec), tor_version="0.4.9.11")
    for i, node in enumerate(net.relays):
        node.fingerprint = hashlib.sha1(node.name.encode()).hexdigest().upper()
        node.ed25519 = f"ed{i}"
        if node.role is Role.AUTHORITY:
            node.v3ident = hashlib.sha1(b"v3" + node.name.encode()).hexdigest().upper()
    net.files = write_files(net.www, spec.files)
    net.save()
    return net


# --- layout and description ----------------------------------------------------------


def test_nodes_have_distinct_loopback_ports(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    assert [n.role for n in net.nodes].count(Role.AUTHORITY) == 3
    assert len(net.by_role(Role.RELAY)) == 3 and len(net.by_role(Role.EXIT)) == 2
    tcp = [p for n in net.nodes for k, p in n.ports.items() if k != "dns"]
    assert len(tcp) == len(set(tcp)) and all(0 < p < 65536 for p in tcp)
    assert net.services.ports.keys() == {"http", "dns"}
    assert net.client is not None and net.client.ports.keys() == {"socks", "control"}


def test_dir_authority_lines_are_what_gotor_and_c_tor_read(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    lines = net.dir_authority_lines()
    assert (tmp_path / "dir-authorities").read_text().splitlines() == lines
    for line, auth in zip(lines, net.by_role(Role.AUTHORITY), strict=True):
        v3, source = parse_dir_authority(line)
        assert v3 == bytes.fromhex(str(auth.v3ident))
        assert source.rsa_id == bytes.fromhex(str(auth.fingerprint))
        assert source.ipv4 == ("127.0.0.1", auth.ports["or"])
        assert f"127.0.0.1:{auth.ports['dir']}" in line


def test_the_description_round_trips(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    net.nodes[0].pid = 12345
    net.state = "up"
    net.save()
    again = Network.load(tmp_path)
    assert again.to_json() == net.to_json()
    data = json.loads((tmp_path / "network.json").read_text())
    assert data["format"] == "gotor-testnet 1" and data["state"] == "up"
    assert data["dns"]["names"] == {net.spec.web_hostname: "127.0.0.1", **EXTRA_DNS_NAMES}
    assert {f["name"] for f in data["web"]["files"]} == {"1KB", "3B"}
    assert net.web_url("1KB") == f"http://web.gotor.test:{net.services.ports['http']}/1KB"
    assert net.web_url("1KB", by_name=False).startswith("http://127.0.0.1:")


@pytest.mark.parametrize(("content", "message"), [
    (None, "network.json is missing"),
    ("{not json", "cannot read"),
    ('{"format": "other"}', "is not a gotor-testnet 1 description"),
    ('{"format": "gotor-testnet 1", "spec": {}}', "is damaged"),
])
def test_bad_descriptions_are_clear_errors(tmp_path: Path, content: str | None,
                                           message: str) -> None:
    if content is not None:
        (tmp_path / "network.json").write_text(content)
    with pytest.raises(testnet.TestnetError, match=message):
        Network.load(tmp_path)


@pytest.mark.parametrize("kwargs", [{"authorities": 0}, {"exits": 0}, {"relays": -1},
                                    {"voting_interval": 7}, {"initial_voting_interval": 11}])
def test_network_spec_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(testnet.TestnetError):
        NetworkSpec(**kwargs)  # type: ignore[arg-type]


# --- torrc files ---------------------------------------------------------------------


def _options(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_every_torrc_has_the_testing_network_basics(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    for node in net.nodes:
        if node.role is Role.SERVICES:
            continue
        opts = _options(torrcgen.torrc(net, node))
        assert "TestingTorNetwork 1" in opts and f"Nickname {node.name}" in opts
        assert f"DataDirectory {tmp_path / node.name}" in opts
        assert sum(o.startswith("DirAuthority ") for o in opts) == 3
        assert f"GeoIPFile {tmp_path / 'empty-geoip'}" in opts
        assert "PathsNeededToBuildCircuits 0.67" in opts and "AssumeReachable 1" in opts
        assert all("0.0.0.0" not in o for o in opts)  # loopback only


def test_role_specific_options(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    auth, relay, exit_ = (net.by_role(r)[0] for r in (Role.AUTHORITY, Role.RELAY, Role.EXIT))
    a = _options(torrcgen.torrc(net, auth))
    exits = ",".join(str(n.fingerprint) for n in net.by_role(Role.EXIT))
    for option in (f"ORPort 127.0.0.1:{auth.ports['or']}", f"DirPort 127.0.0.1:{auth.ports['dir']}",
                   "V3AuthoritativeDirectory 1", "V3AuthVotingInterval 20", "V3AuthVoteDelay 4",
                   "TestingV3AuthInitialVotingInterval 10", "TestingV3AuthInitialVoteDelay 2",
                   f"TestingDirAuthVoteExit {exits}", "TestingDirAuthVoteExitIsStrict 1",
                   "TestingDirAuthVoteGuard *", f"V3BandwidthsFile {tmp_path / 'bandwidth'}",
                   "ExitPolicy reject *:*", "Address 127.0.0.1", "OutboundBindAddress 127.0.0.1"):
        assert option in a, option
    r = _options(torrcgen.torrc(net, relay))
    assert "ExitRelay 0" in r and not any(o.startswith("DirPort") for o in r)
    e = _options(torrcgen.torrc(net, exit_, ["ConfluxEnabled 0"]))
    policy = [o for o in e if o.startswith("ExitPolicy ")]
    # loopback first, then every IPv4 address: a loopback-only policy summarises to "reject"
    assert policy == ["ExitPolicy accept 127.0.0.0/8:*", "ExitPolicy accept *4:*",
                      "ExitPolicy reject *:*"]
    for option in ("ExitRelay 1", "ExitPolicyRejectPrivate 0", "IPv6Exit 0",
                   f"ServerDNSResolvConfFile {tmp_path / 'resolv.conf'}",
                   "ServerDNSDetectHijacking 0", "ConfluxEnabled 0"):
        assert option in e, option
    assert net.client is not None
    c = _options(torrcgen.torrc(net, net.client))
    assert f"SocksPort 127.0.0.1:{net.client.ports['socks']}" in c
    assert f"ControlPort 127.0.0.1:{net.client.ports['control']}" in c
    assert not any(o.startswith("ORPort") for o in c)


def test_bandwidth_file_and_resolv_conf(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    lines = torrcgen.bandwidth_file(net, 1_700_000_000).splitlines()
    assert lines[0] == "1700000000"  # bandwidth-file-spec 1.0.0: a timestamp line first
    assert lines[1:] == [f"node_id=${n.fingerprint} bw=1000 nick={n.name}" for n in net.relays]
    assert torrcgen.resolv_conf(net) == f"nameserver 127.0.0.1:{net.services.ports['dns']}\n"


def test_added_clients(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    node = add_client(net, "noconflux", ["ConfluxEnabled 0"])
    assert "ConfluxEnabled 0" in net.torrc(node).read_text()
    assert Network.load(tmp_path).node("noconflux").role is Role.CLIENT
    assert net.client is not None and net.client.name == "client"
    with pytest.raises(testnet.TestnetError, match="already"):
        add_client(net, "noconflux")
    with pytest.raises(testnet.TestnetError, match="nicknames"):
        add_client(net, "no-conflux")


# --- services --------------------------------------------------------------------------


def test_file_content_is_deterministic(tmp_path: Path) -> None:
    a = file_content("1MB", 1 << 20)
    assert a == file_content("1MB", 1 << 20) and len(a) == 1 << 20
    assert file_content("1MB", 100) == a[:100]
    assert file_content("other", 100) != a[:100]
    (f,) = write_files(tmp_path, {"x": 5000})
    assert (tmp_path / "x").read_bytes() == file_content("x", 5000)
    assert f.sha256 == hashlib.sha256(file_content("x", 5000)).hexdigest()


def _query(name: str, qtype: int, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(
        "!HH", qtype, 1)


NAMES = {"web.gotor.test": "127.0.0.1", "reverse.gotor.test": "192.0.2.1"}


def test_dns_answers() -> None:
    a = dns_answer(_query("Web.Gotor.Test", 1), NAMES)
    assert a is not None and a[:2] == b"\x12\x34"
    flags, qd, an = struct.unpack("!HHH", a[2:8])
    assert flags & 0x8000 and flags & 0xF == 0 and (qd, an) == (1, 1)
    assert a.endswith(bytes([127, 0, 0, 1]))
    none = dns_answer(_query("nosuch.gotor.test", 1), NAMES)
    assert none is not None and struct.unpack("!H", none[2:4])[0] & 0xF == 3  # NXDOMAIN
    aaaa = dns_answer(_query("web.gotor.test", 28), NAMES)
    assert aaaa is not None and struct.unpack("!HH", aaaa[2:4] + aaaa[6:8]) == (0x8580, 0)
    ptr = dns_answer(_query("1.2.0.192.in-addr.arpa", 12), NAMES)
    assert ptr is not None and ptr.endswith(b"\x07reverse\x05gotor\x04test\x00")
    assert dns_answer(b"\x00" * 5, NAMES) is None
    formerr = dns_answer(_query("web.gotor.test", 1)[:-3], NAMES)
    assert formerr is not None and struct.unpack("!H", formerr[2:4])[0] & 0xF == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_dns_answer_never_raises(data: bytes) -> None:
    reply = dns_answer(data, NAMES)
    assert reply is None or reply[:2] == data[:2]


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_services_process_serves_http_and_dns(tmp_path: Path) -> None:
    write_files(tmp_path / "www", {"64KB": 64 << 10})
    http_port, dns_port = _free(socket.SOCK_STREAM), _free(socket.SOCK_DGRAM)
    proc = subprocess.Popen([sys.executable, "-m", "gotor.tools.testnet.services", "--root",
                             str(tmp_path / "www"), "--http-port", str(http_port), "--dns-port",
                             str(dns_port), "--name", "web.gotor.test=127.0.0.1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and "serving" in proc.stderr.readline()
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("GET", "/64KB")
        assert conn.getresponse().read() == file_content("64KB", 64 << 10)
        conn.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(_query("web.gotor.test", 1), ("127.0.0.1", dns_port))
            assert s.recv(512).endswith(bytes([127, 0, 0, 1]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_bad_service_arguments() -> None:
    done = subprocess.run([sys.executable, "-m", "gotor.tools.testnet.services", "--root", ".",
                           "--http-port", "1", "--dns-port", "1", "--name", "web=not-an-ip"],
                          check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "not an IP address" in done.stderr


# --- processes ------------------------------------------------------------------------


def test_processes_are_stopped_by_pid_and_marker(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    pid = procs.spawn([sys.executable, "-c", "import time; time.sleep(60)", marker],
                      tmp_path / "out.log", marker=marker)
    assert procs.is_running(pid, marker)
    assert not procs.is_running(pid, str(tmp_path / "another"))  # a reused PID is not ours
    assert not procs.is_running(None, marker) and not procs.is_running(-1, marker)
    assert procs.stop([(pid, marker)], grace=5) == []
    assert not procs.is_running(pid, marker)
    assert procs.stop([(pid, marker)]) == []  # stopping again is harmless


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    marker = str(tmp_path / "stubborn")
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    pid = procs.spawn([sys.executable, "-c", code, marker], tmp_path / "out.log", marker=marker)
    deadline = time.monotonic() + 10
    while "ready" not in (tmp_path / "out.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.stop([(pid, marker)], grace=0.3) == [pid]
    assert not procs.is_running(pid, marker)


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "notice.log"
    log.write_text("".join(f"line {i} {'[warn]' if i % 3 == 0 else ''}\n" for i in range(30)))
    assert procs.tail(log, 2) == ["line 28 ", "line 29 "]
    assert procs.tail(log, 2, contains=("[warn]",)) == ["line 24 [warn]", "line 27 [warn]"]
    assert procs.tail(tmp_path / "missing") == []


def test_spawning_a_missing_program_is_a_testnet_error(tmp_path: Path) -> None:
    with pytest.raises(testnet.TestnetError, match="cannot start"):
        procs.spawn([str(tmp_path / "no-such-program")], tmp_path / "out.log")


# --- keys -------------------------------------------------------------------------------


def test_relay_key_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "fingerprint").write_text("relay0 " + "AB" * 20 + "\n")
    (tmp_path / "fingerprint-ed25519").write_text("relay0 0+h0K6wEkYCii4u1VbMa1MD8EkrapAcR\n")
    assert keys._read_relay_keys(tmp_path) == keys.RelayKeys("AB" * 20,
                                                             "0+h0K6wEkYCii4u1VbMa1MD8EkrapAcR")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "authority_certificate").write_text(
        "dir-key-certificate-version 3\nfingerprint " + "CD" * 20 + "\n")
    assert keys._read_v3ident(tmp_path) == keys.AuthorityKeys("CD" * 20)
    (tmp_path / "fingerprint").write_text("garbage\n")
    with pytest.raises(testnet.TestnetError, match="unexpected fingerprint"):
        keys._read_relay_keys(tmp_path)


def test_key_tools_that_fail_are_reported(tmp_path: Path) -> None:
    req = [keys.KeyRequest(tmp_path / "a", "127.0.0.1:7000")]
    with pytest.raises(testnet.TestnetError, match="cannot run"):
        keys.generate_keys(req, tor=str(tmp_path / "no-tor"), tor_gencert="false")
    with pytest.raises(testnet.TestnetError, match="tor-gencert for a failed"):
        keys.generate_keys(req, tor="true", tor_gencert="false")


def test_create_needs_tor_and_a_new_directory(tmp_path: Path) -> None:
    with pytest.raises(testnet.TestnetError, match="apt-get install tor"):
        testnet.create(tmp_path / "net", tor=str(tmp_path / "no-tor"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(testnet.TestnetError, match="not empty"):
        testnet.create(tmp_path / "full")


# --- consensus checks -------------------------------------------------------------------


def test_listed_relays_and_flags_from_a_consensus() -> None:
    text = ("network-status-version 3 microdesc\nvalid-after 2026-11-22 05:37:00\n"
            "r exit0 K9J2kSwbIDtPZB8nfioKvUK4Y+Q 2038-01-01 00:00:00 127.0.0.1 43921 0\n"
            "m oJyE\ns Exit Fast Running Valid\nw Bandwidth=1000\n"
            "r relay0 QaD7rnjAZcZ/mc1HfWEIkEhI/Cc 2038-01-01 00:00:00 127.0.0.1 36785 0\n"
            "s Fast Running\n")
    assert _listed(text) == {"K9J2kSwbIDtPZB8nfioKvUK4Y+Q": {"Exit", "Fast", "Running", "Valid"},
                             "QaD7rnjAZcZ/mc1HfWEIkEhI/Cc": {"Fast", "Running"}}
    assert _md_digests(text) == ["oJyE"]


def test_an_exit_whose_consensus_lacks_a_relay_is_not_ready(tmp_path: Path) -> None:
    net = _fake_network(tmp_path)
    exits = net.by_role(Role.EXIT)
    assert exits_missing_relays(net) == [e.name for e in exits]  # no consensus yet

    def consensus(relays: list[Node]) -> str:
        return "network-status-version 3\n" + "".join(
            f"r {n.name} {_b64_id(n)} AAAA 2038-01-01 00:00:00 127.0.0.1 1 0\ns Running\n"
            for n in relays)

    for exit_, listed in zip(exits, (net.relays, net.relays[:-1]), strict=True):
        net.node_dir(exit_).mkdir(parents=True, exist_ok=True)
        (net.node_dir(exit_) / "cached-consensus").write_text(consensus(listed))
    assert exits_missing_relays(net) == [exits[1].name]


# --- the command line ---------------------------------------------------------------------


def test_cli_status_and_down_of_a_stopped_network(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    net = _fake_network(tmp_path)
    net.nodes[0].pid = 2 ** 22 + 12345  # no such process
    net.save()
    assert gotor_main(["testnet", "status", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "0 of 10 processes running" in out and out.count("stopped") == 10
    assert gotor_main(["testnet", "status", str(tmp_path), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["running"] == 0 and len(data["nodes"]) == 10 and data["consensus"] == []
    assert gotor_main(["testnet", "down", str(tmp_path)]) == 0
    assert "stopped 0 processes" in capsys.readouterr().out
    assert Network.load(tmp_path).state == "down"


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gotor_main(["testnet", "status", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gotor testnet: error: no network in") and err.count("\n") == 1
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("")
    assert gotor_main(["testnet", "up", str(tmp_path / "busy")]) == 1
    assert "is not empty" in capsys.readouterr().err


def test_the_client_never_imports_the_harness() -> None:
    for path in sorted(GOTOR.rglob("*.py")):
        rel = path.relative_to(GOTOR).as_posix()
        if rel.startswith("tools/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("gotor.tools.testnet"), rel
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("gotor.tools.testnet") for a in node.names), rel


def test_node_json_keeps_roles(tmp_path: Path) -> None:
    node = Node("exit0", Role.EXIT, {"or": 1}, fingerprint="AB" * 20, pid=7)
    assert Node.from_json(json.loads(json.dumps(node.to_json()))) == node
