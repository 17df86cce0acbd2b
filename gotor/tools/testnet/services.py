"""The private network's own services: a web server with test files and a DNS server.

Run as a process of its own by the harness (``python -m gotor.tools.testnet.services``):

* **HTTP** on ``127.0.0.1:<http-port>``: the files of ``--root`` (the test
  files of :mod:`gotor.tools.testnet.content`), HTTP/1.0 as ``http.server``.
* **DNS** on ``127.0.0.1:<dns-port>`` (UDP): A and PTR answers for the names of
  ``--name NAME=ADDRESS``, NXDOMAIN for every other name (RFC 1035 §4.1).  The
  exits' ``ServerDNSResolvConfFile`` names this server (``nameserver
  127.0.0.1:<port>``, a form libevent's resolv.conf parser accepts), so exits
  resolve the network's names and never ask the host's resolver.

Both serve until the process gets SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import ipaddress
import signal
import socket
import struct
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

__all__ = ["dns_answer", "main"]

_DNS_TTL = 60
_QTYPE_A = 1
_QTYPE_PTR = 12
_QCLASS_IN = 1
_RCODE_NXDOMAIN = 3
_RCODE_FORMERR = 1

# --- DNS (RFC 1035 §4.1) ------------------------------------------------------------


def _read_name(packet: bytes, at: int) -> tuple[str, int]:
    """A question name (no compression: queries have none); the offset after it."""
    labels: list[str] = []
    while True:
        if at >= len(packet):
            raise ValueError("name runs past the packet")
        length = packet[at]
        at += 1
        if length == 0:
            return ".".join(labels).lower(), at
        if length > 63 or at + length > len(packet):
            raise ValueError("bad label")
        labels.append(packet[at : at + length].decode("ascii", "replace"))
        at += length


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def _records(names: Mapping[str, str], qname: str, qtype: int) -> list[tuple[int, bytes]] | None:
    """(type, rdata) answers, [] for a known name without that type, None: NXDOMAIN."""
    if qname in names:
        address = ipaddress.ip_address(names[qname])
        return [(_QTYPE_A, address.packed)] if qtype == _QTYPE_A and address.version == 4 else []
    reverse = {ipaddress.ip_address(a).reverse_pointer: n for n, a in sorted(names.items())}
    if qname in reverse:
        return [(_QTYPE_PTR, _encode_name(reverse[qname]))] if qtype == _QTYPE_PTR else []
    return None


def dns_answer(query: bytes, names: Mapping[str, str]) -> bytes | None:
    """The response to one DNS query datagram (None: too short to answer at all)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:
        return None  # a response, not a query
    rd = flags & 0x0100
    try:
        if qdcount != 1:
            raise ValueError("one question per query")
        qname, end = _read_name(query, 12)
        if end + 4 > len(query):
            raise ValueError("truncated question")
        qtype, qclass = struct.unpack("!HH", query[end : end + 4])
    except ValueError:
        return struct.pack("!HHHHHH", ident, 0x8000 | rd | _RCODE_FORMERR, 0, 0, 0, 0)
    question = query[12 : end + 4]
    records = _records(names, qname, qtype) if qclass == _QCLASS_IN else []
    rcode = _RCODE_NXDOMAIN if records is None else 0
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, rtype, _QCLASS_IN, _DNS_TTL, len(rdata)) + rdata
        for rtype, rdata in records or []
    )
    header = struct.pack("!HHHHHH", ident, 0x8400 | rd | 0x0080 | rcode, 1, len(records or []),
                         0, 0)  # QR, AA, RA
    return header + question + answers


def _serve_dns(sock: socket.socket, names: Mapping[str, str]) -> None:
    while True:
        try:
            query, peer = sock.recvfrom(4096)
        except OSError:
            return  # closed at shutdown
        reply = dns_answer(query, names)
        if reply is not None:
            sock.sendto(reply, peer)


# --- HTTP ---------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of exit connections while the
    # accepting thread waits for the GIL would overflow it (a refused connection).
    request_queue_size = 128


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    # One log line per request on stderr (the harness sends it to services.log).
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _parse_name(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDRESS, got {text!r}")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {address!r}") from None
    return name.lower().rstrip("."), address


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="directory of files to serve")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--dns-port", type=int, required=True)
    parser.add_argument("--name", type=_parse_name, action="append", default=[],
                        help="NAME=ADDRESS: a name the DNS server answers")
    args = parser.parse_args(argv)
    names = dict(args.name)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", args.dns_port))
    handler = functools.partial(_QuietHandler, directory=str(args.root))
    httpd = _Server(("127.0.0.1", args.http_port), handler)
    threading.Thread(target=_serve_dns, args=(dns, names), daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: do it elsewhere.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving {args.root} on 127.0.0.1:{args.http_port}, DNS on udp 127.0.0.1:"
          f"{args.dns_port}", file=sys.stderr, flush=True)
    httpd.serve_forever()
    httpd.server_close()
    dns.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
