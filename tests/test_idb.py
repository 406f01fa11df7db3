"""IndexedDB round trips between two Chromium processes, checked inside the restored page.

Every structured-cloneable type is written by the page in browser A, captured,
encoded, restored into a new context of browser B and checked there with
``instanceof`` and value comparisons, in the page's own world.
"""

from __future__ import annotations

import base64
import json

from psp_cdp.cdp import CdpConnection
from psp_cdp.snapshot import codec
from psp_cdp.state import capture_state, restore_state

from .helpers import browser_context, evaluate, frame_sessions, frame_with_key, frames_url
from .site import Site

#: Builds the test databases in the page: every type, key kinds, schema, key generators.
BUILD = r"""
(async () => {
  const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const open = indexedDB.open("kitchen\ud800sink", 7);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore("values");
    const people = db.createObjectStore("people", {keyPath: "id", autoIncrement: true});
    people.createIndex("by_email", "email", {unique: true});
    people.createIndex("by_tag", "tags", {multiEntry: true});
    people.createIndex("by_name_age", ["name", "age"]);
    db.createObjectStore("compound", {keyPath: ["a", "b"]});
    db.createObjectStore("counter", {autoIncrement: true});
    db.createObjectStore("nested", {keyPath: "meta.id", autoIncrement: true});
  };
  const db = await req(open);
  const buf = new ArrayBuffer(32);
  new Uint8Array(buf).forEach((_, i, a) => { a[i] = i * 7; });
  const file = new File([new Uint8Array([0, 1, 254, 255])], "photo.bin", {type: "application/x-test", lastModified: 1700000000123});
  const values = {
    undef: undefined, nul: null, t: true, f: false, num: 3.25, negzero: -0, nan: NaN, inf: Infinity, ninf: -Infinity,
    big: -123456789012345678901234567890n, str: "a\u0000b\ud800c😀", bool_obj: new Boolean(true), num_obj: new Number(-0),
    str_obj: new String("boxed"), big_obj: Object(5n), date: new Date(1700000000000), bad_date: new Date(NaN),
    regexp: /x(y)?z/gimsuy, error: new Error("plain"), type_error: new TypeError("typed"), range_error: new RangeError("ranged"),
    syntax_error: new SyntaxError("syn"), reference_error: new ReferenceError("ref"), eval_error: new EvalError("ev"),
    uri_error: new URIError("uri"), buffer: buf, view: new DataView(buf, 8, 16), bytes: new Uint8Array(buf, 4, 8),
    i8: new Int8Array([-1, 2]), u8c: new Uint8ClampedArray([255]), i16: new Int16Array([-300]), u16: new Uint16Array([65535]),
    i32: new Int32Array([-7]), u32: new Uint32Array([4000000000]), f32: new Float32Array([0.5]), f64: new Float64Array([Math.PI]),
    b64: new BigInt64Array([-5n]), bu64: new BigUint64Array([18446744073709551615n]), f16: new Float16Array([2.5]),
    map: new Map([[{key: "object"}, "value"], ["s", 1]]), set: new Set([1, "two", {three: 3}]),
    blob: new Blob(["blob bytes \u00e9"], {type: "text/plain;charset=utf-8"}), file,
    sparse: [1, , 3], plain: {nested: {list: [1, [2, [3]]]}}, "__proto__ key": 1,
  };
  values.sparse[9] = "last";
  values.sparse.extra = "prop";
  Object.defineProperty(values.plain, "__proto__", {value: "own", enumerable: true, writable: true, configurable: true});
  const cyclic = {name: "cycle"}; cyclic.self = cyclic; cyclic.list = [cyclic];
  const shared = {shared: true};
  let deep = {}; const deepRoot = deep;
  for (let i = 0; i < 500; i++) { deep.next = {level: i + 1}; deep = deep.next; }
  const tx = db.transaction(["values", "people", "compound", "counter", "nested"], "readwrite");
  const v = tx.objectStore("values");
  for (const [k, x] of Object.entries(values)) v.put(x, k);
  v.put(cyclic, "cyclic");
  v.put({a: shared, b: shared, c: [shared]}, "shared");
  v.put(deepRoot, "deep");
  v.put("number key", 42);
  v.put("date key", new Date(5));
  v.put("binary key", new Uint8Array([1, 2, 3]).buffer);
  v.put("array key", [1, "a", [new Date(0)]]);
  v.put("string key", "\ud800lone");
  const people = tx.objectStore("people");
  people.add({name: "ann", age: 30, email: "ann@x", tags: ["a", "b"]});
  people.add({name: "bob", age: 40, email: "bob@x", tags: ["b"]});
  people.add({name: "cid", age: 50, email: "cid@x", tags: []});
  people.put({id: 10, name: "dee", age: 60, email: "dee@x", tags: ["c"]});
  people.delete(10);
  tx.objectStore("compound").put({a: 1, b: "x", v: "compound"});
  const counter = tx.objectStore("counter");
  for (let i = 0; i < 5; i++) counter.add("n" + i);
  counter.delete(5);
  tx.objectStore("nested").add({meta: {}, v: 1});
  await new Promise((res) => { tx.oncomplete = res; });
  db.close();
  const other = await req(indexedDB.open("second"));
  other.close();
  return true;
})()
"""

