"""v3 onion-service descriptors, the client path (rend-spec-v3 §2.4-2.5).

A descriptor has three layers: the signed outer document
(:mod:`~gotor.netdoc.hsdesc_outer`), a first encrypted layer carrying client
authorization (:mod:`~gotor.netdoc.hsdesc_middle`) and a second carrying the
introduction points (:mod:`~gotor.netdoc.hsdesc_inner`).  This module joins
them::

    keys = HsDescKeys.for_address("….onion", now=now)   # A' and N_hs_subcred, derived here
    desc = parse_hsdesc(data).verify(keys, now=now)     # -> HsDescriptor

:meth:`UnverifiedHsDesc.verify` checks the outer layer against the blinded
key *we derived* (never the one the descriptor names), decrypts the first
layer with the subcredential, decrypts the second — with the descriptor
cookie from our ``auth-client`` entry when a client secret is given — and
checks the introduction points' certificates against the outer signing key.

Client authorization outcomes, each a distinct
:class:`~gotor.errors.VerificationError`:

* no client secret, and the inner layer does not decrypt without a cookie:
  :class:`ClientAuthRequiredError`;
* a client secret whose ``auth-client`` entry is absent, and the inner layer
  needs one: :class:`ClientNotAuthorizedError`;
* a client secret is given but the service does not use client
  authorization: the descriptor decrypts normally (as arti and C tor do).

The first layer decrypting at all proves we used the right onion address and
time period (the MAC covers the subcredential), so a wrong address is a MAC
error there, before any client-authorization question arises.
"""

from __future__ import annotations

from dataclasses import dataclass

from gotor.crypto.hs_index import DEFAULT_ROTATION_OFFSET_SECONDS, time_period_number
from gotor.crypto.hs_keys import DEFAULT_PERIOD_LENGTH_MINUTES, blind_public_key, subcredential
from gotor.crypto.hsdesc_crypto import (
    decrypt_descriptor_cookie,
    decrypt_encrypted,
    decrypt_superencrypted,
)
from gotor.crypto.onion_address import decode_onion_address
from gotor.errors import LocalError, VerificationError
from gotor.netdoc.checked import Tolerance, ValidityWindow
from gotor.netdoc.hsdesc_inner import InnerLayer, IntroPoint, parse_inner_layer
from gotor.netdoc.hsdesc_middle import MiddleLayer, parse_middle_layer
from gotor.netdoc.hsdesc_outer import (
    MAX_DESCRIPTOR_SIZE,
    HsDescOuter,
    UnverifiedHsDescOuter,
    parse_hsdesc_outer,
)

__all__ = [
    "ClientAuthRequiredError",
    "ClientNotAuthorizedError",
    "HsDescKeys",
    "HsDescriptor",
    "UnverifiedHsDesc",
    "parse_hsdesc",
]


class ClientAuthRequiredError(VerificationError):
    """The service uses client authorization and we have no client key for it."""


class ClientNotAuthorizedError(VerificationError):
    """The service uses client authorization and our client key is not among its clients."""


@dataclass(frozen=True)
class HsDescKeys:
    """The blinded key A' and subcredential N_hs_subcred of one service for one time period."""

    blinded_key: bytes
    subcredential: bytes

    def __post_init__(self) -> None:
        if len(self.blinded_key) != 32 or len(self.subcredential) != 32:
            raise LocalError("blinded key and subcredential must be 32 bytes each")

    @classmethod
    def for_service(
        cls,
        identity_public: bytes,
        period_num: int,
        period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
    ) -> HsDescKeys:
        """Blind ``identity_public`` for a time period (rend-spec A.2, §2.1)."""
        blinded = blind_public_key(identity_public, period_num, period_length_minutes)
        return cls(blinded, subcredential(identity_public, blinded))

    @classmethod
    def for_address(
        cls,
        address: str,
        *,
        now: int,
        period_length_minutes: int = DEFAULT_PERIOD_LENGTH_MINUTES,
        rotation_offset: int = DEFAULT_ROTATION_OFFSET_SECONDS,
    ) -> HsDescKeys:
        """For the onion ``address`` in the time period containing ``now`` (§2.2.1).

        ProtocolError if the address is invalid.
        """
        period = time_period_number(now, period_length_minutes, rotation_offset)
        return cls.for_service(decode_onion_address(address), period, period_length_minutes)


