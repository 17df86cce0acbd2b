"""Split a directory document into Items: the meta-format of dir-spec §1.2.

A document is a sequence of *items*.  Each item is a keyword line,
``Keyword (WS Argument)* NL``, optionally followed by one *object*::

    -----BEGIN TAG-----
    base64 lines, at most 64 characters each
    -----END TAG-----

This module knows only that syntax; which keywords may appear where is the
business of :mod:`gotor.netdoc.rules`, and what the arguments mean is the
business of each document module.  It is the one place that reads raw
document bytes, so it is also where the byte-level strictness lives:

* no NUL or other control character (other than TAB and NL) anywhere: dir-spec
  §1.2 allows only graphical characters in arguments, and a CR or NUL in a
  signed document is a sign of mangling or of an attempt to confuse parsers
  that disagree about where a line ends;
* the text is UTF-8 (proposal 285 allows UTF-8 in arguments; keywords are ASCII);
* every line, including the last, ends with NL;
* keywords use ``[A-Za-z0-9-]`` and do not start with ``-``; ``@keyword`` lines
  are *annotations* (dir-spec §1.2 does not define them, but caches prefix
  stored documents with them: ``@last-listed``, ``@type``); whether an
  annotation is acceptable at its position is decided by the caller;
* object tags are keywords separated by single spaces, BEGIN and END tags match,
  base64 lines are at most 64 characters (dir-spec §1.2: "implementations MUST
  wrap lines at 64 characters") and decode strictly.

The grammar allows empty lines between items (``Document ::= (Item | NL)+``),
so they are skipped.

Every :class:`Item` keeps its byte offsets in the original document
(``start``, ``line_end``, ``end``) so that signed-part digests (dir-spec §1.3)
are computed on the exact bytes received, never on a re-encoding; and its
line number, which every :class:`~gotor.errors.DocumentError` carries.

The writing half (:func:`format_item`, :func:`format_object`) produces exactly
the syntax the reader accepts; the document builders use it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from gotor.errors import DocumentError

__all__ = [
    "MAX_OBJECT_LINE",
    "Item",
    "Object",
    "format_item",
    "format_object",
    "is_keyword",
    "tokenize",
]

#: dir-spec §1.2: object lines are wrapped at 64 characters.
MAX_OBJECT_LINE = 64

# Control characters other than TAB (0x09) and NL (0x0a); DEL too.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_KEYWORD_LINE = re.compile(r"(@?[A-Za-z0-9][A-Za-z0-9-]*)(?:[ \t]+(.*))?")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?: [A-Za-z0-9][A-Za-z0-9-]*)*")
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]*")
_WS = re.compile(r"[ \t]+")
_BEGIN = "-----BEGIN "
_END = "-----END "
_DASHES = "-----"


class Object:
    """An object (dir-spec §1.2): its tag and the decoded base64 bytes."""

    __slots__ = ("data", "line", "tag")

    def __init__(self, tag: str, data: bytes, line: int) -> None:
        self.tag = tag
        self.data = data
        self.line = line  # line number of the BEGIN line

    def __repr__(self) -> str:
        return f"Object({self.tag!r}, {len(self.data)} bytes, line {self.line})"


class Item:
    """One keyword line and its optional object.

    ``args`` are the whitespace-separated arguments; ``args_text`` is the raw
    text after the keyword and the whitespace that follows it (for items whose
    argument is free text, such as ``contact``).  ``start``/``end`` delimit the
    item in the document's bytes; ``line_end`` is the offset just after the
    keyword line's NL (where an object, if any, begins).
    """

    __slots__ = ("args", "args_text", "end", "keyword", "line", "line_end", "obj", "start")

    def __init__(
        self,
        keyword: str,
        args: tuple[str, ...],
        args_text: str,
        line: int,
        start: int,
        line_end: int,
    ) -> None:
        self.keyword = keyword
        self.args = args
        self.args_text = args_text
        self.line = line
        self.start = start
        self.line_end = line_end
        self.end = line_end
        self.obj: Object | None = None

    @property
    def is_annotation(self) -> bool:
        return self.keyword.startswith("@")

    def error(self, reason: str) -> DocumentError:
        """A DocumentError about this item, naming its keyword and line."""
        return DocumentError(f"{self.keyword}: {reason}", self.line)

    def arg(self, index: int, what: str) -> str:
        """Argument ``index`` (0-based); ``what`` names it in the error if absent."""
        if index >= len(self.args):
            raise self.error(f"missing argument {index + 1} ({what})")
        return self.args[index]

    def object_data(self) -> bytes:
        """The object's bytes; an error if the item has none."""
        if self.obj is None:
            raise self.error("object missing")
        return self.obj.data

    def __repr__(self) -> str:
        obj = f" +{self.obj.tag}" if self.obj is not None else ""
        return f"Item({self.keyword!r}, {self.args!r}{obj}, line {self.line})"