#: Checks everything in the page of browser B; returns the names of the checks that failed.
CHECK = r"""
(async () => {
  const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const failed = [];
  const check = (name, ok) => { if (!ok) failed.push(name); };
  const dbs = await indexedDB.databases();
  check("databases", dbs.length === 2 && dbs.some((d) => d.name === "kitchen\ud800sink" && d.version === 7) && dbs.some((d) => d.name === "second"));
  const db = await req(indexedDB.open("kitchen\ud800sink"));
  const store = (name) => db.transaction(name).objectStore(name);
  const v = store("values");
  const get = (k) => req(store("values").get(k));
  const all = {};
  for (const k of await req(v.getAllKeys())) all[typeof k === "string" ? k : JSON.stringify(k)] = await get(k);
  const has = (k) => Object.prototype.hasOwnProperty.call(all, k);
  check("undefined", has("undef") && all.undef === undefined);
  check("null", all.nul === null);
  check("booleans", all.t === true && all.f === false);
  check("number", all.num === 3.25);
  check("-0", Object.is(all.negzero, -0));
  check("NaN", Number.isNaN(all.nan));
  check("Infinity", all.inf === Infinity && all.ninf === -Infinity);
  check("BigInt", all.big === -123456789012345678901234567890n);
  check("string code units", all.str === "a\u0000b\ud800c😀");
  check("Boolean object", all.bool_obj instanceof Boolean && all.bool_obj.valueOf() === true);
  check("Number object", all.num_obj instanceof Number && Object.is(all.num_obj.valueOf(), -0));
  check("String object", all.str_obj instanceof String && all.str_obj.valueOf() === "boxed");
  check("BigInt object", typeof all.big_obj === "object" && all.big_obj.valueOf() === 5n);
  check("Date", all.date instanceof Date && all.date.getTime() === 1700000000000);
  check("invalid Date", all.bad_date instanceof Date && Number.isNaN(all.bad_date.getTime()));
  check("RegExp", all.regexp instanceof RegExp && all.regexp.source === "x(y)?z" && all.regexp.flags === "gimsuy");
  for (const [key, type, message] of [["error", Error, "plain"], ["type_error", TypeError, "typed"], ["range_error", RangeError, "ranged"],
      ["syntax_error", SyntaxError, "syn"], ["reference_error", ReferenceError, "ref"], ["eval_error", EvalError, "ev"], ["uri_error", URIError, "uri"]]) {
    check(key, all[key] instanceof type && all[key].message === message && all[key].name === type.name);
  }
  const bytes = new Uint8Array(all.buffer);
  check("ArrayBuffer", all.buffer instanceof ArrayBuffer && bytes.length === 32 && bytes.every((b, i) => b === (i * 7) % 256));
  check("DataView", all.view instanceof DataView && all.view.byteOffset === 8 && all.view.byteLength === 16 && all.view.getUint8(0) === 56);
  check("Uint8Array view", all.bytes instanceof Uint8Array && all.bytes.byteOffset === 4 && all.bytes.length === 8 && all.bytes.buffer.byteLength === 32 && all.bytes[0] === 28);
  check("typed arrays", all.i8 instanceof Int8Array && all.i8[0] === -1 && all.u8c instanceof Uint8ClampedArray && all.u8c[0] === 255
    && all.i16 instanceof Int16Array && all.i16[0] === -300 && all.u16 instanceof Uint16Array && all.u16[0] === 65535
    && all.i32 instanceof Int32Array && all.i32[0] === -7 && all.u32 instanceof Uint32Array && all.u32[0] === 4000000000
    && all.f32 instanceof Float32Array && all.f32[0] === 0.5 && all.f64 instanceof Float64Array && all.f64[0] === Math.PI
    && all.b64 instanceof BigInt64Array && all.b64[0] === -5n && all.bu64 instanceof BigUint64Array && all.bu64[0] === 18446744073709551615n
    && all.f16 instanceof Float16Array && all.f16[0] === 2.5);
  const mapKey = all.map instanceof Map ? [...all.map.keys()][0] : null;
  check("Map with object key", all.map instanceof Map && all.map.size === 2 && mapKey.key === "object" && all.map.get(mapKey) === "value" && all.map.get("s") === 1);
  check("Set", all.set instanceof Set && all.set.size === 3 && all.set.has("two") && [...all.set][2].three === 3);
  check("Blob", all.blob instanceof Blob && !(all.blob instanceof File) && all.blob.type === "text/plain;charset=utf-8" && (await all.blob.text()) === "blob bytes \u00e9");
  const fileBytes = all.file instanceof File ? new Uint8Array(await all.file.arrayBuffer()) : [];
  check("File", all.file instanceof File && all.file.name === "photo.bin" && all.file.type === "application/x-test"
    && all.file.lastModified === 1700000000123 && fileBytes.join() === "0,1,254,255");
  check("sparse array", Array.isArray(all.sparse) && all.sparse.length === 10 && !(1 in all.sparse) && !(5 in all.sparse) && all.sparse[2] === 3
    && all.sparse[9] === "last" && all.sparse.extra === "prop");
  check("plain nested", all.plain.nested.list[1][1][0] === 3 && Object.prototype.hasOwnProperty.call(all.plain, "__proto__") && Object.getPrototypeOf(all.plain) === Object.prototype);
  check("cycle", all.cyclic.self === all.cyclic && all.cyclic.list[0] === all.cyclic);
  check("shared reference", all.shared.a === all.shared.b && all.shared.c[0] === all.shared.a);
  let d = all.deep, depth = 0; while (d.next) { d = d.next; depth++; }
  check("deep nesting", depth === 500 && d.level === 500);
  check("number key", all["42"] === "number key");
  check("date key", (await get(new Date(5))) === "date key");
  check("binary key", (await get(new Uint8Array([1, 2, 3]).buffer)) === "binary key");
  check("array key", (await get([1, "a", [new Date(0)]])) === "array key");
  check("lone surrogate key", (await get("\ud800lone")) === "string key");
  const people = store("people");
  check("people schema", people.keyPath === "id" && people.autoIncrement && people.indexNames.length === 3);
  const byEmail = people.index("by_email"), byTag = people.index("by_tag"), byNameAge = people.index("by_name_age");
  check("unique index", byEmail.unique && !byEmail.multiEntry && (await req(byEmail.get("bob@x"))).name === "bob");
  check("multiEntry index", byTag.multiEntry && (await req(byTag.count("b"))) === 2 && (await req(byTag.getAll("a")))[0].name === "ann");
  check("compound index", Array.isArray(byNameAge.keyPath) && (await req(byNameAge.get(["cid", 50]))).email === "cid@x");
  check("deleted record stays deleted", (await req(people.get(10))) === undefined);
  check("compound key path", Array.isArray(store("compound").keyPath) && (await req(store("compound").get([1, "x"]))).v === "compound");
  const counterCount = await req(store("counter").count());
  check("counter records", counterCount === 4);
  const wtx = db.transaction(["people", "counter", "nested"], "readwrite");
  const nextPerson = await req(wtx.objectStore("people").add({name: "eve", age: 1, email: "eve@x", tags: []}));
  const nextCount = await req(wtx.objectStore("counter").add("n5"));
  const nextNested = await req(wtx.objectStore("nested").add({meta: {}, v: 2}));
  check("key generator continues after a deleted higher key", nextPerson === 11);
  check("key generator continues after a deleted last record", nextCount === 6);
  check("key generator with a nested key path", nextNested === 2);
  let uniqueRejected = false;
  try { await req(wtx.objectStore("people").add({name: "x", age: 2, email: "ann@x", tags: []})); } catch (e) { uniqueRejected = e.name === "ConstraintError"; }
  check("unique index still enforced", uniqueRejected);
  db.close();
  return failed;
})()
"""


