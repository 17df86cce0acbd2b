"""Fuzz the directory-document tokenizer (gotor.netdoc.tokenize, dir-spec §1.2).

Input: document bytes.  Either tokenize raises DocumentError (a ProtocolError),
or every item's offsets lie inside the input in order, and writing the items
back with format_item gives text that tokenizes to the same items.
"""

from __future__ import annotations

from pathlib import Path

from gotor.netdoc.tokenize import format_item, tokenize

DOCS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "docs"


def TestOneInput(data: bytes) -> None:
    items = tokenize(data)
    end = 0
    for item in items:
        if not end <= item.start < item.line_end <= item.end <= len(data):
            raise AssertionError(f"bad offsets for {item!r}")
        end = item.end
    text = "".join(
        format_item(i.keyword, i.args, (i.obj.tag, i.obj.data) if i.obj else None) for i in items
    )
    again = tokenize(text.encode())
    if [_shape(i) for i in again] != [_shape(i) for i in items]:
        raise AssertionError("items do not survive format_item")


def _shape(item: object) -> tuple[object, ...]:
    obj = item.obj  # type: ignore[attr-defined]
    return (item.keyword, item.args, obj.tag if obj else None, obj.data if obj else None)  # type: ignore[attr-defined]


def seed_inputs() -> list[bytes]:
    return [p.read_bytes() for p in sorted(DOCS.rglob("*")) if p.is_file()]
