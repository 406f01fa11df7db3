"""The attach manager: browsers the daemon holds a DevTools connection to.

Each attached browser has its own task in the daemon's nursery, which holds one
:class:`~psp_cdp.cdp.CdpConnection` to it at a time. Captures and restores on one
browser take turns (:attr:`Browser.lock`).

A browser whose connection is lost (it crashed, was restarted, or its host went
away) stays listed with ``attached: false`` and the reason; commands for it fail with
502 and say so. Its task tries to attach again at the same endpoint, first after
:data:`BACKOFF_MIN` seconds, then after twice as long each time, up to
:data:`BACKOFF_MAX` seconds between attempts, for as long as the browser stays
attached (until ``DELETE /v1/browsers/{id}``). The endpoint is resolved anew each
time (a restarted browser has a new ``/devtools/browser/<id>`` path; a profile
directory's DevToolsActivePort is read again, so even a new port is found); an
endpoint given as a ``ws://host:port/devtools/browser/<id>`` URL falls back to asking
``http://host:port`` for the browser's current URL. ``reconnects`` counts the
successful re-attaches and ``last_error`` keeps the last error seen.

Detaching stops re-attaching, waits for the capture, restore or replay in flight, closes
the connection and leaves the browser as it was.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from ..cdp import CdpConnection, leaf_errors, open_cdp
from ..errors import BrowserClosedError, EndpointError, ProtocolError
from .app import ApiError
from .backoff import Backoff

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "Browser", "Browsers"]

log = logging.getLogger("psp_cdp.daemon")

#: Seconds before the first attempt to attach again once a browser is lost ...
BACKOFF_MIN = 0.2
#: ... doubling after each failed attempt up to this many seconds between attempts.
BACKOFF_MAX = 10.0


@dataclass
class Browser:
    id: str
    cdp: str
    product: str = ""
    connection: CdpConnection | None = None
    #: Why the browser is not attached now (None while it is).
    reason: str | None = None
    #: The last error seen: how the connection was lost, or why the last attempt failed.
    last_error: str | None = None
    #: Successful re-attaches since the first attach.
    reconnects: int = 0
    #: Failed attempts since the connection was lost.
    attempts: int = 0
    attached_at: float = 0.0
    #: When the next attempt to attach again is due (time.time()), while detached.
    retry_at: float | None = None
    #: Captures and restores on this browser take turns.
    lock: trio.Lock = field(default_factory=trio.Lock)
    #: The tenant of the API key that attached it (``None``: attached over the Unix socket).
    tenant: str | None = None
    _scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    _done: trio.Event = field(default_factory=trio.Event)

    @property
    def attached(self) -> bool:
        return self.connection is not None and not self.connection.closed and self.reason is None

    def require(self) -> CdpConnection:
        """The connection; 502 if the browser is not attached (now)."""
        if not self.attached or self.connection is None:
            why = self.reason or (self.connection.closed_reason if self.connection else None) or "not connected"
            retry = ""
            if self.retry_at is not None:
                retry = f"; attaching again (attempt {self.attempts + 1} in {max(0.0, self.retry_at - time.time()):.1f} s)"
            raise ApiError(502, f"browser {self.id} ({self.cdp}) is not attached: {why}{retry}")
        return self.connection

    def as_dict(self) -> dict[str, Any]:
        reason = self.reason
        if reason is None and self.connection is not None and self.connection.closed:
            reason = self.connection.closed_reason
        return {
            "id": self.id,
            "cdp": self.cdp,
            "browser": self.product,
            "attached": self.attached,
            "reason": reason,
            "last_error": self.last_error,
            "reconnects": self.reconnects,
            "attempts": self.attempts,
            "attached_at": self.attached_at,
            "retry_at": self.retry_at,
        }


def _fallback(endpoint: str) -> str | None:
    """``http://host:port`` for a ``ws://host:port/devtools/browser/<id>`` endpoint (its id changes on restart)."""
    if not endpoint.startswith(("ws://", "wss://")):
        return None
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return None
    if not parts.path.startswith("/devtools/browser/") or not parts.netloc:
        return None
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


