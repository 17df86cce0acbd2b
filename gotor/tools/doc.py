"""``gotor doc``: parse and verify a Tor directory document and summarise it.

    gotor doc FILE [--type TYPE] [--certs FILE] [--onion-address ADDR] [--json] [--now TIME]

The plumbing shared by every document type: reading files, detecting the type
from the first keyword (after any ``@`` annotations, which caches and CollecTor
put first), loading ``--certs``, judging validity windows at ``--now``,
printing text or one JSON object, and the exit status.  What is specific to a
type — parsing, verifying, what to summarise — is its entry in
:data:`gotor.tools.docsummary.DOC_TYPES`.

Exit status: 0 only for a well-formed, verified document (inside its validity
window when ``--now`` is given); errors (unreadable file, malformed document,
bad option) print one line ``gotor doc: error: ...`` on stderr via
:func:`gotor.cli.main`.  Windows are always reported and judged only against
``--now``, so archived documents can be checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from gotor.errors import GotorError, ProtocolError, VerificationError
from gotor.netdoc.authcert import AuthCert, parse_authcerts
from gotor.netdoc.checked import ValidityWindow
from gotor.tools.docsummary import DOC_TYPES, DocType, Inputs, Json, Summary, iso_time

__all__ = ["DocToolError", "register", "run"]

EXIT_OK = 0
EXIT_ERROR = 1  # what gotor.cli.main returns for a GotorError
EXIT_NOT_VERIFIED = 3
EXIT_OUTSIDE_WINDOW = 4

#: Refuse larger inputs (a full consensus is a few MB); also stops `gotor doc /dev/zero`.
MAX_FILE_BYTES = 64 << 20

#: Keys every JSON summary has, null where they do not apply.
COMMON_KEYS = ("valid_after", "valid_until", "signatures", "quorum")

#: Optional inputs and their flags; each DocType lists the ones it uses.
OPTION_FLAGS = {"certs": "--certs", "onion_address": "--onion-address"}

_BY_NAME = {t.name: t for t in DOC_TYPES}
_BY_KEYWORD = {t.first_keyword.encode(): t for t in DOC_TYPES}
_TEXT_LIST_LIMIT = 10
_STDERR_PROBLEMS = 3

_EPILOG = """\
document types (detected from the first keyword unless --type is given):
{types}

exit status:
  0  well-formed and verified (and inside its validity window, if --now is given)
  1  error: unreadable file, malformed document, bad option value
  2  usage error
  3  well-formed but not verified (bad or unknown signatures, no quorum, no --certs)
  4  verified, but outside its validity window at --now
