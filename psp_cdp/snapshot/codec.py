"""Encoding states to bytes and back: the snapshot container and the JSON fallback.

Container, format 3 (all integers big-endian)::

    offset  size  field
    0       4     magic b"PSPS"
    4       1     format version (3)
    5       1     flags: bit 0 = chunk payloads are lz4 frames; bit 1 = chunks are sealed
    6       1     kind: 0 = a whole state (BrowserSessionState), 1 = a delta (StateDelta)
    7       1     cipher: 0 = none, 1 = AES-256-GCM, 2 = ChaCha20-Poly1305
    8       8     key id (the first 8 bytes of the key's fingerprint; zero if not sealed)
    16      16    sealed: salt (random per container); not sealed: a CRC-32 of
                  bytes 0-15, then 12 zero bytes
    32      ...   chunks, each:
                    4     payload length n
                    1     chunk flags: bit 0 = final chunk
                    n     payload

A chunk's payload is a fragment of the message in binary protobuf, as an lz4 frame
with a content checksum (flag bit 0), then, if sealed (flag bit 1), encrypted with
the cipher: ciphertext followed by the 16-byte tag. Sealing uses a key derived for
this container alone, HKDF-SHA256(key, salt, "psp-cdp container v3"), so nonces
never repeat across containers; the nonce of chunk i is 7 zero bytes, i as 4 bytes
and the final flag as 1 byte. The associated data is the 32-byte header, the length
of the context (4 bytes), the context (the store binds session id and version
number here) and again i and the final flag. So a chunk cannot be altered, dropped,
reordered, moved to another container, or the container cut after a chunk, and a
container cannot be passed off as another session's or version's, without the
reader noticing.

The fragments merge (protobuf merge) into the message, in order: the first holds
everything but the bulk lists (a state's IndexedDB records and cache entries, a
delta's items), which follow in chunks of about :data:`CHUNK_SIZE` bytes. So
neither writing nor reading ever holds a second serialised copy of a large state.
Exactly one chunk, the last, has the final flag: a container cut short or with
bytes after it is rejected.

Older formats still read: format 2 is format 3 with an 8-byte header (magic,
version, flags, two zero bytes), never sealed, always a state; format 1 is that
header followed by one payload holding the whole state.

A reader rejects an unknown magic, format, flag, kind or cipher, a chunk that is
truncated, fails its checksum or its tag, with :class:`CorruptSnapshotError`; a
key it does not have with the error the key lookup raises.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import lz4.frame
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from ..errors import CorruptSnapshotError, SnapshotError, UsageError
from .model import BrowserSessionState, StateDelta
from .wire import length_delimited

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "CHUNK_SIZE",
    "MAX_STATE_BYTES",
    "max_state_bytes",
    "CIPHERS",
    "Seal",
    "Header",
    "encode",
    "iter_encode",
    "decode",
    "read_header",
    "reseal",
    "to_json",
    "from_json",
    "is_snapshot",
]

MAGIC = b"PSPS"
FORMAT_VERSION = 3
#: Bytes of serialised bulk items per chunk, about.
CHUNK_SIZE = 4 * 1024 * 1024
#: Most bytes a container may expand to (``$PSP_MAX_STATE_BYTES`` for another bound), and one chunk
#: (so one value) at most a quarter of that: bounds what a hostile container can make a reader allocate.
MAX_STATE_BYTES = 1024 * 1024 * 1024


def max_state_bytes() -> int:
    """``$PSP_MAX_STATE_BYTES`` when it is a number of bytes above 0, else :data:`MAX_STATE_BYTES`."""
    try:
        value = int(os.environ.get("PSP_MAX_STATE_BYTES", ""))
    except ValueError:
        return MAX_STATE_BYTES
    return value if value > 0 else MAX_STATE_BYTES


#: Cipher names, by their number in the header.
CIPHERS = {0: "none", 1: "aes-256-gcm", 2: "chacha20-poly1305"}
_CIPHER_IDS = {name: number for number, name in CIPHERS.items()}
_AEAD = {"aes-256-gcm": AESGCM, "chacha20-poly1305": ChaCha20Poly1305}
_HEADER_V2 = struct.Struct(">4sBBH")
_HEADER = struct.Struct(">4sBBBB8s16s")
_CHUNK = struct.Struct(">IB")
_NONCE = struct.Struct(">7xIB")
_AAD_CHUNK = struct.Struct(">IB")
_FLAG_LZ4 = 0x01
_FLAG_SEALED = 0x02
_FINAL = 0x01
_KINDS: dict[int, type[Message]] = {0: BrowserSessionState, 1: StateDelta}
_KDF_INFO = b"psp-cdp container v3"
#: Where the bulk lists are: (field of the top message holding them or None, their names).
_BULK: dict[type[Message], tuple[str | None, tuple[str, ...]]] = {
    BrowserSessionState: ("storage", ("indexed_db_records", "cache_entries")),
    StateDelta: (None, ("items",)),
}

#: Looks a key up by its id (16 hex digits); raises a PspError if it is not there.
KeyLookup = Callable[[str], bytes]


@dataclass(frozen=True)
class Seal:
    """How to seal a container: the cipher and the key (with its id)."""

    key_id: str
    key: bytes
    cipher: str = "aes-256-gcm"

    def __post_init__(self) -> None:
        if self.cipher not in _AEAD:
            raise UsageError(f"unknown cipher {self.cipher!r}: use {' or '.join(_AEAD)}")
        if len(self.key) != 32:
            raise UsageError("a sealing key is 32 bytes")
        if len(bytes.fromhex(self.key_id)) != 8:
            raise UsageError(f"invalid key id {self.key_id!r}")


@dataclass(frozen=True)
class Header:
    """What a container's header says, readable without any key."""

    format: int
    compressed: bool
    kind: str
    cipher: str
    key_id: str | None
    size: int


