"""Differential versions, compression and store latency: what each new version of a heavy session costs.

What it does (see bench/README.md):

1. serves a small site on three loopback origins, launches one headless Chromium with
   ``psp_cdp.cdp.launch_chromium()`` and builds a heavy state in real pages: a few MB of
   localStorage (mostly incompressible values) over the three origins, 10,000 IndexedDB
   records of about 1 KB and 50 CacheStorage entries (the generator of
   ``bench/idb_caches.py``), about 30 cookies, 4 tabs with history and sessionStorage;
2. captures it three times into a filesystem store with
   ``Sessions(store).capture(conn, "bench")``: version 1 (full), then after changing ONE
   localStorage key in one page (version 2, a delta), then with no change at all
   (version 3). Reports each version's ``stored_bytes``, what its delta carries, and the
   capture time, against Playwright's ``context.storage_state(indexed_db=True)`` on the
   same browser state (the size of its JSON, which always holds the whole state, and its
   time);
3. compresses the full state of the last capture (protobuf bytes) with lz4 (one frame,
   and the snapshot container unsealed and sealed) and zlib (levels 1 and 6): sizes, and
   median compress / decompress times;
4. starts a real ``redis-server`` on loopback and measures, for the Redis store and the
   filesystem store side by side, p50 / p99 / mean of ``Sessions.save`` of the heavy
   state with one key changed each time (a delta version), ``Sessions.load`` of the
   latest version, and the raw ``store.write_version`` / ``store.read_version`` of the
   delta blob alone;
5. prints markdown tables, then ``json:`` and one JSON line with every figure.

Run: ``.venv/bin/python bench/versions.py [--quick] [--iterations N] [--runs N] [--json PATH]``
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import lz4.frame
import trio

import psp_cdp
import psp_cdp.store.sessions as sessions_module
from psp_cdp.cdp import launch_chromium, open_cdp
from psp_cdp.snapshot import codec, diff
from psp_cdp.snapshot.model import BrowserSessionState, domstring, text
from psp_cdp.store import FilesystemStore, SessionInfo, Sessions, Store, VersionInfo, open_store
from psp_cdp.store.keys import Keyring

from benchkit import PlaywrightOverCdp, Origin, evaluate, finish_run, goto, json_blob, kib, ms, page_targets, serve_site
from idb_caches import SiteHandler, bench_call

CHROMIUM = "/usr/bin/chromium"
REDIS_SERVER = "/usr/bin/redis-server"
STEP_TIMEOUT = 120.0  # seconds, per capture or build step: a hung step fails the run instead of hanging it
CIPHER = "aes-256-gcm"  # what Sessions seals with by default
SESSION = "bench"

# --------------------------------------------------------------------------------------
# The site and the state
# --------------------------------------------------------------------------------------

#: (label, host the browser uses, address the server binds). "mail" and "shop" get the
#: IndexedDB databases and caches of bench/idb_caches.py; every origin gets localStorage.
ORIGIN_SPECS = [
    ("mail", "127.0.0.1", "127.0.0.1"),
    ("docs", "127.0.0.2", "127.0.0.2"),
    ("shop", "localhost", "127.0.0.1"),
]
#: Origins whose IndexedDB and CacheStorage idb_caches' page library builds (10,000 records, 50 entries).
IDB_LABELS = ("mail", "shop")
IDB_LABELS_QUICK = ("mail",)
#: Tabs: (origin label, history paths; the last one is the current entry).
TABS = [
    ("mail", ["/app", "/inbox", "/inbox/42?thread=7"]),
    ("docs", ["/app", "/docs/guide"]),
    ("shop", ["/app", "/search?q=lamp", "/cart"]),
    ("mail", ["/app", "/settings"]),
]
#: Share of the localStorage volume per origin.
LS_WEIGHTS = {"mail": 0.40, "docs": 0.30, "shop": 0.30}
LS_BYTES = 4_000_000
LS_BYTES_QUICK = 1_000_000
#: The one key the benchmark changes between version 1 and version 2 (in the mail origin).
CHANGED_KEY = "mail:auth:access_token"
CHANGED_SIZE = 1024

def _token(rng: random.Random, size: int) -> str:
    """``size`` characters of base64 of random bytes: what tokens and encrypted blobs look like."""
    return base64.b64encode(rng.randbytes(size * 3 // 4 + 3)).decode()[:size]


def _value(rng: random.Random, size: int) -> str:
    if rng.random() < 0.85:  # opaque tokens, encrypted or encoded payloads: incompressible-ish
        return _token(rng, size)
    return json_blob(rng, size)[:size]  # JSON-ish cache blob (compressible)


def local_storage_items(label: str, target_bytes: int) -> dict[str, str]:
    """Deterministic items of 64 B to 64 KB adding up to about ``target_bytes`` of UTF-8."""
    rng = random.Random(f"versions-ls-{label}")
    items: dict[str, str] = {}
    if label == "mail":
        items[CHANGED_KEY] = _token(rng, CHANGED_SIZE)
    total = sum(len(k.encode()) + len(v.encode()) for k, v in items.items())
    n = 0
    while total < target_bytes:
        size = int(math.exp(rng.uniform(math.log(64), math.log(64_000))))
        key = f"{label}:{rng.choice(['cache', 'draft', 'pref', 'feature', 'apollo', 'redux', 'blob'])}:{n}"
        value = _value(rng, max(8, min(size, target_bytes - total)))
        items[key] = value
        total += len(key.encode()) + len(value.encode())
        n += 1
    return items


def session_storage_items(label: str, tab: int) -> dict[str, str]:
    rng = random.Random(f"versions-ss-{label}-{tab}")
    return {f"{label}:scroll": str(rng.randrange(5000)), f"{label}:form-draft": _value(rng, 2000),
            f"{label}:nonce": _token(rng, 44)}


def cdp_cookies(origins: list[Origin]) -> list[dict[str, Any]]:
    """About 30 cookies over the three hosts, with varied attributes."""
    rng = random.Random("versions-cookies")
    now = time.time()
    variants = [
        {"httpOnly": True, "sameSite": "Lax", "expires": now + 86400 * 30},
        {"sameSite": "Strict"},
        {"expires": now + 3600, "path": "/api"},
        {"httpOnly": True, "sameSite": "None", "secure": True, "expires": now + 86400},
        {"priority": "High", "expires": now + 7 * 86400},
        {},
    ]
    cookies = []
    for i in range(30):
        origin = origins[i % len(origins)]
        variant = dict(variants[i % len(variants)])
        cookies.append({
            "name": f"c{i:02d}_{origin.label}",
            "value": base64.urlsafe_b64encode(rng.randbytes(rng.choice((8, 24, 64, 180)))).decode().rstrip("="),
            "url": f"{origin.url}{variant.pop('path', '/')}",
            **variant,
        })
    return cookies


async def write_storage(session: Any, kind: str, items: dict[str, str]) -> None:
    payload = json.dumps(json.dumps(list(items.items()), ensure_ascii=False), ensure_ascii=False)
    count = await evaluate(
        session, f"(() => {{ for (const [k, v] of JSON.parse({payload})) {kind}.setItem(k, v); return {kind}.length; }})()"
    )
    if count < len(items):
        raise RuntimeError(f"{kind}: {count} items after writing {len(items)}")


async def build_state(endpoint: str, origins: list[Origin], ls_bytes: int, idb_labels: tuple[str, ...]) -> dict[str, Any]:
    """Build the state in the default context; what was built, as the pages report it."""
    by_label = {o.label: o for o in origins}
    built: dict[str, Any] = {"local_storage": {}, "idb": {}, "tabs": []}
    async with open_cdp(endpoint) as conn:
        built["chromium"] = (await conn.send("Browser.getVersion"))["product"]
        existing = await page_targets(conn, None)
        target_ids = [existing[0]["targetId"]] if existing else []
        while len(target_ids) < len(TABS):
            target_ids.append((await conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"])
        filled: set[str] = set()
        for index, (target_id, (label, paths)) in enumerate(zip(target_ids, TABS)):
            origin = by_label[label]
            tab = await conn.attach(target_id)
            try:
                await tab.send("Page.enable")
                await goto(tab, origin.url + paths[0])
                if label not in filled:
                    filled.add(label)
                    items = local_storage_items(label, int(ls_bytes * LS_WEIGHTS[label]))
                    await write_storage(tab, "localStorage", items)
                    built["local_storage"][origin.url] = {
                        "items": len(items), "bytes": sum(len(k.encode()) + len(v.encode()) for k, v in items.items())}
                    if label in idb_labels:
                        with trio.fail_after(STEP_TIMEOUT):
                            built["idb"][label] = json.loads(await evaluate(tab, bench_call("build", label)))
                for path in paths[1:]:
                    await goto(tab, origin.url + path)
                await write_storage(tab, "sessionStorage", session_storage_items(label, index))
                built["tabs"].append(origin.url + paths[-1])
            finally:
                await tab.detach()
        await conn.send("Storage.setCookies", {"cookies": cdp_cookies(origins)})
        built["cookies"] = len((await conn.send("Storage.getCookies"))["cookies"])
    built["idb_records"] = sum(n for c in built["idb"].values() for n in c["stores"].values())
    built["cache_entries"] = sum(c["cacheEntries"] for c in built["idb"].values())
    built["ls_bytes"] = sum(v["bytes"] for v in built["local_storage"].values())
    built["ls_items"] = sum(v["items"] for v in built["local_storage"].values())
    return built


async def change_one_key(endpoint: str, origin: Origin, value: str) -> None:
    """``localStorage.setItem(CHANGED_KEY, value)`` in an open tab of ``origin``: the one change."""
    async with open_cdp(endpoint) as conn:
        tab_info = next(t for t in await page_targets(conn, None) if t["url"].startswith(origin.url + "/"))
        tab = await conn.attach(tab_info["targetId"])
        try:
            await evaluate(tab, f"localStorage.setItem({json.dumps(CHANGED_KEY)}, {json.dumps(value)})")
        finally:
            await tab.detach()


# --------------------------------------------------------------------------------------
# 1. Versions: Sessions.capture three times, Playwright's storage_state beside it
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def timed_capture_state(out: list[float]) -> Iterator[None]:
    """Time the ``capture_state`` call inside ``Sessions.capture`` (the browser part), in ``out``."""
    original = sessions_module.capture_state

    async def timed(*args: Any, **kwargs: Any) -> BrowserSessionState:
        t0 = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            out.append(time.perf_counter() - t0)

    sessions_module.capture_state = timed
    try:
        yield
    finally:
        sessions_module.capture_state = original


async def psp_capture(endpoint: str, sessions: Sessions) -> tuple[sessions_module.Captured, dict[str, float]]:
    inner: list[float] = []
    t0 = time.perf_counter()
    async with open_cdp(endpoint) as conn:
        t1 = time.perf_counter()
        with timed_capture_state(inner), trio.fail_after(STEP_TIMEOUT):
            captured = await sessions.capture(conn, SESSION)
        t2 = time.perf_counter()
    times = {"connect": t1 - t0, "capture": t2 - t1}
    if inner:
        times["capture_state"] = inner[0]
        times["store"] = times["capture"] - inner[0]
    return captured, times


class PlaywrightSide(PlaywrightOverCdp):
    """Playwright's sync API over connect_over_cdp to the same browser."""

    indexed_db = True

    def measure(self) -> dict[str, Any]:
        """A capture, with the size of its JSON and what it holds."""
        state, seconds = self.capture()
        t1 = time.perf_counter()
        data = json.dumps(state, ensure_ascii=False).encode("utf-8", "surrogatepass")
        t2 = time.perf_counter()
        origins = state.get("origins", [])
        return {
            "seconds": seconds,
            "dumps_seconds": t2 - t1,
            "json_bytes": len(data),
            "cookies": len(state.get("cookies", [])),
            "ls_items": sum(len(o.get("localStorage", [])) for o in origins),
            "idb_records": sum(len(s["records"]) for o in origins for db in o.get("indexedDB", []) for s in db["stores"]),
        }


