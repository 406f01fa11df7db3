"""Change tracking for ``psp watch``: when did a browser context's state change, and which part of it.

:class:`ChangeTracker` follows one browser context (``None``: the default one) over a
:class:`~psp_cdp.cdp.CdpConnection` and hands out batches of changed component names
(the names of :mod:`psp_cdp.state.registry`), debounced: a batch is ready once no new
change has come for ``debounce`` seconds, or ``max_delay`` seconds after its first
change, so a page that never stops writing still gets saved. Changes are coalesced in
a set; nothing queues up however fast a page writes.

Where the changes come from (every source is per browser context):

* **Tabs** — the browser session discovers targets (``Target.setDiscoverTargets``,
  pages only); every page of the context is attached with a flat session of the
  tracker's own. A page opened or closed after the start, a main-frame navigation
  (``Page.frameNavigated``) and a same-document one (``Page.navigatedWithinDocument``:
  ``pushState``, ``replaceState``, fragments) report ``tabs``. Title changes and
  scrolling alone do not.
* **localStorage / sessionStorage** — ``DOMStorage.enable`` on every page session and
  on the session of every out-of-process iframe (``Target.setAutoAttach`` with
  ``waitForDebuggerOnStart``, so an iframe's first writes are not missed; iframes
  nested in those too). ``domStorageItemAdded/Removed/Updated/Cleared`` report
  ``local_storage`` when ``storageId.isLocalStorage``, else ``session_storage`` (the
  registry's component for sessionStorage, which is kept per tab).
  Chromium reports a DOMStorage write only to sessions of the page that made it.
* **IndexedDB and CacheStorage** — ``Storage.trackIndexedDBForStorageKey`` and
  ``Storage.trackCacheStorageForStorageKey`` for every storage key seen in the
  context's frames (``Storage.getStorageKeyForFrame`` of each frame at the start and
  at each navigation; a main frame's first-party key is tracked as soon as its
  navigation starts, ``Page.frameStartedNavigating``, before the new document's
  scripts can write). Chromium refuses these commands on the browser session
  (internal error for a non-default context) and scopes them, on a page session, to
  that page's storage partition, i.e. its browser context; a key is therefore tracked
  on every page session of the context, so it stays tracked while any tab is open.
  ``indexedDBContentUpdated``/``indexedDBListUpdated`` report ``indexed_db``,
  ``cacheStorageContentUpdated``/``cacheStorageListUpdated`` report ``cache_storage``.
  One exception: the first read of a storage key's databases (a capture's) creates its
  storage bucket, which Chromium reports as a list update; a list update after which a
  key that had no database (``IndexedDB.requestDatabaseNames``) still has none is not
  a change. Keys are never untracked while the tracker runs (a service worker can write
  with no page of its origin open); there is one per origin and partition visited.
* **Cookies** — CDP has no cookie change event: ``Storage.getCookies`` of the context
  is read every ``cookie_interval`` seconds and its digest compared (``cookies``).
  A response whose headers carry ``Set-Cookie`` (``Network.responseReceivedExtraInfo``,
  on every page and iframe session) makes the poller read at once, and again shortly
  after if the jar had not changed yet. ``document.cookie`` writes, cookies set by
  service workers and expiries are found by the poll.
* **Service workers** — ``ServiceWorker.enable`` on the page sessions; a registration
  added or deleted, or a worker version of another script or another lifecycle status
  (installing, activated, redundant ...), reports ``service_workers``. Running-status
  changes (a worker starting or stopping) do not.

``auth`` is not reported: auth tokens derive from the other components.

The caller's own capture opens stub pages in the context: wrap it in
:meth:`ChangeTracker.ignoring_new_tabs` so they are not taken for the user's tabs.

Limits: a tab opened after the start is attached once its ``targetCreated`` event has
arrived, so what its first document writes to localStorage or sessionStorage in the
first few milliseconds can be missed (IndexedDB and CacheStorage only when its
storage key was never seen before), as can IndexedDB writes of a frame that navigates
within the same process to a storage key first seen at that navigation, until the key
is tracked. The next write of the same kind is seen.

Cancelling :meth:`ChangeTracker.run` detaches every session the tracker attached
(which ends their DOMStorage, Network, Page, ServiceWorker domains, storage tracking
and auto-attaching, and lets paused iframes run) and switches target discovery off.
A browser that goes away ends ``run`` with :class:`~psp_cdp.errors.BrowserClosedError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, CdpSession, leaf_errors, single_error
from ..errors import BrowserClosedError, ProtocolError
from .pages import BrowserContext, origin_of

__all__ = [
    "ADOPT_GRACE",
    "COMPONENTS",
    "ChangeTracker",
    "track_changes",
]

log = logging.getLogger("psp_cdp.state.watch")

COOKIES = "cookies"
LOCAL_STORAGE = "local_storage"
SESSION_STORAGE = "session_storage"
INDEXED_DB = "indexed_db"
CACHE_STORAGE = "cache_storage"
SERVICE_WORKERS = "service_workers"
TABS = "tabs"

#: Every component name a batch can hold.
COMPONENTS = frozenset({COOKIES, LOCAL_STORAGE, SESSION_STORAGE, INDEXED_DB, CACHE_STORAGE, SERVICE_WORKERS, TABS})

_DOM_STORAGE_EVENTS = (
    "DOMStorage.domStorageItemAdded",
    "DOMStorage.domStorageItemRemoved",
    "DOMStorage.domStorageItemUpdated",
    "DOMStorage.domStorageItemsCleared",
)
_CACHE_STORAGE_EVENTS = ("Storage.cacheStorageContentUpdated", "Storage.cacheStorageListUpdated")
_SERVICE_WORKER_EVENTS = ("ServiceWorker.workerRegistrationUpdated", "ServiceWorker.workerVersionUpdated")
#: Events a page can send by the thousand (a write loop, many requests); each is handled
#: without waiting, on a stream of their own, so that a flood of them cannot crowd out ...
_WRITE_EVENTS = (
    *_DOM_STORAGE_EVENTS,
    "Storage.indexedDBContentUpdated",
    *_CACHE_STORAGE_EVENTS,
    "Network.responseReceivedExtraInfo",
)
#: ... these, which must not be dropped: an iframe auto-attached and left waiting for a
#: debugger would never run.
_CONTROL_EVENTS = (
    "Target.attachedToTarget",
    "Page.frameNavigated",
    "Page.frameStartedNavigating",
    "Page.navigatedWithinDocument",
    "Storage.indexedDBListUpdated",
    *_SERVICE_WORKER_EVENTS,
)
_TARGET_EVENTS = ("Target.targetCreated", "Target.targetDestroyed")

#: Events buffered per session while the tracker is busy; handling one is quick.
_BUFFER = 512
#: After a response set cookies and the jar looked unchanged, read it again after these delays.
_COOKIE_RECHECKS = (0.1, 0.5)
#: Seconds after :meth:`ChangeTracker.ignoring_new_tabs` ends before tabs it opened and left open are adopted.
ADOPT_GRACE = 0.5
#: Seconds each clean-up step may take on cancellation (the browser may hang).
_CLEANUP_TIMEOUT = 2.0


@dataclass(eq=False)
class _Tracked:
    """A session the tracker attached (a tab) or was auto-attached (an out-of-process iframe)."""

    session: CdpSession
    target_id: str
    top: bool
    #: The session that auto-attached this one (an iframe's); detaching goes through it.
    parent: CdpSession | None = None
    #: The tab an iframe belongs to.
    tab: _Tracked | None = None
    #: A tab's out-of-process iframes (nested ones too), in the order they were attached.
    frames: list[_Tracked] = field(default_factory=list)
    #: Cancels an iframe's task.
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    main_frame: str | None = None
    #: Storage tracking is sent on this session (tabs only, once they are set up).
    tracking: bool = False
    #: Service worker events seen on this session (the first of each kind is the initial dump).
    service_worker_dumps: set[str] = field(default_factory=set)


async def _try(session: CdpSession, method: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Send a command; ``None`` if the browser refused it (the target may lack the domain)."""
    try:
        return await session.send(method, params)
    except ProtocolError as exc:
        log.debug("%s on %s: %s", method, session, exc.browser_message)
        return None


