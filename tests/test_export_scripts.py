"""``psp export --format playwright-python|playwright-test|selenium-python``: scripts that run.

One recording, made once for the module in a fresh context of the shared browser: it starts
with two tabs, tests/site.py's two-page ``/flow`` (typed name, a select moved with the
keyboard, a checkbox, a textarea, a file picked in the chooser ``#avatar`` opens,
a fetch() POST whose answer writes localStorage and a cookie, the link to page two, a comment
written to sessionStorage on Tab) and ``/popup`` (a double click, a link that opens ``/form``
in a new tab, where the user types into a field, a password, a contenteditable and an
iframe, picks a radio button and turns the wheel over a scroller); then a tab opened by the
browser, loaded, reloaded and closed. ``psp export`` writes the three scripts and each
runs as a user would run it: the Python ones with this virtualenv's Python, the TypeScript one
with ``npx playwright test`` from ``.npm-export`` (``./quickstart test`` installs
``@playwright/test`` there; the test is skipped without it). Each must exit 0: it restored the
starting state, replayed the steps against the live site and its own end-state checks passed.
The site answers each ``/api/flow`` POST with the next order number, so ``site.orders`` is set
back before each run for the live site to answer the recorded order again; set to another
number, the Selenium script must fail, naming the localStorage its answer went to.

Property tests (no browser) check that whatever strings selectors, values, URLs, file names,
titles and storage keys hold, the Python scripts compile and each such string reads back from
a literal, and the TypeScript test writes them as valid JSON strings.

Rules: loopback only; the recording is made by a module-scoped fixture that runs trio
itself, with the recorder on a connection of its own; the scripts start their own headless
Chromium (Debian's) and run as subprocesses, each with a time limit of
:data:`SCRIPT_TIME_LIMIT` seconds; the recording's store is the module's own.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from psp_cdp.cdp import CdpSession, LaunchedBrowser, open_cdp
from psp_cdp.cli import main
from psp_cdp.record.events import json_event
from psp_cdp.record.export import to_playwright_python, to_playwright_test, to_selenium_python
from psp_cdp.snapshot.model import RecordingState, domstring
from psp_cdp.store import Sessions, open_store

from .helpers import browser_context, evaluate, navigate, wait_until
from .site import Site
from .test_cli import PSP, psp
from .test_record import User, _fill_the_flow, _frame_click, _new_tab, recording
from .test_replay_drivers import _choose_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM_FOLDER = os.path.join(ROOT, ".npm-export")
#: Seconds a script may run.
SCRIPT_TIME_LIMIT = 120
PICTURE = ("photo.txt", "pixels \u00e9\n".encode())


@dataclass
class Recorded:
    store: str
    #: ``site.orders`` when the recording began.
    orders: int
    #: The events' types, for the test to know what it covered.
    kinds: set[str]


async def _the_flow(user: User, tab: CdpSession, picture: str) -> None:
    await tab.send("Page.bringToFront")  # a tab in the background draws no frames, and input waits for one
    await _choose_file(tab, user, "#avatar", picture)  # sent with the form, whenever it is picked
    await _fill_the_flow(user, tab)


async def _the_popup(connection: Any, context_id: str, first: CdpSession, known: set[str]) -> None:
    await first.send("Page.bringToFront")
    await User(first).click("#items li:nth-child(2)", count=2)
    await User(first).click("#open")
    second = await _new_tab(connection, context_id, known)
    user = User(second)
    for selector, text in (("#name", "Bo"), ("#secret", "pw1"), ("#editor", "hi")):
        await user.click(selector)
        await user.type(text)
    await _frame_click(user, "#inner-frame", "#inner")
    await user.type("deep")
    await user.click("input[name=size][value=m]")
    box = json.loads(await evaluate(second, "JSON.stringify(document.querySelector('#scroller').getBoundingClientRect())"))
    await second.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": box["x"] + 20, "y": box["y"] + 20, "deltaX": 0, "deltaY": 240})
    await wait_until(lambda: evaluate(second, "document.querySelector('#scroller').scrollTop >= 240"))
    await trio.sleep(0.3)  # the scroll is reported once it settles


async def _a_tab_of_the_browser(connection: Any, context_id: str, site: Site) -> None:
    created = await connection.send("Target.createTarget", {"url": "about:blank", "browserContextId": context_id})
    session = await connection.attach(created["targetId"])
    await session.send("Page.enable")
    await navigate(session, site.url(path="/page?title=Hello"))
    await session.send("Page.reload")
    await wait_until(lambda: evaluate(session, "document.readyState === 'complete'"))
    await connection.send("Target.closeTarget", {"targetId": created["targetId"]})


async def _record(endpoint: str, site: Site, store: str, picture: str) -> Recorded:
    sessions = Sessions(open_store(store))
    # The recorder has a connection of its own: the tabs this one attaches to are not its business.
    async with open_cdp(endpoint) as connection, open_cdp(endpoint) as recorder, browser_context(connection) as context:
        flow = await context.new_page(site.url(path="/flow"))
        popup = await context.new_page(site.url(path="/popup"))
        orders = site.orders
        async with recording(recorder, sessions, "flow", context.id, network=False) as recorded:
            await _the_flow(User(flow), flow, picture)
            await _the_popup(connection, context.id, popup, {flow.target_id, popup.target_id})
            await _a_tab_of_the_browser(connection, context.id, site)
            await trio.sleep(0.3)
    return Recorded(store, orders, {e.type for e in recorded["state"].recording.events})


@pytest.fixture(scope="module")
def recorded(chromium: LaunchedBrowser, site: Site, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    folder = tmp_path_factory.mktemp("export-scripts")
    picture = folder / PICTURE[0]
    picture.write_bytes(PICTURE[1])
    return trio.run(_record, chromium.endpoint, site, str(folder / "store"), str(picture))


def _export(recorded: Recorded, fmt: str, path: str) -> str:
    result = psp("export", "flow", "--format", fmt, "-o", path, store=recorded.store)
    assert f"({fmt}," in result.stderr, result.stderr
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _run(command: list[str], site: Site, orders: int, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a script as its user would (PSP_STORE unset: the script knows its store), the site's last order ``orders``."""
    env = {k: v for k, v in os.environ.items() if k != "PSP_STORE"}
    env.update(options.pop("env", {}))
    site.orders = orders
    return subprocess.run(command, capture_output=True, text=True, timeout=SCRIPT_TIME_LIMIT, env=env, **options)


