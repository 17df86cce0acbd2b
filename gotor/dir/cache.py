"""The directory cache in the client's data directory (C tor's file names).

* ``cached-microdesc-consensus`` — the last verified microdesc consensus, as received;
* ``cached-certs`` — the authority certificates we hold, concatenated;
* ``cached-microdescs`` — the microdescriptors the consensus uses, concatenated.

Every write is atomic: the bytes go to a temporary file in the same
directory, are flushed to disk (``fsync``), and the temporary file is
renamed over the old one (``os.replace``, atomic on POSIX and Windows), so a
crash leaves either the old file or the new one.  Nothing read from here is
trusted: the directory client parses and re-verifies everything at start,
exactly as if it came from the network.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CERTS_FILE", "CONSENSUS_FILE", "MICRODESCS_FILE", "DirCache", "atomic_write"]

CONSENSUS_FILE = "cached-microdesc-consensus"
CERTS_FILE = "cached-certs"
MICRODESCS_FILE = "cached-microdescs"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable (POSIX; directories cannot be opened on Windows)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DirCache:
    """Reads and atomically writes the three cache files of one data directory."""

    def __init__(self, data_dir: str | Path) -> None:
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.dir / name).read_bytes()
        except FileNotFoundError:
            return None

    def load_consensus(self) -> bytes | None:
        return self._read(CONSENSUS_FILE)

    def load_certs(self) -> bytes | None:
        return self._read(CERTS_FILE)

    def load_microdescs(self) -> bytes | None:
        return self._read(MICRODESCS_FILE)

    def store_consensus(self, data: bytes) -> None:
        atomic_write(self.dir / CONSENSUS_FILE, data)

    def store_certs(self, data: bytes) -> None:
        atomic_write(self.dir / CERTS_FILE, data)

    def store_microdescs(self, data: bytes) -> None:
        atomic_write(self.dir / MICRODESCS_FILE, data)
