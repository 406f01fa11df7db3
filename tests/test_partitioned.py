"""Partitioned storage: a third-party iframe's storage is restored into its own partition.

Rules: loopback only (the test site on 127.0.0.1 and localhost; a stub page's own
documents never reach the network); capture in one Chromium (``cdp``), restore into
another (``cdp_b``) in a new context, and check inside the iframes of real pages there;
each test uses fresh browser contexts and disposes of them; the default time limit holds.
"""

from __future__ import annotations

import json

import pytest

from psp_cdp.cdp import CdpConnection, CdpSession
from psp_cdp.errors import StateError
from psp_cdp.snapshot import codec, model
from psp_cdp.state import capture_state, restore_state
from psp_cdp.state.pages import parse_storage_key

from .helpers import (
    BrowserContext,
    browser_context,
    evaluate,
    frame_sessions,
    frame_with_key,
    frames_url,
    navigate,
    open_page,
)
from .site import Site

VALUES = {"plain": "v", "nul": "a\x00b", "astral": "😀𝄞", "lone": "x\ud800y", "": "empty key"}
READ = "JSON.stringify(Object.fromEntries(Object.entries({kind})))"
THIRD_PARTY_COOKIE = "chips3p=7; Secure; SameSite=None; Partitioned; Path=/"


async def _read(session: CdpSession, kind: str) -> dict[str, str]:
    return json.loads(await evaluate(session, READ.format(kind=kind)))


async def _write(session: CdpSession, kind: str, values: dict[str, str]) -> None:
    await evaluate(session, f"Object.entries({json.dumps(values)}).forEach(([k, v]) => {kind}.setItem(k, v))")


async def _page_target(connection: CdpConnection, context_id: str, url: str) -> str:
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    return next(t["targetId"] for t in targets if t.get("browserContextId") == context_id and t["url"] == url)


def test_storage_keys_are_parsed() -> None:
    first = parse_storage_key("http://localhost:8000/")
    assert first.first_party and first.recreatable and first.origin == "http://localhost:8000"
    assert first.top_level_url() == "http://localhost:8000/"

    third = parse_storage_key("https://localhost:8443/^0http://127.0.0.1")
    assert third.partitioned and third.cross_site_ancestor and third.recreatable
    assert (third.origin, third.top_level_site) == ("https://localhost:8443", "http://127.0.0.1")
    assert third.top_level_url() == "http://127.0.0.1/"
    assert third.fits_top_level("http://127.0.0.1:9000/frames?x=1")
    assert not third.fits_top_level("https://127.0.0.1/") and not third.fits_top_level("http://127.0.0.2/")
    assert parse_storage_key("https://a.test/^0https://example.com").fits_top_level("https://www.example.com/")

    ancestor = parse_storage_key("http://127.0.0.1:8000/^31")
    assert ancestor.partitioned and ancestor.cross_site_ancestor and ancestor.top_level_site is None
    assert ancestor.top_level_url() == "http://127.0.0.1:8000/" and ancestor.fits_top_level("http://127.0.0.1:1/")

    nonce = parse_storage_key("https://a.test/^112345^267890")
    assert nonce.nonce == "12345.67890" and not nonce.recreatable
    opaque = parse_storage_key("https://a.test/^41^52^6https://b.test")
    assert opaque.opaque_top_level and not opaque.recreatable
    assert parse_storage_key("https://a.test/^41^52^6").opaque_top_level

    for bad in ("http://a.test", "http://a.test/^30", "http://a.test/^0", "http://a.test/^1x", "x/^0a^31", "/^9z"):
        with pytest.raises(StateError):
            parse_storage_key(bad)


async def test_third_party_iframe_storage_keeps_its_partition(
    site: Site, cdp: CdpConnection, cdp_b: CdpConnection
) -> None:
    frame_origin = site.https_url("localhost")
    top = frames_url(site, "127.0.0.1", f"{frame_origin}/page?title=child")
    key = f"{frame_origin}/^0http://127.0.0.1"
    async with browser_context(cdp) as source:
        first_party = await source.new_page(f"{frame_origin}/page?title=own")
        await _write(first_party, "localStorage", {"own": "first party"})
        tab = await source.new_page(top)
        async with frame_sessions(cdp, tab.target_id or "") as frames:
            iframe = await frame_with_key(frames, key)
            await _write(iframe.session, "localStorage", VALUES)
            await _write(iframe.session, "sessionStorage", {"draft": "in the iframe", **VALUES})
            await evaluate(iframe.session, f"document.cookie = {json.dumps(THIRD_PARTY_COOKIE)}")
        source_cookies = {c["name"]: c for c in await source.cookies()}
        state = codec.decode(codec.encode(await capture_state(cdp, context=source.id)))

    assert key in state.report.origins_covered
    local = {s.storage_key or s.origin: model.storage_dict(s) for s in state.storage.local_storage}
    assert local[key] == VALUES and local[frame_origin] == {"own": "first party"}
    assert source_cookies["chips3p"]["partitionKey"] == {"topLevelSite": "http://127.0.0.1", "hasCrossSiteAncestor": True}

    report = await restore_state(cdp_b, state, context="new")
    context_id = report.context_id or ""
    try:
        assert not [n for n in report.notes if "partition" in n or "not restored" in n], report.notes
        assert report.restored["local_storage"] == len(VALUES) + 1
        assert report.restored["session_storage"] == len(VALUES) + 1
        restored = BrowserContext(cdp_b, context_id)
        cookies = {c["name"]: c for c in await restored.cookies()}
        assert cookies["chips3p"] == source_cookies["chips3p"]

        # The restored tab: its iframe has its localStorage, sessionStorage and partitioned cookie.
        async with frame_sessions(cdp_b, await _page_target(cdp_b, context_id, top)) as frames:
            iframe = await frame_with_key(frames, key)
            assert await _read(iframe.session, "localStorage") == VALUES
            assert await _read(iframe.session, "sessionStorage") == {"draft": "in the iframe", **VALUES}
            assert "chips3p=7" in await evaluate(iframe.session, "document.cookie")

        # The same top-level page in a new tab sees the partition's localStorage.
        again = await open_page(cdp_b, context_id, top)
        async with frame_sessions(cdp_b, again.target_id or "") as frames:
            iframe = next(f for f in frames if f.origin == frame_origin)
            assert await _read(iframe.session, "localStorage") == VALUES

        # A first-party visit to the iframe's origin does not: the partition was kept.
        own = await open_page(cdp_b, context_id, f"{frame_origin}/page?title=own")
        assert await _read(own, "localStorage") == {"own": "first party"}
        assert "chips3p" not in await evaluate(own, "document.cookie")

        # Read back through psp_cdp, the restored context holds what was captured.
        echo = await capture_state(cdp_b, context=context_id, only=["local_storage"])
        assert {s.storage_key or s.origin: model.storage_dict(s) for s in echo.storage.local_storage} == local
    finally:
        await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": context_id})