def read_header(data: bytes | memoryview) -> Header:
    """The header of container bytes; :class:`CorruptSnapshotError` if it is not one."""
    if len(data) < _HEADER_V2.size:
        raise CorruptSnapshotError(f"truncated snapshot: {len(data)} bytes, not even a header")
    magic, version, flags = bytes(data[:4]), data[4], data[5]
    if magic != MAGIC:
        raise CorruptSnapshotError("not a psp snapshot (bad magic)")
    if version in (1, 2):
        if flags & ~_FLAG_LZ4:
            raise CorruptSnapshotError(f"unknown snapshot flags {flags:#x}")
        return Header(version, bool(flags & _FLAG_LZ4), "full", "none", None, _HEADER_V2.size)
    if version != FORMAT_VERSION:
        raise CorruptSnapshotError(f"unsupported snapshot format version {version}")
    if len(data) < _HEADER.size:
        raise CorruptSnapshotError(f"truncated snapshot: {len(data)} bytes, not even a header")
    _, _, flags, kind, cipher, key_id, _ = _HEADER.unpack_from(data)
    if flags & ~(_FLAG_LZ4 | _FLAG_SEALED):
        raise CorruptSnapshotError(f"unknown snapshot flags {flags:#x}")
    if kind not in _KINDS:
        raise CorruptSnapshotError(f"unknown snapshot kind {kind}")
    if cipher not in CIPHERS or (cipher != 0) != bool(flags & _FLAG_SEALED):
        raise CorruptSnapshotError(f"unknown or inconsistent cipher {cipher}")
    if not cipher and bytes(data[16:32]) != zlib.crc32(bytes(data[:16])).to_bytes(4, "big") + bytes(12):
        raise CorruptSnapshotError("damaged snapshot header (checksum mismatch)")
    return Header(
        version,
        bool(flags & _FLAG_LZ4),
        "delta" if kind == 1 else "full",
        CIPHERS[cipher],
        key_id.hex() if cipher else None,
        _HEADER.size,
    )


def is_snapshot(data: bytes) -> bool:
    """Whether ``data`` starts like a snapshot container."""
    return data[:4] == MAGIC


# -- writing -------------------------------------------------------------------


def encode(message: Message, *, seal: Seal | None = None, context: bytes = b"", compress: bool = True) -> bytes:
    """The container bytes for a state or a delta."""
    return b"".join(iter_encode(message, seal=seal, context=context, compress=compress))


def iter_encode(
    message: Message, *, seal: Seal | None = None, context: bytes = b"", compress: bool = True
) -> Iterator[bytes]:
    """The container bytes for a state or a delta, piece by piece (header, then each chunk)."""
    kind = next((k for k, cls in _KINDS.items() if isinstance(message, cls)), None)
    if kind is None:
        raise SnapshotError(f"cannot put a {type(message).__name__} in a snapshot container")
    header = _header(kind, compress, seal)
    sealer = _Sealer(seal.cipher, seal.key, header, context) if seal else None
    yield header
    fragments = _fragments(message)
    fragment = next(fragments)
    index = 0
    for following in fragments:
        yield _chunk(fragment, compress, sealer, index, final=False)
        fragment, index = following, index + 1
    yield _chunk(fragment, compress, sealer, index, final=True)


