"""Encryption of onion-service descriptor layers and client authorization
(rend-spec-v3 §2.5 [HS-DESC-ENC]).

A v3 descriptor carries two nested encrypted layers in one format (§2.5.3)::

    keys = SHAKE-256(SECRET_DATA | N_hs_subcred | INT_8(revision_counter) | SALT
                     | STRING_CONSTANT, 32 + 16 + 32)  ->  AES-256 key | IV | MAC key
    blob = SALT (16) | AES-256-CTR ciphertext | MAC (32)
    MAC  = SHA3-256(INT_8(32) | MAC key | INT_8(16) | SALT | ciphertext)

* first ("superencrypted") layer, §2.5.1.1: SECRET_DATA = blinded key,
  STRING_CONSTANT "hsdir-superencrypted-data", plaintext NUL-padded to a
  multiple of 10000 bytes;
* second ("encrypted") layer, §2.5.2.1: SECRET_DATA = blinded key | descriptor
  cookie (the cookie only with client authorization), "hsdir-encrypted-data".

Client authorization, §2.5.1.2: the first layer lists ``auth-client`` lines,
each the 16-byte descriptor cookie encrypted to one client's X25519 key, padded
with fake lines to a multiple of 16 (§2.5.1.4).  The descriptor *text* around
these values is parsed and built by gotor.netdoc; this module only sees bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gotor.crypto.hs_keys import int_8, require_len
from gotor.crypto.primitives import aes_ctr, constant_time_eq, sha3_256, shake256, x25519
from gotor.errors import LocalError, ProtocolError, VerificationError

#: rend-spec §2.4: the descriptor signing key signs this prefix | "all previous fields".
DESCRIPTOR_SIG_PREFIX = b"Tor onion service descriptor sig v3"
SUPERENCRYPTED_CONSTANT = b"hsdir-superencrypted-data"
ENCRYPTED_CONSTANT = b"hsdir-encrypted-data"

SALT_LEN = 16
MAC_LEN = 32
_KEY_LEN = 32
_IV_LEN = 16
_MAC_KEY_LEN = 32
#: §2.5.1.1: the first-layer plaintext is NUL-padded to a multiple of this.
SUPERENCRYPTED_PAD_MULTIPLE = 10000

DESCRIPTOR_COOKIE_LEN = 16
CLIENT_ID_LEN = 8
AUTH_IV_LEN = 16
_COOKIE_KEY_LEN = 32
#: §2.5.1.4: the number of auth-client lines is always a (non-zero) multiple of 16.
AUTH_CLIENT_MULTIPLE = 16


# --- the common layer format (§2.5.3) ----------------------------------------------------


def _layer_keys(
    secret_data: bytes, subcredential: bytes, revision_counter: int, salt: bytes,
    string_constant: bytes,
) -> tuple[bytes, bytes, bytes]:
    require_len(subcredential, 32, "subcredential")
    material = shake256(
        secret_data + subcredential + int_8(revision_counter) + salt + string_constant,
        _KEY_LEN + _IV_LEN + _MAC_KEY_LEN,
    )
    return material[:_KEY_LEN], material[_KEY_LEN : _KEY_LEN + _IV_LEN], material[-_MAC_KEY_LEN:]


def _layer_mac(mac_key: bytes, salt: bytes, ciphertext: bytes) -> bytes:
    return sha3_256(int_8(len(mac_key)) + mac_key + int_8(len(salt)) + salt + ciphertext)


def decrypt_layer(
    blob: bytes, secret_data: bytes, subcredential: bytes, revision_counter: int,
    string_constant: bytes,
) -> bytes:
    """Check the MAC of ``SALT | C | MAC`` and return the raw plaintext (padding kept).

    ProtocolError if the blob has no room for salt, MAC and at least one byte
    of ciphertext (C tor rejects an empty layer too); VerificationError if the
    MAC does not match (wrong keys, subcredential or revision counter, or a
    tampered blob).
    """
    if len(blob) <= SALT_LEN + MAC_LEN:
        raise ProtocolError(
            f"encrypted descriptor layer too short: {len(blob)} bytes, "
            f"need more than {SALT_LEN + MAC_LEN}"
        )
    salt, ciphertext, mac = blob[:SALT_LEN], blob[SALT_LEN:-MAC_LEN], blob[-MAC_LEN:]
    key, iv, mac_key = _layer_keys(
        secret_data, subcredential, revision_counter, salt, string_constant
    )
    if not constant_time_eq(_layer_mac(mac_key, salt, ciphertext), mac):
        raise VerificationError("descriptor layer MAC mismatch")
    return aes_ctr(key, ciphertext, iv)


def encrypt_layer(
    plaintext: bytes, secret_data: bytes, subcredential: bytes, revision_counter: int,
    string_constant: bytes, *, salt: bytes,
) -> bytes:
    """``SALT | C | MAC`` for ``plaintext`` as it is (pad first where the layer requires).

    ``salt`` is 16 fresh bytes (§2.5.3: hashed random bytes), a parameter so
    simnet can build descriptors deterministically.
    """
    require_len(salt, SALT_LEN, "salt")
    if not plaintext:
        raise LocalError("refusing to encrypt an empty descriptor layer")
    key, iv, mac_key = _layer_keys(
        secret_data, subcredential, revision_counter, salt, string_constant
    )
    ciphertext = aes_ctr(key, plaintext, iv)
    return salt + ciphertext + _layer_mac(mac_key, salt, ciphertext)


def pad_superencrypted(plaintext: bytes) -> bytes:
    """NUL-pad to the next multiple of 10000 bytes (§2.5.1.1; C tor build_plaintext_padding)."""
    padded_len = -(-len(plaintext) // SUPERENCRYPTED_PAD_MULTIPLE) * SUPERENCRYPTED_PAD_MULTIPLE
    return plaintext + bytes(padded_len - len(plaintext))


def strip_nul_padding(plaintext: bytes) -> bytes:
    """The plaintext up to its first NUL byte, as C tor's decrypt_desc_layer reads it."""
    end = plaintext.find(b"\x00")
    return plaintext if end < 0 else plaintext[:end]