def _passes(command: list[str], site: Site, recorded: Recorded, **options: Any) -> None:
    """The script ends as recorded when the live site gives the recorded order again."""
    result = _run(command, site, recorded.orders, **options)
    assert result.returncode == 0, f"{command} exited {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_the_recording_covers_what_the_scripts_do(recorded: Recorded) -> None:
    assert {"click", "dblclick", "keydown", "input", "change", "wheel", "scroll", "navigate", "tab_open", "tab_close"} <= recorded.kinds


def test_the_playwright_python_script_replays_and_ends_as_recorded(recorded: Recorded, site: Site, tmp_path: Any) -> None:
    script = _export(recorded, "playwright-python", str(tmp_path / "flow_playwright.py"))
    assert "PlaywrightAdapter().load_session(SESSION, storage=STORE).restore(page, version=VERSION)" in script
    assert "expect_popup()" in script and "set_input_files" in script and "frame_at(tabs[2], 0)" in script
    _passes([sys.executable, str(tmp_path / "flow_playwright.py")], site, recorded)


def test_the_selenium_python_script_replays_and_ends_as_recorded(recorded: Recorded, site: Site, tmp_path: Any) -> None:
    script = _export(recorded, "selenium-python", str(tmp_path / "flow_selenium.py"))
    assert "SeleniumAdapter().load_session(SESSION, storage=STORE).restore(driver, version=VERSION)" in script
    assert "write_files(files.name, [['photo.txt'," in script and "at(driver, tabs, 2, 0)" in script
    _passes([sys.executable, str(tmp_path / "flow_selenium.py")], site, recorded)
    # Another order number: the answer the page keeps in localStorage differs, and the script says so.
    other = _run([sys.executable, str(tmp_path / "flow_selenium.py")], site, recorded.orders + 100, env={"PSP_TIMEOUT": "3"})
    assert other.returncode == 1 and "AssertionError: tab 0: localStorage (keys and digests of values)" in other.stderr, other.stderr


