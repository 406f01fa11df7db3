"""Capture in one Chromium process, restore into another with a different profile.

Rules: loopback only (the test site on 127.0.0.1, 127.0.0.2, localhost, and HTTPS on
localhost with a self-signed certificate); every check that the login holds is made
inside the restored page; each test uses fresh browser contexts on the two shared
browsers and disposes of them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

import pytest
import trio

from psp_cdp.cdp import CdpConnection, launch_chromium, open_cdp, single_error
from psp_cdp.errors import CdpError, ProtocolError, PspError
from psp_cdp.snapshot import codec, model
from psp_cdp.state import capture_state, restore_state
from psp_cdp.store import FilesystemStore, Sessions

from .helpers import BrowserContext, browser_context, evaluate, navigate, open_page
from .site import PASSWORD, Site

TRICKY = {"nul": "a\x00b", "astral": "😀𝄞", "lone": "x\ud800y\udfffz", "big": "é" * 300_000, "": "empty key"}


def _cookie_key(cookie: dict[str, Any]) -> tuple[str, str, str, str]:
    key = cookie.get("partitionKey") or {}
    return cookie["name"], cookie["domain"], cookie["path"], json.dumps(key, sort_keys=True)


async def _page_targets(connection: CdpConnection, context_id: str) -> list[dict[str, Any]]:
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    return [t for t in targets if t["type"] == "page" and t.get("browserContextId") == context_id]


async def _build_session(site: Site, source: BrowserContext) -> None:
    """Log in, set cookies of every kind on three sites, fill storage, leave two tabs."""
    http = site.url("127.0.0.1")
    https = site.https_url("localhost")
    tab = await source.new_page(f"{http}/login")
    await evaluate(tab, f"document.querySelector('[name=user]').value = 'alice';"
                        f"document.querySelector('[name=password]').value = '{PASSWORD}'")
    with tab.listen("Page.loadEventFired") as loaded:
        await evaluate(tab, "document.querySelector('form').submit()")
        await loaded.receive()
    assert "Logged in as alice" in await evaluate(tab, "document.body.innerText")
    cookies = [
        "plain=1; Path=/",
        "sec=2; Secure; Path=/; Max-Age=7200; SameSite=Strict; Priority=High",
        "__Host-tok=3; Secure; Path=/; SameSite=Lax",
        "chips=4; Secure; Path=/; SameSite=None; Partitioned",
        "dom=5; Domain=localhost; Path=/sub; HttpOnly; Max-Age=600",
    ]
    query = "&".join(f"c={quote(c)}" for c in cookies)
    other = await source.new_page(f"{https}/set-cookie?{query}")
    await navigate(other, f"{https}/storage?local.site=https&session.s=1")
    await navigate(other, f"{site.url('localhost')}/storage?local.site=localhost&session.s=2")
    values = json.dumps(TRICKY)
    await evaluate(other, f"Object.entries({values}).forEach(([k, v]) => localStorage.setItem(k, v))")
    await navigate(tab, f"{http}/storage?local.theme=dark&session.draft=hello")
    await evaluate(tab, f"Object.entries({values}).forEach(([k, v]) => sessionStorage.setItem(k, v))")
    await navigate(tab, f"{http}/long")
    await evaluate(tab, "const s = {step: 3, list: [1, 'two'], when: new Date(7), seen: new Map([['k', -0]])}; s.self = s;"
                        "history.replaceState(s, ''); window.scrollTo(0, 1234)")


async def test_login_cookies_storage_and_tabs_carry_over(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        await _build_session(site, source)
        state = await capture_state(cdp, context=source.id)
        source_cookies = await source.cookies()
        blob = codec.encode(state)
    state = codec.decode(blob)
    covered = set(state.report.origins_covered)
    assert {site.url("127.0.0.1"), site.url("localhost"), site.https_url("localhost")} <= covered

    report = await restore_state(cdp_b, state, context="new")
    target_context = report.context_id
    assert target_context
    try:
        assert report.restored["cookies"] == len(source_cookies)
        assert report.restored["tabs"] == 2
        restored = BrowserContext(cdp_b, target_context)

        # Every cookie attribute matches.
        target_cookies = await restored.cookies()
        assert {_cookie_key(c): c for c in target_cookies} == {_cookie_key(c): c for c in source_cookies}
        chips = next(c for c in target_cookies if c["name"] == "chips")
        assert chips["partitionKey"]["topLevelSite"] == "https://localhost"
        assert next(c for c in target_cookies if c["name"] == "__Host-tok")["domain"] == "localhost"

        # Inside the page: the server-side login holds and storage is there.
        pages = await _page_targets(cdp_b, target_context)
        long_page = next(p for p in pages if p["url"].endswith("/long"))
        tab = await cdp_b.attach(long_page["targetId"])
        assert (await evaluate(tab, "fetch('/api/me').then(r => r.json())", await_promise=True)) == {"user": "alice"}
        await trio.sleep(0.1)
        assert await evaluate(tab, "JSON.stringify([history.state.step, history.state.list])") == '[3,[1,"two"]]'
        typed = "const s = history.state; [s.when instanceof Date && s.when.getTime() === 7, Object.is(s.seen.get('k'), -0), s.self === s]"
        assert await evaluate(tab, typed) == [True, True, True]
        assert await evaluate(tab, "window.scrollY") == 1234
        assert await evaluate(tab, "localStorage.getItem('theme')") == "dark"
        session_items = await evaluate(tab, "JSON.stringify(Object.fromEntries(Object.entries(sessionStorage)))")
        assert json.loads(session_items) == {"draft": "hello", **TRICKY}
        history = await tab.send("Page.getNavigationHistory")
        assert [e["url"] for e in history["entries"]][-3:] == [
            f"{site.url('127.0.0.1')}/account",
            f"{site.url('127.0.0.1')}/storage?local.theme=dark&session.draft=hello",
            f"{site.url('127.0.0.1')}/long",
        ]
        assert history["currentIndex"] == len(history["entries"]) - 1
        await tab.detach()

        # localStorage matches exactly on every origin (read back through psp_cdp, in pages).
        again = await capture_state(cdp_b, context=target_context, only=["local_storage"])
        by_origin = {s.origin: model.storage_dict(s) for s in state.storage.local_storage}
        assert by_origin[site.url("localhost")] == {"site": "localhost", **TRICKY}
        assert {s.origin: model.storage_dict(s) for s in again.storage.local_storage} == by_origin
    finally:
        await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": target_context})


async def test_restore_replaces_what_the_origin_held(site: Site, cdp: CdpConnection) -> None:
    origin = site.url("127.0.0.2")
    async with browser_context(cdp) as source, browser_context(cdp) as target:
        tab = await source.new_page(f"{origin}/storage?local.keep=1")
        state = await capture_state(cdp, context=source.id, only=["local_storage"])
        await tab.send("Page.close")
        old = await target.new_page(f"{origin}/storage?local.stale=1")
        await old.send("Page.close")
        await restore_state(cdp, state, context=target.id, only=["local_storage"])
        again = await capture_state(cdp, context=target.id, only=["local_storage"], origins=[origin])
    assert {s.origin: model.storage_dict(s) for s in again.storage.local_storage} == {origin: {"keep": "1"}}


async def test_iframe_origins_are_covered(site: Site, cdp: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        await source.new_page(f"{site.url('127.0.0.1')}/frames")
        state = await capture_state(cdp, context=source.id, only=["local_storage", "session_storage"])
    # 127.0.0.2 is another site than 127.0.0.1: its iframe storage is partitioned under the top-level site.
    assert f"{site.url('127.0.0.2')}/^0{site.url('127.0.0.1').rsplit(':', 1)[0]}" in state.report.origins_covered


async def test_only_and_skip_select_components(site: Site, cdp: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        await source.new_page(f"{site.url('127.0.0.1')}/set-cookie?c=a%3D1")
        cookies_only = await capture_state(cdp, context=source.id, only=["cookies"])
        no_cookies = await capture_state(cdp, context=source.id, skip=["cookies"])
    assert list(cookies_only.report.components) == ["cookies"]
    assert len(cookies_only.storage.cookies) == 1 and not cookies_only.history.tabs
    assert not no_cookies.storage.cookies and len(no_cookies.history.tabs) == 1


async def test_browser_dying_mid_capture_writes_nothing(tmp_path, site: Site) -> None:
    sessions = Sessions(FilesystemStore(str(tmp_path)))
    previous = model.BrowserSessionState(version=model.PROTOCOL_VERSION, origin="before")
    await sessions.save("keep", previous)
    with launch_chromium(args=["--ignore-certificate-errors"]) as doomed:
        async with open_cdp(doomed.endpoint) as connection:
            tab = await open_page(connection, None, f"{site.url()}/page?title=busy")
            # The page's main thread spins, so the capture is sure to be under way when the browser dies.
            await evaluate(tab, "setTimeout(() => { while (true) {} }, 0)")
            await trio.sleep(0.2)

            async def kill_soon() -> None:
                await trio.sleep(1.0)
                doomed.kill()

            with pytest.raises(CdpError), single_error():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(kill_soon)
                    await sessions.capture(connection, "keep")
    _, state = await sessions.load("keep")
    assert state.origin == "before"


async def test_unknown_context_is_a_clear_error(cdp: CdpConnection) -> None:
    with pytest.raises(PspError, match="no browser context"):
        await capture_state(cdp, context="NOPE")


async def test_a_capture_during_navigations_is_made_again_and_succeeds(site: Site, cdp: CdpConnection) -> None:
    """A page's reloads destroy the scripts' context a capture reads in ("Cannot find context"): it is tried again."""
    async with browser_context(cdp) as source:
        page = await open_page(cdp, source.id)
        # Each load sets a value, then reloads, four times over.
        await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "localStorage.setItem('seen', 'yes'); { const n = +sessionStorage.getItem('n') || 0; "
            "if (n < 4) { sessionStorage.setItem('n', n + 1); setTimeout(() => location.reload(), 10); } }"
        )})
        await navigate(page, site.url("127.0.0.1") + "/page?title=t")
        for _ in range(12):
            with contextlib.suppress(ProtocolError):  # the page may be between two loads already
                await page.send("Runtime.evaluate", {"expression": "sessionStorage.setItem('n', '0'); location.reload()"})
            state = await capture_state(cdp, context=source.id)  # before, about one in three failed
            local = {o.origin: model.storage_dict(o) for o in state.storage.local_storage}
            assert local.get(site.url("127.0.0.1")) == {"seen": "yes"}
            assert [t.navigation.current_url for t in state.history.tabs] == [site.url("127.0.0.1") + "/page?title=t"]
