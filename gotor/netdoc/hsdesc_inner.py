"""The inner layer of a v3 onion-service descriptor: how to reach the service (rend-spec-v3 §2.5.2.2).

The plaintext of the ``encrypted`` blob: a header, then one section per
introduction point (at most 20, §2.5.4; zero means "alive but not reachable")::

    create2-formats 2                        -- must be first, and list ntor (2)
    intro-auth-required ed25519              -- optional
    single-onion-service                     -- optional
    flow-control 1-2 31                      -- optional: FlowCtrl versions, sendme_inc
    pow-params v1 <seed> <effort> <expiry>   -- any number, one per known scheme
    introduction-point <base64 link specifiers>
    onion-key ntor <key>                     -- the intro relay's ntor key
    auth-key                                 -- cert type 9 of KP_hs_ipt_sid
    enc-key ntor <key>                       -- KP_hss_ntor, for INTRODUCE
    enc-key-cert                             -- cert type 0x0B
    legacy-key / legacy-key-cert             -- obsolete RSA intro key, cross-certified

Both certificates of an introduction point are signed by the descriptor
signing key, which must be named in their signed-with-key extension; they
are "backwards" (the spec says so: the intro key should have certified the
signing key), so they prove little, but C tor checks their type, signer,
signature and expiry and so does :meth:`UnverifiedInnerLayer.verify`.  As in C
tor, the enc-key-cert's subject is *not* compared with the converted
``enc-key``: C tor never checks it (arti does, with sign bit 0), and stem's
sample descriptor has subjects that do not match.

Unknown ``onion-key``/``enc-key`` types and unknown ``pow-params`` schemes are
ignored (§2.5.2.2, and tor#40920 for pow-params); exactly one ``ntor`` key of
each kind is required.  A ``pow-params`` line needs at least its scheme
(arti's ``hsdesc-inner-pow-empty`` sample is malformed for that reason).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from gotor.cells.linkspec import LinkSpec, decode_link_spec_list
from gotor.crypto.certs import CertType, Ed25519Cert, RsaEd25519CrossCert
from gotor.crypto.rsa import RsaPublicKey
from gotor.errors import ProtocolError, VerificationError
from gotor.netdoc.checked import Tolerance, Unverified, ValidityWindow
from gotor.netdoc.fields import b64_arg, int_arg, parse_time
from gotor.netdoc.hsdesc_middle import layer_text
from gotor.netdoc.protover import Protocols
from gotor.netdoc.rules import Count, ObjectRule, Rule, Section, SectionRules, reserve_each_other
from gotor.netdoc.tokenize import Item, tokenize

__all__ = [
    "MAX_INTRO_POINTS",
    "NTOR_HTYPE",
    "FlowControl",
    "InnerLayer",
    "IntroPoint",
    "Kw",
    "PowParamsV1",
    "UnverifiedInnerLayer",
    "parse_inner_layer",
]

#: rend-spec §2.5.4 [NUM_INTRO_POINT]: "Maximum: 20".
MAX_INTRO_POINTS = 20
#: tor-spec §5.1: the ntor handshake's HTYPE, which create2-formats must list.
NTOR_HTYPE = 2
_FOREVER = 2**63 - 1
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class Kw:
    """Keyword names (shared with the builder)."""

    CREATE2_FORMATS = "create2-formats"
    INTRO_AUTH_REQUIRED = "intro-auth-required"
    SINGLE_ONION_SERVICE = "single-onion-service"
    FLOW_CONTROL = "flow-control"
    POW_PARAMS = "pow-params"
    INTRODUCTION_POINT = "introduction-point"
    ONION_KEY = "onion-key"
    AUTH_KEY = "auth-key"
    ENC_KEY = "enc-key"
    ENC_KEY_CERT = "enc-key-cert"
    LEGACY_KEY = "legacy-key"
    LEGACY_KEY_CERT = "legacy-key-cert"


K = Kw
_ED_CERT = ("ED25519 CERT",)
HEADER_RULES, INTRO_RULES = reserve_each_other(
    SectionRules(
        "onion-service descriptor inner layer",
        [
            Rule(K.CREATE2_FORMATS, Count.ONCE, min_args=1),
            Rule(K.INTRO_AUTH_REQUIRED, Count.AT_MOST_ONCE, min_args=1),
            Rule(K.SINGLE_ONION_SERVICE, Count.AT_MOST_ONCE),
            Rule(K.FLOW_CONTROL, Count.AT_MOST_ONCE, min_args=2),
            Rule(K.POW_PARAMS, Count.ANY, min_args=1, obj=ObjectRule.OPTIONAL),
        ],
        first=K.CREATE2_FORMATS,
    ),
    SectionRules(
        "introduction point",
        [
            Rule(K.INTRODUCTION_POINT, Count.ONCE, min_args=1, max_args=1),
            Rule(K.ONION_KEY, Count.AT_LEAST_ONCE, min_args=2),
            Rule(K.AUTH_KEY, Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=_ED_CERT),
            Rule(K.ENC_KEY, Count.AT_LEAST_ONCE, min_args=2),
            Rule(K.ENC_KEY_CERT, Count.ONCE, obj=ObjectRule.REQUIRED, tags=_ED_CERT),
            Rule(K.LEGACY_KEY, obj=ObjectRule.REQUIRED, tags=("RSA PUBLIC KEY",)),
            Rule(K.LEGACY_KEY_CERT, obj=ObjectRule.REQUIRED, tags=("CROSSCERT",)),
        ],
        first=K.INTRODUCTION_POINT,
    ),
)


@dataclass(frozen=True)
class FlowControl:
    """``flow-control``: the FlowCtrl versions the service supports and its sendme_inc."""

    versions: frozenset[int]
    sendme_inc: int


@dataclass(frozen=True)
class PowParamsV1:
    """``pow-params v1``: Equi-X puzzle seed, suggested effort, seed expiry (POSIX seconds)."""

    seed: bytes
    suggested_effort: int
    expires: int


@dataclass(frozen=True)
class IntroPoint:
    """One introduction point.

    ``link_specifiers`` are sent verbatim in EXTEND2 (unknown types kept);
    ``onion_key`` is the intro relay's ntor key, ``auth_key`` the service's
    intro authentication key (KP_hs_ipt_sid, certified by ``auth-key``) and
    ``enc_key`` the service's ntor key for INTRODUCE (KP_hss_ntor).
    """

    link_specifiers: tuple[LinkSpec, ...]
    onion_key: bytes
    auth_key: bytes
    enc_key: bytes
    legacy_key: RsaPublicKey | None = None


@dataclass(frozen=True)
class InnerLayer:
    """The second layer's contents (the builder takes one of these too)."""

    intro_points: tuple[IntroPoint, ...] = ()
    create2_formats: tuple[int, ...] = (NTOR_HTYPE,)
    intro_auth_required: tuple[str, ...] | None = None
    single_onion_service: bool = False
    flow_control: FlowControl | None = None
    pow_params: tuple[PowParamsV1, ...] = ()


