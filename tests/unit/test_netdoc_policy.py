"""Exit-policy summaries (dir-spec §3.4.1 "p", §3.3 "p6", §3.8.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gotor.errors import ProtocolError
from gotor.netdoc.policy import MAX_PORT, PortPolicy


def test_accept_list() -> None:
    p = PortPolicy.parse("accept 22,80,443-445,8000-8080")
    assert p.accept and p.ranges == ((22, 22), (80, 80), (443, 445), (8000, 8080))
    assert [p.allows_port(x) for x in (21, 22, 23, 80, 442, 443, 445, 446, 8080, 8081)] == [
        False,
        True,
        False,
        True,
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert str(p) == "accept 22,80,443-445,8000-8080"


def test_reject_list() -> None:
    p = PortPolicy.parse("reject 1-24,26-65535")
    assert p.allows_port(25) and not p.allows_port(1) and not p.allows_port(65535)
    assert p.allows_some_port()
    assert not PortPolicy.parse("reject 1-65535").allows_some_port()
    assert PortPolicy.reject_all() == PortPolicy.parse("reject 1-65535")
    assert PortPolicy.accept_all().allows_port(1) and PortPolicy.accept_all().allows_port(MAX_PORT)


def test_from_item_arguments_ignores_extras() -> None:
    assert PortPolicy.from_args(("accept", "80", "future")) == PortPolicy(True, ((80, 80),))
    with pytest.raises(ProtocolError):
        PortPolicy.from_args(("accept",))


@pytest.mark.parametrize(
    "text",
    [
        "allow 80",
        "accept",
        "accept ",
        "accept 0",
        "accept 65536",
        "accept 80,80",
        "accept 90,80",
        "accept 1-10,5-20",
        "accept 10-1",
        "accept 80,",
        "accept 080",
        "accept -5",
        "accept 1-2-3",
        "reject 1 2",
        "accept\t80",
    ],
)
def test_malformed_summaries(text: str) -> None:
    with pytest.raises(ProtocolError):
        PortPolicy.parse(text)


def test_summarize_refuses_bad_ranges() -> None:
    with pytest.raises(ValueError):
        PortPolicy.summarize([(0, 5)])
    with pytest.raises(ValueError):
        PortPolicy.summarize([(9, 5)])


def test_direct_construction_keeps_the_invariant() -> None:
    with pytest.raises(ValueError):
        PortPolicy(True, ((5, 6), (6, 7)))
    with pytest.raises(ValueError):
        PortPolicy(True, ())


@pytest.mark.parametrize(
    ("accepted", "expected"),
    [
        ([], "reject 1-65535"),
        ([(1, 65535)], "accept 1-65535"),
        ([(80, 80), (443, 443)], "accept 80,443"),
        ([(1, 24), (26, 65535)], "reject 25"),
        ([(25, 25), (1, 24)], "accept 1-25"),  # merged
        ([(2, 65535)], "reject 1"),
        ([(2, 65534)], "accept 2-65534"),  # tie with "reject 1,65535": accept wins
        ([(1, 65534)], "reject 65535"),
    ],
)
def test_summarize_picks_the_shorter_form(accepted: list[tuple[int, int]], expected: str) -> None:
    assert str(PortPolicy.summarize(accepted)) == expected


_RANGES = st.lists(
    st.tuples(st.integers(1, MAX_PORT), st.integers(0, 2000)).map(
        lambda t: (t[0], min(MAX_PORT, t[0] + t[1]))
    ),
    max_size=8,
)


@given(_RANGES, st.integers(1, MAX_PORT))
def test_summary_allows_exactly_the_accepted_ports(
    ranges: list[tuple[int, int]], port: int
) -> None:
    summary = PortPolicy.summarize(ranges)
    expected = any(lo <= port <= hi for lo, hi in ranges)
    assert summary.allows_port(port) == expected
    assert PortPolicy.parse(str(summary)) == summary


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_protocol_error(text: str) -> None:
    try:
        PortPolicy.parse(text)
    except ProtocolError:
        pass
