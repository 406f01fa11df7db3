"""Framework bridges: psp_cdp.playwright (sync and async) and psp_cdp.selenium, driven for real.

Each test logs in on the test site in a browser the framework drives, fills every kind
of storage, captures through the bridge, restores into a fresh browser the same
framework started, and checks there that the site shows the user logged in and that
every value is back. Playwright launches Debian's chromium over its pipe (no debugging
port); Selenium drives it through Debian's chromedriver. One pair of Playwright browsers
serves the module; each test uses fresh contexts.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from psp_cdp.client.runner import storage_spec
from psp_cdp.errors import SessionNotFoundError, UsageError

from .site import Site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

#: Fills localStorage, sessionStorage, IndexedDB (typed values) and CacheStorage on the page's origin.
FILL = """async () => {
    localStorage.setItem('theme', 'dark');
    localStorage.setItem('odd', 'NUL\\u0000 astral \\u{1F600}');
    localStorage.setItem('lone', 'unpaired \\uD800 surrogate');
    sessionStorage.setItem('draft', 'unsent text');
    await new Promise((resolve, reject) => {
        const open = indexedDB.open('app', 2);
        open.onupgradeneeded = () => open.result.createObjectStore('kv');
        open.onsuccess = () => {
            const tx = open.result.transaction('kv', 'readwrite');
            tx.objectStore('kv').put({when: new Date(86400000), tags: new Set(['a', 'b']),
                                      bytes: new Uint8Array([0, 1, 255])}, 'profile');
            tx.oncomplete = () => { open.result.close(); resolve(); };
            tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
    });
    const cache = await caches.open('assets');
    await cache.put('/asset.txt', new Response('cached body', {headers: {'content-type': 'text/plain'}}));
    return true;
}"""

#: Reads back what FILL wrote, as plain JSON.
READ = """async () => {
    const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open('app');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
    });
    const value = await new Promise((resolve, reject) => {
        const get = db.transaction('kv').objectStore('kv').get('profile');
        get.onsuccess = () => resolve(get.result);
        get.onerror = () => reject(get.error);
    });
    const version = db.version;
    db.close();
    const cached = await (await caches.open('assets')).match('/asset.txt');
    return {
        theme: localStorage.getItem('theme'),
        odd: localStorage.getItem('odd'),
        lone: localStorage.getItem('lone') === 'unpaired \\uD800 surrogate',
        draft: sessionStorage.getItem('draft'),
        idb_version: version,
        when: value && value.when instanceof Date ? value.when.getTime() : null,
        tags: value && value.tags instanceof Set ? [...value.tags] : null,
        bytes: value && value.bytes instanceof Uint8Array ? [...value.bytes] : null,
        cached: cached ? await cached.text() : null,
    };
}"""

EXPECTED = {
    "theme": "dark",
    "odd": "NUL\u0000 astral \U0001f600",
    "lone": True,
    "draft": "unsent text",
    "idb_version": 2,
    "when": 86400000,
    "tags": ["a", "b"],
    "bytes": [0, 1, 255],
    "cached": "cached body",
}


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store of the test's own as the default (``storage="local"``), and no daemon."""
    path = str(tmp_path / "store")
    monkeypatch.setenv("PSP_STORE", path)
    monkeypatch.setenv("PSP_NO_DAEMON", "1")
    return path


def in_thread(function: Callable[[], Any]) -> Any:
    """Run ``function`` in a thread of its own (for asyncio code: no loop of the test thread is touched)."""
    outcome: list[Any] = []

    def main() -> None:
        try:
            outcome.append((function(), None))
        except BaseException as exc:
            outcome.append((None, exc))

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(120)
    assert outcome, "timed out"
    result, error = outcome[0]
    if error is not None:
        raise error
    return result


# -- Playwright, sync ------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browsers(playwright: Any) -> Iterator[tuple[Any, Any]]:
    """Two browsers Playwright launched itself, over its pipe: no debugging port."""
    first = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    second = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield first, second
    first.close()
    second.close()


