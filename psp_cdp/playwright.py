"""Save and restore the session of a browser that Playwright drives: one import, two calls.

::

    from psp_cdp.playwright import PlaywrightAdapter          # sync Playwright
    adapter = PlaywrightAdapter()
    session = adapter.create_session(page, name="login", storage="local")
    session.capture(); session_id = session.id
    adapter.load_session(session_id).restore(new_page)

    from psp_cdp.playwright import AsyncPlaywrightAdapter     # async Playwright: the same calls, awaited
    session = await adapter.create_session(page, name="login", storage="local")
    await session.capture()
    await (await adapter.load_session(session_id)).restore(new_page)

It works on any Chromium Playwright holds: one it launched itself (over a pipe, with no
debugging port), one it reached with ``connect_over_cdp``, and persistent contexts. A
capture takes the context of the session's page (all its tabs); a restore writes into
the context of the page it is given, and reuses that page for the first tab.

How: Playwright hands out a browser-level CDP session (``new_browser_cdp_session``).
For the length of one capture or restore, a relay (:mod:`psp_cdp.cdp.relay`) serves it
as a CDP endpoint on 127.0.0.1 with a random path, and psp_cdp works on that endpoint as
on any browser: through the daemon when one runs on the local socket and serves the same
store, in this process otherwise. Playwright's own connection is left as it was.

``storage`` is ``"local"`` (the default store, which honours ``PSP_STORE``), ``"redis"``
(``PSP_REDIS_URL``, else a Redis server on localhost) or any STORE the CLI takes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import trio

from .cdp.relay import CdpRelay, serve_relay
from .client.bridge import Adapter, BridgeSession, Job, SyncBridgeSession
from .client.runner import Captured
from .errors import UsageError

__all__ = [
    "AsyncPlaywrightAdapter",
    "AsyncPlaywrightSession",
    "Captured",
    "PlaywrightAdapter",
    "PlaywrightSession",
]

T = TypeVar("T")


def _impl(obj: Any) -> Any:
    """Playwright's implementation object behind a sync or async API object."""
    return getattr(obj, "_impl_obj", obj)


def _check_page(page: Any) -> Any:
    impl = _impl(page)
    if not (hasattr(impl, "context") and hasattr(impl, "goto")):
        raise UsageError(f"expected a Playwright Page, got {type(page).__name__}")
    if impl.is_closed():
        raise UsageError("the page is closed")
    return impl


class _Channels:
    """Browser-level CDP sessions of one Playwright browser, for a relay in another thread.

    Lives on Playwright's asyncio loop; the relay calls :meth:`open`, :meth:`send` and
    :meth:`close` from its own thread, and outcomes go back through ``relay.deliver``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, browser: Any) -> None:
        self.loop = loop
        self.browser = browser
        self.relay: CdpRelay | None = None
        self._sessions: dict[int, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _deliver(self, *message: Any) -> None:
        assert self.relay is not None
        self.relay.deliver(message)

    def _soon(self, make: Callable[[], Awaitable[None]]) -> None:
        def start() -> None:
            task = self.loop.create_task(make())  # type: ignore[arg-type]
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed: Playwright has stopped
            pass

    # -- called by the relay, from its thread ----------------------------------

    def open(self, client: int) -> None:
        self._soon(lambda: self._open(client))

    def send(self, client: int, rid: int, method: str, params: dict[str, Any]) -> None:
        self._soon(lambda: self._send(client, rid, method, params))

    def close(self, client: int) -> None:
        self._soon(lambda: self._close(client))

    # -- on Playwright's loop ----------------------------------------------------

    async def _open(self, client: int) -> None:
        try:
            session = await self.browser.new_browser_cdp_session()
        except Exception as exc:
            self._deliver("opened", client, f"Playwright refused a browser CDP session: {exc}")
            return
        self._sessions[client] = session
        session.on("event", lambda event: self._deliver("event", client, event["method"], event.get("params") or {}))
        session.on("close", lambda *_: self._deliver("closed", client, "Playwright closed the CDP session"))
        self._deliver("opened", client, None)

    async def _send(self, client: int, rid: int, method: str, params: dict[str, Any]) -> None:
        session = self._sessions.get(client)
        if session is None:
            self._deliver("result", client, rid, None, "the browser session is closed")
            return
        try:
            result = await session.send(method, params, None)
        except Exception as exc:
            self._deliver("result", client, rid, None, _protocol_message(exc))
        else:
            self._deliver("result", client, rid, result or {}, None)

    async def _close(self, client: int) -> None:
        session = self._sessions.pop(client, None)
        if session is not None:
            try:
                await session.detach()
            except Exception:  # already gone with the browser
                pass

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for client in list(self._sessions):
            await self._close(client)


def _protocol_message(exc: Exception) -> str:
    """The browser's own words from a Playwright error (``CDPSession.send: Protocol error (M): words``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split("): ", 1)[1] if "Protocol error (" in text and "): " in text else text


