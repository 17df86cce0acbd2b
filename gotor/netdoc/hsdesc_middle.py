"""The middle layer of a v3 onion-service descriptor: client authorization (rend-spec-v3 §2.5.1.2).

The plaintext of the ``superencrypted`` blob::

    desc-auth-type x25519
    desc-auth-ephemeral-key <base64 X25519 key>
    auth-client <client-id> <iv> <encrypted-cookie>     -- at least once; 16k lines
    ...
    encrypted
    -----BEGIN MESSAGE-----                              -- the second encrypted layer
    ...
    -----END MESSAGE-----

Services always write fake ``auth-client`` lines and a fresh ephemeral key,
so nothing here says whether client authorization is on (§2.5.1.4); only
trying to decrypt the inner layer tells (:mod:`gotor.netdoc.hsdesc`).
"x25519" is the only auth type defined, and C tor rejects others, as we do.

Decrypted layers are read as C tor reads them (:func:`layer_text`): up to the
first NUL (the first layer is NUL-padded to a multiple of 10000 bytes), with a
final NL added when missing — C tor omits it in this layer, and the spec says
other implementations MUST accept that.
"""

from __future__ import annotations

from dataclasses import dataclass

from gotor.crypto.hsdesc_crypto import AuthClient, strip_nul_padding
from gotor.errors import ProtocolError
from gotor.netdoc.fields import b64_arg
from gotor.netdoc.rules import Count, ObjectRule, Rule, SectionRules
from gotor.netdoc.tokenize import Item, tokenize

__all__ = ["AUTH_TYPE_X25519", "Kw", "MiddleLayer", "layer_text", "parse_middle_layer"]

AUTH_TYPE_X25519 = "x25519"


class Kw:
    """Keyword names (shared with the builder)."""

    AUTH_TYPE = "desc-auth-type"
    EPHEMERAL_KEY = "desc-auth-ephemeral-key"
    AUTH_CLIENT = "auth-client"
    ENCRYPTED = "encrypted"


RULES = SectionRules(
    "onion-service descriptor middle layer",
    [
        Rule(Kw.AUTH_TYPE, Count.ONCE, min_args=1),
        Rule(Kw.EPHEMERAL_KEY, Count.ONCE, min_args=1),
        Rule(Kw.AUTH_CLIENT, Count.AT_LEAST_ONCE, min_args=3),
        Rule(Kw.ENCRYPTED, Count.ONCE, obj=ObjectRule.REQUIRED, tags=("MESSAGE",)),
    ],
)


@dataclass(frozen=True)
class MiddleLayer:
    """The first layer's plaintext: the ephemeral key, the auth-client entries, the inner blob."""

    ephemeral_key: bytes
    auth_clients: tuple[AuthClient, ...]
    encrypted: bytes


def layer_text(plaintext: bytes) -> bytes:
    """A decrypted layer as a document: cut at the first NUL, NL-terminated."""
    text = strip_nul_padding(plaintext)
    return text if not text or text.endswith(b"\n") else text + b"\n"


def parse_middle_layer(plaintext: bytes) -> MiddleLayer:
    """Parse the decrypted ``superencrypted`` plaintext (padding and all)."""
    sec = RULES.check(tokenize(layer_text(plaintext)))
    auth_type = sec.one(Kw.AUTH_TYPE)
    if auth_type.args[0] != AUTH_TYPE_X25519:
        raise auth_type.error(f"unknown auth type {auth_type.args[0][:20]!r}")
    return MiddleLayer(
        ephemeral_key=b64_arg(sec.one(Kw.EPHEMERAL_KEY), 0, "X25519 key", 32, "optional"),
        auth_clients=tuple(_auth_client(item) for item in sec.all(Kw.AUTH_CLIENT)),
        encrypted=sec.one(Kw.ENCRYPTED).object_data(),
    )


def _auth_client(item: Item) -> AuthClient:
    try:
        return AuthClient.from_base64(*item.args[:3])
    except ProtocolError as exc:
        raise item.error(exc.reason) from None
