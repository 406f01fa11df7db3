"""The data model and snapshot codec: no browser, no I/O.

Property-based: any DOMString, any state built from them, survives encode/decode and
the JSON fallback bit-exactly; damaged bytes give CorruptSnapshotError, never a
wrong state.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psp_cdp.errors import CorruptSnapshotError, SnapshotError
from psp_cdp.snapshot import codec, model

# Any sequence of UTF-16 code units, as Python holds a DOMString: lone surrogates included.
dom_strings = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))


def _state(items: dict[str, str], cookie_value: str = "v") -> model.BrowserSessionState:
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=1)
    state.storage.cookies.add(name="sid", value=cookie_value, domain="example.com", path="/", expires=2e9)
    model.storage_items(state.storage.local_storage.add(origin="https://example.com"), items)
    tab = state.history.tabs.add()
    model.storage_items(tab.session_storage.add(origin="https://example.com"), items)
    return state


@given(dom_strings)
def test_domstring_round_trips_exactly(value: str) -> None:
    message = model.domstring(value)
    parsed = model.DOMString.FromString(message.SerializeToString())
    assert model.text(parsed) == value


def test_domstring_keeps_text_readable_and_surrogates_exact() -> None:
    assert model.domstring("plain 😀\x00").WhichOneof("kind") == "text"
    lone = model.domstring("a\ud800b")
    assert lone.WhichOneof("kind") == "wtf8"
    assert model.text(lone) == "a\ud800b"


@settings(max_examples=60)
@given(st.dictionaries(dom_strings, dom_strings, max_size=8))
def test_state_round_trips_through_container_and_json(items: dict[str, str]) -> None:
    state = _state(items)
    decoded = codec.decode(codec.encode(state))
    assert decoded == state
    assert model.storage_dict(decoded.storage.local_storage[0]) == items
    from_json = codec.from_json(codec.to_json(state))
    assert model.storage_dict(from_json.storage.local_storage[0]) == items
    assert from_json == state


def test_megabyte_values_round_trip() -> None:
    items = {"big": "x" * (3 << 20), "astral": "😀" * 100_000, "lone": "\udfff" * 1000}
    state = _state(items)
    assert model.storage_dict(codec.decode(codec.encode(state)).storage.local_storage[0]) == items


def test_uncompressed_container_round_trips() -> None:
    state = _state({"k": "v"})
    assert codec.decode(codec.encode(state, compress=False)) == state


@settings(max_examples=80)
@given(st.data())
def test_truncated_snapshot_is_rejected(data: st.DataObject) -> None:
    blob = codec.encode(_state({"key": "value" * 50}))
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:cut])


@settings(max_examples=80)
@given(st.data())
def test_flipped_byte_is_rejected_or_harmless(data: st.DataObject) -> None:
    state = _state({"key": "value" * 50})
    blob = bytearray(codec.encode(state))
    index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        decoded = codec.decode(bytes(blob))
    except CorruptSnapshotError:
        return
    # The lz4 frame checksums its content: a change that decodes can only be outside it.
    assert decoded == state


@pytest.mark.parametrize("blob", [b"", b"PSPS", b"NOPE\x01\x01\x00\x00", b"PSPS\x09\x01\x00\x00", b"PSPS\x01\x80\x00\x00"])
def test_not_a_snapshot(blob: bytes) -> None:
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob)


def test_bad_json_is_a_snapshot_error() -> None:
    with pytest.raises(SnapshotError):
        codec.from_json('{"storage": {"cookies": "no"}}')
    with pytest.raises(SnapshotError):
        codec.from_json("not json")
