"""Encoding states to bytes and back: the snapshot container and the JSON fallback.

Container, format 1 (all integers big-endian)::

    offset  size  field
    0       4     magic b"PSPS"
    4       1     format version (1)
    5       1     flags: bit 0 = payload is an lz4 frame
    6       2     reserved, zero
    8       ...   payload: a BrowserSessionState in binary protobuf, as an lz4
                  frame with a content checksum (flag bit 0) or raw

A reader rejects an unknown magic or format version, and a payload that is
truncated or fails its checksum, with :class:`CorruptSnapshotError`.
"""

from __future__ import annotations

import struct

import lz4.frame
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from ..errors import CorruptSnapshotError, SnapshotError
from .model import BrowserSessionState

__all__ = ["MAGIC", "FORMAT_VERSION", "encode", "decode", "to_json", "from_json", "is_snapshot"]

MAGIC = b"PSPS"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sBBH")
_FLAG_LZ4 = 0x01


def encode(state: BrowserSessionState, *, compress: bool = True) -> bytes:
    """The container bytes for ``state``."""
    payload = state.SerializeToString()
    flags = 0
    if compress:
        payload = lz4.frame.compress(payload, content_checksum=True, store_size=True)
        flags |= _FLAG_LZ4
    return _HEADER.pack(MAGIC, FORMAT_VERSION, flags, 0) + payload


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
    if version != FORMAT_VERSION:
        raise CorruptSnapshotError(f"unsupported snapshot format version {version}")
    if flags & ~_FLAG_LZ4:
        raise CorruptSnapshotError(f"unknown snapshot flags {flags:#x}")
    payload = data[_HEADER.size :]
    if flags & _FLAG_LZ4:
        try:
            payload = _decompress(payload)
        except RuntimeError as exc:
            raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None
    state = BrowserSessionState()
    try:
        state.ParseFromString(payload)
    except DecodeError as exc:
        raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None
    return state


def _decompress(payload: bytes) -> bytes:
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
