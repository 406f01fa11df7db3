"""Capture/restore benchmark: psp_cdp against Playwright's storage_state, on one browser state.

What it does (see bench/README.md):

1. serves a small site on four HTTP origins (127.0.0.1 twice, 127.0.0.2, localhost),
   each with its own ThreadingHTTPServer bound to loopback;
2. launches one Chromium with ``psp_cdp.cdp.launch_chromium()`` and builds a heavy
   state in its default context: ~50 cookies (Set-Cookie headers and
   ``Storage.setCookies``), ~1 MB of localStorage over 4 origins, 4 tabs with 2-3
   history entries each, and some sessionStorage;
3. verifies once that a psp_cdp restore (and a Playwright restore) reproduce it;
4. times, for N rounds on that same state: psp_cdp connect / capture_state / encode /
   decode / restore_state(context="new"), and Playwright connect_over_cdp /
   storage_state() / new_context(storage_state=...) (alone, and plus opening the tabs);
5. profiles one psp_cdp capture and restore (time per component and per CDP method)
   and measures the Python heap peak (tracemalloc) of capture+encode;
6. prints markdown tables; ``--json PATH`` writes every figure to a file.

Run: ``.venv/bin/python bench/capture_restore.py [--rounds N] [--json out.json]``
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import html
import json
import math
import random
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import trio

import psp_cdp
from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.model import BrowserSessionState
from psp_cdp.state import engine
from psp_cdp.state.pages import BrowserContext
from psp_cdp.state.registry import components

from benchkit import (
    WORDS, Origin, PlaywrightOverCdp, evaluate, finish_run, goto, json_blob, kib, ms, page_targets, psp_capture,
    restored_in_new_context, serve_site,
)

CHROMIUM = "/usr/bin/chromium"
ROUND_TIMEOUT = 60.0  # seconds, per psp_cdp step; a hung step fails the run instead of hanging it

# --------------------------------------------------------------------------------------
# The site: one ThreadingHTTPServer per origin
# --------------------------------------------------------------------------------------

#: (label, host the browser uses, address the server binds). "localhost" is bound on
#: 127.0.0.1: Chromium resolves localhost to loopback itself.
ORIGIN_SPECS = [
    ("mail", "127.0.0.1", "127.0.0.1"),
    ("docs", "127.0.0.1", "127.0.0.1"),  # same host, another port: another origin, shared cookies
    ("shop", "127.0.0.2", "127.0.0.2"),
    ("admin", "localhost", "127.0.0.1"),
]

#: Cookies each origin's /start page sets through Set-Cookie headers (name suffix, attributes).
SERVER_COOKIES = [
    ("sid", "HttpOnly; SameSite=Lax; Path=/; Max-Age=86400"),
    ("csrf", "SameSite=Strict; Path=/"),
    ("prefs", "Path=/; Max-Age=31536000"),
    ("app_state", "Path=/app; Max-Age=3600; SameSite=Lax"),
    ("remember", "HttpOnly; Max-Age=2592000; SameSite=Strict; Path=/"),
    ("tracking", "SameSite=None; Secure; Path=/; Max-Age=600"),
    ("session_only", ""),
]


class SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    label = "site"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/favicon.ico":
            self._reply(404, b"", "text/plain")
            return
        headers: list[tuple[str, str]] = []
        if parts.path == "/start":
            rng = random.Random(f"{self.label}-server-cookies")
            for suffix, attributes in SERVER_COOKIES:
                value = base64.urlsafe_b64encode(rng.randbytes(rng.choice((8, 24, 96)))).decode().rstrip("=")
                headers.append(("Set-Cookie", f"{self.label}_{suffix}={value}" + (f"; {attributes}" if attributes else "")))
        title = f"{self.label} {parts.path}{('?' + parts.query) if parts.query else ''}"
        body = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{'lorem ipsum ' * 40}</p></body></html>"
        ).encode()
        self._reply(200, body, "text/html; charset=utf-8", headers)

    def _reply(self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------
# The state to build
# --------------------------------------------------------------------------------------

#: History of each tab: paths on its origin; the last one is the current entry.
TAB_PATHS = {
    "mail": ["/start", "/inbox", "/inbox/42?thread=7"],
    "docs": ["/start", "/docs/guide"],
    "shop": ["/start", "/search?q=lamp", "/cart"],
    "admin": ["/start", "/settings"],
}
#: Share of the localStorage volume each origin gets.
LS_WEIGHTS = {"mail": 0.40, "docs": 0.25, "shop": 0.20, "admin": 0.15}
LS_TARGET_BYTES = 1_000_000

def _value(rng: random.Random, size: int) -> str:
    kind = rng.random()
    if kind < 0.45:  # JSON-ish cache blob (compressible)
        return json_blob(rng, size)
    if kind < 0.8:  # opaque token / base64 payload (incompressible)
        return base64.b64encode(rng.randbytes(max(1, size * 3 // 4))).decode()[:size]
    return " ".join(rng.choices(WORDS, k=max(1, size // 6)))[:size]  # prose with non-ASCII


def local_storage_items(label: str, target_bytes: int) -> dict[str, str]:
    """Deterministic items of varied sizes (8 B .. ~48 KB) adding up to about ``target_bytes`` of UTF-8."""
    rng = random.Random(f"ls-{label}")
    items: dict[str, str] = {}
    total = 0
    n = 0
    while total < target_bytes:
        size = int(math.exp(rng.uniform(math.log(8), math.log(48_000))))
        key = f"{label}:{rng.choice(['cache', 'draft', 'pref', 'feature', 'apollo', 'redux'])}:{n}"
        value = _value(rng, min(size, target_bytes - total + 8))
        items[key] = value
        total += len(key.encode()) + len(value.encode())
        n += 1
    return items


def session_storage_items(label: str) -> dict[str, str]:
    rng = random.Random(f"ss-{label}")
    return {
        f"{label}:scroll": str(rng.randrange(5000)),
        f"{label}:form-draft": _value(rng, 2000),
        f"{label}:wizard-step": str(rng.randrange(1, 6)),
        f"{label}:nonce": base64.b64encode(rng.randbytes(32)).decode(),
    }


def cdp_cookies(origins: list[Origin]) -> list[dict[str, Any]]:
    """Cookies set through Storage.setCookies, over the three hosts, with varied attributes."""
    rng = random.Random("cdp-cookies")
    now = time.time()
    cookies = []
    variants = [
        {"httpOnly": True, "sameSite": "Lax", "expires": now + 86400 * 30},
        {"sameSite": "Strict"},
        {"expires": now + 3600, "path": "/api"},
        {"httpOnly": True, "sameSite": "None", "secure": True, "expires": now + 86400},
        {"priority": "High", "expires": now + 7 * 86400},
        {},
    ]
    by_host = {}
    for origin in origins:
        by_host.setdefault(origin.host, origin)
    hosts = list(by_host.values())
    for i in range(26):
        origin = hosts[i % len(hosts)]
        variant = dict(variants[i % len(variants)])
        size = rng.choice((4, 16, 40, 120, 600))
        cookie = {
            "name": f"cdp_{i:02d}_{origin.label}",
            "value": base64.urlsafe_b64encode(rng.randbytes(size)).decode().rstrip("="),
            "url": f"{origin.url}{variant.pop('path', '/')}",
            **variant,
        }
        cookies.append(cookie)
    return cookies


@dataclass
class SourceTruth:
    """The built state, read back from the browser (what a restore has to reproduce)."""

    cookies: list[dict[str, Any]] = field(default_factory=list)
    local_storage: dict[str, dict[str, str]] = field(default_factory=dict)  # origin -> items
    tabs: list[dict[str, Any]] = field(default_factory=list)  # url, history, session_storage
    product: str = ""

    def cookie_keys(self) -> set[tuple[str, str, str, str]]:
        return cookie_keys(self.cookies)

    def ls_bytes(self) -> int:
        return sum(len(k.encode()) + len(v.encode()) for items in self.local_storage.values() for k, v in items.items())

    def ls_items(self) -> int:
        return sum(len(items) for items in self.local_storage.values())

    def ss_items(self) -> int:
        return sum(len(t["session_storage"]) for t in self.tabs)

    def history_entries(self) -> int:
        return sum(len(t["history"]) for t in self.tabs)


def cookie_keys(cookies: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(c["name"], c["domain"], c["path"], c["value"]) for c in cookies}


# --------------------------------------------------------------------------------------
# Driving pages over CDP (as examples/demo.py does)
# --------------------------------------------------------------------------------------

READ_STORAGE = """(kind => {
  const s = window[kind], out = [];
  for (let i = 0; i < s.length; i++) { const k = s.key(i); out.push([k, s.getItem(k)]); }
  return JSON.stringify(out);
})"""


async def read_storage(session: CdpSession, kind: str) -> dict[str, str]:
    return dict(json.loads(await evaluate(session, f"{READ_STORAGE}({json.dumps(kind)})")))


async def write_storage(session: CdpSession, kind: str, items: dict[str, str]) -> None:
    payload = json.dumps(json.dumps(list(items.items()), ensure_ascii=False), ensure_ascii=False)
    count = await evaluate(
        session, f"(() => {{ for (const [k, v] of JSON.parse({payload})) {kind}.setItem(k, v); return {kind}.length; }})()"
    )
    if count != len(items):
        raise RuntimeError(f"{kind}: wrote {count} of {len(items)} items")


async def read_context(conn: CdpConnection, context_id: str | None) -> SourceTruth:
    """Cookies, localStorage (per origin, from the open tabs), tabs with history and sessionStorage."""
    truth = SourceTruth()
    params = {"browserContextId": context_id} if context_id else {}
    truth.cookies = (await conn.send("Storage.getCookies", params))["cookies"]
    for info in await page_targets(conn, context_id):
        tab = await conn.attach(info["targetId"])
        try:
            url = await evaluate(tab, "location.href")
            origin = await evaluate(tab, "location.origin")
            history = await tab.send("Page.getNavigationHistory")
            if origin and origin != "null":
                truth.local_storage.setdefault(origin, await read_storage(tab, "localStorage"))
                session_storage = await read_storage(tab, "sessionStorage")
            else:
                session_storage = {}
            truth.tabs.append({
                "url": url,
                "history": [e["url"] for e in history["entries"]],
                "current": history["currentIndex"],
                "session_storage": session_storage,
            })
        finally:
            await tab.detach()
    truth.tabs.sort(key=lambda t: t["url"])
    return truth


async def build_state(endpoint: str, origins: list[Origin]) -> SourceTruth:
    by_label = {o.label: o for o in origins}
    async with open_cdp(endpoint) as conn:
        truth_product = (await conn.send("Browser.getVersion"))["product"]
        existing = await page_targets(conn, None)
        target_ids = [existing[0]["targetId"]] if existing else []
        while len(target_ids) < len(TAB_PATHS):
            target_ids.append((await conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"])
        for target_id, (label, paths) in zip(target_ids, TAB_PATHS.items()):
            origin = by_label[label]
            tab = await conn.attach(target_id)
            try:
                await tab.send("Page.enable")
                for path in paths:
                    await goto(tab, origin.url + path)
                share = int(LS_TARGET_BYTES * LS_WEIGHTS[label])
                await write_storage(tab, "localStorage", local_storage_items(label, share))
                await write_storage(tab, "sessionStorage", session_storage_items(label))
            finally:
                await tab.detach()
        await conn.send("Storage.setCookies", {"cookies": cdp_cookies(origins)})
        truth = await read_context(conn, None)
        truth.product = truth_product
        return truth


# --------------------------------------------------------------------------------------
# psp_cdp rounds
# --------------------------------------------------------------------------------------


async def psp_restore(endpoint: str, state: BrowserSessionState, verify: SourceTruth | None) -> dict[str, Any]:
    async with restored_in_new_context(endpoint, state, ROUND_TIMEOUT) as (conn, context_id, out):
        if verify is not None:
            out["restored"] = await read_context(conn, context_id)
    return out


def state_summary(state: BrowserSessionState) -> dict[str, int]:
    ls = state.storage.local_storage
    return {
        "cookies": len(state.storage.cookies),
        "ls_origins": len(ls),
        "ls_items": sum(len(s.items) for s in ls),
        "ss_items": sum(len(s.items) for t in state.history.tabs for s in t.session_storage),
        "tabs": len(state.history.tabs),
        "origins_read": len(state.report.origins_covered),
        "history_entries": sum(len(t.navigation.entries) for t in state.history.tabs),
    }


# --------------------------------------------------------------------------------------
# Playwright rounds
# --------------------------------------------------------------------------------------


class PlaywrightSide(PlaywrightOverCdp):
    def tab_urls(self) -> list[str]:
        return sorted(p.url for p in self.browser.contexts[0].pages if p.url.startswith("http"))

    def restore(self, state: dict[str, Any], urls: list[str], verify: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        t0 = time.perf_counter()
        context = self.browser.new_context(storage_state=state)
        try:
            t1 = time.perf_counter()
            pages = []
            for url in urls:
                page = context.new_page()
                page.goto(url, wait_until="load")
                pages.append(page)
            t2 = time.perf_counter()
            out["new_context"] = t1 - t0
            out["new_context_tabs"] = t2 - t0
            if verify:
                local: dict[str, dict[str, str]] = {}
                for page in pages:
                    origin = page.evaluate("location.origin")
                    local.setdefault(origin, dict(json.loads(page.evaluate(f"{READ_STORAGE}('localStorage')"))))
                out["cookies"] = context.cookies()
                out["local_storage"] = local
                out["session_storage_items"] = sum(
                    len(json.loads(p.evaluate(f"{READ_STORAGE}('sessionStorage')"))) for p in pages
                )
                entries = 0
                for page in pages:
                    cdp = context.new_cdp_session(page)
                    history = cdp.send("Page.getNavigationHistory")["entries"]
                    entries += sum(1 for e in history if e["url"].startswith("http"))
                    cdp.detach()
                out["history_entries"] = entries
        finally:
            with contextlib.suppress(Exception):
                context.close()
        return out


def pw_summary(state: dict[str, Any]) -> dict[str, int]:
    return {
        "cookies": len(state.get("cookies", [])),
        "ls_origins": len(state.get("origins", [])),
        "ls_items": sum(len(o.get("localStorage", [])) for o in state.get("origins", [])),
    }


# --------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------


def compare(source: SourceTruth, restored_cookies: list[dict[str, Any]], restored_ls: dict[str, dict[str, str]],
            restored_tabs: list[dict[str, Any]] | None) -> tuple[bool, list[str]]:
    lines = []
    ok = True
    want, got = source.cookie_keys(), cookie_keys(restored_cookies)
    cookie_ok = want == got
    ok &= cookie_ok
    lines.append(f"cookies: {len(got)}/{len(want)} " + ("identical (name, domain, path, value)" if cookie_ok else
                 f"DIFFER: missing {sorted(k[0] for k in want - got)}, extra {sorted(k[0] for k in got - want)}"))
    for origin, items in sorted(source.local_storage.items()):
        other = restored_ls.get(origin)
        same = other == items
        ok &= same
        lines.append(f"localStorage {origin}: {len(other or {})}/{len(items)} items " + ("identical" if same else "DIFFER"))
    if restored_tabs is not None:
        same_tabs = [(t["url"], t["history"], t["current"], t["session_storage"]) for t in source.tabs] == \
                    [(t["url"], t["history"], t["current"], t["session_storage"]) for t in restored_tabs]
        ok &= same_tabs
        lines.append(f"tabs: {len(restored_tabs)}/{len(source.tabs)}, history entries "
                     f"{sum(len(t['history']) for t in restored_tabs)}/{source.history_entries()}, sessionStorage items "
                     f"{sum(len(t['session_storage']) for t in restored_tabs)}/{source.ss_items()} "
                     + ("identical" if same_tabs else "DIFFER"))
    return ok, lines


# --------------------------------------------------------------------------------------
# Profiling one psp_cdp capture and restore
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def cdp_profile() -> Iterator[dict[str, Any]]:
    """Per CDP method: calls and summed latency; per component: wall time. Patched in this process only."""
    methods: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    parts: dict[str, float] = defaultdict(float)
    original_send = CdpConnection._send

    async def timed_send(self: CdpConnection, method: str, params: dict[str, Any], session: CdpSession) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await original_send(self, method, params, session)
        finally:
            methods[method][0] += 1
            methods[method][1] += time.perf_counter() - t0

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                parts[name] += time.perf_counter() - t0
        return timed

    patched: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, attr: str, value: Any) -> None:
        patched.append((obj, attr, obj.__dict__.get(attr, _MISSING) if hasattr(obj, "__dict__") else _MISSING))
        setattr(obj, attr, value)

    stubs: list[float] = []
    original_stub_page = BrowserContext.stub_page

    @contextlib.asynccontextmanager
    async def timed_stub_page(self: BrowserContext, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            async with original_stub_page(self, **kwargs) as stub:
                yield stub
        finally:
            stubs.append(time.perf_counter() - t0)

    try:
        patch(CdpConnection, "_send", timed_send)
        patch(BrowserContext, "stub_page", timed_stub_page)
        patch(engine, "_attach_tabs", wrap("capture: attach tabs + frame trees + history", engine._attach_tabs))
        for component in components():
            patch(component, "capture", wrap(f"capture: {component.name}", component.capture))
            patch(component, "restore", wrap(f"restore: {component.name}", component.restore))
        yield {"methods": methods, "parts": parts, "stubs": stubs}
    finally:
        for obj, attr, old in reversed(patched):
            if old is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, old)


_MISSING = object()


async def profile_psp(endpoint: str) -> dict[str, Any]:
    with cdp_profile() as prof:
        t0 = time.perf_counter()
        state, _, _ = await psp_capture(endpoint, ROUND_TIMEOUT)
        capture_wall = time.perf_counter() - t0
        capture_methods = {k: list(v) for k, v in prof["methods"].items()}
        capture_stubs = list(prof["stubs"])
        prof["methods"].clear()
        prof["stubs"].clear()
        t0 = time.perf_counter()
        await psp_restore(endpoint, state, None)
        restore_wall = time.perf_counter() - t0
        restore_methods = {k: list(v) for k, v in prof["methods"].items()}
        restore_stubs = list(prof["stubs"])
        parts = dict(prof["parts"])
    return {"capture_wall": capture_wall, "restore_wall": restore_wall, "parts": parts,
            "capture_methods": capture_methods, "restore_methods": restore_methods,
            "capture_stub_pages": capture_stubs, "restore_stub_pages": restore_stubs}


# --------------------------------------------------------------------------------------
# Statistics and output
# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-CDP-method profile of psp_cdp")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    started = time.perf_counter()
    results: dict[str, Any] = {"rounds": args.rounds, "psp_cdp_version": psp_cdp.__version__}
    samples: dict[str, list[float]] = defaultdict(list)
    playwright: PlaywrightSide | None = None
    browser: LaunchedBrowser | None = None
    failures: list[str] = []

    with serve_site(ORIGIN_SPECS, SiteHandler) as origins, contextlib.ExitStack() as stack:
        try:
            browser = launch_chromium(executable=CHROMIUM)
            stack.callback(browser.close)
            endpoint = browser.endpoint
            print(f"site: {', '.join(o.url for o in origins)}; Chromium at {endpoint}", file=sys.stderr)

            # -- build the state -----------------------------------------------------------
            t0 = time.perf_counter()
            source = trio.run(build_state, endpoint, origins)
            print(f"built the state in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            results["chromium"] = source.product
            results["source"] = {
                "cookies": len(source.cookies),
                "cookies_http_only": sum(c["httpOnly"] for c in source.cookies),
                "cookies_secure": sum(c["secure"] for c in source.cookies),
                "cookies_session": sum(c["session"] for c in source.cookies),
                "cookie_hosts": len({c["domain"] for c in source.cookies}),
                "ls_origins": len(source.local_storage),
                "ls_items": source.ls_items(),
                "ls_bytes_utf8": source.ls_bytes(),
                "tabs": len(source.tabs),
                "history_entries": source.history_entries(),
                "ss_items": source.ss_items(),
            }

            playwright = PlaywrightSide()
            stack.callback(playwright.stop)

            # -- verify once (also the warm-up round; not timed) -------------------------
            state, _, _ = trio.run(psp_capture, endpoint, ROUND_TIMEOUT)
            decoded = codec.decode(codec.encode(state))
            restored = trio.run(psp_restore, endpoint, decoded, source)
            got: SourceTruth = restored["restored"]
            psp_ok, psp_lines = compare(source, got.cookies, got.local_storage, got.tabs)
            tab_origins = {o.url for o in origins}
            results["psp_verify"] = {"ok": psp_ok, "details": psp_lines, "report": restored["report"],
                                     "origins_read": list(state.report.origins_covered),
                                     "origins_probed": [o for o in state.report.origins_covered if o not in tab_origins],
                                     "origins_with_items": [s.origin for s in state.storage.local_storage],
                                     "uncovered": [f"{u.what}: {u.reason}" for u in state.report.uncovered]}

            playwright.connect(endpoint)
            tab_urls = playwright.tab_urls()
            pw_cold, _ = playwright.capture()
            results["pw_cold_captured"] = pw_summary(pw_cold)
            playwright.learn_origins()
            pw_state, _ = playwright.capture()
            pw_restored = playwright.restore(pw_state, tab_urls, verify=True)
            playwright.disconnect()
            pw_ok, pw_lines = compare(source, pw_restored["cookies"], pw_restored["local_storage"], None)
            pw_lines.append(f"sessionStorage items after restore: {pw_restored['session_storage_items']}/{source.ss_items()}; "
                            f"history entries: {pw_restored['history_entries']}/{source.history_entries()}")
            results["playwright_verify"] = {"ok": pw_ok, "details": pw_lines}
            print(f"verified (psp_cdp {'OK' if psp_ok else 'FAIL'}, Playwright {'OK' if pw_ok else 'FAIL'}); "
                  f"timing {args.rounds} round(s)", file=sys.stderr)

            # -- timed rounds --------------------------------------------------------------
            for r in range(args.rounds):
                order = ("psp", "pw") if r % 2 == 0 else ("pw", "psp")
                for side in order:
                    gc.collect()
                    if side == "psp":
                        state, connect, capture = trio.run(psp_capture, endpoint, ROUND_TIMEOUT)
                        t0 = time.perf_counter()
                        blob = codec.encode(state)
                        encode = time.perf_counter() - t0
                        t0 = time.perf_counter()
                        decoded = codec.decode(blob)
                        decode = time.perf_counter() - t0
                        samples["psp_connect"].append(connect)
                        samples["psp_capture"].append(capture)
                        samples["psp_encode"].append(encode)
                        samples["psp_decode"].append(decode)
                        samples["psp_capture_total"].append(connect + capture + encode)
                        restored = trio.run(psp_restore, endpoint, decoded, None)
                        samples["psp_restore"].append(restored["restore"])
                        samples["psp_dispose"].append(restored.get("dispose", float("nan")))
                        results["psp_sizes"] = {
                            "encoded_bytes": len(blob),
                            "protobuf_bytes": len(state.SerializeToString()),
                            "captured": state_summary(state),
                            "restore_report": restored["report"],
                        }
                    else:
                        connect = playwright.connect(endpoint)
                        pw_cold, capture_cold = playwright.capture()
                        playwright.learn_origins()
                        pw_state, capture = playwright.capture()
                        restored_pw = playwright.restore(pw_state, tab_urls, verify=False)
                        playwright.disconnect()
                        samples["pw_connect"].append(connect)
                        samples["pw_capture_cold"].append(capture_cold)
                        samples["pw_capture"].append(capture)
                        samples["pw_capture_total"].append(connect + capture)
                        samples["pw_new_context"].append(restored_pw["new_context"])
                        samples["pw_new_context_tabs"].append(restored_pw["new_context_tabs"])
                        results["pw_sizes"] = {
                            "json_bytes": len(json.dumps(pw_state, ensure_ascii=False).encode()),
                            "json_bytes_indent2": len(json.dumps(pw_state, indent=2, ensure_ascii=False).encode()),
                            "captured": pw_summary(pw_state),
                        }
                print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)

            # -- memory (separate, tracemalloc slows Python down) ----------------------------
            gc.collect()
            tracemalloc.start()
            state, _, _ = trio.run(psp_capture, endpoint, ROUND_TIMEOUT)
            blob = codec.encode(state)
            psp_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del state, blob
            gc.collect()
            playwright.connect(endpoint)
            playwright.learn_origins()
            tracemalloc.start()
            pw_state, _ = playwright.capture()
            pw_text = json.dumps(pw_state)
            pw_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            playwright.disconnect()
            del pw_state, pw_text
            results["memory"] = {"psp_capture_encode_peak": psp_peak, "pw_storage_state_python_peak": pw_peak}

            # -- profile ------------------------------------------------------------------------
            if not args.no_profile:
                results["profile"] = trio.run(profile_psp, endpoint)
        except BaseException as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            finish_run(results, started, args.json, samples=samples, browser=browser, failures=failures)

    print_report(results)
    if args.json:
        print(f"\nresults written to {args.json}")
    return 0 if results["psp_verify"]["ok"] else 1


def print_report(results: dict[str, Any]) -> None:
    src, st = results["source"], results["stats"]
    psp_sizes, pw_sizes = results["psp_sizes"], results["pw_sizes"]
    n_tabs = src["tabs"]

    def row(label: str, key: str, note: str = "") -> str:
        s = st[key]
        return f"| {label} | {ms(s['median'])} | {ms(s['min'])} | {ms(s['p95'])} | {note} |"

    print(f"# Capture/restore benchmark: psp_cdp {results['psp_cdp_version']} vs Playwright storage_state\n")
    print(f"- Browser: {results['chromium']} (headless, one process, default context as the source)")
    print(f"- State: {src['cookies']} cookies on {src['cookie_hosts']} hosts ({src['cookies_http_only']} HttpOnly, "
          f"{src['cookies_secure']} Secure, {src['cookies_session']} session); localStorage {kib(src['ls_bytes_utf8'])} "
          f"UTF-8 in {src['ls_items']} items over {src['ls_origins']} origins; {n_tabs} tabs with "
          f"{src['history_entries']} history entries; {src['ss_items']} sessionStorage items")
    print(f"- Rounds: {results['rounds']} timed (after one untimed verify/warm-up round); the two tools alternate "
          f"which goes first; wall time of the whole run {results['wall_seconds']:.1f}s")
    print("- p95 is nearest-rank, i.e. the slowest sample when there are fewer than 20 rounds\n")

    print("## Capture\n")
    print("| step | median ms | min ms | p95 ms | notes |")
    print("|---|---:|---:|---:|---|")
    print(row("psp_cdp open_cdp (connect)", "psp_connect", "/json/version + WebSocket handshake"))
    print(row("psp_cdp capture_state(conn)", "psp_capture", "cookies, localStorage, sessionStorage, tabs+history"))
    print(row("psp_cdp codec.encode(state)", "psp_encode", "protobuf + lz4"))
    print(row("psp_cdp connect + capture + encode", "psp_capture_total", ""))
    print(row("psp_cdp codec.decode(blob)", "psp_decode", "(not part of restore below)"))
    print(row("Playwright connect_over_cdp", "pw_connect", "attaches to every existing tab"))
    cold = results["pw_cold_captured"]
    print(row("Playwright storage_state(), right after connecting", "pw_capture_cold",
              f"finds {cold['cookies']} cookies, {cold['ls_origins']} localStorage origins (see caveats)"))
    print(row("Playwright storage_state(), tabs reloaded first", "pw_capture",
              "cookies + localStorage; the reload (untimed) lets it see the 4 origins"))
    print(row("Playwright connect + storage_state (reloaded)", "pw_capture_total", "reload time excluded"))

    print("\n## Restore (into a fresh browser context of the same browser)\n")
    print("| step | median ms | min ms | p95 ms | notes |")
    print("|---|---:|---:|---:|---|")
    print(row('psp_cdp restore_state(conn, state, context="new")', "psp_restore",
              f"cookies + localStorage + {n_tabs} tabs with history, sessionStorage, loaded live"))
    print(row("psp_cdp Target.disposeBrowserContext", "psp_dispose", "cleanup, not in the restore figure"))
    print(row("Playwright new_context(storage_state=...)", "pw_new_context", "cookies + localStorage, no tabs"))
    print(row(f"Playwright new_context + open {n_tabs} tabs (load)", "pw_new_context_tabs",
              "tabs opened one after another, one entry each"))

    pc, wc = psp_sizes["captured"], pw_sizes["captured"]
    print("\n## Snapshot size and content\n")
    print("| | psp_cdp | Playwright |")
    print("|---|---|---|")
    print(f"| snapshot size | {kib(psp_sizes['encoded_bytes'])} encoded (lz4); {kib(psp_sizes['protobuf_bytes'])} raw protobuf "
          f"| {kib(pw_sizes['json_bytes'])} compact JSON; {kib(pw_sizes['json_bytes_indent2'])} with indent=2 |")
    print(f"| cookies | {pc['cookies']} | {wc['cookies']} |")
    print(f"| localStorage origins / items | {pc['ls_origins']} / {pc['ls_items']} | {wc['ls_origins']} / {wc['ls_items']} |")
    print(f"| sessionStorage items | {pc['ss_items']} | not captured |")
    print(f"| tabs / history entries | {pc['tabs']} / {pc['history_entries']} | not captured |")
    probed = results["psp_verify"]["origins_probed"]
    print(f"| origins whose localStorage was read | {pc['origins_read']} ({pc['origins_read'] - len(probed)} from open tabs, "
          f"{len(probed)} probed through stub pages) | {wc['ls_origins']} (only those with items are listed) |")
    mem = results.get("memory")
    if mem:
        print(f"| Python heap peak (tracemalloc) | {kib(mem['psp_capture_encode_peak'])} for capture + encode "
              f"| {kib(mem['pw_storage_state_python_peak'])} for storage_state() + json.dumps (Python side only; "
              f"the work happens in Playwright's Node driver) |")

    print("\n## Correctness (checked once, on the verify round)\n")
    for name, key in (("psp_cdp restore", "psp_verify"), ("Playwright restore", "playwright_verify")):
        verdict = results[key]
        print(f"- {name}: **{'OK' if verdict['ok'] else 'FAIL'}**")
        for line in verdict["details"]:
            print(f"  - {line}")
        if key == "psp_verify":
            empty = [o for o in probed if o not in verdict["origins_with_items"]]
            print(f"  - origins psp_cdp probed through stub pages during capture ({len(empty)} of {len(probed)} "
                  f"had no localStorage): {', '.join(probed) or 'none'}")
            if verdict["uncovered"]:
                print(f"  - reported uncovered: {'; '.join(verdict['uncovered'])}")
            if verdict["report"].get("notes"):
                print(f"  - restore notes: {'; '.join(verdict['report']['notes'])}")

    prof = results.get("profile")
    if prof:
        print("\n## Where psp_cdp spends its time (one profiled capture and restore)\n")
        print(f"Wall: capture {ms(prof['capture_wall'])} ms, restore {ms(prof['restore_wall'])} ms (profiling adds a "
              f"little overhead). Component times are wall time; CDP latencies are summed over calls, which overlap "
              f"when psp_cdp runs stub pages concurrently.\n")
        print("| component | ms |")
        print("|---|---:|")
        for name, seconds in sorted(prof["parts"].items(), key=lambda kv: (not kv[0].startswith("capture"), -kv[1])):
            print(f"| {name} | {ms(seconds)} |")
        for label, key in (("capture", "capture_stub_pages"), ("restore", "restore_stub_pages")):
            lifetimes = prof[key]
            if lifetimes:
                print(f"\n{label}: {len(lifetimes)} stub page(s) (a new tab each unless a restored tab is reused), "
                      f"lifetime median {ms(statistics.median(lifetimes))} ms, max {ms(max(lifetimes))} ms, "
                      f"at most 4 at once.")
        for label, key in (("capture", "capture_methods"), ("restore", "restore_methods")):
            top = sorted(prof[key].items(), key=lambda kv: -kv[1][1])[:8]
            total_calls = sum(v[0] for v in prof[key].values())
            print(f"\n| {label}: CDP method ({total_calls} calls in all) | calls | summed ms |")
            print("|---|---:|---:|")
            for method, (calls, seconds) in top:
                print(f"| {method} | {calls} | {ms(seconds)} |")

    print("\n## Caveats\n")
    print("- Playwright's storage_state() carries cookies and localStorage (optionally IndexedDB) only: no "
          "sessionStorage, no tabs, no back/forward history, no history.state or scroll. Its restore row with tabs "
          "re-opens the current URLs only, so the two restore figures do not do the same amount of work: psp_cdp "
          "walks every history entry through stub documents and writes sessionStorage before loading each tab live.")
    print("- Playwright reads localStorage only for origins in which it saw a document commit while connected: tabs "
          "that were already open when connect_over_cdp attached do not count, so right after connecting it returns "
          "the cookies and no localStorage at all. The benchmark reloads the tabs (untimed) to give it the origins. "
          "psp_cdp reads the open tabs' origins and also probes the origins the cookies and the history entries point "
          "to (through stub pages; no request reaches the site), which costs time but finds storage of origins with no "
          "open tab.")
    print("- psp_cdp connection time is reported separately from capture_state; Playwright's connect_over_cdp also "
          "attaches to every existing tab. The Playwright driver (Node) is started once, outside the timings.")
    print("- The site is served from this process on loopback; page loads are ~ms. Absolute figures depend on the "
          "machine; compare the columns, not the numbers across machines.")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # browsers, driver and servers are closed by then
        print("interrupted", file=sys.stderr)
        sys.exit(130)
