"""Which keywords a document section may contain, how often, and in what shape.

dir-spec §1.2 tags every item of every document with a multiplicity ("At start,
exactly once", "Exactly once", "At end, exactly once", "At most once", "Any
number", "Once or more"), with "[No extra arguments]" where extra arguments
are forbidden (otherwise they are allowed, for forward compatibility), and
with whether an object follows.  A :class:`SectionRules` is that table for one
section; :meth:`SectionRules.check` applies it to a list of
:class:`~gotor.netdoc.tokenize.Item` and returns a :class:`Section` that the
document parser reads fields from.  This is the role of Arti's
``SectionRules`` and stem's ``REQUIRED_FIELDS``/``SINGLE_FIELDS``.

Unknown keywords: dir-spec §1.2 says software MUST ignore a KeywordLine whose
keyword it does not recognise, so by default unknown items are kept (in
:attr:`Section.unknown`) and otherwise ignored.  A keyword that *is* known to
the document but belongs to another section (say a router-status ``s`` line
in a consensus preamble) is not unknown: it is misplaced, and an error.  Pass
those as ``reserved``; :func:`reserve_each_other` does it for a set of
sections of one document.

Documents are often concatenated (certificates, microdescriptors);
:func:`split_documents` cuts an item list at each occurrence of the first
keyword and attaches leading ``@annotations`` to the document they precede.

Example (a toy document)::

    RULES = SectionRules("greeting", [
        Rule("hello", Count.ONCE, min_args=1),
        Rule("sig", Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED, tags=("SIGNATURE",)),
    ], first="hello", last=("sig",))
    section = RULES.check(tokenize(data))
    name = section.one("hello").args[0]
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from gotor.errors import DocumentError, LocalError
from gotor.netdoc.tokenize import Item

__all__ = [
    "Count",
    "ObjectRule",
    "Rule",
    "Section",
    "SectionRules",
    "Split",
    "reserve_each_other",
    "split_documents",
]


class Count(enum.Enum):
    """dir-spec §1.2 multiplicities (position constraints are on SectionRules)."""

    ONCE = "exactly once"
    AT_MOST_ONCE = "at most once"
    ANY = "any number"
    AT_LEAST_ONCE = "once or more"

    @property
    def required(self) -> bool:
        return self in (Count.ONCE, Count.AT_LEAST_ONCE)

    @property
    def repeatable(self) -> bool:
        return self in (Count.ANY, Count.AT_LEAST_ONCE)


class ObjectRule(enum.Enum):
    FORBIDDEN = "forbidden"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class Rule:
    """What one keyword may look like in a section.

    ``max_args=None`` allows extra arguments (dir-spec's default); ``max_args``
    equal to the number of defined arguments is "[No extra arguments]".
    ``tags`` lists the acceptable object tags (empty: any tag).
    """

    keyword: str
    count: Count = Count.AT_MOST_ONCE
    min_args: int = 0
    max_args: int | None = None
    obj: ObjectRule = ObjectRule.FORBIDDEN
    tags: tuple[str, ...] = ()

    def check_item(self, item: Item) -> None:
        n = len(item.args)
        if n < self.min_args:
            raise item.error(f"needs at least {self.min_args} argument(s), has {n}")
        if self.max_args is not None and n > self.max_args:
            raise item.error(f"takes at most {self.max_args} argument(s), has {n}")
        if item.obj is None:
            if self.obj is ObjectRule.REQUIRED:
                raise item.error("object missing")
            return
        if self.obj is ObjectRule.FORBIDDEN:
            raise item.error(f"unexpected object {item.obj.tag!r}")
        if self.tags and item.obj.tag not in self.tags:
            raise item.error(f"object tag {item.obj.tag!r} is not one of {list(self.tags)}")


@dataclass(frozen=True)
class SectionRules:
    """The rules of one section of a document.

    ``first``: the keyword that must open the section ("At start").
    ``last``: keywords that form the section's tail ("At end"): once one of
    them appears, only they may follow, and the section must end with one.
    ``reject_unknown``: raise on unknown keywords instead of keeping them.
    ``reserved``: keywords of the same document's other sections (misplaced here).
    """

    name: str
    rules: Sequence[Rule]
    first: str | None = None
    last: tuple[str, ...] = ()
    reject_unknown: bool = False
    reserved: frozenset[str] = frozenset()
    _by_keyword: dict[str, Rule] = field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {r.keyword: r for r in self.rules}
        if len(table) != len(self.rules):
            raise LocalError(f"{self.name}: duplicate rule")
        for kw in (self.first, *self.last):
            if kw is not None and kw not in table:
                raise LocalError(f"{self.name}: {kw!r} has no rule")
        object.__setattr__(self, "_by_keyword", table)
        required = tuple(r.keyword for r in self.rules if r.count.required)
        object.__setattr__(self, "_required", required)

    @property
    def keywords(self) -> frozenset[str]:
        return frozenset(self._by_keyword)

    def check(self, items: Sequence[Item], *, line: int | None = None) -> Section:
        """Apply the rules to ``items``; ``line`` locates an empty section's error."""
        if not items:
            raise DocumentError(f"{self.name}: empty", line)
        if self.first is not None and items[0].keyword != self.first:
            raise items[0].error(f"{self.name} must start with {self.first!r}")
        by_kw: dict[str, list[Item]] = {}
        unknown: list[Item] = []
        table = self._by_keyword
        in_tail = False
        for item in items:
            kw = item.keyword
            rule = table.get(kw)
            if rule is None:
                self._unknown(item, in_tail)
                unknown.append(item)
                continue
            if kw in self.last:
                in_tail = True
            elif in_tail:
                raise item.error(f"not allowed after {self.last[0]!r} in {self.name}")
            seen = by_kw.get(kw)
            if seen is None:
                by_kw[kw] = [item]
            elif not rule.count.repeatable:
                raise item.error(
                    f"may appear only once in {self.name} (first on line {seen[0].line})"
                )
            else:
                seen.append(item)
            if kw == self.first and item is not items[0]:
                raise item.error(f"must be the first item of {self.name}")
            rule.check_item(item)
        self._check_required(by_kw, items)
        return Section(self.name, tuple(items), by_kw, tuple(unknown))

    def _unknown(self, item: Item, in_tail: bool) -> None:
        if item.keyword in self.reserved:
            raise item.error(f"not allowed in {self.name}")
        if self.reject_unknown or item.is_annotation:
            raise item.error(f"unexpected keyword in {self.name}")
        if in_tail:
            raise item.error(f"not allowed after {self.last[0]!r} in {self.name}")

    def _check_required(self, by_kw: dict[str, list[Item]], items: Sequence[Item]) -> None:
        for keyword in self._required:
            if keyword not in by_kw:
                raise DocumentError(
                    f"{self.name}: required item {keyword!r} missing", items[-1].line
                )
        if self.last and items[-1].keyword not in self.last:
            raise items[-1].error(f"{self.name} must end with {self.last[0]!r}")


@dataclass(frozen=True)
class Section:
    """A section that passed its rules: items by keyword, and the ignored unknown ones."""

    name: str
    items: tuple[Item, ...]
    by_keyword: dict[str, list[Item]]
    unknown: tuple[Item, ...]

    def one(self, keyword: str) -> Item:
        """The item of a keyword whose rule makes it required."""
        found = self.by_keyword.get(keyword)
        if not found:
            raise LocalError(f"{self.name}: {keyword!r} is not a required item")
        return found[0]

    def maybe(self, keyword: str) -> Item | None:
        found = self.by_keyword.get(keyword)
        return found[0] if found else None

    def all(self, keyword: str) -> list[Item]:
        return self.by_keyword.get(keyword, [])


def reserve_each_other(*sections: SectionRules) -> tuple[SectionRules, ...]:
    """Copies of ``sections`` in which each one's keywords are reserved in the others."""
    everything = frozenset().union(*(s.keywords for s in sections))
    return tuple(replace(s, reserved=everything - s.keywords) for s in sections)


@dataclass(frozen=True)
class Split:
    """One document of a concatenation: its annotations and its items."""

    annotations: tuple[Item, ...]
    items: tuple[Item, ...]


def split_documents(items: Iterable[Item], first: str) -> list[Split]:
    """Cut a concatenation of documents at each ``first`` keyword.

    Annotations (``@keyword`` items) are allowed only immediately before a
    document; anything else before the first document is an error.
    """
    docs: list[tuple[list[Item], list[Item]]] = []
    annotations: list[Item] = []
    current: list[Item] | None = None
    for item in items:
        if item.is_annotation:
            annotations.append(item)
            current = None
        elif item.keyword == first:
            current = [item]
            docs.append((annotations, current))
            annotations = []
        elif current is None:
            where = "after annotations" if annotations else "before the first document"
            raise item.error(f"unexpected {where}: documents start with {first!r}")
        else:
            current.append(item)
    if annotations:
        raise annotations[-1].error("annotation not followed by a document")
    return [Split(tuple(a), tuple(d)) for a, d in docs]
