"""Helpers for tests that drive a real Chromium: browser contexts, pages, navigation, script.

They only use the raw :meth:`CdpSession.send` and method-name event subscriptions, so
they keep working when the typed ``mycdp`` wrappers drift from the browser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import trio

from psp_cdp.cdp import CdpConnection, CdpSession, RawEvent
from psp_cdp.errors import BrowserClosedError, ProtocolError
from psp_cdp.state.pages import Tab

if TYPE_CHECKING:
    from .site import Site

__all__ = [
    "LOAD_TIMEOUT",
    "BrowserContext",
    "JavaScriptError",
    "NavigationError",
    "browser_context",
    "close_page",
    "create_browser_context",
    "dispose_browser_context",
    "evaluate",
    "expect_load",
    "frame_sessions",
    "frame_with_key",
    "frames_url",
    "get_cookies",
    "navigate",
    "open_page",
    "page_json",
    "wait_until",
]

#: Seconds a navigation may take before a helper gives up.
LOAD_TIMEOUT = 15.0


class NavigationError(Exception):
    """``Page.navigate`` answered with an error (``net::ERR_CONNECTION_REFUSED`` and the like)."""

    def __init__(self, url: str, error_text: str) -> None:
        super().__init__(f"navigating to {url}: {error_text}")
        self.url = url
        self.error_text = error_text


class JavaScriptError(Exception):
    """A script run by :func:`evaluate` threw."""


@dataclass(frozen=True, slots=True)
class BrowserContext:
    """A browser context (an incognito-like profile) on a connection."""

    connection: CdpConnection
    id: str

    async def new_page(self, url: str = "about:blank", *, timeout: float = LOAD_TIMEOUT) -> CdpSession:
        """A new tab in this context, attached, with the Page domain enabled, loaded at ``url``."""
        return await open_page(self.connection, self.id, url, timeout=timeout)

    async def cookies(self) -> list[dict[str, Any]]:
        """Every cookie of this context, as ``Storage.getCookies`` returns them."""
        return await get_cookies(self.connection, self.id)


async def create_browser_context(connection: CdpConnection) -> str:
    result = await connection.send("Target.createBrowserContext", {"disposeOnDetach": True})
    return str(result["browserContextId"])


async def dispose_browser_context(connection: CdpConnection, context_id: str) -> None:
    """Dispose of a context and its tabs; quietly does nothing if it or the connection is gone."""
    with trio.CancelScope(shield=True), trio.move_on_after(10):
        try:
            await connection.send("Target.disposeBrowserContext", {"browserContextId": context_id})
        except (ProtocolError, BrowserClosedError):
            pass


@asynccontextmanager
async def browser_context(connection: CdpConnection) -> AsyncIterator[BrowserContext]:
    """A fresh browser context for the block, disposed of afterwards."""
    context_id = await create_browser_context(connection)
    try:
        yield BrowserContext(connection, context_id)
    finally:
        await dispose_browser_context(connection, context_id)


async def open_page(
    connection: CdpConnection,
    context_id: str | None = None,
    url: str = "about:blank",
    *,
    timeout: float = LOAD_TIMEOUT,
) -> CdpSession:
    """A new tab (in ``context_id``, or the default context), attached and loaded at ``url``."""
    params: dict[str, Any] = {"url": "about:blank"}
    if context_id is not None:
        params["browserContextId"] = context_id
    target = await connection.send("Target.createTarget", params)
    session = await connection.attach(target["targetId"])
    await session.send("Page.enable")
    if url != "about:blank":
        await navigate(session, url, timeout=timeout)
    return session


async def close_page(session: CdpSession) -> None:
    """Close the tab a session is attached to."""
    if session.target_id is None:
        raise ValueError("the session is not attached to a target")
    await session.connection.send("Target.closeTarget", {"targetId": session.target_id})


def _is_main_frame_commit(event: Any, loader_id: str | None) -> bool:
    if not isinstance(event, RawEvent) or event.method != "Page.frameNavigated":
        return False
    frame = event.params.get("frame", {})
    if frame.get("parentId"):
        return False
    return loader_id is None or frame.get("loaderId") == loader_id


async def navigate(session: CdpSession, url: str, *, timeout: float = LOAD_TIMEOUT) -> str:
    """Navigate the main frame to ``url`` and wait for its load event; the new loader id.

    Needs ``Page.enable`` on the session (:func:`open_page` does it). An error page
    (refused connection, bad certificate) raises :class:`NavigationError`; an HTTP error
    status does not, as for a user.
    """
    with trio.fail_after(timeout):
        with session.listen("Page.frameNavigated", "Page.loadEventFired") as events:
            result = await session.send("Page.navigate", {"url": url})
            if result.get("errorText"):
                raise NavigationError(url, result["errorText"])
            loader_id = result.get("loaderId")
            if loader_id is None:  # same-document navigation: no new document, no load event
                return ""
            await events.wait(lambda event: _is_main_frame_commit(event, loader_id))
            await events.wait(lambda event: event.method == "Page.loadEventFired")
            return str(loader_id)


@asynccontextmanager
async def expect_load(session: CdpSession, *, timeout: float = LOAD_TIMEOUT) -> AsyncIterator[None]:
    """Wait, after the block, for the main frame to commit a new document and load it.

    For navigations the page starts itself (a form submission, a click, ``location = ...``)::

        async with expect_load(page):
            await evaluate(page, "document.forms[0].submit()")
    """
    with session.listen("Page.frameNavigated", "Page.loadEventFired") as events:
        yield
        with trio.fail_after(timeout):
            await events.wait(lambda event: _is_main_frame_commit(event, None))
            await events.wait(lambda event: event.method == "Page.loadEventFired")


async def evaluate(session: CdpSession, expression: str, *, await_promise: bool = False) -> Any:
    """The JSON value of ``expression`` in the page's main world; :class:`JavaScriptError` if it throws."""
    result = await session.send(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
    )
    details = result.get("exceptionDetails")
    if details is not None:
        description = details.get("exception", {}).get("description") or details.get("text", "")
        raise JavaScriptError(f"{expression!r} threw: {description}")
    return result.get("result", {}).get("value")


async def get_cookies(connection: CdpConnection, context_id: str | None = None) -> list[dict[str, Any]]:
    """The cookies of a browser context (the default one when ``context_id`` is None)."""
    params = {"browserContextId": context_id} if context_id is not None else {}
    result = await connection.send("Storage.getCookies", params)
    cookies: list[dict[str, Any]] = result.get("cookies", [])
    return cookies


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; :class:`trio.TooSlowError` after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(interval)


def page_json(body: str | None) -> Any:
    """Parse a JSON document that Chromium rendered as a page (``document.body.innerText``)."""
    if body is None:
        raise ValueError("no page body")
    return json.loads(body)


def frames_url(site: Site, host: str, src: str) -> str:
    """A page of the test site on ``host`` that embeds an iframe of ``src``."""
    return site.url(host, f"/frames?src={quote(src, safe='')}")


@asynccontextmanager
async def frame_sessions(connection: CdpConnection, target_id: str) -> AsyncIterator[list[Any]]:
    """The frames of a tab, each with the session of its out-of-process iframe, main frame first."""
    tab = Tab(target_id, "", "", await connection.attach(target_id))
    try:
        await tab.load_frames()
        yield tab.frames
    finally:
        await tab.release()


async def frame_with_key(frames: list[Any], key: str) -> Any:
    """The frame among ``frames`` whose storage key is ``key``."""
    for frame in frames:
        if await frame.storage_key() == key:
            return frame
    raise AssertionError(f"no frame with storage key {key} among {[f.url for f in frames]}")
