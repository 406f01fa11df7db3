"""Differences between states, item by item: what a delta version stores.

A state is seen as an ordered list of *items*, ``(key, value)`` pairs: the key says
what the item is, the value is its serialised content. :func:`items` takes a state
apart and :func:`compose` puts it back together, exactly (order and presence of
every field included). The items are:

=====  ==========================================================  ===============
kind   key parts                                                   component
=====  ==========================================================  ===============
``F``  a top-level field number (value: a state holding just it)   by field
``P``  storage / history is present, though maybe empty            (none)
``C``  cookie: name, domain, path, partition key                   cookies
``L``  localStorage of an origin: origin, storage key              local_storage
``l``  one localStorage key: origin, storage key, key              local_storage
``D``  IndexedDB database schema: origin, storage key, name        indexed_db
``R``  one IndexedDB record: database, store name, record key      indexed_db
``K``  CacheStorage cache: origin, storage key, name               cache_storage
``E``  one cache entry: cache, method, request URL                 cache_storage
``T``  a tab (history, sessionStorage, DOM state): its target id   tabs
=====  ==========================================================  ===============

Records and entries are keyed by their database, store and cache names, not by the
numeric ids a capture gives them, so a database added in front does not make every
later record look changed; their ids are filled in again from the schema on
:func:`compose`. Two items with the same key (which a real state does not have)
are told apart by their occurrence.

:func:`diff` compares a parent's :class:`Index` (keys in order and a BLAKE2b hash of
each value) with a child's items and gives a :class:`StateDelta`: the items the
child has that the parent does not, those whose content changed, those that moved,
and the keys of those that went. Its size follows the change, not the state.
:func:`apply` gives the child's items back from the parent's, and checks both
digests, so a delta applied to the wrong parent is an error, never a wrong state.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from ..errors import CorruptSnapshotError
from .model import BrowserSessionState, DeltaItem, DOMString, OriginStorage, StateDelta, text
from .wire import length_delimited, varint

__all__ = [
    "Item",
    "Index",
    "Change",
    "items",
    "compose",
    "index",
    "diff",
    "apply",
    "apply_indexed",
    "compare",
    "summary",
    "delta_changes",
    "component_of",
    "describe",
]

#: One item of a state: (key, serialised value).
Item = tuple[bytes, bytes]

_FIELDS = BrowserSessionState.DESCRIPTOR.fields_by_name
_STORAGE = _FIELDS["storage"].number
_HISTORY = _FIELDS["history"].number
#: The component a top-level field belongs to, for summaries.
_FIELD_COMPONENTS = {
    "auth": "auth",
    "network": "service_workers",
    "recording": "recording",
    "extensions": "extensions",
    "dom": "dom",
}
_KIND_COMPONENTS = {
    b"C": "cookies",
    b"L": "local_storage",
    b"l": "local_storage",
    b"D": "indexed_db",
    b"R": "indexed_db",
    b"K": "cache_storage",
    b"E": "cache_storage",
    b"T": "tabs",
    b"P": "capture",
}


# -- keys ---------------------------------------------------------------------



def _part(part: bytes | str | int) -> bytes:
    if isinstance(part, int):
        part = str(part)
    if isinstance(part, str):
        part = part.encode("utf-8", "surrogatepass")
    size = len(part)
    return (bytes((size,)) if size < 0x80 else varint(size)) + part


def _key(kind: bytes, *parts: bytes | str | int) -> bytes:
    """``kind`` then each part, length-prefixed: unambiguous and cheap to compare.

    :func:`items` adds one more part, the occurrence of this key (0 but for duplicates).
    """
    return kind + b"".join(_part(p) for p in parts)


def _parts(key: bytes) -> list[bytes]:
    """The parts of an item's key: its kind and its occurrence excluded."""
    return _all_parts(key)[:-1]


