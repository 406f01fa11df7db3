"""localStorage and sessionStorage.

Both are read and written inside the page, in an isolated world. Items leave the page
as ``JSON.stringify`` text, which escapes unpaired surrogates, and enter it as protocol
arguments, which carry them exactly, so every DOMString crosses the protocol exactly.

localStorage is read for every origin psp_cdp knows of: the frames of every tab
(iframes included), the origins the context's cookies and the tabs' history entries
point to, and any origin the caller adds. Origins with no open frame are read
through stub pages. The report lists every origin read, and every partitioned
storage key (a third-party iframe's storage, kept apart under its top-level site).

Restore writes each storage key in a stub page: a first-party one in a stub document
of its origin, a partitioned one in a stub iframe of its origin inside a stub document
of its top-level site (:meth:`StubPage.storage_frame`), so it lands in the same
partition it was read from.

sessionStorage belongs to a tab and is restored with it (see :mod:`.tabs`).
"""

from __future__ import annotations

import json

import trio

from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, OriginStorage, storage_dict, storage_items
from .origins import STUB_CONCURRENCY, first_party_key, known_origins, with_stub_pages
from .pages import Frame, StorageKey, StubPage, gather_limited, origin_of, parse_storage_key
from .registry import CaptureContext, Component, RestoreContext

__all__ = ["LocalStorage", "SessionStorage", "read_storage", "write_storage", "first_party_key", "storage_key_of"]

_READ = """function (kind) {
  const s = window[kind];
  const out = [];
  for (let i = 0; i < s.length; i++) { const k = s.key(i); out.push(k, s.getItem(k)); }
  return JSON.stringify(out);
}"""

_WRITE = """function (kind, d) {
  const s = window[kind];
  s.clear();
  for (let i = 0; i < d.length; i += 2) s.setItem(d[i], d[i + 1]);
  return s.length;
}"""

#: How many times a localStorage write the browser did not keep whole is made again.
_WRITE_ATTEMPTS = 3


def storage_key_of(storage: OriginStorage) -> StorageKey:
    """The storage key ``storage`` was read under; :class:`StateError` if it is malformed."""
    key = parse_storage_key(storage.storage_key or first_party_key(storage.origin))
    if key.origin != storage.origin:
        raise StateError(f"storage key {key} is not of origin {storage.origin}")
    return key


async def read_storage(target: Frame | StubPage, kind: str) -> dict[str, str]:
    """The items of ``window[kind]`` ("localStorage" or "sessionStorage") in a frame or stub page."""
    flat = json.loads(await target.call(_READ, kind))
    return dict(zip(flat[::2], flat[1::2]))


async def _read_local(stub: StubPage, origin: str) -> dict[str, str]:
    return await read_storage(stub, "localStorage")


async def write_storage(target: Frame | StubPage, kind: str, items: dict[str, str]) -> int:
    """Replace ``window[kind]`` with ``items``; the number of items it then holds."""
    flat: list[str] = []
    for key, value in items.items():
        flat += (key, value)
    return int(await target.call(_WRITE, kind, flat))


def _fill(into: OriginStorage, origin: str, storage_key: str, items: dict[str, str]) -> None:
    into.origin = origin
    if storage_key and storage_key != first_party_key(origin):
        into.storage_key = storage_key
    storage_items(into, items)


async def _read_frames(ctx: CaptureContext, frames: list[Frame], kind: str) -> list[tuple[str, str, dict[str, str]]]:
    """``(origin, storage key, items)`` of ``window[kind]`` in each frame with an http(s) origin.

    A frame that cannot be read is reported; one that went away meanwhile is passed over.
    """
    found = []
    for frame in frames:
        origin = frame.origin
        if origin is None:
            continue
        try:
            key = await frame.storage_key() or first_party_key(origin)
            found.append((origin, key, await read_storage(frame, kind)))
        except (StateError, ProtocolError) as exc:
            ctx.uncovered(f"{kind} of {origin} (frame {frame.url})", str(exc))
        except BrowserClosedError:
            continue
    return found


