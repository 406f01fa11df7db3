"""Playwright ``storageState`` interop: pure conversion, no I/O.

:func:`to_storage_state` turns a :class:`BrowserSessionState` into the dict Playwright's
``browser.new_context(storage_state=...)`` takes (and ``context.storage_state(indexed_db=True)``
writes), with the names of what that format cannot hold; :func:`from_storage_state` reads one
back.

IndexedDB records follow Playwright's own encoding: a key or value made of plain objects,
arrays, strings, finite numbers, booleans and null is written as itself (``key``/``value``);
anything else as Playwright's serialised form (``keyEncoded``/``valueEncoded``:
``{"v": "undefined"|"null"|"NaN"|"Infinity"|"-Infinity"|"-0"}``, ``{"d": iso}``,
``{"bi": digits}``, ``{"r": {"p", "f"}}``, ``{"e": {"n", "m", "s"}}``, ``{"ta": {"b", "k"}}``,
``{"ab": {"b"}}``, ``{"a": [...], "id"}``, ``{"o": [{"k", "v"}], "id"}``, ``{"m": [{"k", "v"}], "id"}``,
``{"s": [...], "id"}``, ``{"ref": id}``). Records of a store with a key path carry no key, as in
Playwright. psp_cdp keeps keys and values as structured-clone-v1 (docs/structured-clone.md);
values Playwright's encoding cannot express (Blob, File, wrapper objects, sparse arrays, ...)
are left out and named.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections import defaultdict
from typing import Any

from ..errors import SnapshotError
from .clone import ENCODING as CLONE_ENCODING
from .model import (
    LAST_EXPIRY,
    PROTOCOL_VERSION,
    BrowserSessionState,
    Cookie,
    IndexedDBDatabase,
    KeyPath,
    OriginStorage,
    SerializedValue,
    domstring,
    text,
)

__all__ = ["to_storage_state", "from_storage_state", "is_storage_state"]

_SAME_SITE = {Cookie.SAME_SITE_STRICT: "Strict", Cookie.SAME_SITE_LAX: "Lax", Cookie.SAME_SITE_NONE: "None"}
_SAME_SITE_BACK = {name: value for value, name in _SAME_SITE.items()}
_NUMBER_NAMES = ("NaN", "Infinity", "-Infinity", "-0")

#: Playwright's typed-array kinds and their element sizes.
_TYPED = {
    "Int8Array": ("i8", 1),
    "Uint8Array": ("ui8", 1),
    "Uint8ClampedArray": ("ui8c", 1),
    "Int16Array": ("i16", 2),
    "Uint16Array": ("ui16", 2),
    "Int32Array": ("i32", 4),
    "Uint32Array": ("ui32", 4),
    "Float32Array": ("f32", 4),
    "Float64Array": ("f64", 8),
    "BigInt64Array": ("bi64", 8),
    "BigUint64Array": ("bui64", 8),
}
_TYPED_BACK = {kind: (name, size) for name, (kind, size) in _TYPED.items()}
_ERRORS = {"Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError"}


class _Unsupported(Exception):
    """A value Playwright's (or psp_cdp's) encoding cannot express."""


# -- dates: JavaScript time values <-> Date.prototype.toJSON strings ----------------------------

def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def _iso(ms: float) -> str:
    days, rest = divmod(int(ms), 86_400_000)
    y, m, d = _civil_from_days(days)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    year = f"{y:04d}" if 0 <= y <= 9999 else f"{'+' if y > 0 else '-'}{abs(y):06d}"
    return f"{year}-{m:02d}-{d:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


_ISO = re.compile(r"([+-]\d{6}|\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?Z")


def _time_value(iso: Any) -> Any:
    """A Date's time value as a structured-clone-v1 child."""
    if iso is None:
        return ["NaN"]
    match = _ISO.fullmatch(str(iso))
    if not match:
        raise _Unsupported(f"date {iso!r}")
    y, mo, d, h, mi, s = (int(g) for g in match.groups()[:6])
    millis = int((match.group(7) or "0").ljust(3, "0"))
    return _days_from_civil(y, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000 + millis


# -- structured-clone-v1 -> Playwright ----------------------------------------------------------

def _is_trivial(value: dict[str, Any]) -> bool:
    """True when the value is plain JSON (no sharing, no special numbers, only Object/Array)."""
    seen: set[int] = set()

    def ok(c: Any) -> bool:
        if isinstance(c, list):
            if len(c) == 1 and isinstance(c[0], int) and not isinstance(c[0], bool):
                if c[0] in seen:
                    return False
                seen.add(c[0])
                return True
            return False
        return True

    if not ok(value["r"]):
        return False
    for node in value["n"]:
        if node[0] == "Object":
            children = node[2::2]
            if "__proto__" in node[1::2]:
                return False
        elif node[0] == "Array":
            children = node[2:]
        else:
            return False
        if not all(ok(c) for c in children):
            return False
    return True


def _plain(value: dict[str, Any]) -> Any:
    nodes = value["n"]

    def child(c: Any) -> Any:
        if isinstance(c, list):
            node = nodes[c[0]]
            if node[0] == "Object":
                return {node[i]: child(node[i + 1]) for i in range(1, len(node) - 1, 2)}
            return [child(x) for x in node[2:]]
        return c

    return child(value["r"])


def _to_playwright(value: dict[str, Any]) -> Any:
    """A structured-clone-v1 value in Playwright's serialised form."""
    nodes = value["n"]
    ids: dict[int, int] = {}

    def child(c: Any) -> Any:
        if not isinstance(c, list):
            return {"v": "null"} if c is None else c
        if len(c) == 1 and isinstance(c[0], int):
            return node(c[0])
        if c[0] == "u":
            return {"v": "undefined"}
        if c[0] in _NUMBER_NAMES:
            return {"v": c[0]}
        if c[0] == "n":
            return {"bi": c[1]}
        raise _Unsupported(f"child {c!r}")

    def number(c: Any) -> float:
        if isinstance(c, list):
            if c[0] == "NaN":
                return math.nan
            return {"Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[c[0]]
        return c

    def buffer(index: int) -> bytes:
        n = nodes[index]
        if n[0] != "ArrayBuffer" or n[2] is not None:
            raise _Unsupported("resizable ArrayBuffer")
        return base64.b64decode(n[1])

    def node(index: int) -> Any:
        if index in ids:
            return {"ref": ids[index]}
        n = nodes[index]
        kind = n[0]
        if kind in ("Object", "Array", "Map", "Set"):
            ids[index] = len(ids) + 1
            own = ids[index]
            if kind == "Object":
                if "__proto__" in n[1::2]:
                    raise _Unsupported("an own __proto__ property")
                return {"o": [{"k": n[i], "v": child(n[i + 1])} for i in range(1, len(n) - 1, 2)], "id": own}
            if kind == "Array":
                return {"a": [child(x) for x in n[2:]], "id": own}
            if kind == "Map":
                return {"m": [{"k": child(n[i]), "v": child(n[i + 1])} for i in range(1, len(n) - 1, 2)], "id": own}
            return {"s": [child(x) for x in n[1:]], "id": own}
        if kind == "Date":
            t = number(n[1])
            if math.isnan(t):
                return {"d": None}
            return {"d": _iso(t)}
        if kind == "RegExp":
            return {"r": {"p": n[1], "f": n[2]}}
        if kind == "Error":
            name, message, stack = n[1], n[2] or "", n[3]
            return {"e": {"n": name, "m": message, "s": stack if stack is not None else f"{name}: {message}"}}
        if kind == "ArrayBuffer":
            return {"ab": {"b": base64.b64encode(buffer(index)).decode("ascii")}}
        if kind in _TYPED:
            short, size = _TYPED[kind]
            data = buffer(n[1])
            offset, length = int(n[2]), int(n[3])
            if offset or length * size != len(data):
                raise _Unsupported(f"{kind} on part of an ArrayBuffer")
            return {"ta": {"b": base64.b64encode(data).decode("ascii"), "k": short}}
        raise _Unsupported(kind)

    return child(value["r"])


def _export_value(serialized: SerializedValue) -> tuple[str, Any]:
    """``("plain", value)`` or ``("encoded", value)`` for a record's key or value."""
    if serialized.encoding == "json":
        return "plain", json.loads(serialized.data)
    if serialized.encoding != CLONE_ENCODING:
        raise _Unsupported(f"encoding {serialized.encoding!r}")
    value = json.loads(serialized.data)
    if not isinstance(value, dict) or value.get("v") != 1:
        raise _Unsupported("not a structured-clone-v1 value")
    if _is_trivial(value):
        return "plain", _plain(value)
    return "encoded", _to_playwright(value)


# -- Playwright -> structured-clone-v1 ----------------------------------------------------------

class _Clone:
    """Builds one structured-clone-v1 value."""

    def __init__(self) -> None:
        self.nodes: list[list[Any]] = []
        self.refs: dict[Any, int] = {}

    def add(self, node: list[Any]) -> list[int]:
        self.nodes.append(node)
        return [len(self.nodes) - 1]

    def plain(self, value: Any) -> Any:
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return self.number(value)
        if isinstance(value, dict):
            ref = self.add(["Object"])
            node = self.nodes[ref[0]]
            for k, v in value.items():
                node += [k, self.plain(v)]
            return ref
        if isinstance(value, list):
            ref = self.add(["Array", len(value)])
            node = self.nodes[ref[0]]
            node += [self.plain(v) for v in value]
            return ref
        raise _Unsupported(type(value).__name__)

    @staticmethod
    def number(value: float) -> Any:
        if isinstance(value, float):
            if math.isnan(value):
                return ["NaN"]
            if math.isinf(value):
                return ["Infinity" if value > 0 else "-Infinity"]
            if value == 0 and math.copysign(1, value) < 0:
                return ["-0"]
            if value.is_integer() and abs(value) < 2**53:
                return int(value)
        return value

    def encoded(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return self.number(value)
        if not isinstance(value, dict):
            raise _Unsupported(f"encoded {value!r}")
        if "ref" in value:
            if value["ref"] not in self.refs:
                raise _Unsupported(f"reference to unknown id {value['ref']!r}")
            return [self.refs[value["ref"]]]
        if "v" in value:
            name = value["v"]
            if name == "undefined":
                return ["u"]
            if name == "null":
                return None
            if name in _NUMBER_NAMES:
                return [name]
            raise _Unsupported(f"special value {name!r}")
        if "d" in value:
            return self.add(["Date", _time_value(value["d"])])
        if "bi" in value:
            return ["n", str(value["bi"])]
        if "r" in value:
            return self.add(["RegExp", value["r"]["p"], value["r"]["f"]])
        if "e" in value:
            error = value["e"]
            name = error.get("n") if error.get("n") in _ERRORS else "Error"
            return self.add(["Error", name, error.get("m"), error.get("s")])
        if "ab" in value:
            return self.add(["ArrayBuffer", value["ab"]["b"], None])
        if "ta" in value:
            kind, size = _TYPED_BACK[value["ta"]["k"]]
            data = base64.b64decode(value["ta"]["b"])
            buffer = self.add(["ArrayBuffer", value["ta"]["b"], None])
            return self.add([kind, buffer[0], 0, len(data) // size])
        for key, kind in (("a", "Array"), ("o", "Object"), ("m", "Map"), ("s", "Set")):
            if key in value:
                items = value[key]
                ref = self.add([kind] if kind != "Array" else [kind, len(items)])
                if "id" in value:
                    self.refs[value["id"]] = ref[0]
                node = self.nodes[ref[0]]
                if kind in ("Array", "Set"):
                    node += [self.encoded(item) for item in items]
                else:
                    for item in items:
                        k = item["k"] if kind == "Object" else self.encoded(item["k"])
                        node += [k, self.encoded(item["v"])]
                return ref
        raise _Unsupported(f"encoded form {sorted(value)!r}")

    def serialized(self, root: Any) -> SerializedValue:
        data = json.dumps({"v": 1, "r": root, "n": self.nodes}, separators=(",", ":"), allow_nan=False)
        return SerializedValue(encoding=CLONE_ENCODING, data=data.encode("ascii"))


def _import_value(record: dict[str, Any], plain_name: str, encoded_name: str) -> SerializedValue | None:
    clone = _Clone()
    if plain_name in record:
        return clone.serialized(clone.plain(record[plain_name]))
    if encoded_name in record:
        return clone.serialized(clone.encoded(record[encoded_name]))
    return None


def _key_from_value(value: Any, key_path: str | list[str]) -> Any:
    """The key an in-line key path gives for a plain value (``None`` when it gives none)."""
    if isinstance(key_path, list):
        keys = [_key_from_value(value, path) for path in key_path]
        return None if any(k is None for k in keys) else keys
    for part in key_path.split(".") if key_path else []:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# -- the state ----------------------------------------------------------------------------------

def _partitioned(origin: str, storage_key: str) -> bool:
    return bool(storage_key) and storage_key != origin + "/"


def _key_path(path: KeyPath) -> dict[str, Any]:
    kind = path.WhichOneof("kind")
    if kind == "path":
        return {"keyPath": path.path}
    if kind == "paths":
        return {"keyPathArray": list(path.paths.paths)}
    return {}


def to_storage_state(state: BrowserSessionState) -> tuple[dict[str, Any], list[str]]:
    """Playwright's storageState for ``state``, and what it could not hold, by name."""
    missing: list[str] = []
    cookies = []
    opaque = []
    for c in state.storage.cookies:
        if c.partitioned and (c.partition_key_opaque or not c.partition_key.top_level_site):
            opaque.append(c.name)
            continue
        cookie: dict[str, Any] = {
            "name": c.name,
            "value": c.value,
            "domain": c.domain,
            "path": c.path,
            "expires": c.expires if c.HasField("expires") else -1,
            "httpOnly": c.http_only,
            "secure": c.secure,
            "sameSite": _SAME_SITE.get(c.same_site, "Lax"),
        }
        if c.partitioned:
            cookie["partitionKey"] = c.partition_key.top_level_site
            cookie["_crHasCrossSiteAncestor"] = c.partition_key.has_cross_site_ancestor
        cookies.append(cookie)
    if opaque:
        missing.append(f"cookies in opaque partitions: {', '.join(opaque)}")
    priority = [c.name for c in state.storage.cookies if c.priority in (Cookie.PRIORITY_LOW, Cookie.PRIORITY_HIGH)]
    if priority:
        missing.append(f"cookie priority: {', '.join(priority)}")

    origins: dict[str, dict[str, Any]] = {}

    def origin_entry(origin: str) -> dict[str, Any]:
        return origins.setdefault(origin, {"origin": origin, "localStorage": []})

    for storage in state.storage.local_storage:
        if _partitioned(storage.origin, storage.storage_key):
            missing.append(f"partitioned localStorage {storage.storage_key} ({len(storage.items)} items)")
            continue
        entry = origin_entry(storage.origin)
        entry["localStorage"] += [{"name": text(i.key), "value": text(i.value)} for i in storage.items]

    records: dict[int, list[Any]] = defaultdict(list)
    for record in state.storage.indexed_db_records:
        records[record.store].append(record)
    for database in state.storage.indexed_db:
        where = f"{database.storage_key or database.origin} {text(database.name)}"
        if _partitioned(database.origin, database.storage_key):
            missing.append(f"partitioned IndexedDB {where}")
            continue
        stores = []
        for store in database.stores:
            inline = store.key_path.WhichOneof("kind") is not None
            out = []
            numeric_keys = []
            for position, record in enumerate(records.get(store.id, [])):
                entry: dict[str, Any] = {}
                try:
                    if not inline:
                        form, key = _export_value(record.key)
                        entry["key" if form == "plain" else "keyEncoded"] = key
                        if form == "plain" and isinstance(key, (int, float)) and not isinstance(key, bool):
                            numeric_keys.append(key)
                    form, value = _export_value(record.value)
                    entry["value" if form == "plain" else "valueEncoded"] = value
                except (_Unsupported, ValueError, KeyError, IndexError, TypeError) as exc:
                    missing.append(f"IndexedDB record {where}/{text(store.name)} #{position + 1}: {exc}")
                    continue
                out.append(entry)
            if store.HasField("key_generator") and not inline:
                implied = math.floor(max(numeric_keys)) + 1 if numeric_keys else 1
                if store.key_generator > implied:
                    missing.append(f"IndexedDB key generator {where}/{text(store.name)} ({store.key_generator:.0f})")
            stores.append({
                "name": text(store.name),
                "autoIncrement": store.auto_increment,
                **_key_path(store.key_path),
                "records": out,
                "indexes": [
                    {"name": text(i.name), **_key_path(i.key_path), "multiEntry": i.multi_entry, "unique": i.unique}
                    for i in store.indexes
                ],
            })
        origin_entry(database.origin).setdefault("indexedDB", []).append(
            {"name": text(database.name), "version": database.version, "stores": stores}
        )

    tabs = state.history.tabs
    session_items = sum(len(s.items) for tab in tabs for s in tab.session_storage)
    if session_items:
        missing.append(f"sessionStorage ({session_items} items)")
    if tabs:
        missing.append(f"tabs ({len(tabs)}: navigation history, form and scroll state)")
    if state.storage.cache_storage:
        missing.append(
            f"CacheStorage ({len(state.storage.cache_storage)} caches, {len(state.storage.cache_entries)} entries)"
        )
    if state.network.service_workers:
        missing.append(f"service workers ({len(state.network.service_workers)})")
    if state.auth.HasField("credentials"):
        missing.append("credentials")
    header_tokens = [t.source for t in state.auth.tokens if not t.source.startswith(("cookie", "localStorage", "indexedDB"))]
    if header_tokens:
        missing.append(f"auth tokens from {', '.join(header_tokens)}")
    if state.recording.events:
        missing.append(f"recording ({len(state.recording.events)} events)")
    if state.extensions:
        missing.append(f"extensions: {', '.join(state.extensions)}")
    return {"cookies": cookies, "origins": list(origins.values())}, missing


def is_storage_state(data: Any) -> bool:
    """True when ``data`` (parsed JSON) looks like a Playwright storageState."""
    return isinstance(data, dict) and "version" not in data and set(data) >= {"cookies", "origins"} and set(data) <= {
        "cookies", "origins"
    }


def _key_path_message(entry: dict[str, Any], into: KeyPath) -> str | list[str] | None:
    if entry.get("keyPathArray") is not None:
        into.paths.paths.extend(entry["keyPathArray"])
        return list(entry["keyPathArray"])
    if entry.get("keyPath") is not None:
        into.path = entry["keyPath"]
        return entry["keyPath"]
    return None


def _expiry(value: Any, name: Any) -> float:
    """A cookie's ``expires`` (seconds since the epoch), checked: a finite number from 0 to :data:`LAST_EXPIRY`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= LAST_EXPIRY:
        raise SnapshotError(f"cookie {str(name)[:64]!r}: expires is not a time (a number of seconds from 0 to {LAST_EXPIRY:.0f})")
    return float(value)


def from_storage_state(data: dict[str, Any]) -> BrowserSessionState:
    """A state holding the cookies, localStorage and IndexedDB of a Playwright storageState.

    What cannot be read (OPFS, records whose encoding is unknown) is listed in
    ``report.uncovered``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("cookies", []), list) or not isinstance(data.get("origins", []), list):
        raise SnapshotError("not a Playwright storageState (cookies and origins lists)")
    state = BrowserSessionState(version=PROTOCOL_VERSION, timestamp=int(time.time() * 1000))
    state.source.browser = "playwright storageState"
    report = state.report
    try:
        for raw in data.get("cookies", []):
            cookie = state.storage.cookies.add(
                name=raw["name"], value=raw["value"], domain=raw.get("domain", ""), path=raw.get("path", "/"),
                http_only=bool(raw.get("httpOnly")), secure=bool(raw.get("secure")),
                same_site=_SAME_SITE_BACK.get(raw.get("sameSite"), Cookie.SAME_SITE_UNSPECIFIED), source_port=-1,
            )
            expires = raw.get("expires", -1)
            if expires is not None and expires != -1:
                cookie.expires = _expiry(expires, raw["name"])
            if raw.get("partitionKey"):
                cookie.partitioned = True
                cookie.partition_key.top_level_site = raw["partitionKey"]
                cookie.partition_key.has_cross_site_ancestor = bool(raw.get("_crHasCrossSiteAncestor", True))
        store_id = 0
        for origin_state in data.get("origins", []):
            origin = origin_state["origin"]
            report.origins_covered.append(origin)
            storage = OriginStorage(origin=origin)
            for item in origin_state.get("localStorage", []):
                added = storage.items.add()
                domstring(item["name"], added.key)
                domstring(item["value"], added.value)
            state.storage.local_storage.append(storage)
            if origin_state.get("opfs"):
                report.uncovered.add(what=f"OPFS {origin}", reason="psp_cdp does not keep the origin private file system")
            for db in origin_state.get("indexedDB", []) or []:
                database = IndexedDBDatabase(origin=origin, version=int(db.get("version", 1)))
                domstring(db["name"], database.name)
                for raw_store in db.get("stores", []):
                    store_id += 1
                    store = database.stores.add(id=store_id, auto_increment=bool(raw_store.get("autoIncrement")))
                    domstring(raw_store["name"], store.name)
                    key_path = _key_path_message(raw_store, store.key_path)
                    for raw_index in raw_store.get("indexes", []):
                        index = store.indexes.add(unique=bool(raw_index.get("unique")), multi_entry=bool(raw_index.get("multiEntry")))
                        domstring(raw_index["name"], index.name)
                        _key_path_message(raw_index, index.key_path)
                    where = f"IndexedDB record {origin} {db['name']}/{raw_store['name']}"
                    for position, raw in enumerate(raw_store.get("records", [])):
                        try:
                            value = _import_value(raw, "value", "valueEncoded")
                            key = _import_value(raw, "key", "keyEncoded")
                            if value is None:
                                raise _Unsupported("no value")
                            if key is None:
                                if key_path is None:
                                    raise _Unsupported("no key for a store without a key path")
                                found = _key_from_value(raw["value"], key_path) if "value" in raw else None
                                clone = _Clone()
                                key = clone.serialized(["u"] if found is None else clone.plain(found))
                        except (_Unsupported, KeyError, TypeError, ValueError) as exc:
                            report.uncovered.add(what=f"{where} #{position + 1}", reason=str(exc))
                            continue
                        state.storage.indexed_db_records.add(store=store_id, key=key, value=value)
                        store.record_count += 1
                state.storage.indexed_db.append(database)
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        # The message of a protobuf or a parser error may quote the input: its kind alone is said.
        raise SnapshotError(f"not a Playwright storageState ({type(exc).__name__} in its content)") from None
    if state.storage.local_storage:
        state.origin = state.storage.local_storage[0].origin
    report.components.extend(["cookies", "local_storage", "indexed_db"])
    return state
