"""Playwright storageState interop: `psp export --format playwright` and `psp import --format playwright`.

Rules: conversions are checked both ways on plain data; the real check uses Playwright
itself (sync API) on Debian's chromium, against the test site on loopback.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from psp_cdp.cdp.launch import DEFAULT_ARGS
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.clone import to_python
from psp_cdp.snapshot.model import BrowserSessionState, Cookie, OriginStorage, storage_dict, storage_items, text
from psp_cdp.snapshot.playwright import from_storage_state, is_storage_state, to_storage_state

from .site import Site

PSP = os.path.join(os.path.dirname(sys.executable), "psp")
CHROMIUM = "/usr/bin/chromium"

#: Every cookie attribute Playwright has, in each of its values.
COOKIES = [
    {"name": "sid", "value": "abc", "domain": "127.0.0.1", "path": "/", "expires": -1,
     "httpOnly": True, "secure": False, "sameSite": "Lax"},
    {"name": "strict", "value": "s=1|x", "domain": ".example.com", "path": "/app", "expires": 1893456000.5,
     "httpOnly": False, "secure": True, "sameSite": "Strict"},
    {"name": "none", "value": "", "domain": "example.com", "path": "/", "expires": 1893456000,
     "httpOnly": False, "secure": True, "sameSite": "None"},
    {"name": "chips", "value": "p", "domain": "widget.example", "path": "/", "expires": -1,
     "httpOnly": False, "secure": True, "sameSite": "None",
     "partitionKey": "https://top.example", "_crHasCrossSiteAncestor": True},
]

#: IndexedDB of plain JSON types, in Playwright's own layout, plus a few encoded values.
INDEXED_DB = [{
    "name": "app",
    "version": 3,
    "stores": [
        {"name": "kv", "autoIncrement": False, "records": [
            {"key": "user", "value": {"name": "Ada", "age": 36, "admin": True, "tags": ["a", "b"], "none": None}},
            {"key": 7, "value": 1.5},
            {"key": "s", "value": "text é \u2603"},
            {"key": "list", "value": [1, [2, {"x": False}], "three"]},
            {"keyEncoded": {"d": "2024-02-29T12:34:56.789Z"}, "valueEncoded": {"v": "undefined"}},
            {"key": [1, "a"], "valueEncoded": {"o": [{"k": "when", "v": {"d": "1969-12-31T23:59:59.999Z"}},
                                                     {"k": "big", "v": {"bi": "12345678901234567890"}},
                                                     {"k": "m", "v": {"m": [{"k": "a", "v": 1}], "id": 2}},
                                                     {"k": "self", "v": {"ref": 1}}], "id": 1}},
        ], "indexes": []},
        {"name": "people", "autoIncrement": False, "keyPath": "id", "records": [
            {"value": {"id": "p1", "email": "a@example.com"}},
            {"value": {"id": "p2", "email": "b@example.com"}},
        ], "indexes": [{"name": "by_email", "keyPath": "email", "multiEntry": False, "unique": True}]},
        {"name": "log", "autoIncrement": True, "records": [
            {"key": 1, "value": "first"}, {"key": 2, "value": {"n": 2}},
        ], "indexes": []},
        {"name": "pairs", "autoIncrement": False, "keyPathArray": ["a", "b"], "records": [
            {"value": {"a": 1, "b": "x"}},
        ], "indexes": [{"name": "ab", "keyPathArray": ["a", "b"], "multiEntry": False, "unique": False}]},
    ],
}]


def storage_state(origin: str = "http://127.0.0.1:8080") -> dict:
    return {
        "cookies": copy.deepcopy(COOKIES),
        "origins": [{
            "origin": origin,
            "localStorage": [{"name": "theme", "value": "dark"}, {"name": "lone \ud800", "value": "é"}],
            "indexedDB": copy.deepcopy(INDEXED_DB),
        }, {"origin": "https://other.example", "localStorage": [{"name": "k", "value": "v"}]}],
    }


def psp(*args: str, store: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PSP, *args, "--store", store], capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise AssertionError(f"psp {args} failed: {result.stderr}")
    return result


def test_cookies_and_local_storage_round_trip_both_ways() -> None:
    data = storage_state()
    data["origins"][0].pop("indexedDB")
    state = from_storage_state(data)
    assert [c.name for c in state.storage.cookies] == ["sid", "strict", "none", "chips"]
    sid, strict, none, chips = state.storage.cookies
    assert not sid.HasField("expires") and sid.http_only and sid.same_site == Cookie.SAME_SITE_LAX
    assert strict.expires == 1893456000.5 and strict.secure and strict.same_site == Cookie.SAME_SITE_STRICT
    assert strict.domain == ".example.com" and strict.path == "/app" and strict.value == "s=1|x"
    assert none.same_site == Cookie.SAME_SITE_NONE
    assert chips.partitioned and chips.partition_key.top_level_site == "https://top.example"
    assert storage_dict(state.storage.local_storage[0]) == {"theme": "dark", "lone \ud800": "é"}
    # the state survives psp's own codecs, lone surrogate included
    state = codec.decode(codec.encode(state))
    again, missing = to_storage_state(state)
    assert again == data and missing == []

    # and the other way: a psp state -> Playwright -> psp state
    original = BrowserSessionState(version="1.0.0")
    original.storage.cookies.add(name="a", value="1", domain="site.test", path="/", expires=2e9, http_only=True,
                                 secure=True, same_site=Cookie.SAME_SITE_STRICT, source_port=-1)
    original.storage.cookies.add(name="b", value="2", domain=".site.test", path="/x", same_site=Cookie.SAME_SITE_NONE,
                                 secure=True, source_port=-1)
    original.storage.local_storage.append(storage_items(OriginStorage(origin="https://site.test"), {"k": "v", "e": ""}))
    exported, missing = to_storage_state(original)
    assert missing == []
    back = from_storage_state(json.loads(json.dumps(exported)))
    assert list(back.storage.cookies) == list(original.storage.cookies)
    assert list(back.storage.local_storage) == list(original.storage.local_storage)


def test_indexed_db_round_trip_both_ways() -> None:
    data = storage_state()
    state = codec.decode(codec.encode(from_storage_state(data)))
    assert not state.report.uncovered
    (database,) = state.storage.indexed_db
    assert text(database.name) == "app" and database.version == 3
    kv, people, log, pairs = database.stores
    assert people.key_path.path == "id" and list(pairs.key_path.paths.paths) == ["a", "b"]
    assert log.auto_increment and text(people.indexes[0].name) == "by_email" and people.indexes[0].unique
    records = {}
    for record in state.storage.indexed_db_records:
        records.setdefault(record.store, []).append((to_python(record.key.data), to_python(record.value.data)))
    assert records[kv.id][:4] == [
        ("user", {"name": "Ada", "age": 36, "admin": True, "tags": ["a", "b"], "none": None}),
        (7, 1.5), ("s", "text é \u2603"), ("list", [1, [2, {"x": False}], "three"]),
    ]
    assert json.loads(state.storage.indexed_db_records[4].key.data)["n"] == [["Date", 1709210096789]]
    cyclic = to_python(state.storage.indexed_db_records[5].value.data)
    assert cyclic["self"] is cyclic and cyclic["big"] == 12345678901234567890
    assert records[people.id] == [("p1", {"id": "p1", "email": "a@example.com"}), ("p2", {"id": "p2", "email": "b@example.com"})]
    assert records[pairs.id] == [([1, "x"], {"a": 1, "b": "x"})]
    assert records[log.id] == [(1, "first"), (2, {"n": 2})]

    again, missing = to_storage_state(state)
    assert again == data and missing == []


def test_what_playwright_cannot_hold_is_named() -> None:
    state = from_storage_state(storage_state())
    tab = state.history.tabs.add(active=True)
    tab.navigation.current_url = "https://site.test/"
    tab.session_storage.append(storage_items(OriginStorage(origin="https://site.test"), {"s": "1"}))
    state.storage.cache_storage.add(id=1, origin="https://site.test", entry_count=1)
    state.storage.cache_entries.add(cache=1, request_url="https://site.test/a")
    state.network.service_workers.add(origin="https://site.test", scope="https://site.test/")
    state.storage.local_storage.append(storage_items(
        OriginStorage(origin="https://frame.test", storage_key="https://frame.test/^0https://top.test"), {"x": "y"}))
    blob_store = state.storage.indexed_db[0].stores[0].id
    state.storage.indexed_db_records.add(store=blob_store)
    state.storage.indexed_db_records[-1].key.CopyFrom(state.storage.indexed_db_records[0].key)
    state.storage.indexed_db_records[-1].value.encoding = "structured-clone-v1"
    state.storage.indexed_db_records[-1].value.data = b'{"v":1,"r":[0],"n":[["Blob","text/plain","aGk="]]}'
    exported, missing = to_storage_state(state)
    joined = "\n".join(missing)
    for name in ("sessionStorage (1 items)", "tabs (1", "CacheStorage (1 caches, 1 entries)", "service workers (1)",
                 "partitioned localStorage https://frame.test/^0https://top.test", "/kv #7: Blob"):
        assert name in joined, (name, missing)
    assert len(exported["origins"][0]["indexedDB"][0]["stores"][0]["records"]) == 6


def test_detection() -> None:
    assert is_storage_state({"cookies": [], "origins": []})
    assert not is_storage_state({"version": "1.0.0", "storage": {}})


@pytest.fixture(scope="module")
def sync_playwright():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(DEFAULT_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def test_playwright_loads_an_export_and_psp_imports_what_playwright_saves(tmp_path, site: Site, sync_playwright) -> None:
    store = str(tmp_path / "store")
    origin = site.url()
    data = storage_state(origin)
    data["cookies"].append({"name": "sid2", "value": "v2", "domain": "127.0.0.1", "path": "/", "expires": -1,
                            "httpOnly": True, "secure": False, "sameSite": "Lax"})
    source = tmp_path / "source.json"
    source.write_text(json.dumps(data))
    # a psp session (imported from PSP JSON) exported for Playwright
    psp_json = tmp_path / "state.json"
    psp_json.write_text(codec.to_json(from_storage_state(data)))
    psp("import", str(psp_json), "--name", "web", store=store)
    exported = tmp_path / "exported.json"
    result = psp("export", "web", "--format", "playwright", "-o", str(exported), store=store)
    assert "not in Playwright's format" not in result.stderr

    context = sync_playwright.new_context(storage_state=str(exported))
    try:
        page = context.new_page()
        page.goto(f"{origin}/cookies")
        seen = json.loads(page.inner_text("body"))["cookies"]
        assert seen["sid"] == "abc" and seen["sid2"] == "v2"
        assert page.evaluate("localStorage.getItem('theme')") == "dark"
        user = page.evaluate("""() => new Promise((resolve, reject) => {
            const open = indexedDB.open('app');
            open.onsuccess = () => {
                const get = open.result.transaction('kv').objectStore('kv').get('user');
                get.onsuccess = () => resolve(get.result);
                get.onerror = () => reject(get.error);
            };
            open.onerror = () => reject(open.error);
        })""")
        assert user["name"] == "Ada" and user["tags"] == ["a", "b"]

        # Playwright's own storageState, imported by psp (format detected, then named)
        page.goto(f"{origin}/storage?local.fresh=yes")
        page.evaluate("""() => new Promise((resolve, reject) => {
            const open = indexedDB.open('made', 1);
            open.onupgradeneeded = () => open.result.createObjectStore('things');
            open.onsuccess = () => {
                const tx = open.result.transaction('things', 'readwrite');
                tx.objectStore('things').put({when: new Date(0), n: 42}, 'k');
                tx.oncomplete = () => resolve();
                tx.onerror = () => reject(tx.error);
            };
        })""")
        saved = tmp_path / "saved.json"
        # written by hand: Playwright's own path= writer fails on the lone surrogate (UnicodeEncodeError)
        saved.write_text(json.dumps(context.storage_state(indexed_db=True)))
    finally:
        context.close()

    for fmt in ((), ("--format", "playwright")):
        name = f"pw{len(fmt)}"
        out = psp("import", str(saved), "--name", name, *fmt, store=store).stdout
        assert f"imported {saved} as {name}" in out
        back = tmp_path / f"{name}.json"
        psp("export", name, "--format", "json", "-o", str(back), store=store)
        state = codec.from_json(back.read_text())
        cookies = {c.name: c for c in state.storage.cookies}
        assert cookies["sid"].value == "abc" and cookies["sid"].http_only
        local = {s.origin: storage_dict(s) for s in state.storage.local_storage}
        assert local[origin]["fresh"] == "yes" and local[origin]["theme"] == "dark" and local[origin]["lone \ud800"] == "é"
        databases = {text(d.name): d for d in state.storage.indexed_db}
        assert sum(s.record_count for s in databases["app"].stores) == 11  # what psp exported, read back by Playwright
        things = databases["made"].stores[0].id
        (record,) = [r for r in state.storage.indexed_db_records if r.store == things]
        assert to_python(record.key.data) == "k"
        value = json.loads(record.value.data)
        assert value["n"][0][:3] == ["Object", "when", [1]] and value["n"][1] == ["Date", 0]
        # and back out to Playwright, as Playwright wrote it
        again, _ = to_storage_state(state)
        assert again["cookies"] == json.loads(saved.read_text())["cookies"]
