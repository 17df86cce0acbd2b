"""What ``gotor doc`` knows about each document type: detect, parse + verify, summarise.

:data:`DOC_TYPES` has one :class:`DocType` entry per document type.  An entry
names the keyword its documents start with (dir-spec §1.2: every document
opens with a fixed keyword; cached files may put ``@`` annotations first) and
a ``summarise(body, inputs)`` function that parses the document with
:mod:`gotor.netdoc`, verifies what the inputs allow, and returns a
:class:`Summary`:

* ``fields`` — JSON-ready facts in display order.  Every signed type sets
  ``signatures`` (:func:`signature_counts`) and ``quorum`` (None where the
  notion does not apply); the window is ``valid_after``/``valid_until``
  (:func:`window_fields`).  The CLI puts ``type`` and ``file`` first and fills
  in missing common keys with null, so scripts find the same keys for every type;
* ``windows`` — the validity windows that ``--now`` judges, each labelled;
* ``problems`` — why the document is not verified (empty: verified).

A malformed document raises :class:`~gotor.errors.ProtocolError`; everything
shared — reading files, options, judging the window, text/JSON output, exit
codes — is :mod:`gotor.tools.doc`.  Adding a type (server descriptors,
dir-spec §2.1.1, first keyword ``router``; onion-service descriptors,
rend-spec-v3 §2.4, first keyword ``hs-descriptor``, which uses the
``onion_address`` input) is one function and one table entry.

Trust: a consensus is checked against the certificates given with ``--certs``,
and the authorities it trusts are exactly those certificates' identities
("trust the certificates given").  A real client instead pins the v3
identities of its authorities and fetches their certificates (dir-spec §3.4.1
quorum rule); this tool is for inspecting documents, including those of test
networks whose authorities no client pins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from gotor.crypto.hs_index import DEFAULT_ROTATION_OFFSET_SECONDS, time_period_number
from gotor.crypto.onion_address import decode_onion_address
from gotor.errors import DocumentError, LocalError, ProtocolError, VerificationError
from gotor.netdoc.authcert import AuthCert, UnverifiedAuthCert, parse_authcerts
from gotor.netdoc.checked import ValidityWindow
from gotor.netdoc.consensus import (
    SignatureCheck,
    SignatureReport,
    SignatureStatus,
    UnverifiedConsensus,
    parse_consensus,
)
from gotor.netdoc.fields import format_b64, format_hex, format_time
from gotor.netdoc.hsdesc import HsDescKeys, UnverifiedHsDesc, parse_hsdesc
from gotor.netdoc.microdesc import parse_microdescs
from gotor.netdoc.routerdesc import RouterDescriptor, parse_router_descriptors

__all__ = [
    "DOC_TYPES",
    "DocType",
    "Inputs",
    "Json",
    "Summary",
    "iso_time",
    "signature_counts",
    "window_fields",
]

Json: TypeAlias = "None | bool | int | str | list[Json] | dict[str, Json]"


@dataclass(frozen=True)
class Inputs:
    """What the command line gives an entry besides the document.

    ``certs``: verified authority certificates (None: ``--certs`` not given);
    ``now``: POSIX seconds to judge times at (None: not judged);
    ``onion_address``: for onion-service descriptors.
    """

    certs: tuple[AuthCert, ...] | None = None
    now: int | None = None
    onion_address: str | None = None


@dataclass
class Summary:
    """An entry's result; see the module docstring."""

    fields: dict[str, Json]
    windows: tuple[tuple[str, ValidityWindow], ...] = ()
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DocType:
    """One document type.  ``options``: the optional :class:`Inputs` it uses
    (``"certs"``, ``"onion_address"``); giving another is a usage error."""

    name: str
    first_keyword: str
    summarise: Callable[[bytes, Inputs], Summary]
    description: str
    options: frozenset[str] = frozenset()


# --- shared helpers --------------------------------------------------------


