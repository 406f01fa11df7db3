"""State diffs (psp_cdp.snapshot.diff): no browser, no I/O.

Property-based, over states that are realistic but adversarial: duplicate cookie
identities, duplicate localStorage origins and keys, lone surrogates, records that
refer to stores no database declares, store ids shared by two databases, duplicate
store names, the same URL twice in one cache, empty-but-present submessages. A
child is derived from its parent by random edits (:func:`mutations`) or drawn
independently. Whatever the pair:

* a state taken apart into items composes back to itself exactly;
* a delta applied to its parent gives the child's items exactly, and never a wrong
  state: applied to another parent or damaged, it raises CorruptSnapshotError;
* a delta's size follows the change, not the state;
* the counts of what changed agree, from the two states and from the delta alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from psp_cdp.errors import CorruptSnapshotError
from psp_cdp.snapshot import codec, diff, model

from .test_snapshot import _chunk_size, dom_strings

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ---------------------------------------------------------------------------

#: Few distinct values, so that the same identity (cookie, origin, name) turns up twice.
_names = st.sampled_from(["", "sid", "a", "\ud800", "😀", "a\x00b"])
_short_dom_strings = st.one_of(_names, dom_strings.filter(lambda s: len(s) <= 12))
_origins = st.sampled_from(["https://a.test", "https://b.test", "http://127.0.0.1:8080", ""])
_storage_keys = st.sampled_from(["", "https://a.test/", "https://top.test/^0https://a.test"])
_domains = st.sampled_from([".a.test", "a.test", "b.test", ""])
_paths = st.sampled_from(["/", "/x", ""])
_text = st.text(max_size=12)  # protobuf strings: no lone surrogates
_small_bytes = st.binary(max_size=24)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _dom(value: str) -> model.DOMString:
    return model.domstring(value)


@st.composite
def _serialized(draw: st.DrawFn) -> model.SerializedValue:
    encoding = draw(st.sampled_from(["structured-clone-v1", "json", ""]))
    return model.SerializedValue(encoding=encoding, data=draw(_small_bytes))


@st.composite
def cookies(draw: st.DrawFn) -> model.Cookie:
    cookie = model.Cookie(
        name=draw(st.sampled_from(["sid", "id", "", "__Host-x"])),
        value=draw(_text),
        domain=draw(_domains),
        path=draw(_paths),
        http_only=draw(st.booleans()),
        secure=draw(st.booleans()),
        same_site=draw(st.integers(0, 3)),
        priority=draw(st.integers(0, 3)),
        source_scheme=draw(st.integers(0, 3)),
        source_port=draw(st.sampled_from([-1, 0, 443, 8080])),
        size=draw(st.integers(0, 100)),
    )
    if draw(st.booleans()):
        cookie.expires = draw(st.sampled_from([0.0, -1.0, 2e9, 1.5e9 + 0.25]))
    if draw(st.booleans()):
        cookie.partitioned = True
        cookie.partition_key.top_level_site = draw(st.sampled_from(["https://top.test", "", "https://a.test"]))
        cookie.partition_key.has_cross_site_ancestor = draw(st.booleans())
    elif draw(st.booleans()):
        cookie.partition_key.SetInParent()  # present but empty: another identity than none
    return cookie


@st.composite
def origin_storages(draw: st.DrawFn, max_items: int = 5) -> model.OriginStorage:
    storage = model.OriginStorage(origin=draw(_origins), storage_key=draw(_storage_keys))
    for key, value in draw(st.lists(st.tuples(_short_dom_strings, dom_strings), max_size=max_items)):
        storage.items.add(key=_dom(key), value=_dom(value))
    return storage


@st.composite
def databases(draw: st.DrawFn, ids: st.SearchStrategy[int] = st.integers(0, 10)) -> model.IndexedDBDatabase:
    database = model.IndexedDBDatabase(
        origin=draw(_origins),
        storage_key=draw(_storage_keys),
        name=_dom(draw(_names)),
        version=draw(st.integers(0, 2**64 - 1)),
    )
    for _ in range(draw(st.integers(0, 3))):
        store = database.stores.add(
            id=draw(ids),
            name=_dom(draw(st.sampled_from(["s", "t", "\udc00", ""]))),
            auto_increment=draw(st.booleans()),
            record_count=draw(st.integers(0, 10)),
        )
        if draw(st.booleans()):
            store.key_path.path = draw(st.sampled_from(["", "id", "a.b"]))
        elif draw(st.booleans()):
            store.key_path.paths.paths.extend(["a", "b"])
        if store.auto_increment and draw(st.booleans()):
            store.key_generator = draw(st.sampled_from([1.0, 7.0, 2.0**53 + 2]))
        for _ in range(draw(st.integers(0, 2))):
            store.indexes.add(name=_dom(draw(_names)), unique=draw(st.booleans()), multi_entry=draw(st.booleans()))
    return database


@st.composite
def records(draw: st.DrawFn, ids: st.SearchStrategy[int] = st.integers(0, 12)) -> model.IndexedDBRecord:
    # A capture always sets both key and value (maybe to an empty value).
    return model.IndexedDBRecord(store=draw(ids), key=draw(_serialized()), value=draw(_serialized()))


@st.composite
def caches(draw: st.DrawFn) -> model.CacheStorageCache:
    return model.CacheStorageCache(
        id=draw(st.integers(0, 4)),
        origin=draw(_origins),
        storage_key=draw(_storage_keys),
        name=_dom(draw(_names)),
        entry_count=draw(st.integers(0, 5)),
    )


@st.composite
def cache_entries(draw: st.DrawFn, ids: st.SearchStrategy[int] = st.integers(0, 5)) -> model.CacheEntry:
    entry = model.CacheEntry(
        cache=draw(ids),
        request_url=draw(st.sampled_from(["https://a.test/x", "https://a.test/x?q=1", ""])),
        request_method=draw(st.sampled_from(["GET", "POST", ""])),
        status=draw(st.sampled_from([0, 200, 404])),
        status_text=draw(_text),
        body=draw(_small_bytes),
        response_type=draw(st.sampled_from(["basic", "cors", "opaque", ""])),
        response_time=draw(_int64),
    )
    for _ in range(draw(st.integers(0, 2))):
        entry.request_headers.add(name="vary-me", value=draw(_text))
    for _ in range(draw(st.integers(0, 2))):
        entry.response_headers.add(name=draw(st.sampled_from(["vary", "content-type"])), value=draw(_text))
    return entry


@st.composite
def tabs(draw: st.DrawFn) -> model.Tab:
    tab = model.Tab(target_id=draw(_text), active=draw(st.booleans()))
    if draw(st.booleans()):
        navigation = tab.navigation
        navigation.current_url = draw(st.sampled_from(["https://a.test/", "about:blank", ""]))
        for _ in range(draw(st.integers(0, 3))):
            entry = navigation.entries.add(url=draw(_text), title=_dom(draw(_short_dom_strings)))
            if draw(st.booleans()):
                entry.state.CopyFrom(draw(_serialized()))
                entry.scroll_position.x = draw(st.floats(allow_nan=False, width=32))
        navigation.current_index = draw(st.integers(-1, 3))
    tab.session_storage.extend(draw(st.lists(origin_storages(max_items=3), max_size=2)))
    if draw(st.booleans()):
        frame = tab.dom.frames.add(url=draw(_text))
        frame.fields.add(kind="value", value=_dom(draw(_short_dom_strings)))
    return tab


@st.composite
def tokens(draw: st.DrawFn) -> model.AuthToken:
    token = model.AuthToken(
        type=draw(st.sampled_from(["Bearer", "JWT", ""])),
        value=draw(_text),
        domain=draw(_domains),
        source=draw(_text),
    )
    token.scope.extend(draw(st.lists(_text, max_size=2)))
    if draw(st.booleans()):
        token.expires_at = draw(_int64)
    return token


@st.composite
def states(draw: st.DrawFn) -> model.BrowserSessionState:
    """A BrowserSessionState with every component, adversarial where a real one could be."""
    state = model.BrowserSessionState()
    if draw(st.booleans()):
        state.version = draw(st.sampled_from([model.PROTOCOL_VERSION, "0.9.0", "x"]))
    state.timestamp = draw(st.one_of(st.just(0), _int64))
    state.origin = draw(st.one_of(_origins, _text))
    if draw(st.integers(0, 4)):  # storage: usually there, sometimes present and empty, or absent
        storage = state.storage
        storage.SetInParent()
        storage.cookies.extend(draw(st.lists(cookies(), max_size=6)))
        storage.local_storage.extend(draw(st.lists(origin_storages(), max_size=4)))
        storage.indexed_db.extend(draw(st.lists(databases(), max_size=3)))
        # Records mostly refer to a declared store, sometimes to an id no database declares.
        store_ids = sorted({store.id for database in storage.indexed_db for store in database.stores})
        ids = st.one_of(st.sampled_from(store_ids), st.integers(0, 12)) if store_ids else st.integers(0, 12)
        storage.indexed_db_records.extend(draw(st.lists(records(ids=ids), max_size=8)))
        storage.cache_storage.extend(draw(st.lists(caches(), max_size=3)))
        cache_ids = sorted({cache.id for cache in storage.cache_storage})
        ids = st.one_of(st.sampled_from(cache_ids), st.integers(0, 5)) if cache_ids else st.integers(0, 5)
        storage.cache_entries.extend(draw(st.lists(cache_entries(ids=ids), max_size=6)))
    if draw(st.integers(0, 3)):
        state.history.SetInParent()
        state.history.tabs.extend(draw(st.lists(tabs(), max_size=3)))
    if draw(st.booleans()):
        state.auth.SetInParent()
        state.auth.tokens.extend(draw(st.lists(tokens(), max_size=3)))
        if draw(st.booleans()):
            state.auth.credentials.key_id = "k1"
            state.auth.credentials.ciphertext = draw(_small_bytes)
    for name in draw(st.lists(_text, max_size=3)):
        extension = state.extensions[name]
        extension.data = draw(_small_bytes)
        extension.media_type = draw(st.sampled_from(["", "application/json"]))
    if draw(st.booleans()):
        state.dom.SetInParent()  # present and empty, as a capture leaves it
    if draw(st.booleans()):
        state.network.service_workers.add(origin=draw(_origins), scope=draw(_text), state="activated")
    if draw(st.booleans()):
        state.recording.events.add(type="click", timestamp=draw(st.floats(0, 1e6)), target=draw(_text))
        state.recording.duration = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        state.source.browser = draw(_text)
        state.source.psp_version = "0.1"
    if draw(st.booleans()):
        state.report.components.extend(draw(st.lists(st.sampled_from(["cookies", "local_storage"]), max_size=2)))
        state.report.uncovered.add(what=draw(_text), reason=draw(_text))
    return state


def _copy(message):  # type: ignore[no-untyped-def]
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def _rewrite(field, values: list) -> None:  # type: ignore[no-untyped-def]
    """Replace the content of a repeated message field with ``values``."""
    values = [_copy(v) for v in values]
    del field[:]
    field.extend(values)


def _insert(draw: st.DrawFn, field, value) -> None:  # type: ignore[no-untyped-def]
    values = [_copy(v) for v in field]
    values.insert(draw(st.integers(0, len(values))), value)
    _rewrite(field, values)


def _remove(draw: st.DrawFn, field) -> None:  # type: ignore[no-untyped-def]
    if len(field):
        del field[draw(st.integers(0, len(field) - 1))]


def _reorder(draw: st.DrawFn, field) -> None:  # type: ignore[no-untyped-def]
    _rewrite(field, draw(st.permutations([_copy(v) for v in field])))


def _pick(draw: st.DrawFn, field):  # type: ignore[no-untyped-def]
    return field[draw(st.integers(0, len(field) - 1))] if len(field) else None


def _add_database_in_front(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    """A new database first, its stores taking the lowest ids: every other store id shifts."""
    storage = state.storage
    count = draw(st.integers(1, 3))
    for database in storage.indexed_db:
        for store in database.stores:
            store.id += count
    for record in storage.indexed_db_records:
        record.store += count
    new = draw(databases(ids=st.just(0)))
    del new.stores[:]
    for number in range(count):
        new.stores.add(id=number, name=_dom(f"new{number}"))
    _rewrite(storage.indexed_db, [new, *storage.indexed_db])
    for _ in range(draw(st.integers(0, 2))):
        _insert(draw, storage.indexed_db_records, draw(records(ids=st.integers(0, count - 1))))


def _change_scalars(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    state.timestamp = draw(_int64)
    if draw(st.booleans()):
        state.version = draw(st.sampled_from([model.PROTOCOL_VERSION, "2.0.0", ""]))
    if draw(st.booleans()):
        state.origin = draw(_origins)


def _local_item(draw: st.DrawFn) -> model.StorageItem:
    return model.StorageItem(key=_dom(draw(_short_dom_strings)), value=_dom(draw(dom_strings)))


def _ls_add_item(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    origin = _pick(draw, state.storage.local_storage)
    if origin is None:
        origin = state.storage.local_storage.add(origin="https://new.test")
    _insert(draw, origin.items, _local_item(draw))


def _ls_remove_item(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    origin = _pick(draw, state.storage.local_storage)
    if origin is not None:
        _remove(draw, origin.items)


def _ls_change_item(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    origin = _pick(draw, state.storage.local_storage)
    item = _pick(draw, origin.items) if origin is not None else None
    if item is not None:
        model.domstring(draw(dom_strings), item.value)


def _ls_reorder_items(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    origin = _pick(draw, state.storage.local_storage)
    if origin is not None:
        _reorder(draw, origin.items)


def _record_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    record = _pick(draw, state.storage.indexed_db_records)
    if record is not None:
        record.value.data = draw(_small_bytes)


def _cookie_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    cookie = _pick(draw, state.storage.cookies)
    if cookie is not None:
        cookie.value = draw(_text)
        if draw(st.booleans()):
            cookie.ClearField("expires")


def _entry_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    entry = _pick(draw, state.storage.cache_entries)
    if entry is not None:
        entry.body = draw(_small_bytes)


def _tab_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    tab = _pick(draw, state.history.tabs)
    if tab is not None:
        tab.session_storage.add(origin="https://a.test").items.add(key=_dom("k"), value=_dom(draw(dom_strings)))


def _auth_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    _insert(draw, state.auth.tokens, draw(tokens()))


def _extensions_change(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    if state.extensions and draw(st.booleans()):
        del state.extensions[draw(st.sampled_from(sorted(state.extensions)))]
    else:
        state.extensions[draw(_text)].data = draw(_small_bytes)


def _remove_database(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    _remove(draw, state.storage.indexed_db)  # its records stay, now naming undeclared stores


def _clear_storage(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    state.ClearField("storage")
    if draw(st.booleans()):
        state.storage.SetInParent()


def _clear_history(draw: st.DrawFn, state: model.BrowserSessionState) -> None:
    state.ClearField("history")


_S = model.BrowserSessionState
_MUTATIONS: dict[str, Callable[[st.DrawFn, _S], None]] = {
    "scalars": _change_scalars,
    "cookie add": lambda draw, s: _insert(draw, s.storage.cookies, draw(cookies())),
    "cookie remove": lambda draw, s: _remove(draw, s.storage.cookies),
    "cookie change": _cookie_change,
    "cookie reorder": lambda draw, s: _reorder(draw, s.storage.cookies),
    "localStorage add": _ls_add_item,
    "localStorage remove": _ls_remove_item,
    "localStorage change": _ls_change_item,
    "localStorage reorder items": _ls_reorder_items,
    "localStorage add origin": lambda draw, s: _insert(draw, s.storage.local_storage, draw(origin_storages())),
    "localStorage remove origin": lambda draw, s: _remove(draw, s.storage.local_storage),
    "localStorage reorder origins": lambda draw, s: _reorder(draw, s.storage.local_storage),
    "database in front": _add_database_in_front,
    "database remove": _remove_database,
    "record add": lambda draw, s: _insert(draw, s.storage.indexed_db_records, draw(records())),
    "record remove": lambda draw, s: _remove(draw, s.storage.indexed_db_records),
    "record change": _record_change,
    "record reorder": lambda draw, s: _reorder(draw, s.storage.indexed_db_records),
    "cache add": lambda draw, s: _insert(draw, s.storage.cache_storage, draw(caches())),
    "cache entry add": lambda draw, s: _insert(draw, s.storage.cache_entries, draw(cache_entries())),
    "cache entry remove": lambda draw, s: _remove(draw, s.storage.cache_entries),
    "cache entry change": _entry_change,
    "tab add": lambda draw, s: _insert(draw, s.history.tabs, draw(tabs())),
    "tab remove": lambda draw, s: _remove(draw, s.history.tabs),
    "tab change": _tab_change,
    "tab reorder": lambda draw, s: _reorder(draw, s.history.tabs),
    "auth": _auth_change,
    "extensions": _extensions_change,
    "clear storage": _clear_storage,
    "clear history": _clear_history,
}


@st.composite
def mutations(draw: st.DrawFn, state: model.BrowserSessionState) -> model.BrowserSessionState:
    """A child of ``state``: a few random edits at random places (``state`` is left as it was)."""
    child = _copy(state)
    for name in draw(st.lists(st.sampled_from(sorted(_MUTATIONS)), min_size=1, max_size=5)):
        _MUTATIONS[name](draw, child)
    return child


def _tricky_state() -> _S:
    """Every adversarial case at once, so each property sees them whatever hypothesis draws."""
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=5, origin="https://a.test")
    storage = state.storage
    storage.cookies.add(name="sid", value="1", domain="a.test", path="/")
    storage.cookies.add(name="sid", value="2", domain="a.test", path="/")  # the same identity twice
    storage.cookies.add(name="sid", value="3", domain="a.test", path="/").partition_key.SetInParent()
    partitioned = storage.cookies.add(name="sid", value="4", domain="a.test", path="/", partitioned=True)
    partitioned.partition_key.top_level_site = "https://top.test"
    for origin in ("https://a.test", "https://a.test", "https://b.test"):  # an origin twice
        model.storage_items(storage.local_storage.add(origin=origin), {"k": "v", "\ud800": "\udfff", "": ""})
    storage.local_storage[2].items.add(key=_dom("k"), value=_dom("again"))  # a key twice
    first = storage.indexed_db.add(origin="https://a.test", name=_dom("db"), version=1)
    first.stores.add(id=1, name=_dom("s"))
    first.stores.add(id=2, name=_dom("s"))  # two stores of one name
    second = storage.indexed_db.add(origin="https://a.test", name=_dom("other"))
    second.stores.add(id=3, name=_dom("t"))
    second.stores.add(id=1, name=_dom("u"))  # an id two databases declare
    again = storage.indexed_db.add(origin="https://a.test", name=_dom("db"), version=2)  # a database twice
    again.stores.add(id=5, name=_dom("s"))
    plain = storage.indexed_db.add(origin="https://b.test", name=_dom("\udc00"))
    plain.stores.add(id=7, name=_dom("x"))
    plain.stores.add(id=8, name=_dom("y"))
    for store in (1, 2, 3, 5, 7, 7, 8, 9, 0):  # 9 and 0: ids no database declares
        storage.indexed_db_records.add(
            store=store, key=model.SerializedValue(data=b"k"), value=model.SerializedValue(data=b"%d" % store)
        )
    storage.cache_storage.add(id=1, origin="https://a.test", name=_dom("c"))
    storage.cache_storage.add(id=1, origin="https://a.test", name=_dom("d"))  # an id twice
    storage.cache_storage.add(id=2, origin="https://a.test", name=_dom("e"))
    storage.cache_storage.add(id=3, origin="https://a.test", name=_dom("e"))  # a name twice
    storage.cache_storage.add(id=6, origin="https://b.test", name=_dom("f"))
    for cache in (2, 2, 1, 3, 4, 6, 6, 6):  # the same URL twice in a cache (Vary); 4: no such cache
        storage.cache_entries.add(cache=cache, request_url="https://a.test/x", request_method="GET", body=b"%d" % cache)
    storage.cache_entries[-1].request_method = "POST"
    tab = state.history.tabs.add(target_id="t1")
    model.storage_items(tab.session_storage.add(origin="https://a.test"), {"\ud800": "x"})
    state.history.tabs.add(target_id="t2")
    state.extensions["x"].data = b"1"
    state.dom.SetInParent()
    state.auth.tokens.add(type="Bearer", value="t")
    return state


def _tricky_child() -> _S:
    """A child of :func:`_tricky_state`: a database in front (every store id shifts), lists reordered."""
    child = _tricky_state()
    storage = child.storage
    for database in storage.indexed_db:
        for store in database.stores:
            store.id += 2
    for record in storage.indexed_db_records:
        record.store += 2
    new = model.IndexedDBDatabase(origin="https://c.test", name=_dom("new"))
    new.stores.add(id=0, name=_dom("n0"))
    new.stores.add(id=1, name=_dom("n1"))
    _rewrite(storage.indexed_db, [new, *storage.indexed_db])
    _rewrite(storage.indexed_db_records, list(reversed(storage.indexed_db_records)))
    for cache in storage.cache_storage:
        cache.id += 10
    for entry in storage.cache_entries:
        entry.cache += 10
    _rewrite(storage.cache_storage, [model.CacheStorageCache(id=0, name=_dom("new")), *storage.cache_storage])
    storage.cache_entries[5].body = b"changed"
    _rewrite(storage.cookies, list(reversed(storage.cookies)))
    _rewrite(storage.local_storage, list(reversed(storage.local_storage)))
    _rewrite(child.history.tabs, list(reversed(child.history.tabs)))
    storage.local_storage[1].items[0].value.text = "changed"
    child.timestamp = 6
    return child


def _empty_but_present() -> _S:
    state = model.BrowserSessionState()
    state.storage.SetInParent()
    state.history.SetInParent()
    return state


_EXAMPLE_PAIRS = [
    (_tricky_state(), _tricky_child()),
    (_tricky_child(), _tricky_state()),
    (_empty_but_present(), _tricky_state()),
    (_tricky_state(), _empty_but_present()),
    (_tricky_state(), model.BrowserSessionState()),
]


def _with_pair_examples(test):  # type: ignore[no-untyped-def]
    for pair in _EXAMPLE_PAIRS:
        test = example(pair)(test)
    return test


def _derived_pairs() -> st.SearchStrategy[tuple[_S, _S]]:
    return states().flatmap(lambda parent: st.tuples(st.just(parent), mutations(parent)))


#: Parent and child: one derived from the other (mostly), or two independent states.
pairs = st.one_of(_derived_pairs(), _derived_pairs(), st.tuples(states(), states()))


def _delta(parent: _S, child: _S) -> model.StateDelta:
    return diff.diff(diff.index(diff.items(parent)), diff.items(child))


# -- taking apart, putting together ----------------------------------------------------------


@_SETTINGS
@given(states())
@example(_tricky_state())
@example(_tricky_child())
@example(_empty_but_present())
def test_compose_of_items_is_the_state_exactly(state: _S) -> None:
    state_items = diff.items(state)
    composed = diff.compose(state_items)
    assert composed == state
    assert composed.SerializeToString(deterministic=True) == state.SerializeToString(deterministic=True)
    assert diff.items(composed) == state_items
    assert len({key for key, _ in state_items}) == len(state_items)  # keys are unique
    for key, _ in state_items:
        assert diff.describe(key)
        assert diff.component_of(key) in _COMPONENTS


@_SETTINGS
@given(states(), st.data())
def test_compose_keeps_the_presence_of_record_and_entry_fields(state: _S, data: st.DataObject) -> None:
    """A record or cache entry with a field left unset (or set to an empty message) composes back as it was."""
    storage = state.storage
    storage.indexed_db.add(origin="https://a.test", name=_dom("db")).stores.add(id=40, name=_dom("s"))
    storage.cache_storage.add(id=40, origin="https://a.test", name=_dom("c"))
    for store in (40, 41):  # a declared store and an undeclared one
        record = storage.indexed_db_records.add(store=store)
        for field in ("key", "value"):
            presence = data.draw(st.sampled_from(["unset", "empty", "set"]), label=f"{store} {field}")
            if presence == "empty":
                getattr(record, field).SetInParent()
            elif presence == "set":
                getattr(record, field).data = b"x"
        entry = storage.cache_entries.add(cache=store)
        if data.draw(st.booleans(), label=f"{store} entry url"):
            entry.request_url = "https://a.test/"
    assert diff.compose(diff.items(state)) == state


def test_a_record_without_a_value_composes_without_one() -> None:
    """The minimal case of the property above."""
    state = model.BrowserSessionState()
    state.storage.indexed_db.add(origin="https://a.test").stores.add(id=1)
    state.storage.indexed_db_records.add(store=1, key=model.SerializedValue(data=b"k"))
    composed = diff.compose(diff.items(state))
    assert not composed.storage.indexed_db_records[0].HasField("value")
    assert composed == state


def test_compose_rejects_items_it_cannot_place() -> None:
    state = model.BrowserSessionState()
    origin = state.storage.local_storage.add(origin="https://a.test")
    origin.items.add(key=_dom("k"), value=_dom("v"))
    database = state.storage.indexed_db.add(origin="https://a.test", name=_dom("db"))
    database.stores.add(id=1, name=_dom("s"))
    state.storage.indexed_db_records.add(store=1, key=model.SerializedValue(data=b"1"))
    state_items = diff.items(state)
    kinds = [key[:1] for key, _ in state_items]
    without_origin = [item for item in state_items if item[0][:1] != b"L"]
    with pytest.raises(CorruptSnapshotError):
        diff.compose(without_origin)
    without_database = [item for item in state_items if item[0][:1] != b"D"]
    with pytest.raises(CorruptSnapshotError):
        diff.compose(without_database)
    with pytest.raises(CorruptSnapshotError):
        diff.compose([*state_items, (b"Z\x00", b"")])
    damaged = [(key, value + b"\xff") if key[:1] == b"C" or key[:1] == b"l" else (key, value) for key, value in state_items]
    with pytest.raises(CorruptSnapshotError):
        diff.compose(damaged)
    assert b"l" in kinds and b"R" in kinds


# -- deltas ----------------------------------------------------------------------------


@_SETTINGS
@given(pairs)
@_with_pair_examples
def test_a_delta_applied_to_its_parent_gives_the_child_exactly(pair: tuple[_S, _S]) -> None:
    parent, child = pair
    parent_items, child_items = diff.items(parent), diff.items(child)
    delta = diff.diff(diff.index(parent_items), child_items, parent_version=7)
    assert delta.parent == 7
    applied = diff.apply(parent_items, delta)
    assert applied == child_items
    assert diff.compose(applied) == child
    # Given the parent's index, the child's comes too, as index() would make it.
    applied, child_index = diff.apply_indexed(parent_items, diff.index(parent_items), delta)
    assert applied == child_items
    assert child_index == diff.index(child_items)


@_SETTINGS
@given(states().flatmap(lambda s: st.tuples(st.just(s), mutations(s))).flatmap(
    lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), mutations(pair[1]))
))
def test_a_chain_of_deltas_gives_the_last_state(chain: tuple[_S, _S, _S]) -> None:
    """Each delta made against the state before it, applied in turn from the first state's items."""
    states_ = list(chain)
    deltas = [
        diff.diff(diff.index(diff.items(before)), diff.items(after), parent_version=number)
        for number, (before, after) in enumerate(zip(states_, states_[1:]), start=1)
    ]
    current = diff.items(states_[0])
    current_index = diff.index(current)
    for delta in deltas:
        current, current_index = diff.apply_indexed(current, current_index, delta)
    assert diff.compose(current) == states_[-1]
    if diff.items(states_[0]) != diff.items(states_[1]):
        with pytest.raises(CorruptSnapshotError):  # out of order
            diff.apply(diff.items(states_[0]), deltas[1])


