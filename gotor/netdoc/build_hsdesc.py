"""Build v3 onion-service descriptors (rend-spec-v3 §2.4-2.5) for simnet services and tests.

The service side of :mod:`gotor.netdoc.hsdesc`: from the service's identity
seed, a time period, a revision counter and an
:class:`~gotor.netdoc.hsdesc_inner.InnerLayer`, produce the three layers::

    inner  = encode_inner_layer(...)                      # intro points, certs by the signing key
    middle = auth lines + encrypt(inner, A' | cookie?)    # cookie only with client authorization
    outer  = header + encrypt(pad(middle), A') + signature

Keys, as C tor derives them: the blinded key (A', and its expanded secret
for signing the type-8 certificate) from the identity seed and the period;
the subcredential from both public keys; a descriptor *signing* key given by
the caller (C tor makes a fresh one per descriptor).  Lines are written as C
tor writes them (keys base64 with padding, the middle layer without a final
NL, §2.5.1.2 compatibility note).

Randomness (salts, the ephemeral auth key, the descriptor cookie, fake
``auth-client`` entries and their shuffle) comes from ``random_bytes``, so a
seeded simnet builds the same descriptor every run.  Without client keys the
middle layer still carries 16 fake ``auth-client`` lines and a fresh
ephemeral key (§2.5.1.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gotor.cells.linkspec import encode_link_spec_list
from gotor.crypto.certs import SECONDS_PER_HOUR, CertType, Ed25519Cert
from gotor.crypto.hs_keys import (
    DEFAULT_PERIOD_LENGTH_MINUTES,
    blind_expanded_secret_key,
    expand_secret_seed,
    expanded_public_key,
    subcredential,
)
from gotor.crypto.hsdesc_crypto import (
    DESCRIPTOR_COOKIE_LEN,
    SALT_LEN,
    build_auth_clients,
    descriptor_signed_message,
    encrypt_encrypted,
    encrypt_superencrypted,
)
from gotor.crypto.primitives import (
    ed25519_public,
    ed25519_sign,
    x25519_public,
    x25519_public_to_ed25519,
)
from gotor.errors import LocalError
from gotor.netdoc import hsdesc_inner as hi
from gotor.netdoc import hsdesc_middle as hm
from gotor.netdoc import hsdesc_outer as ho
from gotor.netdoc.build_routerdesc import build_cert_expanded
from gotor.netdoc.fields import format_b64, format_time
from gotor.netdoc.protover import Protocols
from gotor.netdoc.tokenize import format_item

__all__ = ["build_hsdesc", "encode_inner_layer"]

_ED_CERT = "ED25519 CERT"
_MESSAGE = "MESSAGE"


def build_hsdesc(
    inner: hi.InnerLayer,
    *,
    identity_seed: bytes,
    signing_seed: bytes,
    period_num: int,
    revision_counter: int,
    certs_expire: int,
    random_bytes: Callable[[int], bytes],
    period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    lifetime: int = 180,
    client_public_keys: Sequence[bytes] = (),
) -> bytes:
    """A signed descriptor of the service ``identity_seed`` for period ``period_num``.

    ``certs_expire``: POSIX time at which every certificate expires (rounded
    down to the hour).  ``client_public_keys``: X25519 keys of the authorized
    clients; empty means no client authorization.
    """
    if not ho.MIN_LIFETIME <= lifetime <= ho.MAX_LIFETIME:
        raise LocalError(f"lifetime must be {ho.MIN_LIFETIME}-{ho.MAX_LIFETIME} minutes")
    identity_public = ed25519_public(identity_seed)
    blinded_secret = blind_expanded_secret_key(
        expand_secret_seed(identity_seed), period_num, period_length_minutes
    )
    blinded = expanded_public_key(blinded_secret)
    subcred = subcredential(identity_public, blinded)
    hours = certs_expire // SECONDS_PER_HOUR
    signing_cert = build_cert_expanded(
        CertType.HS_BLINDED_ID_V_SIGNING,
        ed25519_public(signing_seed),
        blinded_secret,
        hours,
        include_signed_with=True,
    )
    inner_text = encode_inner_layer(inner, signing_seed=signing_seed, certs_expire=certs_expire)
    middle_text = _middle_layer(
        inner_text, blinded, subcred, revision_counter, client_public_keys, random_bytes
    )
    superencrypted = encrypt_superencrypted(
        middle_text, blinded, subcred, revision_counter, salt=random_bytes(SALT_LEN)
    )
    signed = "".join(
        [
            format_item(ho.Kw.HS_DESCRIPTOR, [str(ho.VERSION)]),
            format_item(ho.Kw.LIFETIME, [str(lifetime)]),
            format_item(ho.Kw.SIGNING_CERT, (), (_ED_CERT, signing_cert)),
            format_item(ho.Kw.REVISION, [str(revision_counter)]),
            format_item(ho.Kw.SUPERENCRYPTED, (), (_MESSAGE, superencrypted)),
        ]
    ).encode()
    signature = ed25519_sign(signing_seed, descriptor_signed_message(signed))
    return signed + format_item(ho.Kw.SIGNATURE, [format_b64(signature, padded=False)]).encode()


def _middle_layer(
    inner_text: bytes,
    blinded: bytes,
    subcred: bytes,
    revision_counter: int,
    client_public_keys: Sequence[bytes],
    random_bytes: Callable[[int], bytes],
) -> bytes:
    """The first layer's plaintext: auth lines and the encrypted inner layer (§2.5.1.2)."""
    ephemeral_secret = random_bytes(32)
    cookie = random_bytes(DESCRIPTOR_COOKIE_LEN)
    clients = build_auth_clients(
        subcred, cookie, ephemeral_secret, list(client_public_keys), random_bytes=random_bytes
    )
    encrypted = encrypt_encrypted(
        inner_text,
        blinded,
        subcred,
        revision_counter,
        salt=random_bytes(SALT_LEN),
        descriptor_cookie=cookie if client_public_keys else None,
    )
    lines = [
        format_item(hm.Kw.AUTH_TYPE, [hm.AUTH_TYPE_X25519]),
        format_item(
            hm.Kw.EPHEMERAL_KEY, [format_b64(x25519_public(ephemeral_secret), padded=True)]
        ),
        *(client.to_line() + "\n" for client in clients),
        format_item(hm.Kw.ENCRYPTED, (), (_MESSAGE, encrypted)),
    ]
    # C tor writes this layer without its final NL (rend-spec §2.5.1.2).
    return "".join(lines).removesuffix("\n").encode()