def version_row(v: VersionInfo) -> dict[str, Any]:
    return {"version": v.version, "kind": v.kind, "parent": v.parent, "base": v.base, "stored_bytes": v.stored_bytes,
            "blob_bytes": v.blob_bytes, "raw_bytes": v.raw_bytes, "cipher": v.cipher, "changes": v.changes,
            "components": v.components}


def directory_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def delta_content(parent: BrowserSessionState, child: BrowserSessionState) -> dict[str, dict[str, list[int]]]:
    """What the delta from ``parent`` to ``child`` carries, per component and per reason: [items, bytes of values].

    Computed as Sessions does (``diff.diff`` against the parent's items). An item is *changed* (its value
    differs), *added*, *removed*, or *moved*: same value, but its place in the item order changed, so the delta
    carries its key only (VersionInfo.changes does not count those).
    """
    before = dict(diff.items(parent))
    delta = diff.diff(diff.index(list(before.items())), diff.items(child))
    out: dict[str, dict[str, list[int]]] = {}
    for item in delta.items:
        old = before.get(item.key)
        reason = "moved" if item.moved else "added" if old is None else "changed"
        cell = out.setdefault(diff.component_of(item.key), {}).setdefault(reason, [0, 0])
        cell[0] += 1
        cell[1] += len(item.value)
    for key in delta.removed:
        cell = out.setdefault(diff.component_of(key), {}).setdefault("removed", [0, 0])
        cell[0] += 1
    return out


