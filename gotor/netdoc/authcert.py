"""Directory-authority key certificates (dir-spec §3.1).

An authority keeps its long-term *identity* key offline and signs a
certificate for a medium-term *signing* key, which signs consensuses.  The
certificate is checked three ways (:meth:`UnverifiedAuthCert.verify`):

1. ``fingerprint`` is the SHA-1 of the identity key's PKCS#1 DER (the
   authority's v3 identity, as listed in ``dir-source`` lines and configured
   in clients);
2. ``dir-key-crosscert``: the signing key signed the SHA-1 of the identity
   key's DER, proving the signing key's holder agreed to be certified.  The
   object tag is ``ID SIGNATURE`` (what C tor writes, "for backward
   compatibility with broken versions of the parser") or ``SIGNATURE``
   ("Implementations MUST allow the 'ID ' portion to be omitted");
3. ``dir-key-certification``: the identity key signed the SHA-1 of the
   certificate from its first byte through the NL after
   ``dir-key-certification`` (dir-spec §1.3).

Both keys must be at least 1024 bits (dir-spec §3.1).  The validity window
is [dir-key-published, dir-key-expires].
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gotor.crypto.primitives import sha1
from gotor.crypto.rsa import RsaPublicKey
from gotor.errors import DocumentError, ProtocolError, VerificationError
from gotor.netdoc.checked import Tolerance, Unverified, ValidityWindow
from gotor.netdoc.fields import hex_arg, parse_or_address, time_arg
from gotor.netdoc.rules import Count, ObjectRule, Rule, SectionRules, split_documents
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "CROSSCERT_TAGS",
    "MIN_KEY_BITS",
    "AuthCert",
    "Kw",
    "UnverifiedAuthCert",
    "parse_authcert",
    "parse_authcerts",
]

MIN_KEY_BITS = 1024
CROSSCERT_TAGS = ("ID SIGNATURE", "SIGNATURE")
_KEY = ("RSA PUBLIC KEY",)


class Kw:
    """The certificate's keywords (shared with the builder)."""

    VERSION = "dir-key-certificate-version"
    ADDRESS = "dir-address"
    FINGERPRINT = "fingerprint"
    IDENTITY_KEY = "dir-identity-key"
    PUBLISHED = "dir-key-published"
    EXPIRES = "dir-key-expires"
    SIGNING_KEY = "dir-signing-key"
    CROSSCERT = "dir-key-crosscert"
    CERTIFICATION = "dir-key-certification"


K = Kw
RULES = SectionRules(
    "authority key certificate",
    [
        Rule(K.VERSION, Count.ONCE, min_args=1),
        Rule(K.ADDRESS, Count.AT_MOST_ONCE, min_args=1),
        Rule(K.FINGERPRINT, Count.ONCE, min_args=1),
        Rule(K.IDENTITY_KEY, Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=_KEY),
        Rule(K.PUBLISHED, Count.ONCE, min_args=2),
        Rule(K.EXPIRES, Count.ONCE, min_args=2),
        Rule(K.SIGNING_KEY, Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=_KEY),
        Rule(K.CROSSCERT, Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=CROSSCERT_TAGS),
        Rule(K.CERTIFICATION, Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=("SIGNATURE",)),
    ],
    first=K.VERSION,
    last=(K.CERTIFICATION,),
)


@dataclass(frozen=True)
class AuthCert:
    """A verified authority key certificate.

    ``text`` is the certificate's exact bytes (for caching); it takes no part in
    equality.  ``crosscert_tag`` records which object tag the cross-certificate used.
    """

    fingerprint: bytes
    identity_key: RsaPublicKey
    signing_key: RsaPublicKey
    published: int
    expires: int
    dir_address: tuple[str, int] | None
    crosscert: bytes
    certification: bytes
    crosscert_tag: str = "ID SIGNATURE"
    text: bytes = field(default=b"", compare=False, repr=False)

    @property
    def signing_key_digest(self) -> bytes:
        """SHA-1 of the signing key's DER: what ``directory-signature`` lines name."""
        return self.signing_key.fingerprint()

    @property
    def validity(self) -> ValidityWindow:
        return ValidityWindow(self.published, self.expires)