@dataclass(frozen=True)
class _IntroCerts:
    auth: Ed25519Cert
    enc: Ed25519Cert
    legacy: RsaEd25519CrossCert | None


class UnverifiedInnerLayer(Unverified[InnerLayer]):
    """A parsed inner layer; :meth:`verify` checks its certificates against the signing key."""

    __slots__ = ("_certs",)

    def __init__(self, inner: InnerLayer, certs: tuple[_IntroCerts, ...]) -> None:
        expiries = [c.expiry for ic in certs for c in (ic.auth, ic.enc, ic.legacy) if c]
        super().__init__(inner, ValidityWindow(0, min(expiries, default=_FOREVER)))
        self._certs = certs

    def verify(
        self, *, signing_key: bytes, now: int | None, tolerance: Tolerance | int = 0
    ) -> InnerLayer:
        """Check every certificate is signed by ``signing_key`` (the outer layer's)."""
        for n, (point, certs) in enumerate(zip(self._content.intro_points, self._certs), 1):
            try:
                certs.auth.verify(signing_key)
                certs.enc.verify(signing_key)
                if certs.legacy is not None and point.legacy_key is not None:
                    if certs.legacy.ed25519_key != signing_key:
                        raise VerificationError("legacy-key-cert is not for the signing key")
                    certs.legacy.verify(point.legacy_key)
            except VerificationError as exc:
                raise VerificationError(f"introduction point {n}: {exc.reason}") from None
        return self._checked(now, tolerance, "introduction point certificates")


def parse_inner_layer(plaintext: bytes) -> UnverifiedInnerLayer:
    """Parse the decrypted ``encrypted`` plaintext."""
    items = tokenize(layer_text(plaintext))
    starts = [i for i, item in enumerate(items) if item.keyword == K.INTRODUCTION_POINT]
    if len(starts) > MAX_INTRO_POINTS:
        raise items[starts[MAX_INTRO_POINTS]].error(
            f"more than {MAX_INTRO_POINTS} introduction points"
        )
    header = HEADER_RULES.check(items[: starts[0]] if starts else items, line=1)
    bounds = zip(starts, [*starts[1:], len(items)])
    points = [_intro_point(INTRO_RULES.check(items[a:b])) for a, b in bounds]
    inner = InnerLayer(
        intro_points=tuple(p for p, _ in points),
        create2_formats=_create2_formats(header.one(K.CREATE2_FORMATS)),
        intro_auth_required=_maybe_args(header.maybe(K.INTRO_AUTH_REQUIRED)),
        single_onion_service=header.maybe(K.SINGLE_ONION_SERVICE) is not None,
        flow_control=_flow_control(header.maybe(K.FLOW_CONTROL)),
        pow_params=_pow_params(header.all(K.POW_PARAMS)),
    )
    return UnverifiedInnerLayer(inner, tuple(c for _, c in points))


