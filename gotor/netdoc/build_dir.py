"""Build directory documents: authority certificates, consensuses, microdescriptors.

The other side of :mod:`~gotor.netdoc.authcert`, :mod:`~gotor.netdoc.consensus`
and :mod:`~gotor.netdoc.microdesc`, used by simnet's authorities and by tests;
the client never builds documents.  The builders take the same dataclasses
the parsers return, use the parsers' keyword tables and the shared
formatters of :mod:`~gotor.netdoc.fields` and :mod:`~gotor.netdoc.tokenize`,
and write every line the way C tor does (dir-spec §3.1, §3.3, §3.4.1), so
that ``parse(build(x))`` gives ``x`` back and, for documents C tor wrote,
``encode(parse(doc)) == doc`` byte for byte.

Two kinds of function:

* ``encode_*`` re-serialise a parsed document as it is (signatures included);
* ``build_*`` sign: :func:`build_authcert` from an identity and a signing key,
  :func:`build_consensus` from a :class:`Consensus` and the signing keys of N
  authorities (routers and authorities sorted by identity, flags sorted, as
  dir-spec §3.4.1 requires; SHA-1 signatures for the ns flavour and SHA-256
  for microdesc, as C tor signs), :func:`build_microdesc` fills in a
  microdescriptor's text and digest.

Signing is deterministic (PKCS#1 v1.5), so a seeded simnet builds identical
documents on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from gotor.crypto.primitives import sha1, sha256
from gotor.crypto.rsa import RsaPrivateKey
from gotor.errors import LocalError
from gotor.netdoc import authcert as ac
from gotor.netdoc import consensus as cs
from gotor.netdoc import microdesc as mdesc
from gotor.netdoc.fields import (
    format_b64,
    format_hex,
    format_kv_ints,
    format_or_address,
    format_time,
)
from gotor.netdoc.policy import PortPolicy
from gotor.netdoc.tokenize import format_item, format_object

__all__ = [
    "ConsensusSigner",
    "build_authcert",
    "build_consensus",
    "build_microdesc",
    "encode_authcert",
    "encode_consensus",
    "encode_consensus_body",
    "encode_microdesc",
]

_RSA_KEY = "RSA PUBLIC KEY"
_SIGNATURE = "SIGNATURE"


# --- authority certificates (dir-spec §3.1) ---------------------------------


def build_authcert(
    identity: RsaPrivateKey,
    signing: RsaPrivateKey,
    *,
    published: int,
    expires: int,
    dir_address: tuple[str, int] | None = None,
    crosscert_tag: str = "ID SIGNATURE",
) -> bytes:
    """A certificate for ``signing``, cross-certified and certified by ``identity``.

    ``crosscert_tag``: C tor writes ``ID SIGNATURE``; dir-spec §3.1 also allows ``SIGNATURE``.
    """
    cert = ac.AuthCert(
        fingerprint=identity.public.fingerprint(),
        identity_key=identity.public,
        signing_key=signing.public,
        published=published,
        expires=expires,
        dir_address=dir_address,
        crosscert=signing.sign_digest(sha1(identity.public.der)),
        certification=b"",
        crosscert_tag=crosscert_tag,
    )
    signed = _authcert_body(cert) + format_item(ac.Kw.CERTIFICATION)
    certification = identity.sign_digest(sha1(signed.encode()))
    return (signed + format_object(_SIGNATURE, certification)).encode()


def encode_authcert(cert: ac.AuthCert) -> bytes:
    """Re-serialise a certificate (with its signatures)."""
    item = format_item(ac.Kw.CERTIFICATION, (), (_SIGNATURE, cert.certification))
    return (_authcert_body(cert) + item).encode()


def _authcert_body(cert: ac.AuthCert) -> str:
    """Everything before ``dir-key-certification``, in C tor's order."""
    K = ac.Kw
    lines = [format_item(K.VERSION, ["3"])]
    if cert.dir_address is not None:
        lines.append(format_item(K.ADDRESS, [format_or_address(*cert.dir_address)]))
    lines += [
        format_item(K.FINGERPRINT, [format_hex(cert.fingerprint)]),
        format_item(K.PUBLISHED, format_time(cert.published).split()),
        format_item(K.EXPIRES, format_time(cert.expires).split()),
        format_item(K.IDENTITY_KEY, (), (_RSA_KEY, cert.identity_key.der)),
        format_item(K.SIGNING_KEY, (), (_RSA_KEY, cert.signing_key.der)),
        format_item(K.CROSSCERT, (), (cert.crosscert_tag, cert.crosscert)),
    ]
    return "".join(lines)


