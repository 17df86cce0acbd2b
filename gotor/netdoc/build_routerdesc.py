"""Build signed server descriptors (dir-spec §2.1.1) for simnet relays and tests.

The other side of :mod:`gotor.netdoc.routerdesc`: from a
:class:`~gotor.netdoc.routerdesc.RouterInfo` and the relay's secret keys
(:class:`RelayKeys`), write every item in C tor's order
(router_dump_router_to_string), make the three certificates and both
signatures, and return the bytes, which
:func:`~gotor.netdoc.routerdesc.parse_router_descriptor` accepts and verifies
back to the same ``RouterInfo``.

The ntor cross-certificate is signed by the ntor key itself, turned into an
Ed25519 key as dir-spec Appendix C describes: the X25519 secret, clamped, is
the Ed25519 scalar; the signing prefix is SHA-512(secret | "Derive high part
of ed25519 key from curve25519 key\\0")[:32]; the sign bit written in the
item is the top bit of the resulting public key.

Everything is deterministic (Ed25519 and PKCS#1 v1.5 signatures), so a
seeded simnet writes identical descriptors on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from gotor.crypto.certs import (
    SECONDS_PER_HOUR,
    CertExtension,
    CertKeyType,
    CertType,
    Ed25519Cert,
    ExtType,
)
from gotor.crypto.hs_keys import clamp_scalar, expanded_public_key, sign_expanded
from gotor.crypto.primitives import ed25519_public, ed25519_sign, sha1, sha256, x25519_public
from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import LocalError
from gotor.netdoc.fields import format_b64, format_hex, format_or_address, format_time
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.routerdesc import ED25519_SIG_PREFIX, RSA_KEY_BITS, Kw, RouterInfo
from gotor.netdoc.tokenize import format_item, format_object

__all__ = ["RelayKeys", "build_cert_expanded", "build_router_descriptor", "ntor_signing_key"]

#: dir-spec Appendix C: STR in the derivation of the ntor key's Ed25519 prefix.
NTOR_ED_PREFIX_STRING = b"Derive high part of ed25519 key from curve25519 key\x00"
_RSA_KEY = "RSA PUBLIC KEY"
_ED_CERT = "ED25519 CERT"


@dataclass(frozen=True)
class RelayKeys:
    """A relay's secret keys.

    ``master_seed`` and ``signing_seed`` are Ed25519 seeds (identity and
    medium-term signing key), ``ntor_secret`` an X25519 secret; ``onion_key``
    is the obsolete RSA (TAP) key, written only when given (proposal 350).
    """

    rsa_identity: RsaPrivateKey
    master_seed: bytes
    signing_seed: bytes
    ntor_secret: bytes
    onion_key: RsaPrivateKey | None = None

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes], *, tap: bool = False) -> RelayKeys:
        """Fresh keys drawn from ``random_bytes`` (RSA-1024 identity, as dir-spec requires)."""
        identity = RsaPrivateKey.generate(RSA_KEY_BITS, random_bytes)
        master, signing, ntor = random_bytes(32), random_bytes(32), random_bytes(32)
        onion = RsaPrivateKey.generate(RSA_KEY_BITS, random_bytes) if tap else None
        return cls(identity, master, signing, ntor, onion)

    @property
    def ed25519_identity(self) -> bytes:
        return ed25519_public(self.master_seed)

    @property
    def ntor_public(self) -> bytes:
        return x25519_public(self.ntor_secret)


def ntor_signing_key(ntor_secret: bytes) -> tuple[bytes, int]:
    """The expanded Ed25519 secret key of an X25519 secret, and its sign bit (dir-spec App. C)."""
    if len(ntor_secret) != 32:
        raise LocalError("X25519 secret must be 32 bytes")
    prefix = hashlib.sha512(ntor_secret + NTOR_ED_PREFIX_STRING).digest()[:32]
    expanded = clamp_scalar(ntor_secret) + prefix
    return expanded, expanded_public_key(expanded)[31] >> 7


def build_router_descriptor(info: RouterInfo, keys: RelayKeys, *, certs_expire: int) -> bytes:
    """A descriptor for ``info``, signed by ``keys``.

    ``certs_expire``: POSIX time at which both Ed25519 certificates expire
    (rounded down to the hour, the unit of cert-spec's EXPIRATION_DATE).
    """
    hours = certs_expire // SECONDS_PER_HOUR
    master = keys.ed25519_identity
    signing_public = ed25519_public(keys.signing_seed)
    identity_cert = Ed25519Cert.build(
        CertType.IDENTITY_V_SIGNING, signing_public, keys.master_seed, hours
    )
    expanded, sign_bit = ntor_signing_key(keys.ntor_secret)
    # No signed-with extension: the verifier derives the key from ntor-onion-key.
    ntor_cert = build_cert_expanded(
        CertType.NTOR_CC_IDENTITY, master, expanded, hours, include_signed_with=False
    )
    head = [
        format_item(
            Kw.ROUTER,
            [info.nickname, info.address, str(info.or_port), "0", str(info.dir_port)],
        ),
        format_item(Kw.IDENTITY, (), (_ED_CERT, identity_cert)),
        format_item(Kw.MASTER_KEY, [format_b64(master, padded=False)]),
    ]
    head += [format_item(Kw.OR_ADDRESS, [format_or_address(*a)]) for a in info.or_addresses]
    lines = head + _status(info, keys.rsa_identity.public.fingerprint())
    lines += _keys(keys, ntor_cert, sign_bit)
    body = "".join(lines + _policy(info, keys.ntor_public))
    body += Kw.ED_SIG + " "
    ed_sig = ed25519_sign(keys.signing_seed, sha256(ED25519_SIG_PREFIX + body.encode()))
    body += format_b64(ed_sig, padded=False) + "\n" + format_item(Kw.RSA_SIG)
    rsa_sig = keys.rsa_identity.sign_digest(sha1(body.encode()))
    return (body + format_object("SIGNATURE", rsa_sig)).encode()


def build_cert_expanded(
    cert_type: int,
    certified: bytes,
    expanded: bytes,
    expiration_hours: int,
    *,
    include_signed_with: bool,
) -> bytes:
    """An Ed25519 certificate signed by an *expanded* secret key.

    :meth:`Ed25519Cert.build` needs a seed; ntor-derived and blinded keys have
    none, only the expanded form (scalar | prefix) that
    :func:`~gotor.crypto.hs_keys.sign_expanded` signs with.
    """
    extensions: tuple[CertExtension, ...] = ()
    if include_signed_with:
        signer = expanded_public_key(expanded)
        extensions = (CertExtension(ExtType.SIGNED_WITH_ED25519_KEY, 0, signer),)
    unsigned = Ed25519Cert(
        cert_type, expiration_hours, CertKeyType.ED25519, certified, extensions, b"", b""
    )
    body = unsigned.encode()  # no signature yet: encode() appends the empty one
    return body + sign_expanded(expanded, body)


def _text_args(text: str, what: str) -> list[str]:
    args = text.split()
    if " ".join(args) != text:
        raise LocalError(f"{what} must be single-spaced text without leading/trailing space")
    return args


def _status(info: RouterInfo, fingerprint: bytes) -> list[str]:
    """From ``platform`` through ``caches-extra-info``, in C tor's order."""
    lines = []
    if info.platform is not None:
        lines.append(format_item(Kw.PLATFORM, _text_args(info.platform, "platform")))
    if info.protocols is not None:
        lines.append(format_item(Kw.PROTO, str(info.protocols).split()))
    lines.append(format_item(Kw.PUBLISHED, format_time(info.published).split()))
    fp = format_hex(fingerprint)
    lines.append(format_item(Kw.FINGERPRINT, [fp[i : i + 4] for i in range(0, 40, 4)]))
    if info.uptime is not None:
        lines.append(format_item(Kw.UPTIME, [str(info.uptime)]))
    bw = info.bandwidth
    lines.append(format_item(Kw.BANDWIDTH, [str(bw.average), str(bw.burst), str(bw.observed)]))
    if info.extra_info_digest is not None:
        args = [format_hex(info.extra_info_digest)]
        if info.extra_info_sha256 is not None:
            args.append(format_b64(info.extra_info_sha256, padded=False))
        lines.append(format_item(Kw.EXTRA_INFO_DIGEST, args))
    if info.caches_extra_info:
        lines.append(format_item(Kw.CACHES_EXTRA_INFO))
    return lines


def _keys(keys: RelayKeys, ntor_cert: bytes, sign_bit: int) -> list[str]:
    """The RSA keys and the cross-certificates."""
    identity = keys.rsa_identity.public
    lines = []
    if keys.onion_key is not None:
        lines.append(format_item(Kw.ONION_KEY, (), (_RSA_KEY, keys.onion_key.public.der)))
    lines.append(format_item(Kw.SIGNING_KEY, (), (_RSA_KEY, identity.der)))
    if keys.onion_key is not None:
        crosscert = keys.onion_key.sign_digest(identity.fingerprint() + keys.ed25519_identity)
        lines.append(format_item(Kw.ONION_CROSSCERT, (), ("CROSSCERT", crosscert)))
    lines.append(format_item(Kw.NTOR_CROSSCERT, [str(sign_bit)], (_ED_CERT, ntor_cert)))
    return lines


def _policy(info: RouterInfo, ntor_public: bytes) -> list[str]:
    """Hibernation, family, directory roles, contact, the ntor key, the exit policy."""
    lines = []
    if info.hibernating:
        lines.append(format_item(Kw.HIBERNATING, ["1"]))
    if info.family:
        lines.append(format_item(Kw.FAMILY, info.family))
    if info.hidden_service_dir:
        lines.append(format_item(Kw.HSDIR))
    if info.contact is not None:
        lines.append(format_item(Kw.CONTACT, _text_args(info.contact, "contact")))
    if info.bridge_distribution is not None:
        lines.append(format_item(Kw.BRIDGE_DISTRIBUTION, [info.bridge_distribution]))
    lines.append(format_item(Kw.NTOR_KEY, [format_b64(ntor_public, padded=False)]))
    lines += [format_item(rule_verb, [pattern]) for rule_verb, pattern in _rules(info)]
    if info.ipv6_policy != PortPolicy.reject_all():
        lines.append(format_item(Kw.IPV6_POLICY, str(info.ipv6_policy).split()))
    if info.overload_general is not None:
        lines.append(format_item(Kw.OVERLOAD, ["1", *format_time(info.overload_general).split()]))
    if info.tunnelled_dir_server:
        lines.append(format_item(Kw.TUNNELLED))
    return lines


def _rules(info: RouterInfo) -> list[tuple[str, str]]:
    if not info.exit_policy.rules:
        raise LocalError("an exit policy needs at least one rule (dir-spec §2.1.1)")
    return [(Kw.ACCEPT if r.accept else Kw.REJECT, r.pattern()) for r in info.exit_policy.rules]
