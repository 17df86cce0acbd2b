"""Extension fields: ``EXT_FIELD_TYPE [1] | EXT_FIELD_LEN [1] | EXT_FIELD`` (rend-spec-v3 §3.1.1).

Always as a counted list (``N_EXTENSIONS [1]`` first): in ESTABLISH_INTRO,
INTRO_ESTABLISHED, INTRODUCE1/2, INTRODUCE_ACK and the decrypted INTRODUCE
payload (rend-spec-v3 §3.1.1, §3.1.3, §3.2, §3.3), and in the ntor-v3 client
and server messages (C tor's trunnel ``trn_extension``; arti's ``ExtList``).
Proposal 332 §A.2's text shows the ntor-v3 messages as a bare sequence with no
count; neither C tor nor arti accept that: real relays destroy such a circuit.

Unknown types are kept in order and re-encoded unchanged; by default only the
first occurrence of a type counts (:func:`first_of_type`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gotor.bytesio import Reader, Writer
from gotor.errors import LocalError


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension field, body uninterpreted."""

    ext_type: int
    body: bytes


def read_extension(r: Reader) -> Extension:
    ext_type = r.u8()
    return Extension(ext_type, r.take_u8_prefixed())


def write_extension(w: Writer, ext: Extension) -> None:
    if not 0 <= ext.ext_type <= 0xFF or len(ext.body) > 0xFF:
        raise LocalError(f"extension type {ext.ext_type} with {len(ext.body)}-byte body")
    w.u8(ext.ext_type).u8_prefixed(ext.body)


def read_extension_list(r: Reader) -> tuple[Extension, ...]:
    """An ``N_EXTENSIONS``-counted list."""
    return tuple(read_extension(r) for _ in range(r.u8()))


def write_extension_list(w: Writer, exts: tuple[Extension, ...]) -> None:
    if len(exts) > 0xFF:
        raise LocalError(f"{len(exts)} extensions (max 255)")
    w.u8(len(exts))
    for ext in exts:
        write_extension(w, ext)


def first_of_type(exts: Iterable[Extension], ext_type: int) -> Extension | None:
    """The first extension of ``ext_type``; later ones must be ignored (rend-spec-v3 §3.1.1)."""
    return next((ext for ext in exts if ext.ext_type == ext_type), None)