class UnverifiedAuthCert(Unverified[AuthCert]):
    """A parsed certificate; :meth:`verify` checks it and returns the :class:`AuthCert`."""

    __slots__ = ("_signed_digest",)

    def __init__(self, cert: AuthCert, signed_digest: bytes) -> None:
        super().__init__(cert, cert.validity)
        self._signed_digest = signed_digest

    @property
    def fingerprint(self) -> bytes:
        """The identity it claims (for matching against a request; not yet checked)."""
        return self._content.fingerprint

    @property
    def signing_key_digest(self) -> bytes:
        """The signing key digest it claims (not yet checked)."""
        return self._content.signing_key_digest

    def verify(self, *, now: int | None, tolerance: Tolerance | int = 0) -> AuthCert:
        """Check keys, cross-certificate and certification; the window if ``now`` is given."""
        cert = self._content
        if cert.identity_key.fingerprint() != cert.fingerprint:
            raise VerificationError("fingerprint does not match the identity key")
        for name, key in (("identity", cert.identity_key), ("signing", cert.signing_key)):
            if key.bits < MIN_KEY_BITS:
                raise VerificationError(f"{name} key has only {key.bits} bits")
        if not cert.signing_key.verify_digest(cert.crosscert, sha1(cert.identity_key.der)):
            raise VerificationError("bad dir-key-crosscert signature")
        if not cert.identity_key.verify_digest(cert.certification, self._signed_digest):
            raise VerificationError("bad dir-key-certification signature")
        return self._checked(now, tolerance, "authority certificate")


def parse_authcerts(data: bytes) -> list[UnverifiedAuthCert]:
    """Parse a concatenation of certificates (annotations allowed before each)."""
    raw = bytes(data)
    docs = split_documents(tokenize(raw), K.VERSION)
    return [_parse_one(raw, d.items) for d in docs]


def parse_authcert(data: bytes) -> UnverifiedAuthCert:
    """Parse exactly one certificate."""
    certs = parse_authcerts(data)
    if len(certs) != 1:
        raise DocumentError(f"expected one authority certificate, found {len(certs)}")
    return certs[0]


def _parse_one(raw: bytes, items: tuple[Item, ...]) -> UnverifiedAuthCert:
    sec = RULES.check(items)
    version = sec.one(K.VERSION)
    if version.args[0] != "3":
        raise version.error(f"unsupported version {version.args[0][:10]!r}")
    address = None
    if (addr := sec.maybe(K.ADDRESS)) is not None:
        address = parse_or_address(addr.args[0])
        if address is None:
            raise addr.error(f"bad address {addr.args[0][:60]!r}")
    last = sec.one(K.CERTIFICATION)
    crosscert = sec.one(K.CROSSCERT)
    cert = AuthCert(
        fingerprint=hex_arg(sec.one(K.FINGERPRINT), 0, "fingerprint"),
        identity_key=_rsa_key(sec.one(K.IDENTITY_KEY)),
        signing_key=_rsa_key(sec.one(K.SIGNING_KEY)),
        published=time_arg(sec.one(K.PUBLISHED), 0, "publication time"),
        expires=time_arg(sec.one(K.EXPIRES), 0, "expiry time"),
        dir_address=address,
        crosscert=crosscert.object_data(),
        certification=last.object_data(),
        crosscert_tag=crosscert.obj.tag if crosscert.obj else "",
        text=raw[items[0].start : last.end],
    )
    if cert.expires < cert.published:
        raise sec.one(K.EXPIRES).error("expires before it is published")
    # dir-spec §1.3: the signed part ends with the NL after the keyword line.
    return UnverifiedAuthCert(cert, sha1(raw[items[0].start : last.line_end]))


def _rsa_key(item: Item) -> RsaPublicKey:
    try:
        return RsaPublicKey.from_der(item.object_data())
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
