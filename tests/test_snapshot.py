"""The data model and snapshot codec: no browser, no I/O.

Property-based: any DOMString, any state built from them, survives encode/decode and
the JSON fallback bit-exactly; damaged bytes give CorruptSnapshotError, never a
wrong state.
"""

from __future__ import annotations

import contextlib
import string
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psp_cdp.errors import CorruptSnapshotError, SnapshotError, StoreError, UsageError
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


# -- sealed containers ---------------------------------------------------------------------

_KEY_A = bytes(range(32))
_KEY_ID_A = "00112233aabbccdd"
_KEY_B = bytes(range(100, 132))
_KEY_ID_B = "ffeeddcc44332211"
_CONTEXT = b"psp session 0f9c2d version 3"
_CIPHERS = ["aes-256-gcm", "chacha20-poly1305"]
#: A keyring holding key A: any other id is a KeyError, as a lookup raises for a key it lacks.
_keys_a = {_KEY_ID_A: _KEY_A}.__getitem__
_keys_b = {_KEY_ID_B: _KEY_B}.__getitem__


def _any_id_is_a(key_id: str) -> bytes:
    """A keyring that answers key A whatever id it is asked for: so a damaged key id in a
    header reaches the cipher, which must notice it (the header is authenticated)."""
    return _KEY_A


@contextlib.contextmanager
def _chunk_size(size: int) -> Iterator[None]:
    original = codec.CHUNK_SIZE
    codec.CHUNK_SIZE = size
    try:
        yield
    finally:
        codec.CHUNK_SIZE = original


def _encode(  # type: ignore[no-untyped-def]
    message, *, cipher: str | None, compress: bool = True, chunk_size: int = 300, context: bytes = _CONTEXT
) -> bytes:
    """Container bytes, sealed with key A when ``cipher`` is given, in chunks of about ``chunk_size`` bytes."""
    seal = codec.Seal(_KEY_ID_A, _KEY_A, cipher) if cipher else None
    with _chunk_size(chunk_size):
        return codec.encode(message, seal=seal, context=context, compress=compress)


def _frames(blob: bytes, offset: int = 32) -> list[tuple[int, int]]:
    """(start, end) of each chunk of a container, parsed from its framing: 4-byte length, 1 flag byte, payload."""
    frames = []
    while offset < len(blob):
        length, _ = struct.unpack_from(">IB", blob, offset)
        frames.append((offset, offset + 5 + length))
        offset += 5 + length
    assert offset == len(blob)
    return frames


def _chunked_state() -> model.BrowserSessionState:
    return _bulky_state([b"record %d " % i + b"x" * 90 for i in range(12)], [b"y" * 50] * 3)


def _flip(blob: bytes, offset: int, bit: int) -> bytes:
    damaged = bytearray(blob)
    damaged[offset] ^= 1 << bit
    return bytes(damaged)


@settings(max_examples=40)
@given(
    st.lists(st.binary(max_size=300), max_size=30),
    st.lists(st.binary(max_size=300), max_size=6),
    st.integers(min_value=1, max_value=1500),
    st.sampled_from(_CIPHERS),
    st.booleans(),
    st.binary(max_size=40),
)
def test_sealed_containers_round_trip(
    records: list[bytes], bodies: list[bytes], chunk_size: int, cipher: str, compress: bool, context: bytes
) -> None:
    state = _bulky_state(records, bodies)
    blob = _encode(state, cipher=cipher, compress=compress, chunk_size=chunk_size, context=context)
    assert codec.decode(blob, keys=_keys_a, context=context) == state
    header = codec.read_header(blob)
    assert (header.format, header.kind, header.cipher, header.key_id, header.compressed, header.size) == (
        3, "full", cipher, _KEY_ID_A, compress, 32,
    )
    if len(records) > 1 and chunk_size < 100:
        assert len(_frames(blob)) > 2  # the light part, then records in several chunks
    delta = model.StateDelta(parent=4, parent_digest=b"p" * 16, digest=b"d" * 16, removed=[b"x", b""])
    delta.items.add(key=b"k", value=b"v", after=b"")
    delta.items.add(key=b"k2", value=b"".join(records))
    delta_blob = _encode(delta, cipher=cipher, compress=compress, chunk_size=chunk_size, context=context)
    assert codec.read_header(delta_blob).kind == "delta"
    assert codec.decode(delta_blob, keys=_keys_a, context=context) == delta


def _framing_offsets(blob: bytes) -> list[int]:
    return [*range(32), *(start + i for start, _ in _frames(blob) for i in range(5))]