async def test_storage_under_a_cross_site_ancestor_keeps_its_partition(
    site: Site, cdp: CdpConnection, cdp_b: CdpConnection
) -> None:
    # 127.0.0.1 embeds localhost, which embeds 127.0.0.1 again: the innermost frame is of the
    # top-level site, but its storage key says a cross-site frame sits between them.
    inner_origin = site.url("127.0.0.1")
    middle = frames_url(site, "localhost", f"{inner_origin}/page?title=inner")
    top = frames_url(site, "127.0.0.1", middle)
    key = f"{inner_origin}/^31"
    async with browser_context(cdp) as source:
        tab = await source.new_page(top)
        async with frame_sessions(cdp, tab.target_id or "") as frames:
            inner = await frame_with_key(frames, key)
            await _write(inner.session, "localStorage", {"inner": "local"})
            await _write(inner.session, "sessionStorage", {"inner": "session"})
        state = await capture_state(cdp, context=source.id)
    assert key in state.report.origins_covered

    report = await restore_state(cdp_b, state, context="new")
    context_id = report.context_id or ""
    try:
        assert not [n for n in report.notes if "partition" in n or "not restored" in n], report.notes
        async with frame_sessions(cdp_b, await _page_target(cdp_b, context_id, top)) as frames:
            inner = await frame_with_key(frames, key)
            assert await _read(inner.session, "localStorage") == {"inner": "local"}
            assert await _read(inner.session, "sessionStorage") == {"inner": "session"}
            # The top-level document is of the same origin, in the first-party partition.
            assert await _read(frames[0].session, "localStorage") == {}
            history = await frames[0].session.send("Page.getNavigationHistory")
            # The stub iframes that wrote the storage left no history entries behind.
            assert [e["url"] for e in history["entries"]] == [e.url for e in state.history.tabs[0].navigation.entries]
    finally:
        await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": context_id})


async def test_storage_keys_that_cannot_be_made_again_are_named(cdp: CdpConnection) -> None:
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION)
    transient = state.storage.local_storage.add(origin="https://a.test", storage_key="https://a.test/^112345^267890")
    model.storage_items(transient, {"k": "v"})
    async with browser_context(cdp) as target:
        report = await restore_state(cdp, state, context=target.id, only=["local_storage"])
    assert any("https://a.test/^112345^267890" in note and "nonce" in note for note in report.notes), report.notes
    assert not report.restored.get("local_storage")


async def test_tab_without_an_entry_of_the_top_level_site_gets_its_partitioned_session_storage(
    site: Site, cdp: CdpConnection
) -> None:
    frame_origin = site.url("localhost")
    key = f"{frame_origin}/^0http://127.0.0.1"
    entry = site.url("127.0.0.2", "/page?title=elsewhere")
    state = model.BrowserSessionState(version=model.PROTOCOL_VERSION)
    tab = state.history.tabs.add()
    tab.navigation.entries.add(url=entry)
    tab.navigation.current_url = entry
    model.storage_items(tab.session_storage.add(origin=frame_origin, storage_key=key), {"k": "v"})
    async with browser_context(cdp) as target:
        report = await restore_state(cdp, state, context=target.id, only=["tabs", "session_storage"])
        assert report.restored.get("session_storage") == 1, report.notes
        target_id = await _page_target(cdp, target.id, entry)
        async with frame_sessions(cdp, target_id) as frames:
            history = await frames[0].session.send("Page.getNavigationHistory")
            # The stub document of the top-level site was replaced by the entry (the new tab's
            # own about:blank stays first, as for any restored tab).
            assert [e["url"] for e in history["entries"] if e["url"] != "about:blank"] == [entry]
        # The same tab, once on a page of the top-level site, finds the storage in its iframe.
        page = await cdp.attach(target_id)
        await page.send("Page.enable")
        await navigate(page, frames_url(site, "127.0.0.1", f"{frame_origin}/page?title=child"))
        async with frame_sessions(cdp, target_id) as frames:
            iframe = await frame_with_key(frames, key)
            assert await _read(iframe.session, "sessionStorage") == {"k": "v"}
