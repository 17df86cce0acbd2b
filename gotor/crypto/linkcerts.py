"""The initiator's check of a responder's CERTS cell (tor-spec §4.2), and its build side.

A client that opens a channel learns the relay's identities from the CERTS cell:

* type 2: X.509, self-signed, certifying the 1024-bit RSA identity key;
* type 4: Ed25519 identity -> signing key (signed-with-key names the identity);
* type 5: Ed25519 signing key -> SHA-256 of the TLS certificate of this connection;
* type 7: RSA -> Ed25519 cross-certificate, binding the two identities.

:func:`verify_responder_certs` makes every check tor-spec §4.2 lists for "authenticate
the responder as having a given Ed25519,RSA identity key combination" and returns both
identities, or raises :class:`~gotor.errors.VerificationError` saying which check
failed (malformed certificates raise ProtocolError).  It takes the CERTS cell already
split into ``(cert_type, body)`` pairs and the DER of the TLS peer certificate, so the
same code runs under real TLS and in simnet.

:func:`build_responder_certs` is the relay side, for simnet: deterministic, given keys
and ``now``.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa
from cryptography.x509.oid import NameOID

from gotor.crypto.certs import CertKeyType, CertType, Ed25519Cert, RsaEd25519CrossCert
from gotor.crypto.primitives import ed25519_public, sha256
from gotor.crypto.rsa import RsaPrivateKey, RsaPublicKey
from gotor.errors import ProtocolError, VerificationError


class CertsCellType(IntEnum):
    """CertType values of a CERTS cell (tor-spec §4.2)."""

    RSA_LINK = 1
    RSA_ID = 2
    RSA_AUTH = 3
    ED_ID_SIGNING = 4
    ED_SIGNING_TLS = 5
    ED_SIGNING_AUTH = 6
    RSA_ED_CROSSCERT = 7


_REQUIRED = (CertsCellType.RSA_ID, CertsCellType.ED_ID_SIGNING,
             CertsCellType.ED_SIGNING_TLS, CertsCellType.RSA_ED_CROSSCERT)

RSA_ID_BITS = 1024

# X.509 validity slop, as C tor applies it to link certificates (TOR_X509_PAST_SLOP /
# TOR_X509_FUTURE_SLOP): relays' clocks drift and they backdate their certificates, so
# a strict check would refuse working relays.  Ed25519 certificates get no slop.
X509_PAST_SLOP = 2 * 86400
X509_FUTURE_SLOP = 30 * 86400


@dataclass(frozen=True)
class ResponderIdentity:
    """What a verified CERTS cell proves about the relay at the other end of the link."""

    rsa_identity: bytes  # 20-byte SHA-1 fingerprint of the RSA identity key
    ed25519_identity: bytes  # 32-byte Ed25519 identity key
    rsa_identity_key: RsaPublicKey
    ed25519_signing_key: bytes


def verify_responder_certs(
    certs: Sequence[tuple[int, bytes]], tls_cert_der: bytes, now: float
) -> ResponderIdentity:
    """Authenticate a responder's Ed25519+RSA identities from its CERTS cell at time ``now``."""
    by_type = _index_certs(certs)
    rsa_key = _check_rsa_id_cert(by_type[CertsCellType.RSA_ID], now)

    id_signing = _parse_ed_cert(by_type[CertsCellType.ED_ID_SIGNING],
                                CertType.IDENTITY_V_SIGNING)
    identity = id_signing.signed_with
    if identity is None:
        raise VerificationError("identity->signing certificate does not name the identity key")
    id_signing.verify(identity)
    id_signing.check_valid_at(now)
    signing_key = id_signing.certified_key

    signing_tls = _parse_ed_cert(by_type[CertsCellType.ED_SIGNING_TLS],
                                 CertType.SIGNING_V_TLS_CERT)
    signing_tls.verify(signing_key)
    signing_tls.check_valid_at(now)
    if signing_tls.certified_key != sha256(tls_cert_der):
        raise VerificationError("signing->TLS certificate does not certify this TLS certificate")

    cross = RsaEd25519CrossCert.parse(by_type[CertsCellType.RSA_ED_CROSSCERT])
    if cross.ed25519_key != identity:
        raise VerificationError("RSA->Ed25519 cross-certificate certifies another Ed25519 key")
    cross.verify(rsa_key)
    cross.check_valid_at(now)
    return ResponderIdentity(rsa_key.fingerprint(), identity, rsa_key, signing_key)


