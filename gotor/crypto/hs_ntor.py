"""The hs-ntor handshake of onion services (rend-spec-v3 §3.3.2 [NTOR-WITH-EXTRA-DATA],
§4.2 [JOIN_REND], §4.2.1 key expansion; test vectors in Appendix G.1).

An ntor variant with SHA3-256/SHAKE-256 in which the client also encrypts the
INTRODUCE1 payload to the service's per-intro-point ntor key ``B``::

    client                                        service (key b, B; intro auth key)
    x, X           INTRODUCE1: H | X | C | MAC  ->
                                                  check MAC, decrypt C; y, Y
                   <- RENDEZVOUS1/2: Y | AUTH
    check AUTH                                    both: NTOR_KEY_SEED -> Df|Db|Kf|Kb

``H`` is the INTRODUCE1 body before the encrypted part (legacy key id, auth
key, extensions); the MAC covers ``H | X | C`` as C tor computes it (the spec
text says "from AUTH_KEY", the G.1 vector and both implementations use all of
``H``).  Padding the plaintext to a fixed cell size is the cell layer's job.

Secrets (``x``, ``y``) are parameters; nothing here draws randomness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gotor.crypto.hs_keys import int_8, require_len
from gotor.crypto.primitives import (
    aes_ctr,
    constant_time_eq,
    sha3_256,
    shake256,
    x25519,
    x25519_public,
)
from gotor.errors import ProtocolError, VerificationError

PROTOID = b"tor-hs-ntor-curve25519-sha3-256-1"
T_HSENC = PROTOID + b":hs_key_extract"
T_HSVERIFY = PROTOID + b":hs_verify"
T_HSMAC = PROTOID + b":hs_mac"
M_HSEXPAND = PROTOID + b":hs_key_expand"

PUBKEY_LEN = 32
MAC_LEN = 32
ENC_KEY_LEN = 32
#: RENDEZVOUS1/2 HANDSHAKE_INFO = SERVER_PK Y | AUTH_INPUT_MAC.
HANDSHAKE_INFO_LEN = PUBKEY_LEN + MAC_LEN

# §4.2.1: K = KDF(NTOR_KEY_SEED | m_hsexpand, HASH_LEN*2 + S_KEY_LEN*2) = Df | Db | Kf | Kb.
DIGEST_SEED_LEN = 32
HOP_KEY_LEN = 32
HOP_KEY_MATERIAL_LEN = 2 * DIGEST_SEED_LEN + 2 * HOP_KEY_LEN


def hs_mac(key: bytes, message: bytes) -> bytes:
    """rend-spec §0.3 MAC(key, msg) = SHA3-256(INT_8(len(key)) | key | msg)."""
    return sha3_256(int_8(len(key)) + key + message)


@dataclass(frozen=True)
class IntroKeys:
    """ENC_KEY (AES-256-CTR, zero IV) and MAC_KEY protecting one INTRODUCE1 payload."""

    # Secrets stay out of repr() so they cannot leak into logs or traces.
    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)


def intro_keys(
    shared_bx: bytes, auth_key: bytes, client_pk: bytes, service_pk: bytes, subcredential: bytes
) -> IntroKeys:
    """hs_keys = KDF(EXP(B,x) | AUTH_KEY | X | B | PROTOID | t_hsenc | m_hsexpand
    | N_hs_subcred) -> ENC_KEY | MAC_KEY."""
    material = shake256(
        shared_bx + auth_key + client_pk + service_pk + PROTOID + T_HSENC + M_HSEXPAND
        + subcredential,
        ENC_KEY_LEN + MAC_LEN,
    )
    return IntroKeys(material[:ENC_KEY_LEN], material[ENC_KEY_LEN:])


def _intro_mac(keys: IntroKeys, header: bytes, client_pk: bytes, ciphertext: bytes) -> bytes:
    return hs_mac(keys.mac_key, header + client_pk + ciphertext)


def _rend_material(
    shared_xy: bytes, shared_xb: bytes, auth_key: bytes, service_pk: bytes,
    client_pk: bytes, server_pk: bytes,
) -> tuple[bytes, bytes]:
    """(NTOR_KEY_SEED, AUTH_INPUT_MAC) of §3.3.2, identical for both sides."""
    secret = (
        shared_xy + shared_xb + auth_key + service_pk + client_pk + server_pk + PROTOID
    )
    verify = hs_mac(secret, T_HSVERIFY)
    auth_input = verify + auth_key + service_pk + server_pk + client_pk + PROTOID + b"Server"
    return hs_mac(secret, T_HSENC), hs_mac(auth_input, T_HSMAC)


# --- client -------------------------------------------------------------------------


@dataclass(frozen=True)
class HsNtorClientState:
    """What the client keeps between INTRODUCE1 and RENDEZVOUS2."""

    client_secret: bytes = field(repr=False)
    client_public: bytes
    service_ntor_key: bytes
    auth_key: bytes


def client_send_intro(
    auth_key: bytes,
    service_ntor_key: bytes,
    subcredential: bytes,
    header: bytes,
    plaintext: bytes,
    *,
    client_secret: bytes,
) -> tuple[HsNtorClientState, bytes]:
    """Encrypt an INTRODUCE1 payload; return the state and ``X | C | MAC``.

    ``auth_key`` is the intro point's auth key (KP_hs_ipt_sid), ``service_ntor_key``
    the service's ``B`` for that intro point (both from the descriptor),
    ``header`` the INTRODUCE1 body up to the encrypted part, ``plaintext`` the
    already padded payload of §3.3, ``client_secret`` the fresh X25519 secret x.
    The INTRODUCE1 body is ``header`` followed by the returned bytes.
    """
    require_len(auth_key, 32, "intro point auth key")
    require_len(service_ntor_key, PUBKEY_LEN, "service ntor key")
    require_len(subcredential, 32, "subcredential")
    client_pk = x25519_public(client_secret)
    keys = intro_keys(
        x25519(client_secret, service_ntor_key), auth_key, client_pk, service_ntor_key,
        subcredential,
    )
    ciphertext = aes_ctr(keys.enc_key, plaintext)
    mac = _intro_mac(keys, header, client_pk, ciphertext)
    state = HsNtorClientState(client_secret, client_pk, service_ntor_key, auth_key)
    return state, client_pk + ciphertext + mac


def client_receive_rend(state: HsNtorClientState, handshake_info: bytes) -> bytes:
    """Check the service's ``Y | AUTH`` (RENDEZVOUS2) and return NTOR_KEY_SEED.

    Bytes after the 64-byte HANDSHAKE_INFO are ignored, as C tor and arti do.
    ProtocolError if it is short or Y is a small-order point; VerificationError
    if AUTH does not match.
    """
    if len(handshake_info) < HANDSHAKE_INFO_LEN:
        raise ProtocolError(
            f"hs-ntor HANDSHAKE_INFO truncated: {len(handshake_info)} bytes, "
            f"need {HANDSHAKE_INFO_LEN}"
        )
    server_pk = handshake_info[:PUBKEY_LEN]
    auth = handshake_info[PUBKEY_LEN:HANDSHAKE_INFO_LEN]
    seed, expected = _rend_material(
        x25519(state.client_secret, server_pk),
        x25519(state.client_secret, state.service_ntor_key),
        state.auth_key, state.service_ntor_key, state.client_public, server_pk,
    )
    if not constant_time_eq(auth, expected):
        raise VerificationError("hs-ntor: RENDEZVOUS2 AUTH does not match the handshake")
    return seed


# --- service ------------------------------------------------------------------------


@dataclass(frozen=True)
class HsNtorServiceResult:
    """The service's outcome of a valid INTRODUCE2.

    ``plaintext``: the decrypted payload (§3.3 format, still padded);
    ``handshake_info``: ``Y | AUTH_INPUT_MAC`` for RENDEZVOUS1;
    ``key_seed``: NTOR_KEY_SEED; ``subcredential``: the one that matched.
    """

    plaintext: bytes
    handshake_info: bytes
    key_seed: bytes = field(repr=False)
    subcredential: bytes = field(repr=False)


def service_receive_intro(
    service_ntor_secret: bytes,
    auth_key: bytes,
    subcredentials: Sequence[bytes],
    header: bytes,
    encrypted: bytes,
    *,
    server_secret: bytes,
) -> HsNtorServiceResult:
    """Check and decrypt an INTRODUCE2 payload ``X | C | MAC`` and answer it.

    ``service_ntor_secret`` is b of the intro point's ntor key, ``server_secret``
    the fresh X25519 secret y.  A service tries every subcredential it may be
    reached under (current and neighbouring time periods); all are tried, even
    after a match, so timing does not reveal which one matched.
    Raises ProtocolError for a short payload or bad X, VerificationError if no
    subcredential gives a matching MAC.
    """
    require_len(auth_key, 32, "intro point auth key")
    if len(encrypted) < PUBKEY_LEN + MAC_LEN:
        raise ProtocolError(
            f"INTRODUCE2 encrypted section truncated: {len(encrypted)} bytes, "
            f"need at least {PUBKEY_LEN + MAC_LEN}"
        )
    client_pk = encrypted[:PUBKEY_LEN]
    ciphertext = encrypted[PUBKEY_LEN:-MAC_LEN]
    mac = encrypted[-MAC_LEN:]
    service_pk = x25519_public(service_ntor_secret)
    shared_xb = x25519(service_ntor_secret, client_pk)
    found: tuple[IntroKeys, bytes] | None = None
    for subcred in subcredentials:
        require_len(subcred, 32, "subcredential")
        keys = intro_keys(shared_xb, auth_key, client_pk, service_pk, subcred)
        matches = constant_time_eq(_intro_mac(keys, header, client_pk, ciphertext), mac)
        if matches and found is None:
            found = (keys, subcred)
    if found is None:
        raise VerificationError("hs-ntor: INTRODUCE2 MAC does not match any subcredential")
    keys, subcred = found
    server_pk = x25519_public(server_secret)
    seed, auth = _rend_material(
        x25519(server_secret, client_pk), shared_xb, auth_key, service_pk, client_pk, server_pk
    )
    return HsNtorServiceResult(aes_ctr(keys.enc_key, ciphertext), server_pk + auth, seed, subcred)


# --- key expansion (§4.2.1) -----------------------------------------------------------


@dataclass(frozen=True)
class HsHopKeys:
    """Keys of the virtual hop between client and service (§4.2.1, §5).

    ``raw`` = Df | Db | Kf | Kb (each 32 bytes).  Df/Db seed the running
    SHA3-256 digests, Kf/Kb are AES-256-CTR keys.  The client sends with the
    forward pair and receives with the backward pair; the service the reverse.
    """

    raw: bytes = field(repr=False)

    @property
    def forward_digest(self) -> bytes:
        return self.raw[0:DIGEST_SEED_LEN]

    @property
    def backward_digest(self) -> bytes:
        return self.raw[DIGEST_SEED_LEN : 2 * DIGEST_SEED_LEN]

    @property
    def forward_key(self) -> bytes:
        start = 2 * DIGEST_SEED_LEN
        return self.raw[start : start + HOP_KEY_LEN]

    @property
    def backward_key(self) -> bytes:
        start = 2 * DIGEST_SEED_LEN + HOP_KEY_LEN
        return self.raw[start : start + HOP_KEY_LEN]


def expand_key_seed(key_seed: bytes) -> HsHopKeys:
    """K = SHAKE-256(NTOR_KEY_SEED | m_hsexpand, 128) -> Df | Db | Kf | Kb."""
    require_len(key_seed, 32, "NTOR_KEY_SEED")
    return HsHopKeys(shake256(key_seed + M_HSEXPAND, HOP_KEY_MATERIAL_LEN))