async def _context_id(page: Any) -> str | None:
    """The CDP browser context id of a page (Playwright keeps it to itself)."""
    cdp = await page.context.new_cdp_session(page)
    try:
        info = (await cdp.send("Target.getTargetInfo", None, None))["targetInfo"]
    finally:
        try:
            await cdp.detach()
        except Exception:
            pass
    return info.get("browserContextId")


async def _over_relay(page: Any, job: Job[T]) -> T:
    """Run ``job`` (a trio function) in a thread of its own, with a CDP endpoint for ``page``'s browser.

    Runs on Playwright's asyncio loop, which keeps serving the relay's browser sessions
    while the job runs.
    """
    browser = page.context.browser
    if browser is None:
        raise UsageError("this Playwright page has no browser to reach over CDP")
    if browser.browser_type.name != "chromium":
        raise UsageError(f"psp_cdp speaks the Chrome DevTools Protocol; this page runs in {browser.browser_type.name}")
    context = await _context_id(page)
    loop = asyncio.get_running_loop()
    channels = _Channels(loop, browser)
    done: asyncio.Future[T] = loop.create_future()
    tokens: list[trio.lowlevel.TrioToken] = []
    scope = trio.CancelScope()

    async def serve_and_run() -> T | None:
        tokens.append(trio.lowlevel.current_trio_token())
        with scope:
            async with serve_relay(channels) as relay:
                channels.relay = relay
                return await job(relay.endpoint, context)
        return None  # cancelled from asyncio, which has raised CancelledError already

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def main() -> None:
        try:
            result, error = trio.run(serve_and_run), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass

    threading.Thread(target=main, name="psp_cdp-relay", daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        if tokens:
            tokens[0].run_sync_soon(scope.cancel)
        raise
    finally:
        await channels.aclose()


# -- sync Playwright ---------------------------------------------------------------


class PlaywrightSession(SyncBridgeSession):
    """A psp_cdp session for pages of the sync Playwright API: ``capture([page])``, ``restore(page)``.

    A capture takes the page's browser context (every tab); a restore writes into the
    context of the page it is given.
    """

    def _run(self, page: Any, job: Job[T]) -> T:
        impl = _check_page(page)
        run = getattr(page, "_sync", None)
        if run is None:
            raise UsageError("PlaywrightAdapter takes pages of the sync API; use AsyncPlaywrightAdapter with async pages")
        return run(_over_relay(impl, job))  # type: ignore[no-any-return]


class PlaywrightAdapter(Adapter):
    """psp_cdp sessions for pages of the sync Playwright API."""

    def create_session(
        self,
        page: Any,
        *,
        name: str,
        storage: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PlaywrightSession:
        """The session ``name`` (made if it does not exist) bound to ``page``, for :meth:`PlaywrightSession.capture`."""
        _check_page(page)
        return PlaywrightSession(self, *self._made(name, storage, description, tags), page)

    def load_session(self, ref: str, *, storage: str | None = None) -> PlaywrightSession:
        """The stored session ``ref`` (an id or a name), for :meth:`PlaywrightSession.restore`."""
        return PlaywrightSession(self, *self._loaded(ref, storage))


# -- async Playwright ----------------------------------------------------------------


class AsyncPlaywrightSession(BridgeSession):
    """A psp_cdp session bound to a page of the async Playwright API."""

    async def capture(
        self, page: Any = None, *, only: list[str] | None = None, skip: list[str] | None = None
    ) -> Captured:
        """Capture the page's browser context (every tab) as the session's next version."""
        page = self._bound(page)
        result = await _over_relay(_check_page(page), self._capture_job(only, skip))
        self.info = result.info
        return result

    async def restore(
        self,
        page: Any,
        *,
        version: int | None = None,
        only: list[str] | None = None,
        skip: list[str] | None = None,
        clean: bool = False,
    ) -> dict[str, Any]:
        """Restore the session (its latest version, or ``version``) into ``page``'s context; the restore summary."""
        return await _over_relay(_check_page(page), self._restore_job(version, only, skip, clean))


class AsyncPlaywrightAdapter(Adapter):
    """psp_cdp sessions for pages of the async Playwright API."""

    async def create_session(
        self,
        page: Any,
        *,
        name: str,
        storage: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> AsyncPlaywrightSession:
        """The session ``name`` (made if it does not exist) bound to ``page``, for :meth:`AsyncPlaywrightSession.capture`."""
        _check_page(page)
        made = await asyncio.to_thread(self._made, name, storage, description, tags)
        return AsyncPlaywrightSession(self, *made, page)

    async def load_session(self, ref: str, *, storage: str | None = None) -> AsyncPlaywrightSession:
        """The stored session ``ref`` (an id or a name), for :meth:`AsyncPlaywrightSession.restore`."""
        return AsyncPlaywrightSession(self, *await asyncio.to_thread(self._loaded, ref, storage))