def _index_certs(certs: Sequence[tuple[int, bytes]]) -> dict[int, bytes]:
    """Certificates by type; a type twice, or a required type missing, is refused."""
    by_type: dict[int, bytes] = {}
    for cert_type, body in certs:
        if cert_type in by_type:
            raise VerificationError(f"CERTS cell has more than one certificate of type {cert_type}")
        by_type[cert_type] = bytes(body)
    for required in _REQUIRED:
        if required not in by_type:
            raise VerificationError(f"CERTS cell has no certificate of type {int(required)}")
    return by_type


def _parse_ed_cert(body: bytes, expected_type: CertType) -> Ed25519Cert:
    cert = Ed25519Cert.parse(body)
    if cert.cert_type != expected_type:
        raise VerificationError(
            f"certificate of type {cert.cert_type} where type {int(expected_type)} belongs"
        )
    return cert


def _check_rsa_id_cert(der: bytes, now: float) -> RsaPublicKey:
    """The RSA identity key of a valid, self-signed X.509 certificate with a 1024-bit key."""
    try:
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise ProtocolError("malformed X.509 RSA identity certificate") from None
    if not isinstance(public, _rsa.RSAPublicKey) or public.key_size != RSA_ID_BITS:
        raise VerificationError("RSA identity certificate does not hold a 1024-bit RSA key")
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise VerificationError("RSA identity certificate is not correctly self-signed") from None
    if cert.not_valid_before_utc.timestamp() > now + X509_FUTURE_SLOP:
        raise VerificationError("RSA identity certificate is not yet valid")
    if cert.not_valid_after_utc.timestamp() < now - X509_PAST_SLOP:
        raise VerificationError("RSA identity certificate has expired")
    return RsaPublicKey.from_der(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    )


# Lifetimes of what build_responder_certs makes (close to C tor's defaults).
RSA_ID_CERT_LIFETIME = 365 * 86400
SIGNING_CERT_LIFETIME = 30 * 86400
TLS_CERT_CERT_LIFETIME = 2 * 86400
CROSSCERT_LIFETIME = 180 * 86400
BACKDATE = 86400


def build_rsa_identity_cert(rsa_identity: RsaPrivateKey, now: float) -> bytes:
    """A self-signed X.509 certificate of ``rsa_identity`` (CERTS type 2), deterministic.

    Name and serial number are derived from the key, since C tor's are random too and
    simnet needs the same bytes from the same seed.
    """
    key = rsa_identity.library_key
    fingerprint = rsa_identity.public.fingerprint()
    host = base64.b32encode(fingerprint[:10]).decode("ascii").lower()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"www.{host}.net")])
    start = int(now) - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(fingerprint[:8], "big") >> 1 or 1)
        .not_valid_before(_utc(start))
        .not_valid_after(_utc(start + RSA_ID_CERT_LIFETIME))
    )
    # PKCS#1 v1.5 signatures are deterministic, so the certificate is too.
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def build_responder_certs(
    rsa_identity: RsaPrivateKey,
    ed_identity_seed: bytes,
    ed_signing_seed: bytes,
    tls_cert_der: bytes,
    now: float,
) -> list[tuple[int, bytes]]:
    """The CERTS cell a relay sends as responder: types 1, 2, 4, 5 and 7, in that order.

    Type 1 (the RSA link certificate) is the TLS certificate itself, as C tor sends it.
    """
    identity = ed25519_public(ed_identity_seed)
    signing = ed25519_public(ed_signing_seed)
    id_signing = Ed25519Cert.build(CertType.IDENTITY_V_SIGNING, signing, ed_identity_seed,
                                   _hours_after(now, SIGNING_CERT_LIFETIME))
    signing_tls = Ed25519Cert.build(CertType.SIGNING_V_TLS_CERT, sha256(tls_cert_der),
                                    ed_signing_seed, _hours_after(now, TLS_CERT_CERT_LIFETIME),
                                    key_type=CertKeyType.SHA256_OF_X509,
                                    include_signed_with=False)
    cross = RsaEd25519CrossCert.build(rsa_identity, identity,
                                      _hours_after(now, CROSSCERT_LIFETIME))
    return [
        (CertsCellType.RSA_LINK, bytes(tls_cert_der)),
        (CertsCellType.RSA_ID, build_rsa_identity_cert(rsa_identity, now)),
        (CertsCellType.ED_ID_SIGNING, id_signing),
        (CertsCellType.ED_SIGNING_TLS, signing_tls),
        (CertsCellType.RSA_ED_CROSSCERT, cross),
    ]


def _hours_after(now: float, seconds: int) -> int:
    """Expiration in whole hours since the epoch, rounded up so the lifetime is at least met."""
    return -(-(int(now) + seconds) // 3600)


def _utc(posix: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(posix, tz=datetime.UTC)