def test_the_playwright_test_spec_replays_and_ends_as_recorded(recorded: Recorded, site: Site, tmp_path: Any) -> None:
    if not os.path.isdir(os.path.join(NPM_FOLDER, "node_modules", "@playwright", "test")) or shutil.which("npx") is None:
        pytest.skip("no @playwright/test in .npm-export: run the Quick start's test command")
    runs = os.path.join(NPM_FOLDER, "runs")
    os.makedirs(runs, exist_ok=True)
    folder = tempfile.mkdtemp(dir=runs)  # inside .npm-export, so that the spec finds @playwright/test
    try:
        spec = os.path.join(folder, "flow.spec.ts")
        script = _export(recorded, "playwright-test", spec)
        assert "chromium.launchPersistentContext(profile" in script and "waitForEvent('popup')" in script
        command = ["npx", "playwright", "test", os.path.relpath(spec, NPM_FOLDER), "--reporter=line", "--workers=1",
                   f"--output={tmp_path / 'results'}"]
        _passes(command, site, recorded, cwd=NPM_FOLDER, env={"PSP_BIN": PSP, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_import_refuses_the_script_formats(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "flow.py"
    script.write_text("print('hello')\n")
    for fmt in ("playwright-python", "playwright-test", "selenium-python"):
        assert main(["import", str(script), "--name", "flow", "--format", fmt, "--store", str(tmp_path / "store")]) == 1
        error = capsys.readouterr().err
        assert error.splitlines() == [f"psp: error: {fmt} is a script psp writes (psp export --format {fmt}); it cannot be imported"]


# -- literals ----------------------------------------------------------------------------------

#: Any string a DOMString holds, lone surrogates included.
_anything = st.text(st.characters(exclude_categories=()), min_size=1, max_size=12)
#: Any string a protobuf string holds (selectors): no lone surrogates.
_unicode = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)

_XPATH_INPUT = "xpath//html/body/input[1]"


def _strings_recording(selector: str, value: str, url: str, name: str, key: str, title: str) -> RecordingState:
    """A recording whose every string field holds one of the given strings."""
    data = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()
    events = [
        json_event("click", 0, {"button": "left", "count": 1}, selectors=["#" + selector]),
        json_event("click", 1, {"button": "left", "count": 1}, selectors=["aria/" + selector, _XPATH_INPUT]),
        json_event("click", 2, {"button": "left", "count": 1}, selectors=["text/" + selector]),
        json_event("click", 3, {"button": "left", "count": 1}, selectors=["xpath//" + selector]),
        json_event("input", 4, {"value": value}, selectors=["#field", _XPATH_INPUT]),
        json_event("keydown", 5, {"key": key, "modifiers": 0}, selectors=["#field", _XPATH_INPUT]),
        json_event("change", 6, {"kind": "select", "values": [value], "selected": [0]}, selectors=["#choice", "xpath//html/body/select[1]"]),
        json_event("change", 7, {"kind": "files", "files": [{"name": name, "type": value, "data": data}, {"name": name, "omitted": True}]},
                   selectors=["#file", _XPATH_INPUT]),
        json_event("navigate", 8, {"url": url, "kind": "document", "initiator": "browser"}),
        json_event("navigate", 9, {"url": url + "/next", "kind": "document", "initiator": "page"}),
        json_event("tab_open", 10, {"url": url, "opener": None}, tab=1),
        json_event("click", 11, {"button": "back"}, selectors=["#" + selector]),
    ]
    state = RecordingState(events=events, ended=True)
    proto_url = url if not any(0xD800 <= ord(c) <= 0xDFFF for c in url) else "http://127.0.0.1/"  # a protobuf string
    end = state.ends.add(tab=0, url=proto_url)
    domstring(title, end.title)
    field = end.fields.add(kind="value")
    field.target.selectors.extend(["#" + selector, _XPATH_INPUT])
    domstring(value, field.value)
    end.local_storage.add(key=domstring(title), digest="0123456789abcdef")
    return state


def _python_strings(source: str) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@settings(max_examples=60, deadline=None)
@given(_unicode, _anything, _anything, _anything, _anything, _anything, _anything)
def test_the_python_scripts_compile_and_every_string_reads_back(
    selector: str, value: str, url: str, name: str, key: str, title: str, store: str
) -> None:
    state = _strings_recording(selector, value, url, name, key, title)
    for make in (to_playwright_python, to_selenium_python):
        source = make(state, title, 7, store)
        compile(source, make.__name__, "exec")
        source.encode("utf-8")  # what psp export writes
        strings = _python_strings(source)
        for wanted in (value, url, url + "/next", title, store, base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()):
            assert wanted in strings, (make.__name__, wanted)
        assert any(name in s for s in strings), "the file name, in a literal of its own or in a comment's"
        if make is to_playwright_python:
            css = "#" + selector.replace(" >>> ", " ")
            assert css in strings or "css=" + css in strings
            assert selector in strings and "xpath=/" + selector in strings and name in strings
        else:
            assert "/" + selector in strings and (">>>" in selector or "#" + selector in strings) and name in strings


#: A TypeScript double-quoted string literal.
_TS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


@settings(max_examples=60, deadline=None)
@given(_unicode, _anything, _anything, _anything, _anything, _anything, _anything)
def test_the_typescript_test_writes_every_string_as_json(selector: str, value: str, url: str, name: str, key: str, title: str, store: str) -> None:
    source = to_playwright_test(_strings_recording(selector, value, url, name, key, title), title, 7, store)
    assert source.isascii()
    literals = [json.loads(token) for token in _TS_STRING.findall(source)]
    for wanted in (value, url, url + "/next", title, store, name, selector, "xpath=/" + selector):
        assert wanted in literals, wanted
