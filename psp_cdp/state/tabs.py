"""Tabs: URL, title, back/forward entries, current index, history.state and scroll.

Restore rebuilds each tab's history without loading earlier entries live: every
entry is walked through a stub document (with the entry's title), the tab's
sessionStorage is written on the first stub of each origin, ``history.state`` is put
on the current entry, and only then is the current entry reloaded from the network,
so its scripts run with their sessionStorage and history.state in place. An earlier
entry that cannot be opened in the target context (a browser page such as
``chrome://new-tab-page-third-party/``, which a new context refuses) is left out with a
note; an empty tab's start page is left out silently.

Partitioned sessionStorage (of a third-party iframe) is written through a stub iframe
of its origin in the first stub entry of its top-level site, or, when no entry is of
that site, in an extra stub document of that site that the next entry replaces.
"""

from __future__ import annotations

import trio

from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, OriginStorage, SerializedValue, Tab, domstring, storage_dict, text
from .pages import StorageKey, StubPage, gather_limited, origin_of
from .registry import CaptureContext, Component, RestoreContext
from .scripts import CLONE, CLONE_ENCODING
from .origins import STUB_CONCURRENCY
from .storage import storage_key_of, write_storage

__all__ = ["Tabs"]

_PAGE_STATE = (
    """async function () {
  let state = null, error = null;
  try { state = history.state === null ? null : await """ + CLONE + """.encode(history.state); }
  catch (e) { error = String(e); }
  return {state, error, x: window.scrollX, y: window.scrollY, visible: document.visibilityState === "visible"};
}"""
)

_SET_STATE = {
    CLONE_ENCODING: f"async function (text) {{ history.replaceState(await {CLONE}.decode(text), ''); }}",
    "json": "function (text) { history.replaceState(JSON.parse(text), ''); }",
}
_SCROLL = "function (x, y) { window.scrollTo(x, y); return [window.scrollX, window.scrollY]; }"


#: What an empty tab shows (chromedriver opens its first window on ``data:,``; a tab still starting has no
#: URL yet); restore loads into these first.
EMPTY_TAB_URLS = (
    "", "about:blank", "chrome://newtab/", "chrome://new-tab-page/", "chrome://new-tab-page-third-party/", "data:,"
)