def part_versions(endpoint: str, origins: list[Origin], store_dir: str, keyring: Keyring,
                  playwright: PlaywrightSide, results: dict[str, Any]) -> BrowserSessionState:
    """Three captures (full, one key changed, nothing changed), Playwright beside each; the full state."""
    store = open_store(store_dir)
    sessions = Sessions(store, keyring=keyring, cipher=CIPHER)
    mail = next(o for o in origins if o.label == "mail")
    out: dict[str, Any] = {"captures": []}
    results["versions"] = out
    states: list[BrowserSessionState] = []
    steps = [("initial state", None), ("1 localStorage key changed", _token(random.Random("changed-1"), CHANGED_SIZE)),
             ("no change", None)]
    # Playwright connects (timed), reloads the tabs (untimed: it reads only origins it saw a document commit in),
    # captures and disconnects, so that it is not attached while psp_cdp captures. It goes first in steps 1 and 2
    # and last in step 3: nothing, not even its reload, happens between versions 2 and 3.
    orders = [("pw", "psp"), ("pw", "psp"), ("psp", "pw")]
    for n, ((what, change), order) in enumerate(zip(steps, orders)):
        if change is not None:
            trio.run(change_one_key, endpoint, mail, change)
        row: dict[str, Any] = {"step": what, "order": list(order)}
        for side in order:
            gc.collect()
            if side == "psp":
                captured, times = trio.run(psp_capture, endpoint, sessions)
                row["psp_times"] = times
                row["psp_version"] = captured.version.version if captured.version else None
                states.append(captured.state)
            else:
                connect = playwright.connect(endpoint)
                playwright.learn_origins()
                row["pw"] = playwright.measure()
                row["pw"]["connect_seconds"] = connect
                playwright.disconnect()
        out["captures"].append(row)
        print(f"  capture {n + 1}/3 ({what}) done", file=sys.stderr)
    info = store.get(SESSION)
    listed = store.versions(info)
    out["listed"] = [version_row(v) for v in listed]
    out["store_files_bytes"] = directory_bytes(store_dir)
    first = states[0]
    out["captured"] = {
        "components": list(first.report.components),
        "cookies": len(first.storage.cookies),
        "ls_origins": len(first.storage.local_storage),
        "ls_items": sum(len(o.items) for o in first.storage.local_storage),
        "idb_records": len(first.storage.indexed_db_records),
        "cache_entries": len(first.storage.cache_entries),
        "tabs": len(first.history.tabs),
        "uncovered": [f"{u.what}: {u.reason}" for u in first.report.uncovered],
    }
    out["delta_content"] = {str(n + 2): delta_content(states[n], states[n + 1]) for n in range(len(states) - 1)}
    by_number = {v.version: v for v in listed}
    if 1 in by_number and 2 in by_number:
        out["ratio_v2_v1"] = by_number[2].stored_bytes / by_number[1].stored_bytes
    store.close()
    return states[-1]


