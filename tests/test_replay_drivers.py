"""One form flow driven three ways, recorded with ``psp record``, replayed with the site down.

The flow is the two pages of tests/site.py's ``/flow``: typing a name, a select, a
checkbox, a textarea, a file input, a click that sends a fetch() POST whose answer changes
the page and writes localStorage and a cookie, the link to page two, a comment that
writes sessionStorage. It is driven by Playwright's high-level API (``press_sequentially``,
``select_option``, ``check``, ``fill``, ``set_input_files``, ``mouse.wheel``, ``click``), by
Selenium (``send_keys``, ``Select``, ``click``, on its own chromedriver-started Chromium of
another window size) and by CDP Input events as a person would make them. ``psp record``
records each from outside, as a user would run it; the site is stopped; ``psp replay
--network mock --strict`` replays into a fresh context of the second shared Chromium. Each
replay must exit 0 and print ``ended as recorded``, and the page, its storage and the
answer it got must equal the recorded run's (the order number too: a live site would have
given the next one).

Rules: loopback only; the recorder and the player run as ``psp`` processes; Playwright
and Selenium run in a thread of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from psp_cdp.cdp import CdpConnection

from .helpers import browser_context, evaluate, wait_until
from .site import Site
from .test_cli import PSP
from .test_record import OUTCOME, User, only_page

pytestmark = pytest.mark.time_limit(120)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PICTURE = {"name": "photo.txt", "mimeType": "text/plain", "buffer": "pixels \u00e9\n".encode()}


@contextmanager
def psp_record(endpoint: str, store: str, context: str | None = None) -> Iterator[dict[str, Any]]:
    """``psp record`` on ``endpoint`` while the block runs; stopped with SIGINT; its output lands in the dict."""
    command = [PSP, "record", "--cdp", endpoint, "--name", "flow", "--store", store]
    if context:
        command += ["--context", context]
    recorder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}
    try:
        first = recorder.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("recording flow"), first + recorder.stderr.read()  # type: ignore[union-attr]
        yield result
        recorder.send_signal(signal.SIGINT)
        result["out"], result["err"] = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    assert recorder.returncode == 0, result.get("err")


def psp_replay(endpoint: str, context: str, store: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PSP, "replay", "flow", "--cdp", endpoint, "--context", context, "--network", "mock", "--strict",
         "--store", store, *extra],
        capture_output=True, text=True, timeout=90,
    )


async def replay_and_compare(cdp_b: CdpConnection, endpoint_b: str, site: Site, store: str, recorded: dict[str, Any]) -> str:
    """Stop the site, replay into a fresh context of the second browser; its output. Asserts the outcome."""
    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            done = await trio.to_thread.run_sync(psp_replay, endpoint_b, target.id, store)
            assert done.returncode == 0, done.stdout + done.stderr
            page = await only_page(cdp_b, target.id)
            replayed = json.loads(await evaluate(page, OUTCOME))
            replayed["order"] = {c["name"]: c["value"] for c in await target.cookies()}.get("order")
    finally:
        site.start()
    lines = done.stdout.splitlines()
    assert "ended as recorded" in lines, done.stdout
    assert replayed == recorded, done.stdout
    assert not any(" failed: " in line or "unmatched:" in line for line in lines), done.stdout
    return done.stdout


def expected_summary(outcome: dict[str, Any]) -> None:
    assert outcome["url"] == "/flow/done"
    assert outcome["summary"] == "Hello Ann Lee (pro, order %s)" % outcome["order"]
    assert outcome["saved"] == "great" and outcome["comment"] == "great"
    answer = json.loads(outcome["answer"])
    assert answer["terms"] is True and answer["notes"] == "two\nlines"
    assert answer["file"] == {"name": "photo.txt", "type": "text/plain", "text": "pixels \u00e9\n"}


def in_thread(function: Callable[[], Any]) -> Any:
    return trio.to_thread.run_sync(function)


# -- Playwright's own API ---------------------------------------------------------------------


def _playwright_flow(endpoint: str, site: Site, store: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.connect_over_cdp(endpoint)
        context = browser.new_context()
        page = context.new_page()
        page.goto(site.url(path="/flow"))
        context_id = context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        with psp_record(endpoint, store, context_id):
            page.locator("#name").press_sequentially("Ann Lee")
            page.select_option("#plan", "pro")
            page.check("#terms")
            page.fill("#notes", "two\nlines")
            page.set_input_files("#avatar", files=[PICTURE])
            page.mouse.wheel(0, 120)
            page.click("#send")
            page.wait_for_function("document.querySelector('#answer').textContent !== ''")
            page.click("#next")
            page.wait_for_url("**/flow/done")
            page.wait_for_load_state()
            page.fill("#comment", "great")
            page.keyboard.press("Tab")
            page.wait_for_timeout(200)
        outcome = json.loads(page.evaluate(OUTCOME))
        outcome["order"] = {c["name"]: c["value"] for c in context.cookies()}.get("order")
        context.close()
        browser.close()
    return outcome


async def test_a_flow_driven_by_playwrights_api_replays_as_recorded(
    cdp_b: CdpConnection, chromium: Any, chromium_b: Any, site: Site, tmp_path: Any
) -> None:
    store = str(tmp_path / "store")
    recorded = await in_thread(lambda: _playwright_flow(chromium.endpoint, site, store))
    expected_summary(recorded)
    await replay_and_compare(cdp_b, chromium_b.endpoint, site, store, recorded)
