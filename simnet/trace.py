"""The trace of a simulation: every observable event, in a stable JSON-lines format.

Each record is one line, ``{"t": <virtual seconds>, "node": ..., "ev": ..., ...}``
with sorted keys and no whitespace, so that the same run gives the same bytes in
any process.  The trace hash is SHA-256 over all lines.  Only what is the same
from run to run may be recorded: virtual times, lengths and digests of plaintext
(never TLS ciphertext, which differs on every run), names and reasons.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Protocol


class _Clock(Protocol):
    @property
    def now(self) -> float: ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_quote = json.encoder.encode_basestring_ascii   # what _ENCODER does to a str

# A record's text is exactly ``_ENCODER.encode(record)`` (sorted keys, no
# whitespace), but built by hand: encoding a whole dict per record (a sort, a
# fresh C encoder per call) was most of the trace's cost per record.  A record's
# layout (the sorted keys, and which value goes where) depends only on its field
# names, which come from a few dozen call sites, so each layout is built once.
_Layout = tuple[str, Callable[[list[Any]], tuple[Any, ...]]]
_LAYOUTS: dict[tuple[str, ...], _Layout] = {}


def _layout(names: tuple[str, ...]) -> _Layout:
    """A format string with one %s per key, and a picker that takes the values
    (fields, then t, node, ev) in key order."""
    n = len(names)
    # t, node and ev follow the fields and win over fields of the same name.
    where = {k: i for i, k in enumerate(names)} | {"t": n, "node": n + 1, "ev": n + 2}
    keys = sorted(where)
    fmt = "{" + ",".join(_quote(k).replace("%", "%%") + ":%s" for k in keys) + "}"
    return fmt, itemgetter(*(where[k] for k in keys))


def encode_record(t: float, node: str, event: str, fields: dict[str, Any]) -> str:
    names = tuple(fields)
    layout = _LAYOUTS.get(names)
    if layout is None:
        layout = _LAYOUTS[names] = _layout(names)
    fmt, pick = layout
    # str and int (not bool, not IntEnum: their JSON differs from %s) are the common case.
    values: list[Any] = [_quote(v) if type(v) is str else v if type(v) is int
                         else _ENCODER.encode(_jsonable(v)) for v in fields.values()]
    values += (float.__repr__(round(float(t), 9)), _quote(node), _quote(event))
    return fmt % pick(values)


class TraceRecorder:
    """Collects records, keeps a running hash, optionally writes them to a file."""

    def __init__(self, clock: _Clock, *, keep: bool = False) -> None:
        self._clock = clock
        self._hash = hashlib.sha256()
        self.count = 0
        self.sealed = False
        self.keep = keep
        self.lines: list[str] = []
        self._sink: IO[str] | None = None

    def write_to(self, sink: IO[str] | None) -> None:
        self._sink = sink

    def seal(self) -> None:
        """End the trace: later records are ignored.

        A finished world's leftover coroutines are closed whenever Python frees
        them, and their cleanup code may still try to record; that timing is not
        part of the simulation, so it must never reach the trace.
        """
        self.sealed = True

    def record(self, node: str, event: str, **fields: Any) -> None:
        if self.sealed:
            return
        line = encode_record(self._clock.now, node, event, fields)
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.count += 1
        if self.keep:
            self.lines.append(line)
        if self._sink is not None:
            self._sink.write(line + "\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_lines(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class Divergence:
    """Where two traces first differ (1-based record number; None = one trace ended)."""

    index: int
    expected: str | None
    actual: str | None


def first_divergence(expected: Iterable[str], actual: Iterable[str]) -> Divergence | None:
    exp_iter, act_iter = iter(expected), iter(actual)
    index = 0
    while True:
        index += 1
        e, a = next(exp_iter, None), next(act_iter, None)
        if e is None and a is None:
            return None
        if e != a:
            return Divergence(index, e, a)


def read_trace(path: Path) -> tuple[dict[str, Any], Iterator[str]]:
    """A trace file's header (first line) and an iterator over its records."""
    fh = path.open(encoding="utf-8")
    header_line = fh.readline()
    try:
        header = json.loads(header_line)
    except json.JSONDecodeError:
        fh.close()
        raise ValueError(f"{path}: not a simnet trace (bad header line)") from None
    if not isinstance(header, dict) or "seed" not in header:
        fh.close()
        raise ValueError(f"{path}: not a simnet trace (header has no seed)")

    def records() -> Iterator[str]:
        with fh:
            for line in fh:
                yield line.rstrip("\n")

    return header, records()