def _header(kind: int, compress: bool, seal: Seal | None) -> bytes:
    flags = (_FLAG_LZ4 if compress else 0) | (_FLAG_SEALED if seal else 0)
    if seal is None:
        start = _HEADER.pack(MAGIC, FORMAT_VERSION, flags, kind, 0, bytes(8), bytes(16))[:16]
        return start + zlib.crc32(start).to_bytes(4, "big") + bytes(12)
    key_id = bytes.fromhex(seal.key_id)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, flags, kind, _CIPHER_IDS[seal.cipher], key_id, os.urandom(16))


class _Sealer:
    """Seals and opens the chunks of one container."""

    def __init__(self, cipher: str, key: bytes, header: bytes, context: bytes) -> None:
        salt = header[16:32]
        chunk_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_KDF_INFO).derive(key)
        self._aead = _AEAD[cipher](chunk_key)
        self._aad = header + struct.pack(">I", len(context)) + context

    def seal(self, payload: bytes, index: int, final: bool) -> bytes:
        return self._aead.encrypt(_NONCE.pack(index, final), payload, self._aad + _AAD_CHUNK.pack(index, final))

    def open(self, payload: bytes | memoryview, index: int, final: bool) -> bytes:
        return self._aead.decrypt(_NONCE.pack(index, final), bytes(payload), self._aad + _AAD_CHUNK.pack(index, final))


def _chunk(fragment: bytes, compress: bool, sealer: _Sealer | None, index: int, *, final: bool) -> bytes:
    if compress:
        fragment = lz4.frame.compress(fragment, content_checksum=True, store_size=True)
    if sealer is not None:
        fragment = sealer.seal(fragment, index, final)
    return _CHUNK.pack(len(fragment), _FINAL if final else 0) + fragment


def _fragments(message: Message) -> Iterator[bytes]:
    """Serialised fragments whose merge is ``message``: the light part, then the bulk lists in slices."""
    holder_name, bulk = _BULK[type(message)]
    holder = getattr(message, holder_name) if holder_name else message
    light = type(message)()
    _copy_fields(message, light, skip=(holder_name,) if holder_name else bulk)
    if holder_name is None:
        yield light.SerializeToString(deterministic=True)
        wrap: Callable[[bytes], bytes] = lambda b: b  # noqa: E731
    else:
        light_holder = type(holder)()
        _copy_fields(holder, light_holder, skip=bulk)
        number = message.DESCRIPTOR.fields_by_name[holder_name].number
        yield light.SerializeToString(deterministic=True) + length_delimited(
            number, light_holder.SerializeToString(deterministic=True)
        )
        wrap = lambda b: length_delimited(number, b)  # noqa: E731
    for name in bulk:
        field_number = holder.DESCRIPTOR.fields_by_name[name].number
        parts: list[bytes] = []
        size = 0
        for item in getattr(holder, name):
            parts.append(length_delimited(field_number, item.SerializeToString(deterministic=True)))
            size += len(parts[-1])
            if size >= CHUNK_SIZE:
                yield wrap(b"".join(parts))
                parts, size = [], 0
        if parts:
            yield wrap(b"".join(parts))


def _copy_fields(source: Message, target: Message, *, skip: tuple[str | None, ...]) -> None:
    """Copy every set field of ``source`` but those named in ``skip`` into ``target``."""
    for field, value in source.ListFields():
        if field.name in skip:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if field.message_type.fields_by_name["value"].message_type is not None:
                    getattr(target, field.name)[key].CopyFrom(item)
                else:
                    getattr(target, field.name)[key] = item
        elif field.is_repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)




# -- reading -------------------------------------------------------------------


def decode(data: bytes | memoryview, *, keys: KeyLookup | None = None, context: bytes = b"") -> Message:
    """The state (or delta) held by container bytes.

    :class:`CorruptSnapshotError` if they are damaged or were sealed for another
    context; a sealed container needs ``keys``.
    """
    header = read_header(data)
    message = _KINDS[1 if header.kind == "delta" else 0]()
    budget = _Budget(max_state_bytes())
    if header.format == 1:
        _merge(message, data[header.size :], header.compressed, None, 0, True, budget)
        return message
    sealer = None
    if header.cipher != "none":
        if keys is None:
            raise CorruptSnapshotError(f"the snapshot is sealed with key {header.key_id}, and no keyring was given")
        sealer = _Sealer(header.cipher, keys(header.key_id or ""), bytes(data[:32]), context)
    for index, payload, final in _chunks(data, header.size):
        _merge(message, payload, header.compressed, sealer, index, final, budget)
    return message


