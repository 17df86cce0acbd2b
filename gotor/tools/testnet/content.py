"""The test files of a private network: deterministic content, written once.

Each file's bytes are a pure function of its name (SHAKE-256), so any client
can check every byte it downloads without a copy; ``network.json`` also lists
each file's SHA-256 for tools such as ``sha256sum``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_FILES", "WebFile", "file_content", "write_files"]

#: The test files every network has: name -> size in bytes.
DEFAULT_FILES: Mapping[str, int] = {
    "1KB": 1 << 10,
    "64KB": 64 << 10,
    "512KB": 512 << 10,
    "1MB": 1 << 20,
    "4MB": 4 << 20,
    "10MB": 10 << 20,
    "50MB": 50 << 20,  # the benchmark's bulk download
}

@dataclass(frozen=True)
class WebFile:
    """A test file as the network description lists it."""

    name: str
    size: int
    sha256: str


def file_content(name: str, size: int) -> bytes:
    """The bytes of test file ``name``: SHAKE-256 of the name, ``size`` bytes long."""
    return hashlib.shake_256(b"gotor-testnet:" + name.encode()).digest(size)


def write_files(root: Path, files: Mapping[str, int] = DEFAULT_FILES) -> list[WebFile]:
    """Write every test file under ``root`` (created if missing); their descriptions."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, size in files.items():
        data = file_content(name, size)
        (root / name).write_bytes(data)
        out.append(WebFile(name, size, hashlib.sha256(data).hexdigest()))
    return out