@_SETTINGS
@given(states())
@example(_tricky_state())
@example(_empty_but_present())
def test_a_delta_between_equal_states_is_empty(state: _S) -> None:
    state_items = diff.items(state)
    delta = diff.diff(diff.index(state_items), diff.items(_copy(state)))
    assert not delta.items and not delta.removed
    assert delta.digest == delta.parent_digest
    assert diff.apply(state_items, delta) == state_items


@_SETTINGS
@given(pairs, st.data())
def test_a_delta_applied_to_another_parent_is_rejected(pair: tuple[_S, _S], data: st.DataObject) -> None:
    parent, child = pair
    near = data.draw(st.booleans(), label="near miss")  # a child of the parent, or any state
    other = data.draw(mutations(parent) if near else states(), label="other parent")
    delta = _delta(parent, child)
    other_items = diff.items(other)
    if other_items == diff.items(parent):
        assert diff.apply(other_items, delta) == diff.items(child)
        return
    with pytest.raises(CorruptSnapshotError):
        diff.apply(other_items, delta)


def _flip(value: bytes, draw: st.DrawFn) -> bytes:
    if not value:
        return b"\x00"
    where = draw(st.integers(0, len(value) - 1))
    return value[:where] + bytes([value[where] ^ (1 << draw(st.integers(0, 7)))]) + value[where + 1 :]


