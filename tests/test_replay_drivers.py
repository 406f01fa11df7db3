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
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from psp_cdp.cdp import CdpConnection, CdpSession

from .helpers import browser_context, evaluate, wait_until
from .site import Site
from .test_cli import PSP
from .test_record import OUTCOME, User, only_page

pytestmark = pytest.mark.time_limit(120)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PICTURE = {"name": "photo.txt", "mimeType": "text/plain", "buffer": "pixels \u00e9\n".encode()}


class PspRecord:
    """``psp record`` run as a user would: :meth:`start` once it says it records, :meth:`stop` with SIGINT."""

    def __init__(self, endpoint: str, store: str, context: str | None = None) -> None:
        self.command = [PSP, "record", "--cdp", endpoint, "--name", "flow", "--store", store]
        if context:
            self.command += ["--context", context]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.process.stdout.readline()  # type: ignore[union-attr]
        if not first.startswith("recording flow"):
            self.process.kill()
            raise AssertionError(first + self.process.communicate()[1])

    def stop(self) -> str:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            out, err = self.process.communicate(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        assert self.process.returncode == 0, err
        return out

    def __enter__(self) -> PspRecord:
        self.start()
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if kind is None:
            self.stop()
        elif self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
        with PspRecord(endpoint, store, context_id):
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


# -- Selenium ---------------------------------------------------------------------------------


def _selenium_flow(site: Site, store: str, picture: str) -> dict[str, Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="psp-selenium-")
    for arg in ["--headless", *ARGS, "--window-size=1280,900", f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(site.url(path="/flow"))
        endpoint = "http://" + driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with PspRecord(endpoint, store):
            driver.find_element(By.ID, "name").send_keys("Ann Lee")
            Select(driver.find_element(By.ID, "plan")).select_by_value("pro")
            driver.find_element(By.ID, "terms").click()
            driver.find_element(By.ID, "notes").send_keys("two\nlines")
            driver.find_element(By.ID, "avatar").send_keys(picture)
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "answer").text != "")
            driver.find_element(By.ID, "next").click()
            WebDriverWait(driver, 10).until(
                lambda d: d.current_url.endswith("/flow/done") and d.execute_script("return document.readyState") == "complete")
            comment = driver.find_element(By.ID, "comment")
            comment.send_keys("great")
            comment.send_keys(Keys.TAB)
            time.sleep(0.2)
        outcome = json.loads(driver.execute_script("return " + OUTCOME))
        outcome["order"] = (driver.get_cookie("order") or {}).get("value")
    finally:
        driver.quit()
    return outcome


async def test_a_flow_driven_by_selenium_in_another_window_size_replays_as_recorded(
    cdp_b: CdpConnection, chromium_b: Any, site: Site, tmp_path: Any
) -> None:
    store = str(tmp_path / "store")
    picture = tmp_path / "photo.txt"
    picture.write_bytes(PICTURE["buffer"])
    recorded = await in_thread(lambda: _selenium_flow(site, store, str(picture)))
    expected_summary(recorded)
    await replay_and_compare(cdp_b, chromium_b.endpoint, site, store, recorded)


# -- CDP Input, as a person makes it ----------------------------------------------------------


async def _choose_file(tab: CdpSession, user: User, selector: str, path: str) -> None:
    """Click a file input and pick ``path`` in the file chooser it opens, as a person does."""
    await tab.send("Page.setInterceptFileChooserDialog", {"enabled": True})
    with tab.listen("Page.fileChooserOpened") as chooser:
        await user.click(selector)
        with trio.fail_after(10):
            opened = await chooser.receive()
    await tab.send("DOM.setFileInputFiles", {"files": [path], "backendNodeId": opened.params["backendNodeId"]})
    await tab.send("Page.setInterceptFileChooserDialog", {"enabled": False})


async def test_a_flow_driven_by_a_person_through_cdp_input_replays_as_recorded(
    cdp: CdpConnection, cdp_b: CdpConnection, chromium: Any, chromium_b: Any, site: Site, tmp_path: Any
) -> None:
    store = str(tmp_path / "store")
    picture = tmp_path / "photo.txt"
    picture.write_bytes(PICTURE["buffer"])
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        user = User(tab)
        recorder = PspRecord(chromium.endpoint, store, context.id)
        await in_thread(recorder.start)
        try:
            await user.click("#name")
            await user.type("Ann Lee")
            await user.click("#plan")
            await user.press("ArrowDown")
            await user.click("#terms")
            await user.click("#notes")
            await user.type("two\nlines")
            await _choose_file(tab, user, "#avatar", str(picture))
            await user.click("#send")
            await wait_until(lambda: evaluate(tab, "document.querySelector('#answer').textContent !== ''"))
            await user.click("#next")
            await wait_until(lambda: evaluate(tab, "location.pathname === '/flow/done' && document.readyState === 'complete'"))
            await user.click("#comment")
            await user.type("great")
            await user.press("Tab")
            await trio.sleep(0.2)
        finally:
            await in_thread(recorder.stop)
        recorded = json.loads(await evaluate(tab, OUTCOME))
        recorded["order"] = {c["name"]: c["value"] for c in await context.cookies()}.get("order")
    expected_summary(recorded)
    await replay_and_compare(cdp_b, chromium_b.endpoint, site, store, recorded)
