"""CacheStorage and service workers, captured in one Chromium and restored into another.

Rules: loopback only (the test site on 127.0.0.1, 127.0.0.2 and localhost); every
check of what was restored is made inside a page of the restored context; each test
uses fresh browser contexts on the two shared browsers and disposes of them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import trio

from psp_cdp.cdp import CdpConnection
from psp_cdp.snapshot import codec, model
from psp_cdp.state import capture_state, restore_state

from .helpers import BrowserContext, browser_context, evaluate, navigate, wait_until
from .site import Site

#: Every entry of every cache of the page's origin, in the caches' own order, as the page sees them.
DUMP = """(async () => {
  const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const out = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    const entries = [];
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      const body = await response.arrayBuffer();
      entries.push({
        url: request.url, method: request.method, requestHeaders: [...request.headers],
        status: response.status, statusText: response.statusText, type: response.type,
        headers: [...response.headers], length: body.byteLength,
        sha256: hex(await crypto.subtle.digest("SHA-256", body)),
      });
    }
    out.push([name, entries]);
  }
  return out;
})()"""

BIG = 2_500_000


def _fill_first(other_origin: str) -> str:
    """Caches of the first origin: binary, 404, Vary, network, 204 and opaque entries; three caches."""
    return f"""(async () => {{
      const every = new Uint8Array(256);
      for (let i = 0; i < 256; i++) every[i] = i;
      const v1 = await caches.open("v1");
      await v1.put("/data.bin?q=1&r=two", new Response(every, {{
        headers: {{"Content-Type": "application/octet-stream", "X-Custom": "kept, exactly"}}}}));
      await v1.put("/missing?id=7", new Response("gone", {{status: 404, statusText: "Not Here", headers: {{"X-Reason": "test"}}}}));
      await v1.put(new Request("/greeting?x=1", {{headers: {{"X-Lang": "fr", "X-Other": "o"}}}}),
                   new Response("bonjour", {{headers: {{"Vary": "X-Lang"}}}}));
      await v1.add("/page?title=fetched");
      await v1.put("/opaque", await fetch({json.dumps(other_origin + "/page?title=opaque")}, {{mode: "no-cors"}}));
      const v2 = await caches.open("v2 \\u2713\\ud83d\\ude00");
      await v2.put("/empty", new Response(null, {{status: 204, statusText: "Nothing"}}));
      await caches.open("empty");
      return (await caches.keys()).length;
    }})()"""


FILL_SECOND = f"""(async () => {{
  const big = (seed) => {{
    const bytes = new Uint8Array({BIG});
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed) & 255;
    return bytes;
  }};
  const cache = await caches.open("second");
  await cache.put("/big/1", new Response(big(1)));
  await cache.put("/big/2", new Response(big(2)));
  await cache.put("/small?a=b", new Response("small", {{headers: {{"Content-Type": "text/plain"}}}}));
  return (await cache.keys()).length;
}})()"""


async def _dump(context: BrowserContext, origin: str) -> list[Any]:
    tab = await context.new_page(f"{origin}/page?title=check")
    try:
        return list(await evaluate(tab, DUMP, await_promise=True))
    finally:
        await tab.send("Page.close")


def _without_opaque(dump: list[Any]) -> list[Any]:
    """What a restore can recreate: opaque entries gone, every response built in the page ("default")."""
    return [
        [name, [{**e, "type": "default"} for e in entries if e["type"] != "opaque"]] for name, entries in dump
    ]


def _entries(state: model.BrowserSessionState) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """Entries by (origin, cache name, URL): request headers, status, text, response headers, body."""
    names = {c.id: (c.origin, model.text(c.name)) for c in state.storage.cache_storage}
    return {
        (*names[e.cache], e.request_url): (
            sorted((h.name, h.value) for h in e.request_headers),
            e.status,
            e.status_text,
            sorted((h.name, h.value) for h in e.response_headers),
            e.body,
        )
        for e in state.storage.cache_entries
    }


async def test_caches_carry_over_byte_for_byte(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    first, second, other = site.url("127.0.0.1"), site.url("localhost"), site.url("127.0.0.2")
    async with browser_context(cdp) as source:
        tab = await source.new_page(f"{second}/page?title=second")
        assert await evaluate(tab, FILL_SECOND, await_promise=True) == 3
        await navigate(tab, f"{first}/page?title=first")
        assert await evaluate(tab, _fill_first(other), await_promise=True) == 3
        before = {first: await _dump(source, first), second: await _dump(source, second)}
        # localhost has no open frame now: it is read on a stub page, 127.0.0.1 through the tab.
        state = codec.decode(codec.encode(await capture_state(cdp, context=source.id, only=["cache_storage"])))

    names = [(c.origin, model.text(c.name), c.entry_count) for c in state.storage.cache_storage]
    assert names == [
        (first, "v1", 5), (first, "v2 ✓😀", 1), (first, "empty", 0), (second, "second", 3)
    ]
    by_url = {e.request_url: e for e in state.storage.cache_entries}
    assert by_url[f"{first}/data.bin?q=1&r=two"].body == bytes(range(256))
    assert by_url[f"{second}/big/2"].body == bytes((i * 31 + 2) & 255 for i in range(BIG))
    greeting = by_url[f"{first}/greeting?x=1"]
    assert ("X-Lang", "fr") in [(h.name, h.value) for h in greeting.request_headers]
    assert (by_url[f"{first}/missing?id=7"].status, by_url[f"{first}/missing?id=7"].status_text) == (404, "Not Here")
    assert by_url[f"{first}/page?title=fetched"].response_type == "basic"
    assert by_url[f"{first}/opaque"].response_type == "opaqueResponse"
    uncovered = [(u.what, u.reason) for u in state.report.uncovered]
    assert [what for what, _ in uncovered] == [f"CacheStorage cache 'v1' of {first}: entry {first}/opaque"]
    assert "opaque" in uncovered[0][1]

    async with browser_context(cdp_b) as target:
        stale = await target.new_page(f"{first}/page?title=stale")
        await evaluate(stale, "(async () => { await (await caches.open('v1')).put('/old', new Response('old'));"
                              " await (await caches.open('stale')).put('/x', new Response('x')); })()", await_promise=True)
        await navigate(stale, f"{second}/page?title=stale")
        await evaluate(stale, "caches.open('second').then(c => c.put('/old', new Response('old')))", await_promise=True)
        await stale.send("Page.close")

        report = await restore_state(cdp_b, state, context=target.id, only=["cache_storage"])
        assert report.restored["cache_storage"] == 8
        assert [n for n in report.notes if "/opaque" in n] == [
            f"CacheStorage cache 'v1' of {first}: entry {first}/opaque not restored: an opaque response cannot be recreated"
        ]
        assert len(report.notes) == 1

        after = {first: await _dump(target, first), second: await _dump(target, second)}
        assert after == {origin: _without_opaque(dump) for origin, dump in before.items()}
        binary = next(e for e in after[first][0][1] if e["url"].endswith("/data.bin?q=1&r=two"))
        assert binary["sha256"] == hashlib.sha256(bytes(range(256))).hexdigest()

        check = await target.new_page(f"{first}/page?title=vary")
        vary = await evaluate(check, """(async () => {
          const match = (lang) => caches.match(new Request("/greeting?x=1", {headers: lang ? {"X-Lang": lang} : {}}));
          return [await (await match("fr")).text(), await match("de") === undefined, await match("") === undefined];
        })()""", await_promise=True)
        assert vary == ["bonjour", True, True]
        await check.send("Page.close")

        again = await capture_state(cdp_b, context=target.id, only=["cache_storage"], origins=[first, second])
    expected = {k: v for k, v in _entries(state).items() if not k[2].endswith("/opaque")}
    assert _entries(again) == expected


async def test_unreadable_cache_name_is_reported(site: Site, cdp: CdpConnection) -> None:
    origin = site.url("127.0.0.1")
    async with browser_context(cdp) as source:
        tab = await source.new_page(f"{origin}/page?title=lone")
        await evaluate(tab, "(async () => { await (await caches.open('ok')).put('/a', new Response('a'));"
                            " await (await caches.open('lone\\ud800')).put('/b', new Response('b')); })()", await_promise=True)
        state = await capture_state(cdp, context=source.id, only=["cache_storage"])
    assert [model.text(c.name) for c in state.storage.cache_storage] == ["ok"]
    assert [u.what for u in state.report.uncovered] == [f"CacheStorage cache 'lone\\ud800' of {origin}"]


async def _registrations(context: BrowserContext, origin: str) -> list[dict[str, Any]]:
    tab = await context.new_page(f"{origin}/page?title=workers")
    try:
        return list(await evaluate(tab, """navigator.serviceWorker.getRegistrations().then((rs) => rs.map((r) => {
          const w = r.installing || r.waiting || r.active;
          return {scope: r.scope, script: w && w.scriptURL, updateViaCache: r.updateViaCache};
        }))""", await_promise=True))
    finally:
        await tab.send("Page.close")


async def test_service_workers_are_registered_again_only_when_asked(
    site: Site, cdp: CdpConnection, cdp_b: CdpConnection
) -> None:
    origin = site.url("127.0.0.1")
    async with browser_context(cdp) as source:
        tab = await source.new_page(f"{origin}/page?title=register")
        await evaluate(tab, "navigator.serviceWorker.register('/sw.js?v=1', {scope: '/app/', updateViaCache: 'none'})",
                       await_promise=True)
        await tab.send("Page.close")
        # No tab is open: the origin is read on a stub page because its storage holds a service worker.
        state = await capture_state(cdp, context=source.id, only=["service_workers"], origins=[origin])
    [registration] = state.network.service_workers
    assert (registration.origin, registration.scope, registration.script_url, registration.update_via_cache) == (
        origin, f"{origin}/app/", f"{origin}/sw.js?v=1", "none"
    )
    assert registration.state in ("installing", "installed", "activating", "activated")

    contexts: list[str] = []
    try:
        report = await restore_state(cdp_b, state, context="new", only=["service_workers"])
        contexts.append(report.context_id or "")
        assert "service_workers" not in report.restored
        assert report.notes == [
            "1 service worker registration(s) were captured and not registered again "
            "(ask for the service_workers option, psp restore --service-workers, to register them)"
        ]
        assert await _registrations(BrowserContext(cdp_b, contexts[0]), origin) == []

        report = await restore_state(cdp_b, state, context="new", only=["service_workers"], options=["service_workers"])
        contexts.append(report.context_id or "")
        assert report.restored["service_workers"] == 1 and report.notes == []
        restored = BrowserContext(cdp_b, contexts[1])
        expected = [{"scope": f"{origin}/app/", "script": f"{origin}/sw.js?v=1", "updateViaCache": "none"}]

        async def registered() -> bool:
            return await _registrations(restored, origin) == expected

        await wait_until(registered)
    finally:
        with trio.CancelScope(shield=True):
            for context_id in contexts:
                await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": context_id})
