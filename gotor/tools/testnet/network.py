"""Make, start, watch and stop a private Tor network of C tor processes on loopback.

``create(root, spec)`` lays out the network (ports, keys, torrc files, test
files, ``network.json``); ``start(net)`` starts the web/DNS services, the
authorities and the relays together, waits until *every* authority serves a
consensus listing every relay as Running (exits flagged Exit) — clients that
start earlier get 404s and back off for long — and every exit's own consensus
lists every relay (an exit refuses streams from relays it does not know); only
then it starts the C tor client and waits for its "Bootstrapped 100%".  Every wait is bounded; a
timeout, or a node that exits early, stops everything started and raises a
:class:`TestnetError` that names what was missing and quotes the relevant log
lines.  ``stop(net)`` stops every process by PID.  ``up(root)`` is create +
start.
"""

from __future__ import annotations

import base64
import http.client
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gotor.tools.testnet import keys, procs, torrcgen
from gotor.tools.testnet.content import write_files
from gotor.tools.testnet.errors import TestnetError
from gotor.tools.testnet.model import RELAY_ROLES, Network, NetworkSpec, Node, Role

__all__ = ["NodeStatus", "add_client", "consensus_status", "create", "start", "start_node",
           "status", "stop", "stop_node", "tor_binary", "up", "wait_for_bootstrap",
           "wait_for_consensus"]

#: Default bounds of the waits in ``start`` (seconds).
CONSENSUS_TIMEOUT = 120.0
BOOTSTRAP_TIMEOUT = 90.0
_POLL = 0.5
_LOG_LINES = 8
_PROBLEMS = ("[warn]", "[err]", "Traceback", "Error")
#: Warnings every node of a testing network logs: not worth quoting.
_BOILERPLATE = ("running Tor as root", "DirAuthority or AlternateDirAuthority",
                "TestingTorNetwork is set", "SafeLogging", "VotingInterval is very low",
                "approved-routers", "sr-state", "SR state", "Fixing permissions",
                "ControlPort is open, but no authentication")
_NICKNAME = re.compile(r"[A-Za-z0-9]{1,19}")


# --- creating ---------------------------------------------------------------------


def _free_ports(count: int, kind: int = socket.SOCK_STREAM) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (held open together)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _nodes(spec: NetworkSpec) -> list[Node]:
    names = ([(f"auth{i}", Role.AUTHORITY, ("or", "dir")) for i in range(spec.authorities)]
             + [(f"relay{i}", Role.RELAY, ("or",)) for i in range(spec.relays)]
             + [(f"exit{i}", Role.EXIT, ("or",)) for i in range(spec.exits)]
             + ([("client", Role.CLIENT, ("socks", "control"))] if spec.client else [])
             + [("services", Role.SERVICES, ("http",))])
    ports = iter(_free_ports(sum(len(p) for _, _, p in names)))
    nodes = [Node(name, role, {p: next(ports) for p in kinds}) for name, role, kinds in names]
    nodes[-1].ports["dns"] = _free_ports(1, socket.SOCK_DGRAM)[0]
    return nodes


def tor_binary(tor: str | None = None) -> str:
    """``tor`` if given, else tor on PATH, else /usr/sbin/tor (where Debian puts it,
    outside the PATH of most users)."""
    if tor is not None:
        return tor
    found = shutil.which("tor") or shutil.which("tor", path="/usr/sbin:/usr/local/sbin")
    return found or "tor"


