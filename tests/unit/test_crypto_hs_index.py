"""Time periods and HSDir ring indices (rend-spec-v3 §2.2.1, §2.2.3, §2.3.1)
against tests/vectors/vectors/hs_time_period.json and hs_index.json."""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gotor.crypto.hs_index import (
    DEFAULT_ROTATION_OFFSET_SECONDS,
    disaster_srv,
    hs_index,
    hsdir_index,
    next_time_period_start,
    period_length_for_testing_network,
    rotation_offset_seconds,
    time_period_bounds,
    time_period_number,
    time_period_start,
)
from gotor.errors import LocalError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
PERIODS = json.loads((VECTORS / "vectors" / "hs_time_period.json").read_text())
INDEX = json.loads((VECTORS / "vectors" / "hs_index.json").read_text())


def _unix(utc: str) -> int:
    return calendar.timegm(datetime.strptime(utc, "%Y-%m-%d %H:%M:%S").timetuple())


TIME_VECTORS = [v for v in PERIODS["vectors"] if "time_utc" in v]
RANGE_VECTORS = [v for v in PERIODS["vectors"] if "period" in v]


@pytest.mark.parametrize("vec", TIME_VECTORS, ids=lambda v: v["time_utc"])
def test_time_period_numbers(vec: dict[str, Any]) -> None:
    now = _unix(str(vec["time_utc"]))
    if "unix" in vec:
        assert now == vec["unix"]
    period = time_period_number(now)
    assert period == vec["expected_period"]
    if "expected_next_period_num" in vec:
        assert time_period_number(next_time_period_start(now)) == vec["expected_next_period_num"]
    if "expected_next_period_start_utc" in vec:
        assert next_time_period_start(now) == _unix(str(vec["expected_next_period_start_utc"]))


@pytest.mark.parametrize("vec", RANGE_VECTORS, ids=lambda v: str(v["period"]))
def test_time_period_ranges(vec: dict[str, Any]) -> None:
    start_utc, end_utc = vec["expected_range_utc"]
    period = int(vec["period"])
    assert time_period_bounds(period) == (_unix(start_utc), _unix(end_utc))
    assert time_period_start(period) == _unix(start_utc)
    assert time_period_number(_unix(start_utc)) == period
    assert time_period_number(_unix(end_utc) - 1) == period


def test_testing_network_periods() -> None:
    # hs_time_period.json testing_network_note: 10 s voting interval -> 240 s periods,
    # 120 s offset; from 2016-04-13 00:00:00 the next period starts at 00:02:00.
    length = period_length_for_testing_network(10)
    offset = rotation_offset_seconds(10)
    assert (length, offset) == (4, 120)
    now = _unix("2016-04-13 00:00:00")
    assert next_time_period_start(now, length, offset) == _unix("2016-04-13 00:02:00")
    assert rotation_offset_seconds(3600) == DEFAULT_ROTATION_OFFSET_SECONDS


def test_offset_truncated_to_minutes_for_numbers_like_c_tor() -> None:
    # 8 s voting interval: 96 s offset; the period number uses 1 whole minute
    # (hs_get_time_period_num) but start times add the full 96 s.
    offset = rotation_offset_seconds(8)
    assert time_period_number(60 + 4 * 60 - 1, 4, offset) == 0
    assert time_period_number(60 + 4 * 60, 4, offset) == 1
    assert time_period_start(1, 4, offset) == 4 * 60 + 96


def test_bad_parameters_are_local_errors() -> None:
    with pytest.raises(LocalError):
        time_period_number(0)  # before the first (offset) period
    with pytest.raises(LocalError):
        time_period_number(10**9, 0)
    with pytest.raises(LocalError):
        time_period_start(-1)
    with pytest.raises(LocalError):
        hs_index(1, bytes(31), 1)


def test_hs_index_vector() -> None:
    for vec in INDEX["hs_index"]["vectors"]:
        out = hs_index(vec["replicanum"], bytes.fromhex(vec["blinded_public_key"]),
                       vec["period_num"], vec["period_length"])
        assert out.hex() == vec["expected"]


def test_hsdir_index_vector() -> None:
    for vec in INDEX["hsdir_index"]["vectors"]:
        out = hsdir_index(bytes.fromhex(vec["node_identity"]),
                          bytes.fromhex(vec["shared_random_value"]),
                          vec["period_num"], vec["period_length"])
        assert out.hex() == vec["expected"]


def test_disaster_srv_vector() -> None:
    for vec in INDEX["disaster_srv"]["vectors"]:
        out = disaster_srv(vec["period_num"], vec["period_length"])
        assert out.hex().upper() == vec["expected"].upper()


def test_index_field_order_matters() -> None:
    # hs_index hashes length before number, hsdir_index number before length.
    key = bytes(range(32))
    assert hs_index(1, key, 42, 1440) == hashlib.sha3_256(
        b"store-at-idx" + key + (1).to_bytes(8, "big") + (1440).to_bytes(8, "big")
        + (42).to_bytes(8, "big")
    ).digest()
    assert hs_index(1, key, 42) != hs_index(2, key, 42)
    assert hsdir_index(key, key, 42, 1440) != hsdir_index(key, key, 1440, 42)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=DEFAULT_ROTATION_OFFSET_SECONDS, max_value=2**40),
    st.integers(min_value=1, max_value=14400),
    st.integers(min_value=0, max_value=600).map(lambda m: m * 60),
)
def test_now_lies_inside_its_period(now: int, length: int, offset: int) -> None:
    period = time_period_number(now, length, offset)
    start, end = time_period_bounds(period, length, offset)
    assert start <= now < end
    assert next_time_period_start(now, length, offset) == end
    assert time_period_number(end, length, offset) == period + 1
