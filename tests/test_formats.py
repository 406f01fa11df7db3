"""Recorder user flows and HAR 1.2 (psp_cdp.record.formats) and ``psp export``/``import`` of them.

No browser and no network: recordings are built by hand. Property tests build recordings
from user actions (each action gives the events the recorder writes for it and the steps
Chrome's Recorder would make of it) and check both round trips; the unit tests read a
user flow as Chrome 120+ exports it and HAR files as Chrome DevTools and Playwright write
them; garbage gives StateError or UsageError, never a traceback. The CLI tests run
``psp`` in-process (``psp_cdp.cli.main``) on a store of their own in ``tmp_path``.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from psp_cdp.cli import main
from psp_cdp.errors import StateError
from psp_cdp.record.formats import (
    from_har,
    from_user_flow,
    har_start_time,
    to_har,
    to_user_flow,
)
from psp_cdp.snapshot.model import (
    PROTOCOL_VERSION,
    BrowserSessionState,
    NetworkExchange,
    RecordedEvent,
    RecordingState,
    SerializedValue,
)
from psp_cdp.store import Sessions, open_store

# -- building recordings ------------------------------------------------------------------------


def event(kind: str, data: dict[str, Any], selectors: list[str] | None = None, *, tab: int = 0, frame: list[int] | None = None) -> RecordedEvent:
    """One recorded event, as the recorder writes it."""
    made = RecordedEvent(type=kind, tab=tab, frame=frame or [], data=SerializedValue(encoding="json", data=json.dumps(data).encode()))
    if selectors:
        made.element.selectors.extend(selectors)
        made.target = selectors[0]
    return made


def recording_of(events: list[RecordedEvent], start_time: int = 1_700_000_000_000) -> RecordingState:
    recording = RecordingState(start_time=start_time, recorded=["input"])
    for index, made in enumerate(events):
        made.timestamp = index * 7.5
    recording.events.extend(events)
    return recording


def data_of(made: RecordedEvent) -> dict[str, Any]:
    return json.loads(made.data.data) if made.data.data else {}


@dataclass(frozen=True)
class Element:
    selectors: tuple[str, ...]
    frame: tuple[int, ...] = ()

    def events(self, kind: str, data: dict[str, Any]) -> RecordedEvent:
        return event(kind, data, list(self.selectors), frame=list(self.frame))

    def step(self, kind: str, **fields: Any) -> dict[str, Any]:
        step: dict[str, Any] = {"type": kind, "target": "main"}
        if self.frame:
            step["frame"] = list(self.frame)
        step["selectors"] = [[s] for s in self.selectors]
        step.update(fields)
        return step


@dataclass
class Actions:
    """Events of a sequence of user actions, and the user flow steps they make."""

    events: list[RecordedEvent] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def key(self, kind: str, key: str, modifiers: int = 0, text: str = "", el: Element | None = None) -> RecordedEvent:
        data = {"key": key, "code": "", "keyCode": 0, "location": 0, "modifiers": modifiers, "repeat": False, "text": text}
        return event(kind, data) if el is None else el.events(kind, data)

    def click(self, el: Element, button: str, offset: tuple[float, float], control: bool) -> None:
        self.events.append(el.events("click", _pointer(button, 1, offset, 2 if control else 0)))
        step = el.step("click", **({"button": _BUTTONS[button]} if button != "left" else {}), offsetX=offset[0], offsetY=offset[1])
        # a click with Ctrl held that no keydown of Control shows: the flow presses Control around it
        self.steps.extend([_key_step("keyDown", "Control"), step, _key_step("keyUp", "Control")] if control else [step])

    def double_click(self, el: Element, offset: tuple[float, float]) -> None:
        self.events.extend(el.events(kind, _pointer("left", count, offset)) for kind, count in (("click", 1), ("click", 2), ("dblclick", 2)))
        self.steps.append(el.step("doubleClick", offsetX=offset[0], offsetY=offset[1]))

    def type(self, el: Element, text: str) -> None:
        """Typing ``text`` into a field, Shift held for capitals, then leaving it (change)."""
        self.events.append(el.events("focus", {}))
        typed = ""
        change_step = None
        for char in text:
            shifted = char != char.lower()
            if shifted:
                self.events.append(self.key("keydown", "Shift", 8, "", el))
                self.steps.append(_key_step("keyDown", "Shift"))
            typed += char
            self.events.append(self.key("keydown", char, 8 if shifted else 0, char, el))
            self.events.append(el.events("input", {"value": typed, "inputType": "insertText", "data": char}))
            self.events.append(self.key("keyup", char, 8 if shifted else 0, "", el))
            if change_step is None:
                change_step = el.step("change", value=text)
                self.steps.append(change_step)
            if shifted:
                self.events.append(self.key("keyup", "Shift", 0, "", el))
                self.steps.append(_key_step("keyUp", "Shift"))
        self.events.append(el.events("change", {"kind": "value", "value": text}))

    def paste(self, el: Element, value: str) -> None:
        self.events.append(el.events("input", {"value": value, "inputType": "insertFromPaste", "data": None}))
        self.events.append(el.events("change", {"kind": "value", "value": value}))
        self.steps.append(el.step("change", value=value))

    def press(self, key: str, control: str) -> None:
        """A key that types nothing into a field; Control held by a keydown of its own, by modifiers only, or not."""
        modifiers = 2 if control != "no" else 0
        text = "" if modifiers else ("\r" if key == "Enter" else (key if len(key) == 1 else ""))
        if control == "keydown":
            self.events.append(self.key("keydown", "Control", 2))
        self.events.append(self.key("keydown", key, modifiers, text))
        self.events.append(self.key("keyup", key, modifiers))
        if control == "keydown":
            self.events.append(self.key("keyup", "Control", 0))
        steps = [_key_step("keyDown", key), _key_step("keyUp", key)]
        self.steps.extend([_key_step("keyDown", "Control"), *steps, _key_step("keyUp", "Control")] if modifiers else steps)

    def select(self, el: Element, value: str) -> None:
        self.events.append(el.events("change", {"kind": "select", "selected": [1], "values": [value]}))
        self.steps.append(el.step("change", value=value))

    def check(self, el: Element, offset: tuple[float, float]) -> None:
        self.events.append(el.events("click", _pointer("left", 1, offset)))
        self.events.append(el.events("change", {"kind": "checked", "checked": True}))
        self.steps.append(el.step("click", offsetX=offset[0], offsetY=offset[1]))

    def scroll(self, el: Element | None, x: float, y: float) -> None:
        self.events.append(event("scroll", {"x": x, "y": y}) if el is None else el.events("scroll", {"x": x, "y": y}))
        step = {"type": "scroll", "target": "main"} if el is None else el.step("scroll")
        step.update(x=x, y=y)
        last = self.steps[-1] if self.steps else None
        if last is not None and last["type"] == "scroll" and last.get("selectors") == step.get("selectors") and last.get("frame") == step.get("frame"):
            last.update(x=x, y=y)  # consecutive scrolls of one element: one step, as the Recorder makes
        else:
            self.steps.append(step)

    def navigate(self, url: str, by_page: bool) -> None:
        self.events.append(event("navigate", {"url": url, "kind": "document", "initiator": "page" if by_page else "browser"}))
        asserted = {"type": "navigation", "url": url, "title": ""}
        if not by_page:
            self.steps.append({"type": "navigate", "target": "main", "url": url, "assertedEvents": [asserted]})
        elif self.steps:
            self.steps[-1].setdefault("assertedEvents", []).append(asserted)


_BUTTONS = {"left": "primary", "middle": "auxiliary", "right": "secondary"}


def _pointer(button: str, count: int, offset: tuple[float, float], modifiers: int = 0) -> dict[str, Any]:
    return {"button": button, "count": count, "modifiers": modifiers, "x": 10, "y": 20, "offsetX": offset[0], "offsetY": offset[1]}


def _key_step(kind: str, key: str) -> dict[str, Any]:
    return {"type": kind, "target": "main", "key": key}


# -- strategies ---------------------------------------------------------------------------------

# protobuf strings hold no lone surrogates; values (JSON in `data`) may
proto_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
dom_strings = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
typed_text = st.text(st.characters(categories=("L", "N", "P", "S")) | st.just(" "), min_size=1, max_size=6)
offsets = st.tuples(st.integers(0, 400) | st.floats(0, 400), st.integers(0, 400) | st.floats(0, 400))
urls = st.builds(lambda path: f"https://shop.test/{path}", proto_text)
elements = st.builds(
    Element,
    st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10), min_size=1, max_size=3).map(tuple),
    st.lists(st.integers(0, 3), max_size=2).map(tuple),
)


@st.composite
def actions(draw: st.DrawFn) -> Actions:
    pool = draw(st.lists(elements, min_size=1, max_size=4))
    done = Actions()
    for _ in range(draw(st.integers(0, 12))):
        el = draw(st.sampled_from(pool))
        choice = draw(st.sampled_from(["click", "double", "type", "paste", "press", "select", "check", "scroll", "navigate"]))
        if choice == "click":
            done.click(el, draw(st.sampled_from(list(_BUTTONS))), draw(offsets), draw(st.booleans()))
        elif choice == "double":
            done.double_click(el, draw(offsets))
        elif choice == "type":
            done.type(el, draw(typed_text))
        elif choice == "paste":
            done.paste(el, draw(dom_strings))
        elif choice == "press":
            key = draw(st.sampled_from(["Enter", "Tab", "Escape", "ArrowDown", "Backspace", "F5", "a", "Z"]))
            done.press(key, draw(st.sampled_from(["no", "keydown", "modifiers"])))
        elif choice == "select":
            done.select(el, draw(dom_strings))
        elif choice == "check":
            done.check(el, draw(offsets))
        elif choice == "scroll":
            done.scroll(draw(st.none() | st.just(el)), draw(st.integers(0, 5000)), draw(st.integers(0, 5000)))
        else:
            done.navigate(draw(urls), draw(st.booleans()))
    return done


# -- user flows: properties ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(actions())
def test_user_flow_has_the_steps_of_the_actions(done: Actions) -> None:
    flow = to_user_flow(recording_of(done.events), "a title")
    assert flow == {"title": "a title", "steps": done.steps}
    json.dumps(flow)  # plain JSON


@settings(max_examples=200, deadline=None)
@given(actions())
def test_user_flow_round_trips(done: Actions) -> None:
    flow = to_user_flow(recording_of(done.events), "t")
    back = from_user_flow(json.loads(json.dumps(flow)))
    assert to_user_flow(back, "t") == flow
    timestamps = [e.timestamp for e in back.events]
    assert timestamps == [i * 100.0 for i in range(len(timestamps))]
    assert {e.tab for e in back.events} <= {0}
    assert list(back.recorded) == ["input"]
    # the dispatchable content, in order: selectors, values, keys, URLs
    assert _dispatched(back) == _dispatched_steps(flow["steps"])


def _dispatched(recording: RecordingState) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for made in recording.events:
        data = data_of(made)
        selectors = list(made.element.selectors)
        if made.type == "click" and data["count"] == 1:
            out.append(("click", selectors, data["button"], data["offsetX"], data["offsetY"]))
        elif made.type == "dblclick":
            out[-1] = ("doubleClick", *out[-1][1:])
        elif made.type == "change":
            assert data["kind"] == "value"
            out.append(("change", selectors, data["value"]))
        elif made.type in ("keydown", "keyup"):
            out.append((made.type, data["key"]))
        elif made.type == "scroll":
            out.append(("scroll", selectors, data["x"], data["y"]))
        elif made.type == "navigate":
            out.append(("navigate", data["initiator"], data["url"]))
    return out


def _dispatched_steps(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    buttons = {v: k for k, v in _BUTTONS.items()}
    for step in steps:
        selectors = [s[0] for s in step.get("selectors", [])]
        kind = step["type"]
        if kind in ("click", "doubleClick"):
            out.append((kind, selectors, buttons[step.get("button", "primary")], step["offsetX"], step["offsetY"]))
        elif kind == "change":
            out.append(("change", selectors, step["value"]))
        elif kind in ("keyDown", "keyUp"):
            out.append((kind.lower(), step["key"]))
        elif kind == "scroll":
            out.append(("scroll", selectors, step["x"], step["y"]))
        elif kind == "navigate":
            out.append(("navigate", "browser", step["url"]))
        for asserted in step.get("assertedEvents", [])[1 if kind == "navigate" else 0:]:
            out.append(("navigate", "page", asserted["url"]))
    return out


# Any events at all, with data of any shape: what the flow keeps survives a round trip.
_EVENT_TYPES = ["click", "dblclick", "keydown", "keyup", "input", "change", "focus", "scroll", "wheel", "navigate", "tab_open", "tab_close", "odd"]
_any_value = st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=False, allow_infinity=False) | dom_strings | st.lists(proto_text, max_size=2)
_event_data = st.fixed_dictionaries({}, optional={
    "button": st.sampled_from(["left", "middle", "right", "back"]) | _any_value,
    "count": st.integers(0, 3) | _any_value,
    "modifiers": st.integers(0, 15) | _any_value,
    "offsetX": _any_value, "offsetY": _any_value, "x": _any_value, "y": _any_value,
    "key": st.sampled_from(["a", "A", "Enter", "Shift", "Control", "Alt", "Meta", "Tab", " ", "\r"]) | _any_value,
    "code": st.sampled_from(["KeyA", "", "Enter"]) | _any_value,
    "text": st.sampled_from(["", "a", "A", "\r"]) | _any_value,
    "value": _any_value, "values": _any_value,
    "kind": st.sampled_from(["value", "select", "checked", "document", "reload"]) | _any_value,
    "url": st.sampled_from(["", "https://a.test/", "https://b.test/", "about:blank"]) | _any_value,
    "initiator": st.sampled_from(["page", "browser"]) | _any_value,
})
_random_events = st.lists(
    st.builds(
        lambda kind, data, selectors, tab, frame: event(kind, data, selectors, tab=tab, frame=frame),
        st.sampled_from(_EVENT_TYPES), _event_data, st.lists(st.sampled_from(["#a", "#b"]), max_size=2, unique=True),
        st.integers(0, 2), st.lists(st.integers(0, 1), max_size=1),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(_random_events)
def test_any_recorded_events_make_a_flow_that_round_trips(events: list[RecordedEvent]) -> None:
    flow = to_user_flow(recording_of(events), "t")
    back = from_user_flow(json.loads(json.dumps(flow, allow_nan=False)))
    assert to_user_flow(back, "t") == flow


# -- user flows: examples -----------------------------------------------------------------------

#: A user flow as Chrome 120+ exports it (Recorder panel, "Export as JSON").
CHROME_FLOW: dict[str, Any] = {
    "title": "Sign in and search",
    "steps": [
        {"type": "setViewport", "width": 1280, "height": 720, "deviceScaleFactor": 1, "isMobile": False, "hasTouch": False, "isLandscape": False},
        {
            "type": "navigate",
            "url": "https://shop.test/login",
            "assertedEvents": [{"type": "navigation", "url": "https://shop.test/login", "title": "Sign in"}],
        },
        {
            "type": "click",
            "target": "main",
            "selectors": [["aria/Email"], ["#email"], ["xpath///*[@id=\"email\"]"], ["pierce/#email"]],
            "offsetX": 52.5,
            "offsetY": 9,
        },
        {
            "type": "change",
            "value": "ann@example.com",
            "selectors": [["aria/Email"], ["#email"], ["xpath///*[@id=\"email\"]"], ["pierce/#email"]],
            "target": "main",
        },
        {"type": "keyDown", "target": "main", "key": "Tab"},
        {"type": "keyUp", "key": "Tab", "target": "main"},
        {"type": "change", "value": "s3cret", "selectors": [["#password"], ["xpath///*[@id=\"password\"]"]], "target": "main"},
        {"type": "keyDown", "target": "main", "key": "Enter"},
        {
            "type": "keyUp",
            "key": "Enter",
            "target": "main",
            "assertedEvents": [{"type": "navigation", "url": "https://shop.test/account", "title": "Account"}],
        },
        {
            "type": "click",
            "target": "main",
            "selectors": [["my-app", "button.search"], ["text/Search"]],
            "offsetX": 10,
            "offsetY": 10,
            "button": "secondary",
            "frame": [0],
            "duration": 300,
        },
        {"type": "doubleClick", "target": "main", "selectors": [["p.intro"]], "offsetX": 3, "offsetY": 4},
        {"type": "keyDown", "target": "main", "key": "Control"},
        {"type": "keyDown", "target": "main", "key": "a"},
        {"type": "keyUp", "target": "main", "key": "a"},
        {"type": "keyUp", "target": "main", "key": "Control"},
        {"type": "scroll", "target": "main", "x": 0, "y": 640},
        {"type": "waitForElement", "selectors": [["aria/Results"]], "count": 1},
        {"type": "click", "target": "https://shop.test/popup", "selectors": [["#ok"]], "offsetX": 1, "offsetY": 2},
    ],
}


def test_a_chrome_user_flow_reads_as_events() -> None:
    recording = from_user_flow(CHROME_FLOW)
    kinds = [e.type for e in recording.events]
    assert kinds == [
        "navigate",
        "click", "focus", "change",
        "keydown", "keyup",
        "focus", "change",
        "keydown", "keyup", "navigate",
        "click",
        "click", "click", "dblclick",
        "keydown", "keydown", "keyup", "keyup",
        "scroll",
        "tab_open", "click",
    ]
    events = recording.events
    assert data_of(events[0]) == {"url": "https://shop.test/login", "kind": "document", "initiator": "browser"}
    assert list(events[1].element.selectors) == ["aria/Email", "#email", "xpath///*[@id=\"email\"]", "pierce/#email"]
    assert events[1].target == "aria/Email"
    assert data_of(events[1]) == {"button": "left", "count": 1, "modifiers": 0, "offsetX": 52.5, "offsetY": 9}
    assert data_of(events[3]) == {"kind": "value", "value": "ann@example.com"}
    assert data_of(events[4])["key"] == "Tab" and data_of(events[4])["text"] == ""
    assert data_of(events[8])["text"] == "\r" and data_of(events[8])["keyCode"] == 13
    assert data_of(events[10]) == {"url": "https://shop.test/account", "kind": "document", "initiator": "page"}
    # a shadow-piercing selector is kept, joined with Puppeteer's deep combinator
    assert list(events[11].element.selectors) == ["my-app >>> button.search", "text/Search"]
    assert list(events[11].frame) == [0] and data_of(events[11])["button"] == "right"
    assert [data_of(e)["count"] for e in events[12:15]] == [1, 2, 2]
    ctrl_a = [data_of(e) for e in events[15:19]]
    assert [(d["key"], d["modifiers"], d["text"]) for d in ctrl_a] == [("Control", 2, ""), ("a", 2, ""), ("a", 2, ""), ("Control", 0, "")]
    assert data_of(events[19]) == {"x": 0, "y": 640} and not events[19].element.selectors
    assert (events[20].tab, data_of(events[20])) == (1, {"url": "https://shop.test/popup", "opener": 0})
    assert events[21].tab == 1
    assert all(b.timestamp - a.timestamp == 100 for a, b in itertools.pairwise(events))
    assert recording.duration == events[-1].timestamp


def test_a_chrome_user_flow_comes_back_as_chrome_wrote_it() -> None:
    again = to_user_flow(from_user_flow(CHROME_FLOW), CHROME_FLOW["title"])
    expected = []
    for step in copy.deepcopy(CHROME_FLOW["steps"]):
        if step["type"] in ("setViewport", "waitForElement"):
            continue  # skipped: no event
        step = {**step, "target": step.get("target", "main")}
        step.pop("duration", None)  # not recorded
        for asserted in step.get("assertedEvents", []):
            asserted["title"] = ""  # titles are not recorded
        if step.get("selectors") == [["my-app", "button.search"], ["text/Search"]]:
            step["selectors"] = [["my-app >>> button.search"], ["text/Search"]]
        expected.append(step)
    assert [_sorted(s) for s in again["steps"]] == [_sorted(s) for s in expected]


def _sorted(step: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(step.items()))


def test_a_recording_of_typing_folds_into_one_change_and_keeps_enter() -> None:
    field = ["#q"]

    def key(kind: str, key: str, text: str = "", modifiers: int = 0) -> RecordedEvent:
        return event(kind, {"key": key, "code": f"Key{key.upper()}" if len(key) == 1 else key, "modifiers": modifiers, "text": text}, field)

    recording = recording_of([
        event("click", _pointer("left", 1, (5, 5)), field),
        event("focus", {}, field),
        key("keydown", "h", "h"), event("input", {"value": "h"}, field), key("keyup", "h"),
        key("keydown", "i", "i"), event("input", {"value": "hi"}, field),  # fast typing: keys overlap
        key("keydown", "!", "!"), event("input", {"value": "hi!"}, field), key("keyup", "i"), key("keyup", "!"),
        key("keydown", "Enter", "\r"), event("change", {"kind": "value", "value": "hi!"}, field), key("keyup", "Enter"),
        event("navigate", {"url": "https://shop.test/?q=hi!", "kind": "document", "initiator": "page"}),
        event("wheel", {"deltaY": 100}, ["main"]),
        event("scroll", {"x": 0, "y": 100}), event("scroll", {"x": 0, "y": 250}),
        event("tab_open", {"url": "https://shop.test/help", "opener": 0}, tab=1),
        event("click", _pointer("middle", 1, (1, 1)), ["a.more"], tab=1),
        event("tab_close", {}, tab=1),
    ])
    steps = to_user_flow(recording, "t")["steps"]
    assert steps == [
        {"type": "click", "target": "main", "selectors": [["#q"]], "offsetX": 5, "offsetY": 5},
        {"type": "change", "target": "main", "selectors": [["#q"]], "value": "hi!"},
        {"type": "keyDown", "target": "main", "key": "Enter"},
        {"type": "keyUp", "target": "main", "key": "Enter",
         "assertedEvents": [{"type": "navigation", "url": "https://shop.test/?q=hi!", "title": ""}]},
        {"type": "scroll", "target": "main", "x": 0, "y": 250},
        {"type": "click", "target": "https://shop.test/help", "selectors": [["a.more"]], "button": "auxiliary", "offsetX": 1, "offsetY": 1},
    ]


def test_enter_and_backspace_that_edit_a_textarea_fold_into_its_change_but_ctrl_v_stays() -> None:
    area = ["textarea"]

    def key(kind: str, key: str, text: str = "", modifiers: int = 0) -> RecordedEvent:
        return event(kind, {"key": key, "code": key, "modifiers": modifiers, "text": text}, area)

    recording = recording_of([
        key("keydown", "a", "a"), event("input", {"value": "a"}, area), key("keyup", "a"),
        key("keydown", "Enter", "\r"), event("input", {"value": "a\n", "inputType": "insertLineBreak"}, area), key("keyup", "Enter"),
        key("keydown", "x", "x"), event("input", {"value": "a\nx"}, area), key("keyup", "x"),
        key("keydown", "Backspace"), event("input", {"value": "a\n", "inputType": "deleteContentBackward"}, area), key("keyup", "Backspace"),
        key("keydown", "Control", modifiers=2),
        key("keydown", "v", modifiers=2), event("input", {"value": "a\npasted", "inputType": "insertFromPaste"}, area),
        key("keyup", "v", modifiers=2),
        key("keyup", "Control"),
        key("keydown", "ArrowUp"), key("keyup", "ArrowUp"),
    ])
    steps = to_user_flow(recording, "t")["steps"]
    change = {"type": "change", "target": "main", "selectors": [["textarea"]]}
    assert steps == [
        {**change, "value": "a\n"},
        _key_step("keyDown", "Control"), _key_step("keyDown", "v"),
        {**change, "value": "a\npasted"},
        _key_step("keyUp", "v"), _key_step("keyUp", "Control"),
        _key_step("keyDown", "ArrowUp"), _key_step("keyUp", "ArrowUp"),
    ]


def test_a_triple_click_is_a_double_click_then_a_click() -> None:
    el = ["p"]
    recording = recording_of([event(kind, _pointer("left", count, (1, 1)), el)
                              for kind, count in (("click", 1), ("click", 2), ("dblclick", 2), ("click", 3))])
    assert [s["type"] for s in to_user_flow(recording, "t")["steps"]] == ["doubleClick", "click"]


@pytest.mark.parametrize(
    "flow, message",
    [
        (None, "not a Recorder user flow"),
        ([], "not a Recorder user flow"),
        ("steps", "not a Recorder user flow"),
        ({"title": "x"}, "not a Recorder user flow"),
        ({"steps": {"type": "click"}}, "not a Recorder user flow"),
        ({"steps": [1]}, "step 0: not an object with a type"),
        ({"steps": [{"type": 3}]}, "step 0: not an object with a type"),
        ({"steps": [{"type": "hover", "selectors": [["a"]]}]}, "step 0: step type 'hover'"),
        ({"steps": [{"type": "navigate", "url": "https://a.test/"}, {"type": "teleport"}]}, "step 1: step type 'teleport'"),
        ({"steps": [{"type": "click", "offsetX": 1, "offsetY": 1}]}, "step 0 (click): selectors"),
        ({"steps": [{"type": "click", "selectors": "#a", "offsetX": 1, "offsetY": 1}]}, "step 0 (click): selectors"),
        ({"steps": [{"type": "click", "selectors": [[1]], "offsetX": 1, "offsetY": 1}]}, "step 0 (click): a selector"),
        ({"steps": [{"type": "click", "selectors": [["#a"]], "offsetX": "1", "offsetY": 1}]}, "step 0 (click): offsetX"),
        ({"steps": [{"type": "click", "selectors": [["#a"]], "offsetX": 1, "offsetY": 1, "button": "left"}]}, "unknown button"),
        ({"steps": [{"type": "change", "selectors": [["#a"]]}]}, "step 0 (change): value"),
        ({"steps": [{"type": "keyDown", "key": 13}]}, "step 0 (keyDown): key"),
        ({"steps": [{"type": "navigate", "url": None}]}, "step 0 (navigate): url"),
        ({"steps": [{"type": "scroll", "frame": "top"}]}, "step 0 (scroll): frame"),
        ({"steps": [{"type": "scroll", "target": 0}]}, "step 0 (scroll): target"),
        ({"steps": [{"type": "scroll", "x": float("nan")}]}, "step 0 (scroll): x"),
        ({"steps": [{"type": "navigate", "url": "https://a.test/", "assertedEvents": "yes"}]}, "assertedEvents"),
        ({"steps": [{"type": "click", "selectors": [["\udc80"]], "offsetX": 1, "offsetY": 1}]}, "step 0 (click)"),
    ],
)
def test_what_is_not_a_user_flow_is_a_state_error(flow: Any, message: str) -> None:
    with pytest.raises(StateError) as raised:
        from_user_flow(flow)
    assert message in str(raised.value)


def test_assertion_and_setup_steps_are_skipped() -> None:
    flow = {"steps": [
        {"type": kind} for kind in ("waitForElement", "waitForExpression", "customStep", "setViewport", "emulateNetworkConditions", "close")
    ]}
    assert list(from_user_flow(flow).events) == []


def test_events_with_bad_data_are_a_state_error() -> None:
    bad = RecordedEvent(type="click", data=SerializedValue(encoding="json", data=b"{nope"))
    with pytest.raises(StateError, match="event 0 \\(click\\)"):
        to_user_flow(RecordingState(events=[bad]), "t")


# -- HAR: properties ----------------------------------------------------------------------------

RESOURCE_TYPES = ["Document", "Stylesheet", "Image", "Script", "XHR", "Fetch", "Other", ""]
headers = st.lists(st.builds(lambda n, v: (n, v), proto_text, proto_text), max_size=5)


@st.composite
def exchanges(draw: st.DrawFn) -> NetworkExchange:
    missing = draw(st.booleans())
    return NetworkExchange(
        timestamp=draw(st.floats(0, 10_000_000)),
        tab=draw(st.integers(0, 3)),
        method=draw(st.sampled_from(["GET", "POST", "PUT"]) | proto_text),
        url=draw(st.builds(lambda path: f"https://shop.test/{path}", proto_text)),
        request_headers=[{"name": n, "value": v} for n, v in draw(headers)],
        request_body=draw(st.binary(max_size=64)),
        status=draw(st.integers(0, 599)),
        status_text=draw(proto_text),
        response_headers=[{"name": n, "value": v} for n, v in draw(headers)],
        response_body=b"" if missing else draw(st.binary(max_size=64) | st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass"))),
        resource_type=draw(st.sampled_from(RESOURCE_TYPES)),
        mime_type=draw(st.sampled_from(["text/html", "application/json", "image/png", ""]) | proto_text),
        protocol=draw(st.sampled_from(["http/1.1", "h2", "h3", ""])),
        duration=draw(st.floats(0, 100_000)),
        error=draw(st.sampled_from(["", "net::ERR_CONNECTION_REFUSED"])),
        body_missing=missing,
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(exchanges(), max_size=6), st.integers(0, 4_000_000_000_000))
def test_har_round_trips(recorded: list[NetworkExchange], start_time: int) -> None:
    recording = RecordingState(start_time=start_time, recorded=["network"])
    recording.exchanges.extend(recorded)
    har = json.loads(json.dumps(to_har(recording, creator_version="9.9")))  # through a file
    back = from_har(har, start_time=start_time)
    assert len(back) == len(recorded)
    for original, read in zip(recorded, back):
        assert abs(read.timestamp - original.timestamp) <= 0.5  # to the millisecond
        read.timestamp = original.timestamp
        assert read == original  # bodies byte-exact, headers in order
    if recorded:
        earliest = min(x.timestamp for x in recorded)
        assert abs(har_start_time(har) - (start_time + earliest)) <= 1
        relative = from_har(har)  # times since the earliest entry
        assert all(abs(r.timestamp - (x.timestamp - earliest)) <= 1 for r, x in zip(relative, recorded))
        assert min(r.timestamp for r in relative) == 0
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"] == {"name": "psp_cdp", "version": "9.9"}
    assert [p["id"] for p in log["pages"]] == [f"tab-{t}" for t in sorted({x.tab for x in recorded})]


def test_har_entries_have_what_har_readers_expect() -> None:
    recording = RecordingState(start_time=1_709_287_200_000)
    recording.exchanges.add(
        timestamp=12.4, method="POST", url="https://shop.test/api?q=a%20b&x=", protocol="h2", duration=80.5,
        request_headers=[{"name": "Content-Type", "value": "application/octet-stream"}], request_body=b"\xff\x00",
        status=302, status_text="Found", response_headers=[{"name": "location", "value": "/next"}],
        response_body=b"moved", mime_type="text/plain", resource_type="Fetch",
    )
    recording.exchanges.add(timestamp=90, tab=2, method="GET", url="https://shop.test/gone", error="net::ERR_FAILED", body_missing=True)
    entries = to_har(recording, creator_version="1")["log"]["entries"]
    first, second = entries
    assert first["startedDateTime"] == "2024-03-01T10:00:00.012Z"
    assert first["pageref"] == "tab-0" and second["pageref"] == "tab-2"
    assert first["request"]["queryString"] == [{"name": "q", "value": "a b"}, {"name": "x", "value": ""}]
    assert first["request"]["postData"] == {"mimeType": "application/octet-stream", "text": "/wA=", "_encoding": "base64"}
    assert first["request"]["bodySize"] == 2 and first["request"]["headersSize"] == -1
    assert first["response"]["redirectURL"] == "/next"
    assert first["response"]["content"] == {"size": 5, "mimeType": "text/plain", "text": "moved"}
    assert first["timings"] == {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 80.5, "receive": 0, "ssl": -1}
    assert first["time"] == 80.5 and first["_resourceType"] == "Fetch" and first["cache"] == {}
    assert "_error" not in first and "_bodyMissing" not in first
    assert second["_error"] == "net::ERR_FAILED" and second["_bodyMissing"] is True
    assert "text" not in second["response"]["content"] and "postData" not in second["request"]


# -- HAR: files of other tools ------------------------------------------------------------------

#: As Chrome DevTools' Network panel saves it ("Save all as HAR with content"), trimmed.
CHROME_HAR: dict[str, Any] = {
    "log": {
        "version": "1.2",
        "creator": {"name": "WebInspector", "version": "537.36"},
        "pages": [{"startedDateTime": "2024-03-01T10:00:00.000Z", "id": "page_1", "title": "https://shop.test/",
                   "pageTimings": {"onContentLoad": 120.5, "onLoad": 300.2}}],
        "entries": [
            {
                "_initiator": {"type": "other"}, "_priority": "VeryHigh", "_resourceType": "document", "cache": {},
                "connection": "443", "pageref": "page_1",
                "request": {"method": "GET", "url": "https://shop.test/", "httpVersion": "http/2.0",
                            "headers": [{"name": ":authority", "value": "shop.test"}, {"name": "accept", "value": "text/html"}],
                            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0",
                             "headers": [{"name": "content-type", "value": "text/html; charset=utf-8"}],
                             "cookies": [], "content": {"size": 11, "mimeType": "text/html", "text": "<p>héllo</p>"},
                             "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 420, "_error": None},
                "serverIPAddress": "127.0.0.1", "startedDateTime": "2024-03-01T10:00:00.250Z", "time": 45.25,
                "timings": {"blocked": 1.2, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 40.0, "receive": 3.95},
            },
            {
                "_resourceType": "image", "cache": {}, "pageref": "page_1",
                "request": {"method": "GET", "url": "https://shop.test/logo.png", "httpVersion": "http/2.0", "headers": [],
                            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0", "headers": [], "cookies": [],
                             "content": {"size": 4, "mimeType": "image/png", "text": base64.b64encode(b"\x89PNG").decode(), "encoding": "base64"},
                             "redirectURL": "", "headersSize": -1, "bodySize": 4},
                "startedDateTime": "2024-03-01T10:00:00.300Z", "time": 5, "timings": {"send": 0, "wait": 5, "receive": 0},
            },
            {
                "_resourceType": "fetch", "cache": {}, "pageref": "page_1",
                "request": {"method": "POST", "url": "https://shop.test/api/cart", "httpVersion": "http/2.0",
                            "headers": [{"name": "content-type", "value": "application/json"}], "queryString": [], "cookies": [],
                            "headersSize": -1, "bodySize": 10, "postData": {"mimeType": "application/json", "text": "{\"sku\":7}"}},
                "response": {"status": 201, "statusText": "", "httpVersion": "http/2.0", "headers": [], "cookies": [],
                             "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1, "bodySize": 0},
                "startedDateTime": "2024-03-01T10:00:01.000Z", "time": 12, "timings": {"send": 0, "wait": 12, "receive": 0},
            },
            {
                "_resourceType": "script", "cache": {}, "pageref": "page_1",
                "request": {"method": "GET", "url": "https://cdn.test/x.js", "httpVersion": "", "headers": [], "queryString": [],
                            "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                             "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1, "bodySize": -1,
                             "_transferSize": 0, "_error": "net::ERR_NAME_NOT_RESOLVED"},
                "startedDateTime": "2024-03-01T10:00:01.500Z", "time": 3, "timings": {"send": 0, "wait": 3, "receive": 0},
            },
        ],
    }
}


def test_a_chrome_devtools_har_reads_as_exchanges() -> None:
    page, image, post, failed = from_har(CHROME_HAR)
    assert [x.timestamp for x in (page, image, post, failed)] == [0, 50, 750, 1250]
    assert (page.method, page.url, page.status, page.protocol, page.resource_type) == ("GET", "https://shop.test/", 200, "http/2.0", "Document")
    assert [(h.name, h.value) for h in page.request_headers] == [(":authority", "shop.test"), ("accept", "text/html")]
    assert page.response_body == "<p>héllo</p>".encode() and page.mime_type == "text/html" and page.duration == 45.25
    assert image.response_body == b"\x89PNG" and image.resource_type == "Image"
    assert post.request_body == b"{\"sku\":7}" and post.status == 201 and post.resource_type == "Fetch"
    assert post.response_body == b"" and not post.body_missing
    assert failed.status == 0 and failed.error == "net::ERR_NAME_NOT_RESOLVED" and failed.resource_type == "Script"
    assert all(x.tab == 0 for x in (page, image, post, failed))
    assert har_start_time(CHROME_HAR) == 1_709_287_200_250


#: As Playwright's ``recordHar`` writes it: its own page ids, local offsets, params-only form posts, bodies in files.
PLAYWRIGHT_HAR: dict[str, Any] = {
    "log": {
        "version": "1.2",
        "creator": {"name": "Playwright", "version": "1.45.0"},
        "browser": {"name": "chromium", "version": "126.0"},
        "pages": [{"startedDateTime": "2024-03-01T11:00:00.000+01:00", "id": "page@1a2b", "title": "Shop", "pageTimings": {}},
                  {"startedDateTime": "2024-03-01T11:00:02.000+01:00", "id": "page@3c4d", "title": "Help", "pageTimings": {}}],
        "entries": [
            {
                "startedDateTime": "2024-03-01T11:00:00.100+01:00", "time": 20, "pageref": "page@1a2b",
                "request": {"method": "POST", "url": "https://shop.test/login", "httpVersion": "HTTP/1.1", "headers": [],
                            "postData": {"mimeType": "application/x-www-form-urlencoded",
                                         "params": [{"name": "user", "value": "ann smith"}, {"name": "next", "value": "/a&b"}]}},
                "response": {"status": 303, "statusText": "See Other", "httpVersion": "HTTP/1.1",
                             "headers": [{"name": "Location", "value": "/account"}], "content": {"size": -1, "mimeType": ""}},
            },
            {
                "startedDateTime": "2024-03-01T10:00:02.100Z", "time": 7.5, "pageref": "page@3c4d",
                "request": {"method": "GET", "url": "https://shop.test/help", "headers": []},
                "response": {"status": 200, "headers": [],
                             "content": {"size": 1024, "mimeType": "text/html", "_file": "75c9.html"}},
            },
            {
                "startedDateTime": "2024-03-01T10:00:02.200000Z",
                "request": {"url": "https://shop.test/no-response"},
            },
        ],
    }
}


def test_a_playwright_har_reads_as_exchanges() -> None:
    form, help_page, unanswered = from_har(PLAYWRIGHT_HAR)
    assert form.timestamp == 0 and help_page.timestamp == 2000 and unanswered.timestamp == 2100
    assert form.request_body == b"user=ann+smith&next=%2Fa%26b"
    assert [(h.name, h.value) for h in form.response_headers] == [("Location", "/account")]
    assert form.protocol == "HTTP/1.1" and form.status == 303 and form.status_text == "See Other"
    assert (form.tab, help_page.tab) == (0, 1)  # by the page's position
    assert help_page.body_missing and help_page.response_body == b""  # the body went to a file
    assert unanswered.method == "GET" and unanswered.status == 0 and unanswered.duration == 0


@pytest.mark.parametrize(
    "har, message",
    [
        (None, "not a HAR file"),
        ([], "not a HAR file"),
        ({"log": []}, "not a HAR file"),
        ({"log": {"version": "1.2"}}, "not a HAR file"),
        ({"log": {"entries": {}}}, "not a HAR file"),
        ({"log": {"entries": [1]}}, "HAR entry 0: not an object with a request"),
        ({"log": {"entries": [{"startedDateTime": "2024-03-01T10:00:00Z"}]}}, "HAR entry 0: not an object with a request"),
        ({"log": {"entries": [{"request": {"url": "https://a.test/"}}]}}, "HAR entry 0: startedDateTime None"),
        ({"log": {"entries": [{"request": {}, "startedDateTime": "yesterday"}]}}, "is not an ISO 8601 time"),
        ({"log": {"entries": [{"request": {"url": 5}, "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "HAR entry 0: url"),
        ({"log": {"entries": [{"request": {"headers": {}}, "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "headers is not a list"),
        ({"log": {"entries": [{"request": {"headers": [3]}, "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "header is not an object"),
        ({"log": {"entries": [{"request": {}, "response": [], "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "response is not an object"),
        ({"log": {"entries": [{"request": {}, "response": {"status": "200"}, "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "status"),
        ({"log": {"entries": [{"request": {}, "response": {"content": {"text": "abc", "encoding": "base64"}},
                               "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "HAR entry 0"),
        ({"log": {"entries": [{"request": {"headers": [{"name": "\udc80"}]}, "startedDateTime": "2024-03-01T10:00:00Z"}]}}, "HAR entry 0"),
    ],
)
def test_what_is_not_a_har_is_a_state_error(har: Any, message: str) -> None:
    with pytest.raises(StateError) as raised:
        from_har(har)
    assert message in str(raised.value)


# JSON of any shape, and HAR files and user flows with fields of any type: StateError or a result, nothing else.
_json_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | dom_strings | st.sampled_from(
    ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.5+02:00", "base64", "tab-1", "tab-99999999999", "navigation", "main"])
_json_leaves = _json_scalars | st.lists(_json_scalars, max_size=3) | st.dictionaries(proto_text, _json_scalars, max_size=3) | st.lists(
    st.fixed_dictionaries({}, optional={"name": _json_scalars, "value": _json_scalars, "type": _json_scalars, "url": _json_scalars}), max_size=3)


def _shaped(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_har_entries = _shaped(
    request=_shaped(method=_json_leaves, url=_json_leaves, headers=_json_leaves, httpVersion=_json_leaves,
                    postData=_shaped(text=_json_leaves, _encoding=_json_leaves, params=_json_leaves) | _json_leaves) | _json_leaves,
    response=_shaped(status=_json_leaves, statusText=_json_leaves, headers=_json_leaves, httpVersion=_json_leaves, _error=_json_leaves,
                     content=_shaped(text=_json_leaves, encoding=_json_leaves, size=_json_leaves, mimeType=_json_leaves) | _json_leaves)
    | _json_leaves,
    startedDateTime=_json_leaves, time=_json_leaves, pageref=_json_leaves, _bodyMissing=_json_leaves, _error=_json_leaves,
    _resourceType=_json_leaves,
)
_hars = st.builds(lambda entries, pages: {"log": {"entries": entries, "pages": pages}}, st.lists(_har_entries, max_size=3), _json_leaves)
_steps = _shaped(
    type=st.sampled_from(["click", "doubleClick", "change", "keyDown", "keyUp", "scroll", "navigate", "setViewport", "hover"]) | _json_leaves,
    selectors=_json_leaves, offsetX=_json_leaves, offsetY=_json_leaves, button=st.sampled_from(["primary", "secondary"]) | _json_leaves,
    value=_json_leaves, key=_json_leaves, url=_json_leaves, x=_json_leaves, y=_json_leaves, frame=_json_leaves, target=_json_leaves,
    assertedEvents=_json_leaves,
)
_flows = st.builds(lambda steps: {"steps": steps}, st.lists(_steps, max_size=4))


@settings(max_examples=200, deadline=None)
@given(_hars | _flows | _json_leaves)
def test_garbage_gives_state_error_or_a_result(garbage: Any) -> None:
    for read in (from_har, har_start_time, from_user_flow):
        try:
            read(garbage)
        except StateError:
            pass


def test_the_module_exports_what_it_names() -> None:
    from psp_cdp.record import formats

    assert sorted(formats.__all__) == ["from_har", "from_user_flow", "har_start_time", "to_har", "to_user_flow"]
    assert all(callable(getattr(formats, name)) for name in formats.__all__)


# -- the psp command ----------------------------------------------------------------------------


def psp(capsys: pytest.CaptureFixture[str], *args: str, store: str) -> tuple[int, str, str]:
    """Run ``psp`` in-process; its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([*args, "--store", store])
    out, err = capsys.readouterr()
    return code, out, err