def _damage(delta: model.StateDelta, parent_keys: list[bytes], draw: st.DrawFn) -> str:
    """Damage ``delta`` in place, one way drawn at random; say how."""
    ways = ["parent digest", "digest", "parent", "add removed"]
    if delta.items:
        ways += ["key", "value", "drop item", "duplicate item", "toggle after", "after points elsewhere"]
    if len(delta.items) > 1:
        ways.append("swap items")
    if delta.removed:
        ways += ["drop removed", "flip removed"]
    how = draw(st.sampled_from(ways))
    item = delta.items[draw(st.integers(0, len(delta.items) - 1))] if delta.items else None
    if how == "parent digest":
        delta.parent_digest = _flip(delta.parent_digest, draw)
    elif how == "digest":
        delta.digest = _flip(delta.digest, draw)
    elif how == "parent":
        delta.parent += 1
    elif how == "add removed":
        delta.removed.append(draw(st.sampled_from(parent_keys)) if parent_keys else b"C\x00\x00")
    elif how == "key":
        item.key = _flip(item.key, draw)
    elif how == "value":
        item.value = _flip(item.value, draw)
    elif how == "drop item":
        del delta.items[draw(st.integers(0, len(delta.items) - 1))]
    elif how == "duplicate item":
        position = draw(st.integers(0, len(delta.items) - 1))
        items = [_copy(i) for i in delta.items]
        items.insert(draw(st.integers(0, len(items))), items[position])
        _rewrite(delta.items, items)
    elif how == "toggle after":
        if item.HasField("after"):
            item.ClearField("after")
        else:
            item.after = b""
    elif how == "after points elsewhere":
        candidates = [b"", *parent_keys, *(i.key for i in delta.items)]
        item.after = draw(st.sampled_from(candidates))
    elif how == "swap items":
        first, second = draw(st.lists(st.integers(0, len(delta.items) - 1), min_size=2, max_size=2, unique=True))
        items = [_copy(i) for i in delta.items]
        items[first], items[second] = items[second], items[first]
        _rewrite(delta.items, items)
    elif how == "drop removed":
        del delta.removed[draw(st.integers(0, len(delta.removed) - 1))]
    elif how == "flip removed":
        position = draw(st.integers(0, len(delta.removed) - 1))
        delta.removed[position] = _flip(delta.removed[position], draw)
    return how