class Browsers:
    """Every browser of the daemon, by id."""

    def __init__(self, nursery: trio.Nursery, *, timeout: float = 10.0,
                 backoff: tuple[float, float] = (BACKOFF_MIN, BACKOFF_MAX)) -> None:
        self._nursery = nursery
        self._browsers: dict[str, Browser] = {}
        self._leaving: dict[str, Browser] = {}
        self.timeout = timeout
        self.backoff = backoff
        #: Called (with the browser) before a browser is detached: stops what uses it.
        self.before_detach: list[Any] = []

    def list(self) -> list[Browser]:
        return list(self._browsers.values())

    def get(self, browser_id: str) -> Browser:
        browser = self._browsers.get(browser_id)
        if browser is None:
            raise ApiError(404, f"no browser {browser_id!r} (attach one with POST /v1/browsers)")
        return browser

    def by_connection(self, connection: CdpConnection) -> Browser | None:
        for browser in (*self._browsers.values(), *self._leaving.values()):
            if browser.connection is connection:
                return browser
        return None

    async def attach(self, endpoint: str, *, tenant: str | None = None) -> Browser:
        """Connect to the browser at ``endpoint`` (502 if that fails); held until :meth:`detach`."""
        browser = Browser(secrets.token_hex(8), endpoint, tenant=tenant)
        await self._nursery.start(self._hold, browser)
        self._browsers[browser.id] = browser
        log.info("attached browser %s at %s (%s)", browser.id, endpoint, browser.product)
        return browser

    async def detach(self, browser_id: str) -> None:
        """Stop re-attaching; close the connection once the operation in flight is done; the browser keeps running."""
        browser = self.get(browser_id)
        del self._browsers[browser_id]  # no new request finds it
        self._leaving[browser_id] = browser
        try:
            for hook in list(self.before_detach):
                await hook(browser)
        finally:
            with trio.CancelScope(shield=True):  # never left half detached (listed nowhere, still attached)
                async with browser.lock:
                    browser._scope.cancel()
                await browser._done.wait()
                del self._leaving[browser_id]
        log.info("detached browser %s", browser_id)

    async def _hold(self, browser: Browser, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        waits = Backoff(*self.backoff)
        try:
            with browser._scope:
                while True:
                    lost = await self._hold_once(browser, started, task_status)
                    started = True
                    browser.last_error = browser.reason = lost
                    if browser.attempts == 0:  # it was attached: lost just now
                        waits.reset()
                        log.warning("browser %s at %s: %s; attaching again", browser.id, browser.cdp, lost)
                    else:
                        log.debug("browser %s at %s: attempt %d: %s", browser.id, browser.cdp, browser.attempts, lost)
                    delay = waits.next()
                    browser.retry_at = time.time() + delay
                    await trio.sleep(delay)
                    browser.retry_at = None
        finally:
            browser.retry_at = None
            if browser._scope.cancel_called:
                browser.reason = "detached"
            elif browser.reason is None:
                browser.reason = "connection closed"
            browser._done.set()

    async def _hold_once(self, browser: Browser, started: bool, task_status: trio.TaskStatus[None]) -> str:
        """One connection, from attaching to losing it; why it ended. The first attach's errors are raised."""
        candidates = [browser.cdp]
        fallback = _fallback(browser.cdp)
        if started and fallback is not None:
            candidates.insert(0, fallback)  # the browser's current URL, if it answers there
        failure: Exception | None = None
        for endpoint in candidates:
            attached = False
            try:
                async with open_cdp(endpoint, timeout=self.timeout) as connection:
                    try:
                        with trio.fail_after(self.timeout):
                            version = await connection.send("Browser.getVersion")
                    except (ProtocolError, trio.TooSlowError):
                        raise EndpointError(endpoint, "does not answer as a browser (Browser.getVersion)") from None
                    browser.product = str(version.get("product", ""))
                    browser.connection = connection
                    browser.reason = None
                    browser.attempts = 0
                    browser.attached_at = time.time()
                    attached = True
                    if started:
                        browser.reconnects += 1
                        log.info("browser %s at %s attached again (%s)", browser.id, browser.cdp, browser.product)
                    else:
                        task_status.started()
                    with connection.listen("psp.connection-closed") as closed:
                        try:
                            await closed.receive()  # no such event: returns only when the connection ends
                        except BrowserClosedError as exc:
                            return f"connection lost: {exc}"
                    return "connection closed"
            except Exception as exc:
                if attached:
                    # Whatever ends a connection after the attach, the daemon keeps serving.
                    return f"connection lost: {_message(exc)}"
                failure = exc
        assert failure is not None
        if not started:
            raise failure
        browser.attempts += 1
        return _message(failure)


def _message(error: BaseException) -> str:
    """What went wrong, in words: the first error inside a group."""
    leaves = leaf_errors(error)
    first = leaves[0] if leaves else error
    return str(first) or type(first).__name__
