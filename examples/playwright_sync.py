"""Playwright (sync API): log in once in one browser, carry the session into a fresh one.

Playwright launches both browsers itself, over its pipe: no debugging port anywhere.
Run it with `.venv/bin/python examples/playwright_sync.py`; it uses a throwaway store
unless PSP_STORE is set.
"""

import os
import tempfile

import demo_site
from playwright.sync_api import sync_playwright

from psp_cdp.playwright import PlaywrightAdapter

os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))
CHROMIUM = os.environ.get("PSP_CHROMIUM", "/usr/bin/chromium")
site = demo_site.serve()

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(f"{site}/login")
    page.fill("[name=user]", "alice")
    page.fill("[name=password]", "secret")
    page.click("button")
    print("browser 1:", page.text_content("#who"))

    adapter = PlaywrightAdapter()
    session = adapter.create_session(page, name="login", storage="local")
    session.capture()
    session_id = session.id
    browser.close()

    fresh = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    new_page = fresh.new_page()
    adapter.load_session(session_id).restore(new_page)
    print("browser 2:", new_page.text_content("#who"), "|", new_page.text_content("#prefs"))
    assert new_page.text_content("#who") == "Logged in as alice"
    fresh.close()
