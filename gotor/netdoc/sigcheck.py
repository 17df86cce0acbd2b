"""Directory signatures checked against authority certificates (dir-spec §3.4.1).

A consensus (and, later, a vote or a detached-signature document, dir-spec
§3.10) carries ``directory-signature [algorithm] identity signing-key-digest``
items: an authority's signing key signed a digest of the document.  This
module classifies each one against a set of verified
:class:`~gotor.netdoc.authcert.AuthCert` objects and applies the quorum rule:

* VALID — a certificate for that (identity, signing-key digest) pair, valid
  at ``now`` when ``now`` is given, opens the signature to the digest;
* INVALID — such a certificate exists, the signature does not match;
* UNKNOWN_KEY — no certificate for that identity, or the identity's
  certificates certify a different signing key (the caller should fetch it:
  :attr:`SignatureReport.missing_keys`);
* EXPIRED_KEY — certificates exist but none is valid at ``now``;
* UNKNOWN_ALGORITHM — dir-spec: "implementations MUST ignore
  directory-signature entries with an unrecognized Algorithm".

Quorum: valid signatures from MORE THAN HALF of the authorities the caller
configured (each authority counted once, dir-spec: "only one signature from
each authority should be counted").  Signatures by identities outside that
set are checked and reported but never counted (``trusted=False``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gotor.crypto.primitives import sha1, sha256
from gotor.errors import LocalError, VerificationError
from gotor.netdoc.authcert import AuthCert
from gotor.netdoc.checked import Tolerance

__all__ = [
    "DIGESTS",
    "DirectorySignature",
    "QuorumError",
    "SignatureCheck",
    "SignatureReport",
    "SignatureStatus",
    "check_signatures",
]

#: The signature digest algorithms dir-spec §3.4.1 defines.
DIGESTS: dict[str, Callable[[bytes], bytes]] = {"sha1": sha1, "sha256": sha256}


@dataclass(frozen=True)
class DirectorySignature:
    """A ``directory-signature`` item.

    ``algorithm`` is "sha1" when the line names none (``explicit_algorithm``
    records whether it did, so the line can be re-written as it was).
    """

    algorithm: str
    identity: bytes
    signing_key_digest: bytes
    signature: bytes
    explicit_algorithm: bool = True


class SignatureStatus(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # the key is known, the signature does not match
    UNKNOWN_KEY = "unknown key"  # no certificate for this identity + signing key
    EXPIRED_KEY = "expired key"  # certificates exist, none valid at `now`
    UNKNOWN_ALGORITHM = "unknown algorithm"  # dir-spec §3.4.1: MUST be ignored


@dataclass(frozen=True)
class SignatureCheck:
    """One signature's fate; ``trusted``: its identity is one of the configured authorities."""

    signature: DirectorySignature
    status: SignatureStatus
    trusted: bool


@dataclass(frozen=True)
class SignatureReport:
    """Every signature's check, and the quorum verdict over the configured authorities."""

    checks: tuple[SignatureCheck, ...]
    authorities: tuple[bytes, ...]

    @property
    def valid_authorities(self) -> tuple[bytes, ...]:
        """Configured authorities with at least one valid signature (each counted once)."""
        return tuple(
            sorted(
                {
                    c.signature.identity
                    for c in self.checks
                    if c.trusted and c.status is SignatureStatus.VALID
                }
            )
        )

    @property
    def quorum(self) -> bool:
        """More than half of the configured authorities signed validly (exactly half is not enough)."""
        return 2 * len(self.valid_authorities) > len(self.authorities)

    def count(self, status: SignatureStatus) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def missing_keys(self) -> tuple[tuple[bytes, bytes], ...]:
        """(identity, signing-key digest) of trusted signers whose certificate we lack."""
        wanted = (SignatureStatus.UNKNOWN_KEY, SignatureStatus.EXPIRED_KEY)
        return tuple(
            sorted(
                {
                    (c.signature.identity, c.signature.signing_key_digest)
                    for c in self.checks
                    if c.trusted and c.status in wanted
                }
            )
        )

    def __str__(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s.value}" for s in SignatureStatus if self.count(s))
        verdict = "quorum" if self.quorum else "NO quorum"
        return (
            f"{len(self.checks)} signatures ({counts or 'none'}); "
            f"{len(self.valid_authorities)} of {len(self.authorities)} authorities: {verdict}"
        )


class QuorumError(VerificationError):
    """Too few configured authorities signed validly; ``report`` says who did."""

    def __init__(self, report: SignatureReport) -> None:
        super().__init__(f"not signed by a majority of the authorities: {report}")
        self.report = report


def check_signatures(
    signatures: Iterable[DirectorySignature],
    digest_of: Callable[[str], bytes | None],
    certs: Iterable[AuthCert],
    authorities: Iterable[bytes],
    *,
    now: int | None,
    tolerance: Tolerance | int = 0,
) -> SignatureReport:
    """Classify ``signatures``; ``digest_of(algorithm)`` is the signed digest (None: unknown)."""
    trusted = _authority_set(authorities)
    keys: dict[tuple[bytes, bytes], list[AuthCert]] = {}
    for cert in certs:
        if not isinstance(cert, AuthCert):
            raise LocalError("signatures are checked against verified AuthCert objects")
        keys.setdefault((cert.fingerprint, cert.signing_key_digest), []).append(cert)
    checks = tuple(
        SignatureCheck(sig, _status(sig, digest_of, keys, now, tolerance), sig.identity in trusted)
        for sig in signatures
    )
    return SignatureReport(checks, tuple(sorted(trusted)))


def _status(
    sig: DirectorySignature,
    digest_of: Callable[[str], bytes | None],
    keys: dict[tuple[bytes, bytes], list[AuthCert]],
    now: int | None,
    tolerance: Tolerance | int,
) -> SignatureStatus:
    digest = digest_of(sig.algorithm)
    if digest is None:
        return SignatureStatus.UNKNOWN_ALGORITHM
    certs = keys.get((sig.identity, sig.signing_key_digest), [])
    if not certs:
        return SignatureStatus.UNKNOWN_KEY
    usable = [c for c in certs if now is None or c.validity.contains(now, tolerance)]
    if not usable:
        return SignatureStatus.EXPIRED_KEY
    if any(c.signing_key.verify_digest(sig.signature, digest) for c in usable):
        return SignatureStatus.VALID
    return SignatureStatus.INVALID


def _authority_set(authorities: Iterable[bytes]) -> frozenset[bytes]:
    out = frozenset(bytes(a) for a in authorities)
    if not out or any(len(a) != 20 for a in out):
        raise LocalError("authorities must be a non-empty list of 20-byte v3 identities")
    return out
