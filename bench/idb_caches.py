"""IndexedDB + CacheStorage benchmark: psp_cdp against Playwright's storage_state(indexed_db=True).

What it does (see bench/README.md):

1. serves a small site on two HTTP origins (``http://127.0.0.1:<a>`` and
   ``http://localhost:<b>``), each with its own ThreadingHTTPServer bound to loopback;
2. launches one Chromium with ``psp_cdp.cdp.launch_chromium()`` and builds, in its
   default context, one tab per origin holding 10,000 IndexedDB records of mixed types
   (strings, numbers, nested objects, arrays, Dates, Blobs, Files, typed arrays,
   ArrayBuffers, Maps, Sets, BigInts, -0, NaN; about 1 KB each, generated in the page
   from fixed seeds) in 3 databases with indexes and two autoIncrement stores, plus 50
   CacheStorage entries in 4 caches (text and binary bodies of a few KB);
3. times, for N rounds on that same state: psp_cdp connect / capture_state / encode /
   decode / restore_state(context="new") (and until the data is readable in the
   restored pages), and Playwright connect_over_cdp / storage_state(indexed_db=True) /
   new_context(storage_state=...) (and until the data is readable in a page per origin);
4. in the first round, after its timed steps and before the restored context goes away,
   counts inside the restored pages what came back (records per store, values that keep
   their exact type and value, keys, indexes, key generators, cache entries found by
   ``caches.match``): the "carried over" table;
5. measures, in a child process, the peak RSS (``resource.getrusage``) and the Python
   heap peak (tracemalloc) of psp_cdp connect + capture + encode; for Playwright, whose
   work happens in its Node driver, the driver's peak RSS over the run;
6. prints markdown tables; ``--json PATH`` writes every figure to a file.

Run: ``.venv/bin/python bench/idb_caches.py [--rounds N] [--json out.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import html
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import trio

import psp_cdp
from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.model import BrowserSessionState, text
from psp_cdp.state import capture_state, components

from benchkit import (
    Origin, PlaywrightOverCdp, evaluate, finish_run, goto, kib, ms, page_targets, psp_capture, restored_in_new_context,
    serve_site,
)

CHROMIUM = "/usr/bin/chromium"
ROUND_TIMEOUT = 90.0  # seconds, per psp_cdp step; a hung step fails the run instead of hanging it
IN_PLACE_TIMEOUT = 15.0  # seconds to wait for restored data to become readable in the pages

# --------------------------------------------------------------------------------------
# The site: one ThreadingHTTPServer per origin
# --------------------------------------------------------------------------------------

#: (label, host the browser uses, address the server binds). "localhost" is bound on
#: 127.0.0.1: Chromium resolves localhost to loopback itself.
ORIGIN_SPECS = [
    ("mail", "127.0.0.1", "127.0.0.1"),
    ("shop", "localhost", "127.0.0.1"),
]

#: Content types of the assets the server hands out (and the caches keep).
ASSET_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "woff2": "font/woff2",
}


def asset_body(label: str, path: str) -> tuple[bytes, str]:
    """The deterministic body of an asset: text or binary, 1 to 6 KB."""
    rng = random.Random(f"{label}{path}")
    extension = path.rsplit(".", 1)[-1]
    size = rng.randint(1024, 6 * 1024)
    content_type = ASSET_TYPES.get(extension, "application/octet-stream")
    if content_type.startswith("text/"):
        words = "const let function return cache fetch render state value café 東京 🙂 {} () => ;".split()
        return " ".join(rng.choices(words, k=size // 5)).encode()[:size], content_type
    head = b"\x89PNG\r\n\x1a\n" if extension == "png" else b"wOF2"
    return head + rng.randbytes(size - len(head)), content_type


class SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    label = "site"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/favicon.ico":
            self._reply(404, b"", "text/plain", "no-store")
        elif path.startswith(("/static/", "/img/", "/fonts/")):
            body, content_type = asset_body(self.label, path)
            self._reply(200, body, content_type, "public, max-age=3600")
        else:
            title = f"{self.label} {path}"
            body = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
                    f"<body><h1>{html.escape(title)}</h1></body></html>").encode()
            self._reply(200, body, "text/html; charset=utf-8", "no-store")

    def _reply(self, status: int, body: bytes, content_type: str, cache_control: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache_control)
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------
# The state, built and checked inside the pages
# --------------------------------------------------------------------------------------

#: One page-side library (a single JS expression) installed as globalThis.__bench:
#: build(label) fills the origin's IndexedDB and caches; verify(label, cacheTruth)
#: regenerates the expected records from the same seeds and compares them, value by
#: value, with what the page reads back; counts(label) is the quick "is it there" check.
#: Every record is generated from its own seed "<db>/<store>/<i>", so any record can be
#: regenerated alone.
BENCH_JS = r"""(() => {
  if (globalThis.__bench) return globalThis.__bench;
  const WORDS = ("alpha beta gamma delta inbox thread message draft label folder user item price cart token cache " +
    "settings theme layout locale café naïve 東京 Ünïcødé 🙂 invoice order lamp chair desk").split(" ");
  const NAMES = ["ada", "bob", "chloé", "dmitri", "eun-ji", "farah", "gus", "hiro"];
  const TAGS = ["work", "family", "travel", "bills", "news", "later", "important"];
  const CATS = ["lighting", "furniture", "kitchen", "garden", "office", "textiles"];
  const BASE = Date.UTC(2024, 0, 1);

  function rng(seed) {  // xmur3 + mulberry32: a small seeded PRNG
    let h = 1779033703 ^ seed.length;
    for (let i = 0; i < seed.length; i++) { h = Math.imul(h ^ seed.charCodeAt(i), 3432918353); h = (h << 13) | (h >>> 19); }
    let a = h >>> 0;
    const next = () => {
      a = (a + 0x6D2B79F5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (n) => Math.floor(next() * n);
    const pick = (xs) => xs[int(xs.length)];
    const words = (n) => Array.from({length: n}, () => pick(WORDS)).join(" ");
    const text = (chars) => {  // about `chars` UTF-16 units, never cutting a surrogate pair
      let s = "";
      while (s.length < chars) s += pick(WORDS) + " ";
      return /[\ud800-\udbff]/.test(s[chars - 1]) ? s.slice(0, chars - 1) : s.slice(0, chars);
    };
    const bytes = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; };
    return {next, int, pick, words, text, bytes};
  }
  const day = (r) => new Date(BASE + r.int(365 * 86400) * 1000);

  function message(i, r) {
    const v = {
      id: "m" + String(i).padStart(6, "0"), thread: Math.floor(i / 5), seq: i % 5,
      folder: r.pick(["inbox", "archive", "sent", "drafts", "spam"]), subject: r.words(6),
      from: r.pick(NAMES) + "@mail.test", to: Array.from({length: 1 + r.int(3)}, () => r.pick(NAMES) + "@mail.test"),
      date: day(r), tags: Array.from({length: r.int(4)}, () => r.pick(TAGS)), body: r.text(560),
      flags: {seen: r.next() < 0.6, starred: r.next() < 0.1, score: Math.round(r.next() * 1000) / 10,
              spam: {p: r.next(), rules: [r.int(100), r.int(100)]}},
    };
    if (i % 4 === 0) v.headers = new Map([["x-mailer", r.words(2)], ["received", r.words(8)], ["x-priority", r.int(5)]]);
    if (i % 10 === 3) v.flags.weight = -0;
    return v;
  }
  function attachment(i, r) {
    const binary = i % 3 === 0, n = 300 + r.int(400);
    const v = {
      messageId: "m" + String(r.int(4000)).padStart(6, "0"), name: `file-${i}.${binary ? "bin" : "txt"}`,
      blob: binary ? new Blob([r.bytes(n)], {type: "application/octet-stream"}) : new Blob([r.text(n)], {type: "text/plain"}),
      thumb: r.bytes(96), added: day(r),
    };
    if (i % 5 === 0) v.file = new File([r.text(160)], `note-${i}.txt`, {type: "text/plain", lastModified: BASE + i * 1000});
    return v;
  }
  function prefKey(i) {
    switch (i % 5) {
      case 0: return `pref:${i}`;
      case 1: return i * 1.5;
      case 2: return ["user", i % 50, `k${i}`];
      case 3: return new Date(BASE + i * 60000);
      default: return new Uint8Array([i >> 8, i & 255, 7]);
    }
  }
  function pref(i, r) {
    switch (i % 5) {
      case 0: return new Map(Array.from({length: 12}, (_, j) =>
        [`setting.${j}`, j % 3 === 0 ? r.words(8) : j % 3 === 1 ? r.int(1e6) : {on: r.next() < 0.5, note: r.words(4)}]));
      case 1: return new Set(Array.from({length: 24}, (_, j) => `${j}:${r.words(4)}`));
      case 2: return {plain: r.words(10), zero: -0, list: [r.int(100), r.words(3), null, true],
                      nested: {a: {b: {c: r.text(700)}}}};
      case 3: return {counter: BigInt(r.int(1e9)) * 1000000007n, ratio: NaN, limit: Infinity,
                      samples: Float64Array.from({length: 32}, () => r.next()), note: r.text(500)};
      default: return [r.text(400), r.int(1e6), {k: r.words(3)}, [1, [2, [3, r.text(300)]]], null, false];
    }
  }
  function product(i, r) {
    const v = {
      sku: "SKU-" + String(i).padStart(5, "0"), name: r.words(4), category: r.pick(CATS),
      price: Math.round(r.next() * 100000) / 100, stock: r.int(500),
      dims: Float32Array.from({length: 4}, () => r.next() * 100), description: r.text(480),
      variants: Array.from({length: 1 + r.int(3)}, () => ({color: r.words(1), size: r.pick(["S", "M", "L"]), stock: r.int(50)})),
      updated: day(r), ratings: Uint16Array.from({length: 5}, () => r.int(1000)),
    };
    if (i % 3 === 0) v.image = r.bytes(160).buffer;
    if (i % 5 === 0) v.attributes = new Map([["material", r.words(2)], ["weight", r.next() * 10], ["origin", r.words(1)]]);
    if (i % 7 === 0) v.discount = -0;
    return v;
  }
  function event(i, r) {
    return {type: r.pick(["view", "search", "add", "remove", "checkout"]), at: day(r),
            path: "/" + r.words(3).replace(/ /g, "/"),
            payload: {query: r.words(5), results: r.int(200), ms: r.next() * 300, trace: r.text(520)},
            samples: Int16Array.from({length: 24}, () => r.int(65536) - 32768)};
  }

  const SPEC = {
    mail: [
      {name: "mailbox", version: 3, stores: [
        {name: "messages", keyPath: "id", autoIncrement: false, count: 4000, make: message, indexes: [
          {name: "by_folder", keyPath: "folder"}, {name: "by_date", keyPath: "date"},
          {name: "by_tag", keyPath: "tags", multiEntry: true}, {name: "by_thread", keyPath: ["thread", "seq"], unique: true}]},
        {name: "attachments", keyPath: null, autoIncrement: true, count: 1025, drop: 25, make: attachment,
         indexes: [{name: "by_message", keyPath: "messageId"}]},
      ]},
      {name: "prefs", version: 1, stores: [
        {name: "kv", keyPath: null, autoIncrement: false, count: 1000, make: pref, key: prefKey, indexes: []},
      ]},
    ],
    shop: [
      {name: "catalog", version: 2, stores: [
        {name: "products", keyPath: "sku", autoIncrement: false, count: 3000, make: product, indexes: [
          {name: "by_price", keyPath: "price"}, {name: "by_category", keyPath: "category"},
          {name: "by_name", keyPath: "name", unique: false}]},
        {name: "events", keyPath: "seq", autoIncrement: true, count: 1025, drop: 25, make: event,
         indexes: [{name: "by_type", keyPath: "type"}]},
      ]},
    ],
  };
  const CACHES = {
    mail: async () => {
      const statics = await caches.open("static-v1");
      const urls = [];
      for (let k = 0; k < 5; k++) urls.push(`/static/app-${k}.js`, `/static/style-${k}.css`, `/static/page-${k}.html`);
      await statics.addAll(urls);
      const api = await caches.open("api-v2");
      for (let k = 0; k < 10; k++) {
        const r = rng(`api/${k}`);
        const binary = k % 3 === 2;
        const body = binary ? r.bytes(1024 + r.int(4096))
          : JSON.stringify({page: k, items: Array.from({length: 12 + r.int(30)}, (_, j) => ({id: j, name: r.words(3)}))});
        await api.put(binary ? `/api/export/${k}.bin` : `/api/items?page=${k}`, new Response(body, {headers: {
          "Content-Type": binary ? "application/octet-stream" : "application/json", "X-Api-Version": "2"}}));
      }
    },
    shop: async () => {
      const images = await caches.open("images");
      await images.addAll(Array.from({length: 15}, (_, k) => `/img/p${k}.png`));
      const offline = await caches.open("offline ✓");
      await offline.addAll([...Array.from({length: 5}, (_, k) => `/fonts/f${k}.woff2`),
                            ...Array.from({length: 5}, (_, k) => `/static/offline-${k}.html`)]);
    },
  };

  const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const done = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(); tx.onabort = () => reject(tx.error || new Error("aborted"));
  });
  const seedOf = (db, s, i) => rng(`${db.name}/${s.name}/${i}`);
  const expectedCount = (s) => s.count - (s.drop || 0);
  function expected(db, s, i) {  // [key, value] of the i-th surviving record
    const v = s.make(i, seedOf(db, s, i));
    if (s.autoIncrement && s.keyPath) v[s.keyPath] = i + 1;
    return [s.autoIncrement ? i + 1 : s.keyPath ? v[s.keyPath] : s.key(i), v];
  }
  async function names() { return new Set((await indexedDB.databases()).map((d) => d.name)); }

  async function build(label) {
    for (const name of await names()) await req(indexedDB.deleteDatabase(name));
    for (const d of SPEC[label]) {
      const open = indexedDB.open(d.name, d.version);
      open.onupgradeneeded = () => {
        for (const s of d.stores) {
          const store = open.result.createObjectStore(s.name, {keyPath: s.keyPath, autoIncrement: s.autoIncrement});
          for (const x of s.indexes) store.createIndex(x.name, x.keyPath, {unique: !!x.unique, multiEntry: !!x.multiEntry});
        }
      };
      const db = await req(open);
      for (const s of d.stores) {
        for (let start = 0; start < s.count; start += 500) {
          const tx = db.transaction(s.name, "readwrite"), store = tx.objectStore(s.name);
          for (let i = start; i < Math.min(s.count, start + 500); i++) {
            const v = s.make(i, seedOf(d, s, i));
            if (s.keyPath === null && !s.autoIncrement) store.add(v, s.key(i)); else store.add(v);
          }
          await done(tx);
        }
        if (s.drop) {  // the key generator stays ahead of the highest key left
          const tx = db.transaction(s.name, "readwrite");
          tx.objectStore(s.name).delete(IDBKeyRange.lowerBound(s.count - s.drop + 1));
          await done(tx);
        }
      }
      db.close();
    }
    for (const name of await caches.keys()) await caches.delete(name);
    await CACHES[label]();
    return JSON.stringify(await counts(label));
  }

  async function counts(label) {  // records per store and cache entries, without creating anything
    const have = await names(), out = {stores: {}, cacheEntries: 0};
    for (const d of SPEC[label]) {
      if (!have.has(d.name)) continue;
      const db = await req(indexedDB.open(d.name));
      try {
        for (const s of d.stores) {
          if (db.objectStoreNames.contains(s.name)) out.stores[`${d.name}/${s.name}`] = await req(db.transaction(s.name).objectStore(s.name).count());
        }
      } finally { db.close(); }
    }
    for (const name of await caches.keys()) out.cacheEntries += (await (await caches.open(name)).keys()).length;
    return out;
  }
  function expectedCounts(label) {
    const out = {};
    for (const d of SPEC[label]) for (const s of d.stores) out[`${d.name}/${s.name}`] = expectedCount(s);
    return out;
  }

  async function nextKey(db, storeName) {  // the key generator's next key: generate one and abort
    const tx = db.transaction(storeName, "readwrite"), store = tx.objectStore(storeName);
    let key = null;
    try { key = await req(store.keyPath === null ? store.add(null) : store.add({})); } catch (e) { key = String(e); }
    try { tx.abort(); } catch (e) { /* finished */ }
    return key;
  }

  // Comparing values: every node of the expected value is tallied under its kind; it
  // counts as carried over when the node at the same place in the restored value has
  // the same kind and the same content (containers: same keys / length / size).
  const MISSING = Symbol("missing");
  function kindOf(v) {
    if (v === null) return "null";
    const t = typeof v;
    if (t === "number") return Object.is(v, -0) ? "-0" : Number.isNaN(v) ? "NaN" : Number.isFinite(v) ? "number" : "Infinity";
    if (t !== "object") return t;
    const tag = Object.prototype.toString.call(v).slice(8, -1);
    if (tag === "Object") return Object.getPrototypeOf(v) === Object.prototype ? "object" : "object (other prototype)";
    return tag;
  }
  const bytesOf = (v) => v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const sameBytes = (a, b) => { if (a.length !== b.length) return false; for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; };
  const own = (o, k) => o !== MISSING && o !== null && typeof o === "object" && Object.prototype.hasOwnProperty.call(o, k);

  function compare(e, a, T, blobs, rec) {
    const k = kindOf(e), t = T[k] || (T[k] = [0, 0]);
    t[0]++;
    let same = a !== MISSING && kindOf(a) === k, kids = true;
    switch (k) {
      case "object": {
        const keys = Object.keys(e);
        if (same) { const ak = Object.keys(a); same = ak.length === keys.length && keys.every((x) => own(a, x)); }
        for (const x of keys) kids = compare(e[x], own(a, x) ? a[x] : MISSING, T, blobs, rec) && kids;
        break;
      }
      case "Array":
        same = same && a.length === e.length;
        for (let j = 0; j < e.length; j++) kids = compare(e[j], Array.isArray(a) && j < a.length ? a[j] : MISSING, T, blobs, rec) && kids;
        break;
      case "Map": {
        same = same && a.size === e.size && [...e.keys()].every((x, j) => [...a.keys()][j] === x);
        const am = a instanceof Map ? a : null;
        for (const [x, v] of e) kids = compare(v, am && am.has(x) ? am.get(x) : MISSING, T, blobs, rec) && kids;
        break;
      }
      case "Set": {
        same = same && a.size === e.size;
        for (const v of e) kids = compare(v, a instanceof Set && a.has(v) ? v : MISSING, T, blobs, rec) && kids;
        break;
      }
      case "Date": same = same && Object.is(e.getTime(), a.getTime()); break;
      case "ArrayBuffer": case "DataView": case "Int8Array": case "Uint8Array": case "Uint8ClampedArray": case "Int16Array":
      case "Uint16Array": case "Int32Array": case "Uint32Array": case "Float32Array": case "Float64Array":
      case "BigInt64Array": case "BigUint64Array":
        same = same && sameBytes(bytesOf(e), bytesOf(a)); break;
      case "File": same = same && a.name === e.name && a.lastModified === e.lastModified;  // and the Blob checks:
      case "Blob":
        same = same && a.type === e.type && a.size === e.size;
        if (same) blobs.push([e, a, k, rec]);
        break;
      case "RegExp": same = same && a.source === e.source && a.flags === e.flags; break;
      default: same = same && Object.is(a, e);  // string, number, -0, NaN, Infinity, bigint, boolean, null, undefined
    }
    if (same) t[1]++;
    return same && kids;
  }
  function keyText(k) {  // a key with its type, to match keys of any type
    if (k instanceof Date) return "D" + k.getTime();
    if (k instanceof ArrayBuffer || ArrayBuffer.isView(k)) return "B" + Array.from(bytesOf(k)).join(".");
    if (Array.isArray(k)) return "A[" + k.map(keyText).join(",") + "]";
    return (typeof k === "number" ? "N" : "S") + String(k);
  }
  const sameKeyPath = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

  async function verify(label, cacheTruth) {
    const out = {stores: [], kinds: {}, keys: [0, 0], indexes: [0, 0], versions: [0, 0], generators: [], caches: null};
    const have = await names(), blobs = [], recOk = [], recStore = [];
    for (const d of SPEC[label]) {
      out.versions[0]++;
      const db = have.has(d.name) ? await req(indexedDB.open(d.name)) : null;
      if (db && db.version === d.version) out.versions[1]++;
      try {
        for (const s of d.stores) {
          const row = {store: `${d.name}/${s.name}`, expected: expectedCount(s), present: 0, identical: 0};
          out.stores.push(row);
          let keys = [], values = [], store = null;
          out.indexes[0] += s.indexes.length;
          if (db && db.objectStoreNames.contains(s.name)) {
            store = db.transaction(s.name).objectStore(s.name);
            for (const x of s.indexes) {
              if (!store.indexNames.contains(x.name)) continue;
              const ix = store.index(x.name);
              if (sameKeyPath(ix.keyPath, x.keyPath) && ix.unique === !!x.unique && ix.multiEntry === !!x.multiEntry) out.indexes[1]++;
            }
            [keys, values] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
          }
          row.present = keys.length;
          const at = new Map(keys.map((k, j) => [keyText(k), j]));
          for (let i = 0; i < row.expected; i++) {
            const [key, value] = expected(d, s, i);
            const j = at.get(keyText(key));
            if (s.keyPath === null && !s.autoIncrement) { out.keys[0]++; if (j !== undefined) out.keys[1]++; }
            recStore.push(row);
            recOk.push(compare(value, j === undefined ? MISSING : values[j], out.kinds, blobs, recOk.length));
          }
          if (s.autoIncrement) {
            out.generators.push({store: row.store, expected: s.count + 1, actual: store ? await nextKey(db, s.name) : null});
          }
        }
      } finally { if (db) db.close(); }
    }
    for (const [e, a, k, rec] of blobs) {
      if (!sameBytes(new Uint8Array(await e.arrayBuffer()), new Uint8Array(await a.arrayBuffer()))) {
        out.kinds[k][1]--;
        recOk[rec] = false;
      }
    }
    recOk.forEach((ok, rec) => { if (ok) recStore[rec].identical++; });
    if (cacheTruth) {
      const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
      const mine = cacheTruth.filter((e) => e.origin === location.origin);
      const present = new Set(await caches.keys()), wanted = new Set(mine.map((e) => e.cache));
      const c = {caches: [wanted.size, [...wanted].filter((n) => present.has(n)).length], entries: mine.length, matched: 0, identical: 0,
                 binary: [0, 0], text: [0, 0]};
      for (const e of mine) {
        const any = await caches.match(e.url);
        if (any) c.matched++;
        const response = present.has(e.cache) ? await (await caches.open(e.cache)).match(e.url) : undefined;
        let same = false;
        if (response) {
          const body = await response.arrayBuffer();
          same = response.status === e.status && response.headers.get("content-type") === e.contentType &&
                 hex(await crypto.subtle.digest("SHA-256", body)) === e.sha256;
        }
        const kind = e.contentType.startsWith("text/") || e.contentType.includes("json") ? c.text : c.binary;
        kind[0]++;
        if (same) { c.identical++; kind[1]++; }
      }
      out.caches = c;
    }
    return JSON.stringify(out);
  }

  async function cacheTruth() {  // every cache entry of the page's origin, as the page sees it
    const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
    const out = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const request of await cache.keys()) {
        const response = await cache.match(request), body = await response.arrayBuffer();
        out.push({origin: location.origin, cache: name, url: request.url, status: response.status,
                  contentType: response.headers.get("content-type"), size: body.byteLength,
                  sha256: hex(await crypto.subtle.digest("SHA-256", body))});
      }
    }
    return JSON.stringify(out);
  }

  return globalThis.__bench = {build, counts, expectedCounts, verify, cacheTruth};
})()"""


def bench_call(method: str, *args: Any) -> str:
    """A single JS expression: install the library if needed and call one of its methods."""
    return f"{BENCH_JS}.{method}({', '.join(json.dumps(a, ensure_ascii=False) for a in args)})"


@dataclass
class SourceTruth:
    """The built state, as the source pages see it."""

    counts: dict[str, dict[str, Any]]  # label -> counts()
    caches: list[dict[str, Any]]  # every cache entry with its body hash
    verify: dict[str, dict[str, Any]]  # label -> verify() of the source itself (must be complete)
    product: str = ""

    def records(self) -> int:
        return sum(n for c in self.counts.values() for n in c["stores"].values())


# --------------------------------------------------------------------------------------
# Driving pages over CDP
# --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pages_by_origin(conn: CdpConnection, context_id: str | None, origins: list[Origin]):
    """A session on one page per origin of the context: an open tab of that origin, else a new one."""
    sessions: dict[str, CdpSession] = {}
    try:
        for info in await page_targets(conn, context_id):
            for origin in origins:
                if info["url"].startswith(origin.url + "/") and origin.label not in sessions:
                    sessions[origin.label] = await conn.attach(info["targetId"])
        for origin in origins:
            if origin.label not in sessions:
                params: dict[str, Any] = {"url": "about:blank"}
                if context_id:
                    params["browserContextId"] = context_id
                target_id = (await conn.send("Target.createTarget", params))["targetId"]
                session = await conn.attach(target_id)
                sessions[origin.label] = session
                await session.send("Page.enable")
                await goto(session, origin.url + "/app")
        yield sessions
    finally:
        with trio.CancelScope(shield=True):
            for session in sessions.values():
                with contextlib.suppress(Exception):
                    await session.detach()


async def build_state(endpoint: str, origins: list[Origin]) -> SourceTruth:
    async with open_cdp(endpoint) as conn:
        product = (await conn.send("Browser.getVersion"))["product"]
        existing = await page_targets(conn, None)
        target_ids = [existing[0]["targetId"]] if existing else []
        while len(target_ids) < len(origins):
            target_ids.append((await conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"])
        counts, cache_truth, verdicts = {}, [], {}
        for target_id, origin in zip(target_ids, origins):
            tab = await conn.attach(target_id)
            try:
                await tab.send("Page.enable")
                await goto(tab, origin.url + "/app")
                with trio.fail_after(120):
                    counts[origin.label] = json.loads(await evaluate(tab, bench_call("build", origin.label)))
                cache_truth += json.loads(await evaluate(tab, bench_call("cacheTruth")))
            finally:
                await tab.detach()
        for target_id, origin in zip(target_ids, origins):
            tab = await conn.attach(target_id)
            try:
                with trio.fail_after(120):
                    verdicts[origin.label] = json.loads(await evaluate(tab, bench_call("verify", origin.label, cache_truth)))
            finally:
                await tab.detach()
        return SourceTruth(counts, cache_truth, verdicts, product)


def merge_verdicts(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """One verify() result per origin page, summed up."""
    out: dict[str, Any] = {"stores": [], "kinds": defaultdict(lambda: [0, 0]), "keys": [0, 0], "indexes": [0, 0],
                           "versions": [0, 0], "generators": [], "caches": {"caches": [0, 0], "entries": 0, "matched": 0,
                                                                          "identical": 0, "binary": [0, 0], "text": [0, 0]}}
    for v in verdicts:
        out["stores"] += v["stores"]
        out["generators"] += v["generators"]
        for kind, (total, ok) in v["kinds"].items():
            out["kinds"][kind][0] += total
            out["kinds"][kind][1] += ok
        for key in ("keys", "indexes", "versions"):
            out[key] = [out[key][0] + v[key][0], out[key][1] + v[key][1]]
        c = v.get("caches")
        if c:
            oc = out["caches"]
            for key in ("entries", "matched", "identical"):
                oc[key] += c[key]
            for key in ("caches", "binary", "text"):
                oc[key] = [oc[key][0] + c[key][0], oc[key][1] + c[key][1]]
    out["kinds"] = dict(out["kinds"])
    out["records"] = [sum(s["expected"] for s in out["stores"]), sum(s["identical"] for s in out["stores"])]
    return out


async def verify_pages(conn: CdpConnection, context_id: str | None, origins: list[Origin], truth: SourceTruth) -> dict[str, Any]:
    async with pages_by_origin(conn, context_id, origins) as sessions:
        verdicts = []
        for origin in origins:
            with trio.fail_after(120):
                verdicts.append(json.loads(await evaluate(sessions[origin.label], bench_call("verify", origin.label, truth.caches))))
    return merge_verdicts(verdicts)


def in_place(counts: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether the counts read in a page reach the target (stores, and cache entries if the target has them)."""
    if any(counts["stores"].get(store, 0) < n for store, n in target["stores"].items()):
        return False
    return counts["cacheEntries"] >= target.get("cacheEntries", 0)


