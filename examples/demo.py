"""psp_cdp in one minute: log in once, carry the session to another browser.

1. serves a small site on 127.0.0.1 (a login form, an account page that keeps
   preferences in localStorage and a draft in sessionStorage);
2. starts Chromium A, logs in as alice and opens a second tab;
3. runs `psp capture` on browser A;
4. starts Chromium B, a separate process with an empty profile, and runs `psp restore`;
5. looks inside browser B's pages and prints what carried over.

Run it with `.venv/bin/python examples/demo.py` (the Quick start's first command does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import demo_site
import trio

from psp_cdp.cdp import CdpSession, launch_chromium, open_cdp

PSP = os.path.join(os.path.dirname(sys.executable), "psp")

async def goto(session: CdpSession, url: str) -> None:
    with session.listen("Page.loadEventFired") as loaded:
        await session.send("Page.navigate", {"url": url})
        await loaded.receive()


async def page_value(session: CdpSession, expression: str) -> object:
    result = await session.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    return result["result"].get("value")


async def log_in(endpoint: str, base: str) -> None:
    async with open_cdp(endpoint) as cdp:
        targets = (await cdp.send("Target.getTargets"))["targetInfos"]
        tab = await cdp.attach(next(t for t in targets if t["type"] == "page")["targetId"])
        await tab.send("Page.enable")
        await goto(tab, f"{base}/login")
        with tab.listen("Page.loadEventFired") as loaded:
            await page_value(tab, "document.querySelector('[name=user]').value = 'alice';"
                                  "document.querySelector('[name=password]').value = 'secret';"
                                  "document.querySelector('form').submit()")
            await loaded.receive()
        who = await page_value(tab, "document.getElementById('who').textContent")
        print(f"  browser A: {who}")
        second = await cdp.attach((await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"])
        await second.send("Page.enable")
        await goto(second, f"{base}/docs/intro")
        await goto(second, f"{base}/docs/setup")


async def inspect(endpoint: str) -> list[tuple[str, str]]:
    rows = []
    async with open_cdp(endpoint) as cdp:
        targets = [t for t in (await cdp.send("Target.getTargets"))["targetInfos"] if t["type"] == "page"]
        for info in sorted(targets, key=lambda t: t["url"]):
            tab = await cdp.attach(info["targetId"])
            history = await tab.send("Page.getNavigationHistory")
            back = " -> ".join(urlsplit(e["url"]).path or e["url"] for e in history["entries"])
            rows.append((f"tab {urlsplit(info['url']).path}", f"history: {back}"))
            if info["url"].endswith("/account"):
                rows.append(("  page says", str(await page_value(tab, "document.getElementById('who').textContent"))))
                rows.append(("  localStorage", str(await page_value(tab, "JSON.stringify({...localStorage})"))))
                rows.append(("  sessionStorage", str(await page_value(tab, "JSON.stringify({...sessionStorage})"))))
        cookies = (await cdp.send("Storage.getCookies"))["cookies"]
        rows.append(("cookies", ", ".join(f"{c['name']} (httpOnly={c['httpOnly']})" for c in cookies)))
    return rows


def psp(*args: str, store: str) -> None:
    print(f"$ psp {' '.join(args)}")
    result = subprocess.run([PSP, *args, "--store", store], capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        print(f"  {line}")
    if result.returncode:
        raise SystemExit(f"psp {args[0]} failed with exit code {result.returncode}")


def main() -> None:
    base = demo_site.serve()
    store = tempfile.mkdtemp(prefix="psp-demo-store-")
    print(f"demo site at {base}; session store at {store}\n")
    try:
        with launch_chromium() as browser_a:
            print(f"1. Chromium A ({browser_a.endpoint}) logs in as alice and opens a second tab")
            trio.run(log_in, browser_a.endpoint, base)
            print("\n2. capture browser A")
            psp("capture", "--cdp", browser_a.endpoint, "--name", "demo", "--tag", "user=alice", store=store)
        print("\n   browser A is closed now.")
        with launch_chromium() as browser_b:
            print(f"\n3. restore into Chromium B ({browser_b.endpoint}), a fresh profile in another process")
            psp("restore", "demo", "--cdp", browser_b.endpoint, store=store)
            print("\n4. what browser B holds now (read inside its pages):")
            rows = trio.run(inspect, browser_b.endpoint)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"  {key.ljust(width)}  {value}")
        logged_in = any(k == "  page says" and "Logged in as alice" in v for k, v in rows)
        print("\nbrowser B is logged in as alice without logging in again." if logged_in else "\nFAILED: browser B is not logged in.")
        if not logged_in:
            raise SystemExit(1)
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