# --- consensus (dir-spec §3.4.1, §3.9) -------------------------------------


@dataclass(frozen=True)
class ConsensusSigner:
    """An authority's v3 identity fingerprint and the private half of its signing key."""

    identity: bytes
    signing_key: RsaPrivateKey


def build_consensus(
    consensus: cs.Consensus, signers: Sequence[ConsensusSigner], *, algorithm: str | None = None
) -> bytes:
    """Sign ``consensus`` (its ``signatures`` are ignored) by every signer.

    Authorities and routers are sorted by identity and flags sorted first, as
    dir-spec §3.4.1 requires.  ``algorithm`` defaults to the flavour's
    (sha1 for ns, sha256 for microdesc).
    """
    c = _normalized(consensus)
    alg = algorithm or c.flavor.default_algorithm
    digest_fn = {"sha1": sha1, "sha256": sha256}.get(alg)
    if digest_fn is None:
        raise LocalError(f"unknown signature algorithm {alg!r}")
    body = encode_consensus_body(c)
    digest = digest_fn((body + cs.Kw.SIGNATURE + " ").encode())
    signatures = tuple(
        cs.DirectorySignature(
            algorithm=alg,
            identity=s.identity,
            signing_key_digest=s.signing_key.public.fingerprint(),
            signature=s.signing_key.sign_digest(digest),
            explicit_algorithm=alg != "sha1",
        )
        for s in sorted(signers, key=lambda s: s.identity)
    )
    if not signatures:
        raise LocalError("a consensus needs at least one signer")
    return (body + "".join(_signature(s) for s in signatures)).encode()


def encode_consensus(consensus: cs.Consensus) -> bytes:
    """Re-serialise a parsed consensus as it is, signatures included."""
    return (
        encode_consensus_body(consensus) + "".join(_signature(s) for s in consensus.signatures)
    ).encode()


def _normalized(c: cs.Consensus) -> cs.Consensus:
    flags = {f for rs in c.routers for f in rs.flags}
    if not flags <= set(c.known_flags):
        raise LocalError(f"router flags {sorted(flags - set(c.known_flags))} not in known_flags")
    md = c.flavor is cs.Flavor.MICRODESC
    for rs in c.routers:
        if (rs.md_digest is None) == md or (rs.descriptor_digest is None) != md:
            raise LocalError(f"router {rs.nickname} lacks the digest its flavour needs")
    routers = sorted(c.routers, key=lambda rs: rs.identity)
    if any(a.identity == b.identity for a, b in pairwise(routers)):
        raise LocalError("two routers share an identity")
    return replace(
        c,
        known_flags=tuple(sorted(set(c.known_flags))),
        authorities=tuple(sorted(c.authorities, key=lambda a: a.identity)),
        routers=tuple(routers),
    )


def encode_consensus_body(c: cs.Consensus) -> str:
    """Preamble, authority sections, router entries and footer (no signatures)."""
    parts = [_preamble(c)]
    parts += [_dir_source(a) for a in c.authorities]
    parts += [_router(rs, c.flavor) for rs in c.routers]
    parts.append(format_item(cs.Kw.FOOTER))
    if c.bandwidth_weights is not None:
        parts.append(format_item(cs.Kw.WEIGHTS, format_kv_ints(dict(c.bandwidth_weights))))
    return "".join(parts)


def _preamble(c: cs.Consensus) -> str:
    K = cs.Kw
    version = ["3"] if c.flavor is cs.Flavor.NS else ["3", c.flavor.value]
    lines = [
        format_item(K.VERSION, version),
        format_item(K.VOTE_STATUS, ["consensus"]),
        format_item(K.METHOD, [str(c.consensus_method)]),
        format_item(K.VALID_AFTER, format_time(c.valid_after).split()),
        format_item(K.FRESH_UNTIL, format_time(c.fresh_until).split()),
        format_item(K.VALID_UNTIL, format_time(c.valid_until).split()),
        format_item(K.VOTING_DELAY, [str(n) for n in c.voting_delay]),
    ]
    for kw, versions in (
        (K.CLIENT_VERSIONS, c.client_versions),
        (K.SERVER_VERSIONS, c.server_versions),
    ):
        if versions is not None:
            # C tor writes an empty list as "client-versions " (with the space).
            lines.append(format_item(kw, [",".join(versions)]))
    lines += [format_item(K.PACKAGE, p.split()) for p in c.packages]
    lines.append(format_item(K.KNOWN_FLAGS, c.known_flags))
    for kw, name in cs.PROTOCOL_LINES:
        protocols = getattr(c, name)
        if protocols is not None:
            lines.append(format_item(kw, str(protocols).split()))
    if c.params:
        lines.append(format_item(K.PARAMS, format_kv_ints(dict(c.params))))
    for kw, srv in (
        (K.SRV_PREVIOUS, c.shared_rand_previous),
        (K.SRV_CURRENT, c.shared_rand_current),
    ):
        if srv is not None:
            lines.append(format_item(kw, [str(srv.n_reveals), format_b64(srv.value, padded=True)]))
    return "".join(lines)