# --------------------------------------------------------------------------------------
# psp_cdp rounds
# --------------------------------------------------------------------------------------


def caches_registered() -> bool:
    return any(c.name == "cache_storage" for c in components())


async def psp_restore(endpoint: str, state: BrowserSessionState, origins: list[Origin],
                      targets: dict[str, dict[str, Any]], truth: SourceTruth | None) -> dict[str, Any]:
    """restore_state(context="new"), then wait until every origin's page reads its ``targets`` counts."""
    async with restored_in_new_context(endpoint, state, ROUND_TIMEOUT) as (conn, context_id, out):
        out["in_place"], out["counts"], out["short_reads"] = await wait_in_place_cdp(conn, context_id, origins, targets)
        if out["in_place"] is not None:
            out["in_place"] += out["restore"]
        if truth is not None:
            out["verify"] = await verify_pages(conn, context_id, origins, truth)
    return out


async def wait_in_place_cdp(conn: CdpConnection, context_id: str, origins: list[Origin],
                            targets: dict[str, dict[str, Any]]) -> tuple[float | None, dict[str, Any], int]:
    """Seconds until each origin's page reads its target counts (None if not within IN_PLACE_TIMEOUT),
    the last counts read, and how many reads fell short before that."""
    t0 = time.perf_counter()
    deadline = t0 + IN_PLACE_TIMEOUT
    counts: dict[str, Any] = {}
    short = 0
    async with pages_by_origin(conn, context_id, origins) as sessions:
        for origin in origins:
            while True:
                counts[origin.label] = await evaluate(sessions[origin.label], bench_call("counts", origin.label))
                if in_place(counts[origin.label], targets[origin.label]):
                    break
                if time.perf_counter() > deadline:
                    return None, counts, short
                short += 1
                await trio.sleep(0.05)
    return time.perf_counter() - t0, counts, short