def iso_time(when: int) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2020-08-07T12:42:40Z``."""
    return format_time(when).replace(" ", "T") + "Z"


def window_fields(window: ValidityWindow | None) -> dict[str, Json]:
    """The ``valid_after``/``valid_until`` keys (null when there is no window)."""
    if window is None:
        return {"valid_after": None, "valid_until": None}
    return {"valid_after": iso_time(window.not_before), "valid_until": iso_time(window.not_after)}


def signature_counts(
    valid: int = 0,
    invalid: int = 0,
    unknown_key: int = 0,
    expired_key: int = 0,
    unknown_algorithm: int = 0,
) -> dict[str, Json]:
    """The ``signatures`` object: the same five keys for every signed type."""
    return {
        "valid": valid,
        "invalid": invalid,
        "unknown_key": unknown_key,
        "expired_key": expired_key,
        "unknown_algorithm": unknown_algorithm,
    }


# --- consensus (dir-spec §3.4.1, §3.9) -------------------------------------


def summarise_consensus(body: bytes, inputs: Inputs) -> Summary:
    unverified = parse_consensus(body)
    # An inspection tool shows a document's claims whether or not it verifies;
    # the verdict is the signature report below (the quorum rule of verify()).
    c = unverified.dangerously_assume_verified()
    report = _consensus_report(unverified, inputs)
    flags = Counter(flag for rs in c.routers for flag in rs.flags)
    fields: dict[str, Json] = {
        "flavor": c.flavor.value,
        "consensus_method": c.consensus_method,
        "valid_after": iso_time(c.valid_after),
        "fresh_until": iso_time(c.fresh_until),
        "valid_until": iso_time(c.valid_until),
        "routers": len(c.routers),
        "flags": {f: flags[f] for f in sorted(set(c.known_flags) | set(flags))},
        "authorities_listed": len(c.authorities),
        "signatures": signature_counts(*(report.count(s) for s in _STATUS_ORDER)),
        "trusted_authorities": len(report.authorities),
        "signed_by_trusted": len(report.valid_authorities),
        "quorum": report.quorum,
        "signers": [_signer(check) for check in report.checks],
    }
    return Summary(fields, (("consensus", c.validity),), _consensus_problems(report, inputs))


# The argument order of signature_counts().
_STATUS_ORDER = (
    SignatureStatus.VALID,
    SignatureStatus.INVALID,
    SignatureStatus.UNKNOWN_KEY,
    SignatureStatus.EXPIRED_KEY,
    SignatureStatus.UNKNOWN_ALGORITHM,
)


def _consensus_report(unverified: UnverifiedConsensus, inputs: Inputs) -> SignatureReport:
    if inputs.certs is not None:
        trusted = [cert.fingerprint for cert in inputs.certs]
        return unverified.check_signatures(inputs.certs, trusted, now=inputs.now)
    # No certificates: nothing is trusted, so every signature with a known
    # algorithm is "unknown key" and there is no quorum (0 of 0 is not a majority).
    checks = tuple(
        SignatureCheck(
            sig,
            SignatureStatus.UNKNOWN_KEY
            if unverified.signed_digest(sig.algorithm) is not None
            else SignatureStatus.UNKNOWN_ALGORITHM,
            trusted=False,
        )
        for sig in unverified.signatures
    )
    return SignatureReport(checks, ())


def _signer(check: SignatureCheck) -> dict[str, Json]:
    sig = check.signature
    return {
        "identity": format_hex(sig.identity),
        "signing_key_digest": format_hex(sig.signing_key_digest),
        "algorithm": sig.algorithm,
        "status": check.status.value,
        "trusted": check.trusted,
    }


def _consensus_problems(report: SignatureReport, inputs: Inputs) -> list[str]:
    if inputs.certs is None:
        return ["signatures not checked: no --certs given"]
    if report.quorum:
        return []
    signed, given = len(report.valid_authorities), len(report.authorities)
    return [f"no quorum: valid signatures from {signed} of the {given} authorities given"]


# --- authority key certificates (dir-spec §3.1) ----------------------------


def summarise_authcerts(body: bytes, inputs: Inputs) -> Summary:
    parsed = parse_authcerts(body)
    if not parsed:
        raise DocumentError("no authority certificate in the file")
    certs: list[Json] = []
    windows: list[tuple[str, ValidityWindow]] = []
    problems: list[str] = []
    for unverified in parsed:
        cert = unverified.dangerously_assume_verified()  # its claims, shown either way
        label = f"certificate {format_hex(cert.fingerprint)}"
        problem = _cert_problem(unverified)
        if problem is not None:
            problems.append(f"{label}: {problem}")
        windows.append((label, cert.validity))
        certs.append(_cert_fields(cert, problem))
    valid = len(parsed) - len(problems)
    fields: dict[str, Json] = {
        "certificates": len(parsed),
        # The window in which every certificate in the file is valid (null if none).
        **window_fields(_common_window([w for _, w in windows])),
        # Counted per certificate: its cross-certificate and certification both verify.
        "signatures": signature_counts(valid=valid, invalid=len(parsed) - valid),
        "quorum": None,
        "certs": certs,
    }
    return Summary(fields, tuple(windows), problems)


def _cert_problem(unverified: UnverifiedAuthCert) -> str | None:
    try:
        unverified.verify(now=None)  # the window is judged by the CLI, with the others
    except VerificationError as exc:
        return str(exc)
    return None


def _cert_fields(cert: AuthCert, problem: str | None) -> dict[str, Json]:
    address = cert.dir_address
    return {
        "fingerprint": format_hex(cert.fingerprint),
        "signing_key_digest": format_hex(cert.signing_key_digest),
        "address": f"{address[0]}:{address[1]}" if address else None,
        "published": iso_time(cert.published),
        "expires": iso_time(cert.expires),
        "verified": problem is None,
    }


def _common_window(windows: list[ValidityWindow]) -> ValidityWindow | None:
    start = max(w.not_before for w in windows)
    end = min(w.not_after for w in windows)
    return ValidityWindow(start, end) if start <= end else None


# --- microdescriptors (dir-spec §3.3) --------------------------------------


def summarise_microdescs(body: bytes, inputs: Inputs) -> Summary:
    mds = parse_microdescs(body)
    if not mds:
        raise DocumentError("no microdescriptor in the file")
    fields: dict[str, Json] = {
        "microdescriptors": len(mds),
        **window_fields(None),
        # Unsigned: a verified microdesc consensus authenticates each one by
        # listing its SHA-256 digest in an "m" line (dir-spec §3.3).
        "signatures": None,
        "quorum": None,
        "with_ed25519_id": sum(1 for md in mds if md.ed25519_id is not None),
        "exits": sum(1 for md in mds if md.ipv4_policy.allows_some_port()),
        "digests": [format_b64(md.digest, padded=False) for md in mds],
    }
    return Summary(fields)


# --- server descriptors (dir-spec §2.1.1) ----------------------------------


def summarise_routerdescs(body: bytes, inputs: Inputs) -> Summary:
    parsed = parse_router_descriptors(body)
    if not parsed:
        raise DocumentError("no server descriptor in the file")
    routers: list[Json] = []
    windows: list[tuple[str, ValidityWindow]] = []
    problems: list[str] = []
    for unverified in parsed:
        desc = unverified.dangerously_assume_verified()  # its claims, shown either way
        label = f"descriptor of {desc.nickname} ({format_hex(desc.fingerprint)})"
        try:
            unverified.verify(now=None)  # the window is judged by the CLI
            problem = None
        except VerificationError as exc:
            problem = str(exc)
            problems.append(f"{label}: {problem}")
        windows.append((label, desc.validity))
        routers.append(_router_fields(desc, problem))
    valid = len(parsed) - len(problems)
    fields: dict[str, Json] = {
        "descriptors": len(parsed),
        **window_fields(_common_window([w for _, w in windows])),
        # Counted per descriptor: all of its signatures and certificates verify.
        "signatures": signature_counts(valid=valid, invalid=len(parsed) - valid),
        "quorum": None,
        "routers": routers,
    }
    return Summary(fields, tuple(windows), problems)


def _router_fields(desc: RouterDescriptor, problem: str | None) -> dict[str, Json]:
    info = desc.info
    return {
        "nickname": info.nickname,
        "fingerprint": format_hex(desc.fingerprint),
        "ed25519_identity": format_b64(desc.ed25519_identity, padded=False),
        "address": f"{info.address}:{info.or_port}",
        "published": iso_time(info.published),
        # What an ns consensus lists in the router's "r" line.
        "digest": format_b64(desc.digest, padded=False),
        "verified": problem is None,
    }


# --- onion-service descriptors (rend-spec-v3 §2.4-2.5) ---------------------


def summarise_hsdesc(body: bytes, inputs: Inputs) -> Summary:
    unverified = parse_hsdesc(body)
    outer = unverified.outer.dangerously_assume_verified()  # its claims, shown either way
    fields: dict[str, Json] = {
        "valid_after": None,  # descriptors carry no start time
        "valid_until": iso_time(outer.validity.not_after),
        "lifetime_minutes": outer.lifetime,
        "revision_counter": outer.revision_counter,
        "claimed_blinded_key": format_b64(outer.blinded_key, padded=False),
        "signing_key": format_b64(outer.signing_key, padded=False),
        "quorum": None,
    }
    window = ValidityWindow(0, outer.validity.not_after)
    if inputs.onion_address is None:
        fields["signatures"] = signature_counts(unknown_key=1)
        problem = "no --onion-address given (the blinded key is derived from it)"
        return Summary(fields, (("descriptor", window),), [problem])
    try:
        desc = unverified.verify(_hsdesc_keys(inputs.onion_address, unverified), now=None)
    except VerificationError as exc:
        fields["signatures"] = signature_counts(invalid=1)
        return Summary(fields, (("descriptor", window),), [str(exc)])
    fields["valid_until"] = iso_time(desc.expires)
    fields["signatures"] = signature_counts(valid=1)
    fields["client_auth"] = desc.client_auth
    fields["single_onion_service"] = desc.single_onion_service
    fields["intro_points"] = len(desc.intro_points)
    fields["pow_params"] = [f"v1 effort {p.suggested_effort}" for p in desc.inner.pow_params]
    return Summary(fields, (("descriptor", ValidityWindow(0, desc.expires)),))


def _hsdesc_keys(address: str, unverified: UnverifiedHsDesc) -> HsDescKeys:
    """The keys of ``address`` for the time period the descriptor was made for.

    The tool derives the blinded key itself (never trusting the one the
    descriptor names) for each period a descriptor whose signing certificate
    expires when this one's does can belong to: C tor's certificates outlive
    their period by up to two days, so the period of the expiry and the three
    before it.  Validity is judged separately, at ``--now``.
    """
    try:
        identity = decode_onion_address(address)
    except ProtocolError as exc:
        raise LocalError(f"bad --onion-address: {exc}") from None
    expiry = max(unverified.validity.not_after, DEFAULT_ROTATION_OFFSET_SECONDS)
    last = time_period_number(expiry)
    candidates = [HsDescKeys.for_service(identity, p) for p in range(last, max(last - 4, -1), -1)]
    claimed = unverified.outer.claimed_blinded_key
    return next((k for k in candidates if k.blinded_key == claimed), candidates[0])


# --- the table ---------------------------------------------------------------

DOC_TYPES: tuple[DocType, ...] = (
    DocType(
        "consensus",
        "network-status-version",
        summarise_consensus,
        "network-status consensus, ns or microdesc flavour (checked with --certs)",
        frozenset({"certs"}),
    ),
    DocType(
        "authcert",
        "dir-key-certificate-version",
        summarise_authcerts,
        "one or more directory-authority key certificates",
    ),
    DocType(
        "microdesc",
        "onion-key",
        summarise_microdescs,
        "one or more microdescriptors (unsigned: listed by digest in a consensus)",
    ),
    DocType(
        "server-descriptor",
        "router",
        summarise_routerdescs,
        "one or more relay server descriptors (RSA and Ed25519 signatures)",
    ),
    DocType(
        "hsdesc",
        "hs-descriptor",
        summarise_hsdesc,
        "v3 onion-service descriptor (verified and decrypted with --onion-address)",
        frozenset({"onion_address"}),
    ),
)
