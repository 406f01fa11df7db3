"""A logged-in browser for agent frameworks that take a CDP URL (browser-use, Skyvern, Stagehand, ...).

Such frameworks attach to a running Chromium by its DevTools endpoint. Hand them a
:class:`PersistentBrowser`: on entry it starts Chromium with a debugging port on
127.0.0.1 (or takes the one at ``cdp=``) and restores the session ``name`` into it when
the session exists; on a clean exit it captures the browser as the session's next
version, so the next run starts where this one ended::

    from psp_cdp.agents import PersistentBrowser

    with PersistentBrowser("shop") as browser:      # or: async with PersistentBrowser("shop") as browser:
        browser.cdp_url     # http://127.0.0.1:PORT    (browser-use: BrowserSession(cdp_url=...);
                            #                           Skyvern: BROWSER_REMOTE_DEBUGGING_URL)
        browser.ws_url      # ws://127.0.0.1:PORT/devtools/browser/ID   (Stagehand: cdpUrl)
        ...                 # the agent logs in, or finds itself logged in already

Capture and restore go through the daemon when one runs on the local socket and serves
the same store, in this process otherwise. A browser it started is closed on exit; one
given by ``cdp=`` is left running. When the block raises, nothing is captured, so a
failed run never overwrites a good session (call :meth:`capture` to save mid-run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .cdp import LaunchedBrowser, launch_chromium, resolve_endpoint
from .client import runner
from .client.runner import Captured, storage_spec
from .errors import SessionNotFoundError

__all__ = ["Captured", "PersistentBrowser"]


class PersistentBrowser:
    """A Chromium whose session is restored on entry and captured on a clean exit.

    ``storage``: ``"local"`` (the default store, which honours ``PSP_STORE``),
    ``"redis"`` (``PSP_REDIS_URL``, else localhost) or any STORE the CLI takes.
    ``cdp``: an endpoint to use instead of starting a browser. ``headless``,
    ``executable``, ``args`` and ``user_data_dir`` shape the browser it starts.
    ``restore`` and ``capture`` turn either step off; ``version`` restores an older one.
    """

    def __init__(
        self,
        name: str,
        *,
        storage: str = "local",
        cdp: str | None = None,
        headless: bool = True,
        executable: str | None = None,
        args: Sequence[str] = (),
        user_data_dir: str | None = None,
        restore: bool = True,
        capture: bool = True,
        version: int | None = None,
        no_daemon: bool = False,
    ) -> None:
        self.name = name
        self.store = storage_spec(storage)
        self.endpoint = cdp
        self.headless = headless
        self.executable = executable
        self.args = tuple(args)
        self.user_data_dir = user_data_dir
        self.restore_on_entry = restore
        self.capture_on_exit = capture
        self.version = version
        self.no_daemon = no_daemon
        self.launched: LaunchedBrowser | None = None
        self.ws_url = ""
        self.restored: dict[str, Any] | None = None  # the restore summary, when the session existed
        self.captured: Captured | None = None  # the last capture

    @property
    def cdp_url(self) -> str:
        """The browser's endpoint as ``http://host:port`` when it has one (else its WebSocket URL)."""
        if self.launched is not None:
            return self.launched.endpoint
        endpoint = self.endpoint or ""
        return endpoint if endpoint.startswith("http") else self.ws_url

    # -- the steps -------------------------------------------------------------------

    def start(self) -> PersistentBrowser:
        """Start (or reach) the browser and restore the session into it; what ``with`` does on entry."""
        if self.endpoint is None:
            self.launched = launch_chromium(
                args=self.args, executable=self.executable, user_data_dir=self.user_data_dir, headless=self.headless
            )
            self.ws_url = self.launched.ws_url
        else:
            self.ws_url = runner.run_sync(resolve_endpoint, self.endpoint)
        try:
            if self.restore_on_entry:
                self._restore()
        except BaseException:
            self.close()
            raise
        return self

    def _restore(self) -> None:
        ref = self.name if self.version is None else f"{self.name}@{self.version}"
        try:
            self.restored = runner.run_sync(
                lambda: runner.restore(self.ws_url, ref, store=self.store, no_daemon=self.no_daemon)
            )
        except SessionNotFoundError:
            self.restored = None  # the first run: nothing to restore yet

    def capture(self) -> Captured:
        """Capture the browser now as the session's next version."""
        self.captured = runner.run_sync(
            lambda: runner.capture(self.ws_url, self.name, store=self.store, no_daemon=self.no_daemon)
        )
        return self.captured

    def close(self) -> None:
        """Close the browser if this object started it."""
        if self.launched is not None:
            self.launched.close()
            self.launched = None

    # -- with / async with ------------------------------------------------------------

    def __enter__(self) -> PersistentBrowser:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            if kind is None and self.capture_on_exit:
                self.capture()
        finally:
            self.close()

    async def __aenter__(self) -> PersistentBrowser:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        await asyncio.to_thread(self.__exit__, kind)

    async def acapture(self) -> Captured:
        """:meth:`capture` for asyncio code."""
        return await asyncio.to_thread(self.capture)