def _inner_secret(blinded_key: bytes, descriptor_cookie: bytes | None) -> bytes:
    require_len(blinded_key, 32, "blinded public key")
    if descriptor_cookie is None:
        return blinded_key
    require_len(descriptor_cookie, DESCRIPTOR_COOKIE_LEN, "descriptor cookie")
    return blinded_key + descriptor_cookie


def decrypt_superencrypted(
    blob: bytes, blinded_key: bytes, subcredential: bytes, revision_counter: int
) -> bytes:
    """First-layer plaintext (raw, NUL padding kept) of a ``superencrypted`` blob."""
    require_len(blinded_key, 32, "blinded public key")
    return decrypt_layer(blob, blinded_key, subcredential, revision_counter,
                         SUPERENCRYPTED_CONSTANT)


def encrypt_superencrypted(
    plaintext: bytes, blinded_key: bytes, subcredential: bytes, revision_counter: int,
    *, salt: bytes,
) -> bytes:
    """The ``superencrypted`` blob of a first-layer plaintext (padded here)."""
    require_len(blinded_key, 32, "blinded public key")
    return encrypt_layer(pad_superencrypted(plaintext), blinded_key, subcredential,
                         revision_counter, SUPERENCRYPTED_CONSTANT, salt=salt)


def decrypt_encrypted(
    blob: bytes, blinded_key: bytes, subcredential: bytes, revision_counter: int,
    descriptor_cookie: bytes | None = None,
) -> bytes:
    """Second-layer plaintext of an ``encrypted`` blob (cookie only with client auth)."""
    return decrypt_layer(blob, _inner_secret(blinded_key, descriptor_cookie), subcredential,
                         revision_counter, ENCRYPTED_CONSTANT)


def encrypt_encrypted(
    plaintext: bytes, blinded_key: bytes, subcredential: bytes, revision_counter: int,
    *, salt: bytes, descriptor_cookie: bytes | None = None,
) -> bytes:
    """The ``encrypted`` blob of a second-layer plaintext (no padding in this layer)."""
    return encrypt_layer(plaintext, _inner_secret(blinded_key, descriptor_cookie),
                         subcredential, revision_counter, ENCRYPTED_CONSTANT, salt=salt)


def descriptor_signed_message(signed_text: bytes) -> bytes:
    """What the descriptor signing key signs: the prefix | ``signed_text``.

    ``signed_text`` is the descriptor from its first byte up to and including
    the newline that ends the line before ``signature`` (C tor
    desc_sig_is_valid); the word "signature" itself is not covered.
    """
    return DESCRIPTOR_SIG_PREFIX + signed_text


# --- client authorization (§2.5.1.2) -----------------------------------------------------


_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _b64_field(text: str | bytes, length: int, what: str) -> bytes:
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if not _BASE64.fullmatch(raw):
        raise ProtocolError(f"auth-client {what}: not base64")
    try:
        value = base64.b64decode(raw.rstrip(b"=") + b"=" * (-len(raw.rstrip(b"=")) % 4))
    except binascii.Error:
        raise ProtocolError(f"auth-client {what}: bad base64 length") from None
    if len(value) != length:
        raise ProtocolError(f"auth-client {what}: {len(value)} bytes, expected {length}")
    return value


