"""Recording what a user does in one Chromium and replaying it into another (psp_cdp.record)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from psp_cdp.cdp import CdpConnection, CdpSession, wire_json
from psp_cdp.record.outcome import DIGEST, differences, digest
from psp_cdp.record.player import DONE, FAILED, SKIPPED, Player
from psp_cdp.record.script import WORLD
from psp_cdp.record.session import load_recording, record, replay
from psp_cdp.snapshot.model import BrowserSessionState, RecordingState, TabEndState, domstring, text
from psp_cdp.store import Sessions, open_store

from .helpers import BrowserContext, browser_context, evaluate, navigate, wait_until
from .site import Site

# Windows virtual key codes of the keys the user presses.
_KEYS = {"Enter": 13, "Tab": 9, "ArrowDown": 40, "Shift": 16}


class User:
    """Someone at the keyboard and mouse of one tab, through CDP's Input domain."""

    def __init__(self, session: CdpSession) -> None:
        self.session = session

    async def click(self, selector: str, *, count: int = 1) -> None:
        box = await evaluate(self.session, f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())")
        rect = json.loads(box)
        x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
        await self.session.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for n in range(1, count + 1):
            for kind in ("mousePressed", "mouseReleased"):
                await self.session.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": n})

    async def type(self, text: str) -> None:
        for ch in text:
            if ch == "\n":
                await self.press("Enter")
                continue
            await self.session.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch})
            await self.session.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

    async def press(self, key: str, *, modifiers: int = 0) -> None:
        code = _KEYS[key]
        down: dict[str, Any] = {"type": "rawKeyDown", "key": key, "code": key, "windowsVirtualKeyCode": code, "modifiers": modifiers}
        if key == "Enter":
            down.update(type="keyDown", text="\r")
        await self.session.send("Input.dispatchKeyEvent", down)
        await self.session.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code, "modifiers": modifiers})


@asynccontextmanager
async def recording(connection: CdpConnection, sessions: Sessions, name: str, context: str, **options: Any) -> AsyncIterator[dict[str, Any]]:
    """Record ``context`` while the block runs; the result lands in the dict it yields."""
    stop = trio.Event()
    result: dict[str, Any] = {}
    ready = trio.Event()
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            result["info"], result["version"], result["state"] = await record(
                connection, sessions, name, stop, context=context, started=lambda _: ready.set(), **options
            )

        nursery.start_soon(run)
        with trio.fail_after(10):
            await ready.wait()
        yield result
        stop.set()


#: What the flow leaves in its page, as JSON text: the page, what it shows, its storage.
OUTCOME = (
    "JSON.stringify({url: location.pathname, summary: document.querySelector('#summary')?.textContent,"
    " comment: document.querySelector('#comment')?.value, answer: localStorage.getItem('answer'),"
    " saved: sessionStorage.getItem('comment')})"
)


async def _outcome(session: CdpSession, context: BrowserContext) -> dict[str, Any]:
    """What the flow leaves behind: the page, its storage and the order cookie."""
    page = await evaluate(session, OUTCOME)
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    return {**json.loads(page), "order": cookies.get("order")}


async def only_page(connection: CdpConnection, context_id: str) -> CdpSession:
    """The one tab of a context, attached, with the Page domain enabled."""
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    pages = [t for t in targets if t["type"] == "page" and t.get("browserContextId") == context_id]
    assert len(pages) == 1, pages
    session = await connection.attach(pages[0]["targetId"])
    await session.send("Page.enable")
    return session


async def _fill_the_flow(user: User, session: CdpSession) -> None:
    """Page one: name, plan, terms, notes, send (a fetch() POST), then the link to page two, a comment."""
    await user.click("#name")
    await user.type("Ann Lee")
    await user.click("#plan")
    await user.press("ArrowDown")  # Free -> Pro, with the keyboard, as a user does on a closed select
    await user.click("#terms")
    await user.click("#notes")
    await user.type("two\nlines")
    await user.click("#send")
    await wait_until(lambda: evaluate(session, "document.querySelector('#answer').textContent !== ''"))
    await user.click("#next")
    await wait_until(lambda: evaluate(session, "location.pathname === '/flow/done' && document.readyState === 'complete'"))
    await user.click("#comment")
    await user.type("great")
    await user.press("Tab")