@settings(max_examples=150)
@given(st.sampled_from(_CIPHERS), st.booleans(), st.data())
def test_any_bit_flipped_in_a_sealed_container_is_detected(cipher: str, compress: bool, data: st.DataObject) -> None:
    blob = _encode(_chunked_state(), cipher=cipher, compress=compress)
    frames = _frames(blob)
    offset = data.draw(
        st.one_of(
            st.integers(0, len(blob) - 1),  # anywhere
            st.integers(0, 31),  # the header
            st.sampled_from([start + i for start, _ in frames for i in range(4)]),  # a chunk's length
            st.sampled_from([start + 4 for start, _ in frames]),  # a chunk's flags
        ),
        label="offset",
    )
    bit = data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(CorruptSnapshotError):
        codec.decode(_flip(blob, offset, bit), keys=_any_id_is_a, context=_CONTEXT)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("cipher", _CIPHERS)
def test_every_bit_of_a_sealed_containers_framing_is_authenticated(cipher: str, compress: bool) -> None:
    """Every bit of the header and of every chunk's length and flags, flipped in turn."""
    blob = _encode(_chunked_state(), cipher=cipher, compress=compress)
    undetected = []
    for offset in _framing_offsets(blob):
        for bit in range(8):
            try:
                codec.decode(_flip(blob, offset, bit), keys=_any_id_is_a, context=_CONTEXT)
            except CorruptSnapshotError:
                continue
            undetected.append((offset, bit))
    assert undetected == [], f"flips decoded without error, (offset, bit): {undetected}; chunks at {_frames(blob)}"


@settings(max_examples=80)
@given(st.sampled_from(_CIPHERS), st.booleans(), st.data())
def test_a_sealed_container_cut_or_extended_is_rejected(cipher: str, compress: bool, data: st.DataObject) -> None:
    blob = _encode(_chunked_state(), cipher=cipher, compress=compress)
    cut = data.draw(st.one_of(st.integers(0, len(blob) - 1), st.sampled_from([end for _, end in _frames(blob)][:-1])))
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:cut], keys=_keys_a, context=_CONTEXT)
    extra = data.draw(st.binary(min_size=1, max_size=64))
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob + extra, keys=_keys_a, context=_CONTEXT)


def _rearranged(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """The container with whole chunks dropped, duplicated, swapped or moved."""
    frames = _frames(blob)
    head, chunks = blob[:32], [blob[start:end] for start, end in frames]
    for i in range(len(chunks)):
        yield f"drop {i}", head + b"".join(chunks[:i] + chunks[i + 1 :])
        yield f"duplicate {i}", head + b"".join(chunks[: i + 1] + chunks[i:])
        yield f"repeat {i} at the end", head + b"".join(chunks + [chunks[i]])
        for j in range(i + 1, len(chunks)):
            swapped = list(chunks)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            yield f"swap {i} {j}", head + b"".join(swapped)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("cipher", _CIPHERS)
def test_dropped_duplicated_swapped_or_moved_chunks_are_rejected(cipher: str, compress: bool) -> None:
    state = _chunked_state()
    blob = _encode(state, cipher=cipher, compress=compress)
    assert len(_frames(blob)) >= 4
    for how, damaged in _rearranged(blob):
        with pytest.raises(CorruptSnapshotError):
            codec.decode(damaged, keys=_keys_a, context=_CONTEXT)
            pytest.fail(how)
    # The same chunk from another container of the same state, key and context (another salt).
    other = _encode(state, cipher=cipher, compress=compress)
    assert other != blob and _frames(other) == _frames(blob)
    for start, end in _frames(blob):
        with pytest.raises(CorruptSnapshotError):
            codec.decode(blob[:start] + other[start:end] + blob[end:], keys=_keys_a, context=_CONTEXT)
    # Another container's header over these chunks.
    with pytest.raises(CorruptSnapshotError):
        codec.decode(other[:32] + blob[32:], keys=_keys_a, context=_CONTEXT)


@settings(max_examples=150)
@given(st.data())
def test_any_bit_flipped_in_a_compressed_unsealed_container_is_rejected_or_harmless(data: st.DataObject) -> None:
    """Flips after the header (every bit of the header is tried by the test below)."""
    state = _chunked_state()
    blob = _encode(state, cipher=None)
    frames = _frames(blob)
    offset = data.draw(
        st.one_of(
            st.integers(32, len(blob) - 1),
            st.sampled_from([start + i for start, _ in frames for i in range(5)]),
        ),
        label="offset",
    )
    try:
        decoded = codec.decode(_flip(blob, offset, data.draw(st.integers(0, 7), label="bit")))
    except CorruptSnapshotError:
        return
    assert decoded == state


def test_every_bit_of_a_compressed_unsealed_containers_framing_is_rejected_or_harmless() -> None:
    """The unsealed header and framing carry no checksum: a flip there must still never give another message."""
    state = _chunked_state()
    blob = _encode(state, cipher=None)
    wrong = []
    for offset in _framing_offsets(blob):
        for bit in range(8):
            try:
                decoded = codec.decode(_flip(blob, offset, bit))
            except CorruptSnapshotError:
                continue
            if decoded != state:
                wrong.append((offset, bit, type(decoded).__name__))
    assert wrong == [], f"flips that decoded to another message, (offset, bit, type): {wrong}"


@settings(max_examples=60)
@given(st.data())
def test_a_compressed_unsealed_container_cut_or_extended_is_rejected(data: st.DataObject) -> None:
    blob = _encode(_chunked_state(), cipher=None)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:cut])
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob + data.draw(st.binary(min_size=1, max_size=64)))