def tokenize(data: bytes | bytearray | memoryview) -> list[Item]:
    """Split ``data`` into items; raises DocumentError on any syntax violation."""
    raw = bytes(data)
    # latin-1 maps each byte to one character, so string offsets are byte
    # offsets; non-ASCII lines are re-decoded as UTF-8 below.
    text = raw.decode("latin-1")
    _check_bytes(raw, text)
    lines = text.split("\n")
    lines.pop()  # the text ends with NL, so the last piece is empty
    ascii_only = text.isascii()
    items: list[Item] = []
    pos = 0
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        start = pos
        pos += len(line) + 1
        i += 1
        if not line:
            continue
        item = _keyword_line(line, i, start, pos, ascii_only)
        if i < n and lines[i].startswith(_DASHES):
            i, pos = _read_object(item, lines, i, pos)
        items.append(item)
    return items


def _check_bytes(raw: bytes, text: str) -> None:
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise DocumentError(
            f"forbidden control character {ord(bad.group()):#04x}", _line_of(raw, bad.start())
        )
    if not text.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError("invalid UTF-8", _line_of(raw, exc.start)) from None
    if raw and not raw.endswith(b"\n"):
        raise DocumentError("last line is not terminated by a newline", raw.count(b"\n") + 1)


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _keyword_line(line: str, lineno: int, start: int, line_end: int, ascii_only: bool) -> Item:
    m = _KEYWORD_LINE.fullmatch(line)
    if m is None:
        if line.startswith(_DASHES):
            raise DocumentError("object without a keyword line before it", lineno)
        raise DocumentError(f"malformed keyword line {line[:40]!r}", lineno)
    keyword, rest = m.group(1), m.group(2)
    if rest is None:
        return Item(keyword, (), "", lineno, start, line_end)
    if ascii_only or rest.isascii():
        return Item(keyword, tuple(rest.split()), rest, lineno, start, line_end)
    # Non-ASCII arguments: decode properly, and split only on SP/TAB (str.split()
    # would also split on Unicode spaces such as U+00A0).
    rest = rest.encode("latin-1").decode("utf-8")
    args = tuple(a for a in _WS.split(rest) if a)
    return Item(keyword, args, rest, lineno, start, line_end)


def _read_object(item: Item, lines: list[str], i: int, pos: int) -> tuple[int, int]:
    """Read the object starting at ``lines[i]``; return the new (index, offset)."""
    begin_no = i + 1
    begin = lines[i]
    if not (begin.startswith(_BEGIN) and begin.endswith(_DASHES) and len(begin) > 16):
        raise DocumentError("malformed object BEGIN line", begin_no)
    tag = begin[len(_BEGIN) : -len(_DASHES)]
    if _TAG.fullmatch(tag) is None:
        raise DocumentError(f"malformed object tag {tag[:40]!r}", begin_no)
    pos += len(begin) + 1
    i += 1
    body: list[str] = []
    n = len(lines)
    while True:
        if i >= n:
            raise DocumentError(f"object {tag!r} is not terminated", begin_no)
        line = lines[i]
        pos += len(line) + 1
        i += 1
        if line.startswith(_DASHES):
            break
        if len(line) > MAX_OBJECT_LINE or _BASE64_LINE.fullmatch(line) is None:
            raise DocumentError(f"bad base64 line in object {tag!r}", i)
        body.append(line)
    if line != f"{_END}{tag}{_DASHES}":
        raise DocumentError(f"object END line does not match BEGIN {tag!r}", i)
    try:
        data = binascii.a2b_base64("".join(body), strict_mode=True)
    except binascii.Error:
        raise DocumentError(f"bad base64 in object {tag!r}", begin_no) from None
    item.obj = Object(tag, data, begin_no)
    item.end = pos
    return i, pos


# --- writing ---------------------------------------------------------------


def is_keyword(word: str) -> bool:
    """True if ``word`` is a dir-spec §1.2 keyword."""
    return _KEYWORD.fullmatch(word) is not None


def format_object(tag: str, data: bytes) -> str:
    """An object: BEGIN line, base64 wrapped at 64 columns, END line (each ending in NL)."""
    if _TAG.fullmatch(tag) is None:
        raise ValueError(f"bad object tag {tag!r}")
    b64 = base64.b64encode(data).decode("ascii")
    body = "".join(b64[k : k + MAX_OBJECT_LINE] + "\n" for k in range(0, len(b64), MAX_OBJECT_LINE))
    return f"{_BEGIN}{tag}{_DASHES}\n{body}{_END}{tag}{_DASHES}\n"


def format_item(
    keyword: str, args: Sequence[str] = (), obj: tuple[str, bytes] | None = None
) -> str:
    """One item: ``keyword args...`` NL, then the object ``(tag, data)`` if given.

    Arguments are joined with single spaces (dir-spec §3.4.1 requires exactly
    that in status documents).  An argument may be the empty string only as the
    sole argument, which yields ``keyword SP NL``: C tor writes an empty
    ``client-versions`` line that way, and signatures cover those bytes.
    """
    if not is_keyword(keyword.removeprefix("@")):
        raise ValueError(f"bad keyword {keyword!r}")
    for a in args:
        if (not a and len(args) != 1) or any(c in a for c in " \t\n") or _FORBIDDEN.search(a):
            raise ValueError(f"bad argument {a!r} for {keyword!r}")
    line = " ".join((keyword, *args)) + "\n"
    if obj is not None:
        line += format_object(*obj)
    return line
