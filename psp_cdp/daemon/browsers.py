"""The attach manager: browsers the daemon holds a DevTools connection to.

Each attached browser has one :class:`~psp_cdp.cdp.CdpConnection`, held open by its
own task in the daemon's nursery. Captures and restores on one browser take turns
(:attr:`Browser.lock`). A browser whose connection is lost stays listed with
``attached: false`` and the reason; commands for it fail with 502. Detaching waits for
the operation in flight, closes the connection, and leaves the browser as it was.

Not yet (a later part of issue 5): re-attaching with backoff when a browser restarts at
the same endpoint.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, open_cdp
from ..errors import BrowserClosedError
from .app import ApiError

__all__ = ["Browser", "Browsers"]

log = logging.getLogger("psp_cdp.daemon")


@dataclass
class Browser:
    id: str
    cdp: str
    product: str = ""
    connection: CdpConnection | None = None
    reason: str | None = None
    #: Captures and restores on this browser take turns.
    lock: trio.Lock = field(default_factory=trio.Lock)
    _scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    _done: trio.Event = field(default_factory=trio.Event)

    @property
    def attached(self) -> bool:
        return self.connection is not None and not self.connection.closed and self.reason is None

    def require(self) -> CdpConnection:
        """The connection; 502 if the browser is no longer attached."""
        if not self.attached or self.connection is None:
            why = self.reason or (self.connection.closed_reason if self.connection else None) or "not connected"
            raise ApiError(502, f"browser {self.id} ({self.cdp}) is not attached: {why}")
        return self.connection

    def as_dict(self) -> dict[str, Any]:
        reason = self.reason
        if reason is None and self.connection is not None and self.connection.closed:
            reason = self.connection.closed_reason
        return {"id": self.id, "cdp": self.cdp, "browser": self.product, "attached": self.attached, "reason": reason}


class Browsers:
    """Every browser of the daemon, by id."""

    def __init__(self, nursery: trio.Nursery, *, timeout: float = 10.0) -> None:
        self._nursery = nursery
        self._browsers: dict[str, Browser] = {}
        self.timeout = timeout

    def list(self) -> list[Browser]:
        return list(self._browsers.values())

    def get(self, browser_id: str) -> Browser:
        browser = self._browsers.get(browser_id)
        if browser is None:
            raise ApiError(404, f"no browser {browser_id!r} (attach one with POST /v1/browsers)")
        return browser

    async def attach(self, endpoint: str) -> Browser:
        """Connect to the browser at ``endpoint``; its connection lives until :meth:`detach`."""
        browser = Browser(secrets.token_hex(8), endpoint)
        await self._nursery.start(self._hold, browser)
        self._browsers[browser.id] = browser
        log.info("attached browser %s at %s (%s)", browser.id, endpoint, browser.product)
        return browser

    async def detach(self, browser_id: str) -> None:
        """Close the connection once the operation in flight is done; the browser keeps running."""
        browser = self.get(browser_id)
        del self._browsers[browser_id]
        async with browser.lock:
            browser._scope.cancel()
        await browser._done.wait()
        log.info("detached browser %s", browser_id)

    async def _hold(self, browser: Browser, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        try:
            async with open_cdp(browser.cdp, timeout=self.timeout) as connection:
                version = await connection.send("Browser.getVersion")
                browser.product = str(version.get("product", ""))
                browser.connection = connection
                task_status.started()
                started = True
                with browser._scope, connection.listen("psp.connection-closed") as closed:
                    try:
                        await closed.receive()  # no such event: returns only when the connection ends
                    except BrowserClosedError as exc:
                        browser.reason = str(exc)
                        log.warning("browser %s at %s is gone: %s", browser.id, browser.cdp, exc)
        except Exception as exc:
            if not started:
                raise
            # Whatever ends a connection after the attach, the daemon keeps serving.
            browser.reason = browser.reason or f"connection lost: {exc}"
            log.warning("browser %s at %s: %s", browser.id, browser.cdp, exc)
        finally:
            if browser.reason is None and not browser._scope.cancel_called:
                browser.reason = "connection closed"
            elif browser.reason is None:
                browser.reason = "detached"
            browser._done.set()