def state_summary(state: BrowserSessionState) -> dict[str, Any]:
    storage = state.storage
    return {
        "components": list(state.report.components),
        "idb_databases": len(storage.indexed_db),
        "idb_stores": sum(len(d.stores) for d in storage.indexed_db),
        "idb_records": len(storage.indexed_db_records),
        "idb_per_database": {f"{d.origin} {text(d.name)}": sum(s.record_count for s in d.stores) for d in storage.indexed_db},
        "caches": len(storage.cache_storage),
        "cache_entries": len(storage.cache_entries),
        "cache_body_bytes": sum(len(e.body) for e in storage.cache_entries),
        "tabs": len(state.history.tabs),
        "uncovered": [f"{u.what}: {u.reason}" for u in state.report.uncovered],
    }


# --------------------------------------------------------------------------------------
# Playwright rounds
# --------------------------------------------------------------------------------------


class PlaywrightSide(PlaywrightOverCdp):
    indexed_db = True

    def restore(self, state: dict[str, Any], origins: list[Origin], targets: dict[str, dict[str, Any]],
                truth: SourceTruth | None) -> dict[str, Any]:
        """new_context(storage_state=...), then open a page per origin and wait until it reads ``targets``."""
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        context = self.browser.new_context(storage_state=state)
        try:
            t1 = time.perf_counter()
            out["new_context"] = t1 - t0
            pages, counts = {}, {}
            deadline = t1 + IN_PLACE_TIMEOUT
            reached, short = True, 0
            for origin in origins:
                page = context.new_page()
                page.goto(origin.url + "/app", wait_until="load")
                pages[origin.label] = page
                while True:
                    counts[origin.label] = page.evaluate(bench_call("counts", origin.label))
                    if in_place(counts[origin.label], targets[origin.label]):
                        break
                    if time.perf_counter() > deadline:
                        reached = False
                        break
                    short += 1
                    time.sleep(0.05)
                if not reached:
                    break
            out["in_place"] = time.perf_counter() - t0 if reached else None
            out["counts"] = counts
            out["short_reads"] = short
            if truth is not None:
                verdicts = []
                for origin in origins:
                    page = pages.get(origin.label)
                    if page is None:
                        page = context.new_page()
                        page.goto(origin.url + "/app", wait_until="load")
                    verdicts.append(json.loads(page.evaluate(bench_call("verify", origin.label, truth.caches))))
                out["verify"] = merge_verdicts(verdicts)
        finally:
            with contextlib.suppress(Exception):
                context.close()
        return out

    def driver_pid(self) -> int | None:
        """The Playwright Node driver: a child process of this one."""
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read()
            except OSError:
                continue
            if int(fields[1]) == me and b"playwright" in cmdline:
                return int(entry)
        return None