def test_the_tricky_pairs_round_trip_and_reject_other_parents() -> None:
    deltas = [_delta(parent, child) for parent, child in _EXAMPLE_PAIRS]
    for i, (parent, child) in enumerate(_EXAMPLE_PAIRS):
        assert diff.compose(diff.apply(diff.items(parent), deltas[i])) == child
        for j, (other, _) in enumerate(_EXAMPLE_PAIRS):
            if diff.items(other) != diff.items(parent):
                with pytest.raises(CorruptSnapshotError):
                    diff.apply(diff.items(other), deltas[i])


def _every_damage(delta: model.StateDelta) -> Iterator[tuple[str, model.StateDelta]]:
    def damaged(how: str, change: Callable[[model.StateDelta], None]) -> tuple[str, model.StateDelta]:
        copy = _copy(delta)
        change(copy)
        return how, copy

    for i, item in enumerate(delta.items):
        yield damaged(f"drop item {i}", lambda d, i=i: d.items.__delitem__(i))
        yield damaged(f"key of {i}", lambda d, i=i: setattr(d.items[i], "key", d.items[i].key[:-1] + b"9"))
        yield damaged(f"value of {i}", lambda d, i=i: setattr(d.items[i], "value", d.items[i].value + b"\x00"))
        if item.HasField("after"):
            yield damaged(f"after of {i} cleared", lambda d, i=i: d.items[i].ClearField("after"))
            yield damaged(f"item {i} first", lambda d, i=i: setattr(d.items[i], "after", b""))
        else:
            yield damaged(f"item {i} placed first", lambda d, i=i: setattr(d.items[i], "after", b""))
    for i in range(len(delta.removed)):
        yield damaged(f"drop removed {i}", lambda d, i=i: d.removed.__delitem__(i))
    yield damaged("digest", lambda d: setattr(d, "digest", bytes(16)))