class _Budget:
    """What a container may still expand to; a chunk may take a quarter of the whole at most."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise CorruptSnapshotError(f"the snapshot expands past {self.total} bytes (PSP_MAX_STATE_BYTES); not read")

    @property
    def chunk(self) -> int:
        return max(1, min(self.left, self.total // 4))


def _chunks(data: bytes | memoryview, offset: int) -> Iterator[tuple[int, memoryview, bool]]:
    """(index, payload, final) of each chunk after ``offset``; checks the framing."""
    view = memoryview(data)
    index = 0
    while True:
        if offset + _CHUNK.size > len(view):
            raise CorruptSnapshotError("truncated snapshot: it ends before its final chunk")
        length, chunk_flags = _CHUNK.unpack_from(view, offset)
        if chunk_flags & ~_FINAL:
            raise CorruptSnapshotError(f"unknown chunk flags {chunk_flags:#x} in chunk {index}")
        offset += _CHUNK.size
        if offset + length > len(view):
            raise CorruptSnapshotError("truncated snapshot: a chunk is cut short")
        final = bool(chunk_flags & _FINAL)
        yield index, view[offset : offset + length], final
        offset += length
        index += 1
        if final:
            break
    if offset != len(view):
        raise CorruptSnapshotError(f"{len(view) - offset} unexpected bytes after the final chunk")


def _merge(
    message: Message, payload: bytes | memoryview, compressed: bool, sealer: _Sealer | None, index: int, final: bool,
    budget: _Budget,
) -> None:
    if sealer is not None:
        try:
            payload = sealer.open(payload, index, final)
        except InvalidTag:
            raise CorruptSnapshotError(
                f"chunk {index} fails authentication: the snapshot was altered, or sealed for another session or version"
            ) from None
    if compressed:
        try:
            payload = _decompress(payload, budget.chunk)
        except RuntimeError as exc:
            raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None
    budget.take(len(payload))
    try:
        message.MergeFromString(bytes(payload))
    except DecodeError as exc:
        raise CorruptSnapshotError(f"damaged snapshot payload: {exc}") from None


def _decompress(payload: bytes | memoryview, limit: int) -> bytes:
    """The frame's bytes; CorruptSnapshotError when they are more than ``limit`` (never more is allocated),
    RuntimeError when the frame is damaged."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    out = decompressor.decompress(payload, max_length=limit + 1)
    if len(out) > limit:
        raise CorruptSnapshotError(f"a chunk of the snapshot expands past {limit} bytes (a quarter of PSP_MAX_STATE_BYTES); not read")
    if not decompressor.eof:
        raise RuntimeError("truncated lz4 frame")
    if decompressor.unused_data:
        raise RuntimeError("trailing bytes after the lz4 frame")
    return out


def reseal(data: bytes, *, keys: KeyLookup, context: bytes, seal: Seal) -> bytes:
    """The same container sealed with ``seal``: chunks are opened and sealed again, never decompressed."""
    header = read_header(data)
    if header.format != FORMAT_VERSION:
        raise SnapshotError(f"only format {FORMAT_VERSION} containers can be resealed (this one is format {header.format})")
    opener = _Sealer(header.cipher, keys(header.key_id or ""), bytes(data[:32]), context) if header.key_id else None
    kind = 1 if header.kind == "delta" else 0
    new_header = _header(kind, header.compressed, seal)
    sealer = _Sealer(seal.cipher, seal.key, new_header, context)
    out = [new_header]
    for index, payload, final in _chunks(data, header.size):
        if opener is not None:
            try:
                payload = opener.open(payload, index, final)
            except InvalidTag:
                raise CorruptSnapshotError(f"chunk {index} fails authentication: the snapshot was altered") from None
        sealed = sealer.seal(bytes(payload), index, final)
        out.append(_CHUNK.pack(len(sealed), _FINAL if final else 0) + sealed)
    return b"".join(out)


# -- JSON ------------------------------------------------------------------------


def to_json(state: BrowserSessionState) -> str:
    """Canonical protobuf JSON for ``state``."""
    return json_format.MessageToJson(state, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def from_json(text: str) -> BrowserSessionState:
    """Parse canonical protobuf JSON; :class:`SnapshotError` names what is wrong."""
    state = BrowserSessionState()
    try:
        json_format.Parse(text, state)
    except json_format.ParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "not valid"
        raise SnapshotError(f"not a PSP session in JSON: {first[:300]}") from None
    return state