def _recorded_state() -> BrowserSessionState:
    done = Actions()
    done.navigate("https://shop.test/login", False)
    done.click(Element(("#email", "aria/Email")), "left", (4, 5), False)
    done.type(Element(("#email", "aria/Email")), "Ann")
    done.press("Enter", "no")
    done.navigate("https://shop.test/account", True)
    done.select(Element(("select[name=size]",)), "XL")
    done.scroll(None, 0, 300)
    state = _captured(1_709_287_200_000)
    state.origin = "https://shop.test"
    state.recording.CopyFrom(recording_of(done.events, start_time=1_709_287_200_000))
    state.recording.recorded.append("network")
    state.recording.exchanges.add(timestamp=3.25, method="GET", url="https://shop.test/login", status=200, protocol="h2",
                                  response_headers=[{"name": "content-type", "value": "text/html"}], response_body=b"<form>",
                                  mime_type="text/html", resource_type="Document", duration=20)
    state.recording.exchanges.add(timestamp=40, method="POST", url="https://shop.test/login", status=303, protocol="h2",
                                  request_body=b"\x00\xffbinary", response_headers=[{"name": "Location", "value": "/account"}],
                                  resource_type="Document", duration=5.5)
    return state


def _captured(timestamp: int) -> BrowserSessionState:
    """A state as a capture makes it (its storage is there, if empty)."""
    state = BrowserSessionState(version=PROTOCOL_VERSION, timestamp=timestamp)
    state.storage.SetInParent()
    return state


