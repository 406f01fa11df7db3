"""Skyvern: the agent's browser starts logged in on every run after the first.

Skyvern's local extra pins protobuf below 7 (and Playwright 1.46), so it lives in a
virtualenv of its own, and psp_cdp works on its browser from outside
(examples/cdp_browser.py runs `psp restore` before and `psp capture` after). Skyvern
attaches with `connect_to_browser_over_cdp(url)`, or, for task and workflow runs, with
`BROWSER_TYPE=cdp-connect` and `BROWSER_REMOTE_DEBUGGING_URL=url` (set before importing
skyvern), or `run_task(..., browser_address=url)`; each reuses the browser's default
context, which is where psp restores the session.

    python3 -m venv .venv-skyvern && .venv-skyvern/bin/pip install "skyvern[local]==1.0.56"
    PSP_STORE=/tmp/psp-example .venv-skyvern/bin/python examples/skyvern_agent.py --twice

The first run logs in, the second finds itself logged in. The steps here are plain page
calls, which need no LLM; `page.act(...)` or `run_task(...)` need one.
"""

import asyncio
import os
import sys
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download at import
os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-example-"))

import demo_site  # noqa: E402
from cdp_browser import persistent_browser  # noqa: E402
from skyvern import Skyvern  # noqa: E402

SITE = demo_site.serve()
LOG_IN = """fetch('/login', {method: 'POST', redirect: 'manual',
                     body: new URLSearchParams({user: 'alice', password: 'secret'})}).then(() => true)"""


async def agent(cdp_url: str) -> str:
    skyvern = Skyvern(api_key="unused")  # no request reaches Skyvern's cloud for a browser attached over CDP
    try:
        browser = await skyvern.connect_to_browser_over_cdp(cdp_url)
        page = await browser.get_working_page()
        await page.goto(f"{SITE}/account")
        if "Not logged in" in await page.text_content("body"):
            await page.goto(f"{SITE}/login")
            await page.evaluate(LOG_IN)
            await page.goto(f"{SITE}/account")
        return await page.text_content("#who")
    finally:
        await skyvern.aclose()  # disconnects; the browser keeps running for `psp capture`


for round in (1, 2) if "--twice" in sys.argv else (1,):
    with persistent_browser("shop") as cdp_url:
        print(f"run {round}:", asyncio.run(agent(cdp_url)))
