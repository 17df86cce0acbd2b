"""TLS in simnet: real TLS over simulated streams, the tls=False switch, deterministic
certificates and key caching, and plaintext-only tracing."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from fabric_helpers import events, run, two_hosts

import simnet.tls as simtls
from gotor.errors import ConnectionReset, LocalError, TlsError
from gotor.runtime.api import ByteStream, TlsCredentials
from simnet.link import digest
from simnet.world import World


@pytest.fixture(scope="module")
def creds() -> TlsCredentials:
    return simtls.make_credentials(World(1), "b")


def _echo_over_tls(tls: bool, creds: TlsCredentials, seed: int = 1) -> tuple[list[str], object]:
    world, _net, a, b = two_hosts(seed=seed, tls=tls, latency=0.01)

    async def handler(s: ByteStream) -> None:
        while data := await s.read():
            s.write(data.upper())

    async def main() -> tuple[bytes, bytes | None]:
        await b.runtime.listen(b.ipv4, 443, handler, tls=creds)
        s = await a.runtime.connect(b.ipv4, 443, tls=True)
        got = b""
        for word in (b"alpha", b"beta" * 5000):
            s.write(word)
            while len(got) < len(word):
                got += await s.read()
            got = b""
        await s.aclose()
        return word.upper(), s.peer_cert_der()  # type: ignore[attr-defined]

    return world.trace.lines, (run(world, a, main()), world)


@pytest.mark.parametrize("tls", [True, False])
def test_client_sees_the_servers_certificate(tls: bool, creds: TlsCredentials) -> None:
    _lines, ((last, cert), _world) = _echo_over_tls(tls, creds)
    assert last == b"BETA" * 5000
    assert cert == simtls.cert_der(creds)


def test_tls_trace_is_plaintext_and_reproducible(creds: TlsCredentials) -> None:
    lines1, (_, world) = _echo_over_tls(True, creds)
    lines2, _ = _echo_over_tls(True, creds)
    assert lines1 == lines2                      # ciphertext differs, the trace does not
    recv = events(world, "recv")                 # type: ignore[arg-type]
    sizes = sorted(int(line.split('"n":')[1].split(",")[0]) for line in recv)
    assert sum(sizes) == 2 * (5 + 20000)         # plaintext both ways, not ciphertext
    assert any(digest(b"alpha") in line for line in recv)
    assert len(events(world, "tls")) == 2        # type: ignore[arg-type]


def test_credentials_are_deterministic_and_valid_from_the_epoch(creds: TlsCredentials) -> None:
    again = simtls.make_credentials(World(1), "b")
    other = simtls.make_credentials(World(1), "c")
    assert again == creds and other != creds
    cert = x509.load_der_x509_certificate(simtls.cert_der(creds))
    epoch = datetime.datetime.fromtimestamp(World(1).epoch, tz=datetime.UTC)
    assert cert.not_valid_before_utc < epoch < cert.not_valid_after_utc
    assert cert.public_key().key_size == 2048    # type: ignore[union-attr]
    assert cert.issuer == cert.subject


def test_rsa_keys_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTOR_SIMNET_CACHE", str(tmp_path))
    monkeypatch.setattr(simtls, "_key_memo", {})
    key = simtls.seeded_rsa_key(World(99), "relay", 1024)
    files = list(tmp_path.glob("rsa-*.der"))
    assert len(files) == 1
    monkeypatch.setattr(simtls, "_key_memo", {})
    calls: list[int] = []
    monkeypatch.setattr(simtls.RsaPrivateKey, "generate",
                        classmethod(lambda cls, *a: calls.append(1)))  # must not be needed
    assert simtls.seeded_rsa_key(World(99), "relay", 1024).private_der() == key.private_der()
    assert calls == []
    files[0].write_bytes(b"corrupt")             # a bad cache entry is regenerated
    monkeypatch.undo()
    monkeypatch.setenv("GOTOR_SIMNET_CACHE", str(tmp_path))
    monkeypatch.setattr(simtls, "_key_memo", {})
    assert simtls.seeded_rsa_key(World(99), "relay", 1024).private_der() == key.private_der()


def test_handshake_with_a_non_tls_server_fails_cleanly() -> None:
    world, _net, a, b = two_hosts(latency=0.01)

    async def handler(s: ByteStream) -> None:
        s.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    async def main() -> str:
        await b.runtime.listen(b.ipv4, 80, handler)
        try:
            await a.runtime.connect(b.ipv4, 80, tls=True)
        except (TlsError, ConnectionReset) as exc:
            return type(exc).__name__
        return "connected"

    assert run(world, a, main()) == "TlsError"


def test_bad_credentials_fail_at_listen() -> None:
    world, _net, a, b = two_hosts()
    bogus = TlsCredentials(b"not a cert", b"not a key")

    async def handler(s: ByteStream) -> None:
        pass

    async def main() -> str:
        try:
            await b.runtime.listen(b.ipv4, 443, handler, tls=bogus)
        except (LocalError, TlsError) as exc:
            return type(exc).__name__
        return "listening"

    assert run(world, a, main()) == "LocalError"


def test_link_certificate_issued_by_an_identity_key() -> None:
    world = World(1)
    identity = simtls.seeded_rsa_key(world, "relay1-identity", 1024)
    creds = simtls.make_credentials(world, "relay1-link", issuer_key=identity)
    cert = x509.load_der_x509_certificate(simtls.cert_der(creds))
    assert cert.issuer != cert.subject
    identity_pub = serialization.load_der_private_key(identity.private_der(), None).public_key()
    # raises InvalidSignature unless the identity key signed the link certificate
    identity_pub.verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[union-attr,call-arg]
                        padding.PKCS1v15(), cert.signature_hash_algorithm)  # type: ignore[arg-type]
    other = simtls.seeded_rsa_key(world, "someone-else", 1024)
    other_pub = serialization.load_der_private_key(other.private_der(), None).public_key()
    with pytest.raises(InvalidSignature):
        other_pub.verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[union-attr,call-arg]
                         padding.PKCS1v15(), cert.signature_hash_algorithm)  # type: ignore[arg-type]