def _dir_source(a: cs.DirSource) -> str:
    K = cs.Kw
    out = format_item(
        K.DIR_SOURCE,
        [a.nickname, format_hex(a.identity), a.address, a.ip, str(a.dir_port), str(a.or_port)],
    )
    if a.contact is not None:
        out += format_item(K.CONTACT, a.contact.split())
    if a.vote_digest is not None:
        out += format_item(K.VOTE_DIGEST, [format_hex(a.vote_digest)])
    return out


def _router(rs: cs.RouterStatus, flavor: cs.Flavor) -> str:
    K = cs.Kw
    r = [rs.nickname, format_b64(rs.identity, padded=False)]
    if flavor is cs.Flavor.NS:
        r.append(format_b64(rs.descriptor_digest or b"", padded=False))
    r += [*format_time(rs.published).split(), rs.address, str(rs.or_port), str(rs.dir_port)]
    lines = [format_item(K.R, r)]
    lines += [format_item(K.A, [format_or_address(*a)]) for a in rs.addresses]
    if flavor is cs.Flavor.MICRODESC:
        lines.append(format_item(K.M, [format_b64(rs.md_digest or b"", padded=False)]))
    lines.append(format_item(K.S, sorted(rs.flags)))
    if rs.version is not None:
        lines.append(format_item(K.V, rs.version.split()))
    if rs.protocols is not None:
        lines.append(format_item(K.PR, str(rs.protocols).split()))
    if rs.bandwidth is not None:
        lines.append(format_item(K.W, _bandwidth_args(rs.bandwidth)))
    if rs.policy is not None:
        lines.append(format_item(K.P, str(rs.policy).split()))
    return "".join(lines)


def _bandwidth_args(bw: cs.Bandwidth) -> list[str]:
    args = [f"Bandwidth={bw.bandwidth}"]
    if bw.measured is not None:
        args.append(f"Measured={bw.measured}")
    if bw.unmeasured:
        args.append("Unmeasured=1")
    return args


def _signature(sig: cs.DirectorySignature) -> str:
    args = [format_hex(sig.identity), format_hex(sig.signing_key_digest)]
    if sig.explicit_algorithm:
        args.insert(0, sig.algorithm)
    return format_item(cs.Kw.SIGNATURE, args, (_SIGNATURE, sig.signature))


# --- microdescriptors (dir-spec §3.3) ----------------------------------------


def encode_microdesc(md: mdesc.Microdesc) -> bytes:
    """The text of a microdescriptor in C tor's line order (annotations excluded).

    The ntor key is written without ``=`` (consensus method 30 and later); a
    reject-all ``p``/``p6`` is omitted, as C tor omits it.
    """
    K = mdesc.Kw
    obj = (_RSA_KEY, md.onion_key) if md.onion_key is not None else None
    lines = [
        format_item(K.ONION_KEY, (), obj),
        format_item(K.NTOR_ONION_KEY, [format_b64(md.ntor_onion_key, padded=False)]),
    ]
    lines += [format_item(K.A, [format_or_address(*a)]) for a in md.addresses]
    if md.family:
        lines.append(format_item(K.FAMILY, md.family))
    if md.family_ids is not None:
        lines.append(format_item(K.FAMILY_IDS, md.family_ids))
    for kw, policy in ((K.P, md.ipv4_policy), (K.P6, md.ipv6_policy)):
        if policy != PortPolicy.reject_all():
            lines.append(format_item(kw, str(policy).split()))
    for kind, ident in (("rsa1024", md.rsa_id), ("ed25519", md.ed25519_id)):
        if ident is not None:
            lines.append(format_item(K.ID, [kind, format_b64(ident, padded=False)]))
    if md.protocols is not None:
        lines.append(format_item(K.PR, str(md.protocols).split()))
    return "".join(lines).encode()


def build_microdesc(md: mdesc.Microdesc) -> mdesc.Microdesc:
    """``md`` with its ``text`` and ``digest`` filled in (by encoding and re-parsing it)."""
    return mdesc.parse_microdesc(encode_microdesc(md))