def test_every_damage_to_the_tricky_deltas_is_rejected_or_harmless() -> None:
    for parent, child in _EXAMPLE_PAIRS:
        parent_items, child_items = diff.items(parent), diff.items(child)
        for how, damaged in _every_damage(diff.diff(diff.index(parent_items), child_items)):
            try:
                applied = diff.apply(parent_items, damaged)
            except CorruptSnapshotError:
                continue
            assert applied == child_items, how


@_SETTINGS
@given(pairs, st.data())
def test_a_damaged_delta_is_rejected_or_gives_the_child_exactly(pair: tuple[_S, _S], data: st.DataObject) -> None:
    parent, child = pair
    parent_items, child_items = diff.items(parent), diff.items(child)
    delta = diff.diff(diff.index(parent_items), child_items)
    damaged = codec.decode(codec.encode(delta))
    assert damaged == delta
    how = _damage(damaged, [key for key, _ in parent_items], data.draw)
    try:
        applied = diff.apply(parent_items, damaged)
    except CorruptSnapshotError:
        return
    assert applied == child_items, how
    assert diff.compose(applied) == child


# -- size ----------------------------------------------------------------------------------


def _many_items_state(count: int) -> _S:
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=1)
    state.storage.cookies.add(name="sid", value="v", domain="a.test", path="/")
    origin = state.storage.local_storage.add(origin="https://a.test")
    for i in range(count):
        origin.items.add(key=_dom(f"key {i}"), value=_dom(f"value {i} " + "x" * 40))
    database = state.storage.indexed_db.add(origin="https://a.test", name=_dom("db"), version=1)
    database.stores.add(id=1, name=_dom("store"))
    database.stores.add(id=2, name=_dom("other"))
    for i in range(count):
        state.storage.indexed_db_records.add(
            store=1 + i % 2,
            key=model.SerializedValue(encoding="structured-clone-v1", data=str(i).encode()),
            value=model.SerializedValue(encoding="structured-clone-v1", data=b"record %d " % i + b"y" * 40),
        )
    state.storage.cache_storage.add(id=1, origin="https://a.test", name=_dom("cache"))
    for i in range(count // 10):
        state.storage.cache_entries.add(cache=1, request_url=f"https://a.test/{i}", body=b"z" * 40)
    state.history.tabs.add(target_id="t").navigation.current_url = "https://a.test/"
    return state


_SIZE_SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_counts = st.sampled_from([1000, 2500])


@_SIZE_SETTINGS
@given(_counts, st.data(), dom_strings.filter(lambda s: len(s) < 200))
def test_changing_one_local_storage_value_gives_a_small_delta(count: int, data: st.DataObject, value: str) -> None:
    parent = _many_items_state(count)
    child = _copy(parent)
    position = data.draw(st.integers(0, count - 1), label="position")
    item = child.storage.local_storage[0].items[position]
    assume(model.text(item.value) != value)
    model.domstring(value, item.value)
    delta = _delta(parent, child)
    assert len(delta.items) == 1 and not delta.removed
    size = len(delta.SerializeToString())
    assert size < 1024 + len(value.encode("utf-8", "surrogatepass")), size
    assert diff.compose(diff.apply(diff.items(parent), delta)) == child
    assert len(codec.encode(delta)) < 1024 + 2 * len(value.encode("utf-8", "surrogatepass")) + 64


@_SIZE_SETTINGS
@given(_counts, st.data(), st.binary(max_size=200))
def test_changing_one_record_gives_a_small_delta(count: int, data: st.DataObject, value: bytes) -> None:
    parent = _many_items_state(count)
    child = _copy(parent)
    record = child.storage.indexed_db_records[data.draw(st.integers(0, count - 1), label="position")]
    record.value.data = value
    delta = _delta(parent, child)
    assert len(delta.items) == 1 and not delta.removed
    assert len(delta.SerializeToString()) < 1024 + len(value)
    assert diff.compose(diff.apply(diff.items(parent), delta)) == child


@_SIZE_SETTINGS
@given(_counts, st.integers(1, 3))
def test_a_database_or_cache_added_in_front_does_not_touch_records(count: int, stores: int) -> None:
    """Store and cache ids shift; records and entries are keyed by name, so they do not change."""
    parent = _many_items_state(count)
    child = _copy(parent)
    storage = child.storage
    for store in storage.indexed_db[0].stores:
        store.id += stores
    for record in storage.indexed_db_records:
        record.store += stores
    new = model.IndexedDBDatabase(origin="https://b.test", name=_dom("new"), version=1)
    for number in range(1, stores + 1):
        new.stores.add(id=number, name=_dom(f"s{number}"))
    _rewrite(storage.indexed_db, [new, *storage.indexed_db])
    storage.cache_storage[0].id = 2
    for entry in storage.cache_entries:
        entry.cache = 2
    _rewrite(storage.cache_storage, [model.CacheStorageCache(id=1, origin="https://b.test", name=_dom("c")), *storage.cache_storage])
    delta = _delta(parent, child)
    assert len(delta.SerializeToString()) < 1024
    assert diff.summary(diff.compare(diff.items(parent), diff.items(child))) == {
        "indexed_db": {"added": 1, "changed": 1, "removed": 0},
        "cache_storage": {"added": 1, "changed": 1, "removed": 0},
    }
    assert diff.compose(diff.apply(diff.items(parent), delta)) == child


# -- what changed ------------------------------------------------------------------------------


@_SETTINGS
@given(pairs)
@_with_pair_examples
def test_delta_changes_agree_with_comparing_the_states(pair: tuple[_S, _S]) -> None:
    parent, child = pair
    parent_items, child_items = diff.items(parent), diff.items(child)
    delta = diff.diff(diff.index(parent_items), child_items)
    changes = diff.compare(parent_items, child_items)
    assert diff.delta_changes(diff.index(parent_items), delta) == diff.summary(changes)
    for change in changes:
        assert change.op in ("added", "changed", "removed") and change.what
    if parent_items == child_items:
        assert changes == []


@st.composite
def _plain_states(draw: st.DrawFn) -> _S:
    """States with unique identities everywhere: counts of changes are then unambiguous."""
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION, timestamp=draw(st.integers(1, 10**12)))
    names = draw(st.lists(st.text("abcdef", min_size=1, max_size=3), unique=True, max_size=6))
    for name in names:
        state.storage.cookies.add(name=name, value=draw(_text), domain="a.test", path="/")
    for origin in draw(st.lists(_origins, unique=True, min_size=1, max_size=3)):
        keys = draw(st.lists(dom_strings, unique=True, max_size=6))
        model.storage_items(state.storage.local_storage.add(origin=origin), {k: draw(dom_strings) for k in keys})
    database = state.storage.indexed_db.add(origin="https://a.test", name=_dom("db"))
    database.stores.add(id=3, name=_dom("s"))
    for i in range(draw(st.integers(0, 6))):
        state.storage.indexed_db_records.add(
            store=3, key=model.SerializedValue(data=b"%d" % i), value=model.SerializedValue(data=draw(_small_bytes))
        )
    for _ in range(draw(st.integers(0, 3))):
        state.history.tabs.add(target_id=draw(_text))
    return state


