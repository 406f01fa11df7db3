"""IndexedDB: every database of every origin, with its schema, key generators and records.

Records are read and written inside the page, in an isolated world, by ``js/idb.js``:
keys and values cross in the structured-clone-v1 encoding (``js/clone.js``), so every
structured-cloneable type comes back as itself, shared references and cycles
included. Records leave the page in batches of bounded size and are kept flat in
``StorageState.indexed_db_records``.

Databases are read through the frames of open tabs (which also reach partitioned
storage of third-party iframes) and, for other origins that hold IndexedDB data,
through stub pages. Restore deletes the databases the target holds for each captured
origin, recreates each database at its captured version with the same stores and
indexes, puts the records and moves each key generator to where it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import trio

from ..errors import ProtocolError, SnapshotError, StateError
from ..snapshot.clone import walk_strings
from ..snapshot.model import (
    BrowserSessionState,
    IndexedDBDatabase,
    IndexedDBObjectStore,
    KeyPath,
    SerializedValue,
    domstring,
    text,
)
from .auth import add_value_source
from .origins import STUB_CONCURRENCY, first_party_key, read_storage_keys
from .pages import Frame, StubPage, gather_limited, parse_storage_key
from .registry import CaptureContext, Component, RestoreContext
from .scripts import CLONE_ENCODING, idb_library

__all__ = ["IndexedDB", "key_path", "key_path_value"]

#: Records read from the page per batch, at most; and text per batch, about.
BATCH_RECORDS = 2000
BATCH_CHARS = 4 * 1024 * 1024


def key_path(value: Any, into: KeyPath) -> None:
    """Set ``into`` from a key path as the page reports it (string, list or null)."""
    if isinstance(value, str):
        into.path = value
    elif isinstance(value, list):
        into.paths.paths.extend(value)


def key_path_value(path: KeyPath) -> str | list[str] | None:
    kind = path.WhichOneof("kind")
    if kind == "path":
        return path.path
    if kind == "paths":
        return list(path.paths.paths)
    return None


def _value(data: str) -> SerializedValue:
    return SerializedValue(encoding=CLONE_ENCODING, data=data.encode("utf-8"))


class IndexedDB(Component):
    name = "indexed_db"
    uses_tabs = True
    order = 25
    description = "IndexedDB databases: schema, key generators and every record, of every type"

    async def capture(self, ctx: CaptureContext) -> None:
        async def read(target: Frame | StubPage, origin: str, key: str) -> None:
            await self._read(ctx, target, origin, key)

        await read_storage_keys(ctx, "indexeddb", read, "IndexedDB")

    async def _read(self, ctx: CaptureContext, target: Frame | StubPage, origin: str, key: str) -> None:
        storage = ctx.state.storage
        try:
            for found in await idb_library.call_json(target, "schema"):
                where = f"IndexedDB database {found['name']!r} of {_where(origin, key)}"
                if found["error"]:
                    ctx.uncovered(where, found["error"])
                    continue
                database = storage.indexed_db.add(origin=origin, version=int(found["version"]))
                if key != first_party_key(origin):
                    database.storage_key = key
                domstring(found["name"], database.name)
                for found_store in found["stores"]:
                    ctx.memo["idb_stores"] = ctx.memo.get("idb_stores", 0) + 1
                    store = database.stores.add(id=ctx.memo["idb_stores"], auto_increment=found_store["autoIncrement"])
                    domstring(found_store["name"], store.name)
                    key_path(found_store["keyPath"], store.key_path)
                    if found_store["keyGenerator"] is not None:
                        store.key_generator = float(found_store["keyGenerator"])
                    for found_index in found_store["indexes"]:
                        index = store.indexes.add(unique=found_index["unique"], multi_entry=found_index["multiEntry"])
                        domstring(found_index["name"], index.name)
                        key_path(found_index["keyPath"], index.key_path)
                    await self._read_records(ctx, target, found["name"], store, f"{where}, store {found_store['name']!r}")
        finally:
            try:
                await idb_library.call(target, "closeAll")
            except (StateError, ProtocolError):
                pass

    async def _read_records(
        self, ctx: CaptureContext, target: Frame | StubPage, db_name: str, store: IndexedDBObjectStore, where: str
    ) -> None:
        records = ctx.state.storage.indexed_db_records
        after = None
        count = BATCH_RECORDS
        while True:
            batch = await idb_library.call_json(target, "read", db_name, text(store.name), after, count, BATCH_CHARS)
            flat = batch["records"]
            for i in range(0, len(flat), 2):
                records.add(store=store.id, key=_value(flat[i]), value=_value(flat[i + 1]))
            store.record_count += len(flat) // 2
            for key_text, reason in batch["errors"]:
                ctx.uncovered(f"{where}, record {key_text}", reason)
            if batch["done"]:
                return
            after = batch["last"]

    async def restore(self, ctx: RestoreContext) -> None:
        storage = ctx.state.storage
        if not storage.indexed_db:
            return
        by_key: dict[str, list[IndexedDBDatabase]] = defaultdict(list)
        for database in storage.indexed_db:
            by_key[database.storage_key or first_party_key(database.origin)].append(database)
        records = _records_by_store(ctx.state)

        async def write(key_text: str) -> None:
            where = _where(by_key[key_text][0].origin, key_text)
            try:
                key = parse_storage_key(key_text)
                async with ctx.context.stub_page() as stub:
                    await stub.navigate(key.top_level_url(), timeout=ctx.timeout)
                    frame = await stub.storage_frame(key, timeout=ctx.timeout)
                    cleared = await idb_library.call(frame, "clear")
                    for name, reason in cleared["failed"]:
                        ctx.report.note(f"IndexedDB database {name!r} of {where} could not be deleted first: {reason}")
                    held = dict(cleared["held"])
                    for database in by_key[key_text]:
                        name = text(database.name)
                        if name in held:
                            ctx.report.not_restored(f"IndexedDB database {name!r} of {where} was not restored: {held[name]}")
                        else:
                            await self._write_database(ctx, frame, database, records)
                    await idb_library.call(frame, "closeAll")
            except (StateError, ProtocolError, trio.TooSlowError) as exc:
                ctx.report.not_restored(f"IndexedDB of {where} was not restored: {str(exc) or 'timed out'}")

        await gather_limited([lambda k=k: write(k) for k in sorted(by_key)], STUB_CONCURRENCY)

    async def _write_database(
        self, ctx: RestoreContext, frame: Frame, database: IndexedDBDatabase, records: dict[int, list[int]]
    ) -> None:
        name = text(database.name)
        where = f"IndexedDB database {name!r} of {database.storage_key or database.origin}"
        schema = [
            {
                "name": text(store.name),
                "keyPath": key_path_value(store.key_path),
                "autoIncrement": store.auto_increment,
                "indexes": [
                    {
                        "name": text(index.name),
                        "keyPath": key_path_value(index.key_path),
                        "unique": index.unique,
                        "multiEntry": index.multi_entry,
                    }
                    for index in store.indexes
                ],
            }
            for store in database.stores
        ]
        try:
            await idb_library.call(frame, "create", name, database.version, schema)
        except StateError as exc:
            ctx.report.not_restored(f"{where} could not be created: {exc}")
            return
        all_records = ctx.state.storage.indexed_db_records
        for store in database.stores:
            inline = store.key_path.WhichOneof("kind") is not None
            written = 0
            for batch in _batches(all_records, records.get(store.id, [])):
                failed = await idb_library.call(frame, "write", name, text(store.name), batch, inline)
                for key_text, reason in failed:
                    ctx.report.not_restored(f"{where}, store {text(store.name)!r}, record {key_text}: {reason}")
                written += len(batch) // 2 - len(failed)
            if store.HasField("key_generator"):
                await idb_library.call(
                    frame, "setKeyGenerator", name, text(store.name), store.key_generator, key_path_value(store.key_path)
                )
            ctx.report.count(self.name, written)

    def count(self, state: BrowserSessionState) -> int:
        return len(state.storage.indexed_db_records)


#: Records larger than this are not scanned for tokens (tokens live in small records).
SCAN_LIMIT = 64 * 1024


@add_value_source
def record_strings(state: BrowserSessionState) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """The strings of each IndexedDB record, for token discovery: (source, domain, (key, string) pairs)."""
    stores = {store.id: (database, store) for database in state.storage.indexed_db for store in database.stores}
    for record in state.storage.indexed_db_records:
        database, store = stores.get(record.store, (None, None))
        if database is None or record.value.encoding != CLONE_ENCODING or len(record.value.data) > SCAN_LIMIT:
            continue
        try:
            pairs = [(key or "", value) for key, value in walk_strings(record.value.data)]
        except SnapshotError:
            continue
        where = database.storage_key or database.origin
        yield f"indexedDB {where} {text(database.name)}/{text(store.name)}", urlsplit(database.origin).hostname or "", pairs


def _where(origin: str, key: str) -> str:
    return origin if key == first_party_key(origin) else key


def _records_by_store(state: BrowserSessionState) -> dict[int, list[int]]:
    positions: dict[int, list[int]] = defaultdict(list)
    for position, record in enumerate(state.storage.indexed_db_records):
        positions[record.store].append(position)
    return positions


def _batches(records: Any, positions: list[int]) -> Iterator[list[str]]:
    """``[keyText, valueText, ...]`` lists of about :data:`BATCH_CHARS` each."""
    batch: list[str] = []
    size = 0
    for position in positions:
        record = records[position]
        key, value = record.key.data.decode("utf-8"), record.value.data.decode("utf-8")
        batch += (key, value)
        size += len(key) + len(value)
        if size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