class Tabs(Component):
    name = "tabs"
    uses_tabs = True
    order = 50
    description = "tabs with their back/forward entries, history.state and scroll position"

    async def capture(self, ctx: CaptureContext) -> None:
        active_set = False
        for tab, tab_state in zip(ctx.tabs, ctx.state.history.tabs):
            navigation = await tab.navigation()
            entries = navigation.get("entries", [])
            current = int(navigation.get("currentIndex", len(entries) - 1))
            nav = tab_state.navigation
            nav.current_index = current
            for raw in entries:
                entry = nav.entries.add(
                    url=raw.get("url", ""),
                    transition_type=raw.get("transitionType", ""),
                    user_typed_url=raw.get("userTypedURL", ""),
                )
                domstring(raw.get("title", ""), entry.title)
            if 0 <= current < len(entries):
                nav.current_url = entries[current].get("url", "")
                page = await tab.frames[0].call(_PAGE_STATE) if tab.frames else None
                if page:
                    entry = nav.entries[current]
                    entry.scroll_position.x = page["x"]
                    entry.scroll_position.y = page["y"]
                    if page["error"]:
                        ctx.uncovered(f"history.state of {nav.current_url}", page["error"])
                    elif page["state"] is not None:
                        entry.state.CopyFrom(SerializedValue(encoding=CLONE_ENCODING, data=page["state"].encode("utf-8")))
                    if page["visible"] and not active_set:
                        tab_state.active = active_set = True
        active = next((t for t in ctx.state.history.tabs if t.active), None)
        if active and active.navigation.current_url:
            ctx.state.origin = origin_of(active.navigation.current_url) or ""

    async def restore(self, ctx: RestoreContext) -> None:
        indexed = [(i, t) for i, t in enumerate(ctx.state.history.tabs) if t.navigation.entries]
        tabs = [t for _, t in indexed]
        if not tabs:
            return
        reusable = [
            info["targetId"]
            for info in await ctx.context.page_targets()
            if info.get("url") in EMPTY_TAB_URLS
        ]
        targets = []
        for index, _ in indexed:
            targets.append(reusable.pop(0) if reusable else await ctx.context.new_tab())
            ctx.report.tabs[index] = targets[-1]
        with_session_storage = "session_storage" in ctx.selected
        await gather_limited(
            [lambda t=t, i=i: self._restore_tab(ctx, t, i, with_session_storage) for t, i in zip(tabs, targets)],
            STUB_CONCURRENCY,
        )
        active = next((i for t, i in zip(tabs, targets) if t.active), None)
        if active:
            try:
                await ctx.connection.send("Target.activateTarget", {"targetId": active})
            except ProtocolError:
                pass

    async def _restore_tab(self, ctx: RestoreContext, tab: Tab, target_id: str, with_session_storage: bool) -> None:
        nav = tab.navigation
        entries = list(nav.entries)
        current = min(max(nav.current_index, 0), len(entries) - 1)
        session_storage: dict[str, OriginStorage] = {}
        partitioned: dict[StorageKey, OriginStorage] = {}
        if with_session_storage:
            for storage in tab.session_storage:
                if not storage.storage_key:
                    session_storage[storage.origin] = storage
                    continue
                try:
                    key = storage_key_of(storage)
                except StateError as exc:
                    ctx.report.not_restored(f"partitioned sessionStorage in tab {nav.current_url} was not restored: {exc}")
                    continue
                if key.recreatable:
                    partitioned[key] = storage
                else:
                    ctx.report.not_restored(
                        f"partitioned sessionStorage of {key} in tab {nav.current_url} was not restored: "
                        "its storage key holds a nonce or an opaque site, which cannot be made again"
                    )
        try:
            async with ctx.context.stub_page(target_id=target_id) as stub:
                for entry in entries:
                    stub.titles[entry.url] = text(entry.title)
                entry_origins = {origin_of(e.url) for e in entries}
                replace = False
                # Origins whose sessionStorage this tab holds but none of its entries shows.
                for origin in [o for o in session_storage if o not in entry_origins]:
                    await stub.navigate(origin + "/", replace=replace, timeout=ctx.timeout)
                    replace = True
                    await self._fill_session_storage(ctx, stub, session_storage.pop(origin))
                # Partitioned storage whose top-level site none of the entries is of.
                homeless = [k for k in partitioned if not any(k.fits_top_level(e.url) for e in entries)]
                for top_level_url in dict.fromkeys(k.top_level_url() for k in homeless):
                    await stub.navigate(top_level_url, replace=replace, timeout=ctx.timeout)
                    replace = True
                    for key in [k for k in homeless if k.top_level_url() == top_level_url]:
                        await self._fill_partitioned(ctx, stub, key, partitioned.pop(key), nav.current_url)
                kept: list[int] = []  # the entries the rebuilt history holds, by index into `entries`
                for index, entry in enumerate(entries):
                    if index != current and entry.url in EMPTY_TAB_URLS:
                        continue  # an empty tab's start page: nothing to go back to
                    try:
                        await stub.navigate(entry.url, replace=replace, timeout=ctx.timeout)
                    except StateError as exc:
                        if index == current:
                            raise
                        ctx.report.note(f"history entry {entry.url} of tab {nav.current_url} was left out: {exc}")
                        continue
                    kept.append(index)
                    replace = False
                    origin = origin_of(entry.url)
                    if origin in session_storage:
                        await self._fill_session_storage(ctx, stub, session_storage.pop(origin))
                    for key in [k for k in partitioned if k.fits_top_level(entry.url)]:
                        await self._fill_partitioned(ctx, stub, key, partitioned.pop(key), nav.current_url)
                    if index == current and entry.state.encoding in _SET_STATE and entry.state.data:
                        await stub.call(_SET_STATE[entry.state.encoding], entry.state.data.decode("utf-8", "surrogatepass"))
                    elif index == current and entry.state.data:
                        ctx.report.not_restored(f"history.state of {entry.url}: unknown encoding {entry.state.encoding!r}")
                if kept[-1] != current:
                    await stub.go_to_entry(kept.index(current), timeout=ctx.timeout)
                url = entries[current].url
                if origin_of(url):
                    if not await stub.reload_live(timeout=ctx.timeout, network=ctx.network):
                        ctx.report.note(f"tab {url} did not finish loading within {ctx.timeout:g}s")
                scroll = entries[current].scroll_position
                if scroll.x or scroll.y:
                    await stub.call(_SCROLL, scroll.x, scroll.y)
        except (StateError, ProtocolError, trio.TooSlowError) as exc:
            ctx.report.not_restored(f"tab {nav.current_url}: {exc or 'timed out'}")
            return
        except BrowserClosedError as exc:
            raise StateError(f"tab {nav.current_url}: {exc}") from None
        ctx.report.count(self.name)
        ctx.memo.setdefault("restored_tabs", []).append((tab, target_id))
        for leftover in session_storage.values():
            ctx.report.not_restored(f"sessionStorage of {leftover.origin} in tab {nav.current_url} was not restored")

    async def _fill_session_storage(self, ctx: RestoreContext, stub: StubPage, storage: OriginStorage) -> None:
        written = await write_storage(stub, "sessionStorage", storage_dict(storage))
        ctx.report.count("session_storage", written)

    async def _fill_partitioned(
        self, ctx: RestoreContext, stub: StubPage, key: StorageKey, storage: OriginStorage, tab_url: str
    ) -> None:
        """Write partitioned sessionStorage through a stub iframe of the current stub document."""
        try:
            frame = await stub.storage_frame(key, timeout=ctx.timeout)
            written = await write_storage(frame, "sessionStorage", storage_dict(storage))
        except (StateError, ProtocolError) as exc:
            ctx.report.not_restored(f"partitioned sessionStorage of {key} in tab {tab_url} was not restored: {exc}")
            return
        ctx.report.count("session_storage", written)

    def count(self, state: BrowserSessionState) -> int:
        return sum(1 for t in state.history.tabs if t.navigation.entries)