def log_in(page: Any, site: Site, user: str = "alice") -> None:
    page.goto(site.url(path="/login"))
    page.fill("[name=user]", user)
    page.fill("[name=password]", "secret")
    page.click("[type=submit]")
    assert page.text_content("body").strip() == f"Logged in as {user}"
    assert page.evaluate(FILL) is True


def test_playwright_sync_login_survives_into_a_fresh_browser(browsers: tuple[Any, Any], site: Site) -> None:
    from psp_cdp.playwright import PlaywrightAdapter

    first, second = browsers
    source = first.new_context()
    page = source.new_page()
    log_in(page, site)
    adapter = PlaywrightAdapter()
    session = adapter.create_session(page, name="login", storage="local")
    captured = session.capture()
    session_id = session.id
    assert captured.version.version == 1 and captured.info.id == session_id
    assert captured.info.components["cookies"] == 1 and captured.info.components["indexed_db"] == 1
    assert captured.origins_covered == [site.url()]
    source.close()

    target = second.new_context()
    new_page = target.new_page()
    summary = adapter.load_session(session_id).restore(new_page)
    assert summary["restored"]["cookies"] == 1 and summary["restored"]["tabs"] == 1
    # The fresh page itself took the captured tab: the account page, logged in, sessionStorage in place.
    assert new_page.url == site.url(path="/account") and len(target.pages) == 1
    assert new_page.text_content("body").strip() == "Logged in as alice"
    assert new_page.evaluate(READ) == EXPECTED
    new_page.reload()
    assert new_page.text_content("body").strip() == "Logged in as alice"
    target.close()


def test_playwright_sync_captures_new_versions_and_restores_an_older_one(
    browsers: tuple[Any, Any], site: Site
) -> None:
    from psp_cdp.playwright import PlaywrightAdapter

    first, second = browsers
    source = first.new_context()
    page = source.new_page()
    log_in(page, site, "bob")
    adapter = PlaywrightAdapter()
    session = adapter.create_session(page, name="versions")
    assert session.capture().version.version == 1
    page.evaluate("localStorage.setItem('theme', 'light')")
    assert session.capture().version.version == 2
    again = adapter.create_session(page, name="versions")  # the same session, not a new one
    assert again.id == session.id
    source.close()

    target = second.new_context()
    new_page = target.new_page()
    adapter.load_session("versions").restore(new_page, version=1)
    assert new_page.evaluate("localStorage.getItem('theme')") == "dark"
    adapter.load_session(session.id).restore(new_page)
    assert new_page.evaluate("localStorage.getItem('theme')") == "light"
    target.close()


def test_playwright_sync_errors_are_clear(browsers: tuple[Any, Any], store: str) -> None:
    from psp_cdp.playwright import PlaywrightAdapter

    first, _ = browsers
    adapter = PlaywrightAdapter()
    with pytest.raises(SessionNotFoundError):
        adapter.load_session("never-made")
    with pytest.raises(UsageError, match="expected a Playwright Page"):
        adapter.create_session(object(), name="x")
    context = first.new_context()
    page = context.new_page()
    session = adapter.create_session(page, name="closing")
    page.close()
    with pytest.raises(UsageError, match="closed"):
        session.capture()
    with pytest.raises(UsageError, match="give capture\\(\\) one"):
        adapter.load_session("closing").capture()
    context.close()


def test_storage_names_the_store() -> None:
    assert storage_spec("local") is None and storage_spec(None) is None
    assert storage_spec("redis", {}) == "redis://127.0.0.1:6379/0"
    assert storage_spec("redis", {"PSP_REDIS_URL": "redis://h:1/2"}) == "redis://h:1/2"
    assert storage_spec("/some/dir") == "/some/dir"


# -- Playwright, async; connect_over_cdp; persistent contexts ---------------------------------