def _tor_version(tor: str) -> str:
    try:
        out = subprocess.run([tor, "--version"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TestnetError(
            f"cannot run {tor!r} ({exc}): install C tor (Debian/Ubuntu: apt-get install tor)"
        ) from None
    words = out.split()
    return words[2].rstrip(".") if len(words) > 2 else out.strip()


def create(root: Path, spec: NetworkSpec | None = None, *, tor: str | None = None,
           tor_gencert: str = "tor-gencert") -> Network:
    """Lay out a new network in ``root`` (which must not hold one yet)."""
    spec = spec or NetworkSpec()
    tor = tor_binary(tor)
    root = root.resolve()
    if root.exists() and any(root.iterdir()):
        raise TestnetError(f"{root} is not empty: give a new directory for the network")
    version = _tor_version(tor)
    if shutil.which(tor_gencert) is None:
        raise TestnetError(f"{tor_gencert} not found: it comes with C tor (apt-get install tor)")
    net = Network(root, spec, _nodes(spec), tor_version=version)
    requests = [keys.KeyRequest(net.node_dir(n),
                                f"127.0.0.1:{n.ports['dir']}" if n.role is Role.AUTHORITY else None)
                for n in net.relays]
    for node, (relay_keys, auth_keys) in zip(net.relays, keys.generate_keys(
            requests, tor=tor, tor_gencert=tor_gencert), strict=True):
        node.fingerprint, node.ed25519 = relay_keys.fingerprint, relay_keys.ed25519
        node.v3ident = auth_keys.v3ident if auth_keys is not None else None
    _write_files(net)
    net.save()
    return net


def _write_files(net: Network) -> None:
    (net.root / "empty-geoip").write_text("")
    (net.root / "bandwidth").write_text(torrcgen.bandwidth_file(net, int(time.time())))
    (net.root / "resolv.conf").write_text(torrcgen.resolv_conf(net))
    for node in net.nodes:
        net.node_dir(node).mkdir(parents=True, exist_ok=True)
        if node.role is not Role.SERVICES:
            net.torrc(node).write_text(torrcgen.torrc(net, node))
    net.files = write_files(net.www, net.spec.files)


# --- processes --------------------------------------------------------------------


def _marker(net: Network, node: Node) -> str:
    """What the node's command line contains (see gotor.tools.testnet.procs)."""
    return str(net.www) if node.role is Role.SERVICES else str(net.torrc(node))


def _command(net: Network, node: Node, tor: str) -> list[str]:
    if node.role is Role.SERVICES:
        return [sys.executable, "-m", "gotor.tools.testnet.services", "--root", str(net.www),
                "--http-port", str(node.ports["http"]), "--dns-port", str(node.ports["dns"]),
                *(f"--name={name}={address}" for name, address in net.dns_names().items())]
    return [tor, "-f", str(net.torrc(node)), "--ignore-missing-torrc"]


def is_running(net: Network, node: Node) -> bool:
    return procs.is_running(node.pid, _marker(net, node))


def _spawn(net: Network, node: Node, tor: str) -> None:
    if is_running(net, node):
        raise TestnetError(f"{node.name} is already running (pid {node.pid})")
    log = net.log(node) if node.role is Role.SERVICES else net.stdout_log(node)
    node.pid = procs.spawn(_command(net, node, tor), log, marker=_marker(net, node))


def add_client(net: Network, name: str, options: Iterable[str] = ()) -> Node:
    """A further C tor client (not started) with torrc ``options`` added, e.g.
    ``ConfluxEnabled 0``; :func:`stop` stops it with the rest."""
    if not _NICKNAME.fullmatch(name):
        raise TestnetError(f"node name {name!r}: tor nicknames are 1-19 letters and digits")
    if any(n.name == name for n in net.nodes):
        raise TestnetError(f"there is a node {name!r} already")
    socks, control = _free_ports(2)
    node = Node(name, Role.CLIENT, {"socks": socks, "control": control})
    net.nodes.append(node)
    net.node_dir(node).mkdir(parents=True, exist_ok=True)
    net.torrc(node).write_text(torrcgen.torrc(net, node, options))
    net.save()
    return node


def start_node(net: Network, name: str, *, tor: str | None = None) -> Node:
    """Start one node again (after :func:`stop_node`); the caller waits for what it needs."""
    node = net.node(name)
    _spawn(net, node, tor_binary(tor))
    net.save()
    return node


def stop_node(net: Network, name: str) -> Node:
    """Stop one node (SIGTERM, then SIGKILL) and forget its PID."""
    node = net.node(name)
    if node.pid is not None:
        procs.stop([(node.pid, _marker(net, node))])
    node.pid = None
    net.save()
    return node


def stop(net: Network) -> list[str]:
    """Stop every process of the network by PID; the names of those that were running."""
    order = (Role.CLIENT, Role.EXIT, Role.RELAY, Role.AUTHORITY, Role.SERVICES)
    nodes = sorted(net.nodes, key=lambda n: order.index(n.role))
    running = [n for n in nodes if is_running(net, n)]
    try:
        procs.stop([(n.pid, _marker(net, n)) for n in running if n.pid is not None])
    finally:
        for node in net.nodes:
            node.pid = None
        net.state = "down"
        net.save()
    return [n.name for n in running]


# --- waiting ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsensusStatus:
    """What one authority's current microdesc consensus says about the network."""

    authority: str
    valid_after: str | None  # None: it serves none (yet)
    missing: tuple[str, ...]  # relay names not listed, or without the flags they need
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.valid_after is not None and not self.missing and self.error is None


def _fetch(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _listed(text: str) -> dict[str, set[str]]:
    """Relays in a microdesc consensus (dir-spec §3.4.1): base64 identity -> flags."""
    out: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("r "):
            current = line.split()[2]
            out[current] = set()
        elif line.startswith("s ") and current is not None:
            out[current] = set(line.split()[1:])
    return out


def _needs(node: Node) -> set[str]:
    return {"Running", "Valid"} | ({"Exit"} if node.role is Role.EXIT else set())


def consensus_status(net: Network, authority: Node) -> ConsensusStatus:
    """Fetch ``authority``'s consensus and check it against the network's relays."""
    try:
        code, body = _fetch(authority.ports["dir"], "/tor/status-vote/current/consensus-microdesc")
    except (OSError, http.client.HTTPException) as exc:
        return ConsensusStatus(authority.name, None, (), f"DirPort: {exc}")
    if code != 200:
        return ConsensusStatus(authority.name, None, (), f"HTTP {code}")
    text = body.decode(errors="replace")
    valid_after = next((line[12:] for line in text.splitlines()
                        if line.startswith("valid-after ")), "?")
    listed = _listed(text)
    missing = tuple(n.name for n in net.relays
                    if not _needs(n) <= listed.get(_b64_id(n), set()))
    if not missing:
        served = _microdescs_served(authority, _md_digests(text))
        if served is not None:
            return ConsensusStatus(authority.name, valid_after, (), served)
    return ConsensusStatus(authority.name, valid_after, missing)


def _md_digests(text: str) -> list[str]:
    """The microdescriptor digests (``m`` lines) of a microdesc consensus."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("m ")]


def _microdescs_served(authority: Node, digests: list[str]) -> str | None:
    """None if ``authority`` serves every microdescriptor of ``digests`` (dir-spec
    §5.2: ``/tor/micro/d/D1-D2-...``), else what is wrong.  A client that asks
    before they all are served waits for its retry schedule (C tor: many seconds)."""
    try:
        code, body = _fetch(authority.ports["dir"], "/tor/micro/d/" + "-".join(digests))
    except (OSError, http.client.HTTPException) as exc:
        return f"microdescriptors: {exc}"
    count = sum(line.startswith("ntor-onion-key ") for line in body.decode(errors="replace")
                .splitlines())
    if code != 200 or count < len(digests):
        return f"serves {count} of {len(digests)} microdescriptors (HTTP {code})"
    return None


def _b64_id(node: Node) -> str:
    return base64.b64encode(bytes.fromhex(str(node.fingerprint))).decode().rstrip("=")


def _check_alive(net: Network, nodes: Iterable[Node]) -> None:
    for node in nodes:
        if not is_running(net, node):
            raise TestnetError(f"{node.name} exited; its last log lines:\n"
                               + _log_excerpt(net, [node], problems_only=False))


def _log_excerpt(net: Network, nodes: Iterable[Node], *, problems_only: bool = True) -> str:
    """The nodes' last log lines (warnings and errors only, without the ones every
    testing network logs, if ``problems_only``); a line that tor wrote both on stdout
    (before its log file opened) and in its log appears once."""
    out = []
    for node in nodes:
        seen: set[str] = set()
        kept = []
        for path in (net.stdout_log(node), net.log(node)):
            lines = procs.tail(path, 4 * _LOG_LINES, contains=_PROBLEMS if problems_only else ())
            for line in lines:
                text = line.partition(" [")[2] or line
                if text in seen or (problems_only and any(b in text for b in _BOILERPLATE)):
                    continue
                seen.add(text)
                kept.append(f"  {node.name}: {line}")
        out += kept[-_LOG_LINES:]
    return "\n".join(out) or "  (nothing logged)"


def exits_missing_relays(net: Network) -> list[str]:
    """The exits whose own consensus (``cached-consensus``) does not list every relay.

    An exit refuses a BEGIN from a previous hop it does not know as a relay ("Attempt
    by ... to open a stream from unknown relay", END MISC: connection_exit_begin_conn
    with RefuseUnknownExits), and a relay may still hold a consensus older than the
    authorities' when the network looks ready.
    """
    wanted = {_b64_id(n) for n in net.relays}
    out = []
    for node in net.by_role(Role.EXIT):
        try:
            text = (net.node_dir(node) / "cached-consensus").read_text(errors="replace")
        except OSError:
            text = ""
        if not wanted <= _listed(text).keys():
            out.append(node.name)
    return out


def wait_for_consensus(net: Network, timeout: float = CONSENSUS_TIMEOUT) -> list[ConsensusStatus]:
    """Wait until every authority serves a consensus listing every relay as needed,
    and every exit's own consensus lists every relay."""
    deadline = time.monotonic() + timeout
    watched = [n for n in net.nodes if n.role in RELAY_ROLES or n.role is Role.SERVICES]
    while True:
        _check_alive(net, watched)
        statuses = [consensus_status(net, a) for a in net.by_role(Role.AUTHORITY)]
        unaware = exits_missing_relays(net) if all(s.ready for s in statuses) else []
        if all(s.ready for s in statuses) and not unaware:
            return statuses
        if time.monotonic() > deadline:
            raise TestnetError(
                f"no consensus listing every relay on every authority and exit after "
                f"{timeout:.0f} s:\n"
                + "\n".join(f"  {s.authority}: " + _describe(s) for s in statuses)
                + "".join(f"\n  {name}: its consensus lacks some relays" for name in unaware)
                + "\nwarnings in the logs:\n" + _log_excerpt(net, watched))
        time.sleep(_POLL)


def _describe(s: ConsensusStatus) -> str:
    if s.valid_after is None:
        return f"no consensus ({s.error})"
    if s.missing:
        return f"consensus of {s.valid_after} lacks or misflags {', '.join(s.missing)}"
    return f"consensus of {s.valid_after}: {s.error}"


def wait_for_bootstrap(net: Network, node: Node, timeout: float = BOOTSTRAP_TIMEOUT) -> None:
    """Wait until the C tor client ``node`` logs "Bootstrapped 100%"."""
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(net, [node])
        if procs.tail(net.log(node), 1, contains=("Bootstrapped 100%",)):
            return
        if time.monotonic() > deadline:
            progress = procs.tail(net.log(node), 1, contains=("Bootstrapped",))
            raise TestnetError(
                f"{node.name} did not bootstrap within {timeout:.0f} s (last progress: "
                f"{progress[0] if progress else 'none'}); its log:\n"
                + _log_excerpt(net, [node], problems_only=False))
        time.sleep(_POLL)


# --- the whole network ------------------------------------------------------------


def start(net: Network, *, tor: str | None = None, consensus_timeout: float = CONSENSUS_TIMEOUT,
          bootstrap_timeout: float = BOOTSTRAP_TIMEOUT) -> None:
    """Start every node in order (see the module docstring); on failure stop them all."""
    net.state = "starting"
    tor = tor_binary(tor)
    try:
        for node in [net.services, *net.relays]:
            _spawn(net, node, tor)
            net.save()  # every PID on disk at once: whoever cleans up finds them all
        wait_for_consensus(net, consensus_timeout)
        client = net.client
        if client is not None:
            _spawn(net, client, tor)
            net.save()
            wait_for_bootstrap(net, client, bootstrap_timeout)
    except BaseException:
        stop(net)
        raise
    net.state = "up"
    net.save()


def up(root: Path, spec: NetworkSpec | None = None, *, tor: str | None = None,
       consensus_timeout: float = CONSENSUS_TIMEOUT,
       bootstrap_timeout: float = BOOTSTRAP_TIMEOUT) -> Network:
    """Create a network in ``root`` and start it."""
    net = create(root, spec, tor=tor)
    start(net, tor=tor, consensus_timeout=consensus_timeout, bootstrap_timeout=bootstrap_timeout)
    return net


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: Role
    pid: int | None
    running: bool
    ports: dict[str, int]


def status(net: Network) -> list[NodeStatus]:
    """Every node and whether its process runs."""
    return [NodeStatus(n.name, n.role, n.pid, is_running(net, n), dict(n.ports))
            for n in net.nodes]

