"""What a private network is made of, and its description on disk (``network.json``).

A network lives in one directory: a subdirectory per node (its torrc, data
directory and logs), the shared files (``bandwidth``, ``resolv.conf``,
``empty-geoip``, ``www/``), ``dir-authorities`` (the network's ``DirAuthority``
lines, ready to paste into a torrc) and ``network.json``, the description of
every node: role, ports, identities and the PID of its process.  Anything
that wants to use the network (gotor, another client, the harness's own
``status`` and ``down``) reads ``network.json``; nothing else is shared.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gotor.tools.testnet.content import DEFAULT_FILES, WebFile
from gotor.tools.testnet.errors import TestnetError

__all__ = ["FORMAT", "Network", "NetworkSpec", "Node", "Role"]

FORMAT = "gotor-testnet 1"
DESCRIPTION = "network.json"


class Role(enum.StrEnum):
    AUTHORITY = "authority"
    RELAY = "relay"  # a middle relay: ExitRelay 0
    EXIT = "exit"
    CLIENT = "client"  # C tor as a client, with SocksPort and ControlPort
    SERVICES = "services"  # the web and DNS servers (gotor.tools.testnet.services)


#: The roles that run tor as a relay (they have an ORPort and a fingerprint).
RELAY_ROLES = (Role.AUTHORITY, Role.RELAY, Role.EXIT)

#: Names the network's DNS server answers besides the web server's: ``localhost``
#: (exits do not read /etc/hosts), and a name whose address is not internal, so that
#: a reverse lookup can be tested (C tor exits refuse PTR lookups of internal addresses).
EXTRA_DNS_NAMES = {"localhost": "127.0.0.1", "reverse.gotor.test": "192.0.2.1"}


@dataclass(frozen=True)
class NetworkSpec:
    """The shape of a network: how many of each node, timings, test files."""

    authorities: int = 3
    relays: int = 3  # middle relays, besides the exits
    exits: int = 2
    client: bool = True  # a C tor client for comparison
    #: Seconds between consensuses (V3AuthVotingInterval); the first one comes after
    #: ``initial_voting_interval`` (TestingV3AuthInitialVotingInterval).  Both must
    #: divide 30 minutes; each consensus is valid for two intervals.
    voting_interval: int = 20
    initial_voting_interval: int = 10
    #: The name the network's DNS server gives the web server (127.0.0.1).
    web_hostname: str = "web.gotor.test"
    files: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_FILES))

    def __post_init__(self) -> None:
        if self.authorities < 1 or self.exits < 1 or self.relays < 0:
            raise TestnetError("a network needs an authority and an exit")
        for interval in (self.voting_interval, self.initial_voting_interval):
            if interval < 10 or 1800 % interval:
                raise TestnetError(f"voting interval {interval} s must be >= 10 and divide 1800")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = dict(self.files)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkSpec:
        return cls(**{**data, "files": dict(data["files"])})


@dataclass
class Node:
    """One process of the network.  ``ports`` keys: or, dir, socks, control, http, dns."""

    name: str
    role: Role
    ports: dict[str, int]
    fingerprint: str | None = None  # RSA identity, hex
    ed25519: str | None = None  # Ed25519 identity, base64
    v3ident: str | None = None  # authorities: the key certificate's fingerprint
    pid: int | None = None  # the process, while it runs

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "role": str(self.role)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Node:
        return cls(**{**data, "role": Role(data["role"]), "ports": dict(data["ports"])})


@dataclass
class Network:
    """A network in ``root`` (see the module docstring)."""

    root: Path
    spec: NetworkSpec
    nodes: list[Node]
    files: list[WebFile] = field(default_factory=list)
    tor_version: str = ""
    state: str = "created"  # created, starting, up, down

    # --- paths ------------------------------------------------------------------------
    def node_dir(self, node: Node) -> Path:
        return self.root / node.name

    def torrc(self, node: Node) -> Path:
        return self.node_dir(node) / "torrc"

    def log(self, node: Node) -> Path:
        """Where the node logs: tor's notice log, or the services' output."""
        name = "services.log" if node.role is Role.SERVICES else "notice.log"
        return self.node_dir(node) / name

    def stdout_log(self, node: Node) -> Path:
        """What the process writes on stdout/stderr (tor: anything before its log opens)."""
        return self.node_dir(node) / "stdout.log"

    @property
    def www(self) -> Path:
        return self.root / "www"

    # --- views ------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TestnetError(f"no node {name!r} in the network in {self.root}")

    def by_role(self, *roles: Role) -> list[Node]:
        return [n for n in self.nodes if n.role in roles]

    @property
    def relays(self) -> list[Node]:
        """Every node that is a relay: authorities, middles and exits."""
        return self.by_role(*RELAY_ROLES)

    @property
    def services(self) -> Node:
        return self.by_role(Role.SERVICES)[0]

    @property
    def client(self) -> Node | None:
        """The network's C tor client (the first, if more were added)."""
        clients = self.by_role(Role.CLIENT)
        return clients[0] if clients else None

    def dir_authority_lines(self) -> list[str]:
        """C tor's ``DirAuthority`` lines for the authorities (tor(1), "DirAuthority")."""
        return [f"DirAuthority {n.name} orport={n.ports['or']} no-v2 v3ident={n.v3ident} "
                f"127.0.0.1:{n.ports['dir']} {n.fingerprint}"
                for n in self.by_role(Role.AUTHORITY)]

    def dns_names(self) -> dict[str, str]:
        """Every name the network's DNS server answers, with its address."""
        return {self.spec.web_hostname: "127.0.0.1", **EXTRA_DNS_NAMES}

    def web_url(self, name: str, *, by_name: bool = True) -> str:
        """The URL of test file ``name`` (through the DNS name, or the address)."""
        host = self.spec.web_hostname if by_name else "127.0.0.1"
        return f"http://{host}:{self.services.ports['http']}/{name}"

    def file(self, name: str) -> WebFile:
        for f in self.files:
            if f.name == name:
                return f
        raise TestnetError(f"no test file {name!r}")

    # --- on disk ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "root": str(self.root),
            "state": self.state,
            "tor_version": self.tor_version,
            "spec": self.spec.to_json(),
            "dir_authority_lines": self.dir_authority_lines(),
            "web": {"host": "127.0.0.1", "hostname": self.spec.web_hostname,
                    "port": self.services.ports["http"],
                    "files": [asdict(f) for f in self.files]},
            "dns": {"port": self.services.ports["dns"], "names": self.dns_names()},
            "nodes": [n.to_json() for n in self.nodes],
        }

    def save(self) -> None:
        """Write ``network.json`` (atomically) and ``dir-authorities``."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (DESCRIPTION + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(self.root / DESCRIPTION)
        (self.root / "dir-authorities").write_text("\n".join(self.dir_authority_lines()) + "\n")

    @classmethod
    def load(cls, root: Path) -> Network:
        path = root / DESCRIPTION
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TestnetError(f"no network in {root} ({DESCRIPTION} is missing)") from None
        except (OSError, ValueError) as exc:
            raise TestnetError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TestnetError(f"{path} is not a {FORMAT} description")
        try:
            return cls(root=root, spec=NetworkSpec.from_json(data["spec"]),
                       nodes=[Node.from_json(n) for n in data["nodes"]],
                       files=[WebFile(**f) for f in data["web"]["files"]],
                       tor_version=data["tor_version"], state=data["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TestnetError(f"{path} is damaged: {exc!r}") from None