def vm_hwm(pid: int | None) -> int | None:
    """Peak resident set size of a running process, in bytes (/proc/<pid>/status VmHWM)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pw_summary(state: dict[str, Any]) -> dict[str, Any]:
    dbs = [db for o in state.get("origins", []) for db in o.get("indexedDB", [])]
    records = [r for db in dbs for s in db["stores"] for r in s["records"]]
    return {
        "cookies": len(state.get("cookies", [])),
        "origins": len(state.get("origins", [])),
        "idb_databases": len(dbs),
        "idb_stores": sum(len(db["stores"]) for db in dbs),
        "idb_records": len(records),
        "idb_records_plain_json": sum(1 for r in records if "value" in r),
        "idb_records_encoded": sum(1 for r in records if "valueEncoded" in r),
    }


# --------------------------------------------------------------------------------------
# Memory of psp_cdp capture, measured in a child process
# --------------------------------------------------------------------------------------
#
# ru_maxrss is a high-water mark of a whole process, and Linux keeps it across fork and
# exec: a child started late would inherit the parent's peak. So the child is started
# first thing, while this process is small, and waits on stdin for the endpoint. It also
# reports its own VmHWM (which exec does reset) as a cross-check.


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child_psp() -> dict[str, Any]:
    """Peak RSS of connect + capture_state + encode, then (second pass) their Python heap peak."""
    endpoint = sys.stdin.readline().strip()
    if not endpoint:
        return {}

    async def capture_encode() -> int:
        async with open_cdp(endpoint) as conn:
            state = await capture_state(conn)
        return len(codec.encode(state))

    async def connect_only() -> None:
        async with open_cdp(endpoint) as conn:
            await conn.send("Browser.getVersion")

    trio.run(connect_only)
    gc.collect()
    before, hwm_before = max_rss(), vm_hwm(os.getpid())
    encoded = trio.run(capture_encode)
    after, hwm_after = max_rss(), vm_hwm(os.getpid())
    gc.collect()
    tracemalloc.start()
    trio.run(capture_encode)
    heap_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"rss_before": before, "rss_after": after, "vmhwm_before": hwm_before, "vmhwm_after": hwm_after,
            "heap_peak": heap_peak, "encoded_bytes": encoded}


def start_child() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_child(child: subprocess.Popen[str], endpoint: str) -> dict[str, Any]:
    out, err = child.communicate(endpoint + "\n", timeout=180)
    if child.returncode != 0:
        raise RuntimeError(f"memory child failed: {err.strip()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def stop_child(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()


# --------------------------------------------------------------------------------------
# Statistics and output
# --------------------------------------------------------------------------------------


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1048576:,.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement (a child process)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_psp()))
        return 0
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    started = time.perf_counter()
    results: dict[str, Any] = {"rounds": args.rounds, "psp_cdp_version": psp_cdp.__version__,
                               "cache_storage_registered": caches_registered()}
    samples: dict[str, list[float]] = defaultdict(list)
    playwright: PlaywrightSide | None = None
    browser: LaunchedBrowser | None = None
    failures: list[str] = []

    with serve_site(ORIGIN_SPECS, SiteHandler) as origins, contextlib.ExitStack() as stack:
        try:
            child = None
            if not args.no_memory:
                child = start_child()  # now, while this process is small (see start_child)
                stack.callback(stop_child, child)
            browser = launch_chromium(executable=CHROMIUM)
            stack.callback(browser.close)
            endpoint = browser.endpoint
            print(f"site: {', '.join(o.url for o in origins)}; Chromium at {endpoint}", file=sys.stderr)
            if not results["cache_storage_registered"]:
                print("note: the cache_storage component is not registered: psp_cdp captures no CacheStorage", file=sys.stderr)

            # -- build the state -----------------------------------------------------------
            t0 = time.perf_counter()
            source = trio.run(build_state, endpoint, origins)
            print(f"built the state in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            source_verdict = merge_verdicts(list(source.verify.values()))
            results["chromium"] = source.product
            results["source"] = {
                "counts": source.counts,
                "records": source.records(),
                "cache_entries": len(source.caches),
                "caches": sorted({(e["origin"], e["cache"]) for e in source.caches}),
                "cache_body_bytes": sum(e["size"] for e in source.caches),
                "self_check": source_verdict,
            }
            if source_verdict["records"][0] != source_verdict["records"][1] or source.records() != 10_000:
                raise RuntimeError(f"the source does not check out against its own generator: {source_verdict['records']}")
            # What each tool's restore is waited for ("data readable"): every record and, for
            # psp_cdp, every cache entry. A tool that does not get there within IN_PLACE_TIMEOUT
            # has the row left empty that round, and is waited for what it did restore afterwards.
            psp_targets = {label: {"stores": c["stores"], "cacheEntries": c["cacheEntries"] if results["cache_storage_registered"] else 0}
                           for label, c in source.counts.items()}
            pw_targets = {label: {"stores": c["stores"]} for label, c in source.counts.items()}

            playwright = PlaywrightSide()
            stack.callback(playwright.stop)
            driver = playwright.driver_pid()
            results["pw_driver_rss_at_start"] = vm_hwm(driver)

            # -- rounds: the first one also checks, untimed, what each restore carried over ----
            for r in range(args.rounds):
                check = r == 0
                order = ("psp", "pw") if r % 2 == 0 else ("pw", "psp")
                for side in order:
                    gc.collect()
                    if side == "psp":
                        state, connect, capture = trio.run(psp_capture, endpoint, ROUND_TIMEOUT)
                        t0 = time.perf_counter()
                        blob = codec.encode(state)
                        encode = time.perf_counter() - t0
                        if check:
                            results["psp_captured"] = state_summary(state)
                        del state
                        gc.collect()
                        t0 = time.perf_counter()
                        decoded = codec.decode(blob)
                        decode = time.perf_counter() - t0
                        samples["psp_connect"].append(connect)
                        samples["psp_capture"].append(capture)
                        samples["psp_encode"].append(encode)
                        samples["psp_decode"].append(decode)
                        samples["psp_capture_total"].append(connect + capture + encode)
                        restored = trio.run(psp_restore, endpoint, decoded, origins, psp_targets, source if check else None)
                        samples["psp_restore"].append(restored["restore"])
                        samples["psp_dispose"].append(restored.get("dispose", float("nan")))
                        samples["psp_short_reads"].append(restored["short_reads"])
                        if restored["in_place"] is not None:
                            samples["psp_in_place"].append(restored["in_place"])
                            samples["psp_decode_restore_in_place"].append(decode + restored["in_place"])
                        else:
                            print(f"psp_cdp: restored data not all readable within {IN_PLACE_TIMEOUT:g}s: "
                                  f"{restored['counts']}", file=sys.stderr)
                            psp_targets = restored["counts"]
                        if check:
                            results["psp_restore_report"] = restored["report"]
                            results["psp_verify"] = restored["verify"]
                        results["psp_sizes"] = {"encoded_bytes": len(blob), "protobuf_bytes": len(decoded.SerializeToString())}
                        del decoded, blob
                    else:
                        connect = playwright.connect(endpoint)
                        playwright.learn_origins()
                        pw_state, capture = playwright.capture()
                        t0 = time.perf_counter()
                        pw_json = json.dumps(pw_state, ensure_ascii=False)
                        dumps = time.perf_counter() - t0
                        restored_pw = playwright.restore(pw_state, origins, pw_targets, source if check else None)
                        playwright.disconnect()
                        samples["pw_connect"].append(connect)
                        samples["pw_capture"].append(capture)
                        samples["pw_dumps"].append(dumps)
                        samples["pw_capture_total"].append(connect + capture)
                        samples["pw_new_context"].append(restored_pw["new_context"])
                        samples["pw_short_reads"].append(restored_pw["short_reads"])
                        if restored_pw["in_place"] is not None:
                            samples["pw_in_place"].append(restored_pw["in_place"])
                        else:
                            print(f"Playwright: restored data not all readable within {IN_PLACE_TIMEOUT:g}s: "
                                  f"{restored_pw['counts']}", file=sys.stderr)
                            pw_targets = restored_pw["counts"]
                        if check:
                            results["pw_captured"] = pw_summary(pw_state)
                            results["pw_verify"] = restored_pw["verify"]
                        results["pw_sizes"] = {"json_bytes": len(pw_json.encode("utf-8", "surrogatepass"))}
                        del pw_state, pw_json
                print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
            results["pw_driver_rss_peak"] = vm_hwm(driver)

            # -- memory of psp_cdp capture, in a fresh child process --------------------------
            if child is not None:
                results["memory"] = run_child(child, endpoint)
        except BaseException as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            finish_run(results, started, args.json, samples=samples, browser=browser, failures=failures)

    problems = print_report(results)
    if args.json:
        print(f"\nresults written to {args.json}")
    return 1 if problems else 0


#: Rows of the "carried over" table: value kinds, in this order, with their labels.
KIND_ROWS = [
    ("string", "string"), ("number", "number (finite)"), ("-0", "-0"), ("NaN", "NaN"), ("Infinity", "Infinity"),
    ("bigint", "BigInt"), ("boolean", "boolean"), ("null", "null"), ("object", "plain object (incl. nested)"),
    ("Array", "Array"), ("Date", "Date"), ("Map", "Map"), ("Set", "Set"), ("Blob", "Blob (type + bytes)"),
    ("File", "File (name, lastModified, type + bytes)"), ("ArrayBuffer", "ArrayBuffer"), ("Uint8Array", "Uint8Array"),
    ("Uint16Array", "Uint16Array"), ("Int16Array", "Int16Array"), ("Float32Array", "Float32Array"),
    ("Float64Array", "Float64Array"),
]


def print_report(results: dict[str, Any]) -> list[str]:
    """Print the tables; return the problems psp_cdp showed (what it did not carry over)."""
    src, st = results["source"], results["stats"]

    def row(label: str, key: str, note: str = "") -> str:
        s = st.get(key)
        if not s:
            return f"| {label} | n/a | n/a | n/a | {note} |"
        return f"| {label} | {ms(s['median'])} | {ms(s['min'])} | {ms(s['p95'])} | {note} |"

    sv = src["self_check"]
    print(f"# IndexedDB + CacheStorage benchmark: psp_cdp {results['psp_cdp_version']} vs Playwright "
          f"storage_state(indexed_db=True)\n")
    print(f"- Browser: {results['chromium']} (headless, one process, default context as the source)")
    stores = ", ".join(f"{s['store']} {s['expected']:,}" for s in sv["stores"])
    print(f"- State: {src['records']:,} IndexedDB records over 2 origins, 3 databases, 5 stores ({stores}); "
          f"{sv['indexes'][0]} indexes; 2 autoIncrement stores whose key generator runs ahead of the highest key; "
          f"{src['cache_entries']} CacheStorage entries in {len(src['caches'])} caches "
          f"({kib(src['cache_body_bytes'])} of bodies)")
    print(f"- CacheStorage component (cache_storage) registered in psp_cdp: "
          f"{'yes' if results['cache_storage_registered'] else 'NO (caches not captured)'}")
    print(f"- Rounds: {results['rounds']} timed, no warm-up round (the browser is warm from building the state); the "
          f"first round also checks, untimed, what each restore carried over; the two tools alternate which goes first; "
          f"wall time of the whole run {results['wall_seconds']:.1f}s")
    print("- p95 is nearest-rank, i.e. the slowest sample when there are fewer than 20 rounds\n")

    print("## Capture\n")
    print("| step | median ms | min ms | p95 ms | notes |")
    print("|---|---:|---:|---:|---|")
    print(row("psp_cdp open_cdp (connect)", "psp_connect", "/json/version + WebSocket handshake"))
    print(row("psp_cdp capture_state(conn)", "psp_capture", "every default component: " +
              ", ".join(results["psp_captured"]["components"])))
    print(row("psp_cdp codec.encode(state)", "psp_encode", "protobuf + lz4"))
    print(row("**psp_cdp connect + capture + encode**", "psp_capture_total", ""))
    print(row("Playwright connect_over_cdp", "pw_connect", "attaches to every existing tab"))
    print(row("Playwright storage_state(indexed_db=True)", "pw_capture",
              "tabs reloaded first (untimed) so that it sees their origins"))
    print(row("**Playwright connect + storage_state**", "pw_capture_total", ""))
    print(row("Playwright json.dumps(state)", "pw_dumps", "to write it to a file (not in the total)"))

    print("\n## Restore (into a fresh browser context of the same browser)\n")
    print("| step | median ms | min ms | p95 ms | notes |")
    print("|---|---:|---:|---:|---|")
    print(row("psp_cdp codec.decode(blob)", "psp_decode", ""))
    print(row('psp_cdp restore_state(conn, state, context="new")', "psp_restore",
              ("IndexedDB, CacheStorage" if results["cache_storage_registered"] else "IndexedDB") +
              ", and the 2 tabs loaded live"))
    print(row("psp_cdp restore + data readable in each origin's tab", "psp_in_place",
              "counts of records and cache entries read in the restored tabs"))
    print(row("**psp_cdp decode + restore + data readable**", "psp_decode_restore_in_place", ""))
    print(row("psp_cdp Target.disposeBrowserContext", "psp_dispose", "cleanup, not in the figures above"))
    print(row("Playwright new_context(storage_state=...)", "pw_new_context",
              "writes IndexedDB during the call, on a stub page per origin"))
    print(row("**Playwright new_context + a page per origin + data readable**", "pw_in_place",
              "new_page + goto + record counts read in the page"))
    shorts = {k: int(sum(results["samples"].get(f"{k}_short_reads", []))) for k in ("psp", "pw")}
    print(f"\nCount reads that came back short (data not yet in place) before the counts were reached, over all "
          f"rounds: psp_cdp {shorts['psp']}, Playwright {shorts['pw']}" +
          (": both tools have the data in place when their call returns." if not any(shorts.values()) else "."))

    pc, wc = results["psp_captured"], results["pw_captured"]
    psp_sizes, pw_sizes = results.get("psp_sizes", {}), results.get("pw_sizes", {})
    print("\n## Snapshot size and content\n")
    print("| | psp_cdp | Playwright |")
    print("|---|---|---|")
    if psp_sizes and pw_sizes:
        print(f"| snapshot size | {kib(psp_sizes['encoded_bytes'])} encoded (lz4); {kib(psp_sizes['protobuf_bytes'])} raw "
              f"protobuf | {kib(pw_sizes['json_bytes'])} compact JSON |")
    print(f"| IndexedDB databases / stores / records | {pc['idb_databases']} / {pc['idb_stores']} / {pc['idb_records']:,} "
          f"| {wc['idb_databases']} / {wc['idb_stores']} / {wc['idb_records']:,} ({wc['idb_records_plain_json']:,} as plain "
          f"JSON, {wc['idb_records_encoded']:,} in its tagged encoding) |")
    caches_cell = (f"{pc['caches']} / {pc['cache_entries']} ({kib(pc['cache_body_bytes'])} of bodies)"
                   if results["cache_storage_registered"] else "not captured (component not registered)")
    print(f"| CacheStorage caches / entries | {caches_cell} | not captured |")
    mem = results.get("memory")
    if mem:
        print(f"| Python heap peak (tracemalloc) of connect + capture + encode | {mib(mem['heap_peak'])} "
              f"| n/a: the work happens in Playwright's Node driver |")
        print(f"| peak RSS of capture (getrusage, child process) | {mib(mem['rss_after'])} after connect + "
              f"capture + encode; {mib(mem['rss_before'])} after import + connect, so "
              f"+{mib(mem['rss_after'] - mem['rss_before'])} (VmHWM: {mib(mem['vmhwm_after'])}, "
              f"{mib(mem['vmhwm_before'])} before) | Node driver peak RSS (VmHWM) over the whole run, "
              f"capture and restore: {mib(results.get('pw_driver_rss_peak'))} "
              f"({mib(results.get('pw_driver_rss_at_start'))} at start) |")
    elif results.get("pw_driver_rss_peak"):
        print(f"| peak RSS | not measured (--no-memory) | Node driver peak RSS (VmHWM) over the whole run: "
              f"{mib(results['pw_driver_rss_peak'])} ({mib(results.get('pw_driver_rss_at_start'))} at start) |")

    problems: list[str] = []
    pv, wv = results["psp_verify"], results["pw_verify"]

    def frac(pair: list[int]) -> str:
        return f"{pair[1]:,}/{pair[0]:,}"

    def carried(label: str, p: list[int], w: list[int], critical: bool = True) -> None:
        p_text = f"{frac(p)}{'' if p[0] == p[1] else ' **LOST**'}" if critical else "not captured (component not registered)"
        print(f"| {label} | {p[0]:,} | {p_text} | {frac(w)} |")
        if critical and p[0] != p[1]:
            problems.append(f"{label}: psp_cdp carried {frac(p)}")

    print("\n## Carried over (checked once, inside the restored pages)\n")
    print("Each source value is regenerated in the restored page from its seed and compared with what the page "
          "reads back: a value counts when it has the same type (prototype) and the same content. Counts are "
          "nodes of the values (a record with a nested object counts the record object, the nested one and each "
          "leaf).\n")
    print("| what | in the source | psp_cdp | Playwright |")
    print("|---|---:|---:|---:|")
    for p_row, w_row in zip(pv["stores"], wv["stores"]):
        print(f"| records in {p_row['store']} (present) | {p_row['expected']:,} | {p_row['present']:,} | {w_row['present']:,} |")
        carried(f"records in {p_row['store']} identical", [p_row["expected"], p_row["identical"]],
                [w_row["expected"], w_row["identical"]])
    carried("**all records identical**", pv["records"], wv["records"])
    carried("out-of-line keys (string, number, array, Date, binary)", pv["keys"], wv["keys"])
    carried("indexes (name, keyPath, unique, multiEntry)", pv["indexes"], wv["indexes"])
    carried("database versions", pv["versions"], wv["versions"])
    for p_gen, w_gen in zip(pv["generators"], wv["generators"]):
        exp = p_gen["expected"]
        print(f"| key generator of {p_gen['store']}: next key | {exp} | {p_gen['actual']}"
              f"{'' if p_gen['actual'] == exp else ' **LOST**'} | {w_gen['actual']} |")
        if p_gen["actual"] != exp:
            problems.append(f"key generator of {p_gen['store']}: next key {p_gen['actual']}, expected {exp}")
    for kind, label in KIND_ROWS + [(k, k) for k in pv["kinds"] if k not in dict(KIND_ROWS)]:
        if kind in pv["kinds"]:
            carried(f"values: {label}", pv["kinds"][kind], wv["kinds"].get(kind, [0, 0]))
    pcache, wcache = pv["caches"], wv["caches"]
    cache_critical = results["cache_storage_registered"]
    carried("CacheStorage caches", pcache["caches"], wcache["caches"], cache_critical)
    carried("cache entries found by caches.match(url)", [pcache["entries"], pcache["matched"]],
            [wcache["entries"], wcache["matched"]], cache_critical)
    carried("cache entries identical (status, Content-Type, SHA-256 of body)", [pcache["entries"], pcache["identical"]],
            [wcache["entries"], wcache["identical"]], cache_critical)
    carried("  of which text bodies", pcache["text"], wcache["text"], cache_critical)
    carried("  of which binary bodies", pcache["binary"], wcache["binary"], cache_critical)

    # strictly more: at least as much everywhere, and more somewhere
    def pairs(v: dict[str, Any]) -> list[int]:
        out = [s["identical"] for s in v["stores"]] + [v["keys"][1], v["indexes"][1], v["versions"][1]]
        out += [int(g["actual"] == g["expected"]) for g in v["generators"]]
        out += [v["kinds"].get(k, [0, 0])[1] for k in pv["kinds"]]
        return out + [v["caches"]["matched"], v["caches"]["identical"]]

    p_all, w_all = pairs(pv), pairs(wv)
    more = all(p >= w for p, w in zip(p_all, w_all)) and any(p > w for p, w in zip(p_all, w_all))
    print(f"\npsp_cdp carried strictly more than Playwright: **{'yes' if more else 'NO'}**")
    if not more:
        problems.append("psp_cdp did not carry strictly more than Playwright")
    if pc["uncovered"]:
        print(f"\npsp_cdp capture reported uncovered: {'; '.join(pc['uncovered'][:10])}")
    notes = results["psp_restore_report"].get("notes")
    if notes:
        print(f"\npsp_cdp restore notes ({len(notes)}): {'; '.join(notes[:10])}{' ...' if len(notes) > 10 else ''}")
    print(f"\npsp_cdp restore report: {results['psp_restore_report']['restored']}")
    if problems:
        print("\n**psp_cdp problems:**\n")
        for p in problems:
            print(f"- {p}")

    print("\n## Caveats\n")
    print("- Playwright's storage_state() has no CacheStorage at all. Its IndexedDB snapshot stores a record as plain "
          "JSON when every value in it is a plain object, array, string, finite number, boolean or null (so -0 "
          "becomes 0 there), and otherwise in its tagged encoding, which keeps Date, Map, Set, typed arrays, "
          "ArrayBuffer, BigInt, NaN/Infinity and -0 but turns a Blob or File into an empty object. It restores "
          "records with add(), which leaves each key generator just past the highest key instead of where it was.")
    print("- Playwright reads the storage of origins in which it saw a document commit while connected; the benchmark "
          "reloads the tabs (untimed) before each storage_state(). psp_cdp reads the open tabs' frames and probes "
          "other known origins on its own.")
    print("- psp_cdp's capture_state and restore_state handle every default component (also cookies, localStorage, "
          "sessionStorage, tabs with history, which are nearly empty here); its restore also reopens the 2 tabs, "
          "which Playwright's row does with new_page + goto. \"Data readable\" rows stop when each origin's page reads "
          "every record count (and, for psp_cdp, the cache entry count) of the source.")
    print("- Memory: ru_maxrss is a high-water mark of the whole process (kept across fork and exec), so psp_cdp's is "
          "measured in a child process started before anything else, which imports psp_cdp and connects (the "
          "baseline), then captures + encodes; a second pass in the same child, under tracemalloc, gives the Python "
          "heap peak. Playwright's capture and restore run in its Node "
          "driver: its VmHWM covers the whole run (capture and restore, all rounds).")
    print("- The site is served from this process on loopback. Absolute figures depend on the machine; compare the "
          "columns, not the numbers across machines.")
    return problems


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # browsers, driver and servers are closed by then
        print("interrupted", file=sys.stderr)
        sys.exit(130)