def test_playwright_async_from_connect_over_cdp_into_a_persistent_context(site: Site, chromium, tmp_path) -> None:
    async def main() -> dict[str, Any]:
        from playwright.async_api import async_playwright

        from psp_cdp.playwright import AsyncPlaywrightAdapter

        async with async_playwright() as p:
            attached = await p.chromium.connect_over_cdp(chromium.endpoint)
            source = await attached.new_context()
            page = await source.new_page()
            await page.goto(site.url(path="/login"))
            await page.fill("[name=user]", "carol")
            await page.fill("[name=password]", "secret")
            await page.click("[type=submit]")
            assert (await page.evaluate(FILL)) is True
            adapter = AsyncPlaywrightAdapter()
            session = await adapter.create_session(page, name="async-login", storage="local")
            captured = await session.capture()
            assert captured.version.version == 1 and captured.info.components["cache_storage"] == 1
            session_id = session.id
            await source.close()
            await attached.close()  # disconnects; the shared browser keeps running

            persistent = await p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS
            )
            new_page = persistent.pages[0] if persistent.pages else await persistent.new_page()
            summary = await (await adapter.load_session(session_id)).restore(new_page)
            assert summary["restored"]["cookies"] == 1
            assert new_page.url == site.url(path="/account")
            body = (await new_page.text_content("body")).strip()
            read = await new_page.evaluate(READ)
            await persistent.close()
            return {"body": body, "read": read}

    result = in_thread(lambda: asyncio.run(main()))
    assert result == {"body": "Logged in as carol", "read": EXPECTED}


def test_relay_refuses_garbage_and_unknown_sessions_and_keeps_serving(site: Site) -> None:
    """The relay's endpoint: a wrong path is refused; junk is ignored; an unknown session is an error."""

    async def probe(endpoint: str, context: str | None) -> dict[str, Any]:
        import trio
        from trio_websocket import HandshakeError, open_websocket_url

        wrong = endpoint.rsplit("/", 1)[0] + "/not-the-token"
        try:
            async with open_websocket_url(wrong):
                refused = False
        except HandshakeError:
            refused = True
        async with open_websocket_url(endpoint) as ws:
            await ws.send_message("not json")
            await ws.send_message(json.dumps({"no": "id"}))
            await ws.send_message(json.dumps({"id": 1, "method": "Runtime.evaluate", "sessionId": "nope"}))
            unknown = json.loads(await ws.get_message())
            await ws.send_message(json.dumps({"id": 2, "method": "Target.setAutoAttach",
                                              "params": {"autoAttach": True, "flatten": True,
                                                         "waitForDebuggerOnStart": False}}))
            auto = json.loads(await ws.get_message())
            await ws.send_message(json.dumps({"id": 3, "method": "Browser.getVersion"}))
            with trio.fail_after(10):
                version = json.loads(await ws.get_message())
        return {"refused": refused, "unknown": unknown, "auto": auto, "version": version, "context": context}

    async def main() -> dict[str, Any]:
        from playwright.async_api import async_playwright

        from psp_cdp.playwright import PlaywrightAdapter, _check_page, _over_relay

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page()
            result = await _over_relay(_check_page(page), probe)
            with pytest.raises(UsageError, match="sync API"):  # an async page given to the sync adapter
                PlaywrightAdapter().create_session(page, name="mixed").capture()
            await browser.close()
            return result

    result = in_thread(lambda: asyncio.run(main()))
    assert result["refused"] is True
    assert result["unknown"]["id"] == 1 and result["unknown"]["error"]["code"] == -32001
    assert result["auto"]["id"] == 2 and "not available at browser level" in result["auto"]["error"]["message"]
    assert result["version"]["id"] == 3 and result["version"]["result"]["product"].startswith(("Chrome/", "HeadlessChrome/"))
    assert result["context"]


# -- through the daemon --------------------------------------------------------------


