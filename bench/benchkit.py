"""What the benchmarks share: loopback origins, page helpers over CDP, and figures.

The benchmark scripts run as ``.venv/bin/python bench/NAME.py``, so this module is
imported from the script's own directory.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trio

from psp_cdp.cdp import CdpConnection, CdpSession

__all__ = ["Origin", "serve_site", "goto", "evaluate", "page_targets", "json_blob", "WORDS", "PlaywrightOverCdp", "stats", "ms", "kib"]


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