# --------------------------------------------------------------------------------------
# 2. Compression of the full state
# --------------------------------------------------------------------------------------


def median_time(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    samples, value = [], None
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        value = function()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), value


def part_compression(state: BrowserSessionState, keyring: Keyring, runs: int) -> dict[str, Any]:
    key_id, key = keyring.current()
    seal = codec.Seal(key_id, key, cipher=CIPHER)
    context = b"psp bench"
    serialise, raw = median_time(state.SerializeToString, runs)
    parse, parsed = median_time(lambda: BrowserSessionState.FromString(raw), runs)
    rows: list[dict[str, Any]] = [{"format": "protobuf (raw)", "bytes": len(raw), "compress": serialise,
                                   "decompress": parse, "round_trip": parsed == state,
                                   "note": "SerializeToString / FromString"}]

    def bytes_row(name: str, compress: Callable[[bytes], bytes], decompress: Callable[[bytes], bytes], note: str) -> None:
        c, packed = median_time(lambda: compress(raw), runs)
        d, unpacked = median_time(lambda: decompress(packed), runs)
        rows.append({"format": name, "bytes": len(packed), "compress": c, "decompress": d,
                     "round_trip": unpacked == raw, "note": note})

    bytes_row("lz4 frame of the raw bytes", lz4.frame.compress, lz4.frame.decompress, "lz4.frame, default level, one frame")

    def container_row(name: str, sealing: codec.Seal | None, note: str) -> None:
        c, blob = median_time(lambda: codec.encode(state, seal=sealing, context=context), runs)
        d, decoded = median_time(lambda: codec.decode(blob, keys=lambda _: key, context=context), runs)
        rows.append({"format": name, "bytes": len(blob), "compress": c, "decompress": d,
                     "round_trip": decoded == state, "note": note})

    container_row("psp container, lz4, unsealed", None, "codec.encode / codec.decode, incl. serialise / parse")
    container_row("psp container, lz4, sealed (AES-256-GCM)", seal, "what Sessions stores by default")
    for level in (1, 6):
        bytes_row(f"zlib level {level}", lambda data, level=level: zlib.compress(data, level), zlib.decompress,
                  "of the raw bytes")
    return {"runs": runs, "raw_bytes": len(raw), "rows": rows}


