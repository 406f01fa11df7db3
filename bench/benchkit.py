"""What the benchmarks share: loopback origins, page helpers over CDP, and figures.

The benchmark scripts run as ``.venv/bin/python bench/NAME.py``, so this module is
imported from the script's own directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trio

from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, open_cdp
from psp_cdp.snapshot.model import BrowserSessionState
from psp_cdp.state.engine import capture_state, restore_state

__all__ = [
    "Origin", "serve_site", "goto", "evaluate", "page_targets", "json_blob", "WORDS", "PlaywrightOverCdp", "stats", "ms",
    "kib", "psp_capture", "restored_in_new_context", "finish_run",
]


@dataclass
class Origin:
    label: str
    host: str
    server: ThreadingHTTPServer

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"


@contextlib.contextmanager
def serve_site(specs: list[tuple[str, str, str]], handler: type[BaseHTTPRequestHandler]) -> Iterator[list[Origin]]:
    """One ThreadingHTTPServer per ``(label, host, bind address)``, each with ``handler`` told its label."""
    origins: list[Origin] = []
    try:
        for label, host, bind in specs:
            labelled = type(f"Handler_{label}", (handler,), {"label": label})
            server = ThreadingHTTPServer((bind, 0), labelled)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"http-{label}", daemon=True).start()
            origins.append(Origin(label, host, server))
        yield origins
    finally:
        for origin in origins:
            origin.server.shutdown()
            origin.server.server_close()


async def goto(session: CdpSession, url: str) -> None:
    with session.listen("Page.loadEventFired") as loaded:
        result = await session.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise RuntimeError(f"cannot open {url}: {result['errorText']}")
        with trio.fail_after(20):
            await loaded.receive()


async def evaluate(session: CdpSession, expression: str) -> Any:
    result = await session.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
    if result.get("exceptionDetails"):
        details = result["exceptionDetails"]
        raise RuntimeError(f"page script failed: {details.get('exception', {}).get('description') or details}")
    return result["result"].get("value")


async def page_targets(conn: CdpConnection, context_id: str | None) -> list[dict[str, Any]]:
    infos = (await conn.send("Target.getTargets"))["targetInfos"]
    default = (await conn.send("Target.getBrowserContexts")).get("defaultBrowserContextId")
    want = context_id or default
    return [t for t in infos if t["type"] == "page" and t.get("browserContextId") == want]


#: Words of the text the benchmarks generate, non-ASCII included.
WORDS = "alpha beta gamma delta inbox thread message draft label folder user item price cart token cache " \
        "settings theme layout locale café naïve 東京 Ünïcødé 🙂".split()


def json_blob(rng: random.Random, size: int) -> str:
    """About ``size`` characters of a JSON array of records: what a page's cached API answers look like."""
    out, total = [], 0
    while total < size:
        record = {"id": rng.randrange(10**9), "name": " ".join(rng.choices(WORDS, k=rng.randint(1, 6))),
                  "ts": 1_700_000_000_000 + rng.randrange(10**10), "ok": rng.random() < 0.5}
        text = json.dumps(record, ensure_ascii=False)
        out.append(text)
        total += len(text) + 1
    return ("[" + ",".join(out) + "]")[: max(size, 2)]