def encode_inner_layer(inner: hi.InnerLayer, *, signing_seed: bytes, certs_expire: int) -> bytes:
    """The second layer's plaintext, with intro-point certificates by ``signing_seed``."""
    K = hi.Kw
    lines = [format_item(K.CREATE2_FORMATS, [str(f) for f in inner.create2_formats])]
    if inner.intro_auth_required is not None:
        if not inner.intro_auth_required:
            raise LocalError("intro-auth-required needs at least one type (or None)")
        lines.append(format_item(K.INTRO_AUTH_REQUIRED, inner.intro_auth_required))
    if inner.single_onion_service:
        lines.append(format_item(K.SINGLE_ONION_SERVICE))
    if inner.flow_control is not None:
        lines.append(_flow_control(inner.flow_control))
    for pow_params in inner.pow_params:
        lines.append(_pow_params(pow_params))
    if len(inner.intro_points) > hi.MAX_INTRO_POINTS:
        raise LocalError(f"at most {hi.MAX_INTRO_POINTS} introduction points")
    hours = certs_expire // SECONDS_PER_HOUR
    lines += [_intro_point(point, signing_seed, hours) for point in inner.intro_points]
    return "".join(lines).encode()


def _flow_control(fc: hi.FlowControl) -> str:
    if not fc.versions:
        raise LocalError("flow-control needs at least one FlowCtrl version")
    versions = str(Protocols.from_versions({"FlowCtrl": fc.versions})).split("=", 1)[1]
    return format_item(hi.Kw.FLOW_CONTROL, [versions, str(fc.sendme_inc)])


def _pow_params(pow_params: hi.PowParamsV1) -> str:
    expires = format_time(pow_params.expires).replace(" ", "T")  # ISO 8601 without a space
    seed = format_b64(pow_params.seed, padded=True)
    args = ["v1", seed, str(pow_params.suggested_effort), expires]
    return format_item(hi.Kw.POW_PARAMS, args)


def _intro_point(point: hi.IntroPoint, signing_seed: bytes, hours: int) -> str:
    K = hi.Kw
    if point.legacy_key is not None:
        raise LocalError("legacy-key is obsolete and never generated (rend-spec §2.5.2.2)")
    auth_cert = Ed25519Cert.build(CertType.HS_IP_V_SIGNING, point.auth_key, signing_seed, hours)
    # The enc-key-cert subject is the enc key as an Ed25519 key, sign bit 0 (as C tor writes).
    enc_subject = x25519_public_to_ed25519(point.enc_key, 0)
    enc_cert = Ed25519Cert.build(CertType.HS_IP_CC_SIGNING, enc_subject, signing_seed, hours)
    specs = format_b64(encode_link_spec_list(point.link_specifiers), padded=True)
    return "".join(
        [
            format_item(K.INTRODUCTION_POINT, [specs]),
            format_item(K.ONION_KEY, ["ntor", format_b64(point.onion_key, padded=True)]),
            format_item(K.AUTH_KEY, (), (_ED_CERT, auth_cert)),
            format_item(K.ENC_KEY, ["ntor", format_b64(point.enc_key, padded=True)]),
            format_item(K.ENC_KEY_CERT, (), (_ED_CERT, enc_cert)),
        ]
    )
