"""Keyword rules (dir-spec §1.2 multiplicities) and splitting concatenated documents."""

from __future__ import annotations

import pytest

from gotor.errors import DocumentError, LocalError
from gotor.netdoc.rules import (
    Count,
    ObjectRule,
    Rule,
    SectionRules,
    reserve_each_other,
    split_documents,
)
from gotor.netdoc.tokenize import tokenize

OBJ = "-----BEGIN SIGNATURE-----\nAAEC\n-----END SIGNATURE-----\n"

RULES = SectionRules(
    "toy",
    [
        Rule("start", Count.ONCE, min_args=1, max_args=1),
        Rule("once", Count.ONCE, min_args=2),
        Rule("maybe", Count.AT_MOST_ONCE),
        Rule("many", Count.ANY),
        Rule("some", Count.AT_LEAST_ONCE),
        Rule("key", Count.AT_MOST_ONCE, obj=ObjectRule.OPTIONAL, tags=("RSA PUBLIC KEY",)),
        Rule("sig", Count.AT_LEAST_ONCE, obj=ObjectRule.REQUIRED, tags=("SIGNATURE",)),
    ],
    first="start",
    last=("sig",),
    reserved=frozenset({"elsewhere"}),
)
GOOD = (
    "start 1\nonce a b extra\nmany\nmany x\nsome\nunknown-thing 5\n" + "sig\n" + OBJ + "sig\n" + OBJ
)


def check(text: str):  # type: ignore[no-untyped-def]
    return RULES.check(tokenize(text.encode()))


def test_valid_section_exposes_items_by_keyword() -> None:
    sec = check(GOOD)
    assert sec.one("once").args == ("a", "b", "extra")  # extra arguments are allowed
    assert sec.maybe("maybe") is None
    assert [i.args for i in sec.all("many")] == [(), ("x",)]
    assert sec.all("nothing") == []
    assert len(sec.all("sig")) == 2
    assert [i.keyword for i in sec.unknown] == ["unknown-thing"]  # kept and ignored


def test_one_refuses_keywords_that_are_not_present() -> None:
    with pytest.raises(LocalError):
        check(GOOD).one("maybe")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("once a b\n" + GOOD, 1, "must start with 'start'"),
        (GOOD.replace("many\n", "maybe\nmaybe\n", 1), 4, "only once"),
        (GOOD.replace("once a b extra", "once a"), 2, "at least 2"),
        (GOOD.replace("start 1", "start 1 2"), 1, "at most 1"),
        (GOOD.replace("some\n", ""), 10, "required item 'some' missing"),
        (GOOD.replace("many x\n", "many x\n" + OBJ), 4, "unexpected object"),
        (
            GOOD.replace("start 1\n", "start 1\nkey\n-----BEGIN X-----\n-----END X-----\n"),
            2,
            "tag 'X'",
        ),
        ("start 1\nonce a b\nsome\nsig\n", 4, "object missing"),
        (GOOD + "many\n", 15, "not allowed after 'sig'"),
        (GOOD + "unknown\n", 15, "not allowed after 'sig'"),
        (GOOD.replace("many\n", "elsewhere\n", 1), 3, "not allowed in toy"),
        (GOOD.replace("many\n", "@note\n", 1), 3, "unexpected keyword"),
        (GOOD.replace("many\n", "start 2\n", 1), 3, "only once"),
        (GOOD + "some\n", 15, "not allowed after"),
    ],
)
def test_violations_name_keyword_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DocumentError) as err:
        check(text)
    assert err.value.line == line
    assert words in str(err.value)


def test_optional_object_and_allowed_tag() -> None:
    text = GOOD.replace(
        "start 1\n", "start 1\nkey\n-----BEGIN RSA PUBLIC KEY-----\n-----END RSA PUBLIC KEY-----\n"
    )
    assert check(text).one("key").obj is not None
    assert check(GOOD.replace("start 1\n", "start 1\nkey\n")).one("key").obj is None


def test_must_end_with_last_keyword() -> None:
    rules = SectionRules("t", [Rule("a", Count.ONCE), Rule("z", Count.AT_MOST_ONCE)], last=("z",))
    with pytest.raises(DocumentError, match="must end with 'z'"):
        rules.check(tokenize(b"a\n"))


def test_reject_unknown_and_empty_sections() -> None:
    rules = SectionRules("strict", [Rule("a", Count.ANY)], reject_unknown=True)
    assert len(rules.check(tokenize(b"a\na\n")).all("a")) == 2
    with pytest.raises(DocumentError, match="unexpected keyword"):
        rules.check(tokenize(b"a\nb\n"))
    with pytest.raises(DocumentError, match="empty"):
        rules.check([], line=7)


def test_bad_rule_tables_are_local_errors() -> None:
    with pytest.raises(LocalError):
        SectionRules("dup", [Rule("a"), Rule("a")])
    with pytest.raises(LocalError):
        SectionRules("nofirst", [Rule("a")], first="b")


def test_reserve_each_other_makes_other_sections_keywords_misplaced() -> None:
    head, body = reserve_each_other(
        SectionRules("head", [Rule("h", Count.ONCE)]), SectionRules("body", [Rule("b", Count.ANY)])
    )
    assert head.reserved == {"b"} and body.reserved == {"h"}
    with pytest.raises(DocumentError, match="not allowed in head"):
        head.check(tokenize(b"h\nb\n"))
    assert head.check(tokenize(b"h\nother\n")).unknown[0].keyword == "other"


def test_split_documents_with_annotations() -> None:
    items = tokenize(b"@a 1\n@b\ndoc 1\nx\ndoc 2\n@c\ndoc 3\ny\n")
    docs = split_documents(items, "doc")
    assert [[i.keyword for i in d.annotations] for d in docs] == [["@a", "@b"], [], ["@c"]]
    assert [[i.args for i in d.items] for d in docs] == [[("1",), ()], [("2",)], [("3",), ()]]
    assert split_documents([], "doc") == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (b"x\ndoc\n", 1, "before the first document"),
        (b"doc\n@a\nx\n", 3, "after annotations"),
        (b"doc\n@a\n", 2, "not followed by a document"),
    ],
)
def test_split_documents_errors(text: bytes, line: int, words: str) -> None:
    with pytest.raises(DocumentError) as err:
        split_documents(tokenize(text), "doc")
    assert err.value.line == line and words in str(err.value)


def test_repeatable_first_keyword_must_still_come_first_only() -> None:
    rules = SectionRules("rep", [Rule("a", Count.ANY), Rule("b", Count.ANY)], first="a")
    assert len(rules.check(tokenize(b"a\nb\n")).all("b")) == 1
    with pytest.raises(DocumentError, match="must be the first item"):
        rules.check(tokenize(b"a\nb\na\n"))