@_SETTINGS
@given(_plain_states(), st.data())
def test_summary_counts_the_changes_made(parent: _S, data: st.DataObject) -> None:
    draw = data.draw
    child = _copy(parent)
    expected: dict[str, dict[str, int]] = {}

    def count(component: str, op: str, n: int = 1) -> None:
        if n:
            expected.setdefault(component, {"added": 0, "changed": 0, "removed": 0})[op] += n

    # localStorage: remove some keys, change others, add new ones, in every origin.
    for origin in child.storage.local_storage:
        entries = [_copy(i) for i in origin.items]
        ops = draw(st.lists(st.sampled_from(["keep", "remove", "change"]), min_size=len(entries), max_size=len(entries)))
        kept = []
        for entry, op in zip(entries, ops):
            if op == "remove":
                count("local_storage", "removed")
                continue
            if op == "change":
                model.domstring(model.text(entry.value) + "+", entry.value)
                count("local_storage", "changed")
            kept.append(entry)
        existing = {model.text(e.key) for e in entries}
        for new_key in draw(st.lists(dom_strings.filter(lambda k: k not in existing), unique=True, max_size=3)):
            kept.insert(draw(st.integers(0, len(kept))), model.StorageItem(key=_dom(new_key), value=_dom("new")))
            count("local_storage", "added")
        _rewrite(origin.items, kept)
    # Cookies: change some values, add a fresh one; then shuffle them, which is no change.
    for cookie in child.storage.cookies:
        if draw(st.booleans()):
            cookie.value += "+"
            count("cookies", "changed")
    if draw(st.booleans()):
        child.storage.cookies.add(name="fresh-name", value="v", domain="a.test", path="/")
        count("cookies", "added")
    _reorder(draw, child.storage.cookies)
    # Records: remove one, change another.
    records_ = child.storage.indexed_db_records
    if len(records_) and draw(st.booleans()):
        del records_[draw(st.integers(0, len(records_) - 1))]
        count("indexed_db", "removed")
    if len(records_) and draw(st.booleans()):
        records_[draw(st.integers(0, len(records_) - 1))].value.data += b"+"
        count("indexed_db", "changed")
    # A scalar, a tab.
    if draw(st.booleans()):
        child.timestamp += 1
        count("capture", "changed")
    if draw(st.booleans()):
        if not child.HasField("history"):
            count("capture", "added")  # the history is now present
        child.history.tabs.add(target_id="new tab")
        count("tabs", "added")

    parent_items, child_items = diff.items(parent), diff.items(child)
    assert diff.summary(diff.compare(parent_items, child_items)) == expected
    delta = diff.diff(diff.index(parent_items), child_items)
    assert diff.delta_changes(diff.index(parent_items), delta) == expected