async def test_a_recorded_form_flow_replays_into_another_browser_with_the_site_down(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        user = User(tab)
        async with recording(cdp, sessions, "flow", context.id, dom=True) as recorded:
            await _fill_the_flow(user, tab)
        recorded_outcome = await _outcome(tab, context)
    assert recorded_outcome["summary"] == "Hello Ann Lee (pro, order %s)" % recorded_outcome["order"]
    assert recorded_outcome["saved"] == "great"
    state: BrowserSessionState = recorded["state"]
    kinds = [e.type for e in state.recording.events]
    for kind in ("click", "keydown", "keyup", "input", "change", "focus", "navigate"):
        assert kind in kinds
    assert any(x.method == "POST" and x.url.endswith("/api/flow") for x in state.recording.exchanges)
    assert state.recording.mutations, "--dom records the page's changes"
    timestamps = [e.timestamp for e in state.recording.events]
    assert timestamps == sorted(timestamps)

    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await replay(cdp_b, sessions, "flow", context=target.id, speed=None)
            replayed = await _outcome(await only_page(cdp_b, target.id), target)
    finally:
        site.start()
    assert not report.failed, [s.as_dict() for s in report.failed]
    assert replayed == recorded_outcome
    assert not [u for u in report.unmatched if "/flow" in u.url]
    assert report.answered >= 3  # page one, the POST, page two


async def test_replay_reports_a_step_whose_element_is_gone_and_fails(cdp: CdpConnection, site: Site, tmp_path: Any) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        async with recording(cdp, sessions, "gone", context.id, network=False, dom=True):
            await User(tab).click("#name")
        # Stopped, the recorder's script stays in the page and does nothing.
        frame = (await tab.send("Page.getFrameTree"))["frameTree"]["frame"]["id"]
        world = await tab.send("Page.createIsolatedWorld", {"frameId": frame, "worldName": WORLD})
        quiet = await tab.send("Runtime.evaluate", {"expression": "String(globalThis.__pspRecording)", "contextId": world["executionContextId"]})
        assert quiet["result"]["value"] == "null"
        _, _, state = await load_recording(sessions, "gone")
        click = next(e for e in state.recording.events if e.type == "click")
        del click.element.selectors[:]
        click.element.selectors.append("#nowhere")
        report = await Player(cdp, state, context=context.id, speed=None, network="live", timeout=0.5).run()
    outcomes = {s.type: (s.outcome, s.reason) for s in report.steps}
    assert outcomes["click"] == (FAILED, "no element matches #nowhere")
    assert outcomes["focus"][0] == DONE


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_replay_keeps_the_recorded_pace(cdp: CdpConnection, site: Site, tmp_path: Any, speed: float) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        async with recording(cdp, sessions, "pace", context.id):
            await User(tab).click("#name")
            await trio.sleep(0.4)
            await User(tab).type("ab")
        _, _, state = await load_recording(sessions, "pace")
        report = await Player(cdp, state, context=context.id, speed=speed).run()
    assert not report.failed
    for step in report.steps:
        assert step.scheduled == pytest.approx(state.recording.events[step.index].timestamp / speed)
    first_key = next(s for s in report.steps if s.type == "keydown")
    assert first_key.dispatched >= first_key.scheduled


async def _frame_click(user: User, frame: str, selector: str) -> None:
    """Click an element of a same-origin iframe, by its place in the page."""
    box = await evaluate(
        user.session,
        f"(() => {{ const f = document.querySelector({json.dumps(frame)}); const o = f.getBoundingClientRect();"
        f" const r = f.contentDocument.querySelector({json.dumps(selector)}).getBoundingClientRect();"
        " return JSON.stringify({x: o.x + f.clientLeft + r.x + r.width / 2, y: o.y + f.clientTop + r.y + r.height / 2}); })()",
    )
    point = json.loads(box)
    for kind in ("mousePressed", "mouseReleased"):
        await user.session.send("Input.dispatchMouseEvent", {"type": kind, **point, "button": "left", "clickCount": 1})


async def _new_tab(connection: CdpConnection, context_id: str, known: set[str]) -> CdpSession:
    async def opened() -> bool:
        targets = (await connection.send("Target.getTargets"))["targetInfos"]
        return any(t["type"] == "page" and t.get("browserContextId") == context_id and t["targetId"] not in known for t in targets)

    await wait_until(opened)
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    info = next(t for t in targets if t["type"] == "page" and t.get("browserContextId") == context_id and t["targetId"] not in known)
    session = await connection.attach(info["targetId"])
    await session.send("Page.enable")
    await wait_until(lambda: evaluate(session, "location.pathname === '/form' && document.readyState === 'complete'"))
    return session


_TABS_OUTCOME = (
    "JSON.stringify({picked: localStorage.getItem('picked'), name: document.querySelector('#name')?.value,"
    " inner: document.querySelector('#inner-frame')?.contentDocument.querySelector('#inner').value,"
    " scrolled: document.querySelector('#scroller')?.scrollTop})"
)


async def _tabs_outcome(connection: CdpConnection, context_id: str) -> list[Any]:
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    pages = sorted((t for t in targets if t["type"] == "page" and t.get("browserContextId") == context_id), key=lambda t: t["url"])
    outcome = []
    for info in pages:
        session = await connection.attach(info["targetId"])
        outcome.append((info["url"].split("/", 3)[3], json.loads(await evaluate(session, _TABS_OUTCOME))))
        await session.detach()
    return outcome


async def test_new_tabs_iframes_double_clicks_wheel_and_modifiers_replay(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        first = await context.new_page(site.url(path="/popup"))
        known = {first.target_id}
        async with recording(cdp, sessions, "tabs", context.id) as recorded:
            await User(first).click("#items li:nth-child(2)", count=2)
            await User(first).click("#open")
            second = await _new_tab(cdp, context.id, known)
            user = User(second)
            await _frame_click(user, "#inner-frame", "#inner")
            await user.type("deep")
            await user.click("#name")
            await second.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Shift", "code": "ShiftLeft", "windowsVirtualKeyCode": 16, "modifiers": 8})
            await second.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Q", "code": "KeyQ", "text": "Q", "windowsVirtualKeyCode": 81, "modifiers": 8})
            await second.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Q", "code": "KeyQ", "windowsVirtualKeyCode": 81, "modifiers": 8})
            await second.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Shift", "code": "ShiftLeft", "windowsVirtualKeyCode": 16})
            box = json.loads(await evaluate(second, "JSON.stringify(document.querySelector('#scroller').getBoundingClientRect())"))
            await second.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": box["x"] + 20, "y": box["y"] + 20, "deltaX": 0, "deltaY": 240})
            await wait_until(lambda: evaluate(second, "document.querySelector('#scroller').scrollTop >= 240"))
            await trio.sleep(0.3)
        expected = await _tabs_outcome(cdp, context.id)
    events = recorded["state"].recording.events
    kinds = [(e.type, e.tab) for e in events]
    assert ("dblclick", 0) in kinds and ("tab_open", 1) in kinds and ("wheel", 1) in kinds and ("scroll", 1) in kinds
    assert any(e.type == "input" and list(e.frame) == [0] for e in events), "the iframe's typing is recorded with its frame"
    shifted = [json.loads(e.data.data) for e in events if e.type == "keydown" and e.tab == 1]
    assert {"key": "Q", "modifiers": 8}.items() <= next(k for k in shifted if k["key"] == "Q").items()
    # The test attached to the new tab over the recorder's own connection: each event is there once all the same.
    assert [k["key"] for k in shifted].count("Q") == 1 and kinds.count(("dblclick", 0)) == 1, kinds
    assert expected[0][1] == {"picked": "two (picked)", "name": "Q", "inner": "deep", "scrolled": 240}

    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await replay(cdp_b, sessions, "tabs", context=target.id, speed=None)
            replayed = await _tabs_outcome(cdp_b, target.id)
    finally:
        site.start()
    assert not report.failed, [s.as_dict() for s in report.failed]
    assert replayed == expected


async def test_psp_record_and_replay_from_the_command_line(
    cdp: CdpConnection, chromium: Any, chromium_b: Any, site: Site, tmp_path: Any
) -> None:
    import signal
    import subprocess

    from .test_cli import PSP, psp

    store = str(tmp_path / "store")
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        recorder = subprocess.Popen(
            [PSP, "record", "--cdp", chromium.endpoint, "--context", context.id, "--name", "cli", "--store", store, "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            first = await trio.to_thread.run_sync(recorder.stdout.readline)
            assert first.startswith("recording cli (input, network) until Ctrl-C"), first + recorder.stderr.read()
            await User(tab).click("#name")
            await User(tab).type("Bo")
            line = await trio.to_thread.run_sync(recorder.stdout.readline)
            assert "focus" in line and "#name" in line, line
            await trio.sleep(0.3)
            recorder.send_signal(signal.SIGINT)
            out, err = await trio.to_thread.run_sync(recorder.communicate, None, 30)
        finally:
            if recorder.poll() is None:
                recorder.kill()
    assert recorder.returncode == 0, err
    assert "recorded cli version 1" in out and " event(s)" in out, out

    replayed = psp("replay", "cli", "--cdp", chromium_b.endpoint, "--context", "new", "--max", store=store)
    lines = replayed.stdout.splitlines()
    assert any(line.split()[2:4] == ["click", "#name"] and line.endswith("done") for line in lines), replayed.stdout
    assert lines[-2].startswith("network: ") and "answered from the recording" in lines[-2]
    assert lines[-1] == "ended as recorded"
    report = json.loads(psp("replay", "cli", "--cdp", chromium_b.endpoint, "--context", "new", "--speed", "3", "--json", store=store).stdout)
    assert report["counts"]["failed"] == 0 and report["network"] == "mock"

    site.stop()
    try:
        live = psp("replay", "cli", "--cdp", chromium_b.endpoint, "--context", "new", "--max", "--network", "live",
                   "--timeout", "1", store=store, check=False)
    finally:
        site.start()
    assert live.returncode == 1, live.stdout + live.stderr
    assert "failed: no element matches #name" in live.stdout

    missing = psp("replay", "nothing", "--cdp", chromium_b.endpoint, store=store, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


async def test_a_state_without_storage_saved_twice_by_one_sessions_object_reads_back(tmp_path: Any) -> None:
    # An imported user flow has no storage; the next version's delta must still apply to what the first reads back as.
    sessions = Sessions(open_store(str(tmp_path / "store")))
    await sessions.save("flow", BrowserSessionState(version="1.0.0"))
    second = BrowserSessionState(version="1.0.0")
    second.recording.start_time = 5
    await sessions.save("flow", second)
    assert (await sessions.load("flow"))[1].recording.start_time == 5


async def test_navigations_the_browser_made_are_replayed_and_those_the_page_made_are_awaited(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/popup"))
        async with recording(cdp, sessions, "goto", context.id) as recorded:
            await navigate(tab, site.url(path="/flow"))  # Page.navigate: what an agent's goto does
            await User(tab).click("#name")
            await User(tab).type("Cy")
    navigations = [json.loads(e.data.data) for e in recorded["state"].recording.events if e.type == "navigate"]
    assert navigations == [{"url": site.url(path="/flow"), "kind": "document", "initiator": "browser"}]
    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await replay(cdp_b, sessions, "goto", context=target.id, speed=None)
            page = await only_page(cdp_b, target.id)
            assert await evaluate(page, "location.pathname + ' ' + document.querySelector('#name').value") == "/flow Cy"
    finally:
        site.start()
    assert not report.failed, [s.as_dict() for s in report.failed]


async def _sent_and_continued(user: User, tab: CdpSession) -> None:
    """Send the flow's form, then follow its link to page two."""
    await user.click("#name")
    await user.type("Di")
    await user.click("#send")
    await wait_until(lambda: evaluate(tab, "!document.querySelector('#next').hidden"))
    await user.click("#next")
    await wait_until(lambda: evaluate(tab, "location.pathname === '/flow/done' && document.readyState === 'complete'"))


async def test_a_step_whose_page_a_recorded_navigation_replaced_is_skipped_not_failed(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        async with recording(cdp, sessions, "late", context.id) as recorded:
            await _sent_and_continued(User(tab), tab)
    state: BrowserSessionState = recorded["state"]
    events = list(state.recording.events)
    kinds = [(e.type, e.target, e.document) for e in events]
    # The focus a mousedown gives comes before its click, in the page it happened in.
    assert kinds.index(("focus", "#next", 0)) < kinds.index(("click", "#next", 0)) < kinds.index(("navigate", "", 1))
    # As a page that answers slower than its navigation would have it: the focus after the navigation.
    focus = events.pop(kinds.index(("focus", "#next", 0)))
    navigation = next(i for i, e in enumerate(events) if e.type == "navigate")
    focus.timestamp = events[navigation].timestamp
    events.insert(navigation + 1, focus)
    del state.recording.events[:]
    state.recording.events.extend(events)
    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await Player(cdp_b, state, context=target.id, speed=None, timeout=2).run()
    finally:
        site.start()
    skipped = [s for s in report.steps if s.outcome == SKIPPED]
    assert [(s.type, s.target) for s in skipped] == [("focus", "#next")]
    assert skipped[0].reason == (f"its page was replaced by the navigation to {site.url(path='/flow/done')}, "
                                 "which the recording shows after it")
    assert not report.failed and report.as_recorded, report.differences


async def test_replay_says_where_it_ended_otherwise_and_strict_exits_1(
    cdp: CdpConnection, chromium: Any, chromium_b: Any, site: Site, tmp_path: Any
) -> None:
    from .test_cli import psp

    store = str(tmp_path / "store")
    sessions = Sessions(open_store(store))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/flow"))
        async with recording(cdp, sessions, "ends", context.id) as recorded:
            await _sent_and_continued(User(tab), tab)
    state: BrowserSessionState = recorded["state"]
    assert state.recording.ended and [e.tab for e in state.recording.ends] == [0]
    end = state.recording.ends[0]
    assert end.url == site.url(path="/flow/done") and text(end.title) == "Flow done"
    assert {text(d.key) for d in end.local_storage} == {"answer"}
    assert [c.key.text for c in state.recording.cookies] == ["order 127.0.0.1/"]
    # The recording as if the page had ended elsewhere, with other storage.
    end.url += "?other"
    end.local_storage[0].digest = "0" * 16
    end.session_storage.add(key=domstring("draft"), digest="1" * 16)
    await sessions.save("ends", state)

    site.stop()
    try:
        plain = psp("replay", "ends", "--cdp", chromium_b.endpoint, "--context", "new", "--max", store=store)
        strict = psp("replay", "ends", "--cdp", chromium_b.endpoint, "--context", "new", "--max", "--strict", store=store,
                     check=False)
    finally:
        site.start()
    assert plain.returncode == 0 and strict.returncode == 1, strict.stdout + strict.stderr
    tail = plain.stdout.splitlines()[-4:]
    assert tail == [
        "ended differently (3 difference(s)):",
        f"  tab 0 shows {site.url(path='/flow/done')}, recorded {site.url(path='/flow/done')}?other",
        '  tab 0: localStorage key "answer" has another value',
        '  tab 0: sessionStorage key "draft" is missing',
    ], plain.stdout
    assert "Traceback" not in strict.stderr and "ended differently" in strict.stdout


async def test_the_digest_is_the_same_in_python_and_in_the_page(page: CdpSession) -> None:
    samples = ["", "a", "Ann Lee", "NUL\x00", "astral \U0001f600", "lone \ud800 surrogate", "\udfff", "é" * 1000,
               "x" * 70000, "".join(chr(i) for i in range(0, 0xD800, 97))]
    world = await page.send("Runtime.evaluate", {
        "expression": f"JSON.stringify({wire_json(samples)}.map({DIGEST}))", "returnByValue": True})
    assert json.loads(world["result"]["value"]) == [digest(s) for s in samples]
    assert len({digest(s) for s in samples}) == len(samples)


def test_differences_name_tabs_fields_keys_and_cookies_without_values() -> None:
    recording = RecordingState(ended=True)
    tab = recording.ends.add(tab=0, url="http://a.test/done", title=domstring("Done"))
    field = tab.fields.add(kind="value", value=domstring("secret typed text"))
    field.target.selectors.append("#name")
    tab.local_storage.add(key=domstring("k"), digest="a" * 16)
    recording.ends.add(tab=1, url="http://a.test/other")
    recording.cookies.add(key=domstring("sid a.test/"), digest="b" * 16)
    same = TabEndState()
    same.CopyFrom(tab)
    assert differences(recording, {0: same, 1: recording.ends[1]}, list(recording.cookies)) == []
    assert differences(RecordingState(), {}, []) == [], "a recording with no end state has nothing to compare"

    other = TabEndState()
    other.CopyFrom(tab)
    other.fields[0].value.text = "something else"
    other.title.text = "Oops"
    other.local_storage.add(key=domstring("new"), digest="c" * 16)
    found = differences(recording, {0: other, 2: TabEndState(tab=2, url="http://a.test/x")}, [])
    assert found == [
        "tab 1 (http://a.test/other) is not open",
        "tab 2 (http://a.test/x) is open; it was closed when the recording stopped",
        'tab 0 has the title "Oops", recorded "Done"',
        "tab 0: field #name holds another value",
        'tab 0: localStorage key "new" was not there when the recording stopped',
        'cookie "sid a.test/" is missing',
    ]
    assert not any("secret" in line or "something" in line for line in found)


async def test_a_mocked_replay_answers_redirects_preflights_beacons_and_a_service_workers_requests(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/requests"))
        await wait_until(lambda: evaluate(tab, "!!navigator.serviceWorker.controller"))
        async with recording(cdp, sessions, "requests", context.id) as recorded:
            await User(tab).click("#go")
            await wait_until(lambda: evaluate(tab, "document.querySelector('#out').textContent !== ''"))
            await trio.sleep(0.3)
        expected = json.loads(await evaluate(tab, "document.querySelector('#out').textContent"))
    assert expected["redirected"]["echo"] == "hop" and expected["cors"]["cors"]["v"] == 1
    assert expected["worker"]["echo"] == "worker" and expected["beacon"] is True
    exchanges = {(x.method, x.url.split("/", 3)[3], x.status, x.resource_type) for x in recorded["state"].recording.exchanges}
    assert {("OPTIONS", "api/cors", 204, "Other"), ("GET", "requests-sw.js", 200, "ServiceWorkerScript"),
            ("GET", "api/echo?n=worker", 200, "Fetch"), ("POST", "api/beacon", 204, "Ping")} <= exchanges, exchanges

    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await replay(cdp_b, sessions, "requests", context=target.id, speed=None, ignore_fields=["ts"])
            page = await only_page(cdp_b, target.id)
            replayed = json.loads(await evaluate(page, "document.querySelector('#out').textContent"))
    finally:
        site.start()
    assert not report.failed, [s.as_dict() for s in report.failed]
    assert replayed == expected
    assert not report.unmatched
    # The POST and the beacon carry a new timestamp: answered by the recorded ones all the same, and listed.
    hows = {(f.method, f.url.split("/", 3)[3], f.how) for f in report.fallbacks}
    assert hows == {("POST", "api/cors", "ignoring ts"), ("POST", "api/beacon", "ignoring ts")}, hows
    assert report.as_recorded, report.differences


async def test_values_a_script_sets_over_cdp_are_recorded_and_the_pages_own_answers_are_not(
    cdp: CdpConnection, cdp_b: CdpConnection, site: Site, tmp_path: Any
) -> None:
    sessions = Sessions(open_store(str(tmp_path / "store")))
    async with browser_context(cdp) as context:
        tab = await context.new_page(site.url(path="/linked"))
        async with recording(cdp, sessions, "linked", context.id) as recorded:
            # An agent's script: .value then an input event (the page sets the city in answer) ...
            await evaluate(tab, "(() => { const c = document.querySelector('#country'); c.value = 'FR';"
                                " c.dispatchEvent(new Event('input', {bubbles: true})); return true; })()")
            # ... and a .value nobody is told of, which the form sends all the same.
            await evaluate(tab, "(() => { document.querySelector('#code').value = '75001'; return true; })()")
            await User(tab).click("#send")
            await wait_until(lambda: evaluate(tab, "document.querySelector('#answer').textContent !== ''"))
        answer = await evaluate(tab, "localStorage.getItem('linked')")
    assert json.loads(answer.removeprefix("Hello ")) == {"country": "FR", "city": "Paris", "code": "75001"}
    values = [(e.type, e.target, json.loads(e.data.data).get("source")) for e in recorded["state"].recording.events
              if e.type in ("input", "change")]
    assert values == [("input", "#country", "script"), ("input", "#code", "sync")], values

    site.stop()
    try:
        async with browser_context(cdp_b) as target:
            report = await replay(cdp_b, sessions, "linked", context=target.id, speed=None)
            page = await only_page(cdp_b, target.id)
            replayed = await evaluate(page, "localStorage.getItem('linked') + ' ' + window.cityChanges")
    finally:
        site.start()
    # The page set the city once, in answer to the country: the replay did not set it again.
    assert replayed == answer + " 1", [s.as_dict() for s in report.steps]
    assert not report.failed and not report.fallbacks and not report.unmatched, report.as_dict()
    assert report.as_recorded, report.differences
    assert report.counts() == {"done": len(report.steps), "retried": 0, "skipped": 0, "failed": 0}
