"""DOM state: form values, focus and scrolled elements, captured in one browser and restored into another.

Rules: loopback only (every page is the test site's ``/form``, ``/form-frame`` or
``/frames``); every check is made inside the restored page; each test uses fresh
browser contexts on the two shared browsers and disposes of them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psp_cdp.cdp import CdpConnection, CdpSession
from psp_cdp.snapshot import codec, model
from psp_cdp.state import RestoreReport, capture_state, restore_state

from .helpers import browser_context, evaluate
from .site import Site

#: The components a DOM round trip needs.
COMPONENTS = ["tabs", "dom"]

_FILL_FORM = """(() => {
  const $ = (s) => document.querySelector(s);
  $('[name=bio]').value = 'new bio\\nsecond line';
  $('#color').selectedIndex = 2;
  $('#tags').options[0].selected = false;
  $('#tags').options[2].selected = true;
  $('#agree').checked = true;
  $('[name=size][value=l]').checked = true;
  $('#secret').value = 'hunter2-typed';
  $('.plain').value = 'no id, no name \\ud800';
  $('#editor').innerHTML = '<b>bold</b> text';
  $('#scroller').scrollTo(30, 250);
  const inner = $('#inner-frame').contentDocument.querySelector('#inner');
  inner.value = 'inside the frame';
  inner.focus();
})()"""


async def _type(page: CdpSession, selector: str, text: str) -> None:
    """Focus an element and type into it with trusted input events."""
    await evaluate(page, f"document.querySelector({json.dumps(selector)}).focus()")
    await page.send("Input.insertText", {"text": text})


async def _round_trip(cdp: CdpConnection, cdp_b: CdpConnection, source_id: str) -> tuple[model.BrowserSessionState, RestoreReport]:
    state = await capture_state(cdp, context=source_id, only=COMPONENTS)
    state = codec.decode(codec.encode(state))
    return state, await restore_state(cdp_b, state, context="new", only=COMPONENTS)


@asynccontextmanager
async def _restored_page(cdp_b: CdpConnection, report: RestoreReport, path: str) -> AsyncIterator[CdpSession]:
    """The restored tab whose URL ends with ``path``, attached; the restored context is disposed of afterwards."""
    try:
        targets = (await cdp_b.send("Target.getTargets"))["targetInfos"]
        info = next(
            t for t in targets if t["type"] == "page" and t.get("browserContextId") == report.context_id and t["url"].endswith(path)
        )
        session = await cdp_b.attach(info["targetId"])
        try:
            yield session
        finally:
            await session.detach()
    finally:
        await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": report.context_id})


def _fields(state: model.BrowserSessionState) -> dict[str, model.FormField]:
    """Every captured field of the first tab, by its first selector."""
    return {f.target.selectors[0]: f for frame in state.history.tabs[0].dom.frames for f in frame.fields}


async def test_form_state_focus_and_scroll_carry_over(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        page = await source.new_page(site.url("127.0.0.1", "/form"))
        await _type(page, "#name", "Alice 😀")
        await evaluate(page, _FILL_FORM)
        state, report = await _round_trip(cdp, cdp_b, source.id)

    fields = _fields(state)
    assert set(fields) == {
        "#name",
        'textarea[name="bio"]',
        "#color",
        "#tags",
        "#agree",
        'input[name="size"][value="s"]',
        'input[name="size"][value="l"]',
        ":root > body:nth-of-type(1) > div:nth-of-type(1) > input:nth-of-type(1)",
        "#editor",
        "#inner",
    }, "only what differs from the page's defaults is captured (the untouched range input is not)"
    assert list(fields["#name"].target.selectors) == [
        "#name",
        "aria/Full name",
        "#profile > input:nth-of-type(1)",
        "xpath//html/body[1]/form[1]/input[1]",
    ]
    assert all(f.target.selectors[-1].startswith("xpath//html/body[1]/") for f in fields.values())
    assert model.text(fields["#name"].value) == "Alice 😀"
    assert model.text(fields[":root > body:nth-of-type(1) > div:nth-of-type(1) > input:nth-of-type(1)"].value) == "no id, no name \ud800"
    frames = state.history.tabs[0].dom.frames
    assert [list(f.path) for f in frames] == [[], [0]]
    assert not frames[0].HasField("focused") and frames[1].focused.selectors[0] == "#inner"

    assert b"hunter2-typed" not in codec.encode(state)
    assert any("password field #secret" in u.what for u in state.report.uncovered)

    assert report.restored["dom"] == len(fields), report.notes
    assert not report.notes
    async with _restored_page(cdp_b, report, "/form") as tab:
        values = await evaluate(
            tab,
            """(() => {
              const $ = (s) => document.querySelector(s);
              const frame = $('#inner-frame').contentDocument;
              return {
                name: $('#name').value,
                bio: $('[name=bio]').value,
                color: $('#color').value,
                tags: Array.from($('#tags').selectedOptions, (o) => o.value),
                agree: $('#agree').checked,
                size: $('[name=size]:checked').value,
                level: $('[name=level]').value,
                secret: $('#secret').value,
                plain: $('.plain').value === 'no id, no name \\ud800',
                editor: $('#editor').innerHTML,
                scroll: [$('#scroller').scrollLeft, $('#scroller').scrollTop],
                inner: frame.querySelector('#inner').value,
                focus: [document.activeElement.id, frame.activeElement.id],
                changes: window.changes,
              };
            })()""",
        )
    assert values == {
        "name": "Alice 😀",
        "bio": "new bio\nsecond line",
        "color": "blue",
        "tags": ["c"],
        "agree": True,
        "size": "l",
        "level": "50",
        "secret": "",
        "plain": True,
        "editor": "<b>bold</b> text",
        "scroll": [30, 250],
        "inner": "inside the frame",
        "focus": ["inner-frame", "inner"],
        # The page's React-style value tracker saw each text field's input event as a change.
        "changes": ["name", "bio", "plain"],
    }


async def test_field_that_no_longer_matches_is_reported_and_focus_in_the_main_frame(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        page = await source.new_page(site.url("127.0.0.1", "/form"))
        await evaluate(
            page,
            """(() => {
              const box = document.createElement('div');
              box.innerHTML = '<input id=dynamic>';
              document.body.append(box);
              box.firstChild.value = 'typed into a field the server does not render';
              document.querySelector('#name').value = 'kept';
              document.querySelector('#agree').focus();
            })()""",
        )
        state, report = await _round_trip(cdp, cdp_b, source.id)

    assert set(_fields(state)) == {"#dynamic", "#name"}
    assert report.restored["dom"] == 1
    assert any("#dynamic" in note and "no element matches" in note for note in report.notes), report.notes
    async with _restored_page(cdp_b, report, "/form") as tab:
        assert await evaluate(tab, "[document.querySelector('#name').value, document.activeElement.id]") == ["kept", "agree"]


async def test_out_of_process_frame(site: Site, cdp: CdpConnection, cdp_b: CdpConnection) -> None:
    inner = site.url("127.0.0.2", "/form-frame")
    async with browser_context(cdp) as source:
        await source.new_page(site.url("127.0.0.1", f"/frames?src={inner}"))
        frame = await _iframe_session(cdp, source.id, inner)
        await evaluate(frame, "document.querySelector('#inner').value = 'across sites'")
        await frame.detach()
        state, report = await _round_trip(cdp, cdp_b, source.id)

    [frame_state] = state.history.tabs[0].dom.frames
    assert list(frame_state.path) == [0] and frame_state.url == inner
    assert report.restored["dom"] == 1, report.notes
    try:
        frame = await _iframe_session(cdp_b, report.context_id, inner)
        assert await evaluate(frame, "document.querySelector('#inner').value") == "across sites"
        await frame.detach()
    finally:
        await cdp_b.send("Target.disposeBrowserContext", {"browserContextId": report.context_id})


async def _iframe_session(connection: CdpConnection, context_id: str | None, url: str) -> CdpSession:
    targets = (await connection.send("Target.getTargets"))["targetInfos"]
    info = next(t for t in targets if t["type"] == "iframe" and t.get("browserContextId") == context_id and t["url"] == url)
    return await connection.attach(info["targetId"])


async def test_dom_snapshot_on_request(site: Site, cdp: CdpConnection) -> None:
    async with browser_context(cdp) as source:
        await source.new_page(site.url("127.0.0.1", "/form"))
        plain = await capture_state(cdp, context=source.id, only=COMPONENTS)
        with_snapshot = await capture_state(cdp, context=source.id, only=COMPONENTS, options=["dom_snapshot"])
    assert not plain.history.tabs[0].dom.snapshot
    snapshot: dict[str, Any] = json.loads(with_snapshot.history.tabs[0].dom.snapshot)
    assert snapshot["documents"] and "scroller" in snapshot["strings"]
    assert any("layout" in document for document in snapshot["documents"])