class PlaywrightOverCdp:
    """The peer: Playwright's sync API attached to the same browser with ``connect_over_cdp``."""

    #: Whether ``capture`` asks ``storage_state`` for IndexedDB too.
    indexed_db = False

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._manager = sync_playwright()
        self.pw = self._manager.start()
        self.browser: Any = None

    def connect(self, endpoint: str) -> float:
        t0 = time.perf_counter()
        self.browser = self.pw.chromium.connect_over_cdp(endpoint)
        return time.perf_counter() - t0

    def learn_origins(self) -> None:
        """Reload every tab of the default context (untimed), so that Playwright has seen their origins.

        storage_state() reads the storage of origins Playwright watched a document commit
        in; tabs that were already open when connect_over_cdp attached do not count. A
        reload keeps the history, the sessionStorage and the cookies as they were.
        """
        for page in self.browser.contexts[0].pages:
            if page.url.startswith("http"):
                page.reload(wait_until="load")

    def capture(self) -> tuple[dict[str, Any], float]:
        """``storage_state()`` of the default context, and the seconds it took."""
        context = self.browser.contexts[0]
        t0 = time.perf_counter()
        state = context.storage_state(indexed_db=True) if self.indexed_db else context.storage_state()
        return state, time.perf_counter() - t0

    def disconnect(self) -> None:
        if self.browser is not None:
            browser, self.browser = self.browser, None
            with contextlib.suppress(Exception):
                browser.close()  # over CDP: disconnects; the browser keeps running

    def stop(self) -> None:
        self.disconnect()
        with contextlib.suppress(Exception):
            self._manager.__exit__(None, None, None)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.95 * len(ordered)))  # nearest rank: the max for fewer than 20 samples
    return {"median": statistics.median(ordered), "min": ordered[0], "p95": ordered[rank - 1], "n": len(ordered)}


def ms(value: float) -> str:
    return f"{value * 1000:,.1f}"


def kib(n: int) -> str:
    return f"{n:,} B ({n / 1024:,.1f} KiB)"


# -- psp_cdp rounds and run records ------------------------------------------------------------


async def psp_capture(endpoint: str, timeout: float) -> tuple[BrowserSessionState, float, float]:
    """``capture_state`` of the browser's default context: the state, seconds to connect, seconds to capture."""
    t0 = time.perf_counter()
    async with open_cdp(endpoint) as conn:
        t1 = time.perf_counter()
        with trio.fail_after(timeout):
            state = await capture_state(conn)
        t2 = time.perf_counter()
    return state, t1 - t0, t2 - t1


@contextlib.asynccontextmanager
async def restored_in_new_context(
    endpoint: str, state: BrowserSessionState, timeout: float
) -> AsyncIterator[tuple[CdpConnection, str, dict[str, Any]]]:
    """``restore_state(context="new")``: the connection, the new context and the figures so far (``restore``
    seconds, ``report``); the context is disposed of after the block (``dispose`` seconds), even on failure."""
    out: dict[str, Any] = {}
    async with open_cdp(endpoint) as conn:
        context_id = None
        try:
            t0 = time.perf_counter()
            with trio.fail_after(timeout):
                report = await restore_state(conn, state, context="new")
            out["restore"] = time.perf_counter() - t0
            context_id = report.context_id
            out["report"] = report.as_dict()
            yield conn, context_id, out
        finally:
            if context_id is None:  # restore failed after creating a context: find it
                contexts = (await conn.send("Target.getBrowserContexts")).get("browserContextIds", [])
                context_id = contexts[-1] if contexts else None
            if context_id:
                with trio.CancelScope(shield=True):
                    t0 = time.perf_counter()
                    await conn.send("Target.disposeBrowserContext", {"browserContextId": context_id})
                    out["dispose"] = time.perf_counter() - t0


def finish_run(
    results: dict[str, Any],
    started: float,
    json_path: str | None,
    *,
    samples: dict[str, list[float]] | None = None,
    browser: LaunchedBrowser | None = None,
    failures: list[str] | None = None,
) -> None:
    """Complete ``results`` (samples and their stats, wall time, load average, whether the browser survived,
    the first failure) and write them to ``json_path`` when given; also when the run failed."""
    if samples is not None:
        results["samples"] = dict(samples)
        results["stats"] = {k: stats(v) for k, v in samples.items() if v}
    results["wall_seconds"] = time.perf_counter() - started
    results["loadavg_end"] = os.getloadavg()
    if browser is not None:
        results["browser_alive_at_end"] = browser.alive()
    if failures:
        results["error"] = failures[0]
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2, default=str)

