"""``gotor testnet up|status|down DIR``: a private Tor network of C tor on loopback.

    gotor testnet up DIR [--authorities N] [--relays N] [--exits N] [--no-client]
    gotor testnet status DIR [--json]
    gotor testnet down DIR

``up`` makes a new network in DIR (which must be new or empty) and returns
once every authority serves a consensus listing every relay and the C tor
client has bootstrapped; it prints the network's ``DirAuthority`` lines, a
torrc for ``gotor run -f``, the C tor client's SOCKS port and the test files'
URLs.  The processes keep running after the command exits; ``down`` stops
them by PID.  ``status`` lists every node and whether its process runs (exit
0 when all run, 3 otherwise).  If ``up`` fails or is interrupted, it stops
everything it started.  The harness is :mod:`gotor.tools.testnet`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from gotor.tools import testnet
from gotor.tools.testnet.network import BOOTSTRAP_TIMEOUT, CONSENSUS_TIMEOUT, consensus_status

__all__ = ["register", "sample_torrc"]

EXIT_NOT_ALL_RUNNING = 3


def register(sub: Any) -> None:
    p = sub.add_parser("testnet", help="a private Tor network of C tor processes on loopback")
    actions = p.add_subparsers(dest="testnet_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="create and start a network in a new directory")
    up.add_argument("dir", type=Path)
    up.add_argument("--authorities", type=int, default=3, metavar="N")
    up.add_argument("--relays", type=int, default=3, metavar="N", help="middle relays (default 3)")
    up.add_argument("--exits", type=int, default=2, metavar="N")
    up.add_argument("--no-client", action="store_true", help="no C tor client")
    up.add_argument("--tor", help="the tor binary (default: tor on PATH, or /usr/sbin/tor)")
    up.add_argument("--timeout", type=float, default=CONSENSUS_TIMEOUT, metavar="SECONDS",
                    help=f"wait this long for the consensus (default {CONSENSUS_TIMEOUT:.0f})")
    up.set_defaults(run=run_up)
    st = actions.add_parser("status", help="show which processes of a network run")
    st.add_argument("dir", type=Path)
    st.add_argument("--json", action="store_true", help="one JSON object")
    st.set_defaults(run=run_status)
    down = actions.add_parser("down", help="stop every process of a network")
    down.add_argument("dir", type=Path)
    down.set_defaults(run=run_down)


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that SIGTERM, too, stops what `up` started


def sample_torrc(net: testnet.Network, data_dir: Path, socks_port: int = 9150) -> str:
    """A torrc for ``gotor run -f`` (or C tor) that uses network ``net``."""
    return "\n".join([
        "TestingTorNetwork 1",
        f"DataDirectory {data_dir}",
        f"SocksPort 127.0.0.1:{socks_port}",
        *net.dir_authority_lines(),
    ]) + "\n"


def run_up(args: argparse.Namespace) -> int:
    spec = testnet.NetworkSpec(authorities=args.authorities, relays=args.relays,
                               exits=args.exits, client=not args.no_client)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    print(f"gotor testnet: creating the network in {args.dir} ...", flush=True)
    net = testnet.create(args.dir, spec, tor=args.tor)
    print(f"gotor testnet: starting {len(net.nodes)} processes (tor {net.tor_version}) ...",
          flush=True)
    testnet.start(net, tor=args.tor, consensus_timeout=args.timeout,
                  bootstrap_timeout=max(args.timeout, BOOTSTRAP_TIMEOUT))
    sample = net.root / "gotor.torrc"
    sample.write_text(sample_torrc(net, net.root / "gotor-data"))
    print(f"gotor testnet: up. {len(net.relays)} relays ({len(net.by_role(testnet.Role.EXIT))} "
          f"exits), description in {net.root / 'network.json'}")
    print("\nDirAuthority lines (also in dir-authorities):")
    print("\n".join(net.dir_authority_lines()))
    print(f"\nA torrc for gotor: {sample}  ->  gotor run -f {sample}")
    if net.client is not None:
        print(f"C tor client SOCKS port: 127.0.0.1:{net.client.ports['socks']} "
              f"(control port {net.client.ports['control']})")
    print(f"Test files: {net.web_url('<NAME>')} for NAME in "
          f"{', '.join(f.name for f in net.files)}")
    print(f"Stop it with: gotor testnet down {args.dir}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    net = testnet.Network.load(args.dir.resolve())
    nodes = testnet.status(net)
    running = sum(s.running for s in nodes)
    consensus = [consensus_status(net, a) for a in net.by_role(testnet.Role.AUTHORITY)
                 if any(s.running and s.name == a.name for s in nodes)]
    if args.json:
        print(json.dumps({
            "dir": str(net.root), "state": net.state, "running": running, "total": len(nodes),
            "nodes": [{"name": s.name, "role": str(s.role), "pid": s.pid, "running": s.running,
                       "ports": s.ports} for s in nodes],
            "consensus": [{"authority": c.authority, "valid_after": c.valid_after,
                           "missing": list(c.missing), "error": c.error} for c in consensus],
        }, indent=2))
    else:
        print(f"network {net.root}: {net.state} (tor {net.tor_version}), "
              f"{running} of {len(nodes)} processes running")
        for s in nodes:
            ports = " ".join(f"{k}={v}" for k, v in s.ports.items())
            state = "running" if s.running else "stopped"
            print(f"  {s.name:10} {s.role:9} {s.pid or '-':>7}  {state:8} {ports}")
        for c in consensus:
            verdict = ("lists every relay" if c.ready else
                       f"lacks {', '.join(c.missing)}" if c.missing else
                       str(c.error) if c.valid_after else f"none ({c.error})")
            print(f"  consensus at {c.authority}: {c.valid_after or '-'}: {verdict}")
    return 0 if running == len(nodes) else EXIT_NOT_ALL_RUNNING


def run_down(args: argparse.Namespace) -> int:
    net = testnet.Network.load(args.dir.resolve())
    stopped = testnet.stop(net)
    print(f"gotor testnet: stopped {len(stopped)} processes"
          + (f" ({', '.join(stopped)})" if stopped else ""), file=sys.stdout)
    return 0
