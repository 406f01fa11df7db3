"""Recording and replay: timing, speed and the recorder's cost, psp_cdp.record side by side with Playwright.

What it does (see bench/README.md):

1. serves one page on loopback (buttons whose click handlers do a little work, inputs, a
   fetch() GET and a fetch() POST, and 200 links and 100 row buttons below them, as an app
   page would have), launches one headless Chromium with ``launch_chromium()``;
2. records a synthetic session of about ``--events`` events (clicks on buttons, typing
   into inputs, 10-30 ms apart, a few fetch() calls) with psp_cdp's ``Recorder``, run in a
   child process, while this process drives the tab through CDP's Input domain from its
   own connection, as tests/test_record.py's ``User`` does;
3. replays it with ``Player(speed=1.0)`` into a fresh context: the timing error of each
   step (``Step.dispatched - Step.scheduled``), and the same lateness as the page saw it
   (each replayed click and keydown's own ``timeStamp``);
4. replays it with ``Player(speed=None)`` (``--max``): steps per second of the event phase
   (``ReplayReport.events_started`` to ``events_ended``), the restore timed apart; beside
   it, Playwright (``connect_over_cdp`` to the same
   browser) drives the same clicks and typing with ``page.click`` / ``keyboard.type`` as
   fast as it can;
5. measures what a recorder adds to the latency of a click and a key press (CDP round trip
   of the Input commands, and the page's own measure from the event's ``timeStamp`` to the
   end of its handler), with no recorder, psp_cdp's Recorder (input; input + network;
   input + network + DOM) and Playwright connected, with and without tracing
   (``snapshots=True, screenshots=False``); then with Playwright driving (``page.click`` /
   ``keyboard.press``), with no recorder, with tracing and with psp_cdp's Recorder;
6. serves a two-page form flow (``/flow``, ``/flow/done``: typing, a select, a checkbox, a
   textarea, a file, a fetch() POST whose answer goes to localStorage, a link, a comment in
   sessionStorage) and drives it three ways while the Recorder records: Playwright's API over
   ``connect_over_cdp``, Selenium with Debian's chromedriver (in its own Chromium), and CDP
   Input as a person; replays each recording with ``Player(speed=1.0, network="mock")``
   ``--rounds`` times: the share of steps done / retried / skipped / failed, whether the
   replay ended as recorded, the timing error, the mock's fallbacks and unmatched requests;
7. prints the recorded bytes per event (raw protobuf, and lz4 + sealed), the mock's hit
   rate during replay, and a summary table; ``--json PATH`` writes every figure.

Run: ``.venv/bin/python bench/replay.py [--quick] [--rounds N] [--events N] [--samples N] [--json PATH]``
"""

from __future__ import annotations

import argparse
import contextlib
import html
import importlib.util
import itertools
import json
import math
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

import psp_cdp
from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.errors import ProtocolError
from psp_cdp.record.events import event_data
from psp_cdp.record.player import DONE, FAILED, RETRIED, SKIPPED, Player, ReplayReport, Step
from psp_cdp.record.recorder import Recorder
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.model import BrowserSessionState
from psp_cdp.state.engine import capture_state
from psp_cdp.state.pages import BrowserContext

from benchkit import PlaywrightOverCdp, evaluate, finish_run, goto, serve_site

CHROMIUM = "/usr/bin/chromium"
CHILD_TIMEOUT = 60.0  # seconds for the recorder child to start or stop
#: Words typed into the inputs (ASCII: each character is one key press, on both sides).
TYPED = "alpha beta gamma delta inbox thread message draft label folder price cart token theme".split()
BUTTONS = [f"#b{i}" for i in range(6)]
FIELDS = ["#name", "#email", "#city", "#notes"]
#: Virtual key codes of the named keys the flow presses.
NAMED_KEYS = {"Enter": 13, "Tab": 9, "ArrowDown": 40}

# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------

_FILLER_LINKS = "".join(f'<a href="#s{i}">section {i}</a> ' for i in range(200))
_FILLER_ROWS = "".join(
    f"<tr><td>row {i}</td><td>{html.escape(TYPED[i % len(TYPED)])}</td><td><button type=button class=edit>Edit</button></td></tr>"
    for i in range(100)
)

APP_HTML = ("""<!doctype html><html><head><meta charset=utf-8><title>replay bench</title>
<link rel=icon href="data:,">
<style>body{font:14px sans-serif;margin:8px} button{margin:2px 4px;padding:4px 10px} input,textarea{margin:2px 4px}
#out{height:120px;overflow:hidden}</style></head><body>
<div id=buttons>""" + "".join(f'<button id=b{i} type=button>Add {i}</button>' for i in range(6)) + """</div>
<div id=form><label for=name>Name</label><input id=name autocomplete=off>
<label for=email>Email</label><input id=email autocomplete=off>
<label for=city>City</label><input id=city autocomplete=off>
<textarea id=notes aria-label="Notes" rows=1></textarea>
<button id=load type=button>Load</button><button id=save type=button>Save</button></div>
<div id=out><p id=count>0</p><p id=mirror></p><p id=saved></p><ul id=items></ul></div>
<nav>""" + _FILLER_LINKS + """</nav><table>""" + _FILLER_ROWS + """</table>
<script>
window.__lat = {click: [], key: []};
window.__log = [];
window.__pending = 0;
let total = 0, loads = 0, lastKeydown = 0;
const work = (seed) => { let x = seed; for (let i = 0; i < 20000; i++) x = (x * 31 + i) % 1000003; return x; };
document.querySelectorAll('#buttons button').forEach((button, i) => button.addEventListener('click', (e) => {
  total = (total + i + 1 + work(i)) % 1000000007;
  document.querySelector('#count').textContent = String(total);
  __lat.click.push(performance.now() - e.timeStamp);
}));
document.addEventListener('keydown', (e) => { lastKeydown = e.timeStamp; }, true);
for (const field of document.querySelectorAll('#form input, #form textarea'))
  field.addEventListener('input', (e) => {
    document.querySelector('#mirror').textContent = e.target.id + ': ' + e.target.value.slice(-40);
    __lat.key.push(performance.now() - lastKeydown);
  });
for (const type of ['click', 'keydown'])
  document.addEventListener(type, (e) => { if (e.isTrusted) __log.push([type, performance.timeOrigin + e.timeStamp]); }, true);
const fetched = async (request) => {
  __pending++;
  try { return await (await request).json(); } finally { __pending--; }
};
document.querySelector('#load').addEventListener('click', async () => {
  const answer = await fetched(fetch('/api/items?page=' + (++loads)));
  document.querySelector('#items').innerHTML = answer.items.map((x) => '<li>' + x + '</li>').join('');
});
document.querySelector('#save').addEventListener('click', async () => {
  const form = {name: document.querySelector('#name').value, email: document.querySelector('#email').value};
  const answer = await fetched(fetch('/api/save', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                  body: JSON.stringify(form)}));
  document.querySelector('#saved').textContent = 'saved ' + answer.name + ' #' + answer.bytes;
});
window.__final = () => JSON.stringify({count: document.querySelector('#count').textContent,
  fields: Array.from(document.querySelectorAll('#form input, #form textarea'), (f) => f.value),
  items: document.querySelector('#items').textContent, saved: document.querySelector('#saved').textContent});
</script></body></html>""").encode()

#: A two-page form flow (the idea of tests/site.py's /flow): page one's Send button posts the form, the
#: chosen file's name, type and text included, with fetch(); the answer (with an order number the site
#: counts up) shows in the page, goes to localStorage and reveals the link to page two, which shows it and
#: keeps a comment in sessionStorage.
FLOW_HTML = b"""<!doctype html><html><head><meta charset=utf-8><title>Flow</title><link rel=icon href="data:,"></head><body>
<label for=name>Name</label><input id=name name=name autocomplete=off>
<select id=plan name=plan><option value=free>Free</option><option value=pro>Pro</option><option value=team>Team</option></select>
<label><input type=checkbox id=terms name=terms> Accept the terms</label>
<textarea id=notes name=notes aria-label="Notes"></textarea>
<label for=avatar>Picture</label><input type=file id=avatar name=avatar>
<button id=send type=button>Send</button>
<p id=answer></p><a id=next href="/flow/done" hidden>Continue</a>
<script>
document.querySelector('#send').addEventListener('click', async () => {
  const picked = document.querySelector('#avatar').files[0];
  const form = {name: document.querySelector('#name').value, plan: document.querySelector('#plan').value,
    terms: document.querySelector('#terms').checked, notes: document.querySelector('#notes').value,
    file: picked ? {name: picked.name, type: picked.type, text: await picked.text()} : null};
  const response = await fetch('/api/flow', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(form)});
  const answer = await response.json();
  document.querySelector('#answer').textContent = answer.greeting;
  localStorage.setItem('answer', JSON.stringify(answer));
  document.querySelector('#next').hidden = false;
});
</script></body></html>"""
FLOW_DONE_HTML = b"""<!doctype html><html><head><meta charset=utf-8><title>Flow done</title><link rel=icon href="data:,"></head><body>
<p id=summary></p><input id=comment aria-label="Comment" autocomplete=off>
<script>
const answer = JSON.parse(localStorage.getItem('answer') || '{}');
document.querySelector('#summary').textContent = `${answer.greeting} (${answer.plan}, order ${answer.order})`;
document.querySelector('#comment').addEventListener('change', (e) => sessionStorage.setItem('comment', e.target.value));
</script></body></html>"""
#: What the flow leaves behind, read in its tab: the page, the stored answer (its order number too) and the comment.
FLOW_OUTCOME = (
    "JSON.stringify({url: location.pathname, summary: document.querySelector('#summary')?.textContent,"
    " comment: document.querySelector('#comment')?.value, answer: localStorage.getItem('answer'),"
    " saved: sessionStorage.getItem('comment')})"
)
#: Order numbers of /api/flow's answers: a replay answered from the recording shows the recorded one.
_ORDERS = itertools.count(1)


class SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    label = "site"
    #: Every request the server got, as "METHOD path": shows what a mocked replay let through to the site.
    hits: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(f"GET {self.path}")
        parts = urlsplit(self.path)
        if parts.path == "/app":
            self._reply(200, APP_HTML, "text/html; charset=utf-8")
        elif parts.path in ("/flow", "/flow/done"):
            self._reply(200, FLOW_HTML if parts.path == "/flow" else FLOW_DONE_HTML, "text/html; charset=utf-8")
        elif parts.path == "/api/items":
            page = int(parse_qs(parts.query).get("page", ["0"])[0])
            self._json({"page": page, "items": [f"item {page}.{i}" for i in range(5)]})
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        self.hits.append(f"POST {self.path}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path == "/api/save":
            form = json.loads(body or b"{}")
            self._json({"name": form.get("name", ""), "bytes": len(body)})
        elif urlsplit(self.path).path == "/api/flow":
            form = json.loads(body or b"{}")
            self._json({"greeting": f"Hello {form.get('name', '')}", "plan": form.get("plan"), "terms": form.get("terms"),
                        "notes": form.get("notes"), "file": form.get("file"), "order": next(_ORDERS)})
        else:
            self._reply(404, b"not found", "text/plain")

    def _json(self, value: Any) -> None:
        self._reply(200, json.dumps(value).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------
# Driving a tab through CDP's Input domain (as tests/test_record.py's User does)
# --------------------------------------------------------------------------------------


def key_params(ch: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """keyDown (with its text) and keyUp for one printable ASCII character."""
    if ch == " ":
        code, vk = "Space", 32
    elif ch.isalpha():
        code, vk = f"Key{ch.upper()}", ord(ch.upper())
    else:
        raise ValueError(f"no key for {ch!r}")
    common = {"key": ch, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
    return {"type": "keyDown", "text": ch, "unmodifiedText": ch, **common}, {"type": "keyUp", **common}


class Driver:
    """Clicks and key presses into one tab, from a CDP connection of this process."""

    def __init__(self, session: CdpSession) -> None:
        self.session = session
        self._centers: dict[str, tuple[float, float]] = {}

    async def center(self, selector: str) -> tuple[float, float]:
        if selector not in self._centers:
            box = json.loads(await evaluate(
                self.session, f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"))
            self._centers[selector] = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        return self._centers[selector]

    async def click(self, selector: str) -> float:
        """Move, press and release; the seconds of press + release (the release is answered once the click
        handlers have run)."""
        x, y = await self.center(selector)
        send = self.session.send
        await send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        t0 = time.perf_counter()
        await send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1})
        await send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x, "y": y, "button": "left", "buttons": 0, "clickCount": 1})
        return time.perf_counter() - t0

    async def key(self, ch: str) -> float:
        """keyDown + keyUp of one character; their seconds (the keyDown is answered once input has run)."""
        down, up = key_params(ch)
        t0 = time.perf_counter()
        await self.session.send("Input.dispatchKeyEvent", down)
        await self.session.send("Input.dispatchKeyEvent", up)
        return time.perf_counter() - t0

    async def press(self, key: str) -> None:
        """A named key (Enter, Tab, ArrowDown): rawKeyDown (keyDown with "\\r" for Enter) + keyUp."""
        common = {"key": key, "code": key, "windowsVirtualKeyCode": NAMED_KEYS[key], "nativeVirtualKeyCode": NAMED_KEYS[key]}
        down = {"type": "keyDown", "text": "\r", "unmodifiedText": "\r", **common} if key == "Enter" else {"type": "rawKeyDown", **common}
        await self.session.send("Input.dispatchKeyEvent", down)
        await self.session.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})


# --------------------------------------------------------------------------------------
# The recorder, in a child process (as `psp record` runs apart from what drives the browser)
# --------------------------------------------------------------------------------------


async def recorder_child(endpoint: str, context: str | None, network: bool, dom: bool, out: str | None) -> None:
    """Record ``context`` until a line arrives on stdin; with ``out``, capture the starting state first
    (as psp_cdp.record.session.record does) and write state + recording there. Prints "ready", then a
    JSON summary."""
    async with open_cdp(endpoint) as conn:
        browser_context = await BrowserContext.resolve(conn, context)
        state = None
        tabs: list[str] = []
        if out:
            state = await capture_state(conn, context=context)
            tabs = [tab.target_id for tab in state.history.tabs]
            for tab in state.history.tabs:
                tab.target_id = ""
        else:
            tabs = [t["targetId"] for t in await browser_context.page_targets()]
        recorder = Recorder(conn, browser_context, tabs=tabs, network=network, dom=dom)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run, stop)
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)
            stop.set()
        recording = recorder.recording()
    summary = {"events": len(recording.events), "mutations": len(recording.mutations),
               "exchanges": len(recording.exchanges), "types": dict(sorted(_count(e.type for e in recording.events).items()))}
    if out and state is not None:
        state.recording.CopyFrom(recording)
        with open(out, "wb") as fh:
            fh.write(state.SerializeToString())
    print(json.dumps(summary), flush=True)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return counts


