"""Server descriptors ("router descriptors", dir-spec §2.1.1): parse and verify.

A relay describes itself — addresses, keys, exit policy, capabilities — in a
descriptor signed twice:

* ``router-sig-ed25519``: its Ed25519 *signing* key signs
  SHA-256("Tor router descriptor signature v1" | text), the text running from
  the first byte of ``router`` up to and including the space after
  ``router-sig-ed25519``;
* ``router-signature``: its RSA identity key (``signing-key``) signs the SHA-1
  of the text through the NL after ``router-signature`` (dir-spec §1.3).  That
  SHA-1 is also the descriptor's *digest*, the one an ns-flavour consensus
  lists in its ``r`` lines.

and carries three certificates that tie its keys together
(:meth:`UnverifiedRouterDescriptor.verify` checks them all):

* ``identity-ed25519``: an Ed25519 certificate of type 4 (cert-spec) in which
  the master identity key, named by the signed-with-ed25519-key extension and
  repeated by ``master-key-ed25519``, certifies the signing key;
* ``ntor-onion-key-crosscert``: a type-0x0A certificate of the master key,
  signed by the ntor onion key turned into an Ed25519 key (dir-spec
  Appendix C; the item's argument is the sign bit), which proves the relay
  holds the ntor key's secret;
* ``onion-key-crosscert``: the obsolete RSA onion key's signature of
  SHA-1(RSA identity DER) | master key (52 bytes, "MUST allow additional
  data").  Proposal 350 makes ``onion-key`` optional; when it is present its
  cross-certificate must be too.

Deviations from dir-spec's multiplicities, both for real documents: ``proto``
is accepted as optional (required only since 0.4.5.1-alpha; the 2015 sample
lacks it) and ``onion-key`` as optional (proposal 350).

Validity: [published − 12 h, min(published + 5 days, certificate expiries)].
12 h is C tor's ROUTER_ALLOW_SKEW, 5 days its OLD_ROUTER_DESC_MAX_AGE.

Caches store descriptors concatenated, each optionally preceded by
``@annotations`` (``@downloaded-at``, ``@source``, ``@purpose``,
CollecTor's ``@type``); :func:`parse_router_descriptors` reads such files and
tolerates the blank lines some Tor versions add after a descriptor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gotor.crypto.certs import CertType, Ed25519Cert
from gotor.crypto.primitives import ed25519_verify, sha1, sha256, x25519_public_to_ed25519
from gotor.crypto.rsa import RsaPublicKey
from gotor.errors import DocumentError, ProtocolError, VerificationError
from gotor.netdoc.checked import Tolerance, Unverified, ValidityWindow
from gotor.netdoc.exitpolicy import ExitPolicy, PolicyRule, ip_address
from gotor.netdoc.fields import (
    INT32_MAX,
    b64_arg,
    hex_arg,
    int_arg,
    ipv4_arg,
    or_address_arg,
    time_arg,
)
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.protover import Protocols
from gotor.netdoc.rules import (
    Count,
    ObjectRule,
    Rule,
    Section,
    SectionRules,
    Split,
    split_documents,
)
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "ED25519_SIG_PREFIX",
    "RSA_KEY_BITS",
    "Kw",
    "RouterBandwidth",
    "RouterDescriptor",
    "RouterInfo",
    "UnverifiedRouterDescriptor",
    "parse_router_descriptor",
    "parse_router_descriptors",
]

#: dir-spec §2.1.1: prefixed to the text before hashing it for router-sig-ed25519.
ED25519_SIG_PREFIX = b"Tor router descriptor signature v1"
#: dir-spec §2.1.1: signing-key and onion-key "MUST be 1024 bits".
RSA_KEY_BITS = 1024
#: C tor's ROUTER_ALLOW_SKEW and OLD_ROUTER_DESC_MAX_AGE.
ALLOW_SKEW = 12 * 3600
MAX_AGE = 5 * 86400
_UINT63 = 2**63 - 1
_NICKNAME = re.compile(r"[A-Za-z0-9]{1,19}")
_FINGERPRINT_GROUP = re.compile(r"[0-9A-Fa-f]{4}")


class Kw:
    """Keyword names (shared with the builder)."""

    ROUTER = "router"
    IDENTITY = "identity-ed25519"
    MASTER_KEY = "master-key-ed25519"
    BANDWIDTH = "bandwidth"
    PLATFORM = "platform"
    PUBLISHED = "published"
    FINGERPRINT = "fingerprint"
    HIBERNATING = "hibernating"
    UPTIME = "uptime"
    ONION_KEY = "onion-key"
    ONION_CROSSCERT = "onion-key-crosscert"
    NTOR_KEY = "ntor-onion-key"
    NTOR_CROSSCERT = "ntor-onion-key-crosscert"
    SIGNING_KEY = "signing-key"
    ACCEPT = "accept"
    REJECT = "reject"
    IPV6_POLICY = "ipv6-policy"
    OVERLOAD = "overload-general"
    CONTACT = "contact"
    BRIDGE_DISTRIBUTION = "bridge-distribution-request"
    FAMILY = "family"
    CACHES_EXTRA_INFO = "caches-extra-info"
    EXTRA_INFO_DIGEST = "extra-info-digest"
    HSDIR = "hidden-service-dir"
    OR_ADDRESS = "or-address"
    TUNNELLED = "tunnelled-dir-server"
    PROTO = "proto"
    ED_SIG = "router-sig-ed25519"
    RSA_SIG = "router-signature"


K = Kw
_RSA = ("RSA PUBLIC KEY",)
_ED_CERT = ("ED25519 CERT",)
_REQ = ObjectRule.REQUIRED
RULES = SectionRules(
    "server descriptor",
    [
        Rule(K.ROUTER, Count.ONCE, min_args=5),
        Rule(K.IDENTITY, Count.ONCE, max_args=0, obj=_REQ, tags=_ED_CERT),
        Rule(K.MASTER_KEY, Count.ONCE, min_args=1),
        Rule(K.BANDWIDTH, Count.ONCE, min_args=3),
        Rule(K.PLATFORM),
        Rule(K.PUBLISHED, Count.ONCE, min_args=2),
        Rule(K.FINGERPRINT, min_args=1),
        Rule(K.HIBERNATING, min_args=1),
        Rule(K.UPTIME, min_args=1),
        Rule(K.ONION_KEY, max_args=0, obj=_REQ, tags=_RSA),
        Rule(K.ONION_CROSSCERT, max_args=0, obj=_REQ, tags=("CROSSCERT",)),
        Rule(K.NTOR_KEY, Count.ONCE, min_args=1),
        Rule(K.NTOR_CROSSCERT, Count.ONCE, min_args=1, max_args=1, obj=_REQ, tags=_ED_CERT),
        Rule(K.SIGNING_KEY, Count.ONCE, max_args=0, obj=_REQ, tags=_RSA),
        Rule(K.ACCEPT, Count.ANY, min_args=1),
        Rule(K.REJECT, Count.ANY, min_args=1),
        Rule(K.IPV6_POLICY, min_args=2),
        Rule(K.OVERLOAD, min_args=3),
        Rule(K.CONTACT),
        Rule(K.BRIDGE_DISTRIBUTION, min_args=1),
        Rule(K.FAMILY),
        Rule(K.CACHES_EXTRA_INFO, max_args=0),
        Rule(K.EXTRA_INFO_DIGEST, min_args=1),
        Rule(K.HSDIR),
        Rule(K.OR_ADDRESS, Count.ANY, min_args=1),
        Rule(K.TUNNELLED, max_args=0),
        Rule(K.PROTO),
        Rule(K.ED_SIG, Count.ONCE, min_args=1),
        Rule(K.RSA_SIG, Count.ONCE, max_args=0, obj=_REQ, tags=("SIGNATURE",)),
    ],
    first=K.ROUTER,
    last=(K.ED_SIG, K.RSA_SIG),
)


@dataclass(frozen=True)
class RouterBandwidth:
    """``bandwidth`` average, burst and observed, in bytes per second."""

    average: int
    burst: int
    observed: int


@dataclass(frozen=True)
class RouterInfo:
    """What a descriptor says about its relay, apart from keys and signatures.

    The builder takes one of these; a verified descriptor carries the same.
    ``extra_info_sha256`` is only meaningful with ``extra_info_digest``;
    ``overload_general`` is the time of the ``overload-general`` line.
    """

    nickname: str
    address: str
    or_port: int
    published: int
    bandwidth: RouterBandwidth
    dir_port: int = 0
    platform: str | None = None
    protocols: Protocols | None = None
    uptime: int | None = None
    hibernating: bool = False
    exit_policy: ExitPolicy = field(default_factory=ExitPolicy.reject_all)
    ipv6_policy: PortPolicy = field(default_factory=PortPolicy.reject_all)
    family: tuple[str, ...] = ()
    or_addresses: tuple[tuple[str, int], ...] = ()
    contact: str | None = None
    hidden_service_dir: bool = False
    tunnelled_dir_server: bool = False
    caches_extra_info: bool = False
    extra_info_digest: bytes | None = None
    extra_info_sha256: bytes | None = None
    overload_general: int | None = None
    bridge_distribution: str | None = None

    def allows_exit(self, address: str, port: int) -> bool:
        """Would the relay exit to ``address:port``?  IPv6 goes by the ``ipv6-policy`` summary.

        LocalError if ``address`` is not an IP address.
        """
        addr = ip_address(address)
        if addr.version == 6:
            return 1 <= port and self.ipv6_policy.allows_port(port)
        return self.exit_policy.allows(addr, port)


@dataclass(frozen=True)
class RouterDescriptor:
    """A verified server descriptor.

    ``digest`` (SHA-1 of the RSA-signed part, what ns consensuses list) and
    ``text`` (the exact bytes) take no part in equality; ``annotations`` are the
    ``(keyword, arguments)`` of the ``@`` lines before it.
    """

    info: RouterInfo
    rsa_identity_key: RsaPublicKey
    ed25519_identity: bytes
    identity_cert: Ed25519Cert
    ntor_onion_key: bytes
    ntor_crosscert: Ed25519Cert
    ntor_crosscert_sign_bit: int
    onion_key: RsaPublicKey | None
    onion_key_crosscert: bytes | None
    ed25519_signature: bytes
    rsa_signature: bytes
    annotations: tuple[tuple[str, str], ...] = ()
    digest: bytes = field(default=b"", compare=False, repr=False)
    text: bytes = field(default=b"", compare=False, repr=False)

    @property
    def nickname(self) -> str:
        return self.info.nickname

    @property
    def fingerprint(self) -> bytes:
        """The RSA identity: SHA-1 of the ``signing-key`` DER."""
        return self.rsa_identity_key.fingerprint()

    @property
    def signing_key(self) -> bytes:
        """The Ed25519 signing key certified by the master identity."""
        return self.identity_cert.certified_key

    @property
    def validity(self) -> ValidityWindow:
        expiry = min(self.identity_cert.expiry, self.ntor_crosscert.expiry)
        published = self.info.published
        return ValidityWindow(published - ALLOW_SKEW, min(published + MAX_AGE, expiry))


class UnverifiedRouterDescriptor(Unverified[RouterDescriptor]):
    """A parsed descriptor; :meth:`verify` checks keys, certificates and both signatures."""

    __slots__ = ("_ed_digest",)

    def __init__(self, desc: RouterDescriptor, ed_digest: bytes) -> None:
        super().__init__(desc, desc.validity)
        self._ed_digest = ed_digest

    @property
    def digest(self) -> bytes:
        """SHA-1 of the signed part (to match against a consensus before verifying)."""
        return self._content.digest

    @property
    def fingerprint(self) -> bytes:
        """The RSA identity it claims (not yet checked)."""
        return self._content.fingerprint

    def verify(self, *, now: int | None, tolerance: Tolerance | int = 0) -> RouterDescriptor:
        """Check every key binding and signature; the validity window if ``now`` is given."""
        desc = self._content
        _check_rsa_keys(desc)
        try:
            desc.identity_cert.verify(desc.ed25519_identity)
        except VerificationError as exc:
            raise VerificationError(f"identity-ed25519: {exc}") from None
        if not ed25519_verify(desc.signing_key, self._ed_digest, desc.ed25519_signature):
            raise VerificationError("bad router-sig-ed25519 signature")
        if not desc.rsa_identity_key.verify_digest(desc.rsa_signature, desc.digest):
            raise VerificationError("bad router-signature")
        _check_ntor_crosscert(desc)
        _check_onion_crosscert(desc)
        return self._checked(now, tolerance, f"server descriptor of {desc.nickname}")


def _check_rsa_keys(desc: RouterDescriptor) -> None:
    for name, key in (("signing-key", desc.rsa_identity_key), ("onion-key", desc.onion_key)):
        if key is not None and key.bits != RSA_KEY_BITS:
            raise VerificationError(f"{name} has {key.bits} bits, not {RSA_KEY_BITS}")


def _check_ntor_crosscert(desc: RouterDescriptor) -> None:
    cert = desc.ntor_crosscert
    if cert.certified_key != desc.ed25519_identity:
        raise VerificationError("ntor-onion-key-crosscert does not certify the master key")
    try:
        ntor_as_ed = x25519_public_to_ed25519(desc.ntor_onion_key, desc.ntor_crosscert_sign_bit)
        cert.verify(ntor_as_ed)
    except ProtocolError as exc:  # VerificationError included
        raise VerificationError(f"ntor-onion-key-crosscert: {exc.reason}") from None


def _check_onion_crosscert(desc: RouterDescriptor) -> None:
    if desc.onion_key is None or desc.onion_key_crosscert is None:
        return
    signed = desc.onion_key.recover(desc.onion_key_crosscert)
    expected = desc.fingerprint + desc.ed25519_identity
    # dir-spec §2.1.1: "Parties verifying this signature MUST allow additional data".
    if signed is None or not signed.startswith(expected):
        raise VerificationError("bad onion-key-crosscert")


# --- parsing -----------------------------------------------------------------


def parse_router_descriptors(data: bytes) -> list[UnverifiedRouterDescriptor]:
    """Parse a concatenation of descriptors (``@`` annotations allowed before each)."""
    raw = bytes(data)
    return [_parse_one(raw, doc) for doc in split_documents(tokenize(raw), K.ROUTER)]


def parse_router_descriptor(data: bytes) -> UnverifiedRouterDescriptor:
    """Parse exactly one descriptor."""
    descs = parse_router_descriptors(data)
    if len(descs) != 1:
        raise DocumentError(f"expected one server descriptor, found {len(descs)}")
    return descs[0]


def _parse_one(raw: bytes, doc: Split) -> UnverifiedRouterDescriptor:
    items = doc.items
    sec = RULES.check(items)
    if items[1].keyword != K.IDENTITY:
        raise items[1].error(f"{K.IDENTITY} must be the second item")
    ed_sig, rsa_sig = sec.one(K.ED_SIG), sec.one(K.RSA_SIG)
    if items[-2] is not ed_sig:
        raise ed_sig.error(f"must come immediately before {K.RSA_SIG}")
    ed_end = ed_sig.start + len(K.ED_SIG) + 1
    if raw[ed_sig.start : ed_end] != K.ED_SIG.encode() + b" ":
        raise ed_sig.error("keyword must be followed by a single space")  # it ends the signed text
    start = items[0].start
    identity_cert = _ed_cert(sec.one(K.IDENTITY), CertType.IDENTITY_V_SIGNING)
    if identity_cert.signed_with is None:
        raise sec.one(K.IDENTITY).error("certificate lacks the signed-with-ed25519-key extension")
    onion_key, onion_crosscert = _onion_key(sec)
    ntor_cc = sec.one(K.NTOR_CROSSCERT)
    rsa_key = _rsa_key(sec.one(K.SIGNING_KEY))
    desc = RouterDescriptor(
        info=_info(sec),
        rsa_identity_key=rsa_key,
        ed25519_identity=b64_arg(sec.one(K.MASTER_KEY), 0, "master key", 32, "optional"),
        identity_cert=identity_cert,
        ntor_onion_key=b64_arg(sec.one(K.NTOR_KEY), 0, "ntor key", 32, "optional"),
        ntor_crosscert=_ed_cert(ntor_cc, CertType.NTOR_CC_IDENTITY),
        ntor_crosscert_sign_bit=_bool(ntor_cc),
        onion_key=onion_key,
        onion_key_crosscert=onion_crosscert,
        ed25519_signature=b64_arg(ed_sig, 0, "Ed25519 signature", 64, "optional"),
        rsa_signature=rsa_sig.object_data(),
        annotations=tuple((a.keyword, a.args_text) for a in doc.annotations),
        digest=sha1(raw[start : rsa_sig.line_end]),
        text=raw[start : rsa_sig.end],
    )
    _check_fingerprint(sec.maybe(K.FINGERPRINT), rsa_key)
    return UnverifiedRouterDescriptor(desc, sha256(ED25519_SIG_PREFIX + raw[start:ed_end]))


def _info(sec: Section) -> RouterInfo:
    router = sec.one(K.ROUTER)
    nickname = router.args[0]
    if _NICKNAME.fullmatch(nickname) is None:
        raise router.error(f"bad nickname {nickname[:40]!r}")
    int_arg(router, 3, "SOCKSPort", 0, 65535)  # deprecated, always 0; checked, not kept
    bw = sec.one(K.BANDWIDTH)
    digest, sha256_digest = _extra_info(sec.maybe(K.EXTRA_INFO_DIGEST))
    overload = sec.maybe(K.OVERLOAD)
    return RouterInfo(
        nickname=nickname,
        address=ipv4_arg(router, 1),
        or_port=int_arg(router, 2, "ORPort", 0, 65535),
        dir_port=int_arg(router, 4, "DirPort", 0, 65535),
        published=time_arg(sec.one(K.PUBLISHED), 0, "publication time"),
        bandwidth=RouterBandwidth(
            *(int_arg(bw, i, what, 0, INT32_MAX) for i, what in enumerate(_BW_NAMES))
        ),
        platform=_text(sec.maybe(K.PLATFORM)),
        protocols=_protocols(sec.maybe(K.PROTO)),
        uptime=_maybe_int(sec.maybe(K.UPTIME), "uptime", _UINT63),
        hibernating=_maybe_bool(sec.maybe(K.HIBERNATING)),
        exit_policy=_exit_policy(sec),
        ipv6_policy=_port_policy(sec.maybe(K.IPV6_POLICY)),
        family=_args(sec.maybe(K.FAMILY)),
        or_addresses=tuple(or_address_arg(a, 0) for a in sec.all(K.OR_ADDRESS)),
        contact=_text(sec.maybe(K.CONTACT)),
        hidden_service_dir=sec.maybe(K.HSDIR) is not None,
        tunnelled_dir_server=sec.maybe(K.TUNNELLED) is not None,
        caches_extra_info=sec.maybe(K.CACHES_EXTRA_INFO) is not None,
        extra_info_digest=digest,
        extra_info_sha256=sha256_digest,
        overload_general=time_arg(overload, 1, "overload time") if overload else None,
        bridge_distribution=_first_arg(sec.maybe(K.BRIDGE_DISTRIBUTION)),
    )


_BW_NAMES = ("bandwidth-avg", "bandwidth-burst", "bandwidth-observed")


def _text(item: Item | None) -> str | None:
    return item.args_text if item is not None else None


def _args(item: Item | None) -> tuple[str, ...]:
    return item.args if item is not None else ()


def _first_arg(item: Item | None) -> str | None:
    return item.args[0] if item is not None else None


def _maybe_int(item: Item | None, what: str, hi: int) -> int | None:
    return int_arg(item, 0, what, 0, hi) if item is not None else None


def _bool(item: Item) -> int:
    if item.args[0] not in ("0", "1"):
        raise item.error(f"must be 0 or 1, not {item.args[0][:10]!r}")
    return int(item.args[0])


def _maybe_bool(item: Item | None) -> bool:
    return item is not None and _bool(item) == 1


def _protocols(item: Item | None) -> Protocols | None:
    if item is None:
        return None
    try:
        return Protocols.parse(item.args_text)
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


def _port_policy(item: Item | None) -> PortPolicy:
    # dir-spec §2.1.1: a missing ipv6-policy means "reject 1-65535".
    if item is None:
        return PortPolicy.reject_all()
    try:
        return PortPolicy.from_args(item.args)
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


def _exit_policy(sec: Section) -> ExitPolicy:
    rules = []
    for item in sec.items:
        if item.keyword in (K.ACCEPT, K.REJECT):
            try:
                rules.append(PolicyRule.parse(item.keyword, item.args[0]))
            except ProtocolError as exc:
                raise item.error(exc.reason) from None
    if not rules:
        raise DocumentError("server descriptor: no accept/reject line (dir-spec: MUST be one)")
    return ExitPolicy(tuple(rules))


def _extra_info(item: Item | None) -> tuple[bytes | None, bytes | None]:
    if item is None:
        return None, None
    digest = hex_arg(item, 0, "extra-info SHA-1 digest")
    if len(item.args) < 2:
        return digest, None
    return digest, b64_arg(item, 1, "extra-info SHA-256 digest", 32, "optional")


def _onion_key(sec: Section) -> tuple[RsaPublicKey | None, bytes | None]:
    key, crosscert = sec.maybe(K.ONION_KEY), sec.maybe(K.ONION_CROSSCERT)
    together = f"{K.ONION_KEY} and {K.ONION_CROSSCERT} must appear together"
    if key is None:
        if crosscert is not None:
            raise crosscert.error(together)
        return None, None
    if crosscert is None:
        raise key.error(together)
    return _rsa_key(key), crosscert.object_data()


def _check_fingerprint(item: Item | None, key: RsaPublicKey) -> None:
    # dir-spec §2.1.1: "MUST be rejected if the fingerprint line does not match".
    if item is None:
        return
    if len(item.args) != 10 or not all(_FINGERPRINT_GROUP.fullmatch(g) for g in item.args):
        raise item.error("fingerprint must be 10 groups of 4 hex digits")
    if bytes.fromhex("".join(item.args)) != key.fingerprint():
        raise item.error("fingerprint does not match signing-key")


def _rsa_key(item: Item) -> RsaPublicKey:
    try:
        return RsaPublicKey.from_der(item.object_data())
    except ProtocolError as exc:
        raise item.error(exc.reason) from None


def _ed_cert(item: Item, cert_type: CertType) -> Ed25519Cert:
    try:
        cert = Ed25519Cert.parse(item.object_data())
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
    if cert.cert_type != cert_type:
        raise item.error(f"certificate type {cert.cert_type:#04x}, expected {cert_type:#04x}")
    return cert