# -- keys and contexts ------------------------------------------------------------------------------


@pytest.mark.parametrize("cipher", _CIPHERS)
def test_a_sealed_container_opens_only_with_its_key_and_context(cipher: str) -> None:
    state = _chunked_state()
    blob = _encode(state, cipher=cipher)
    assert codec.decode(blob, keys=_keys_a, context=_CONTEXT) == state
    for context in (
        b"psp session 0f9c2e version 3",  # another session
        b"psp session 0f9c2d version 4",  # another version
        b"",
        _CONTEXT + b"\x00",
    ):
        with pytest.raises(CorruptSnapshotError):
            codec.decode(blob, keys=_keys_a, context=context)
    # The right key id, the wrong key bytes.
    wrong_key = bytes(b ^ 1 for b in _KEY_A)
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob, keys={_KEY_ID_A: wrong_key}.__getitem__, context=_CONTEXT)


def test_a_missing_key_is_the_lookups_error() -> None:
    blob = _encode(_chunked_state(), cipher="aes-256-gcm")

    def lookup(key_id: str) -> bytes:
        raise StoreError(f"no key {key_id} in the keyring")

    with pytest.raises(StoreError, match=_KEY_ID_A):
        codec.decode(blob, keys=lookup, context=_CONTEXT)
    with pytest.raises(KeyError):
        codec.decode(blob, keys=_keys_b, context=_CONTEXT)


def test_a_sealed_container_without_keys_names_its_key() -> None:
    blob = _encode(_chunked_state(), cipher="chacha20-poly1305")
    with pytest.raises(CorruptSnapshotError, match=_KEY_ID_A):
        codec.decode(blob)
    with pytest.raises(CorruptSnapshotError, match=_KEY_ID_A):
        codec.decode(blob, context=_CONTEXT)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("cipher", [*_CIPHERS, None])
def test_read_header_needs_no_key(cipher: str | None, compress: bool) -> None:
    state_blob = _encode(_chunked_state(), cipher=cipher, compress=compress)
    delta_blob = _encode(model.StateDelta(parent=1), cipher=cipher, compress=compress)
    for blob, kind in ((state_blob, "full"), (delta_blob, "delta")):
        header = codec.read_header(blob)
        assert header == codec.Header(
            format=3,
            compressed=compress,
            kind=kind,
            cipher=cipher or "none",
            key_id=_KEY_ID_A if cipher else None,
            size=32,
        )
        assert codec.is_snapshot(blob)


@settings(max_examples=30)
@given(st.sampled_from(_CIPHERS), st.sampled_from([*_CIPHERS, None]), st.booleans())
def test_reseal_moves_a_container_to_another_key(new_cipher: str, old_cipher: str | None, compress: bool) -> None:
    state = _chunked_state()
    blob = _encode(state, cipher=old_cipher, compress=compress)
    resealed = codec.reseal(blob, keys=_keys_a, context=_CONTEXT, seal=codec.Seal(_KEY_ID_B, _KEY_B, new_cipher))
    header = codec.read_header(resealed)
    assert (header.key_id, header.cipher, header.compressed, header.kind) == (_KEY_ID_B, new_cipher, compress, "full")
    assert codec.decode(resealed, keys=_keys_b, context=_CONTEXT) == state
    # Not under the old key, whatever id it is asked for; not in another context.
    with pytest.raises(CorruptSnapshotError):
        codec.decode(resealed, keys=_any_id_is_a, context=_CONTEXT)
    with pytest.raises(KeyError):
        codec.decode(resealed, keys=_keys_a, context=_CONTEXT)
    with pytest.raises(CorruptSnapshotError):
        codec.decode(resealed, keys=_keys_b, context=_CONTEXT + b"1")
    with pytest.raises(CorruptSnapshotError):
        codec.decode(resealed[:-1], keys=_keys_b, context=_CONTEXT)