class RecorderChild:
    """``replay.py --recorder-child`` in a process of its own; :meth:`stop` ends the recording."""

    def __init__(self, endpoint: str, context: str | None, *, network: bool, dom: bool, out: str | None = None) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--recorder-child", endpoint,
                   "--child-context", context or "default"]
        command += ["--child-network"] if network else []
        command += ["--child-dom"] if dom else []
        command += ["--child-out", out] if out else []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = self._line()
            if line.strip() != "ready":
                raise RuntimeError(f"the recorder child did not start: {line!r}")
        except BaseException:
            self.kill()
            raise

    def _line(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], CHILD_TIMEOUT)
        if not ready:
            raise RuntimeError("the recorder child did not answer in time")
        return self.process.stdout.readline()

    def stop(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        try:
            line = self._line()
            self.process.wait(CHILD_TIMEOUT)
        finally:
            self.kill()
        if self.process.returncode != 0 or not line:
            raise RuntimeError(f"the recorder child failed (status {self.process.returncode})")
        return json.loads(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------------------
# 1. Recording a synthetic session
# --------------------------------------------------------------------------------------


def make_plan(rng: random.Random, events: int) -> list[tuple[str, str]]:
    """("click", selector) and ("type", word) actions that make about ``events`` recorded events.

    A click that moves focus makes two events (focus, click), one that does not makes one;
    a typed character three (keydown, input, keyup). A few clicks on Load (fetch GET) and
    Save (fetch POST) are spread over the session.
    """
    fetches = max(3, events // 50)
    marks = [events * (k + 1) / (fetches + 1) for k in range(fetches)]
    plan: list[tuple[str, str]] = []
    estimate, focused = 0, None

    def click(selector: str) -> None:
        nonlocal estimate, focused
        plan.append(("click", selector))
        estimate += 1 if focused == selector else 2
        focused = selector

    while estimate < events:
        if marks and estimate >= marks[0]:
            marks.pop(0)
            click("#save" if len(marks) % 3 == 1 else "#load")
        elif rng.random() < 0.55:
            click(rng.choice(BUTTONS))
        else:
            click(rng.choice(FIELDS))
            word = rng.choice(TYPED)[: rng.randint(3, 6)]
            word = word if rng.random() < 0.7 else " " + word
            plan.append(("type", word))
            estimate += 3 * len(word)
    return plan


def user_actions(plan: list[tuple[str, str]]) -> tuple[int, int]:
    """Clicks and key presses in a plan."""
    return sum(1 for kind, _ in plan if kind == "click"), sum(len(text) for kind, text in plan if kind == "type")


async def wait_idle(session: CdpSession, timeout: float = 10.0) -> None:
    """Until the page has no fetch() pending."""
    with trio.move_on_after(timeout):
        while await evaluate(session, "window.__pending") != 0:
            await trio.sleep(0.02)


@contextlib.asynccontextmanager
async def tab_in_new_context(conn: CdpConnection, url: str) -> AsyncIterator[tuple[str, CdpSession]]:
    """A tab at ``url`` in a new browser context (its id, the tab's session); the context is disposed of after the block."""
    context_id = (await conn.send("Target.createBrowserContext", {"disposeOnDetach": False}))["browserContextId"]
    try:
        target = await conn.send("Target.createTarget", {"url": "about:blank", "browserContextId": context_id})
        session = await conn.attach(target["targetId"])
        await session.send("Page.enable")
        await goto(session, url)
        yield context_id, session
    finally:
        with trio.CancelScope(shield=True):
            await conn.send("Target.disposeBrowserContext", {"browserContextId": context_id})


async def record_session(endpoint: str, url: str, plan: list[tuple[str, str]], seed: int, out: str) -> dict[str, Any]:
    """Drive ``plan`` in a new context's tab, paced 10-30 ms between clicks and key presses, while the
    recorder child records; the state + recording land in ``out``."""
    rng = random.Random(seed)
    async with open_cdp(endpoint) as conn, tab_in_new_context(conn, url) as (context_id, session):
        child = await trio.to_thread.run_sync(lambda: RecorderChild(endpoint, context_id, network=True, dom=False, out=out))
        try:
            driver = Driver(session)
            t0 = time.perf_counter()
            for kind, what in plan:
                if kind == "click":
                    await driver.click(what)
                    await trio.sleep(rng.uniform(0.010, 0.030))
                else:
                    for ch in what:
                        await driver.key(ch)
                        await trio.sleep(rng.uniform(0.010, 0.030))
            driven = time.perf_counter() - t0
            await wait_idle(session)
            await trio.sleep(0.3)  # the last binding calls and response bodies reach the recorder
            final = json.loads(await evaluate(session, "window.__final()"))
        finally:
            summary = await trio.to_thread.run_sync(child.stop)
    return {"summary": summary, "final": final, "driven_seconds": driven}


# --------------------------------------------------------------------------------------
# 2. Replaying it
# --------------------------------------------------------------------------------------


async def clock_offset(session: CdpSession) -> float:
    """The page's clock (performance.timeOrigin + now()) minus this process's time.time(), in ms, from
    the quickest of 7 round trips."""
    best = (math.inf, 0.0)
    for _ in range(7):
        t0 = time.time() * 1000
        page = await evaluate(session, "performance.timeOrigin + performance.now()")
        t1 = time.time() * 1000
        best = min(best, (t1 - t0, page - (t0 + t1) / 2))
    return best[1]


async def replay_once(endpoint: str, state: BrowserSessionState, speed: float | None, *,
                      outcome: str = "window.__final()", page_log: bool = True) -> dict[str, Any]:
    """One ``Player`` run (network mocked) into a new context; its figures, and what ``outcome`` reads in the
    replayed tab afterwards. ``page_log``: also the page's own log of clicks and keydowns and its clock."""
    copy = BrowserSessionState()
    copy.CopyFrom(state)
    del SiteHandler.hits[:]
    completed: list[float] = []  # when each step was reported finished, ms since the event phase began
    async with open_cdp(endpoint) as conn:
        player = Player(conn, copy, context="new", speed=speed, network="mock",
                        on_step=lambda step: completed.append((trio.current_time() - player.report.events_started) * 1000))
        t0 = trio.current_time()
        try:
            report = await player.run()
        except BaseException:
            if player.report.restore is not None:
                with trio.CancelScope(shield=True):
                    await conn.send("Target.disposeBrowserContext", {"browserContextId": player.report.restore.context_id})
            raise
        now, epoch = trio.current_time(), time.time() * 1000
        context_id = report.restore.context_id  # type: ignore[union-attr]
        try:
            pages = await BrowserContext(conn, context_id, None).page_targets()
            page = next((p for p in pages if p.get("url", "").startswith("http")), pages[0])
            session = await conn.attach(page["targetId"])
            if page_log:
                await wait_idle(session)
            final = json.loads(await evaluate(session, outcome))
            log = await evaluate(session, "window.__log") if page_log else None
            offset = await clock_offset(session) if page_log else math.nan
        finally:
            with trio.CancelScope(shield=True):
                await conn.send("Target.disposeBrowserContext", {"browserContextId": context_id})
    return {
        "report": report, "wall": now - t0, "restore": report.events_started - t0,
        "events": report.events_ended - report.events_started,
        # The event phase's start on this process's clock (time.time(), ms), to set the page's log against.
        "events_started_epoch": epoch - (now - report.events_started) * 1000,
        "final": final, "log": log, "clock_offset_ms": offset, "live_hits": list(SiteHandler.hits),
        "completed": completed,
    }


def page_lateness(state: BrowserSessionState, run: dict[str, Any], speed: float) -> list[float] | None:
    """Per replayed click and keydown: when the page saw it minus when it was due (ms); None if the page
    logged another number of them than the recording holds."""
    recorded = [e.timestamp for e in state.recording.events if e.type in ("click", "keydown")]
    seen = [t - run["clock_offset_ms"] for _, t in run["log"]]
    if len(seen) != len(recorded):
        return None
    return [s - (run["events_started_epoch"] + r / speed) for s, r in zip(seen, recorded)]


def step_rates(report: ReplayReport, run: dict[str, Any], clicks: int, keys: int) -> dict[str, float]:
    steps = report.steps
    span = (steps[-1].dispatched - steps[0].dispatched) / 1000 if len(steps) > 1 else math.nan
    return {
        "steps": len(steps),
        "steps_per_s": (len(steps) - 1) / span if span else math.nan,  # first to last dispatch
        "steps_per_s_phase": len(steps) / run["events"],  # the whole event phase, last step included
        "actions_per_s_phase": (clicks + keys) / run["events"],
        "event_phase_s": run["events"], "restore_s": run["restore"], "wall_s": run["wall"],
        "after_s": run["wall"] - run["restore"] - run["events"],
    }


def playwright_drive(pw: PlaywrightOverCdp, url: str, plan: list[tuple[str, str]]) -> dict[str, Any]:
    """The plan through Playwright in a context of its own: page.click and keyboard.type, as fast as it goes."""
    context = pw.browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        t0 = time.perf_counter()
        for kind, what in plan:
            if kind == "click":
                page.click(what)
            else:
                page.keyboard.type(what)
        seconds = time.perf_counter() - t0
        page.wait_for_function("window.__pending === 0")
        final = json.loads(page.evaluate("window.__final()"))
    finally:
        context.close()
    return {"seconds": seconds, "final": final}


# --------------------------------------------------------------------------------------
# 3. Latency of page interactions under a recorder
# --------------------------------------------------------------------------------------

#: (key, label, how the recorder is set up) for the CDP-driven table.
CDP_VARIANTS = [
    ("none", "no recorder", None),
    ("psp_input", "psp_cdp Recorder: input", {"network": False, "dom": False}),
    ("psp_network", "psp_cdp Recorder: input + network", {"network": True, "dom": False}),
    ("psp_dom", "psp_cdp Recorder: input + network + DOM", {"network": True, "dom": True}),
    ("psp_stopped", "psp_cdp Recorder (input + network + DOM) stopped before the inputs, page not reloaded",
     {"network": True, "dom": True, "stopped": True}),
    ("pw_connected", "Playwright connect_over_cdp, no tracing", "pw"),
    ("pw_tracing", "Playwright tracing (snapshots=True, screenshots=False)", "tracing"),
]
#: The same for the Playwright-driven table.
PW_VARIANTS = [
    ("none", "no recorder", None),
    ("pw_tracing", "Playwright tracing (snapshots=True, screenshots=False)", "tracing"),
    ("psp_dom", "psp_cdp Recorder: input + network + DOM", {"network": True, "dom": True}),
]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


async def fresh_document(endpoint: str, target_id: str, url: str) -> None:
    """Load ``url`` again in the tab: nothing a previous variant put into the document stays."""
    async with open_cdp(endpoint) as conn:
        session = await conn.attach(target_id)
        await session.send("Page.enable")
        await goto(session, url)
        await session.detach()


async def cdp_inputs(endpoint: str, target_id: str, samples: int, warmup: int) -> dict[str, list[float]]:
    """``samples`` clicks on the buttons, then ``samples`` key presses into #name, after ``warmup`` of each;
    the round trips (ms) and the page's own latencies (ms)."""
    async with open_cdp(endpoint) as conn:
        session = await conn.attach(target_id)
        driver = Driver(session)
        for selector in BUTTONS + ["#name"]:
            await driver.center(selector)
        clicks, keys = [], []
        for i in range(warmup + samples):
            seconds = await driver.click(BUTTONS[i % len(BUTTONS)])
            if i >= warmup:
                clicks.append(seconds * 1000)
        await driver.click("#name")
        for i in range(warmup + samples):
            seconds = await driver.key(LETTERS[i % len(LETTERS)])
            if i >= warmup:
                keys.append(seconds * 1000)
        page = await evaluate(session, "JSON.stringify(window.__lat)")
        await session.detach()
    lat = json.loads(page)
    return {"click_rtt": clicks, "key_rtt": keys, "click_page": lat["click"][warmup:], "key_page": lat["key"][warmup:]}


def pw_inputs(page: Any, samples: int, warmup: int) -> dict[str, list[float]]:
    """As :func:`cdp_inputs`, through Playwright: page.click and page.keyboard.press."""
    clicks, keys = [], []
    for i in range(warmup + samples):
        t0 = time.perf_counter()
        page.click(BUTTONS[i % len(BUTTONS)])
        if i >= warmup:
            clicks.append((time.perf_counter() - t0) * 1000)
    page.click("#name")
    for i in range(warmup + samples):
        t0 = time.perf_counter()
        page.keyboard.press(LETTERS[i % len(LETTERS)])
        if i >= warmup:
            keys.append((time.perf_counter() - t0) * 1000)
    lat = json.loads(page.evaluate("JSON.stringify(window.__lat)"))
    return {"click_rtt": clicks, "key_rtt": keys, "click_page": lat["click"][warmup:], "key_page": lat["key"][warmup:]}


def pw_page(pw: PlaywrightOverCdp, url: str) -> Any:
    for page in pw.browser.contexts[0].pages:
        if page.url == url:
            return page
    raise RuntimeError(f"Playwright does not see the tab at {url}")


@contextlib.contextmanager
def recorder_variant(how: Any, endpoint: str, url: str, pw: PlaywrightOverCdp, out: dict[str, Any], *,
                     connect: bool = False) -> Iterator[Any]:
    """Set a variant up for the block: ``how`` is None (no recorder), a dict (psp_cdp's Recorder in a child
    process, with these options), "pw" (Playwright connected) or "tracing" (connected and tracing). Yields
    Playwright's page when Playwright is connected (``connect``: connect it in any case); ``out`` gets what
    was recorded."""
    child = None
    connected = False
    tracing = False
    try:
        if isinstance(how, dict):
            child = RecorderChild(endpoint, None, network=how["network"], dom=how["dom"])
            if how.get("stopped"):  # its script stays in the document it was put into
                out["recorded"] = child.stop()
                out["stopped"] = True
                child = None
        if connect or how in ("pw", "tracing"):
            pw.connect(endpoint)
            connected = True
        if how == "tracing":
            pw.browser.contexts[0].tracing.start(snapshots=True, screenshots=False)
            tracing = True
        yield pw_page(pw, url) if connected else None
        if tracing:
            path = os.path.join(tempfile.mkdtemp(prefix="psp-bench-trace-"), "trace.zip")
            pw.browser.contexts[0].tracing.stop(path=path)
            tracing = False
            out["trace_bytes"] = os.path.getsize(path)
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
        if child is not None:
            out["recorded"] = child.stop()
            child = None
    finally:
        if tracing:
            with contextlib.suppress(Exception):
                pw.browser.contexts[0].tracing.stop()
        if child is not None:
            child.kill()
        if connected:
            pw.disconnect()


# --------------------------------------------------------------------------------------
# 4. Replaying what three drivers recorded
# --------------------------------------------------------------------------------------

CHROMEDRIVER = "/usr/bin/chromedriver"
#: Selenium's Chromium: tests/test_bridges.py's chrome_driver flags, and a window of its own size.
SELENIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900"]
#: The file the flow picks: its name, type and text go into the POST body.
PICTURE = {"name": "photo.txt", "mimeType": "text/plain", "buffer": "pixels \u00e9\n".encode()}
DRIVERS = [("playwright", "Playwright's API (connect_over_cdp)"), ("selenium", "Selenium (chromedriver, its own Chromium)"),
           ("cdp", "CDP Input, as a person")]


@contextlib.contextmanager
def recording(endpoint: str, context: str | None, out: str, got: dict[str, Any]) -> Iterator[None]:
    """The recorder child (input + network, the starting state first, as `psp record`) around the block; its
    summary goes to ``got``. The block's last events are given 0.3 s to reach it."""
    child = RecorderChild(endpoint, context, network=True, dom=False, out=out)
    try:
        yield
        time.sleep(0.3)
    except BaseException:
        child.kill()
        raise
    got["summary"] = child.stop()


def flow_by_playwright(pw: PlaywrightOverCdp, endpoint: str, origin: str, out: str) -> dict[str, Any]:
    """The flow through Playwright's own API, in a context of its own on the bench browser."""
    got: dict[str, Any] = {}
    pw.connect(endpoint)
    try:
        context = pw.browser.new_context()
        try:
            page = context.new_page()
            page.goto(origin + "/flow")
            context_id = context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
            with recording(endpoint, context_id, out, got):
                t0 = time.perf_counter()
                page.locator("#name").press_sequentially("Ann Lee")
                page.select_option("#plan", "pro")
                page.check("#terms")
                page.fill("#notes", "two\nlines")
                page.set_input_files("#avatar", files=[PICTURE])
                page.click("#send")
                page.wait_for_function("document.querySelector('#answer').textContent !== ''")
                page.click("#next")
                page.wait_for_url("**/flow/done")
                page.wait_for_load_state()
                page.fill("#comment", "great")
                page.keyboard.press("Tab")
                got["driven_seconds"] = time.perf_counter() - t0
            got["final"] = json.loads(page.evaluate(FLOW_OUTCOME))
        finally:
            context.close()
    finally:
        pw.disconnect()
    return got


def flow_by_selenium(origin: str, out: str, picture: str, workdir: str) -> dict[str, Any]:
    """The flow through Selenium with Debian's chromedriver, in the Chromium it starts; recorded in its default context."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in [*SELENIUM_ARGS, f"--user-data-dir={tempfile.mkdtemp(prefix='selenium-', dir=workdir)}"]:
        options.add_argument(arg)
    got: dict[str, Any] = {}
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(origin + "/flow")
        endpoint = "http://" + driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with recording(endpoint, None, out, got):
            t0 = time.perf_counter()
            driver.find_element(By.ID, "name").send_keys("Ann Lee")
            Select(driver.find_element(By.ID, "plan")).select_by_value("pro")
            driver.find_element(By.ID, "terms").click()
            driver.find_element(By.ID, "notes").send_keys("two\nlines")
            driver.find_element(By.ID, "avatar").send_keys(picture)
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "answer").text != "")
            driver.find_element(By.ID, "next").click()
            WebDriverWait(driver, 10).until(
                lambda d: d.current_url.endswith("/flow/done") and d.execute_script("return document.readyState") == "complete")
            comment = driver.find_element(By.ID, "comment")
            comment.send_keys("great")
            comment.send_keys(Keys.TAB)
            got["driven_seconds"] = time.perf_counter() - t0
        got["final"] = json.loads(driver.execute_script("return " + FLOW_OUTCOME))
    finally:
        driver.quit()
    return got


async def wait_for(session: CdpSession, expression: str, timeout: float = 10.0) -> None:
    """Until ``expression`` is true in the tab (a navigation meanwhile is waited out)."""
    with trio.fail_after(timeout):
        while True:
            with contextlib.suppress(RuntimeError, ProtocolError):
                if await evaluate(session, expression) is True:
                    return
            await trio.sleep(0.02)


async def flow_by_cdp(endpoint: str, origin: str, out: str, picture: str, seed: int) -> dict[str, Any]:
    """The flow through CDP Input from this process, as a person makes it (10-30 ms between presses and clicks), in
    a new context's tab; the file picked in the file chooser its click opens."""
    rng = random.Random(seed)
    got: dict[str, Any] = {}
    async with open_cdp(endpoint) as conn, tab_in_new_context(conn, origin + "/flow") as (context_id, session):
        driver = Driver(session)

        async def pause() -> None:
            await trio.sleep(rng.uniform(0.010, 0.030))

        async def type_text(text: str) -> None:
            for ch in text:
                await (driver.press("Enter") if ch == "\n" else driver.key(ch))
                await pause()

        async def click(selector: str) -> None:
            await driver.click(selector)
            await pause()

        manager = recording(endpoint, context_id, out, got)
        await trio.to_thread.run_sync(manager.__enter__)
        try:
            t0 = time.perf_counter()
            await click("#name")
            await type_text("Ann Lee")
            await click("#plan")
            await driver.press("ArrowDown")  # Free -> Pro, as a person does on a closed select
            await pause()
            await click("#terms")
            await click("#notes")
            await type_text("two\nlines")
            await session.send("Page.setInterceptFileChooserDialog", {"enabled": True})
            with session.listen("Page.fileChooserOpened") as chooser:
                await click("#avatar")
                with trio.fail_after(10):
                    opened = await chooser.receive()
            await session.send("DOM.setFileInputFiles", {"files": [picture], "backendNodeId": opened.params["backendNodeId"]})
            await session.send("Page.setInterceptFileChooserDialog", {"enabled": False})
            await click("#send")
            await wait_for(session, "document.querySelector('#answer').textContent !== ''")
            await click("#next")
            await wait_for(session, "location.pathname === '/flow/done' && document.readyState === 'complete'")
            driver = Driver(session)  # another page: its boxes are found again
            await click("#comment")
            await type_text("great")
            await driver.press("Tab")
            got["driven_seconds"] = time.perf_counter() - t0
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: manager.__exit__(type(exc), exc, exc.__traceback__))
            raise
        await trio.to_thread.run_sync(lambda: manager.__exit__(None, None, None))
        got["final"] = json.loads(await evaluate(session, FLOW_OUTCOME))
    return got


def record_flow(name: str, pw: PlaywrightOverCdp, endpoint: str, origin: str, out: str, workdir: str,
                seed: int) -> dict[str, Any]:
    """Drive the flow with the driver ``name`` while the recorder child records it to ``out``."""
    picture = os.path.join(workdir, PICTURE["name"])
    with open(picture, "wb") as fh:
        fh.write(PICTURE["buffer"])
    if name == "playwright":
        return flow_by_playwright(pw, endpoint, origin, out)
    if name == "selenium":
        return flow_by_selenium(origin, out, picture, workdir)
    return trio.run(flow_by_cdp, endpoint, origin, out, picture, seed)


def run_drivers(pw: PlaywrightOverCdp, endpoint: str, origin: str, workdir: str, rounds: int, seed: int) -> dict[str, Any]:
    """Each driver's flow recorded, then replayed ``rounds`` times at speed 1 (network mocked) into new contexts.
    A driver that fails is reported with its error; the others go on."""
    drivers: dict[str, Any] = {}
    for name, label in DRIVERS:
        entry = drivers[name] = {"label": label}
        out = os.path.join(workdir, f"flow-{name}.pb")
        if name == "selenium" and (importlib.util.find_spec("selenium") is None or not os.path.exists(CHROMEDRIVER)):
            entry["unavailable"] = f"needs selenium (the test extra) and {CHROMEDRIVER}"
            continue
        try:
            print(f"the flow driven by {label}, recorded ...", file=sys.stderr)
            recorded = record_flow(name, pw, endpoint, origin, out, workdir, seed)
            with open(out, "rb") as fh:
                state = BrowserSessionState.FromString(fh.read())
            entry["recording"] = {
                "events": len(state.recording.events), "types": dict(sorted(_count(e.type for e in state.recording.events).items())),
                "sources": dict(sorted(_count(f"{e.type} {event_data(e).get('source', '?')}" for e in state.recording.events
                                              if e.type in ("input", "change")).items())),
                "exchanges": len(state.recording.exchanges), "duration_ms": state.recording.duration,
                "driven_seconds": recorded["driven_seconds"], "final": recorded["final"], "recorder": recorded["summary"],
            }
            runs = entry["replays"] = []
            for r in range(rounds):
                print(f"the flow driven by {label}: replay {r + 1}/{rounds} ...", file=sys.stderr)
                run = trio.run(partial(replay_once, endpoint, state, 1.0, outcome=FLOW_OUTCOME, page_log=False))
                report: ReplayReport = run["report"]
                runs.append({"steps": len(report.steps), "types": [s.type for s in report.steps],
                             "errors_ms": [s.dispatched - s.scheduled for s in report.steps],
                             **_report_figures(report, run, recorded["final"])})
            entry.update(driver_figures(runs))
        except Exception as exc:
            traceback.print_exc()
            entry["error"] = f"{type(exc).__name__}: {exc}"
    return drivers


def driver_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the replays of one driver's recording: shares of the step outcomes, the outcome, the timing error."""
    steps = sum(r["steps"] for r in runs)
    errors = [e for r in runs for e in r["errors_ms"]]
    return {
        "replayed": len(runs), "steps_per_replay": [r["steps"] for r in runs],
        "share": {k: sum(r[k] for r in runs) / steps if steps else math.nan for k in (DONE, RETRIED, SKIPPED, FAILED)},
        "as_recorded": sum(1 for r in runs if r["as_recorded"]), "page_as_recorded": sum(1 for r in runs if r["final_matches"]),
        "errors_ms": dist(errors),
        "fallbacks": sum(len(r["fallbacks"]) for r in runs), "unmatched": sum(len(r["unmatched"]) for r in runs),
    }


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


#: How the player schedules steps, said under the timing tables.
SCHEDULING = (
    "Each step is prepared before it is due (its element found, scrolled into view, the mouse moved over it for a "
    "click); at its due time its input is written without waiting for the answer to the input before it (the browser "
    "handles a tab's commands in order). Step.dispatched is the moment its input is written (for a click, the press and "
    "release; a focus that a mousedown caused is replayed as the press, and its click as the release) or its check "
    "(input, change, focus, scroll: run in the background once the tab's earlier input has been answered) is started. "
    "A step that reads the page (a click's box, a keydown's focus check on another element) waits for the tab's "
    "earlier input to be answered first, so its preparation can run past its due time, and the steps after it wait for "
    "it. Chromium hands a mouse move to the page with its next animation frame, so the page can see a click up to a "
    "frame after it was written: the \"as the page saw it\" row shows that."
)


def _outcomes(run: dict[str, Any]) -> str:
    return f"{run['done']}/{run['retried']}/{run['skipped']}/{run['failed']}"


def _ended(run: dict[str, Any]) -> str:
    """Whether a replay ended as recorded (the player's comparison of the end state)."""
    if not run["compared"]:
        return "end state not compared"
    if run["as_recorded"]:
        return "ended as recorded"
    return f"ended differently ({'; '.join(run['differences'])})"


def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] if ordered else math.nan


def dist(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": pct(samples, 0.5), "p95": pct(samples, 0.95), "p99": pct(samples, 0.99),
            "max": max(samples) if samples else math.nan, "min": min(samples) if samples else math.nan,
            "mean": statistics.fmean(samples) if samples else math.nan}


def f1(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.1f}"


def f2(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.2f}"


def recording_sizes(state: BrowserSessionState) -> dict[str, Any]:
    """Bytes of the recording, raw and in a sealed lz4 container, per input event."""
    recording = state.recording
    events_only = type(recording)()
    events_only.events.extend(recording.events)
    seal = codec.Seal(os.urandom(8).hex(), os.urandom(32))
    holder = BrowserSessionState()
    holder.recording.CopyFrom(recording)
    n = len(recording.events)
    raw = len(recording.SerializeToString())
    sealed = len(codec.encode(holder, seal=seal))
    events_raw = len(events_only.SerializeToString())
    holder_events = BrowserSessionState()
    holder_events.recording.CopyFrom(events_only)
    events_sealed = len(codec.encode(holder_events, seal=seal))
    version_sealed = len(codec.encode(state, seal=seal))
    return {
        "events": n, "exchanges": len(recording.exchanges), "mutations": len(recording.mutations),
        "recording_raw": raw, "recording_sealed": sealed, "events_raw": events_raw, "events_sealed": events_sealed,
        "exchange_body_bytes": sum(len(x.response_body) + len(x.request_body) for x in recording.exchanges),
        "version_sealed": version_sealed,
        "per_event_raw": raw / n, "per_event_sealed": sealed / n,
        "events_only_per_event_raw": events_raw / n, "events_only_per_event_sealed": events_sealed / n,
    }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 events, 1 round, 30 samples")
    parser.add_argument("--events", type=int, help="events to record (default 300; 100 with --quick)")
    parser.add_argument("--rounds", type=int, help="replays per speed and rounds per latency variant (default 3; 1 with --quick)")
    parser.add_argument("--samples", type=int, help="timed clicks and key presses per latency round (default 100; 30 with --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--recorder-child", metavar="ENDPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--child-context", help=argparse.SUPPRESS)
    parser.add_argument("--child-network", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-dom", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recorder_child:
        context = None if args.child_context in (None, "default") else args.child_context
        trio.run(recorder_child, args.recorder_child, context, args.child_network, args.child_dom, args.child_out)
        return 0
    events = args.events or (100 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)
    samples = args.samples or (30 if args.quick else 100)
    warmup = 5 if args.quick else 10
    if events < 10 or rounds < 1 or samples < 5:
        parser.error("--events must be at least 10, --rounds at least 1, --samples at least 5")

    started = time.perf_counter()
    results: dict[str, Any] = {"psp_cdp_version": psp_cdp.__version__, "quick": args.quick, "events_wanted": events,
                               "rounds": rounds, "samples": samples, "warmup": warmup, "cpus": os.cpu_count(),
                               "loadavg_start": os.getloadavg(), "command": " ".join([".venv/bin/python", "bench/replay.py", *sys.argv[1:]])}
    failures: list[str] = []
    browser: LaunchedBrowser | None = None
    workdir = tempfile.mkdtemp(prefix="psp-bench-replay-")
    plan = make_plan(random.Random(args.seed), events)
    clicks, keys = user_actions(plan)

    with serve_site([("app", "127.0.0.1", "127.0.0.1")], SiteHandler) as origins, contextlib.ExitStack() as stack:
        stack.callback(lambda: _remove_tree(workdir))
        try:
            url = origins[0].url + "/app"
            browser = launch_chromium(executable=CHROMIUM)
            stack.callback(browser.close)
            endpoint = browser.endpoint
            results["chromium"] = trio.run(_product, endpoint)
            print(f"site {url}; {results['chromium']} at {endpoint}", file=sys.stderr)
            pw = PlaywrightOverCdp()
            stack.callback(pw.stop)
            results["playwright_version"] = _version("playwright")

            # -- 1. record ---------------------------------------------------------------------
            out = os.path.join(workdir, "recorded.pb")
            print(f"recording {len(plan)} actions ({clicks} clicks, {keys} key presses) ...", file=sys.stderr)
            recorded = trio.run(record_session, endpoint, url, plan, args.seed, out)
            with open(out, "rb") as fh:
                state = BrowserSessionState.FromString(fh.read())
            types = _count(e.type for e in state.recording.events)
            results["recording"] = {
                "actions": len(plan), "clicks": clicks, "key_presses": keys, "driven_seconds": recorded["driven_seconds"],
                "duration_ms": state.recording.duration, "types": dict(sorted(types.items())),
                "recorded_clicks": types.get("click", 0), "recorded_keydowns": types.get("keydown", 0),
                "fetches": sum(1 for x in state.recording.exchanges if "/api/" in x.url),
                "final": recorded["final"], "sizes": recording_sizes(state), "recorder": recorded["summary"],
            }

            # -- 2. replay at speed 1 and at --max; Playwright beside --max -------------------------
            replays: dict[str, list[dict[str, Any]]] = {"speed1": [], "max": [], "playwright": []}
            print("warm-up replay (untimed) ...", file=sys.stderr)
            warm = trio.run(replay_once, endpoint, state, None)
            results["warmup_replay"] = {**_report_figures(warm["report"], warm, recorded["final"]),
                                        **step_rates(warm["report"], warm, clicks, keys)}
            for r in range(rounds):
                print(f"replay round {r + 1}/{rounds} ...", file=sys.stderr)
                run = trio.run(replay_once, endpoint, state, 1.0)
                report: ReplayReport = run["report"]
                # A step is "behind" when the step before it was dispatched after this one was due: the player
                # was still preparing or writing the steps before it at its due time.
                behind = [i > 0 and report.steps[i - 1].dispatched > s.scheduled for i, s in enumerate(report.steps)]
                replays["speed1"].append({
                    "errors_ms": [s.dispatched - s.scheduled for s in report.steps],
                    "behind": behind, "types": [s.type for s in report.steps],
                    "step_ms": [c - s.dispatched for c, s in zip(run["completed"], report.steps)],
                    "page_lateness_ms": page_lateness(state, run, 1.0),
                    "clock_offset_ms": run["clock_offset_ms"],
                    **_report_figures(report, run, recorded["final"]), **step_rates(report, run, clicks, keys),
                })
                order = ("psp", "pw") if r % 2 == 0 else ("pw", "psp")
                for side in order:
                    if side == "psp":
                        run = trio.run(replay_once, endpoint, state, None)
                        report = run["report"]
                        replays["max"].append({**_report_figures(report, run, recorded["final"]),
                                               **step_rates(report, run, clicks, keys)})
                    else:
                        pw.connect(endpoint)
                        try:
                            driven = playwright_drive(pw, url, plan)
                        finally:
                            pw.disconnect()
                        replays["playwright"].append({
                            "seconds": driven["seconds"], "actions_per_s": (clicks + keys) / driven["seconds"],
                            "calls_per_s": len(plan) / driven["seconds"],
                            "final_matches": driven["final"] == recorded["final"], "final": driven["final"]})
            results["replay"] = replays

            # -- 3. latency under a recorder -------------------------------------------------------
            tab = trio.run(_open_tab, endpoint, url)
            latency: dict[str, dict[str, Any]] = {"cdp": {}, "playwright": {}}
            for table, variants in (("cdp", CDP_VARIANTS), ("playwright", PW_VARIANTS)):
                collected = {key: defaultdict(list) for key, _, _ in variants}
                extra: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in variants}
                for r in range(rounds):
                    shift = r % len(variants)
                    for key, label, how in variants[shift:] + variants[:shift]:
                        print(f"latency ({table}-driven) round {r + 1}/{rounds}: {label}", file=sys.stderr)
                        trio.run(fresh_document, endpoint, tab, url)
                        got: dict[str, Any] = {}
                        if table == "cdp":
                            with recorder_variant(how, endpoint, url, pw, got):
                                figures = trio.run(cdp_inputs, endpoint, tab, samples, warmup)
                        else:
                            with recorder_variant(how, endpoint, url, pw, got, connect=True) as page:
                                figures = pw_inputs(page, samples, warmup)
                        for name, values in figures.items():
                            collected[key][name].extend(values)
                        extra[key].append(got)
                latency[table] = {key: {"label": label, **{n: dist(v) for n, v in collected[key].items()},
                                        "samples": dict(collected[key]), "rounds": extra[key]}
                                  for key, label, _ in variants}
            results["latency"] = latency

            # -- 4. what three drivers recorded, replayed ---------------------------------------------
            results["drivers"] = run_drivers(pw, endpoint, origins[0].url, workdir, rounds, args.seed)
        except BaseException as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            finish_run(results, started, args.json, browser=browser, failures=failures)

    print_report(results)
    if args.json:
        print(f"\nresults written to {args.json}")
    failed = sum(r["failed"] for r in results["replay"]["speed1"] + results["replay"]["max"])
    for entry in results["drivers"].values():
        failed += sum(r["failed"] for r in entry.get("replays", [])) + ("error" in entry)
    return 1 if failed else 0


def _report_figures(report: ReplayReport, run: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    counts = report.counts()
    return {
        "done": counts[DONE], "retried": counts[RETRIED], "skipped": counts[SKIPPED], "failed": counts[FAILED],
        "failed_steps": [s.as_dict() for s in report.steps if s.outcome == FAILED][:5],
        "not_done": [s.as_dict() for s in report.steps if s.outcome != DONE][:20],
        "compared": report.compared, "as_recorded": report.as_recorded, "differences": list(report.differences),
        "answered": report.answered, "unmatched": [f"{u.method} {u.url}" for u in report.unmatched],
        "fallbacks": [f"{f.method} {f.url} ({f.how})" for f in report.fallbacks],
        "live_hits": run["live_hits"],
        "final_matches": run["final"] == expected, "final": run["final"],
    }


async def _product(endpoint: str) -> str:
    async with open_cdp(endpoint) as conn:
        return str((await conn.send("Browser.getVersion")).get("product", ""))


async def _open_tab(endpoint: str, url: str) -> str:
    """A tab in the default context (where Playwright's connect_over_cdp looks) at ``url``."""
    async with open_cdp(endpoint) as conn:
        target = await conn.send("Target.createTarget", {"url": "about:blank"})
        session = await conn.attach(target["targetId"])
        await session.send("Page.enable")
        await goto(session, url)
        await session.detach()
        return str(target["targetId"])


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def print_report(results: dict[str, Any]) -> None:
    rec, rep, lat = results["recording"], results["replay"], results["latency"]
    sizes = rec["sizes"]
    print(f"# Recording and replay: psp_cdp {results['psp_cdp_version']} against Playwright {results['playwright_version']}\n")
    print(f"- Command: `{results['command']}`; {results['cpus']} CPUs, load average {results['loadavg_start'][0]:.2f} at the "
          f"start, {results['loadavg_end'][0]:.2f} at the end; wall time {results['wall_seconds']:.0f} s")
    print(f"- Browser: {results['chromium']}, headless, one process for everything (launch_chromium)")
    print("- Page: 6 buttons whose click handler runs a 20,000-step loop and writes the total, 3 inputs and a textarea "
          "mirrored into the page, a fetch() GET and a fetch() POST, and 200 links and 100 row buttons below them")
    print(f"- Recording: {rec['actions']} actions ({rec['clicks']} clicks, {rec['key_presses']} key presses, 10-30 ms apart, "
          f"{rec['fetches']} fetch() calls) driven through CDP Input from this process in {rec['driven_seconds']:.1f} s; the "
          f"Recorder (input + network, as `psp record`) ran in a child process and recorded {sizes['events']} events "
          f"({', '.join(f'{k} {v}' for k, v in rec['types'].items())}) and {sizes['exchanges']} network exchanges over "
          f"{rec['duration_ms'] / 1000:.1f} s")
    print(f"- Replays: {results['rounds']} per speed after one untimed one, each into a new context (restore with the "
          f"network mocked, then the events); latency: {results['rounds']} round(s) per variant of {results['samples']} timed clicks and "
          f"{results['samples']} timed key presses after {results['warmup']} untimed ones, variants in turn, the "
          f"document reloaded before each")
    print(f"- Drivers: the two-page flow driven once each by Playwright's API, Selenium (chromedriver) and CDP Input as a "
          f"person while the Recorder recorded, each recording replayed {results['rounds']} time(s) at speed 1 (see 5)")
    print("- Percentiles are nearest-rank over every sample of every round\n")

    s1 = rep["speed1"]
    errors = [e for r in s1 for e in r["errors_ms"]]
    lateness = [e for r in s1 if r["page_lateness_ms"] is not None for e in r["page_lateness_ms"]]
    e, p = dist(errors), dist(lateness) if lateness else None
    print("## 1. Replay timing error at speed 1\n")
    print("| measure | n | p50 ms | p95 ms | p99 ms | max ms | min ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| Step.dispatched - Step.scheduled (every step) | {e['n']} | {f2(e['p50'])} | {f2(e['p95'])} | {f2(e['p99'])} "
          f"| {f2(e['max'])} | {f2(e['min'])} |")
    if p:
        print(f"| as the page saw it: click/keydown timeStamp - due time | {p['n']} | {f2(p['p50'])} | {f2(p['p95'])} "
              f"| {f2(p['p99'])} | {f2(p['max'])} | {f2(p['min'])} |")
    else:
        print("| as the page saw it | n/a: the replayed page logged another number of clicks/keydowns than recorded | | | | | |")
    caught_up = [e for r in s1 for e, b in zip(r["errors_ms"], r["behind"]) if not b]
    behind = [e for r in s1 for e, b in zip(r["errors_ms"], r["behind"]) if b]
    for label, values in (("of which due after the step before it was dispatched", caught_up),
                          ("of which due before the step before it was dispatched (the player behind)", behind)):
        if values:
            d = dist(values)
            print(f"| {label} | {d['n']} | {f2(d['p50'])} | {f2(d['p95'])} | {f2(d['p99'])} | {f2(d['max'])} | {f2(d['min'])} |")
    late_by_type: dict[str, list[float]] = defaultdict(list)
    took_by_type: dict[str, list[float]] = defaultdict(list)
    for r in s1:
        for kind, error, took in zip(r["types"], r["errors_ms"], r["step_ms"]):
            late_by_type[kind].append(error)
            took_by_type[kind].append(took)
    offsets = ", ".join(f1(r["clock_offset_ms"]) for r in s1)
    print("\nPer replay, Step.dispatched - Step.scheduled p50 / p95 / max ms: "
          + "; ".join(f"{f2(pct(r['errors_ms'], 0.5))} / {f2(pct(r['errors_ms'], 0.95))} / {f2(max(r['errors_ms']))}"
                      for r in s1) + "; by step type, p50 / p95 ms: "
          + ", ".join(f"{k} {f2(pct(v, 0.5))} / {f2(pct(v, 0.95))}" for k, v in sorted(late_by_type.items())) + ".")
    print(f"{SCHEDULING} The page's figure adds the Input command's trip and the frame a click can wait for (page clock "
          f"- this process's clock, corrected for: {offsets} ms). From Step.dispatched to the step reported finished (its "
          f"input answered, its check done; steps are reported in order, so the figure holds the steps before it), p50 / "
          f"p95 ms: " + ", ".join(f"{k} {f1(pct(v, 0.5))} / {f1(pct(v, 0.95))}" for k, v in sorted(took_by_type.items()))
          + ". Steps done/retried/skipped/failed per replay: " + "; ".join(_outcomes(r) for r in s1)
          + "; final page equal to the recorded one: " + ", ".join("yes" if r["final_matches"] else "NO" for r in s1)
          + "; " + "; ".join(_ended(r) for r in s1) + "." + _not_done(s1))

    mx, pwr = rep["max"], rep["playwright"]
    print("\n## 2. Events per second at --max, and Playwright driving the same actions\n")
    print("| run | median | min | max | what is counted |")
    print("|---|---:|---:|---:|---|")

    def row(label: str, values: list[float], what: str, fmt: Callable[[float], str] = f1) -> None:
        print(f"| {label} | {fmt(statistics.median(values))} | {fmt(min(values))} | {fmt(max(values))} | {what} |")

    n_steps = mx[0]["steps"]
    row("psp_cdp Player(speed=None): steps/s", [r["steps_per_s"] for r in mx],
        f"{n_steps} steps, first to last Step.dispatched")
    row("psp_cdp Player(speed=None): user actions/s", [r["actions_per_s_phase"] for r in mx],
        f"{rec['clicks'] + rec['key_presses']} clicks + key presses over the whole event phase")
    row("Playwright page.click / keyboard.type: user actions/s", [r["actions_per_s"] for r in pwr],
        f"the same {rec['clicks']} clicks + {rec['key_presses']} key presses ({rec['actions']} calls)")
    row("psp_cdp event phase, s", [r["event_phase_s"] for r in mx],
        "ReplayReport.events_started to events_ended: every step, its answers included", f2)
    row("psp_cdp restore + attach, s", [r["restore_s"] for r in mx], "restore_state (network mocked) + auto-attach", f2)
    row("psp_cdp after the last step, s", [r["after_s"] for r in mx],
        "waiting for the page's last requests (mocked), detach", f2)
    row("Playwright action loop, s", [r["seconds"] for r in pwr], "page.goto and the context excluded", f2)
    print(f"\npsp_cdp replays every recorded event ({', '.join(f'{k} {v}' for k, v in rec['types'].items())}). At --max "
          f"each step is acted on as soon as it is prepared: key presses to the element that has the keys are written "
          f"back to back, without waiting for each other's answers; a click step waits for the tab's earlier input to be "
          f"answered, then looks its element up by selector, scrolls it into view, reads its box and moves the mouse "
          f"before the press and release; a keydown to another element focuses it first; input and change steps compare "
          f"the value in the background, behind the input before them. Playwright's page.click waits for the element to "
          f"be visible, stable, enabled and hit-testable; keyboard.type sends the keys to whatever has focus. psp_cdp "
          f"answers the fetch() calls from the recording, Playwright's go to the live loopback server. Final page equal to "
          f"the recorded one: psp_cdp "
          + ", ".join("yes" if r["final_matches"] else "NO" for r in mx) + "; Playwright "
          + ", ".join("yes" if r["final_matches"] else "NO" for r in pwr) + ". psp_cdp steps done/retried/skipped/failed "
          + "per replay: " + "; ".join(_outcomes(r) for r in mx) + "; " + "; ".join(_ended(r) for r in mx) + "."
          + _not_done(mx))

    print("\n## 3. Latency a recorder adds to page interactions\n")
    for table, title in (("cdp", "Driven through CDP Input from this process (the recorders only watch)"),
                         ("playwright", "Driven by Playwright: page.click / page.keyboard.press")):
        rows = lat[table]
        base = rows["none"]
        print(f"### {title}\n")
        print("| variant | click p50 / p95 | added | key p50 / p95 | added | page: click p50 / p95 | added "
              "| page: key p50 / p95 | added | recorded |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for key, figures in rows.items():
            cells = []
            for name in ("click_rtt", "key_rtt", "click_page", "key_page"):
                d = figures[name]
                cells.append(f"{f2(d['p50'])} / {f2(d['p95'])}")
                cells.append("" if key == "none" else f"{d['p50'] - base[name]['p50']:+.2f}")
            print(f"| {figures['label']} | {' | '.join(cells)} | {_recorded_cell(figures['rounds'])} |")
        print()
    print("Times in ms; *added* is the p50 against the no-recorder row of the same table. *click*: "
          "Input.dispatchMouseEvent mousePressed + mouseReleased, from sending the first to the answer of the second "
          "(Chromium answers the release once the click handlers have run); *key*: keyDown (with its text) + keyUp. In "
          "the Playwright-driven table they are page.click and keyboard.press as this process waits for them. *page*: "
          "measured in the page, from the event's timeStamp (the click's, or the keydown's) to the end of the page's own "
          "click or input handler, so it holds every listener that runs before it, the recorders' included (their "
          "other work, such as the focus event of a click, shows in the round trip only). The recorders run in other "
          "processes (psp_cdp's in a child process, as `psp record` would; Playwright's in its Node driver), on the "
          "same CPUs as the browser. Playwright's page.click waits for the element to keep its box over two animation "
          "frames (about 33 ms at 60 frames/s) before it clicks, so its click times move in steps of a frame from round "
          "to round; its key presses and the page's own figures are the steadier measure in that table. With no "
          "Playwright action to attach them to, tracing takes no snapshots in the first table.\n")

    print("## 4. Recorded bytes, and the mock during replay\n")
    answered = [r["answered"] for r in s1 + mx]
    unmatched = [len(r["unmatched"]) for r in s1 + mx]
    hit = [a / (a + u) if a + u else math.nan for a, u in zip(answered, unmatched)]
    live = [h for r in s1 + mx for h in r["live_hits"]]
    print("| figure | value |")
    print("|---|---|")
    print(f"| RecordingState, serialised | {sizes['recording_raw']:,} B: {sizes['per_event_raw']:,.0f} B per event "
          f"({sizes['events']} events, {sizes['exchanges']} exchanges with {sizes['exchange_body_bytes']:,} B of bodies) |")
    print(f"| RecordingState, lz4 + sealed (codec.encode, AES-256-GCM) | {sizes['recording_sealed']:,} B: "
          f"{sizes['per_event_sealed']:,.0f} B per event |")
    print(f"| events alone, serialised / lz4 + sealed | {sizes['events_raw']:,} B / {sizes['events_sealed']:,} B: "
          f"{sizes['events_only_per_event_raw']:,.0f} / {sizes['events_only_per_event_sealed']:,.0f} B per event |")
    print(f"| whole version (starting state + recording), lz4 + sealed | {sizes['version_sealed']:,} B |")
    print("| mock, per replay: answered / unmatched | " + "; ".join(f"{a} / {u}" for a, u in zip(answered, unmatched))
          + f" (hit rate {f1(100 * min(hit))} % at worst, {f1(100 * statistics.median(hit))} % median) |")
    unmatched_urls = _counted(u for r in s1 + mx for u in r["unmatched"])
    print(f"| unmatched requests, over all replays | {unmatched_urls or 'none'} |")
    print(f"| requests that reached the live site during psp_cdp replays | {_counted(live) or 'none'} |")
    print(f"\nThe recording holds {sizes['exchanges']} exchanges: the page's document (read at the start) and its fetch() "
          "calls. A /favicon.ico request comes from the restore's stub documents (psp_cdp's stub page has no icon link, "
          "so Chromium asks for one; the bench page declares its icon inline and never does): when the mock answers it, "
          "it is unmatched.")

    print_drivers(results["drivers"], results["rounds"])

    d1 = dist(errors)
    cdp, pwt = lat["cdp"], lat["playwright"]

    def added(rows: dict[str, Any], key: str) -> str:
        row_, none = rows[key], rows["none"]
        return " / ".join(f"{row_[n]['p50'] - none[n]['p50']:+.2f}" for n in ("click_rtt", "key_rtt", "click_page", "key_page"))

    print("\n## Summary\n")
    print("| figure | psp_cdp | Playwright | meaning |")
    print("|---|---|---|---|")
    print(f"| replay timing error at speed 1, p50 / p95 / p99 / max ms | {f2(d1['p50'])} / {f2(d1['p95'])} / {f2(d1['p99'])} "
          f"/ {f2(d1['max'])} | no timed replay | how late the player starts each step against the recorded pace |")
    if p:
        print(f"| same, as the page saw the clicks and keydowns, p50 / p95 / p99 / max ms | {f2(p['p50'])} / {f2(p['p95'])} "
              f"/ {f2(p['p99'])} / {f2(p['max'])} | | how late the input reaches the page: the lookup and the Input trip added |")
    print(f"| replay at --max, user actions/s (median) | {f1(statistics.median(r['actions_per_s_phase'] for r in mx))} "
          f"({f1(statistics.median(r['steps_per_s'] for r in mx))} steps/s) | "
          f"{f1(statistics.median(r['actions_per_s'] for r in pwr))} (page.click / keyboard.type) | the same clicks and key "
          f"presses, as fast as each goes |")
    print(f"| restore before the events, s (median) | {f2(statistics.median(r['restore_s'] for r in mx))} | | "
          f"restore_state into a new context, the page answered from the recording |")
    print("| added latency, p50 ms: click / key round trip / page click / page key | | | against no recorder |")
    for key in ("psp_input", "psp_network", "psp_dom", "psp_stopped"):
        print(f"| - {cdp[key]['label']} | {added(cdp, key)} | | Input driven from elsewhere |")
    for key in ("pw_connected", "pw_tracing"):
        print(f"| - {cdp[key]['label']} | | {added(cdp, key)} | Input driven from elsewhere |")
    print(f"| - {pwt['pw_tracing']['label']}, Playwright driving | | {added(pwt, 'pw_tracing')} | page.click (in whole animation frames, see 3) / keyboard.press |")
    print(f"| - {pwt['psp_dom']['label']}, Playwright driving | {added(pwt, 'psp_dom')} | | page.click (in whole animation frames, see 3) / keyboard.press |")
    print(f"| recorded bytes per event, raw / lz4 + sealed | {sizes['per_event_raw']:,.0f} / {sizes['per_event_sealed']:,.0f} "
          f"| | network exchanges included; events alone {sizes['events_only_per_event_raw']:,.0f} / "
          f"{sizes['events_only_per_event_sealed']:,.0f} |")
    print(f"| mock hit rate during replay (worst) | {f1(100 * min(hit))} % | | requests answered from the recording |")
    for entry in results["drivers"].values():
        if "error" in entry or "unavailable" in entry:
            print(f"| replay of the flow driven by {entry['label']} | {_not_run(entry)} | | see 5 |")
            continue
        share, e = entry["share"], entry["errors_ms"]
        print(f"| replay of the flow driven by {entry['label']}: steps done / retried / skipped / failed %, ended as "
              f"recorded, timing error p50 / p95 / p99 ms | {_shares(share)}; {entry['as_recorded']}/{entry['replayed']}; "
              f"{f2(e['p50'])} / {f2(e['p95'])} / {f2(e['p99'])} | | the recording replayed at speed 1, network mocked (see 5) |")


def print_drivers(drivers: dict[str, Any], rounds: int) -> None:
    print("\n## 5. Replaying what three drivers recorded\n")
    print("| driver | recorded events | steps | done % | retried % | skipped % | failed % | ended as recorded | page as recorded "
          "| Step.dispatched - Step.scheduled p50 / p95 / p99 ms | fallbacks | unmatched |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    for entry in drivers.values():
        if "error" in entry or "unavailable" in entry:
            print(f"| {entry['label']} | {_not_run(entry)} | | | | | | | | | | |")
            continue
        share, e, n = entry["share"], entry["errors_ms"], entry["replayed"]
        steps = "/".join(str(k) for k in sorted(set(entry["steps_per_replay"])))
        print(f"| {entry['label']} | {entry['recording']['events']} | {steps} | "
              + _shares(share, " | ")
              + f" | {entry['as_recorded']}/{n} | {entry['page_as_recorded']}/{n} | {f2(e['p50'])} / {f2(e['p95'])} / "
              f"{f2(e['p99'])} | {entry['fallbacks']} | {entry['unmatched']} |")
    print(f"\nThe flow (page one: a name typed, a select, a checkbox, a textarea, a file whose name, type and text go into "
          f"the POST body, Send: a fetch() POST whose JSON answer, with the site's next order number, shows in the page, "
          f"goes to localStorage and reveals the link; page two shows the stored answer and keeps a comment in "
          f"sessionStorage on change) is driven once per driver while the Recorder (input + network) records in a child "
          f"process, then replayed {rounds} time(s) with Player(speed=1.0, network=\"mock\") into a new context of the "
          f"bench browser (Selenium's recording was made in its own Chromium, 1280x900). *ended as recorded*: the "
          f"player's comparison of the end state (URL, title, fields, storage digests, cookies); *page as recorded*: "
          f"this script's reading of the page, the stored answer (its order number: a live site would have given the "
          f"next one) and the comment. Step.dispatched, and how the player schedules steps, as in 1.")
    for entry in drivers.values():
        if "error" in entry or "unavailable" in entry:
            continue
        rec = entry["recording"]
        notes = [f"recorded {', '.join(f'{k} {v}' for k, v in rec['types'].items())} and {rec['exchanges']} exchanges "
                 f"over {rec['duration_ms'] / 1000:.1f} s (driven in {rec['driven_seconds']:.1f} s); value changes by "
                 f"source: {', '.join(f'{k} {v}' for k, v in rec['sources'].items()) or 'none'}"]
        runs = entry["replays"]
        notes.append("per replay done/retried/skipped/failed: " + "; ".join(_outcomes(r) for r in runs)
                     + "; " + "; ".join(_ended(r) for r in runs))
        if reasons := _not_done(runs).strip().rstrip("."):
            notes.append(reasons[0].lower() + reasons[1:])
        for what in ("fallbacks", "unmatched", "live_hits"):
            listed = _counted(x for r in runs for x in r[what])
            if listed:
                notes.append(f"{what.replace('_', ' ')}: {listed}")
        print(f"- {entry['label']}: " + "; ".join(notes) + ".")


def _not_done(runs: list[dict[str, Any]]) -> str:
    """The steps of these replays that were retried, skipped or failed, with their reasons, as a sentence ("" if none)."""
    reasons = _counted(f"{s['type']} {s['target']} {s['outcome']}: {s['reason'] or '(no reason)'}"
                       for r in runs for s in r["not_done"])
    return f" Steps not done: {reasons}." if reasons else ""


def _not_run(entry: dict[str, Any]) -> str:
    return f"failed: {entry['error']}" if "error" in entry else f"not run: {entry['unavailable']}"


def _shares(share: dict[str, float], sep: str = " / ") -> str:
    """Percent of steps done, retried, skipped, failed."""
    return sep.join(f1(100 * share[k]) for k in (DONE, RETRIED, SKIPPED, FAILED))


def _counted(items: Any) -> str:
    return ", ".join(f"{item} ×{n}" for item, n in sorted(_count(items).items()))


def _recorded_cell(rounds: list[dict[str, Any]]) -> str:
    if rounds and "stopped" in rounds[0]:
        return "stopped before the inputs"
    if rounds and "recorded" in rounds[0]:
        return (f"{statistics.median(g['recorded']['events'] for g in rounds):,.0f} events, "
                f"{statistics.median(g['recorded']['mutations'] for g in rounds):,.0f} mutation batches per round")
    if rounds and "trace_bytes" in rounds[0]:
        return f"trace.zip {statistics.median(g['trace_bytes'] for g in rounds) / 1024:,.0f} KiB per round"
    return ""

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