"""


class DocToolError(GotorError):
    """A problem with the tool's inputs; its message is printed as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def register(sub: Any) -> None:
    types = "\n".join(f"  {t.name:18} {t.description}" for t in DOC_TYPES)
    p = sub.add_parser(
        "doc",
        help="parse and verify a Tor directory document",
        description="Parse and verify a Tor directory document and print a summary.",
        epilog=_EPILOG.format(types=types),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="the document")
    p.add_argument("--type", choices=sorted(_BY_NAME), help="the document type (default: detect)")
    p.add_argument(
        "--certs",
        metavar="FILE",
        help="authority key certificates to check a consensus's signatures against. The tool "
        "trusts the certificates given: quorum means more than half of their authorities signed. "
        "(A real client pins its authorities' identities instead.)",
    )
    p.add_argument(
        "--onion-address",
        metavar="ADDR",
        help="the onion address an onion-service descriptor belongs to",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with stable keys")
    p.add_argument(
        "--now",
        metavar="TIME",
        help="judge validity windows at TIME, ISO 8601 in UTC (2026-11-22T10:00:00, a trailing Z "
        "is accepted); without it windows are reported, not judged",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    now = parse_now(args.now) if args.now is not None else None
    body, keyword = strip_annotations(read_file(args.file, "document"))
    doc_type = _BY_NAME[args.type] if args.type else detect(keyword, args.file)
    for name, flag in OPTION_FLAGS.items():
        if getattr(args, name) is not None and name not in doc_type.options:
            raise DocToolError(f"{flag} does not apply to {doc_type.name} documents")
    certs = load_certs(args.certs) if args.certs is not None else None
    try:
        summary = doc_type.summarise(body, Inputs(certs, now, args.onion_address))
    except ProtocolError as exc:
        raise DocToolError(f"{args.file}: not a valid {doc_type.name}: {exc}") from None
    out, status = verdict(doc_type, args.file, summary, now)
    print(json.dumps(out, indent=2) if args.json else render_text(out))
    if status != EXIT_OK:
        print(f"gotor doc: {_failure_line(out, status)}", file=sys.stderr)
    return status


# --- inputs ----------------------------------------------------------------


def read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DocToolError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DocToolError(f"{what} {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
    return data


def strip_annotations(data: bytes) -> tuple[bytes, bytes]:
    """``(body, first keyword)``: leading ``@`` annotation lines blanked out.

    Blank lines are skipped by the tokenizer (dir-spec §1.2 grammar), so
    blanking instead of cutting keeps the line numbers of error messages; the
    signed parts of documents start at their first keyword and are unchanged.
    """
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line = data[pos:end]
        if line and not line.startswith(b"@"):
            words = line.split(maxsplit=1)
            return b"\n" * data.count(b"\n", 0, pos) + data[pos:], words[0] if words else b""
        pos = end + 1
    return data, b""


def detect(keyword: bytes, path: str) -> DocType:
    doc_type = _BY_KEYWORD.get(keyword)
    if doc_type is not None:
        return doc_type
    if not keyword:
        raise DocToolError(f"{path}: empty document")
    text = keyword[:40].decode("ascii", "replace")
    if text.isprintable() and "\ufffd" not in text:
        start = f"it starts with {text!r}"
    else:
        start = "it does not start with a keyword"
    raise DocToolError(
        f"{path}: not a recognised directory document ({start}; "
        f"known types: {', '.join(_BY_NAME)}; or give --type)"
    )


def parse_now(text: str) -> int:
    """POSIX seconds of an ISO 8601 time; no zone means UTC (an explicit offset is honoured)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DocToolError(
            f"bad --now {text[:60]!r}: expected an ISO 8601 UTC time such as 2026-11-22T10:00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def load_certs(path: str) -> tuple[AuthCert, ...]:
    """The verified certificates of a ``--certs`` file; any bad one is an error.

    Their expiry is not judged here: with ``--now``, a signature whose only
    certificate has expired counts as "expired key".
    """
    body, _ = strip_annotations(read_file(path, "certificate file"))
    try:
        parsed = parse_authcerts(body)
    except ProtocolError as exc:
        raise DocToolError(f"certificate file {path}: {exc}") from None
    if not parsed:
        raise DocToolError(f"certificate file {path}: no certificates")
    certs = []
    for n, unverified in enumerate(parsed, 1):
        try:
            certs.append(unverified.verify(now=None))
        except VerificationError as exc:
            raise DocToolError(
                f"certificate file {path}: certificate {n} "
                f"({unverified.fingerprint.hex().upper()}) does not verify: {exc}"
            ) from None
    return tuple(certs)


# --- verdict and output ----------------------------------------------------


def verdict(
    doc_type: DocType, path: str, summary: Summary, now: int | None
) -> tuple[dict[str, Json], int]:
    """The output object (stable keys) and the exit status."""
    window_problems = _judge(summary.windows, now)
    out: dict[str, Json] = {"type": doc_type.name, "file": path, **summary.fields}
    for key in COMMON_KEYS:
        out.setdefault(key, None)
    out["now"] = iso_time(now) if now is not None else None
    out["in_window"] = None if now is None or not summary.windows else not window_problems
    out["verified"] = not summary.problems
    out["problems"] = [*summary.problems, *window_problems]
    if summary.problems:
        return out, EXIT_NOT_VERIFIED
    return out, EXIT_OUTSIDE_WINDOW if window_problems else EXIT_OK


def _judge(windows: tuple[tuple[str, ValidityWindow], ...], now: int | None) -> list[str]:
    if now is None:
        return []
    problems = []
    for label, window in windows:
        try:
            window.check(now, what=label)
        except VerificationError as exc:
            problems.append(f"{exc} (--now {iso_time(now)})")
    return problems


def _failure_line(out: dict[str, Json], status: int) -> str:
    problems = [str(p) for p in out["problems"]] if isinstance(out["problems"], list) else []
    shown = problems[:_STDERR_PROBLEMS]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    what = "not verified" if status == EXIT_NOT_VERIFIED else "outside its validity window"
    return f"{what}: {'; '.join(shown)}"


def render_text(out: dict[str, Json]) -> str:
    """``label: value`` lines; lists as indented blocks (long ones shortened)."""
    width = max(len(k) for k in out) + 2
    lines = []
    for key, value in out.items():
        label = f"{key.replace('_', ' ')}:"
        if isinstance(value, list) and value:
            lines.append(label)
            lines += [f"  - {_text(v)}" for v in value[:_TEXT_LIST_LIMIT]]
            if len(value) > _TEXT_LIST_LIMIT:
                lines.append(f"  ... and {len(value) - _TEXT_LIST_LIMIT} more")
        elif key == "in_window" and value is None and out.get("now") is None:
            lines.append(f"{label:{width}} not judged (give --now TIME)")
        else:
            lines.append(f"{label:{width}} {_text(value)}")
    return "\n".join(lines)


def _text(value: Json) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "none"
    return str(value)