async def test_every_type_schema_and_key_generator_round_trip(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    url = site.url("127.0.0.1", "/page")
    async with browser_context(cdp) as source:
        page = await source.new_page(url)
        assert await evaluate(page, BUILD, await_promise=True) is True
        state = codec.decode(codec.encode(await capture_state(cdp, context=source.id)))
    assert not [u for u in state.report.uncovered if "IndexedDB" in u.what], state.report.uncovered
    names = sorted(d.name.text or d.name.wtf8.decode("utf-8", "surrogatepass") for d in state.storage.indexed_db)
    assert names == ["kitchen\ud800sink", "second"]
    async with browser_context(cdp_b) as target:
        # The target already holds a database of its own there: restore replaces it.
        page_b = await target.new_page(url)
        await evaluate(page_b, "new Promise((r) => { indexedDB.open('stale').onsuccess = (e) => { e.target.result.close(); r(); }; })", await_promise=True)
        await restore_state(cdp_b, state, context=target.id, only=["indexed_db"])
        failed = await evaluate(page_b, CHECK, await_promise=True)
        assert failed == []
        stale = await evaluate(page_b, "indexedDB.databases().then((d) => d.map((x) => x.name))", await_promise=True)
        assert "stale" not in stale


async def test_a_value_that_cannot_be_read_out_is_reported_and_the_rest_captured(site: Site, cdp: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        page = await source.new_page(site.url("127.0.0.1", "/page"))
        await evaluate(
            page,
            """(async () => {
              const key = await crypto.subtle.generateKey({name: "AES-GCM", length: 256}, false, ["encrypt"]);
              const db = await new Promise((r) => { const o = indexedDB.open("keys"); o.onupgradeneeded = () => o.result.createObjectStore("k"); o.onsuccess = () => r(o.result); });
              const tx = db.transaction("k", "readwrite");
              tx.objectStore("k").put(key, "secret");
              tx.objectStore("k").put("fine", "other");
              await new Promise((r) => { tx.oncomplete = r; });
              db.close();
            })()""",
            await_promise=True,
        )
        state = await capture_state(cdp, context=source.id, only=["indexed_db"])
    reasons = [(u.what, u.reason) for u in state.report.uncovered]
    assert any("'keys'" in what and "secret" in what and "not extractable" in reason for what, reason in reasons), reasons
    assert len(state.storage.indexed_db_records) == 1


async def test_partitioned_databases_keep_their_partition(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    frame_origin = site.https_url("localhost")
    top = frames_url(site, "127.0.0.1", f"{frame_origin}/page?title=child")
    key = f"{frame_origin}/^0http://127.0.0.1"
    make = """new Promise((resolve) => {
      const o = indexedDB.open(%s, 2);
      o.onupgradeneeded = () => o.result.createObjectStore("s");
      o.onsuccess = () => { const tx = o.result.transaction("s", "readwrite"); tx.objectStore("s").put(new Map([[1, "partitioned"]]), "k");
        tx.oncomplete = () => { o.result.close(); resolve(true); }; };
    })"""
    names = "indexedDB.databases().then((d) => d.map((x) => x.name).sort())"
    async with browser_context(cdp) as source:
        first_party = await source.new_page(f"{frame_origin}/page?title=own")
        await evaluate(first_party, make % '"own"', await_promise=True)
        tab = await source.new_page(top)
        async with frame_sessions(cdp, tab.target_id or "") as frames:
            iframe = await frame_with_key(frames, key)
            await evaluate(iframe.session, make % '"third"', await_promise=True)
        state = codec.decode(codec.encode(await capture_state(cdp, context=source.id, only=["indexed_db"])))
    assert sorted((d.storage_key, d.name.text) for d in state.storage.indexed_db) == [("", "own"), (key, "third")]

    async with browser_context(cdp_b) as target:
        report = await restore_state(cdp_b, state, context=target.id, only=["indexed_db"])
        assert report.restored == {"indexed_db": 2} and not report.notes, report
        tab = await target.new_page(top)
        async with frame_sessions(cdp_b, tab.target_id or "") as frames:
            iframe = await frame_with_key(frames, key)
            assert await evaluate(iframe.session, names, await_promise=True) == ["third"]
            value = """new Promise((r) => { indexedDB.open("third").onsuccess = (e) => {
              const q = e.target.result.transaction("s").objectStore("s").get("k");
              q.onsuccess = () => r(q.result instanceof Map && q.result.get(1)); }; })"""
            assert await evaluate(iframe.session, value, await_promise=True) == "partitioned"
        own = await target.new_page(f"{frame_origin}/page?title=own")
        assert await evaluate(own, names, await_promise=True) == ["own"]


async def test_tokens_in_indexeddb_records_are_found(site: Site, cdp: CdpConnection) -> None:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    jwt = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64({'exp': 4102444800, 'sub': 'user-1', 'iss': 'https://idp'})}.c2ln"
    record = {
        "fbase_key": "firebase:authUser:KEY:[DEFAULT]",
        "value": {"uid": "user-1", "stsTokenManager": {"accessToken": jwt, "refreshToken": "AMf-refresh-0123456789abcdef", "expirationTime": 4102444800000}},
    }
    async with browser_context(cdp) as source:
        page = await source.new_page(site.url("127.0.0.1", "/page"))
        await evaluate(
            page,
            """new Promise((resolve) => {
              const o = indexedDB.open("firebaseLocalStorageDb", 1);
              o.onupgradeneeded = () => o.result.createObjectStore("firebaseLocalStorage", {keyPath: "fbase_key"});
              o.onsuccess = () => { const tx = o.result.transaction("firebaseLocalStorage", "readwrite");
                tx.objectStore("firebaseLocalStorage").put(%s); tx.oncomplete = () => { o.result.close(); resolve(); }; };
            })""" % json.dumps(record),
            await_promise=True,
        )
        state = await capture_state(cdp, context=source.id, only=["indexed_db", "auth"])
    tokens = {t.type: t for t in state.auth.tokens}
    assert tokens["JWT"].value == jwt and tokens["JWT"].expires_at == 4102444800000 and tokens["JWT"].subject == "user-1"
    assert tokens["JWT"].source.startswith("indexedDB http://127.0.0.1:") and "firebaseLocalStorageDb/firebaseLocalStorage" in tokens["JWT"].source
    assert any(t.value == "AMf-refresh-0123456789abcdef" for t in state.auth.tokens)