def _sets_cookie(headers: Any) -> bool:
    return isinstance(headers, dict) and any(str(name).lower() == "set-cookie" for name in headers)


def _http_key(key: str | None) -> bool:
    return bool(key) and str(key).startswith(("http://", "https://"))


class ChangeTracker:
    """Follows one browser context and reports which state components changed.

    Run :meth:`run` in a nursery (``await nursery.start(tracker.run)`` returns once
    tracking is live), or use :func:`track_changes`; then ``await changes()`` for
    each batch, or ``async for batch in tracker``.
    """

    def __init__(
        self,
        connection: CdpConnection,
        *,
        context: str | None = None,
        cookie_interval: float = 2.0,
        debounce: float = 0.5,
        max_delay: float = 5.0,
    ) -> None:
        if cookie_interval <= 0 or debounce < 0 or max_delay <= 0:
            raise ValueError("cookie_interval and max_delay must be positive, debounce not negative")
        self.connection = connection
        self.context_id = context
        self.cookie_interval = cookie_interval
        self.debounce = debounce
        self.max_delay = max_delay
        #: The resolved context, once :meth:`run` has started.
        self.context: BrowserContext | None = None
        self._pending: set[str] = set()
        self._first_at = 0.0
        self._last_at = 0.0
        self._wakeup = trio.Event()
        self._running = False
        self._live = False
        self._stopped = False
        self._failure: str | None = None
        self._nursery: trio.Nursery | None = None
        self._tabs: dict[str, _Tracked] = {}
        self._keys: set[str] = set()
        self._cookie_poke = trio.Event()
        #: IndexedDB database names per tracked storage key (``None``: could not be read).
        self._databases: dict[str, list[str] | None] = {}
        self._registrations: dict[str, str] = {}
        self._versions: dict[str, tuple[str, str, str]] = {}
        # tabs the caller opened itself (see ignoring_new_tabs)
        self._ignoring = 0
        self._foreign: set[str] = set()
        self._target_events_received = 0
        self._target_events_seen = 0
        self._target_progress = trio.Event()
        self._targets_stream: Any = None

    # -- what callers use ------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether tracking is set up and running."""
        return self._live

    @property
    def pending(self) -> frozenset[str]:
        """The components changed since the last batch (the batch being gathered)."""
        return frozenset(self._pending)

    async def changes(self) -> set[str]:
        """Wait for the next batch: the components changed since the last batch.

        A batch is handed out once no new change has come for ``debounce`` seconds, or
        ``max_delay`` seconds after its first change. :class:`BrowserClosedError` once the
        browser (or the context) has gone away. Once the tracker has been stopped, what is
        pending is handed out at once, then :class:`trio.EndOfChannel`.
        """
        while True:
            if self._failure is not None:
                raise BrowserClosedError(self._failure)
            if self._pending:
                deadline = min(self._last_at + self.debounce, self._first_at + self.max_delay)
                if self._stopped or trio.current_time() >= deadline:
                    break
                with trio.move_on_at(deadline):
                    await self._wakeup.wait()
                continue
            if self._stopped:
                raise trio.EndOfChannel("the change tracker has stopped")
            await self._wakeup.wait()
        batch, self._pending = self._pending, set()
        return batch

    def discard(self, components: Iterable[str]) -> None:
        """Forget pending changes of these components: the caller knows they were its own.

        A capture reads IndexedDB in ways Chromium reports as changes (a key generator
        is read by adding a record and aborting); a caller that captured a component
        and found it unchanged discards what the capture itself set off.
        """
        self._pending.difference_update(components)

    def __aiter__(self) -> AsyncIterator[set[str]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[set[str]]:
        while True:
            try:
                batch = await self.changes()
            except trio.EndOfChannel:
                return
            yield batch

    @asynccontextmanager
    async def ignoring_new_tabs(self) -> AsyncIterator[None]:
        """Tabs opened during the block are the caller's own (a capture's stub pages).

        They are neither attached nor reported, opening or closing. One still open
        :data:`ADOPT_GRACE` seconds after the block is taken for the user's: attached,
        tracked, and reported as ``tabs``.
        """
        self._ignoring += 1
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(_CLEANUP_TIMEOUT):
                    await self._settle_target_events()
                self._ignoring -= 1
                if not self._ignoring and self._foreign and self._nursery is not None and not self._stopped:
                    self._nursery.start_soon(self._adopt_foreign)

    # -- running -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Attach and track until cancelled; ``task_status.started()`` once tracking is live.

        :class:`BrowserClosedError` when the browser, or the tracked context, goes away.
        """
        if self._running or self._stopped:
            raise RuntimeError("a ChangeTracker runs once")
        self._running = True
        try:
            self.context = await BrowserContext.resolve(self.connection, self.context_id)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await self._follow_targets(nursery, task_status)
            except BrowserClosedError as exc:
                self._failure = self._failure or str(exc)
            except BaseExceptionGroup as group:
                closed, rest = group.split(BrowserClosedError)
                if rest is not None:
                    raise rest from None
                if closed is not None:
                    self._failure = self._failure or str(leaf_errors(closed)[0])
        finally:
            self._live = False
            self._stopped = True
            self._nursery = None
            self._wake()
            self._target_progress.set()
            if not self.connection.closed:
                with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_TIMEOUT):
                    try:
                        await self.connection.send("Target.setDiscoverTargets", {"discover": False})
                    except (ProtocolError, BrowserClosedError):
                        pass
        if self._failure is not None:
            raise BrowserClosedError(self._failure)

    def _fail(self, reason: str) -> None:
        """End :meth:`run` with :class:`BrowserClosedError` (the browser or the context is gone)."""
        if self._failure is None:
            self._failure = reason
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _closed(self, exc: BrowserClosedError) -> None:
        """A command failed with ``exc``: fail the tracker if it was the whole connection."""
        if self.connection.closed:
            self._fail(self.connection.closed_reason or str(exc))

    def _report(self, component: str) -> None:
        now = trio.current_time()
        if not self._pending:
            self._first_at = now
        self._last_at = now
        if component not in self._pending:
            log.debug("change: %s", component)
        self._pending.add(component)
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = trio.Event()

    # -- tabs ------------------------------------------------------------------------------

    async def _follow_targets(self, nursery: trio.Nursery, task_status: trio.TaskStatus[None]) -> None:
        connection = self.connection
        assert self.context is not None
        with connection.listen(*_TARGET_EVENTS, buffer=_BUFFER) as targets:
            self._targets_stream = targets
            # Discovery announces every existing target before it answers.
            await connection.send("Target.setDiscoverTargets", {"discover": True, "filter": [{"type": "page"}]})
            existing = []
            while True:
                try:
                    existing.append(targets.receive_nowait())
                except trio.WouldBlock:
                    break
            self._target_events_received += len(existing)
            for event in existing:
                await self._on_target_event(nursery, event, initial=True)
            await nursery.start(self._poll_cookies)
            if self._failure is not None:
                return
            self._live = True
            task_status.started()
            async for event in targets:
                self._target_events_received += 1
                await self._on_target_event(nursery, event, initial=False)
        self._fail(connection.closed_reason or "browser connection closed")

    async def _on_target_event(self, nursery: trio.Nursery, event: Any, *, initial: bool) -> None:
        assert self.context is not None
        try:
            info = event.params.get("targetInfo") or {}
            if event.method == "Target.targetCreated":
                if info.get("type") != "page" or not self.context.owns(info):
                    return
                target_id = info["targetId"]
                if self._ignoring:
                    self._foreign.add(target_id)
                    return
                if target_id not in self._tabs and await nursery.start(self._track_tab, target_id) and not initial:
                    self._report(TABS)
            elif event.method == "Target.targetDestroyed":
                target_id = event.params.get("targetId", "")
                self._foreign.discard(target_id)
                if target_id in self._tabs:
                    self._report(TABS)
        finally:
            self._target_events_seen += 1
            self._target_progress.set()
            self._target_progress = trio.Event()

    async def _settle_target_events(self) -> None:
        """Wait until every target event the browser sent so far has been handled."""
        stream = self._targets_stream
        if stream is None or self._stopped:
            return
        try:
            await self.connection.send("Target.getBrowserContexts")  # a round trip: earlier events are in the stream
        except (ProtocolError, BrowserClosedError):
            return
        goal = self._target_events_received + stream.statistics().buffered
        while self._target_events_seen < goal and not self._stopped:
            await self._target_progress.wait()

    async def _adopt_foreign(self) -> None:
        """Track the tabs opened while ignoring new tabs that are still open."""
        await trio.sleep(ADOPT_GRACE)
        if self._ignoring or self._nursery is None or self.context is None:
            return
        try:
            open_tabs = {info["targetId"] for info in await self.context.page_targets()}
        except BrowserClosedError as exc:
            self._closed(exc)
            return
        adopt = sorted(self._foreign & open_tabs)
        self._foreign.clear()
        for target_id in adopt:
            if target_id not in self._tabs and await self._nursery.start(self._track_tab, target_id):
                self._report(TABS)

    async def _track_tab(self, target_id: str, *, task_status: trio.TaskStatus[bool] = trio.TASK_STATUS_IGNORED) -> None:
        """Attach to a tab and track it until it closes; started with whether it could be attached."""
        try:
            session = await self.connection.attach(target_id)
        except ProtocolError:
            task_status.started(False)  # closed meanwhile
            return
        except BrowserClosedError as exc:
            task_status.started(False)
            self._closed(exc)
            return
        tracked = _Tracked(session, target_id, top=True, main_frame=target_id)
        self._tabs[target_id] = tracked
        try:
            await self._track_session(tracked, task_status)
        finally:
            del self._tabs[target_id]
            frames, tracked.frames = tracked.frames, []
            for frame in frames:
                frame.scope.cancel()
            # Iframes first, innermost first, each through the session that attached it: a
            # session whose parent is gone is dropped by the browser without a word.
            with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_TIMEOUT):
                for frame in reversed(frames):
                    await _release_waiting(frame.session)
                    await _detach_child(frame.session, frame.parent)
                if tracked.tracking and not session.closed:
                    await self._untrack_keys(session)  # detaching ends it too; said explicitly
                await session.detach()

    async def _track_frame(self, tracked: _Tracked, *, task_status: trio.TaskStatus[bool] = trio.TASK_STATUS_IGNORED) -> None:
        """Track an out-of-process iframe's session until it goes away.

        Its tab's task releases and detaches it when the tab is released.
        """
        assert tracked.tab is not None
        tracked.tab.frames.append(tracked)
        with tracked.scope:
            await self._track_session(tracked, task_status)
            if tracked in tracked.tab.frames:  # gone with its document
                tracked.tab.frames.remove(tracked)

    async def _track_session(self, tracked: _Tracked, task_status: trio.TaskStatus[bool]) -> None:
        session = tracked.session
        started = False
        try:
            with session.listen(*_CONTROL_EVENTS, buffer=_BUFFER) as control:
                with session.listen(*_WRITE_EVENTS, buffer=_BUFFER) as writes:
                    await self._set_up(tracked, control)
                    if not tracked.top:
                        await _release_waiting(session)  # it waits for a debugger since its start
                    started = True
                    task_status.started(True)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._follow_writes, writes)
                        try:
                            async for event in control:
                                await self._on_session_event(tracked, event)
                        except BrowserClosedError as exc:  # caught here, not as a group out of the nursery
                            self._closed(exc)
                        nursery.cancel_scope.cancel()
        except BrowserClosedError as exc:
            self._closed(exc)
        if not started:
            task_status.started(False)
            return
        if tracked.top and not self.connection.closed:
            self._report(TABS)  # the tab went away (its targetDestroyed may have been dropped)

    async def _set_up(self, tracked: _Tracked, events: Any) -> None:
        session = tracked.session
        await _try(session, "Page.enable")
        await _try(session, "DOMStorage.enable")
        await _try(session, "Network.enable", {"maxTotalBufferSize": 0, "maxResourceBufferSize": 0})
        if tracked.top:
            await _try(session, "ServiceWorker.enable")
        await _try(session, "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True})
        tree = await _try(session, "Page.getFrameTree")
        nodes = [tree["frameTree"]] if tree else []
        while nodes:
            node = nodes.pop()
            frame = node.get("frame", {})
            if tracked.top and not frame.get("parentId"):
                tracked.main_frame = frame.get("id")
            await self._learn_key(tracked, frame.get("id", ""), frame.get("url", ""))
            nodes.extend(node.get("childFrames", []))
        if tracked.top:
            tracked.tracking = True
            for key in sorted(self._keys):
                await self._track_key(tracked, key)
                if self._databases.get(key) is None:
                    self._databases[key] = await self._database_names(tracked, key)
        # Existing out-of-process iframes were announced before setAutoAttach answered:
        # set them up too before this tab counts as tracked.
        while True:
            try:
                event = events.receive_nowait()
            except trio.WouldBlock:
                break
            await self._on_session_event(tracked, event)

    async def _follow_writes(self, writes: Any) -> None:
        async for event in writes:
            method, params = event.method, event.params
            if method in _DOM_STORAGE_EVENTS:
                local = bool((params.get("storageId") or {}).get("isLocalStorage"))
                self._report(LOCAL_STORAGE if local else SESSION_STORAGE)
            elif method == "Storage.indexedDBContentUpdated":
                self._report(INDEXED_DB)
            elif method in _CACHE_STORAGE_EVENTS:
                self._report(CACHE_STORAGE)
            elif method == "Network.responseReceivedExtraInfo" and _sets_cookie(params.get("headers")):
                self._cookie_poke.set()

    async def _on_session_event(self, tracked: _Tracked, event: Any) -> None:
        method, params = event.method, event.params
        if method == "Storage.indexedDBListUpdated":
            await self._on_database_list(tracked, params.get("storageKey"))
        elif method == "Page.frameNavigated":
            frame = params.get("frame") or {}
            if tracked.top and not frame.get("parentId"):
                tracked.main_frame = frame.get("id")
                self._report(TABS)
            await self._learn_key(tracked, frame.get("id", ""), frame.get("url", ""))
        elif method == "Page.navigatedWithinDocument":
            if tracked.top and params.get("frameId") == tracked.main_frame:
                self._report(TABS)
        elif method == "Page.frameStartedNavigating":
            # A main frame's storage key is its origin's own: track it before the document runs.
            if tracked.top and params.get("frameId") == tracked.main_frame:
                origin = origin_of(params.get("url", ""))
                if origin is not None:
                    await self._add_key(origin + "/")
        elif method in _SERVICE_WORKER_EVENTS:
            self._on_service_workers(tracked, method, params)
        elif method == "Target.attachedToTarget":
            await self._on_attached(tracked, params)

    async def _on_attached(self, parent: _Tracked, params: dict[str, Any]) -> None:
        info = params.get("targetInfo") or {}
        child = self.connection.session(params["sessionId"], info.get("targetId"))
        tab = parent if parent.top else parent.tab
        if info.get("type") == "iframe" and self._nursery is not None and tab is not None:
            frame = _Tracked(child, info.get("targetId", ""), top=False, parent=parent.session, tab=tab)
            await self._nursery.start(self._track_frame, frame)
            return
        # A worker or anything else: its storage writes are seen through the storage keys.
        await _release_waiting(child)
        await _detach_child(child, parent.session)

    # -- storage keys ------------------------------------------------------------------------

    async def _learn_key(self, tracked: _Tracked, frame_id: str, url: str) -> None:
        if not frame_id:
            return
        result = await _try(tracked.session, "Storage.getStorageKeyForFrame", {"frameId": frame_id})
        if result is None:  # deprecated; newer browsers may only have this one
            result = await _try(tracked.session, "Storage.getStorageKey", {"frameId": frame_id})
        key = (result or {}).get("storageKey")
        if not _http_key(key):
            origin = origin_of(url)
            key = origin + "/" if origin is not None else None
        if key:
            await self._add_key(key)

    async def _add_key(self, key: str) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        tabs = [tab for tab in self._tabs.values() if tab.tracking]
        for tab in tabs:
            await self._track_key(tab, key)
        if tabs:
            self._databases[key] = await self._database_names(tabs[0], key)

    async def _untrack_keys(self, session: CdpSession) -> None:
        try:
            for key in sorted(self._keys):
                await _try(session, "Storage.untrackIndexedDBForStorageKey", {"storageKey": key})
                await _try(session, "Storage.untrackCacheStorageForStorageKey", {"storageKey": key})
        except BrowserClosedError:
            pass

    async def _database_names(self, tab: _Tracked, key: str) -> list[str] | None:
        """The names of the IndexedDB databases (default bucket) of ``key``; ``None`` if unknown."""
        try:
            result = await _try(tab.session, "IndexedDB.requestDatabaseNames", {"storageKey": key})
        except BrowserClosedError:
            if self.connection.closed:
                raise
            return None
        return None if result is None else sorted(result.get("databaseNames", []))

    async def _on_database_list(self, tracked: _Tracked, key: str | None) -> None:
        """``indexedDBListUpdated``: reported unless a key that had no database still has none.

        Reading a storage key's databases for the first time (a capture does) creates its
        storage bucket, and Chromium reports that as a list update of an empty list.
        """
        if not key:
            self._report(INDEXED_DB)
            return
        names = await self._database_names(tracked, key)
        previous = self._databases.get(key)
        self._databases[key] = names
        if names is None or names or previous:
            self._report(INDEXED_DB)

    async def _track_key(self, tab: _Tracked, key: str) -> None:
        """Track ``key`` on one tab's session; a tab that closed meanwhile is passed over."""
        try:
            await _try(tab.session, "Storage.trackIndexedDBForStorageKey", {"storageKey": key})
            await _try(tab.session, "Storage.trackCacheStorageForStorageKey", {"storageKey": key})
        except BrowserClosedError:
            if self.connection.closed:
                raise

    # -- service workers ----------------------------------------------------------------------

    def _on_service_workers(self, tracked: _Tracked, method: str, params: dict[str, Any]) -> None:
        changed = False
        if method == "ServiceWorker.workerRegistrationUpdated":
            for registration in params.get("registrations", []):
                rid = str(registration.get("registrationId"))
                if registration.get("isDeleted"):
                    changed |= self._registrations.pop(rid, None) is not None
                else:
                    scope = str(registration.get("scopeURL", ""))
                    changed |= self._registrations.get(rid) != scope
                    self._registrations[rid] = scope
        else:
            for version in params.get("versions", []):
                vid = str(version.get("versionId"))
                status = str(version.get("status", ""))
                if status == "redundant":
                    changed |= self._versions.pop(vid, None) is not None
                    continue
                value = (str(version.get("registrationId")), str(version.get("scriptURL", "")), status)
                changed |= self._versions.get(vid) != value
                self._versions[vid] = value
        initial_dump = method not in tracked.service_worker_dumps
        tracked.service_worker_dumps.add(method)
        if changed and not initial_dump:
            self._report(SERVICE_WORKERS)

    # -- cookies ------------------------------------------------------------------------------

    async def _cookie_digest(self) -> str | None:
        """A digest of the context's cookies; ``None`` if they could not be read this time."""
        assert self.context is not None
        try:
            result = await self.connection.send("Storage.getCookies", self.context.context_params())
        except ProtocolError as exc:
            if self.context.id is not None:
                contexts = await self.connection.send("Target.getBrowserContexts")
                if self.context.id not in contexts.get("browserContextIds", []):
                    self._fail(f"browser context {self.context.id} was closed")
                    return None
            log.debug("cannot read cookies: %s", exc)
            return None
        cookies = sorted(json.dumps(c, sort_keys=True) for c in result.get("cookies", []))
        return hashlib.sha256("\n".join(cookies).encode("utf-8", "surrogatepass")).hexdigest()

    async def _poll_cookies(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        try:
            last = await self._cookie_digest()
            task_status.started()
            started = True
            rechecks: list[float] = []
            while True:
                poked = False
                with trio.move_on_after(rechecks.pop(0) if rechecks else self.cookie_interval):
                    await self._cookie_poke.wait()
                    poked = True
                if poked:
                    self._cookie_poke = trio.Event()
                digest = await self._cookie_digest()
                if digest is None:
                    continue
                if last is not None and digest != last:
                    self._report(COOKIES)
                    rechecks = []
                elif poked:
                    rechecks = list(_COOKIE_RECHECKS)  # the jar may take a moment to store them
                last = digest
        except BrowserClosedError as exc:
            self._fail(self.connection.closed_reason or str(exc))
            if not started:
                task_status.started()


async def _release_waiting(session: CdpSession) -> None:
    """Let a target paused by ``waitForDebuggerOnStart`` run (harmless if it is not paused)."""
    try:
        await session.send("Runtime.runIfWaitingForDebugger")
    except (ProtocolError, BrowserClosedError):
        pass


async def _detach_child(child: CdpSession, parent: CdpSession | None) -> None:
    """Detach an auto-attached session, through the session that attached it."""
    if parent is None:
        await child.detach()
        return
    if child.closed or parent.closed:
        return  # gone already, or went with its parent
    try:
        await parent.send("Target.detachFromTarget", {"sessionId": child.session_id})
    except (ProtocolError, BrowserClosedError):
        pass


@asynccontextmanager
async def track_changes(
    connection: CdpConnection,
    *,
    context: str | None = None,
    cookie_interval: float = 2.0,
    debounce: float = 0.5,
    max_delay: float = 5.0,
) -> AsyncIterator[ChangeTracker]:
    """A live :class:`ChangeTracker` for the duration of the block, stopped and detached after it.

    If the browser goes away, the block is cancelled and :class:`BrowserClosedError` raised.
    """
    tracker = ChangeTracker(
        connection, context=context, cookie_interval=cookie_interval, debounce=debounce, max_delay=max_delay
    )
    with single_error():
        async with trio.open_nursery() as nursery:
            await nursery.start(tracker.run)
            try:
                yield tracker
            finally:
                nursery.cancel_scope.cancel()
