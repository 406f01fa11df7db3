"""Playwright (async API): the same two calls, awaited.

Run it with `.venv/bin/python examples/playwright_async.py`; it uses a throwaway store
unless PSP_STORE is set.
"""

import asyncio
import os
import tempfile

import demo_site
from playwright.async_api import async_playwright

from psp_cdp.playwright import AsyncPlaywrightAdapter

os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))
CHROMIUM = os.environ.get("PSP_CHROMIUM", "/usr/bin/chromium")


async def main() -> None:
    site = demo_site.serve()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{site}/login")
        await page.fill("[name=user]", "alice")
        await page.fill("[name=password]", "secret")
        await page.click("button")
        print("browser 1:", await page.text_content("#who"))

        adapter = AsyncPlaywrightAdapter()
        session = await adapter.create_session(page, name="login", storage="local")
        await session.capture()
        session_id = session.id
        await browser.close()

        # A persistent context works the same way (so does a browser reached with connect_over_cdp).
        context = await p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="psp-profile-"), executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        new_page = context.pages[0] if context.pages else await context.new_page()
        await (await adapter.load_session(session_id)).restore(new_page)
        print("browser 2:", await new_page.text_content("#who"), "|", await new_page.text_content("#prefs"))
        assert await new_page.text_content("#who") == "Logged in as alice"
        await context.close()


asyncio.run(main())
