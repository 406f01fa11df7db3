"""Change tracking for ``psp watch`` (:mod:`psp_cdp.state.watch`) against the shared Chromium.

Each test works in its own fresh context (``context``), starts a tracker on it, makes
one kind of change in a page and checks the next batch names exactly the component(s)
it should. Waits are generous upper bounds for "arrives at all"; the only other timing
is "nothing more arrives within a while", for changes that must not be reported.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest
import trio

from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.errors import BrowserClosedError
from psp_cdp.state import capture_state
from psp_cdp.state.watch import ADOPT_GRACE, COMPONENTS, ChangeTracker, track_changes

from .conftest import CHROMIUM_ARGS
from .helpers import BrowserContext, browser_context, evaluate, frame_sessions, frames_url, navigate, wait_until
from .site import Site

#: Seconds within which a batch must arrive at all.
ARRIVES = 5.0
#: Fast settings for the tests: batches come 0.1 s after the last change.
FAST: dict[str, Any] = {"debounce": 0.1, "max_delay": 2.0, "cookie_interval": 0.2}

IDB_PUT = """new Promise((resolve, reject) => {
  const open = indexedDB.open("watched", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("store");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const tx = open.result.transaction("store", "readwrite");
    tx.objectStore("store").put({n: %s}, "key");
    tx.oncomplete = () => { open.result.close(); resolve(true); };
    tx.onerror = () => reject(tx.error);
  };
})"""
CACHE_PUT = "caches.open('watched').then((c) => c.put('/cached', new Response('body'))).then(() => true)"
IDB_PUT_FN = "function () { return " + (IDB_PUT % 1) + "; }"


async def next_batch(tracker: ChangeTracker, timeout: float = ARRIVES) -> set[str]:
    with trio.fail_after(timeout):
        batch = await tracker.changes()
    assert batch <= COMPONENTS
    return batch


async def no_batch(tracker: ChangeTracker, seconds: float) -> None:
    with trio.move_on_after(seconds):
        batch = await tracker.changes()
        pytest.fail(f"unexpected batch {batch}")


async def drain(tracker: ChangeTracker, seconds: float, allowed: set[str]) -> None:
    """Take the batches that come within ``seconds``; each may only name ``allowed`` components."""
    with trio.move_on_after(seconds):
        while True:
            assert await tracker.changes() <= allowed


async def user_evaluate(session: CdpSession, expression: str) -> Any:
    """Evaluate as if the user had clicked (so that ``window.open`` is allowed)."""
    result = await session.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True, "userGesture": True}
    )
    assert "exceptionDetails" not in result, result["exceptionDetails"]
    return result.get("result", {}).get("value")


async def page_targets(connection: CdpConnection, context_id: str) -> list[dict[str, Any]]:
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    return [t for t in targets if t["type"] == "page" and t.get("browserContextId") == context_id]


async def other_target(connection: CdpConnection, context_id: str, known: set[str]) -> dict[str, Any]:
    """The one page target of the context not in ``known``, once it has loaded a URL."""
    found: list[dict[str, Any]] = []

    async def present() -> bool:
        found[:] = [t for t in await page_targets(connection, context_id) if t["targetId"] not in known]
        return bool(found) and found[0]["url"] != "about:blank"

    await wait_until(present, timeout=ARRIVES)
    return found[0]


@asynccontextmanager
async def watched_page(
    site: Site, context: BrowserContext, path: str = "/page", **settings: Any
) -> AsyncIterator[tuple[CdpSession, ChangeTracker]]:
    """A page of ``context`` at ``path`` on 127.0.0.1, with a live tracker on the context."""
    page = await context.new_page(site.url("127.0.0.1", path))
    async with track_changes(context.connection, context=context.id, **{**FAST, **settings}) as tracker:
        assert tracker.live
        yield page, tracker


# -- one test per source -----------------------------------------------------------------------


async def test_local_storage(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, "localStorage.setItem('k', 'v')")
        assert await next_batch(tracker) == {"local_storage"}
        await evaluate(page, "localStorage.removeItem('k')")
        assert await next_batch(tracker) == {"local_storage"}


async def test_session_storage(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, "sessionStorage.setItem('k', 'v')")
        assert await next_batch(tracker) == {"session_storage"}
        await evaluate(page, "sessionStorage.clear()")
        assert await next_batch(tracker) == {"session_storage"}


async def test_indexed_db(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, IDB_PUT % 1, await_promise=True)
        assert await next_batch(tracker) == {"indexed_db"}
        await evaluate(page, IDB_PUT % 2, await_promise=True)  # a put into an existing database
        assert await next_batch(tracker) == {"indexed_db"}
        delete = "new Promise((resolve) => { indexedDB.deleteDatabase('watched').onsuccess = () => resolve(true); })"
        await evaluate(page, delete, await_promise=True)
        assert await next_batch(tracker) == {"indexed_db"}


async def test_cache_storage(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, CACHE_PUT, await_promise=True)
        assert await next_batch(tracker) == {"cache_storage"}


async def test_document_cookie_is_found_by_the_poll(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, "document.cookie = 'written=1; path=/'")
        assert await next_batch(tracker) == {"cookies"}


async def test_a_response_that_sets_a_cookie_is_reported_without_waiting_for_the_poll(
    site: Site, context: BrowserContext
) -> None:
    async with watched_page(site, context, cookie_interval=600) as (page, tracker):
        url = "/set-cookie?c=" + quote("fetched=1; Path=/", safe="")
        assert await evaluate(page, f"fetch({json.dumps(url)}).then((r) => r.status)", await_promise=True) == 200
        assert await next_batch(tracker) == {"cookies"}
        assert any(c["name"] == "fetched" for c in await context.cookies())


async def test_tabs_opened_navigated_and_closed(site: Site, context: BrowserContext) -> None:
    connection = context.connection
    async with watched_page(site, context) as (page, tracker):
        await navigate(page, site.url("127.0.0.1", "/page?title=second"))
        assert await next_batch(tracker) == {"tabs"}
        await evaluate(page, "history.pushState({step: 1}, '', '/pushed'); true")
        assert await next_batch(tracker) == {"tabs"}

        await user_evaluate(page, "window.open('/page?title=popup') !== null")
        popup_info = await other_target(connection, context.id, {page.target_id or ""})
        assert await next_batch(tracker) == {"tabs"}
        # The new tab is tracked like the first one.
        popup = await connection.attach(popup_info["targetId"])
        try:
            await wait_until(lambda: evaluate(popup, "document.readyState === 'complete'"), timeout=ARRIVES)
            await drain(tracker, 0.3, {"tabs"})  # a late navigation of the popup, if any
            await evaluate(popup, "localStorage.setItem('popup', '1')")
            assert await next_batch(tracker) == {"local_storage"}
        finally:
            await popup.detach()
        await connection.send("Target.closeTarget", {"targetId": popup_info["targetId"]})
        assert await next_batch(tracker) == {"tabs"}


async def test_out_of_process_iframes_are_tracked(site: Site, context: BrowserContext) -> None:
    connection = context.connection
    first = site.url("127.0.0.2", "/page?title=child")
    second = site.url("localhost", "/page?title=child")

    async def write_in_frame(url: str, declaration: str) -> None:
        async with frame_sessions(connection, page.target_id or "") as frames:
            frame = next(f for f in frames if f.url == url)
            assert frame.session is not frames[0].session, "the iframe should run out of process"
            assert await frame.call(declaration) is not False

    async with watched_page(site, context, "/frames?src=" + quote(first, safe="")) as (page, tracker):
        # An iframe that was there at the start.
        await write_in_frame(first, "function () { localStorage.setItem('inner', '1'); }")
        assert await next_batch(tracker) == {"local_storage"}
        # One that appears later: auto-attached, its (partitioned) storage key tracked.
        await navigate(page, frames_url(site, "127.0.0.1", second))
        assert await next_batch(tracker) == {"tabs"}
        await write_in_frame(second, "function () { sessionStorage.setItem('inner', '1'); }")
        assert await next_batch(tracker) == {"session_storage"}
        await write_in_frame(second, IDB_PUT_FN)
        assert await next_batch(tracker) == {"indexed_db"}


async def test_service_worker_registered_and_unregistered(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context) as (page, tracker):
        await evaluate(page, "navigator.serviceWorker.register('/sw.js').then(() => true)", await_promise=True)
        assert await next_batch(tracker) == {"service_workers"}
        await evaluate(page, "navigator.serviceWorker.ready.then(() => true)", await_promise=True)
        await drain(tracker, 0.5, {"service_workers"})  # the rest of the worker's lifecycle
        # A tracker started on a context that has a worker already does not report it.
        async with track_changes(context.connection, context=context.id, **FAST) as second:
            await no_batch(second, 0.4)
        unregister = "navigator.serviceWorker.getRegistrations().then((rs) => Promise.all(rs.map((r) => r.unregister())))"
        await evaluate(page, unregister + ".then(() => true)", await_promise=True)
        assert await next_batch(tracker) == {"service_workers"}


# -- batching ---------------------------------------------------------------------------------


async def test_writes_in_quick_succession_make_one_batch(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context, debounce=0.3, max_delay=5.0) as (page, tracker):
        for n in range(5):
            await evaluate(page, f"localStorage.setItem('k{n}', '{n}')")
        assert await next_batch(tracker) == {"local_storage"}
        await no_batch(tracker, 0.6)


async def test_a_page_that_never_stops_writing_still_gets_batches(site: Site, context: BrowserContext) -> None:
    # Writes every 100 ms; with a 10 s debounce, only max_delay can end the batch within 4 s.
    async with watched_page(site, context, debounce=10.0, max_delay=0.6) as (page, tracker):
        await evaluate(page, "window.writer = setInterval(() => localStorage.setItem('t', String(Date.now())), 100)")
        try:
            assert await next_batch(tracker, timeout=4.0) == {"local_storage"}
        finally:
            await evaluate(page, "clearInterval(window.writer)")


async def test_a_flood_of_writes_is_one_batch_and_iframes_still_load(site: Site, context: BrowserContext) -> None:
    child = site.url("127.0.0.2", "/page?title=child")
    flood = (
        "for (let i = 0; i < 3000; i++) localStorage.setItem('k' + (i % 50), String(i));"
        "new Promise((resolve) => { const f = document.createElement('iframe'); f.onload = () => resolve(true);"
        f"f.src = {json.dumps(child)}; document.body.append(f); }})"
    )
    async with watched_page(site, context, debounce=0.3) as (page, tracker):
        with trio.fail_after(ARRIVES):
            assert await evaluate(page, flood, await_promise=True)
        assert await next_batch(tracker) == {"local_storage"}


async def test_several_components_in_one_batch(site: Site, context: BrowserContext) -> None:
    async with watched_page(site, context, debounce=0.4) as (page, tracker):
        await evaluate(page, "localStorage.setItem('a', '1'); sessionStorage.setItem('b', '2'); document.cookie = 'c=3'")
        await evaluate(page, CACHE_PUT, await_promise=True)
        assert await next_batch(tracker) == {"local_storage", "session_storage", "cookies", "cache_storage"}


# -- isolation, the caller's own tabs, clean stop ------------------------------------------------------


async def test_another_context_does_not_trigger_anything(site: Site, context: BrowserContext) -> None:
    connection = context.connection
    async with watched_page(site, context, cookie_interval=0.1) as (page, tracker):
        async with browser_context(connection) as other:
            stranger = await other.new_page(site.url("127.0.0.1", "/page"))  # the same origin, another context
            await evaluate(stranger, "localStorage.setItem('a', '1'); sessionStorage.setItem('b', '2')")
            await evaluate(stranger, "document.cookie = 'c=3; path=/'")
            await evaluate(stranger, "fetch('/set-cookie?c=d%3D4').then((r) => r.status)", await_promise=True)
            await evaluate(stranger, IDB_PUT % 1, await_promise=True)
            await evaluate(stranger, CACHE_PUT, await_promise=True)
            await evaluate(stranger, "navigator.serviceWorker.register('/sw.js').then(() => true)", await_promise=True)
            await user_evaluate(stranger, "window.open('/page?title=popup') !== null")
            await navigate(stranger, site.url("127.0.0.1", "/page?title=moved"))
            await no_batch(tracker, 0.6)
        # The tracker is alive all the same.
        await evaluate(page, "localStorage.setItem('mine', '1')")
        assert await next_batch(tracker) == {"local_storage"}


async def test_the_callers_own_tabs_are_ignored(site: Site, context: BrowserContext) -> None:
    connection = context.connection
    async with watched_page(site, context) as (page, tracker):
        # No IndexedDB database: the capture's first look creates the storage bucket, which
        # Chromium reports as a list update, and which must not count as a change.
        await evaluate(page, "localStorage.setItem('a', '1'); sessionStorage.setItem('b', '2'); document.cookie = 'c=3'")
        await evaluate(page, CACHE_PUT, await_promise=True)
        seen: set[str] = set()
        while seen != {"local_storage", "session_storage", "cookies", "cache_storage"}:
            seen |= await next_batch(tracker)  # the cookie poll may come after the rest
        assert tracker.context is not None
        async with tracker.ignoring_new_tabs():
            # What a capture does: stub pages of origins with no open page, reading every component.
            async with tracker.context.stub_page() as stub:
                await stub.navigate(site.url("127.0.0.2", "/"))
                await trio.sleep(0.2)  # as long as a capture reads: the tracker would have attached by now
            state = await capture_state(connection, context=context.id)
            assert state.storage.cookies
        await no_batch(tracker, ADOPT_GRACE + 0.3)

        # A tab opened during the block and still open after it is the user's after all.
        async with tracker.ignoring_new_tabs():
            created = await connection.send("Target.createTarget", {"url": "about:blank", "browserContextId": context.id})
        kept = created["targetId"]
        assert await next_batch(tracker) == {"tabs"}
        session = await connection.attach(kept)
        try:
            await session.send("Page.enable")
            await navigate(session, site.url("127.0.0.1", "/page?title=kept"))
            assert await next_batch(tracker) == {"tabs"}
            await evaluate(session, "localStorage.setItem('kept', '1')")
            assert await next_batch(tracker) == {"local_storage"}
        finally:
            await session.detach()


async def test_cancelling_leaves_the_pages_working_and_nothing_attached(site: Site, context: BrowserContext) -> None:
    connection = context.connection
    child = site.url("127.0.0.2", "/page?title=child")
    page = await context.new_page(frames_url(site, "127.0.0.1", child))
    sessions_before = set(connection._sessions)
    async with trio.open_nursery() as nursery:
        tracker = ChangeTracker(connection, context=context.id, **FAST)
        await nursery.start(tracker.run)
        await user_evaluate(page, "window.open('/page?title=popup') !== null")
        await other_target(connection, context.id, {page.target_id or ""})
        assert "tabs" in await next_batch(tracker)
        nursery.cancel_scope.cancel()
    assert not tracker.live
    with pytest.raises(trio.EndOfChannel):
        await tracker.changes()
    assert set(connection._sessions) <= sessions_before, "the tracker left sessions attached"
    for target in await page_targets(connection, context.id):
        assert target["attached"] == (target["targetId"] == page.target_id), target
    # Pages work as before: scripts run, a new out-of-process iframe loads (nothing waits for a debugger).
    assert await evaluate(page, "localStorage.setItem('after', '1'); 1 + 1") == 2
    await navigate(page, frames_url(site, "127.0.0.1", site.url("127.0.0.2", "/page?title=again")))
    assert await evaluate(page, "document.getElementById('child').contentWindow !== null")


async def _throwaway_browser() -> LaunchedBrowser:
    return await trio.to_thread.run_sync(functools.partial(launch_chromium, args=CHROMIUM_ARGS))


@pytest.mark.time_limit(30)
async def test_a_dead_browser_ends_the_tracker_with_browser_closed_error(site: Site) -> None:
    browser = await _throwaway_browser()
    try:
        async with open_cdp(browser.endpoint) as connection:
            targets = (await connection.send("Target.getTargets"))["targetInfos"]
            assert any(t["type"] == "page" for t in targets)  # the browser's first tab is tracked
            with trio.fail_after(10), pytest.raises(BrowserClosedError):
                async with track_changes(connection, **FAST) as tracker:  # the default context
                    await trio.to_thread.run_sync(browser.kill)
                    await trio.sleep_forever()
            with pytest.raises(BrowserClosedError):
                await tracker.changes()
    finally:
        await trio.to_thread.run_sync(browser.close)


async def test_a_disposed_context_ends_the_tracker_with_browser_closed_error(site: Site, cdp: CdpConnection) -> None:
    async with browser_context(cdp) as doomed:
        await doomed.new_page(site.url("127.0.0.1", "/page"))
        with trio.fail_after(ARRIVES), pytest.raises(BrowserClosedError, match="was closed"):
            async with track_changes(cdp, context=doomed.id, **FAST):
                await cdp.send("Target.disposeBrowserContext", {"browserContextId": doomed.id})
                await trio.sleep_forever()