def _maybe_args(item: Item | None) -> tuple[str, ...] | None:
    return item.args if item is not None else None


def _create2_formats(item: Item) -> tuple[int, ...]:
    formats = tuple(int_arg(item, i, "handshake type", 0, 0xFFFF) for i in range(len(item.args)))
    if NTOR_HTYPE not in formats:
        raise item.error("the service does not offer the ntor handshake (type 2)")
    return formats


def _flow_control(item: Item | None) -> FlowControl | None:
    if item is None:
        return None
    try:
        versions = Protocols.parse(f"FlowCtrl={item.args[0]}")["FlowCtrl"]
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
    return FlowControl(versions, int_arg(item, 1, "sendme_inc", 1, 255))


def _pow_params(items: list[Item]) -> tuple[PowParamsV1, ...]:
    out: list[PowParamsV1] = []
    for item in items:
        if item.args[0] != "v1":
            continue  # unknown schemes are ignored
        if out:
            raise item.error("more than one pow-params line for scheme v1")
        if item.obj is not None:
            raise item.error("pow-params v1 takes no object")
        expiry = item.arg(3, "seed expiration time")
        date, _, clock = expiry.partition("T")
        expires = parse_time(date, clock)
        if expires is None:
            raise item.error(f"bad seed expiration time {expiry[:30]!r}")
        seed = b64_arg(item, 1, "seed", 32, "optional")
        out.append(PowParamsV1(seed, int_arg(item, 2, "suggested effort", 0, 2**32 - 1), expires))
    return tuple(out)


def _intro_point(sec: Section) -> tuple[IntroPoint, _IntroCerts]:
    start = sec.one(K.INTRODUCTION_POINT)
    try:
        specs = decode_link_spec_list(_b64_any(start, 0, "link specifiers"))
    except ProtocolError as exc:
        raise start.error(exc.reason) from None
    auth = _cert(sec.one(K.AUTH_KEY), CertType.HS_IP_V_SIGNING)
    enc = _cert(sec.one(K.ENC_KEY_CERT), CertType.HS_IP_CC_SIGNING)
    legacy_key, legacy_cert = _legacy(sec)
    point = IntroPoint(
        link_specifiers=specs,
        onion_key=_ntor_key(sec.all(K.ONION_KEY), start),
        auth_key=auth.certified_key,
        enc_key=_ntor_key(sec.all(K.ENC_KEY), start),
        legacy_key=legacy_key,
    )
    return point, _IntroCerts(auth, enc, legacy_cert)


def _ntor_key(items: list[Item], start: Item) -> bytes:
    ntor = [item for item in items if item.args[0] == "ntor"]
    if len(ntor) != 1:
        raise start.error(f"needs exactly one '{items[0].keyword} ntor', has {len(ntor)}")
    return b64_arg(ntor[0], 1, "ntor key", 32, "optional")


def _cert(item: Item, cert_type: CertType) -> Ed25519Cert:
    try:
        cert = Ed25519Cert.parse(item.object_data())
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
    if cert.cert_type != cert_type:
        raise item.error(f"certificate type {cert.cert_type:#04x}, expected {cert_type:#04x}")
    if cert.signed_with is None:
        raise item.error("certificate does not name its signing key (extension 4)")
    return cert


def _legacy(sec: Section) -> tuple[RsaPublicKey | None, RsaEd25519CrossCert | None]:
    key, cert = sec.maybe(K.LEGACY_KEY), sec.maybe(K.LEGACY_KEY_CERT)
    together = f"{K.LEGACY_KEY} and {K.LEGACY_KEY_CERT} must appear together"
    if key is None:
        if cert is not None:
            raise cert.error(together)
        return None, None
    if cert is None:
        raise key.error(together)
    try:
        return RsaPublicKey.from_der(key.object_data()), RsaEd25519CrossCert.parse(
            cert.object_data()
        )
    except ProtocolError as exc:
        raise key.error(f"legacy key or its certificate: {exc.reason}") from None


def _b64_any(item: Item, index: int, what: str) -> bytes:
    """Argument ``index`` as base64 of any length (padding optional, canonical)."""
    text = item.arg(index, what)
    bare = text.rstrip("=")
    padded = bare + "=" * (-len(bare) % 4)
    if _B64.fullmatch(text) is None or len(bare) % 4 == 1 or text not in (bare, padded):
        raise item.error(f"{what}: bad base64 {text[:40]!r}")
    # Alphabet and length checked above: strict decoding of the re-padded text cannot fail.
    data = binascii.a2b_base64(padded, strict_mode=True)
    if binascii.b2a_base64(data, newline=False).decode().rstrip("=") != bare:
        raise item.error(f"{what}: non-canonical base64")
    return data
