"""torrc files for the nodes of a private network, and the files they share.

The options are those known to give Debian's tor 0.4.9 a working network on
loopback in well under a minute (issue 5; tor(1) "TESTING NETWORK OPTIONS"):

* every node: ``TestingTorNetwork 1`` (private addresses allowed, one address
  for many relays, fast downloads), explicit ``127.0.0.1`` ports,
  ``PathsNeededToBuildCircuits 0.67``, empty GeoIP files (loading the real
  ones costs seconds of CPU per tor);
* relays: ``Address``/``OutboundBindAddress 127.0.0.1`` (every connection stays
  on loopback), ``AssumeReachable 1`` (no self-test before publishing);
* authorities: short voting (a consensus every ``voting_interval`` seconds,
  valid for two), Guard/HSDir for everyone, Exit for the exits only, no
  bandwidth thresholds, and a ``V3BandwidthsFile`` giving every relay the same
  measured weight (bandwidth-file-spec 1.0.0) — otherwise the authorities'
  measured weights put every path through the authorities;
* exits: a policy that allows loopback *and* names all IPv4 addresses
  (``accept 127.0.0.0/8:*``, ``accept *4:*``): with a loopback-only policy the
  microdescriptor summary is "reject", and microdescriptor clients find no
  exit; names resolved through the network's own DNS server only.
"""

from __future__ import annotations

from collections.abc import Iterable

from gotor.tools.testnet.model import Network, Node, Role

__all__ = ["bandwidth_file", "resolv_conf", "torrc"]

#: Every relay's weight in the bandwidth file (kilobytes per second).
MEASURED_BW = 1000

#: Vote and distribution delays, as fractions of the voting interval (their sum
#: must stay below the interval).
_DELAY_DIVISOR = 5


def _common(net: Network, node: Node) -> list[str]:
    d = net.node_dir(node)
    return [
        "TestingTorNetwork 1",
        f"DataDirectory {d}",
        f"Nickname {node.name}",
        "RunAsDaemon 0",
        f"PidFile {d / 'pid'}",
        f"Log notice file {net.log(node)}",
        "SafeLogging 0",
        "ProtocolWarnings 1",
        "ShutdownWaitLength 0",
        "DisableDebuggerAttachment 0",
        f"GeoIPFile {net.root / 'empty-geoip'}",
        f"GeoIPv6File {net.root / 'empty-geoip'}",
        "PathsNeededToBuildCircuits 0.67",
        "AssumeReachable 1",
        *net.dir_authority_lines(),
    ]


def _relay(net: Network, node: Node) -> list[str]:
    return [
        f"ORPort 127.0.0.1:{node.ports['or']}",
        "Address 127.0.0.1",
        "OutboundBindAddress 127.0.0.1",
        "SocksPort 0",
        f"ContactInfo {node.name}@gotor-testnet.invalid",
    ]


def _voting(interval: int, option: str) -> list[str]:
    delay = max(2, interval // _DELAY_DIVISOR)
    return [f"{option}VotingInterval {interval}", f"{option}VoteDelay {delay}",
            f"{option}DistDelay {delay}"]


def _authority(net: Network, node: Node) -> list[str]:
    exits = ",".join(str(n.fingerprint) for n in net.by_role(Role.EXIT))
    return [
        *_relay(net, node),
        f"DirPort 127.0.0.1:{node.ports['dir']}",
        "AuthoritativeDirectory 1",
        "V3AuthoritativeDirectory 1",
        *_voting(net.spec.voting_interval, "V3Auth"),
        *_voting(net.spec.initial_voting_interval, "TestingV3AuthInitial"),
        "V3AuthNIntervalsValid 2",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteHSDir *",
        f"TestingDirAuthVoteExit {exits}",
        "TestingDirAuthVoteExitIsStrict 1",
        "TestingMinExitFlagThreshold 0",
        "TestingMinFastFlagThreshold 0",
        f"V3BandwidthsFile {net.root / 'bandwidth'}",
        "ExitRelay 0",
        "ExitPolicy reject *:*",
    ]


def _middle(net: Network, node: Node) -> list[str]:
    return [*_relay(net, node), "ExitRelay 0", "ExitPolicy reject *:*"]


def _exit(net: Network, node: Node) -> list[str]:
    return [
        *_relay(net, node),
        "ExitRelay 1",
        "IPv6Exit 0",
        "ExitPolicyRejectPrivate 0",
        "ExitPolicy accept 127.0.0.0/8:*",
        "ExitPolicy accept *4:*",
        "ExitPolicy reject *:*",
        f"ServerDNSResolvConfFile {net.root / 'resolv.conf'}",
        "ServerDNSDetectHijacking 0",
        "ServerDNSAllowBrokenConfig 0",
    ]


def _client(net: Network, node: Node) -> list[str]:
    return [
        f"SocksPort 127.0.0.1:{node.ports['socks']}",
        f"ControlPort 127.0.0.1:{node.ports['control']}",
        "ClientUseIPv6 0",
    ]


_ROLE_OPTIONS = {
    Role.AUTHORITY: _authority,
    Role.RELAY: _middle,
    Role.EXIT: _exit,
    Role.CLIENT: _client,
}


def torrc(net: Network, node: Node, extra: Iterable[str] = ()) -> str:
    """The torrc of a tor node (any role but SERVICES), plus ``extra`` option lines."""
    lines = [f"# {node.role} {node.name} of the gotor testnet in {net.root}",
             *_common(net, node), *_ROLE_OPTIONS[node.role](net, node), *extra]
    return "\n".join(lines) + "\n"


def bandwidth_file(net: Network, timestamp: int) -> str:
    """A V3BandwidthsFile (bandwidth-file-spec, version 1.0.0) weighting every relay alike."""
    lines = [str(timestamp)]
    lines += [f"node_id=${n.fingerprint} bw={MEASURED_BW} nick={n.name}" for n in net.relays]
    return "\n".join(lines) + "\n"


def resolv_conf(net: Network) -> str:
    """The exits' resolver configuration: the network's DNS server and nothing else."""
    return f"nameserver 127.0.0.1:{net.services.ports['dns']}\n"