def test_bridges_go_through_a_daemon_serving_the_same_store(
    browsers: tuple[Any, Any], site: Site, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psp_cdp.playwright import PlaywrightAdapter

    from .test_daemon import RunningDaemon

    daemon = RunningDaemon(tmp_path / "daemon")
    try:
        monkeypatch.setenv("PSP_SOCKET", daemon.socket)
        monkeypatch.setenv("PSP_STORE", daemon.store)
        monkeypatch.delenv("PSP_NO_DAEMON")
        # This process's own key is unusable: only the daemon (its keyring) can seal what it writes.
        monkeypatch.setenv("PSP_KEY", "not a key")
        first, second = browsers
        source = first.new_context()
        page = source.new_page()
        log_in(page, site, "dave")
        adapter = PlaywrightAdapter()
        session = adapter.create_session(page, name="via-daemon")
        assert session.capture().version.version == 1
        source.close()
        target = second.new_context()
        new_page = target.new_page()
        adapter.load_session(session.id).restore(new_page)
        assert new_page.text_content("body").strip() == "Logged in as dave"
        assert new_page.evaluate(READ) == EXPECTED
        target.close()
        with daemon.client() as http:
            assert http.get("/v1/browsers").json() == []  # attached for each call, detached after
            assert [s["name"] for s in http.get("/v1/sessions").json()] == ["via-daemon"]
    finally:
        assert daemon.terminate() == 0, daemon.stderr()


# -- Selenium -------------------------------------------------------------------------


def chrome_driver() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless", *ARGS, f"--user-data-dir={tempfile.mkdtemp(prefix='psp-selenium-')}"]:
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def test_selenium_login_survives_into_a_fresh_driver(site: Site) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    from psp_cdp.selenium import SeleniumAdapter

    driver = chrome_driver()
    try:
        driver.get(site.url(path="/login"))
        driver.find_element(By.NAME, "user").send_keys("erin")
        driver.find_element(By.NAME, "password").send_keys("secret")
        driver.find_element(By.CSS_SELECTOR, "[type=submit]").click()
        WebDriverWait(driver, 10).until(expected_conditions.url_contains("/account"))
        assert driver.find_element(By.TAG_NAME, "body").text == "Logged in as erin"
        assert driver.execute_async_script(f"const done = arguments[0]; ({FILL})().then(done)") is True
        session = SeleniumAdapter().create_session(driver, name="login", storage="local")
        captured = session.capture()
        assert captured.version.version == 1 and captured.info.components["indexed_db"] == 1
    finally:
        driver.quit()

    other_driver = chrome_driver()
    try:
        summary = SeleniumAdapter().load_session(session.id).restore(other_driver)
        assert summary["restored"]["cookies"] == 1
        assert other_driver.current_url == site.url(path="/account")
        assert len(other_driver.window_handles) == 1
        assert other_driver.find_element(By.TAG_NAME, "body").text == "Logged in as erin"
        read = other_driver.execute_async_script(f"const done = arguments[0]; ({READ})().then(done)")
        assert read == EXPECTED
    finally:
        other_driver.quit()


def test_selenium_endpoint_comes_from_the_capabilities() -> None:
    from psp_cdp.selenium import cdp_endpoint

    class Driver:
        def __init__(self, capabilities: dict[str, Any]) -> None:
            self.capabilities = capabilities

    assert cdp_endpoint(Driver({"goog:chromeOptions": {"debuggerAddress": "localhost:9333"}})) == "http://localhost:9333"
    grid = "ws://grid:4444/session/abc/se/cdp"
    assert cdp_endpoint(Driver({"goog:chromeOptions": {}, "se:cdp": grid})) == grid
    with pytest.raises(UsageError, match="names no CDP endpoint"):
        cdp_endpoint(Driver({"browserName": "firefox"}))
    with pytest.raises(UsageError, match="expected a Selenium WebDriver"):
        cdp_endpoint(object())
