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


def _bulky_state(records: list[bytes], bodies: list[bytes]) -> model.BrowserSessionState:
    state = _state({"k": "v"})
    database = state.storage.indexed_db.add(origin="http://127.0.0.1:1", version=3)
    database.stores.add(id=1, auto_increment=True, key_generator=7)
    for i, value in enumerate(records):
        state.storage.indexed_db_records.add(
            store=1,
            key=model.SerializedValue(encoding="structured-clone-v1", data=str(i).encode()),
            value=model.SerializedValue(encoding="structured-clone-v1", data=value),
        )
    state.storage.cache_storage.add(id=1, origin="http://127.0.0.1:1")
    for body in bodies:
        state.storage.cache_entries.add(cache=1, request_url="http://127.0.0.1:1/x", body=body)
    state.extensions["custom"].data = b"ext"
    return state


@settings(max_examples=40)
@given(
    st.lists(st.binary(max_size=300), max_size=40),
    st.lists(st.binary(max_size=300), max_size=10),
    st.integers(min_value=1, max_value=2000),
    st.booleans(),
)
def test_bulk_lists_are_chunked_and_merge_back_in_order(
    records: list[bytes], bodies: list[bytes], chunk_size: int, compress: bool
) -> None:
    state = _bulky_state(records, bodies)
    original = codec.CHUNK_SIZE
    codec.CHUNK_SIZE = chunk_size
    try:
        pieces = list(codec.iter_encode(state, compress=compress))
    finally:
        codec.CHUNK_SIZE = original
    assert codec.decode(b"".join(pieces)) == state
    if records and chunk_size < 50:
        assert len(pieces) > 2  # header, the light part, and record chunks


@settings(max_examples=60)
@given(st.data())
def test_a_chunked_snapshot_cut_anywhere_is_rejected(data: st.DataObject) -> None:
    state = _bulky_state([b"x" * 100] * 30, [b"y" * 50] * 3)
    original = codec.CHUNK_SIZE
    codec.CHUNK_SIZE = 500
    try:
        blob = codec.encode(state)
    finally:
        codec.CHUNK_SIZE = original
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:cut])
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob + b"\x00")


def test_format_1_snapshots_still_read() -> None:
    import lz4.frame

    state = _state({"old": "format"})
    payload = lz4.frame.compress(state.SerializeToString(), content_checksum=True, store_size=True)
    assert codec.decode(b"PSPS\x01\x01\x00\x00" + payload) == state