_COMPONENTS = {
    "capture", "cookies", "local_storage", "indexed_db", "cache_storage", "tabs", "auth", "extensions",
    "dom", "service_workers", "recording",
}


def test_describe_names_items_without_their_values() -> None:
    state = _many_items_state(2)
    state.storage.cookies[0].value = "secret-cookie-value"
    for key, _ in diff.items(state):
        described = diff.describe(key)
        assert described and "secret" not in described
        assert diff.component_of(key) in _COMPONENTS


# -- deltas in the container ---------------------------------------------------------------------


_KEY = bytes(range(32))
_KEY_ID = "0123456789abcdef"


@_SETTINGS
@given(
    pairs,
    st.sampled_from([None, "aes-256-gcm", "chacha20-poly1305"]),
    st.booleans(),
    st.integers(1, 400),
)
def test_a_delta_round_trips_through_the_container(
    pair: tuple[_S, _S], cipher: str | None, compress: bool, chunk_size: int
) -> None:
    parent, child = pair
    delta = diff.diff(diff.index(diff.items(parent)), diff.items(child), parent_version=3)
    seal = codec.Seal(_KEY_ID, _KEY, cipher) if cipher else None
    context = b"psp session s1 version 4"
    with _chunk_size(chunk_size):
        blob = codec.encode(delta, seal=seal, context=context, compress=compress)
    header = codec.read_header(blob)
    assert (header.kind, header.cipher, header.compressed) == ("delta", cipher or "none", compress)
    decoded = codec.decode(blob, keys={_KEY_ID: _KEY}.__getitem__, context=context)
    assert isinstance(decoded, model.StateDelta)
    assert decoded == delta
    assert [i.HasField("after") for i in decoded.items] == [i.HasField("after") for i in delta.items]
    assert diff.compose(diff.apply(diff.items(parent), decoded)) == child
    if seal is not None:
        with pytest.raises(CorruptSnapshotError):
            codec.decode(blob, keys={_KEY_ID: _KEY}.__getitem__, context=b"psp session s1 version 5")