@pytest.mark.parametrize("cipher", _CIPHERS)
def test_tampering_after_a_reseal_is_detected(cipher: str) -> None:
    """One bit flipped in every byte of a resealed container in turn (bit ``offset % 8``)."""
    blob = _encode(_chunked_state(), cipher="aes-256-gcm" if cipher != "aes-256-gcm" else "chacha20-poly1305")
    resealed = codec.reseal(blob, keys=_keys_a, context=_CONTEXT, seal=codec.Seal(_KEY_ID_B, _KEY_B, cipher))
    undetected = []
    for offset in range(len(resealed)):
        try:
            codec.decode(_flip(resealed, offset, offset % 8), keys=lambda key_id: _KEY_B, context=_CONTEXT)
        except CorruptSnapshotError:
            continue
        undetected.append(offset)
    assert undetected == [], f"flips decoded without error at offsets {undetected}; chunks at {_frames(resealed)}"


def test_reseal_checks_what_it_opens() -> None:
    state = _chunked_state()
    seal_b = codec.Seal(_KEY_ID_B, _KEY_B)
    blob = _encode(state, cipher="aes-256-gcm")
    with pytest.raises(CorruptSnapshotError):
        codec.reseal(blob, keys=_keys_a, context=b"another", seal=seal_b)
    with pytest.raises(CorruptSnapshotError):
        codec.reseal(_flip(blob, len(blob) - 3, 0), keys=_keys_a, context=_CONTEXT, seal=seal_b)
    with pytest.raises(CorruptSnapshotError):
        codec.reseal(blob[:-1], keys=_keys_a, context=_CONTEXT, seal=seal_b)
    with pytest.raises(KeyError):
        codec.reseal(blob, keys=_keys_b, context=_CONTEXT, seal=seal_b)
    with pytest.raises(SnapshotError):
        codec.reseal(_format_2(state, compress=True), keys=_keys_a, context=_CONTEXT, seal=seal_b)


@settings(max_examples=30)
@given(st.text(alphabet=string.ascii_letters, min_size=40, max_size=40), st.sampled_from(_CIPHERS), st.booleans())
def test_a_secret_never_appears_in_a_sealed_container(secret: str, cipher: str, compress: bool) -> None:
    state = _state({"token": secret, secret: "as a key"}, cookie_value=secret)
    state.storage.indexed_db_records.add(value=model.SerializedValue(data=secret.encode()))
    state.auth.tokens.add(type="Bearer", value=secret)
    plain = _encode(state, cipher=None, compress=False)
    assert secret.encode() in plain  # so the check below means something
    blob = _encode(state, cipher=cipher, compress=compress)
    assert secret.encode() not in blob
    assert secret[:12].encode() not in blob
    assert codec.decode(blob, keys=_keys_a, context=_CONTEXT) == state


def test_seal_rejects_bad_parameters() -> None:
    with pytest.raises(UsageError):
        codec.Seal(_KEY_ID_A, _KEY_A, "rot13")
    with pytest.raises(UsageError):
        codec.Seal(_KEY_ID_A, _KEY_A[:16])
    with pytest.raises(UsageError):
        codec.Seal("00", _KEY_A)


# -- format 2 ---------------------------------------------------------------------------------------


def _format_2(state: model.BrowserSessionState, *, compress: bool) -> bytes:
    """A format 2 container made by hand: the 8-byte header, then chunks (light part, records, entries)."""
    import lz4.frame

    light = model.BrowserSessionState()
    light.CopyFrom(state)
    light.storage.ClearField("indexed_db_records")
    light.storage.ClearField("cache_entries")
    records = model.BrowserSessionState()
    records.storage.indexed_db_records.extend(state.storage.indexed_db_records)
    entries = model.BrowserSessionState()
    entries.storage.cache_entries.extend(state.storage.cache_entries)
    fragments = [light.SerializeToString(), records.SerializeToString(), entries.SerializeToString()]
    out = [b"PSPS\x02" + (b"\x01" if compress else b"\x00") + b"\x00\x00"]
    for i, fragment in enumerate(fragments):
        if compress:
            fragment = lz4.frame.compress(fragment, content_checksum=True, store_size=True)
        out.append(struct.pack(">IB", len(fragment), 1 if i == len(fragments) - 1 else 0) + fragment)
    return b"".join(out)


@pytest.mark.parametrize("compress", [True, False])
def test_format_2_snapshots_still_read(compress: bool) -> None:
    state = _chunked_state()
    blob = _format_2(state, compress=compress)
    header = codec.read_header(blob)
    assert (header.format, header.kind, header.cipher, header.key_id, header.compressed, header.size) == (
        2, "full", "none", None, compress, 8,
    )
    assert codec.decode(blob) == state
    assert codec.decode(blob, keys=_keys_a, context=b"ignored: not sealed") == state
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:-1])
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob + b"\x00")
    with pytest.raises(CorruptSnapshotError):
        codec.decode(blob[:5] + b"\x02" + blob[6:])  # format 2 cannot be sealed