def _all_parts(key: bytes) -> list[bytes]:
    parts, offset = [], 1
    while offset < len(key):
        length, shift = 0, 0
        while True:
            byte = key[offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        parts.append(key[offset : offset + length])
        offset += length
    return parts



# -- taking a state apart and back together -------------------------------------------


def items(state: BrowserSessionState) -> list[Item]:
    """The items of ``state``, in an order :func:`compose` turns back into it exactly."""
    out: list[Item] = []
    seen: dict[bytes, int] = {}

    def add(key: bytes, value: bytes) -> None:
        count = seen.get(key, 0)
        seen[key] = count + 1
        out.append((key + _part(count), value))

    for fd, value in state.ListFields():
        if fd.number in (_STORAGE, _HISTORY):
            add(_key(b"P", fd.number), length_delimited(fd.number, b""))
            continue
        single = BrowserSessionState()
        single.MergeFrom(_only(state, fd.name))
        add(_key(b"F", fd.number), single.SerializeToString(deterministic=True))
    storage = state.storage
    for cookie in storage.cookies:
        partition = cookie.partition_key.SerializeToString(deterministic=True)
        add(_key(b"C", cookie.name, cookie.domain, cookie.path, partition), _ser(cookie))
    for origin_storage in storage.local_storage:
        parent = (origin_storage.origin, origin_storage.storage_key)
        header = OriginStorage(origin=origin_storage.origin, storage_key=origin_storage.storage_key)
        add(_key(b"L", *parent), _ser(header))
        for item in origin_storage.items:
            add(_key(b"l", *parent, _ser(item.key)), _ser(item))
    stores = _unique_names(
        (store.id, (db.origin, db.storage_key, _ser(db.name), _ser(store.name)))
        for db in storage.indexed_db
        for store in db.stores
    )
    for db in storage.indexed_db:
        add(_key(b"D", db.origin, db.storage_key, _ser(db.name)), _ser(db))
    caches = _unique_names((c.id, (c.origin, c.storage_key, _ser(c.name))) for c in storage.cache_storage)
    for cache in storage.cache_storage:
        add(_key(b"K", cache.origin, cache.storage_key, _ser(cache.name)), _ser(cache))
    prefixes: dict[int, bytes] = {}
    for record in storage.indexed_db_records:
        prefix = prefixes.get(record.store)
        if prefix is None:
            name = stores.get(record.store)
            prefix = prefixes[record.store] = _key(b"R", *name) if name else _key(b"R", record.store)
        if record.store in stores:
            add(prefix + _part(_ser(record.key)), _without_id(_ser(record)))
        else:
            add(prefix + _part(_ser(record.key)), _ser(record))
    for entry in storage.cache_entries:
        name = caches.get(entry.cache)
        if name is None:
            add(_key(b"E", entry.cache, entry.request_method, entry.request_url), _ser(entry))
        else:
            add(_key(b"E", *name, entry.request_method, entry.request_url), _without_id(_ser(entry)))
    for position, tab in enumerate(state.history.tabs):
        # A tab is known by its target id, which stays while the tab lives, wherever it is listed.
        add(_key(b"T", tab.target_id) if tab.target_id else _key(b"T", "", position), _ser(tab))
    return out


def _ser(message) -> bytes:  # type: ignore[no-untyped-def]
    return message.SerializeToString(deterministic=True)


def _without_id(serialised: bytes) -> bytes:
    """A record or entry without its field 1 (the store or cache id), which comes first when set."""
    if not serialised or serialised[0] != 0x08:
        return serialised
    offset = 1
    while serialised[offset] & 0x80:
        offset += 1
    return serialised[offset + 1 :]


def _only(state: BrowserSessionState, name: str) -> BrowserSessionState:
    """A state holding just the field ``name`` of ``state``."""
    single = BrowserSessionState()
    value = getattr(state, name)
    fd = _FIELDS[name]
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        for key, item in value.items():
            getattr(single, name)[key].CopyFrom(item)
    elif fd.message_type is not None:
        getattr(single, name).CopyFrom(value)
    else:
        setattr(single, name, value)
    return single


def _unique_names(pairs: Iterable[tuple[int, tuple[bytes | str, ...]]]) -> dict[int, tuple[bytes | str, ...]]:
    """id -> name, for ids with one name that no other id has."""
    by_id: dict[int, list[tuple[bytes | str, ...]]] = {}
    by_name: dict[tuple[bytes | str, ...], set[int]] = {}
    for ident, name in pairs:
        by_id.setdefault(ident, []).append(name)
        by_name.setdefault(name, set()).add(ident)
    return {i: names[0] for i, names in by_id.items() if len(names) == 1 and len(by_name[names[0]]) == 1}


def compose(state_items: Iterable[Item]) -> BrowserSessionState:
    """The state whose items these are; :class:`CorruptSnapshotError` if they cannot be."""
    state = BrowserSessionState()
    storage = state.storage
    local: dict[tuple[bytes, bytes], OriginStorage] = {}
    records: list[tuple[bytes, list[bytes], bytes]] = []
    entries: list[tuple[bytes, list[bytes], bytes]] = []
    try:
        for key, value in state_items:
            kind = key[:1]
            if kind in (b"F", b"P"):
                state.MergeFromString(value)
            elif kind == b"C":
                storage.cookies.add().MergeFromString(value)
            elif kind == b"L":
                origin_storage = storage.local_storage.add()
                origin_storage.MergeFromString(value)
                local[(origin_storage.origin.encode("utf-8", "surrogatepass"), origin_storage.storage_key.encode())] = origin_storage
            elif kind == b"l":
                parts = _parts(key)
                parent = local.get((parts[0], parts[1]))
                if parent is None:
                    raise CorruptSnapshotError("a localStorage item comes before its origin")
                parent.items.add().MergeFromString(value)
            elif kind == b"D":
                storage.indexed_db.add().MergeFromString(value)
            elif kind == b"K":
                storage.cache_storage.add().MergeFromString(value)
            elif kind == b"R":
                records.append((key, value))
            elif kind == b"E":
                entries.append((key, value))
            elif kind == b"T":
                state.history.tabs.add().MergeFromString(value)
            else:
                raise CorruptSnapshotError(f"unknown item kind {kind!r}")
        if records:
            stores = _unique_names(
                (store.id, (db.origin, db.storage_key, _ser(db.name), _ser(store.name)))
                for db in storage.indexed_db
                for store in db.stores
            )
            _add_flat(storage.indexed_db_records, records, b"R", stores, "store", 5)
        if entries:
            caches = _unique_names((c.id, (c.origin, c.storage_key, _ser(c.name))) for c in storage.cache_storage)
            _add_flat(storage.cache_entries, entries, b"E", caches, "cache", 5)
    except DecodeError as exc:
        raise CorruptSnapshotError(f"a damaged item: {exc}") from None
    return state


def _add_flat(target, flat: list[Item], kind: bytes, names: dict[int, tuple[bytes | str, ...]], field: str, named_parts: int) -> None:  # type: ignore[no-untyped-def]
    """Add records (or entries) to ``target``, giving each the id of the store (cache) its key names.

    A key starts with its store's name parts, so the id is found by that prefix; only a
    key that matches none is parsed, to tell a record of an undeclared store (which
    kept its id) from one naming a store the state lacks.
    """
    ids = {_key(kind, *name): ident for ident, name in names.items()}
    lengths = sorted({len(prefix) for prefix in ids}, reverse=True)
    for key, value in flat:
        message = target.add()
        message.MergeFromString(value)
        for length in lengths:
            ident = ids.get(key[:length])
            if ident is not None:
                setattr(message, field, ident)
                break
        else:
            if len(_parts(key)) == named_parts:
                raise CorruptSnapshotError("an item names a database store or cache the state does not have")


# -- indexes, deltas ---------------------------------------------------------------


def _hash(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


@dataclass
class Index:
    """What a delta needs of its parent: item keys in order, a hash of each value, the digest."""

    keys: list[bytes]
    hashes: dict[bytes, bytes]
    digest: bytes


def _digest(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for key, value_hash in pairs:
        digest.update(varint(len(key)))
        digest.update(key)
        digest.update(value_hash)
    return digest.digest()


def index(state_items: list[Item]) -> Index:
    """The :class:`Index` of a state's items."""
    hashes = {key: _hash(value) for key, value in state_items}
    keys = [key for key, _ in state_items]
    return Index(keys, hashes, _digest((key, hashes[key]) for key in keys))


def diff(parent: Index, child: list[Item], *, parent_version: int = 0, child_index: Index | None = None) -> StateDelta:
    """What turns the parent's items into ``child`` (whose :func:`index` may be given, so it is not made again)."""
    child_index = child_index or index(child)
    child_hashes = child_index.hashes
    delta = StateDelta(parent=parent_version, parent_digest=parent.digest, digest=child_index.digest)
    delta.removed.extend(key for key in parent.keys if key not in child_hashes)
    kept_before = [key for key in parent.keys if key in child_hashes]
    kept_after = [key for key, _ in child if key in parent.hashes]
    moved: set[bytes] = set()
    if kept_before != kept_after:
        matcher = difflib.SequenceMatcher(None, kept_before, kept_after, autojunk=False)
        stay = {kept_after[b.b + i] for b in matcher.get_matching_blocks() for i in range(b.size)}
        moved = set(kept_after) - stay
    previous = b""
    for key, value in child:
        same = parent.hashes.get(key) == child_hashes[key]
        if key in moved:
            delta.items.append(DeltaItem(key=key, after=previous, moved=True) if same else DeltaItem(key=key, value=value, after=previous))
        elif key not in parent.hashes:
            delta.items.append(DeltaItem(key=key, value=value, after=previous))
        elif not same:
            delta.items.append(DeltaItem(key=key, value=value))
        previous = key
    return delta


def apply(parent: list[Item], delta: StateDelta) -> list[Item]:
    """The child's items: ``delta`` applied to its parent's; checks both digests."""
    return apply_indexed(parent, index(parent), delta)[0]


def apply_indexed(parent: list[Item], parent_index: Index, delta: StateDelta) -> tuple[list[Item], Index]:
    """:func:`apply` given the parent's index (trusted to be ``index(parent)``); also gives the child's.

    Only the items the delta carries are hashed, so a chain of deltas over a large
    state costs what the deltas hold.
    """
    if parent_index.digest != delta.parent_digest:
        raise CorruptSnapshotError("the delta does not apply: its parent's content differs from what it was made against")
    removed = set(delta.removed)
    placed = {item.key for item in delta.items if item.HasField("after")}
    moving: dict[bytes, bytes] = {}
    values: dict[bytes, bytes] = {}
    hashes: dict[bytes, bytes] = {}
    following: dict[bytes, bytes | None] = {}
    last = b""  # the start of the list
    for key, value in parent:
        if key in removed:
            continue
        if key in placed:
            moving[key] = value
            continue
        values[key] = value
        hashes[key] = parent_index.hashes[key]
        following[last] = key
        last = key
    following[last] = None
    for item in delta.items:
        if not item.HasField("after"):
            if item.key not in values:
                raise CorruptSnapshotError("the delta changes an item its parent does not have")
        elif item.key in values or (item.after and item.after not in values):
            raise CorruptSnapshotError("the delta places an item after one its parent does not have")
        else:
            following[item.key] = following[item.after]
            following[item.after] = item.key
        if item.moved:
            if item.key not in moving:
                raise CorruptSnapshotError("the delta moves an item its parent does not have")
            values[item.key] = moving[item.key]
            hashes[item.key] = parent_index.hashes[item.key]
            continue
        values[item.key] = item.value
        hashes[item.key] = _hash(item.value)
    out: list[Item] = []
    keys: list[bytes] = []
    key = following[b""]
    while key is not None:
        out.append((key, values[key]))
        keys.append(key)
        key = following[key]
    child = Index(keys, hashes, _digest((k, hashes[k]) for k in keys))
    if child.digest != delta.digest:
        raise CorruptSnapshotError("the delta does not give the state it was made for")
    return out, child


# -- what changed --------------------------------------------------------------------


def component_of(key: bytes) -> str:
    """The state component an item belongs to."""
    kind = key[:1]
    if kind == b"F":
        number = int(_parts(key)[0])
        name = BrowserSessionState.DESCRIPTOR.fields_by_number[number].name
        return _FIELD_COMPONENTS.get(name, "capture")
    return _KIND_COMPONENTS.get(kind, "other")


@dataclass
class Change:
    """One item that differs between two states: ``op`` is added, changed or removed."""

    component: str
    op: str
    what: str


def compare(before: list[Item], after: list[Item]) -> list[Change]:
    """Every item added, changed or removed from ``before`` to ``after``, in ``after``'s order."""
    old = {key: _hash(value) for key, value in before}
    new = {key for key, _ in after}
    changes = []
    for key, value in after:
        if key not in old:
            changes.append(Change(component_of(key), "added", describe(key)))
        elif old[key] != _hash(value):
            changes.append(Change(component_of(key), "changed", describe(key)))
    changes.extend(Change(component_of(key), "removed", describe(key)) for key, _ in before if key not in new)
    return changes


def summary(changes: Iterable[Change]) -> dict[str, dict[str, int]]:
    """Counts of added, changed and removed items per component."""
    out: dict[str, dict[str, int]] = {}
    for change in changes:
        counts = out.setdefault(change.component, {"added": 0, "changed": 0, "removed": 0})
        counts[change.op] += 1
    return out


def delta_changes(parent: Index, delta: StateDelta) -> dict[str, dict[str, int]]:
    """:func:`summary` of a delta against its parent, without the child's items."""
    return summary(_delta_changes(parent, delta))


def _delta_changes(parent: Index, delta: StateDelta) -> Iterator[Change]:
    for item in delta.items:
        if item.moved:
            continue  # the same content in another place: not a change of the state's content
        if item.key in parent.hashes:
            if parent.hashes[item.key] != _hash(item.value):
                yield Change(component_of(item.key), "changed", "")
        else:
            yield Change(component_of(item.key), "added", "")
    for key in delta.removed:
        yield Change(component_of(key), "removed", "")


def describe(key: bytes) -> str:
    """A person's name for an item: what it is, never its value."""
    kind, parts = key[:1], [_text(p) for p in _parts(key)]
    if kind == b"F":
        return BrowserSessionState.DESCRIPTOR.fields_by_number[int(parts[0])].name
    if kind == b"C":
        return f"cookie {parts[0]} for {parts[1]}{parts[2]}"
    if kind == b"L":
        return f"localStorage of {_where(parts[0], parts[1])}"
    if kind == b"l":
        return f"localStorage {_dom_name(_parts(key)[2])!r} of {_where(parts[0], parts[1])}"
    if kind == b"D":
        return f"IndexedDB database {_dom_name(_parts(key)[2])!r} of {_where(parts[0], parts[1])}"
    if kind == b"R" and len(parts) == 5:
        return (
            f"IndexedDB record in {_dom_name(_parts(key)[2])}/{_dom_name(_parts(key)[3])} of {_where(parts[0], parts[1])}"
        )
    if kind == b"K":
        return f"cache {_dom_name(_parts(key)[2])!r} of {_where(parts[0], parts[1])}"
    if kind == b"E" and len(parts) == 5:
        return f"cache entry {parts[3]} {parts[4]} in {_dom_name(_parts(key)[2])!r}"
    if kind == b"T":
        return f"tab {parts[0][:8]}" if parts[0] else f"tab {int(parts[1]) + 1}"
    if kind == b"P":
        return BrowserSessionState.DESCRIPTOR.fields_by_number[int(parts[0])].name
    return " ".join(parts)


def _text(part: bytes) -> str:
    return part.decode("utf-8", "replace")


def _where(origin: str, storage_key: str) -> str:
    return origin if not storage_key or storage_key.rstrip("/") == origin.rstrip("/") else f"{origin} ({storage_key})"


def _dom_name(serialised: bytes) -> str:
    name = DOMString()
    name.MergeFromString(serialised)
    return text(name)