def test_moved_items_travel_without_their_values() -> None:
    """Records that only changed place (two databases read in the other order) carry no value."""
    state = model.BrowserSessionState()
    for db_id, name in ((1, "first"), (2, "second")):
        database = state.storage.indexed_db.add(origin="https://a.test", name=_dom(name))
        database.stores.add(id=db_id, name=_dom("s"))
        for i in range(200):
            state.storage.indexed_db_records.add(
                store=db_id,
                key=model.SerializedValue(encoding="structured-clone-v1", data=str(i).encode()),
                value=model.SerializedValue(encoding="structured-clone-v1", data=b"v" * 500),
            )
    child = model.BrowserSessionState()
    child.CopyFrom(state)
    databases = list(child.storage.indexed_db)[::-1]
    records = sorted(child.storage.indexed_db_records, key=lambda r: -r.store)
    del child.storage.indexed_db[:], child.storage.indexed_db_records[:]
    child.storage.indexed_db.extend(databases)
    child.storage.indexed_db_records.extend(records)
    parent_items, child_items = diff.items(state), diff.items(child)
    delta = diff.diff(diff.index(parent_items), child_items)
    assert diff.apply(parent_items, delta) == child_items
    assert diff.compose(diff.apply(parent_items, delta)) == child
    moved = [item for item in delta.items if item.moved]
    assert len(moved) >= 200 and all(not item.value for item in moved)
    assert delta.ByteSize() < 200 * 150  # keys only (its own and where it goes), never the 500-byte values
    assert diff.delta_changes(diff.index(parent_items), delta) == {}
