"""CacheStorage: every cache of every origin, each entry with its request, response and body.

Capture goes through the CDP ``CacheStorage`` domain, which answers only on a
session that has a frame of the storage key asked about: the tabs' open frames are
asked through their own session, and origins with no open frame whose storage
holds caches through a stub page. Entries are listed a page at a time and kept in
the cache's own order (``cache.keys()``, read in the page). The browser's tools
cannot read the body of an opaque response: such an entry is kept without it and
reported, and an entry whose body cannot be read at all is left out and reported.

Restore writes each origin on a stub page: it deletes the caches the origin holds,
then ``put``s every entry as a Request and a Response built in the page, in
batches. What ``put`` cannot recreate (opaque responses, 206 partial ones,
``Vary: *``, requests other than GET, headers the browser refuses to set) is
noted by name in the report.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from ..errors import ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, CacheEntry, CacheStorageCache, Header, domstring, text
from .origins import STUB_CONCURRENCY, first_party_key, read_storage_keys
from .pages import Frame, StubPage, gather_limited
from .registry import CaptureContext, Component, RestoreContext

__all__ = ["CacheStorage"]


#: Entries asked for per ``CacheStorage.requestEntries`` call.
PAGE_SIZE = 100
#: Base64 characters of bodies sent to the page per restore call (a larger body goes alone).
BATCH_CHARS = 4 * 1024 * 1024

#: Response types whose body the browser's tools cannot read and ``put`` cannot recreate.
_HIDDEN = {"opaqueResponse": "an opaque response", "opaqueRedirect": "an opaque redirect", "error": "a network error"}

_KEYS = """async function (name) {
  if (!(await caches.has(name))) return [];
  return (await (await caches.open(name)).keys()).map(request => request.url);
}"""

_CLEAR = """async function () {
  const names = await caches.keys();
  for (const name of names) await caches.delete(name);
  return names.length;
}"""

_PUT = """async function (name, entries) {
  const cache = await caches.open(name);
  const nullBodyStatus = [101, 103, 204, 205, 304];
  const decode = (b64) => Uint8Array.fromBase64
    ? Uint8Array.fromBase64(b64)
    : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  let stored = 0;
  const problems = [];
  for (const e of entries) {
    try {
      const request = new Request(e.url, {method: e.method, headers: e.requestHeaders});
      const body = e.body === "" && nullBodyStatus.includes(e.status) ? null : decode(e.body);
      const response = new Response(body, {status: e.status, statusText: e.statusText, headers: e.responseHeaders});
      const refused = [
        ...e.requestHeaders.filter(([name]) => !request.headers.has(name)),
        ...e.responseHeaders.filter(([name]) => !response.headers.has(name)),
      ].map(([name]) => name);
      await cache.put(request, response);
      stored++;
      if (refused.length) problems.push([e.url, "restored without header(s) the browser refuses to set: " + refused.join(", ")]);
    } catch (error) {
      problems.push([e.url, "not restored: " + String(error)]);
    }
  }
  return {stored, problems};
}"""


@dataclass
class _Cache:
    name: str
    entries: list[CacheEntry] = field(default_factory=list)


def _sendable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _entry(raw: dict[str, Any]) -> CacheEntry:
    return CacheEntry(
        request_url=raw["requestURL"],
        request_method=raw.get("requestMethod", ""),
        request_headers=[Header(name=h["name"], value=h["value"]) for h in raw.get("requestHeaders", [])],
        status=int(raw.get("responseStatus", 0)),
        status_text=raw.get("responseStatusText", ""),
        response_headers=[Header(name=h["name"], value=h["value"]) for h in raw.get("responseHeaders", [])],
        response_type=raw.get("responseType", ""),
        response_time=round(float(raw.get("responseTime", 0)) * 1000),
    )


async def _list_entries(session: Any, cache_id: str) -> list[dict[str, Any]]:
    """Every entry of a cache as ``CacheStorage.requestEntries`` describes it, a page at a time."""
    entries: dict[str, dict[str, Any]] = {}
    skip = 0
    while True:
        page = await session.send(
            "CacheStorage.requestEntries", {"cacheId": cache_id, "skipCount": skip, "pageSize": PAGE_SIZE}
        )
        batch = page.get("cacheDataEntries", [])
        for raw in batch:
            entries.setdefault(raw["requestURL"], raw)
        skip += len(batch)
        if not batch or skip >= int(page.get("returnCount", 0)):
            return list(entries.values())


async def _read_cache(ctx: CaptureContext, target: Frame | StubPage, cache_id: str, name: str, where: str) -> _Cache:
    listed = await _list_entries(target.session, cache_id)
    order = {url: i for i, url in enumerate(await target.call(_KEYS, name))}
    listed.sort(key=lambda raw: (order.get(raw["requestURL"], len(order)), raw.get("responseTime", 0)))
    cache = _Cache(name)
    for raw in listed:
        entry = _entry(raw)
        what = f"{where}: entry {entry.request_url}"
        hidden = _HIDDEN.get(entry.response_type)
        if hidden:
            ctx.uncovered(what, f"the body of {hidden} is hidden from the browser's tools; kept without its body")
        else:
            params = {"cacheId": cache_id, "requestURL": entry.request_url, "requestHeaders": raw.get("requestHeaders", [])}
            try:
                response = await target.session.send("CacheStorage.requestCachedResponse", params)
            except ProtocolError as exc:
                ctx.uncovered(what, f"its body cannot be read: {exc.browser_message}")
                continue
            entry.body = base64.b64decode(response.get("response", {}).get("body", ""))
        cache.entries.append(entry)
    return cache


async def _read_caches(ctx: CaptureContext, target: Frame | StubPage, origin: str, key: str) -> list[_Cache]:
    """Every cache of a storage key, through a frame or stub page that has it."""
    label = origin if key == first_party_key(origin) else key
    listed = await target.session.send("CacheStorage.requestCacheNames", {"storageKey": key})
    caches = []
    for info in listed.get("caches", []):
        name = info["cacheName"]
        where = f"CacheStorage cache {name!r} of {label}"
        if not _sendable(info["cacheId"]):
            ctx.uncovered(where, "its name holds an unpaired surrogate, which cannot be sent back to the browser yet")
            continue
        caches.append(await _read_cache(ctx, target, info["cacheId"], name, where))
    return caches


def _payload(entry: CacheEntry) -> dict[str, Any]:
    return {
        "url": entry.request_url,
        "method": entry.request_method or "GET",
        "requestHeaders": [[h.name, h.value] for h in entry.request_headers],
        "status": entry.status,
        "statusText": entry.status_text,
        "responseHeaders": [[h.name, h.value] for h in entry.response_headers],
        "body": base64.b64encode(entry.body).decode("ascii"),
    }


def _batches(payloads: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The payloads in groups of at most :data:`BATCH_CHARS` body characters (at least one each)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for payload in payloads:
        cost = len(payload["body"]) + 1024
        if batch and size + cost > BATCH_CHARS:
            yield batch
            batch, size = [], 0
        batch.append(payload)
        size += cost
    yield batch


class CacheStorage(Component):
    name = "cache_storage"
    uses_tabs = True
    order = 30
    description = "CacheStorage caches of every origin: each entry's request, response headers and body"

    async def capture(self, ctx: CaptureContext) -> None:
        async def read(target: Frame | StubPage, origin: str, key: str) -> list[_Cache]:
            return await _read_caches(ctx, target, origin, key)

        found = await read_storage_keys(ctx, "cache_storage", read, "CacheStorage")
        storage = ctx.state.storage
        next_id = max((c.id for c in storage.cache_storage), default=0) + 1
        for key in sorted(found):
            origin, caches = found[key]
            for cache in caches:
                message = storage.cache_storage.add(id=next_id, origin=origin, entry_count=len(cache.entries))
                if key != first_party_key(origin):
                    message.storage_key = key
                domstring(cache.name, message.name)
                for entry in cache.entries:
                    entry.cache = next_id
                    storage.cache_entries.append(entry)
                next_id += 1

    async def restore(self, ctx: RestoreContext) -> None:
        by_origin: dict[str, list[CacheStorageCache]] = {}
        for cache in ctx.state.storage.cache_storage:
            if cache.storage_key and cache.storage_key != first_party_key(cache.origin):
                ctx.report.not_restored(
                    f"CacheStorage cache {text(cache.name)!r} of {cache.storage_key} (partitioned) is not restored by this version"
                )
            else:
                by_origin.setdefault(cache.origin, []).append(cache)
        entries: dict[int, list[CacheEntry]] = {}
        for entry in ctx.state.storage.cache_entries:
            entries.setdefault(entry.cache, []).append(entry)

        async def write(origin: str, caches: list[CacheStorageCache]) -> None:
            try:
                async with ctx.context.stub_page() as stub:
                    await stub.navigate(origin + "/", timeout=ctx.timeout)
                    await stub.call(_CLEAR)
                    for cache in caches:
                        await self._write_cache(ctx, stub, origin, text(cache.name), entries.get(cache.id, []))
            except (StateError, ProtocolError, trio.TooSlowError) as exc:
                ctx.report.not_restored(f"CacheStorage of {origin}: {exc or 'timed out'}")

        await gather_limited([lambda o=o, c=c: write(o, c) for o, c in by_origin.items()], STUB_CONCURRENCY)

    async def _write_cache(
        self, ctx: RestoreContext, stub: StubPage, origin: str, name: str, entries: list[CacheEntry]
    ) -> None:
        where = f"CacheStorage cache {name!r} of {origin}"
        payloads = []
        for entry in entries:
            hidden = _HIDDEN.get(entry.response_type)
            if hidden:
                ctx.report.not_restored(f"{where}: entry {entry.request_url} not restored: {hidden} cannot be recreated")
            else:
                payloads.append(_payload(entry))
        for batch in _batches(payloads):
            result = await stub.call(_PUT, name, batch)
            ctx.report.count(self.name, int(result["stored"]))
            for url, problem in result["problems"]:
                ctx.report.not_restored(f"{where}: entry {url} {problem}")

    def count(self, state: BrowserSessionState) -> int:
        return len(state.storage.cache_entries)
