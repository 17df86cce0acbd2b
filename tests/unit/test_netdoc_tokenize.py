"""The dir-spec §1.2 meta-format: items, objects, offsets, strictness, and the writer."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netdoc_helpers import doc

from gotor.errors import DocumentError
from gotor.netdoc.tokenize import format_item, format_object, is_keyword, tokenize

SAMPLE = (
    b"@last-listed 2020-01-01 00:00:00\n"
    b"hello world  two\targs\n"
    b"\n"
    b"key\n"
    b"-----BEGIN RSA PUBLIC KEY-----\n"
    b"AAEC\n"
    b"-----END RSA PUBLIC KEY-----\n"
    b"empty \n"
)


def test_items_keywords_args_and_lines() -> None:
    items = tokenize(SAMPLE)
    assert [i.keyword for i in items] == ["@last-listed", "hello", "key", "empty"]
    assert items[0].is_annotation and not items[1].is_annotation
    assert items[1].args == ("world", "two", "args")
    assert items[1].args_text == "world  two\targs"
    assert [i.line for i in items] == [1, 2, 4, 8]  # the blank line 3 is skipped
    assert items[3].args == () and items[3].args_text == ""


def test_object_decoded_with_tag_and_line() -> None:
    key = tokenize(SAMPLE)[2]
    assert key.obj is not None
    assert (key.obj.tag, key.obj.data, key.obj.line) == ("RSA PUBLIC KEY", b"\x00\x01\x02", 5)
    assert key.object_data() == b"\x00\x01\x02"
    assert repr(key) == "Item('key', () +RSA PUBLIC KEY, line 4)"
    assert repr(key.obj) == "Object('RSA PUBLIC KEY', 3 bytes, line 5)"
    assert repr(tokenize(b"a b\n")[0]) == "Item('a', ('b',), line 1)"


def test_offsets_point_into_the_original_bytes() -> None:
    items = tokenize(SAMPLE)
    key = items[2]
    assert SAMPLE[key.start : key.line_end] == b"key\n"
    assert SAMPLE[key.line_end : key.end].startswith(b"-----BEGIN")
    assert SAMPLE[key.start : key.end].endswith(b"-----END RSA PUBLIC KEY-----\n")
    assert items[3].start == key.end
    hello = items[1]
    assert SAMPLE[hello.start : hello.end] == b"hello world  two\targs\n"


def test_offsets_are_byte_offsets_with_utf8() -> None:
    data = "contact Zoë \u00a0x\nnext 1\n".encode()
    items = tokenize(data)
    assert items[0].args_text == "Zoë \u00a0x"
    # Only SP/TAB separate arguments: U+00A0 stays inside an argument.
    assert items[0].args == ("Zoë", "\u00a0x")
    assert data[items[1].start : items[1].end] == b"next 1\n"


def test_empty_document_has_no_items() -> None:
    assert tokenize(b"") == []


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"a 1\nb\x00\n", 2, "control character"),
        (b"a 1\r\n", 1, "control character"),
        (b"a 1\nb 2", 2, "newline"),
        (b"ok\n\xff\xfe\n", 2, "UTF-8"),
        (b"ok\n-bad\n", 2, "keyword line"),
        (b"ok\nb@d x\n", 2, "keyword line"),
        (b" leading\n", 1, "keyword line"),
        (b"-----BEGIN X-----\nAA==\n-----END X-----\n", 1, "without a keyword"),
        (b"k\n-----BEGIN X-----\nAA==\n", 2, "not terminated"),
        (b"k\n-----BEGIN X-----\nAA==\n-----END Y-----\n", 4, "does not match"),
        (b"k\n-----BEGIN x  y-----\n-----END x  y-----\n", 2, "tag"),
        (b"k\n-----BEGIN X----\n-----END X----\n", 2, "BEGIN"),
        (b"k\n-----BEGIN X-----\nA*==\n-----END X-----\n", 3, "base64 line"),
        (b"k\n-----BEGIN X-----\n" + b"A" * 68 + b"\n-----END X-----\n", 3, "base64 line"),
        (b"k\n-----BEGIN X-----\nAAA\n-----END X-----\n", 2, "bad base64"),
        (b"k\n-----BEGIN X-----\nAA==\nnext 1\n-----END X-----\n", 4, "base64 line"),
        (b"k\n-----BEGIN X-----\nAA==\nnext\n-----END X-----\n", 2, "bad base64"),
    ],
)
def test_malformed_input_names_the_line(data: bytes, line: int, words: str) -> None:
    with pytest.raises(DocumentError) as err:
        tokenize(data)
    assert err.value.line == line
    assert words in str(err.value)


def test_item_errors_name_keyword_and_line() -> None:
    item = tokenize(b"x\nfoo a\n")[1]
    assert item.arg(0, "thing") == "a"
    with pytest.raises(DocumentError, match=r"line 2: foo: missing argument 2 \(size\)"):
        item.arg(1, "size")
    with pytest.raises(DocumentError, match="object missing"):
        item.object_data()


@pytest.mark.parametrize(
    "name",
    [
        "testnet-arti-shadow/cached-consensus",
        "testnet-arti-shadow/cached-certs",
        "server-descriptors/stem-server_descriptor_with_ed25519",
        "hsdesc/arti-hsdesc1.txt",
    ],
)
def test_real_documents_tokenize_and_cover_every_byte(name: str) -> None:
    data = doc(name)
    items = tokenize(data)
    # Items are contiguous: each starts where the previous one ended.
    assert items[0].start == 0 and items[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(items))


def test_writer_matches_reader() -> None:
    data = bytes(range(200))
    text = format_item("sig", ["a", "b"], ("SIGNATURE", data)) + format_item(
        "client-versions", [""]
    )
    assert text.splitlines()[0] == "sig a b"
    assert text.endswith("client-versions \n")
    assert all(len(line) <= 64 for line in text.splitlines())
    items = tokenize(text.encode())
    assert items[0].obj is not None and items[0].obj.data == data
    assert items[1].args == ()
    assert format_object("X", b"") == "-----BEGIN X-----\n-----END X-----\n"


@pytest.mark.parametrize(
    ("keyword", "args"),
    [("-bad", []), ("ok", ["two words"]), ("ok", ["a", ""]), ("ok", ["nl\n"]), ("ok", ["\x01"])],
)
def test_writer_refuses_what_the_reader_would_not_read_back(keyword: str, args: list[str]) -> None:
    with pytest.raises(ValueError):
        format_item(keyword, args)


def test_writer_refuses_bad_object_tags() -> None:
    with pytest.raises(ValueError):
        format_object("bad  tag", b"")


def test_is_keyword() -> None:
    assert is_keyword("dir-key-crosscert") and is_keyword("r") and is_keyword("9")
    assert not is_keyword("-x") and not is_keyword("") and not is_keyword("a_b")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_tokenize_or_raise_document_error(data: bytes) -> None:
    try:
        items = tokenize(data)
    except DocumentError:
        return
    assert all(0 <= i.start < i.line_end <= i.end <= len(data) for i in items)


_WORD = st.text("abcXYZ019-=+/ ", min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}", fullmatch=True),
            st.lists(st.from_regex(r"[!-~]{1,8}", fullmatch=True), max_size=4),
            st.none() | st.binary(max_size=100),
        ),
        max_size=8,
    )
)
def test_written_items_read_back(items: list[tuple[str, list[str], bytes | None]]) -> None:
    text = "".join(format_item(k, a, None if o is None else ("OBJ", o)) for k, a, o in items)
    parsed = tokenize(text.encode())
    assert [(i.keyword, list(i.args), i.obj.data if i.obj else None) for i in parsed] == items


def test_base64_objects_decode_like_the_stdlib() -> None:
    raw = b"\x00" * 47 + b"\xff"
    item = tokenize(format_item("k", [], ("T", raw)).encode())[0]
    assert item.obj is not None and base64.b64encode(item.obj.data) == base64.b64encode(raw)
