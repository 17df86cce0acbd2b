"""The outer (plaintext) layer of a v3 onion-service descriptor (rend-spec-v3 §2.4).

::

    hs-descriptor 3
    descriptor-lifetime 180                        -- minutes, 30..720
    descriptor-signing-key-cert                    -- cert type 8: the blinded key
    -----BEGIN ED25519 CERT-----                      certifies the signing key and
    ...                                               names itself in extension 4
    revision-counter 19655750                      -- 64-bit, higher replaces lower
    superencrypted
    -----BEGIN MESSAGE-----                        -- the first encrypted layer
    ...
    signature <base64>                             -- by the signing key

This is all an HSDir can read.  :meth:`UnverifiedHsDescOuter.verify` takes the
blinded key *the caller derived* (from the onion address and time period, or
an HSDir's index) and checks that the certificate names it and is signed by
it, then the descriptor signature: Ed25519 by the certified key over
"Tor onion service descriptor sig v3" | the text from the first byte up to and
including the NL before ``signature`` (C tor desc_sig_is_valid; see
:func:`gotor.crypto.hsdesc_crypto.descriptor_signed_message`).  The key in the
certificate is reported (``claimed_blinded_key``) but never trusted.

Validity: the signing-key certificate's expiry (C tor checks it, and so do we
when ``now`` is given); descriptors carry no start time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gotor.crypto.certs import CertType, Ed25519Cert
from gotor.crypto.hsdesc_crypto import descriptor_signed_message
from gotor.crypto.primitives import ed25519_verify
from gotor.errors import DocumentError, ProtocolError, VerificationError
from gotor.netdoc.checked import Tolerance, Unverified, ValidityWindow
from gotor.netdoc.fields import b64_arg, int_arg
from gotor.netdoc.rules import Count, ObjectRule, Rule, SectionRules
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "MAX_DESCRIPTOR_SIZE",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "HsDescOuter",
    "Kw",
    "UnverifiedHsDescOuter",
    "parse_hsdesc_outer",
]

#: rend-spec §2.4: "HSDirs accept hidden service descriptors of up to 50k bytes"
#: (consensus parameter hsdir-max-desc-size; C tor's default 50000).
MAX_DESCRIPTOR_SIZE = 50_000
MIN_LIFETIME, MAX_LIFETIME = 30, 720
VERSION = 3
_UINT64_MAX = 2**64 - 1


class Kw:
    """Keyword names (shared with the builder)."""

    HS_DESCRIPTOR = "hs-descriptor"
    LIFETIME = "descriptor-lifetime"
    SIGNING_CERT = "descriptor-signing-key-cert"
    REVISION = "revision-counter"
    SUPERENCRYPTED = "superencrypted"
    SIGNATURE = "signature"


K = Kw
RULES = SectionRules(
    "onion-service descriptor",
    [
        Rule(K.HS_DESCRIPTOR, Count.ONCE, min_args=1),
        Rule(K.LIFETIME, Count.ONCE, min_args=1),
        Rule(K.SIGNING_CERT, Count.ONCE, obj=ObjectRule.REQUIRED, tags=("ED25519 CERT",)),
        Rule(K.REVISION, Count.ONCE, min_args=1),
        Rule(K.SUPERENCRYPTED, Count.ONCE, obj=ObjectRule.REQUIRED, tags=("MESSAGE",)),
        Rule(K.SIGNATURE, Count.ONCE, min_args=1, max_args=1),
    ],
    first=K.HS_DESCRIPTOR,
    last=(K.SIGNATURE,),
)


@dataclass(frozen=True)
class HsDescOuter:
    """The outer layer.  ``text`` (the exact bytes) takes no part in equality."""

    lifetime: int
    signing_key_cert: Ed25519Cert
    revision_counter: int
    superencrypted: bytes
    signature: bytes
    text: bytes = field(default=b"", compare=False, repr=False)

    @property
    def blinded_key(self) -> bytes:
        """The blinded key named by the certificate (checked once verified)."""
        return self.signing_key_cert.signed_with or b""

    @property
    def signing_key(self) -> bytes:
        """The descriptor signing key (KP_hs_desc_sign)."""
        return self.signing_key_cert.certified_key

    @property
    def validity(self) -> ValidityWindow:
        return ValidityWindow(0, self.signing_key_cert.expiry)


class UnverifiedHsDescOuter(Unverified[HsDescOuter]):
    """A parsed outer layer; :meth:`verify` checks it against a blinded key we derived."""

    __slots__ = ("_signed_text",)

    def __init__(self, outer: HsDescOuter, signed_text: bytes) -> None:
        super().__init__(outer, outer.validity)
        self._signed_text = signed_text

    @property
    def claimed_blinded_key(self) -> bytes:
        """The blinded key the certificate names (NOT verified: compare, never trust)."""
        return self._content.blinded_key

    @property
    def revision_counter(self) -> int:
        """The claimed revision counter (what an HSDir compares before replacing)."""
        return self._content.revision_counter

    def verify(
        self, *, blinded_key: bytes, now: int | None, tolerance: Tolerance | int = 0
    ) -> HsDescOuter:
        """Check the certificate against ``blinded_key``, then the descriptor signature."""
        outer = self._content
        cert = outer.signing_key_cert
        if cert.signed_with != blinded_key:
            raise VerificationError("descriptor is not signed by the expected blinded key")
        cert.verify(blinded_key)
        message = descriptor_signed_message(self._signed_text)
        if not ed25519_verify(cert.certified_key, message, outer.signature):
            raise VerificationError("bad onion-service descriptor signature")
        return self._checked(now, tolerance, "onion-service descriptor signing key certificate")


def parse_hsdesc_outer(
    data: bytes, *, max_size: int = MAX_DESCRIPTOR_SIZE
) -> UnverifiedHsDescOuter:
    """Parse one descriptor's outer layer (no annotations, at most ``max_size`` bytes)."""
    raw = bytes(data)
    if len(raw) > max_size:
        raise DocumentError(f"onion-service descriptor of {len(raw)} bytes (max {max_size})")
    items = tokenize(raw)
    sec = RULES.check(items)
    version = int_arg(sec.one(K.HS_DESCRIPTOR), 0, "version", 0, 2**32 - 1)
    if version != VERSION:
        raise sec.one(K.HS_DESCRIPTOR).error(f"unsupported version {version}")
    signature = sec.one(K.SIGNATURE)
    if raw[signature.start : signature.line_end] != f"{K.SIGNATURE} {signature.args[0]}\n".encode():
        raise signature.error("must be 'signature', one space and the signature")
    outer = HsDescOuter(
        lifetime=int_arg(sec.one(K.LIFETIME), 0, "lifetime (minutes)", MIN_LIFETIME, MAX_LIFETIME),
        signing_key_cert=_signing_cert(sec.one(K.SIGNING_CERT)),
        revision_counter=int_arg(sec.one(K.REVISION), 0, "revision counter", 0, _UINT64_MAX),
        superencrypted=sec.one(K.SUPERENCRYPTED).object_data(),
        signature=b64_arg(signature, 0, "signature", 64, "optional"),
        text=raw[items[0].start : signature.end],
    )
    return UnverifiedHsDescOuter(outer, raw[items[0].start : signature.start])


def _signing_cert(item: Item) -> Ed25519Cert:
    try:
        cert = Ed25519Cert.parse(item.object_data())
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
    if cert.cert_type != CertType.HS_BLINDED_ID_V_SIGNING:
        raise item.error(f"certificate type {cert.cert_type:#04x}, expected 0x08")
    if cert.signed_with is None:
        raise item.error("certificate does not name the blinded key (extension 4)")
    return cert
