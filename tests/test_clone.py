"""Reading structured-clone-v1 values in Python (the page writes them; see test_idb.py)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psp_cdp.errors import SnapshotError
from psp_cdp.snapshot.clone import Opaque, to_python, walk_strings

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def _encode(value: object) -> str:
    """What clone.js writes for JSON-like data (dense arrays, plain objects), built in Python."""
    nodes: list[list[object]] = []
    work: list[tuple[object, int]] = []

    def child(v: object) -> object:
        if isinstance(v, (dict, list)):
            nodes.append([])
            work.append((v, len(nodes) - 1))
            return [len(nodes) - 1]
        return v

    root = child(value)
    while work:
        v, i = work.pop()
        if isinstance(v, dict):
            node: list[object] = ["Object"]
            for k, x in v.items():
                node += [k, child(x)]
        else:
            node = ["Array", len(v)] + [child(x) for x in v]
        nodes[i] = node
    return json.dumps({"v": 1, "r": root, "n": nodes})


@given(json_like)
def test_json_like_values_read_back(value: object) -> None:
    assert to_python(_encode(value)) == value


def test_special_children_cycles_and_opaque_nodes() -> None:
    text = json.dumps(
        {
            "v": 1,
            "r": [0],
            "n": [
                ["Object", "self", [0], "nz", ["-0"], "nan", ["NaN"], "big", ["n", "123456789012345678901"], "u", ["u"],
                 "when", [1], "holes", [2], "m", [3]],
                ["Date", 5],
                ["SparseArray", 3, "1", "b"],
                ["Map", "token", "abc", [1], "x"],
            ],
        }
    )
    value = to_python(text)
    assert value["self"] is value
    assert math.copysign(1, value["nz"]) == -1 and math.isnan(value["nan"])
    assert value["big"] == 123456789012345678901 and value["u"] is None
    assert isinstance(value["when"], Opaque) and value["when"].kind == "Date" and value["when"].fields == [5]
    assert value["holes"] == [None, "b", None]
    assert value["m"].fields[:2] == ["token", "abc"]
    assert ("token", "abc") in walk_strings(text)
    assert (None, "b") in walk_strings(text)


@pytest.mark.parametrize("text", ["", "[]", '{"v": 2, "r": 1, "n": []}', '{"v": 1, "r": ["?"], "n": []}'])
def test_not_a_value(text: str) -> None:
    with pytest.raises(SnapshotError):
        to_python(text)
