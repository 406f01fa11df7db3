"""Stagehand (Python, local browser): the agent starts logged in on every run after the first.

`PersistentBrowser` starts Chromium with a DevTools port, restores the session "shop" if
it exists, and captures it again when the block ends. Stagehand attaches by `cdp_url`
(its engine is an extension it loads over CDP, which needs `--remote-allow-origins`).

Run it twice with `.venv/bin/python examples/stagehand_agent.py`: the first run logs in,
the second finds itself logged in. Plain page calls need no model; give `Stagehand.create`
a `model=` and key to let `act`/`extract` drive the page instead. It uses a throwaway
store unless PSP_STORE is set, and runs both rounds when started with `--twice`.
"""

import asyncio
import os
import sys
import tempfile

import demo_site
from stagehand import Stagehand, local_browser
from stagehand.browser import _invalidate_browser

from psp_cdp.agents import PersistentBrowser

os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))
SITE = demo_site.serve()
LOG_IN = """fetch('/login', {method: 'POST', redirect: 'manual',
                     body: new URLSearchParams({user: 'alice', password: 'secret'})}).then(() => true)"""


async def run_agent() -> str:
    async with PersistentBrowser("shop", args=["--remote-allow-origins=*"]) as chromium:
        print("restored:", chromium.restored["restored"] if chromium.restored else "nothing yet (first run)")
        browser = await local_browser.connect(cdp_url=chromium.ws_url)
        stagehand = await Stagehand.create(browser=browser)
        page = await browser.context.active_page() or await browser.context.new_page()
        await page.goto(f"{SITE}/account")
        if "Not logged in" in await page.evaluate("document.body.innerText"):
            await page.goto(f"{SITE}/login")
            await page.evaluate(LOG_IN)  # with a model: await stagehand.act("log in as alice, password secret")
            await page.goto(f"{SITE}/account")
        who = await page.evaluate("document.querySelector('#who') && document.querySelector('#who').textContent")
        await stagehand.close()
        await _invalidate_browser(browser)  # drops Stagehand's connection; browser.close() would stop Chromium
        return who
    # leaving the block captured the browser as the next version of "shop"


for round in (1, 2) if "--twice" in sys.argv else (1,):
    print(f"run {round}:", asyncio.run(run_agent()))
