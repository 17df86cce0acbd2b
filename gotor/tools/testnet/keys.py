"""Key material of a private network, made by C tor's own tools.

* Directory authorities: ``tor-gencert --create-identity-key`` writes the v3
  identity key, a signing key and the key certificate (dir-spec §3.1) into
  ``DATADIR/keys``, where tor looks for ``authority_signing_key`` and
  ``authority_certificate``; the v3 identity ("v3ident" of a DirAuthority
  line) is the certificate's ``fingerprint``.
* Every relay (authorities too): ``tor --list-fingerprint`` creates the RSA
  identity and Ed25519 keys in the data directory and writes the
  ``fingerprint`` and ``fingerprint-ed25519`` files that we read back.

Each run takes a fraction of a second of CPU; they all run in parallel (one
subprocess per run, all started before any is awaited).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gotor.tools.testnet.errors import TestnetError

__all__ = ["AuthorityKeys", "RelayKeys", "generate_keys"]

#: How long one key-generating run may take.
KEYGEN_TIMEOUT = 60.0
#: Months the authority certificates are valid (tor-gencert -m).
CERT_MONTHS = 12

_FP = re.compile(r"^\S+ ([0-9A-F]{40})$")
_V3 = re.compile(r"^fingerprint ([0-9A-F]{40})$", re.MULTILINE)


@dataclass(frozen=True)
class RelayKeys:
    fingerprint: str  # RSA identity, 40 upper-case hex digits
    ed25519: str  # Ed25519 identity, unpadded base64 as tor prints it


@dataclass(frozen=True)
class AuthorityKeys:
    v3ident: str  # the key certificate's fingerprint


@dataclass(frozen=True)
class KeyRequest:
    """Keys to make in ``data_dir``; ``dir_address`` set: an authority's, too."""

    data_dir: Path
    dir_address: str | None = None  # 127.0.0.1:DIRPORT, written into the certificate


def _gencert_command(req: KeyRequest, tor_gencert: str) -> list[str]:
    keys = req.data_dir / "keys"
    return [tor_gencert, "--create-identity-key", "--passphrase-fd", "0",
            "-i", str(keys / "authority_identity_key"), "-s", str(keys / "authority_signing_key"),
            "-c", str(keys / "authority_certificate"), "-m", str(CERT_MONTHS),
            "-a", str(req.dir_address)]


def _fingerprint_command(req: KeyRequest, tor: str) -> list[str]:
    # --orport makes tor act as a relay (so it creates relay keys); -f /dev/null keeps
    # the machine's own torrc out of it.
    return [tor, "--list-fingerprint", "--orport", "1", "--datadirectory", str(req.data_dir),
            "-f", "/dev/null", "--ignore-missing-torrc", "--quiet"]


def _wait(proc: subprocess.Popen[bytes], what: str) -> None:
    try:
        _, err = proc.communicate(timeout=KEYGEN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TestnetError(f"{what} did not finish within {KEYGEN_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise TestnetError(f"{what} failed (exit {proc.returncode}): {' / '.join(tail)}")


def _start(command: list[str], stdin: bytes | None = None) -> subprocess.Popen[bytes]:
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:
        raise TestnetError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    if proc.stdin is not None:
        # A blank line: the passphrase of the authority identity key (tor-gencert reads
        # it from fd 0); the key only signs the certificate, here, once.
        # If it exits without reading, the pipe breaks; its exit status says why.
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(stdin or b"")
            proc.stdin.flush()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        proc.stdin = None  # so that communicate() does not touch it again
    return proc


def _read_relay_keys(data_dir: Path) -> RelayKeys:
    try:
        fp_line = (data_dir / "fingerprint").read_text().strip()
        ed_line = (data_dir / "fingerprint-ed25519").read_text().strip()
    except OSError as exc:
        raise TestnetError(f"tor wrote no fingerprint in {data_dir}: {exc.strerror}") from None
    match = _FP.match(fp_line)
    if match is None:
        raise TestnetError(f"unexpected fingerprint file in {data_dir}: {fp_line[:80]!r}")
    return RelayKeys(match.group(1), ed_line.split()[-1])


def _read_v3ident(data_dir: Path) -> AuthorityKeys:
    cert = (data_dir / "keys" / "authority_certificate").read_text()
    match = _V3.search(cert)
    if match is None:
        raise TestnetError(f"no fingerprint in the certificate of {data_dir}")
    return AuthorityKeys(match.group(1))


def generate_keys(requests: Sequence[KeyRequest], *, tor: str = "tor",
                  tor_gencert: str = "tor-gencert"
                  ) -> list[tuple[RelayKeys, AuthorityKeys | None]]:
    """Relay keys for every request, and authority keys for those with a dir address."""
    for req in requests:
        (req.data_dir / "keys").mkdir(parents=True, exist_ok=True)
    # Every run at once; tor-gencert and tor --list-fingerprint write different files.
    commands: list[tuple[list[str], bytes | None, str]] = [
        (_gencert_command(r, tor_gencert), b"\n", f"tor-gencert for {r.data_dir.name}")
        for r in requests if r.dir_address is not None]
    commands += [(_fingerprint_command(r, tor), None,
                  f"tor --list-fingerprint for {r.data_dir.name}") for r in requests]
    runs: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for command, stdin, what in commands:
            runs.append((_start(command, stdin), what))
    except TestnetError:
        for proc, _ in runs:  # a tool is missing: the runs already started are moot
            proc.kill()
            proc.communicate()
        raise
    errors = []
    for proc, what in runs:  # every run is waited for, even after one failed
        try:
            _wait(proc, what)
        except TestnetError as exc:
            errors.append(str(exc))
    if errors:
        raise TestnetError("; ".join(errors))
    return [(_read_relay_keys(r.data_dir),
             _read_v3ident(r.data_dir) if r.dir_address is not None else None)
            for r in requests]
