"""Save and restore the session of a Chrome or Chromium that Selenium WebDriver drives.

::

    from psp_cdp.selenium import SeleniumAdapter
    session = SeleniumAdapter().create_session(driver, name="login", storage="local")
    session.capture()
    SeleniumAdapter().load_session(session.id).restore(other_driver)

chromedriver starts the browser with a debugging port and names it in the session's
capabilities (``goog:chromeOptions.debuggerAddress``); on a Selenium Grid the node's
CDP endpoint is ``se:cdp``. psp_cdp works on that endpoint directly, through the daemon
when one runs on the local socket and serves the same store, in this process otherwise.
A capture takes the browser's default context, every window; a restore writes into it
and loads the first restored tab in the driver's empty start window.

``storage`` is ``"local"`` (the default store, which honours ``PSP_STORE``), ``"redis"``
(``PSP_REDIS_URL``, else a Redis server on localhost) or any STORE the CLI takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .client.bridge import Adapter, Job, SyncBridgeSession
from .client.runner import Captured, run_sync
from .errors import UsageError

__all__ = ["Captured", "SeleniumAdapter", "SeleniumSession", "cdp_endpoint"]

T = TypeVar("T")


def cdp_endpoint(driver: Any) -> str:
    """The CDP endpoint of a WebDriver session's browser, from its capabilities."""
    capabilities = getattr(driver, "capabilities", None)
    if not isinstance(capabilities, Mapping):
        raise UsageError(f"expected a Selenium WebDriver, got {type(driver).__name__}")
    options = capabilities.get("goog:chromeOptions") or capabilities.get("ms:edgeOptions") or {}
    address = options.get("debuggerAddress") if isinstance(options, Mapping) else None
    if address:
        return address if "://" in address else f"http://{address}"
    grid = capabilities.get("se:cdp")
    if isinstance(grid, str) and grid:
        return grid
    browser = capabilities.get("browserName", "this browser")
    raise UsageError(
        f"the WebDriver session of {browser} names no CDP endpoint (goog:chromeOptions.debuggerAddress or se:cdp); "
        "psp_cdp needs Chrome or Chromium"
    )


class SeleniumSession(SyncBridgeSession):
    """A psp_cdp session for WebDriver sessions: ``capture([driver])``, ``restore(driver)``.

    A capture takes the browser's default context (every window); a restore writes into it.
    """

    def _run(self, driver: Any, job: Job[T]) -> T:
        return run_sync(job, cdp_endpoint(driver), None)


class SeleniumAdapter(Adapter):
    """psp_cdp sessions for Chrome and Chromium WebDriver sessions."""

    def create_session(
        self,
        driver: Any,
        *,
        name: str,
        storage: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SeleniumSession:
        """The session ``name`` (made if it does not exist) bound to ``driver``, for :meth:`SeleniumSession.capture`."""
        cdp_endpoint(driver)
        return SeleniumSession(self, *self._made(name, storage, description, tags), driver)

    def load_session(self, ref: str, *, storage: str | None = None) -> SeleniumSession:
        """The stored session ``ref`` (an id or a name), for :meth:`SeleniumSession.restore`."""
        return SeleniumSession(self, *self._loaded(ref, storage))
