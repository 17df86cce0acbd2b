"""simnet trace records: the text is stable, sorted-key, whitespace-free JSON.

encode_record formats records by hand for speed; whatever the field names and
values, its text must equal what the json module gives for the same record.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simnet.trace import encode_record


class _Kind(enum.IntEnum):
    DATA = 2


def reference(t: float, node: str, event: str, fields: dict[str, Any]) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, float):
            return round(v, 9)
        return v

    record = {k: plain(v) for k, v in fields.items()}
    record.update(t=round(float(t), 9), node=node, ev=event)
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def test_typical_records() -> None:
    assert encode_record(1.2345678912, "h1", "recv", {"conn": "a>b", "n": 3, "crc": "00ff"}) == (
        '{"conn":"a>b","crc":"00ff","ev":"recv","n":3,"node":"h1","t":1.234567891}')
    assert encode_record(0, "net", "heal", {}) == '{"ev":"heal","node":"net","t":0.0}'
    odd = {"t": 9, "ev": "shadowed", "%s": "%d", "flag": True, "none": None, "kind": _Kind.DATA,
           "raw": b"\x00\x01", "path": ("x", [1.0000000001, b"\xff"]), "big": 10**30,
           "text": 'é\n"\u2028', "inf": float("inf"), "nested": {"b": 1, "a": 2}}
    assert encode_record(2.5, "hé", "ev", odd) == reference(2.5, "hé", "ev", odd)


_values = st.one_of(
    st.text(), st.integers(), st.booleans(), st.none(), st.binary(max_size=8),
    st.floats(allow_nan=False), st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3))


@settings(deadline=None, max_examples=300)
@given(st.floats(min_value=0, max_value=1e7), st.text(), st.text(),
       st.dictionaries(st.text(max_size=6), _values, max_size=6))
def test_matches_the_json_module(t: float, node: str, event: str, fields: dict[str, Any]) -> None:
    assert encode_record(t, node, event, fields) == reference(t, node, event, fields)
