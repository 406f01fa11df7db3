"""Encoding states to bytes and back: the snapshot container and the JSON fallback.

Container, format 2 (all integers big-endian)::

    offset  size  field
    0       4     magic b"PSPS"
    4       1     format version (2)
    5       1     flags: bit 0 = chunk payloads are lz4 frames
    6       2     reserved, zero
    8       ...   chunks, each:
                    4     payload length n
                    1     chunk flags: bit 0 = final chunk
                    n     payload: a BrowserSessionState fragment in binary
                          protobuf, as an lz4 frame with a content checksum
                          (header flag bit 0) or raw

The fragments merge (protobuf merge) into the state, in order: the first holds
everything but the flat lists of IndexedDB records and cache entries, which follow
in chunks of about :data:`CHUNK_SIZE` bytes. So neither writing nor reading ever
holds a second serialised copy of a large state. Exactly one chunk, the last, has
the final flag: a container cut short or with bytes after it is rejected.

Format 1 (read only): the same header with version 1, then one payload holding the
whole state.

A reader rejects an unknown magic or format version, and a payload that is
truncated or fails its checksum, with :class:`CorruptSnapshotError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import lz4.frame
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from ..errors import CorruptSnapshotError, SnapshotError
from .model import BrowserSessionState, StorageState

__all__ = ["MAGIC", "FORMAT_VERSION", "CHUNK_SIZE", "encode", "iter_encode", "decode", "to_json", "from_json", "is_snapshot"]

MAGIC = b"PSPS"
FORMAT_VERSION = 2
#: Bytes of serialised records per chunk, about.
CHUNK_SIZE = 4 * 1024 * 1024
_HEADER = struct.Struct(">4sBBH")
_CHUNK = struct.Struct(">IB")
_FLAG_LZ4 = 0x01
_FINAL = 0x01
_STORAGE_FIELD = BrowserSessionState.DESCRIPTOR.fields_by_name["storage"].number
#: Flat lists of StorageState written in chunks of their own.
_BULK = ("indexed_db_records", "cache_entries")


def encode(state: BrowserSessionState, *, compress: bool = True) -> bytes:
    """The container bytes for ``state``."""
    return b"".join(iter_encode(state, compress=compress))


def iter_encode(state: BrowserSessionState, *, compress: bool = True) -> Iterator[bytes]:
    """The container bytes for ``state``, piece by piece (header, then each chunk)."""
    yield _HEADER.pack(MAGIC, FORMAT_VERSION, _FLAG_LZ4 if compress else 0, 0)
    fragments = _fragments(state)
    fragment = next(fragments)
    for following in fragments:
        yield _chunk(fragment, compress, final=False)
        fragment = following
    yield _chunk(fragment, compress, final=True)


def _chunk(fragment: bytes, compress: bool, *, final: bool) -> bytes:
    if compress:
        fragment = lz4.frame.compress(fragment, content_checksum=True, store_size=True)
    return _CHUNK.pack(len(fragment), _FINAL if final else 0) + fragment


def _fragments(state: BrowserSessionState) -> Iterator[bytes]:
    """Serialised fragments whose merge is ``state``: the light part, then the bulk lists in slices."""
    light = BrowserSessionState()
    for field, value in state.ListFields():
        if field.name == "storage":
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                getattr(light, field.name)[key].CopyFrom(item)
        elif field.message_type is not None:
            getattr(light, field.name).CopyFrom(value)
        else:
            setattr(light, field.name, value)
    storage = StorageState()
    for field, value in state.storage.ListFields():
        if field.name not in _BULK:
            getattr(storage, field.name).extend(value)
    yield light.SerializeToString() + _embedded(_STORAGE_FIELD, storage.SerializeToString())
    for name in _BULK:
        number = StorageState.DESCRIPTOR.fields_by_name[name].number
        parts: list[bytes] = []
        size = 0
        for item in getattr(state.storage, name):
            parts.append(_embedded(number, item.SerializeToString()))
            size += len(parts[-1])
            if size >= CHUNK_SIZE:
                yield _embedded(_STORAGE_FIELD, b"".join(parts))
                parts, size = [], 0
        if parts:
            yield _embedded(_STORAGE_FIELD, b"".join(parts))


def _embedded(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def is_snapshot(data: bytes) -> bool:
    """Whether ``data`` starts like a snapshot container."""
    return data[:4] == MAGIC


def decode(data: bytes) -> BrowserSessionState:
    """The state held by container bytes; :class:`CorruptSnapshotError` if they are damaged."""
    if len(data) < _HEADER.size:
        raise CorruptSnapshotError(f"truncated snapshot: {len(data)} bytes, not even a header")
    magic, version, flags, _ = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSnapshotError("not a psp snapshot (bad magic)")
    if version not in (1, FORMAT_VERSION):
        raise CorruptSnapshotError(f"unsupported snapshot format version {version}")
    if flags & ~_FLAG_LZ4:
        raise CorruptSnapshotError(f"unknown snapshot flags {flags:#x}")
    state = BrowserSessionState()
    if version == 1:
        _merge(state, data[_HEADER.size :], flags)
        return state
    view = memoryview(data)
    offset = _HEADER.size
    while True:
        if offset + _CHUNK.size > len(data):
            raise CorruptSnapshotError("truncated snapshot: it ends before its final chunk")
        length, chunk_flags = _CHUNK.unpack_from(data, offset)
        offset += _CHUNK.size
        if offset + length > len(data):
            raise CorruptSnapshotError("truncated snapshot: a chunk is cut short")
        _merge(state, view[offset : offset + length], flags)
        offset += length
        if chunk_flags & _FINAL:
            break
    if offset != len(data):
        raise CorruptSnapshotError(f"{len(data) - offset} unexpected bytes after the final chunk")
    return state


def _merge(state: BrowserSessionState, payload: bytes | memoryview, flags: int) -> None:
    if flags & _FLAG_LZ4:
        try:
            payload = _decompress(payload)
        except RuntimeError as exc:
            raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None
    try:
        state.MergeFromString(bytes(payload))
    except DecodeError as exc:
        raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None


def _decompress(payload: bytes | memoryview) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    out = decompressor.decompress(payload)
    if not decompressor.eof:
        raise RuntimeError("truncated lz4 frame")
    if decompressor.unused_data:
        raise RuntimeError("trailing bytes after the lz4 frame")
    return out


def to_json(state: BrowserSessionState) -> str:
    """Canonical protobuf JSON for ``state``."""
    return json_format.MessageToJson(state, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def from_json(text: str) -> BrowserSessionState:
    """Parse canonical protobuf JSON; :class:`SnapshotError` names what is wrong."""
    state = BrowserSessionState()
    try:
        json_format.Parse(text, state)
    except json_format.ParseError as exc:
        raise SnapshotError(f"not a PSP session in JSON: {exc}") from None
    return state