def _save(store: str, name: str, *states: BrowserSessionState) -> None:
    async def save() -> None:
        sessions = Sessions(open_store(store))
        for state in states:
            await sessions.save(name, state)

    trio.run(save)


def _load(store: str, name: str) -> BrowserSessionState:
    async def load() -> BrowserSessionState:
        return (await Sessions(open_store(store)).load(name))[1]

    return trio.run(load)


def test_export_and_import_recorder_and_har(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    recorded = _recorded_state()
    later = _captured(1_709_287_300_000)  # a capture after the recording
    _save(store, "rec", recorded, later)
    flow_file, har_file = str(tmp_path / "flow.json"), str(tmp_path / "rec.har")

    code, _, err = psp(capsys, "export", "rec", "--format", "recorder", "-o", flow_file, store=store)
    assert code == 0, err
    flow = json.loads(pathlib.Path(flow_file).read_text(encoding="utf-8"))
    assert flow == to_user_flow(recorded.recording, "rec")  # from version 1, the newest with a recording
    assert [s["type"] for s in flow["steps"]] == ["navigate", "click", "keyDown", "change", "keyUp", "keyDown", "keyUp", "change", "scroll"]
    assert psp(capsys, "export", "rec@1", "--format", "har", "-o", har_file, store=store)[0] == 0
    har = json.loads(pathlib.Path(har_file).read_text(encoding="utf-8"))
    assert len(har["log"]["entries"]) == 2

    code, out, err = psp(capsys, "import", flow_file, "--name", "copy", store=store)  # detected: a user flow
    assert code == 0, err
    assert "copy version 1" in out and f"{len(from_user_flow(flow).events)} events" in out
    code, out, err = psp(capsys, "import", har_file, "--name", "copy", "--format", "har", store=store)
    assert code == 0, err
    assert "copy version 2" in out and "2 exchanges" in out

    copy = _load(store, "copy")
    assert copy.version == PROTOCOL_VERSION
    assert to_user_flow(copy.recording, "rec") == flow
    _assert_same_exchanges(copy, recorded)
    assert sorted(copy.recording.recorded) == ["input", "network"]
    assert copy.recording.duration >= copy.recording.events[-1].timestamp

    again = str(tmp_path / "again.har")
    assert psp(capsys, "export", "copy", "--format", "har", "-o", again, store=store)[0] == 0
    assert json.loads(pathlib.Path(again).read_text(encoding="utf-8")) == har  # the same HAR, dates included


def _assert_same_exchanges(copy: BrowserSessionState, recorded: BrowserSessionState) -> None:
    """The same exchanges at the same times (to the millisecond), bodies and headers exactly."""
    for read, original in zip(copy.recording.exchanges, recorded.recording.exchanges, strict=True):
        assert abs((copy.recording.start_time + read.timestamp) - (recorded.recording.start_time + original.timestamp)) <= 0.5
        read.timestamp = original.timestamp
        assert read == original


def test_importing_a_recording_keeps_the_rest_of_the_state(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    state = _recorded_state()
    state.storage.cookies.add(name="sid", value="v", domain="shop.test", path="/")
    _save(store, "rec", state)
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps({"title": "x", "steps": [{"type": "navigate", "url": "https://shop.test/other"}]}))
    code, out, err = psp(capsys, "import", str(flow_file), "--name", "rec", store=store)
    assert code == 0, err
    assert "1 events" in out
    loaded = _load(store, "rec")
    assert [c.name for c in loaded.storage.cookies] == ["sid"]
    assert [e.type for e in loaded.recording.events] == ["navigate"]
    assert list(loaded.recording.exchanges) == list(state.recording.exchanges)  # untouched


def _assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err


def test_export_of_a_session_without_a_recording_is_a_usage_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    _save(store, "plain", _captured(1))
    for fmt in ("recorder", "har"):
        code, _, err = psp(capsys, "export", "plain", "--format", fmt, "-o", str(tmp_path / "out"), store=store)
        _assert_clean_error(code, err, "plain has no recording")
    _save(store, "rec", _recorded_state(), _captured(2))
    code, _, err = psp(capsys, "export", "rec@2", "--format", "har", "-o", str(tmp_path / "out"), store=store)
    _assert_clean_error(code, err, "rec@2 has no recording")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, fmt, needle",
    [
        ("[1, 2]", "recorder", "not a Recorder user flow"),
        ("{\"steps\": 3}", None, "not a Recorder user flow"),
        ("{\"steps\": [{\"type\": \"hover\"}]}", None, "step 0: step type 'hover'"),
        ("{\"log\": {\"entries\": [{}]}}", None, "HAR entry 0"),
        ("{\"log\": {}}", "har", "not a HAR file"),
        ("not json at all", "har", "not JSON"),
        ("\xff\xfe", "recorder", "not JSON"),
    ],
)
def test_importing_garbage_is_a_clean_error(tmp_path: Any, capsys: pytest.CaptureFixture[str], content: str, fmt: str | None, needle: str) -> None:
    store = str(tmp_path / "store")
    path = tmp_path / "in.json"
    path.write_bytes(content.encode("latin-1"))
    code, _, err = psp(capsys, "import", str(path), "--name", "x", *(["--format", fmt] if fmt else []), store=store)
    _assert_clean_error(code, err, needle)
    assert str(path) in err