def _b64_unpadded(value: bytes) -> str:
    # Tor writes these fields without "=" padding (stem's sample and C tor alike).
    return base64.b64encode(value).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class AuthClient:
    """One ``auth-client`` line: client-id (8), iv (16), encrypted-cookie (16)."""

    client_id: bytes
    iv: bytes
    encrypted_cookie: bytes

    @classmethod
    def from_base64(cls, client_id: str | bytes, iv: str | bytes,
                    encrypted_cookie: str | bytes) -> AuthClient:
        """From the three base64 arguments of the line (padding optional)."""
        return cls(
            _b64_field(client_id, CLIENT_ID_LEN, "client-id"),
            _b64_field(iv, AUTH_IV_LEN, "iv"),
            _b64_field(encrypted_cookie, DESCRIPTOR_COOKIE_LEN, "encrypted-cookie"),
        )

    def to_line(self) -> str:
        """``auth-client <client-id> <iv> <encrypted-cookie>`` (no newline)."""
        fields = (self.client_id, self.iv, self.encrypted_cookie)
        return "auth-client " + " ".join(_b64_unpadded(f) for f in fields)


def auth_client_keys(subcredential: bytes, secret_seed: bytes) -> tuple[bytes, bytes]:
    """KEYS = KDF(N_hs_subcred | SECRET_SEED, 40) -> (CLIENT-ID, COOKIE-KEY)."""
    require_len(subcredential, 32, "subcredential")
    keys = shake256(subcredential + secret_seed, CLIENT_ID_LEN + _COOKIE_KEY_LEN)
    return keys[:CLIENT_ID_LEN], keys[CLIENT_ID_LEN:]


def decrypt_descriptor_cookie(
    entries: Sequence[AuthClient], subcredential: bytes, client_secret: bytes,
    ephemeral_public: bytes,
) -> bytes | None:
    """The descriptor cookie for the client holding X25519 ``client_secret``.

    ``ephemeral_public`` is the ``desc-auth-ephemeral-key``.  Returns None when
    no line carries our client-id (we are not authorized for this descriptor);
    every line is compared, so timing does not tell which one is ours.
    ProtocolError if the ephemeral key has the wrong length or small order.
    """
    if len(ephemeral_public) != 32:
        raise ProtocolError(
            f"desc-auth-ephemeral-key must be 32 bytes, got {len(ephemeral_public)}"
        )
    client_id, cookie_key = auth_client_keys(
        subcredential, x25519(client_secret, ephemeral_public)
    )
    ours: AuthClient | None = None
    for entry in entries:
        if constant_time_eq(entry.client_id, client_id) and ours is None:
            ours = entry
    if ours is None:
        return None
    return aes_ctr(cookie_key, ours.encrypted_cookie, ours.iv)


def build_auth_clients(
    subcredential: bytes,
    descriptor_cookie: bytes,
    ephemeral_secret: bytes,
    client_public_keys: Sequence[bytes],
    *,
    random_bytes: Callable[[int], bytes],
) -> list[AuthClient]:
    """The service's ``auth-client`` entries, shuffled, fakes included.

    One real entry per authorized client key, then fake entries of random bytes
    up to the next non-zero multiple of 16 (so 16 fakes when client
    authorization is off), then a shuffle so positions reveal nothing
    (C tor build_service_desc_superencrypted).  ``random_bytes`` supplies
    every IV, fake field and the shuffle, in that order.
    """
    require_len(descriptor_cookie, DESCRIPTOR_COOKIE_LEN, "descriptor cookie")
    entries: list[AuthClient] = []
    for client_public in client_public_keys:
        client_id, cookie_key = auth_client_keys(
            subcredential, x25519(ephemeral_secret, client_public)
        )
        iv = random_bytes(AUTH_IV_LEN)
        entries.append(AuthClient(client_id, iv, aes_ctr(cookie_key, descriptor_cookie, iv)))
    n_fake = -len(entries) % AUTH_CLIENT_MULTIPLE if entries else AUTH_CLIENT_MULTIPLE
    for _ in range(n_fake):
        entries.append(AuthClient(random_bytes(CLIENT_ID_LEN), random_bytes(AUTH_IV_LEN),
                                  random_bytes(DESCRIPTOR_COOKIE_LEN)))
    return _shuffled(entries, random_bytes)


def _shuffled(entries: list[AuthClient], random_bytes: Callable[[int], bytes]) -> list[AuthClient]:
    # Sorting by independent random 64-bit keys is a uniform shuffle (ties, at
    # probability ~2^-58, fall back to the original order, which is harmless).
    keyed = [(random_bytes(8), index, entry) for index, entry in enumerate(entries)]
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in keyed]