class LocalStorage(Component):
    name = "local_storage"
    uses_tabs = True
    order = 20
    description = "localStorage of every origin that has any"

    async def capture(self, ctx: CaptureContext) -> None:
        covered: dict[str, dict[str, str]] = {}  # storage key -> items
        origins_of_keys: dict[str, str] = {}
        for tab in ctx.tabs:
            for origin, key, items in await _read_frames(ctx, tab.frames, "localStorage"):
                covered.setdefault(key, items)
                origins_of_keys[key] = origin
        first_party = {origins_of_keys[k] for k in covered if k == first_party_key(origins_of_keys[k])}
        probes = sorted((await known_origins(ctx)) - first_party)
        for origin, items in (await with_stub_pages(ctx, probes, _read_local, "localStorage")).items():
            covered[first_party_key(origin)] = items
            origins_of_keys[first_party_key(origin)] = origin
        for key in sorted(covered):
            origin = origins_of_keys[key]
            ctx.state.report.origins_covered.append(origin if key == first_party_key(origin) else key)
            if covered[key]:
                _fill(ctx.state.storage.local_storage.add(), origin, key, covered[key])

    async def restore(self, ctx: RestoreContext) -> None:
        async def write(origin_storage: OriginStorage) -> None:
            # A page's localStorage writes reach the browser's storage after its script has
            # returned; a stub page closed at once can take the last ones with it. So each
            # write is checked by a stub page opened after the writer closed, which reads
            # what the browser holds, and written again if anything is missing.
            items = storage_dict(origin_storage)
            what = origin_storage.storage_key or origin_storage.origin
            written: int | None = None
            try:
                key = storage_key_of(origin_storage)
                for _ in range(_WRITE_ATTEMPTS + 1):
                    async with ctx.context.stub_page() as stub:
                        await stub.navigate(key.top_level_url(), timeout=ctx.timeout)
                        frame = await stub.storage_frame(key, timeout=ctx.timeout)
                        if written is not None and await read_storage(frame, "localStorage") == items:
                            break
                        written = await write_storage(frame, "localStorage", items)
                else:
                    ctx.report.not_restored(f"localStorage of {what}: the browser did not confirm every item written")
            except (StateError, ProtocolError, trio.TooSlowError) as exc:
                ctx.report.not_restored(f"localStorage of {what} was not restored: {str(exc) or 'timed out'}")
                return
            ctx.report.count(self.name, written or 0)

        storages = list(ctx.state.storage.local_storage)
        await gather_limited([lambda s=s: write(s) for s in storages], STUB_CONCURRENCY)

    def count(self, state: BrowserSessionState) -> int:
        return sum(len(s.items) for s in state.storage.local_storage)


class SessionStorage(Component):
    name = "session_storage"
    uses_tabs = True
    order = 21
    description = "sessionStorage of every tab, per origin (restored with its tab)"

    async def capture(self, ctx: CaptureContext) -> None:
        for tab, tab_state in zip(ctx.tabs, ctx.state.history.tabs):
            seen: set[str] = set()
            for origin, key, items in await _read_frames(ctx, tab.frames, "sessionStorage"):
                if key in seen:
                    continue
                seen.add(key)
                if items:
                    _fill(tab_state.session_storage.add(), origin, key, items)
            loaded = {frame.origin for frame in tab.frames}
            for entry in await tab.history():
                origin = origin_of(entry.get("url", ""))
                if origin and origin not in loaded:
                    loaded.add(origin)
                    ctx.uncovered(
                        f"sessionStorage of {origin} in tab {tab.url}",
                        "the tab has navigated away from that origin; its sessionStorage is not readable without reloading it",
                    )

    async def restore(self, ctx: RestoreContext) -> None:
        if "tabs" not in ctx.selected and any(t.session_storage for t in ctx.state.history.tabs):
            ctx.report.note("sessionStorage is restored with its tabs; not restored because tabs were not selected")

    def count(self, state: BrowserSessionState) -> int:
        return sum(len(s.items) for t in state.history.tabs for s in t.session_storage)