# --------------------------------------------------------------------------------------
# 3. Store latency: Redis on loopback against the filesystem store
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` child on 127.0.0.1, nothing on disk, in its own directory."""

    def __init__(self, directory: str) -> None:
        import redis

        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        for _ in range(5):
            self.port = free_port()
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", directory, "--logfile", os.path.join(directory, "redis.log"), "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
                    client.ping()
                    self.version = client.info("server")["redis_version"]
                    client.close()
                    return
                except redis.RedisError:
                    time.sleep(0.05)
            self.stop()  # the port was taken meanwhile, or it did not come up: another port
        raise RuntimeError(f"redis-server did not start; see {directory}/redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def used_memory(self) -> int | None:
        import redis

        try:
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
            try:
                return int(client.info("memory")["used_memory"])
            finally:
                client.close()
        except redis.RedisError:
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def set_item(state: BrowserSessionState, origin: str, key: str, value: str) -> None:
    for area in state.storage.local_storage:
        if area.origin == origin:
            for item in area.items:
                if text(item.key) == key:
                    domstring(value, item.value)
                    return
    raise KeyError(f"{origin} {key}")


def get_item(state: BrowserSessionState, origin: str, key: str) -> str | None:
    for area in state.storage.local_storage:
        if area.origin == origin:
            for item in area.items:
                if text(item.key) == key:
                    return text(item.value)
    return None


def latency(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)

    def rank(p: float) -> float:  # nearest rank
        return ordered[max(1, math.ceil(p * n)) - 1]

    return {"n": n, "p50": statistics.median(ordered), "p99": rank(0.99), "mean": statistics.fmean(ordered),
            "min": ordered[0], "max": ordered[-1]}


async def sessions_io(stores: dict[str, Store], keyring: Keyring, state: BrowserSessionState, origin: str,
                      iterations: int, out: dict[str, Any], samples: dict[str, list[float]]) -> None:
    """Sessions.save of ``state`` with one key changed each time, then Sessions.load of the latest, per store."""
    sessions = {label: Sessions(store, keyring=keyring, cipher=CIPHER) for label, store in stores.items()}
    name = "bench-io"
    first: dict[str, Any] = {}
    for label, s in sessions.items():
        t0 = time.perf_counter()
        _, version = await s.save(name, state)
        first[label] = {"seconds": time.perf_counter() - t0, "kind": version.kind, "stored_bytes": version.stored_bytes}
    out["first_save"] = first
    rng = random.Random("versions-io")
    chains: dict[str, list[int]] = defaultdict(list)
    value = ""
    i = 0
    # until every store has written ``iterations`` delta versions (a full one comes every FULL_EVERY versions)
    while min(len(samples[f"{label} save delta"]) for label in sessions) < iterations:
        value = _token(rng, CHANGED_SIZE)
        set_item(state, origin, CHANGED_KEY, value)
        labels = list(sessions) if i % 2 == 0 else list(sessions)[::-1]
        for label in labels:
            s = sessions[label]
            t0 = time.perf_counter()
            _, version = await s.save(name, state)
            samples[f"{label} save {version.kind}"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            info, loaded = await s.load(name)
            elapsed = time.perf_counter() - t0
            samples[f"{label} load"].append(elapsed)
            samples[f"{label} load latest {version.kind}"].append(elapsed)
            chain = version.version - version.base + 1
            chains[label].append(chain)
            samples[f"{label} load chain {chain}"].append(elapsed)
            if get_item(loaded, origin, CHANGED_KEY) != value or info.head != version.version:
                raise RuntimeError(f"{label}: Sessions.load did not give the version just saved")
            if version.kind == "delta":
                out.setdefault("delta_stored_bytes", {}).setdefault(label, []).append(version.stored_bytes)
            del loaded
        i += 1
        if i % 50 == 0:
            print(f"  Sessions save + load: {i} rounds", file=sys.stderr)
    out["rounds"] = i
    out["chain_blobs"] = {label: {"min": min(c), "max": max(c), "mean": statistics.fmean(c)} for label, c in chains.items()}
    # once, untimed: the loaded state equals the saved one (compose gives back the exact message)
    out["load_identical"] = {}
    for label, s in sessions.items():
        _, loaded = await s.load(name)
        out["load_identical"][label] = loaded == state
        del loaded
    out["versions_written"] = {label: len(store.versions(store.get(name))) for label, store in stores.items()}


def raw_io(stores: dict[str, Store], full_blob: bytes, delta_blob: bytes, iterations: int,
           samples: dict[str, list[float]]) -> None:
    """store.write_version / store.read_version of one delta blob alone (the store never decodes it).

    A session of its own: version 1 is a full blob (untimed), then ``iterations`` versions of the same delta blob.
    """
    infos: dict[str, SessionInfo] = {}
    for label, store in stores.items():
        infos[label] = store.create("bench-raw")
        store.write_version(infos[label], VersionInfo(1, kind="full", base=1, created_at=time.time()), full_blob)
    for i in range(iterations):
        n = i + 2
        labels = list(stores) if i % 2 == 0 else list(stores)[::-1]
        for label in labels:
            store, info = stores[label], infos[label]
            version = VersionInfo(n, kind="delta", parent=n - 1, base=1, created_at=time.time())
            t0 = time.perf_counter()
            store.write_version(info, version, delta_blob)
            samples[f"{label} write_version"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            blob = store.read_version(info, n)
            samples[f"{label} read_version"].append(time.perf_counter() - t0)
            if blob != delta_blob:
                raise RuntimeError(f"{label}: read_version gave other bytes")


def filesystem_of(path: str) -> str:
    """The mount (type and mount point) a path lives on, from /proc/self/mounts."""
    path = os.path.realpath(path)
    best = ("?", "/")
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    point = parts[1].replace("\\040", " ")
                    if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[1]):
                        best = (parts[2], point)
    except OSError:
        pass
    return f"{best[0]} at {best[1]}"


def part_stores(state: BrowserSessionState, origin: str, root: str, keyring: Keyring, iterations: int,
                stack: contextlib.ExitStack) -> dict[str, Any]:
    out: dict[str, Any] = {"iterations": iterations}
    redis_dir = os.path.join(root, "redis")
    os.mkdir(redis_dir)
    server = RedisServer(redis_dir)
    stack.callback(server.stop)
    out["redis_version"] = server.version
    fs_dir = os.path.join(root, "fs-store")
    out["filesystem"] = filesystem_of(root)
    redis_store = open_store(server.url)
    stack.callback(redis_store.close)
    fs_store = FilesystemStore(fs_dir)
    stores: dict[str, Store] = {"redis": redis_store, "filesystem": fs_store}
    out["redis_store_class"] = type(redis_store).__name__
    samples: dict[str, list[float]] = defaultdict(list)
    trio.run(sessions_io, stores, keyring, state, origin, iterations, out, samples)
    # the blobs Sessions.save wrote: the first (full) version and the last delta (one value changed), as sealed
    info = fs_store.get("bench-io")
    listed = fs_store.versions(info)
    full_blob = fs_store.read_version(info, listed[0].version)
    delta_blob = fs_store.read_version(info, next(v for v in reversed(listed) if v.kind == "delta").version)
    raw_io(stores, full_blob, delta_blob, iterations, samples)
    out["delta_blob_bytes"] = len(delta_blob)
    out["redis_used_memory"] = server.used_memory()
    out["filesystem_store_bytes"] = directory_bytes(fs_dir)
    out["stats"] = {k: latency(v) for k, v in samples.items() if " chain " not in k}
    out["load_by_chain"] = {label: dict(sorted((int(k.rsplit(" ", 1)[1]), statistics.median(v)) for k, v in samples.items()
                                               if k.startswith(f"{label} load chain "))) for label in stores}
    out["samples"] = dict(samples)  # in the --json file only
    delta_sizes = out.pop("delta_stored_bytes", {})
    out["delta_stored_bytes"] = {label: latency([float(x) for x in sizes]) for label, sizes in delta_sizes.items()}
    redis_store.close()
    server.stop()
    return out


# --------------------------------------------------------------------------------------
# Main and report
# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smaller run: 1 MB of localStorage, 6,000 records on one origin, 50 iterations, 3 runs")
    parser.add_argument("--iterations", type=int,
                        help="delta versions written (and latest versions read) per store, and raw store ops "
                             "(default 200; 50 with --quick)")
    parser.add_argument("--runs", type=int, help="compression runs per figure (default 5; 3 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args()
    iterations = args.iterations or (50 if args.quick else 200)
    runs = args.runs or (3 if args.quick else 5)
    if iterations < 1 or runs < 1:
        parser.error("--iterations and --runs must be at least 1")
    ls_bytes = LS_BYTES_QUICK if args.quick else LS_BYTES
    idb_labels = IDB_LABELS_QUICK if args.quick else IDB_LABELS

    started = time.perf_counter()
    results: dict[str, Any] = {"psp_cdp_version": psp_cdp.__version__, "quick": args.quick, "cipher": CIPHER,
                               "full_every": sessions_module.FULL_EVERY, "cpus": os.cpu_count(),
                               "loadavg_start": os.getloadavg()}
    root = tempfile.mkdtemp(prefix="psp-bench-versions-")
    try:
        with serve_site(ORIGIN_SPECS, SiteHandler) as origins, contextlib.ExitStack() as stack:
            keyring = Keyring(os.path.join(root, "keys"), environ={})
            browser = launch_chromium(executable=CHROMIUM)
            stack.callback(browser.close)
            endpoint = browser.endpoint
            print(f"site: {', '.join(o.url for o in origins)}; Chromium at {endpoint}", file=sys.stderr)

            stages = results["stage_seconds"] = {}
            t0 = time.perf_counter()
            results["built"] = trio.run(build_state, endpoint, origins, ls_bytes, idb_labels)
            stages["build"] = time.perf_counter() - t0
            print(f"built the state in {stages['build']:.1f}s", file=sys.stderr)

            t0 = time.perf_counter()
            playwright = PlaywrightSide()
            stack.callback(playwright.stop)
            state = part_versions(endpoint, origins, os.path.join(root, "store"), keyring, playwright, results)
            playwright.stop()
            browser.close()
            stages["versions"] = time.perf_counter() - t0

            print("compression ...", file=sys.stderr)
            t0 = time.perf_counter()
            results["compression"] = part_compression(state, keyring, runs)
            stages["compression"] = time.perf_counter() - t0
            print("stores ...", file=sys.stderr)
            t0 = time.perf_counter()
            mail = next(o for o in origins if o.label == "mail")
            results["stores"] = part_stores(state, mail.url, root, keyring, iterations, stack)
            stages["stores"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finish_run(results, started, args.json)
    results.get("stores", {}).pop("samples", None)
    ok = print_report(results)
    print("\njson: " + json.dumps(results, default=str, separators=(",", ":")))
    return 0 if ok else 1


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.3f} %" if whole else "n/a"


def print_report(results: dict[str, Any]) -> bool:
    """Print the tables; whether version 2 came out as a delta under 1 % of version 1."""
    b, v = results["built"], results["versions"]
    print(f"# Versions, compression and store latency: psp_cdp {results['psp_cdp_version']}"
          f"{' (--quick)' if results['quick'] else ''}\n")
    print(f"- Browser: {b['chromium']} (headless, default context as the source)")
    print(f"- State built: {b['ls_items']:,} localStorage items, {kib(b['ls_bytes'])} (UTF-8, 85 % of the values "
          f"base64 of random bytes) over {len(b['local_storage'])} origins; {b['idb_records']:,} IndexedDB records "
          f"and {b['cache_entries']} CacheStorage entries (bench/idb_caches.py generator); {b['cookies']} cookies; "
          f"{len(b['tabs'])} tabs with history and sessionStorage")
    c = v["captured"]
    print(f"- psp_cdp captured: {c['cookies']} cookies, {c['ls_items']:,} localStorage items in {c['ls_origins']} "
          f"origins, {c['idb_records']:,} IndexedDB records, {c['cache_entries']} cache entries, {c['tabs']} tabs "
          f"(components: {', '.join(c['components'])})")
    if c["uncovered"]:
        print(f"- psp_cdp reported uncovered: {'; '.join(c['uncovered'][:5])}")
    print(f"- Sessions sealed with {results['cipher']}; a full version every {results['full_every']} versions "
          f"(the default); wall time of the whole run {results['wall_seconds']:.1f}s "
          f"({', '.join(f'{k} {x:.0f}s' for k, x in results.get('stage_seconds', {}).items())}); {results['cpus']} CPUs, "
          f"load average {results['loadavg_start'][0]:.1f} at the start, {results['loadavg_end'][0]:.1f} at the end\n")

    print("## 1. Three captures of one session into a filesystem store, Playwright beside each\n")
    print("| capture | psp version | kind | stored_bytes | % of v1 | raw bytes | Sessions.capture ms "
          "| of which capture_state ms | Playwright connect ms | Playwright storage_state ms | Playwright JSON bytes |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    listed = {row["version"]: row for row in v["listed"]}
    v1 = listed.get(1, {}).get("stored_bytes", 0)
    for row in v["captures"]:
        number = row.get("psp_version")
        ver = listed.get(number, {})
        t = row["psp_times"]
        pw = row["pw"]
        print(f"| {row['step']} | {number} | {ver.get('kind', '?')} | {ver.get('stored_bytes', 0):,} "
              f"| {pct(ver.get('stored_bytes', 0), v1)} | {ver.get('raw_bytes', 0):,} | {ms(t['capture'])} "
              f"| {ms(t['capture_state']) if 'capture_state' in t else 'n/a'} | {ms(pw['connect_seconds'])} "
              f"| {ms(pw['seconds'])} "
              f"| {pw['json_bytes']:,} |")
    total_psp = sum(row["stored_bytes"] for row in v["listed"])
    total_pw = sum(row["pw"]["json_bytes"] for row in v["captures"])
    ratio = v.get("ratio_v2_v1")
    met = ratio is not None and ratio < 0.01 and listed.get(2, {}).get("kind") == "delta"
    print(f"\n- Version 2 / version 1 (stored_bytes): **{pct(ratio or 0, 1)}** (target < 1 %: "
          f"{'met' if met else 'MISSED'})")
    for number in (2, 3):
        if number in listed:
            content = v["delta_content"].get(str(number), {})
            parts = [f"{component} {reason} {cell[0]:,}" + (f" ({cell[1]:,} B)" if reason != "removed" else "")
                     for component, reasons in sorted(content.items()) for reason, cell in sorted(reasons.items())]
            print(f"- Version {number} delta carries: {'; '.join(parts) or 'nothing'} "
                  f"(VersionInfo.changes: {json.dumps(listed[number]['changes'])})")
    moved = {n: sum(cell[0] for reasons in content.values() for reason, cell in reasons.items() if reason == "moved")
             for n, content in v["delta_content"].items()}
    if any(moved.values()):
        print(f"- Moved items (same value, another place in the captured order; the delta carries their keys only): "
              f"{', '.join(f'version {n}: {count:,}' for n, count in moved.items())}")
    print(f"- After the 3 captures the store holds {total_psp:,} B for the session's versions "
          f"({v['store_files_bytes']:,} B of files, with the session record and name index); Playwright's "
          f"3 JSON files: {total_pw:,} B")
    print(f"- Sessions.capture excludes connecting (open_cdp: "
          f"{', '.join(ms(r['psp_times']['connect']) for r in v['captures'])} ms); it is capture_state (reading the "
          f"browser) plus diff, encode, seal and write: "
          f"{', '.join(ms(r['psp_times'].get('store', 0)) for r in v['captures'])} ms")
    pw0 = v["captures"][0]["pw"]
    print(f"- Playwright connects, reloads the tabs (untimed; it reads only origins it saw a document commit in), "
          f"captures and disconnects each time, before psp_cdp in captures 1 and 2 and after it in capture 3 (so "
          f"nothing happens between versions 2 and 3); its JSON holds {pw0['cookies']} cookies, "
          f"{pw0['ls_items']:,} localStorage items, {pw0['idb_records']:,} IndexedDB records and no CacheStorage; "
          f"json.dumps took {ms(pw0['dumps_seconds'])} ms (not in its figure)")

    comp = results["compression"]
    print(f"\n## 2. Compression of the full state (the last capture's), median of {comp['runs']} runs\n")
    print("| format | bytes | % of raw | compress ms | decompress ms | round trip | notes |")
    print("|---|---:|---:|---:|---:|---|---|")
    for row in comp["rows"]:
        print(f"| {row['format']} | {row['bytes']:,} | {100 * row['bytes'] / comp['raw_bytes']:.1f} % "
              f"| {ms(row['compress'])} | {ms(row['decompress'])} | {'ok' if row['round_trip'] else 'FAIL'} "
              f"| {row['note']} |")

    s = results["stores"]
    st = s["stats"]
    print(f"\n## 3. Store latency on loopback: Redis {s['redis_version']} against the filesystem store, "
          f"{s['iterations']} delta versions and {s['iterations']} raw ops per store\n")
    print(f"Filesystem store on {s['filesystem']} (every write fsynced); Redis standalone on 127.0.0.1, "
          f"--save \"\" --appendonly no. Sessions.save writes the heavy state with one localStorage value changed "
          f"each time (a delta, a full version every {results['full_every']}); Sessions.load reads the latest "
          f"version (its full base, then each delta: {describe_chains(s['chain_blobs'])}). The raw ops write and "
          f"read one of those sealed delta blobs ({s['delta_blob_bytes']:,} B) alone.\n")
    print("| operation | store | n | p50 ms | p99 ms | mean ms | min ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = [("Sessions.save, delta version", "save delta"), ("Sessions.save, full version", "save full"),
            ("Sessions.load, latest version", "load"), ("  of which latest is a delta", "load latest delta"),
            ("  of which latest is full", "load latest full"), ("store.write_version (delta blob)", "write_version"),
            ("store.read_version (delta blob)", "read_version")]
    for label, key in rows:
        for store in ("redis", "filesystem"):
            x = st.get(f"{store} {key}")
            if x:
                print(f"| {label} | {store} | {x['n']} | {ms(x['p50'])} | {ms(x['p99'])} | {ms(x['mean'])} "
                      f"| {ms(x['min'])} | {ms(x['max'])} |")
    for store, first in s["first_save"].items():
        print(f"\n- First Sessions.save ({first['kind']}) to {store}: {ms(first['seconds'])} ms, "
              f"{first['stored_bytes']:,} stored bytes", end="")
    print()
    for store, x in s["delta_stored_bytes"].items():
        print(f"- Delta versions' stored_bytes in {store}: median {x['p50']:,.0f} B (min {x['min']:,.0f}, "
              f"max {x['max']:,.0f})")
    for store, by_chain in s["load_by_chain"].items():
        shown = [n for n in sorted(by_chain) if n in (1, 2, 5, 10, 15, 20) or n == max(by_chain)]
        print(f"- Sessions.load median by blobs read (full base + deltas), {store}: "
              f"{', '.join(f'{n}: {ms(by_chain[n])} ms' for n in shown)}")
    print(f"- Loaded state equal to the saved one (protobuf equality, checked once at the end): "
          f"{', '.join(f'{k} {ok}' for k, ok in s['load_identical'].items())}")
    print(f"- Versions in each store: {s['versions_written']}; Redis used_memory at the end "
          f"{kib(s['redis_used_memory'] or 0)}; filesystem store files {kib(s['filesystem_store_bytes'])}")

    print("\n## Caveats\n")
    print("- Playwright's storage_state has no versions: every save is the whole state (and no CacheStorage, "
          "sessionStorage or tabs). Its JSON size is the compact json.dumps of what it returns.")
    print("- Sessions.capture times include the browser read (capture_state), which dominates; the diff, encode, "
          f"seal and store write are the rest. p99 is nearest-rank (with {s['iterations']} samples, the "
          f"{nth(s['iterations'] - max(1, math.ceil(0.99 * s['iterations'])) + 1)} slowest).")
    print("- Sessions.save and Sessions.load are bound by Python CPU time, not by the store: a save splits the whole "
          "state into items and hashes them (diff.items + index) to diff against the parent; a load of a delta "
          "decodes and decrypts the full base, splits it into items, applies each delta of the chain and composes the "
          "state again. The store's own share is the write_version / read_version rows.")
    print("- Absolute figures depend on the machine and its load; compare the columns side by side.")
    return met


def nth(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def describe_chains(chains: dict[str, dict[str, float]]) -> str:
    any_chain = next(iter(chains.values()), None)
    if not any_chain:
        return "n/a"
    return f"{any_chain['min']:.0f} to {any_chain['max']:.0f} blobs, {any_chain['mean']:.1f} on average"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # browser, driver, redis-server and temp dirs are closed by then
        print("interrupted", file=sys.stderr)
        sys.exit(130)
