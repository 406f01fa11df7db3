"""Capturing a browser context into a state, and restoring a state into a context."""

from __future__ import annotations

import time
from collections.abc import Iterable

import stamina
import trio

from .. import __version__
from ..cdp import CdpConnection, leaf_errors
from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import PROTOCOL_VERSION, BrowserSessionState, StorageState, text
from .cookies import cookie_origins, read_cookies
from .pages import Answerer, BrowserContext
from .registry import CaptureContext, RestoreContext, RestoreReport, check_options, components, select

__all__ = ["CAPTURE_ATTEMPTS", "capture_state", "navigated", "restore_state", "stable_order"]


#: Messages of errors a navigation under way causes (the page's scripts' context went with it): tried again.
_NAVIGATED = ("Cannot find context with specified id", "Execution context was destroyed",
              "Inspected target navigated or closed", "Not attached to an active page")
#: Captures made at most when navigations keep getting in the way, and the seconds they may take in all.
CAPTURE_ATTEMPTS = 4
_RETRY_SECONDS = 60.0


def navigated(error: BaseException) -> bool:
    """Whether ``error`` is one a page navigating meanwhile causes (another try will likely succeed)."""
    leaves = leaf_errors(error)
    return bool(leaves) and all(
        isinstance(e, (ProtocolError, StateError)) and any(m in str(e) for m in _NAVIGATED) for e in leaves
    )


async def capture_state(
    connection: CdpConnection,
    *,
    context: str | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    origins: Iterable[str] = (),
    options: Iterable[str] = (),
) -> BrowserSessionState:
    """The state of one browser context (``None``: the default context).

    A capture that a page's navigation gets in the way of (its scripts' context is gone
    before the capture has read it) is made again, whole, up to :data:`CAPTURE_ATTEMPTS`
    times with a short, growing wait.
    """
    selected = select(only, skip)
    chosen = check_options(options)
    browser_context = await BrowserContext.resolve(connection, context)
    for attempt in stamina.retry_context(on=navigated, attempts=CAPTURE_ATTEMPTS, timeout=_RETRY_SECONDS,
                                         wait_initial=0.1, wait_max=1.0, wait_jitter=0.1):
        with attempt:
            return await _capture(connection, browser_context, selected, chosen, set(origins))
    raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover


async def _capture(connection: CdpConnection, browser_context: BrowserContext, selected: frozenset[str],
                   chosen: frozenset[str], origins: set[str]) -> BrowserSessionState:
    state = BrowserSessionState(version=PROTOCOL_VERSION, timestamp=int(time.time() * 1000))
    version = await connection.send("Browser.getVersion")
    state.source.browser = version.get("product", "")
    state.source.user_agent = version.get("userAgent", "")
    state.source.protocol_version = version.get("protocolVersion", "")
    state.source.browser_context_id = browser_context.id or ""
    state.source.psp_version = __version__
    ctx = CaptureContext(connection, browser_context, state, selected, extra_origins=origins, options=chosen)
    try:
        if any(c.uses_tabs for c in components() if c.name in selected):
            await _attach_tabs(ctx)
        for component in components():
            if component.name in selected:
                await component.capture(ctx)
                state.report.components.append(component.name)
    finally:
        with trio.CancelScope(shield=True):
            for tab in ctx.tabs:
                await tab.release()
    if not selected & {"tabs", "session_storage"}:
        del state.history.tabs[:]
    stable_order(state.storage)
    return state


def stable_order(storage: StorageState) -> None:
    """Put what a capture finds in no meaningful order into one stable order.

    Origins are read concurrently, so the same browser state could come out with its
    localStorage origins, databases and caches in another order each time, and every
    record would look moved to the next version's delta. Origins are sorted; the
    databases of an origin by name (their order is unspecified); the caches of an origin
    keep theirs (``caches.keys()`` order is their creation order); records and entries
    follow their database or cache, each keeping its own order.
    """
    _sort(storage.local_storage, lambda s: (s.origin, s.storage_key))
    _sort(storage.indexed_db, lambda d: (d.origin, d.storage_key, text(d.name)))
    _sort(storage.cache_storage, lambda c: (c.origin, c.storage_key))
    store_rank = {store.id: rank for rank, store in enumerate(s for d in storage.indexed_db for s in d.stores)}
    _sort(storage.indexed_db_records, lambda r: store_rank.get(r.store, len(store_rank)))
    cache_rank = {cache.id: rank for rank, cache in enumerate(storage.cache_storage)}
    _sort(storage.cache_entries, lambda e: cache_rank.get(e.cache, len(cache_rank)))


def _sort(repeated, key) -> None:  # type: ignore[no-untyped-def]
    """Sort a repeated message field in place, stably; untouched if already in order."""
    keys = [key(item) for item in repeated]
    if all(a <= b for a, b in zip(keys, keys[1:])):
        return
    ordered = [item for _, item in sorted(zip(keys, repeated), key=lambda pair: pair[0])]
    copies = [type(item)() for item in ordered]
    for copy, item in zip(copies, ordered):
        copy.CopyFrom(item)
    del repeated[:]
    repeated.extend(copies)


async def _attach_tabs(ctx: CaptureContext) -> None:
    for info in await ctx.context.page_targets():
        try:
            tab = await ctx.context.attach_tab(info)
        except ProtocolError:
            continue  # closed meanwhile
        ctx.tabs.append(tab)
        try:
            await tab.load_frames()
            await tab.navigation()
        except (ProtocolError, BrowserClosedError) as exc:
            if navigated(exc):
                raise  # the tab is there, mid-navigation: the capture is made again, never without it
            ctx.tabs.remove(tab)
            await tab.release()
            continue
        ctx.state.history.tabs.add(target_id=tab.target_id)


async def restore_state(
    connection: CdpConnection,
    state: BrowserSessionState,
    *,
    context: str | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    clean: bool = False,
    timeout: float = 30.0,
    options: Iterable[str] = (),
    network: Answerer | None = None,
) -> RestoreReport:
    """Restore ``state`` into a context: ``None``/"default", "new" (created), or an id.

    ``network`` answers the requests of the tabs' live loads instead of the network.
    """
    selected = select(only, skip)
    chosen = check_options(options)
    if context == "new":
        browser_context = await BrowserContext.create(connection)
    else:
        browser_context = await BrowserContext.resolve(connection, context)
    report = RestoreReport(context_id=browser_context.id)
    if clean:
        await _clean(browser_context, report)
    ctx = RestoreContext(connection, browser_context, state, selected, report, timeout, options=chosen, network=network)
    for component in components():
        if component.name in selected:
            await component.restore(ctx)
    return report


async def _clean(context: BrowserContext, report: RestoreReport) -> None:
    """Empty the context: its tabs, cookies, and the storage of every origin it has cookies for."""
    cookies = await read_cookies(context)
    origins = sorted({o for cookie in cookies for o in cookie_origins(cookie)})
    await context.connection.send("Storage.clearCookies", context.context_params())
    targets = await context.page_targets()
    keep = None
    if targets:
        keep = targets[0]["targetId"]
    for info in targets[1:]:
        await context.close_target(info["targetId"])
    if origins:
        async with context.stub_page(target_id=keep) as stub:
            for origin in origins:
                try:
                    await stub.session.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
                except ProtocolError as exc:
                    raise StateError(f"cannot clear {origin}: {exc.browser_message}") from None
    if keep:
        session = await context.connection.attach(keep)
        await session.send("Page.navigate", {"url": "about:blank"})
        await session.detach()
    report.note(f"cleaned the context: {len(cookies)} cookie(s), {len(targets)} tab(s), storage of {len(origins)} origin(s)")
