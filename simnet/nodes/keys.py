"""Key material of emulated relays and directory authorities, from the world's seed.

Every key is a function of (seed, name): Ed25519 and X25519 secrets are read
from ``world.byte_stream("relay-keys:" + name)``; RSA keys come from
:func:`simnet.tls.seeded_rsa_key` (primes drawn from a named byte stream,
memoised in memory and cached on disk under ``~/.cache/gotor-simnet/``, since
Python RSA generation costs 0.05 s at 1024 bits and seconds at 3072).

A relay (tor-spec §1.1) has a 1024-bit RSA identity, an Ed25519 identity and a
signing key it certifies (cert type 4), a curve25519 ntor onion key, and a TLS
key with a self-signed certificate (the link certificate, bound to the
identities by the CERTS cell's type-5 certificate).  A directory authority
(dir-spec §3.1) has, besides its relay keys, a long-term identity key (3072
bits, what tor-gencert makes) and a medium-term signing key (2048 bits) that
its key certificate binds.
"""

from __future__ import annotations

from gotor.crypto.primitives import ed25519_public, x25519_public
from gotor.crypto.rsa import RsaPrivateKey
from gotor.netdoc.build_dir import build_authcert
from gotor.runtime.api import TlsCredentials
from simnet.tls import cert_der, make_credentials, seeded_rsa_key
from simnet.world import World

RELAY_ID_BITS = 1024          # tor-spec §0.3: relay identity keys are RSA-1024
TLS_KEY_BITS = 2048           # as C tor (OpenSSL refuses 1024-bit server keys)
AUTHORITY_ID_BITS = 3072      # tor-gencert's default
AUTHORITY_SIGNING_BITS = 2048

_relay_memo: dict[tuple[int, str, float], RelayKeys] = {}


class RelayKeys:
    """One relay's keys (see the module docstring).  Built by :meth:`generate`."""

    def __init__(self, name: str, rsa_identity: RsaPrivateKey, ed_identity_seed: bytes,
                 ed_signing_seed: bytes, ntor_secret: bytes, tls: TlsCredentials) -> None:
        self.name = name
        self.rsa_identity = rsa_identity
        self.ed_identity_seed = ed_identity_seed
        self.ed_signing_seed = ed_signing_seed
        self.ntor_secret = ntor_secret
        self.tls = tls
        #: SHA-1 of the RSA identity key's DER: the relay's fingerprint.
        self.rsa_id = rsa_identity.public.fingerprint()
        self.ed_id = ed25519_public(ed_identity_seed)
        self.ntor_public = x25519_public(ntor_secret)
        self.tls_cert_der = cert_der(tls)

    @classmethod
    def generate(cls, world: World, name: str) -> RelayKeys:
        """The keys of relay ``name`` in ``world`` (memoised per seed, name and epoch)."""
        memo = (world.seed, name, world.epoch)
        keys = _relay_memo.get(memo)
        if keys is None:
            stream = world.byte_stream("relay-keys:" + name)
            ed_identity, ed_signing, ntor = stream(32), stream(32), stream(32)
            keys = cls(name, seeded_rsa_key(world, "relay-id:" + name, RELAY_ID_BITS),
                       ed_identity, ed_signing, ntor,
                       make_credentials(world, name, bits=TLS_KEY_BITS))
            _relay_memo[memo] = keys
        return keys

    @property
    def fingerprint(self) -> str:
        """The RSA identity as 40 upper-case hex digits (what torrc and URLs use)."""
        return self.rsa_id.hex().upper()

    def __repr__(self) -> str:
        return f"<RelayKeys {self.name} {self.fingerprint}>"


class AuthorityKeys:
    """A directory authority's v3 identity and signing keys (dir-spec §3.1)."""

    def __init__(self, name: str, identity: RsaPrivateKey, signing: RsaPrivateKey) -> None:
        self.name = name
        self.identity = identity
        self.signing = signing
        #: The authority's v3 identity: SHA-1 of its identity key (``v3ident`` in torrc).
        self.v3_ident = identity.public.fingerprint()

    @classmethod
    def generate(cls, world: World, name: str, *, identity_bits: int = AUTHORITY_ID_BITS,
                 signing_bits: int = AUTHORITY_SIGNING_BITS) -> AuthorityKeys:
        return cls(name, seeded_rsa_key(world, "authority-id:" + name, identity_bits),
                   seeded_rsa_key(world, "authority-signing:" + name, signing_bits))

    def certificate(self, *, published: int, expires: int,
                    dir_address: tuple[str, int] | None) -> bytes:
        """The key certificate binding the signing key (deterministic bytes)."""
        return build_authcert(self.identity, self.signing, published=published,
                              expires=expires, dir_address=dir_address)

    def __repr__(self) -> str:
        return f"<AuthorityKeys {self.name} {self.v3_ident.hex().upper()}>"
