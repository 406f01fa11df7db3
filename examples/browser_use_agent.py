"""browser-use: the agent's browser starts logged in on every run after the first.

browser-use 0.13 pins protobuf below 7, so it lives in a virtualenv of its own, and
psp_cdp works on its browser from outside (examples/cdp_browser.py runs `psp restore`
before and `psp capture` after). browser-use attaches with `BrowserSession(cdp_url=...)`.

    python3 -m venv .venv-browser-use && .venv-browser-use/bin/pip install browser-use==0.13.14
    PSP_STORE=/tmp/psp-example .venv-browser-use/bin/python examples/browser_use_agent.py --twice

The first run logs in, the second finds itself logged in. The steps here are plain page
calls, which need no LLM; an `Agent(task=..., llm=..., browser_session=session)` given
the same session works on the same logged-in browser.
"""

import asyncio
import os
import sys
import tempfile

os.environ.setdefault("ANONYMIZED_TELEMETRY", "false")
os.environ.setdefault("BROWSER_USE_VERSION_CHECK", "false")
os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))

import demo_site  # noqa: E402
from browser_use import BrowserSession  # noqa: E402
from cdp_browser import persistent_browser  # noqa: E402

SITE = demo_site.serve()
LOG_IN = """() => fetch('/login', {method: 'POST', redirect: 'manual',
                          body: new URLSearchParams({user: 'alice', password: 'secret'})}).then(() => true)"""
WHO = "() => document.querySelector('#who') && document.querySelector('#who').textContent"


async def agent(cdp_url: str) -> str:
    session = BrowserSession(cdp_url=cdp_url, keep_alive=True, headless=False, no_viewport=True)
    await session.start()
    try:
        await session.navigate_to(f"{SITE}/account")
        page = await session.get_current_page()
        await asyncio.sleep(0.5)
        if "Logged in" not in str(await page.evaluate(WHO)):
            await session.navigate_to(f"{SITE}/login")
            await asyncio.sleep(0.5)
            await page.evaluate(LOG_IN)
            await session.navigate_to(f"{SITE}/account")
            await asyncio.sleep(0.5)
        return str(await page.evaluate(WHO))
    finally:
        await session.stop()  # disconnects; the browser keeps running for `psp capture`


for round in (1, 2) if "--twice" in sys.argv else (1,):
    with persistent_browser("shop") as cdp_url:
        print(f"run {round}:", asyncio.run(agent(cdp_url)))