@dataclass(frozen=True)
class HsDescriptor:
    """A verified and decrypted descriptor.

    ``expires``: the earliest expiry of its certificates (POSIX seconds);
    ``lifetime``: minutes the HSDir keeps it; ``client_auth``: whether the
    inner layer needed our descriptor cookie.
    """

    blinded_key: bytes
    signing_key: bytes
    revision_counter: int
    lifetime: int
    expires: int
    client_auth: bool
    inner: InnerLayer

    @property
    def intro_points(self) -> tuple[IntroPoint, ...]:
        return self.inner.intro_points

    @property
    def single_onion_service(self) -> bool:
        return self.inner.single_onion_service


class UnverifiedHsDesc:
    """A parsed descriptor: only the outer layer is readable until :meth:`verify`.

    ``outer`` is the outer layer's own typestate wrapper (what an HSDir verifies).
    """

    __slots__ = ("outer",)

    def __init__(self, outer: UnverifiedHsDescOuter) -> None:
        self.outer = outer

    @property
    def revision_counter(self) -> int:
        return self.outer.revision_counter

    @property
    def validity(self) -> ValidityWindow:
        return self.outer.validity

    def verify(
        self,
        keys: HsDescKeys,
        *,
        now: int | None,
        client_secret: bytes | None = None,
        tolerance: Tolerance | int = 0,
    ) -> HsDescriptor:
        """Verify the outer layer, decrypt both layers, verify the introduction points.

        ``client_secret``: our X25519 client-authorization secret for this service.
        """
        outer = self.outer.verify(blinded_key=keys.blinded_key, now=now, tolerance=tolerance)
        middle = parse_middle_layer(
            decrypt_superencrypted(
                outer.superencrypted, keys.blinded_key, keys.subcredential, outer.revision_counter
            )
        )
        plaintext, used_cookie = _decrypt_inner(outer, middle, keys, client_secret)
        unverified = parse_inner_layer(plaintext)
        inner = unverified.verify(signing_key=outer.signing_key, now=now, tolerance=tolerance)
        return HsDescriptor(
            blinded_key=keys.blinded_key,
            signing_key=outer.signing_key,
            revision_counter=outer.revision_counter,
            lifetime=outer.lifetime,
            expires=min(outer.validity.not_after, unverified.validity.not_after),
            client_auth=used_cookie,
            inner=inner,
        )


def parse_hsdesc(data: bytes, *, max_size: int = MAX_DESCRIPTOR_SIZE) -> UnverifiedHsDesc:
    """Parse a descriptor as fetched from an HSDir (DocumentError if malformed)."""
    return UnverifiedHsDesc(parse_hsdesc_outer(data, max_size=max_size))


def _decrypt_inner(
    outer: HsDescOuter, middle: MiddleLayer, keys: HsDescKeys, client_secret: bytes | None
) -> tuple[bytes, bool]:
    """The inner plaintext, and whether our descriptor cookie was needed (§2.5.1.3)."""
    cookie = None
    if client_secret is not None:
        cookie = decrypt_descriptor_cookie(
            middle.auth_clients, keys.subcredential, client_secret, middle.ephemeral_key
        )
    try:
        plaintext = decrypt_encrypted(
            middle.encrypted, keys.blinded_key, keys.subcredential, outer.revision_counter, cookie
        )
    except VerificationError:
        if cookie is not None:
            raise VerificationError(
                "inner layer does not decrypt with the cookie of our auth-client entry"
            ) from None
        if client_secret is None:
            raise ClientAuthRequiredError(
                "descriptor requires client authorization and no client key was given"
            ) from None
        raise ClientNotAuthorizedError(
            "descriptor requires client authorization and our client key is not authorized"
        ) from None
    return plaintext, cookie is not None
