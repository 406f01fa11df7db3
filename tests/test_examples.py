"""Every example under examples/ runs as written, and psp_cdp.agents.PersistentBrowser keeps its promises.

Examples run as subprocesses with a store of the test's own. browser-use runs from
``.venv-browser-use`` (the Quick start's test command makes it: browser-use pins protobuf
below 7). Skyvern's local extra (1.3 GB, Playwright 1.46) is not installed by the set-up;
its example runs when ``.venv-skyvern`` exists, and the CDP contract Skyvern relies on
(Playwright's connect_over_cdp, reusing the browser's default context and its last tab)
is tested here with Playwright itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from psp_cdp.agents import PersistentBrowser

from .site import Site

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
CHROMIUM = "/usr/bin/chromium"


def run_example(tmp_path, name: str, *args: str, python: str = sys.executable) -> str:
    env = {**os.environ, "PSP_STORE": str(tmp_path / "store"), "PSP_NO_DAEMON": "1",
           "PSP": os.path.join(os.path.dirname(sys.executable), "psp")}
    done = subprocess.run([python, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo(tmp_path) -> None:
    assert "browser B is logged in as alice without logging in again." in run_example(tmp_path, "demo.py")


@pytest.mark.parametrize("name", ["playwright_sync.py", "playwright_async.py", "selenium_login.py"])
def test_framework_examples(tmp_path, name: str) -> None:
    out = run_example(tmp_path, name)
    assert "1: Logged in as alice" in out
    assert "2: Logged in as alice | theme=dark draft=Dear Bob, ..." in out


def two_rounds(out: str) -> None:
    assert "run 1: Logged in as alice" in out and "run 2: Logged in as alice" in out


def test_stagehand_example(tmp_path) -> None:
    out = run_example(tmp_path, "stagehand_agent.py", "--twice")
    two_rounds(out)
    assert "restored: nothing yet (first run)" in out
    assert "restored: {'cookies': 1" in out


def test_browser_use_example(tmp_path) -> None:
    python = os.path.join(ROOT, ".venv-browser-use", "bin", "python")
    if not os.path.exists(python):
        pytest.skip("no .venv-browser-use: run the Quick start's test command")
    out = run_example(tmp_path, "browser_use_agent.py", "--twice", python=python)
    two_rounds(out)
    assert "restored shop into the default context: 1 cookies" in out
    assert "captured shop version 2 (delta" in out


def test_skyvern_example(tmp_path) -> None:
    python = os.path.join(ROOT, ".venv-skyvern", "bin", "python")
    if not os.path.exists(python):
        pytest.skip("Skyvern is not installed (.venv-skyvern); its CDP contract is tested below")
    two_rounds(run_example(tmp_path, "skyvern_agent.py", "--twice", python=python))


def test_skyvern_contract_default_context_over_connect_over_cdp(tmp_path, site: Site, monkeypatch) -> None:
    """What Skyvern does with a CDP URL: connect_over_cdp, contexts[0], its last page; then disconnect."""
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("PSP_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PSP_NO_DAEMON", "1")

    def agent(cdp_url: str, log_in: bool) -> str:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(cdp_url)
            context = browser.contexts[0] if browser.contexts else browser.new_context()
            page = context.pages[-1] if context.pages else context.new_page()
            if log_in:
                page.goto(site.url(path="/login"))
                page.fill("[name=user]", "sky")
                page.fill("[name=password]", "secret")
                page.click("[type=submit]")
                page.evaluate("localStorage.setItem('plan', 'pro')")
            else:
                page.goto(site.url(path="/account"))
            who = page.text_content("body").strip() + " " + str(page.evaluate("localStorage.getItem('plan')"))
            browser.close()  # over CDP: disconnects only
            return who

    with PersistentBrowser("skyvern-contract", executable=CHROMIUM) as chromium:
        assert chromium.restored is None
        assert agent(chromium.cdp_url, log_in=True) == "Logged in as sky pro"
        assert urllib.request.urlopen(f"{chromium.cdp_url}/json/version", timeout=5).status == 200
    assert chromium.captured is not None and chromium.captured.version.version == 1
    with PersistentBrowser("skyvern-contract", executable=CHROMIUM) as chromium:
        assert chromium.restored is not None and chromium.restored["restored"]["cookies"] == 1
        assert agent(chromium.cdp_url, log_in=False) == "Logged in as sky pro"


def test_persistent_browser_keeps_a_good_session_when_the_block_fails(tmp_path, site: Site, monkeypatch) -> None:
    from psp_cdp.cdp import launch_chromium

    monkeypatch.setenv("PSP_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PSP_NO_DAEMON", "1")
    with launch_chromium() as external:
        with PersistentBrowser("kept", cdp=external.endpoint, restore=False) as chromium:
            assert chromium.cdp_url == external.endpoint and chromium.ws_url.startswith("ws://127.0.0.1:")
            first: Any = chromium.capture()
            assert first.version.version == 1
        assert chromium.captured is not None and chromium.captured.version.version == 2
        with pytest.raises(RuntimeError, match="agent failed"):
            with PersistentBrowser("kept", cdp=external.endpoint):
                raise RuntimeError("agent failed")
        assert external.alive()  # a browser given by cdp= is left running
        from psp_cdp.client.runner import find_session, run_sync

        assert run_sync(lambda: find_session("kept")).head == 2  # nothing captured by the failed run
