"""Recordings in other tools' formats: Chrome DevTools Recorder user flows and HAR 1.2.

Pure conversion, no I/O and no CDP. The event model is docs/recording.md.

User flows (:func:`to_user_flow`, :func:`from_user_flow`)
---------------------------------------------------------
A user flow is the JSON that Chrome's Recorder panel exports and ``@puppeteer/replay``
runs: ``{"title", "steps": [...]}``. A user flow holds what to *do*, not what happened,
so the input events are folded into steps the way the Recorder folds them:

=========================================  ==============================================
events                                     steps
=========================================  ==============================================
``click`` (count 1)                        ``click`` (``button`` "auxiliary"/"secondary"
                                           when not the left one; ``offsetX``/``offsetY``)
``click`` (1), ``click`` (2), ``dblclick``  one ``doubleClick``
``input``... (``change``) on a field        one ``change`` with the final value; the
                                           keydown/keyup that typed into it (no Ctrl, Alt
                                           or Meta, and an ``input`` of the field before
                                           the next keydown) go into it
``change`` of a select                     ``change`` with the selected option's value
``change`` of a checkbox, radio            nothing: the ``click`` before it did it
other ``keydown``/``keyup``                ``keyDown``/``keyUp`` {key} (Enter, Tab,
                                           Escape, arrows, Shift, Control..., and keys
                                           pressed with Ctrl/Alt/Meta)
``scroll`` (consecutive ones folded)       ``scroll`` {x, y, selectors when an element}
``navigate`` from the browser              ``navigate`` {url}, asserting its own
                                           navigation as the Recorder does
``navigate`` from the page                 ``assertedEvents: [{type "navigation", url,
                                           title ""}]`` on the tab's step before it
=========================================  ==============================================

A ``change`` that only confirms what was typed before a key step (Enter, Tab) makes no step
of its own, nor does an event without the element its step needs. A key or click whose
``modifiers`` name a modifier no recorded keydown holds (an agent's
``Input.dispatch*Event`` with modifiers only) is wrapped in ``keyDown``/``keyUp`` steps of
Shift/Control/Alt/Meta, which is how a user flow holds modifiers. Each selector is a
one-part selector list (``[[s], ...]``). Tab 0 is the ``"main"`` target; another tab's
target is its first URL (``"tab-N"`` when the recording never saw one). ``frame`` is the
frame path, on the steps that have one in the schema.

Not in a user flow: times (steps run one after the other), a file input's files, ``focus``, ``wheel``,
``tab_open``/``tab_close``, mutations and network exchanges; a click's ``x``/``y`` and a
key's ``code``, ``keyCode``, ``location`` and ``repeat``; click counts past 2 (a triple
click is a doubleClick then a click); values of a multiple select past the first; the frame
of a key (``keyDown``/``keyUp`` have none); the kind of a browser navigation (a reload or a
history move replays as a navigation to its URL); a page navigation before any step of its
tab; a contenteditable's value is its ``innerHTML``, as recorded.

:func:`from_user_flow` reads a flow back: one event each 100 ms (flows carry no times);
``click`` -> ``click`` (count 1); ``doubleClick`` -> ``click`` (1), ``click`` (2),
``dblclick``; ``change`` -> ``focus`` and ``change`` (kind "value": the player sets the
value, on a select too); ``keyDown``/``keyUp`` -> ``keydown``/``keyup`` (``text`` for a
printable one-character key and "\\r" for Enter, ``modifiers`` from the modifier keys held
by the flow, and as element ``[":focus", "body"]``: a flow's keys go to whatever has the
focus); ``navigate`` -> ``navigate`` (initiator "browser"); an asserted navigation ->
``navigate`` (initiator "page", awaited by the player). A selector list of one part becomes
that selector; a list of several parts (a shadow-piercing selector) is joined with
``" >>> "``, Puppeteer's deep combinator, and kept. A target other than ``"main"`` gets the
next tab index, opened by a ``tab_open`` (opener 0) where it first appears. Assertion and
set-up steps (``waitForElement``, ``waitForExpression``, ``customStep``, ``setViewport``,
``emulateNetworkConditions``, ``close``) are skipped; any other unknown step type (``hover``
too: no event replays it) is a :class:`StateError`. Ignored: ``timeout``,
``selectorAttribute``, a click's ``duration`` and ``deviceType``, asserted titles.

So ``to_user_flow(from_user_flow(flow))`` gives back a flow that Chrome's Recorder wrote
(less the skipped steps and the ignored fields), and ``from_user_flow(to_user_flow(r))``
the dispatchable steps of ``r`` (selectors, values, keys, URLs), in the same order.

HAR (:func:`to_har`, :func:`from_har`)
--------------------------------------
One HAR entry per :class:`NetworkExchange`, one page per tab (``"tab-N"``). Bodies are
``text`` when they are UTF-8, else base64 (``content.encoding``; for a request body, which
HAR 1.2 gives no encoding, the custom ``postData._encoding``). Custom fields:
``_resourceType``, ``_error``, ``_bodyMissing``. What HAR holds and an exchange does not is
derived or left at its "unknown" value: ``queryString`` (from the URL), ``redirectURL``
(from ``Location``), ``cookies`` (empty: they are in the headers), ``headersSize`` -1, the
timing phases (all of ``duration`` is ``wait``); sizes are those of the bodies as kept.
:func:`from_har` also reads HAR files of Chrome DevTools and of Playwright's
``recordHar``: any ISO 8601 offset, ``content.encoding`` "base64", ``postData`` with
``params`` only (rebuilt as a urlencoded body), Chrome's lower-case resource types; a
response without ``text`` but with a size is ``body_missing``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import StateError
from .events import body_bytes, event_data, json_event
from ..snapshot.model import (
    Header,
    NetworkExchange,
    RecordedEvent,
    RecordingState,
)

__all__ = ["from_har", "from_user_flow", "har_start_time", "to_har", "to_user_flow"]

#: Milliseconds between two events read from a user flow.
STEP_INTERVAL = 100.0
#: The element of a key read from a user flow: whichever has the focus when it is replayed.
FOCUSED = (":focus", "body")

_BUTTONS = {"left": "primary", "middle": "auxiliary", "right": "secondary", "back": "back", "forward": "forward"}
_BUTTONS_BACK = {step: event for event, step in _BUTTONS.items()}

#: Modifier keys and their bits in CDP's mask, in the order a flow presses them.
_MODIFIERS = {"Shift": 8, "Control": 2, "Alt": 1, "Meta": 4}
#: Modifiers that stop a key from typing text.
_COMMAND_MODIFIERS = 1 | 2 | 4

#: Steps with no event of their own: assertions and set-up. Skipped when reading a flow.
_SKIPPED_STEPS = frozenset(
    {"waitForElement", "waitForExpression", "customStep", "setViewport", "emulateNetworkConditions", "close"}
)

#: ``code`` and ``keyCode`` of the named keys a flow may hold.
_KEY_CODES = {
    "Enter": ("Enter", 13),
    "Tab": ("Tab", 9),
    "Escape": ("Escape", 27),
    "Backspace": ("Backspace", 8),
    "Delete": ("Delete", 46),
    "Insert": ("Insert", 45),
    "ArrowLeft": ("ArrowLeft", 37),
    "ArrowUp": ("ArrowUp", 38),
    "ArrowRight": ("ArrowRight", 39),
    "ArrowDown": ("ArrowDown", 40),
    "Home": ("Home", 36),
    "End": ("End", 35),
    "PageUp": ("PageUp", 33),
    "PageDown": ("PageDown", 34),
    "CapsLock": ("CapsLock", 20),
    " ": ("Space", 32),
    "Shift": ("ShiftLeft", 16),
    "Control": ("ControlLeft", 17),
    "Alt": ("AltLeft", 18),
    "Meta": ("MetaLeft", 91),
    **{f"F{n}": (f"F{n}", 111 + n) for n in range(1, 13)},
}

#: Chrome DevTools' HAR resource types (``_resourceType``) as CDP names them.
_RESOURCE_TYPES = {
    name.lower(): name
    for name in (
        "Document", "Stylesheet", "Image", "Media", "Font", "Script", "TextTrack", "XHR", "Fetch",
        "Prefetch", "EventSource", "WebSocket", "Manifest", "SignedExchange", "Ping",
        "CSPViolationReport", "Preflight", "FedCM", "Other",
    )
}

#: Events whose steps need an element.
_ELEMENT_STEPS = frozenset({"click", "dblclick", "input", "change"})

_TAB_PAGE_RE = re.compile(r"^tab-(\d+)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- shared helpers -----------------------------------------------------------------------------

def _event_data(event: RecordedEvent, index: int) -> dict[str, Any]:
    """The JSON object an event's ``data`` holds ({} when it has none)."""
    try:
        return event_data(event)
    except StateError as exc:
        raise StateError(f"event {index} ({event.type}): {exc}") from None


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _number(data: dict[str, Any], name: str, default: float = 0) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return value


def _integer(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- recording -> user flow ---------------------------------------------------------------------

def to_user_flow(recording: RecordingState, title: str) -> dict[str, Any]:
    """The recording's input events as a Chrome DevTools Recorder user flow (see the module doc)."""
    events = list(recording.events)
    data = [_event_data(event, index) for index, event in enumerate(events)]
    skipped = _typed_keys(events, data) | _double_click_seconds(events, data)
    writer = _FlowWriter(_tab_targets(events, data))
    for index, event in enumerate(events):
        if index not in skipped:
            writer.add(event, data[index])
    writer.release_modifiers()
    return {"title": title, "steps": writer.steps}


def _element_key(event: RecordedEvent) -> tuple[int, tuple[int, ...], tuple[str, ...]]:
    """What identifies an element across events: tab, frame path and selectors."""
    return event.tab, tuple(event.frame), tuple(event.element.selectors)


def _tab_targets(events: Sequence[RecordedEvent], data: Sequence[dict[str, Any]]) -> dict[int, str]:
    """The user-flow target of each tab: "main" for tab 0, else the first URL the tab had."""
    targets = {0: "main"}
    blank: dict[int, str] = {}
    for event, values in zip(events, data):
        url = _string(values, "url")
        if event.tab in targets or event.type not in ("tab_open", "navigate") or not url:
            continue
        if url == "about:blank":
            blank.setdefault(event.tab, url)
        else:
            targets[event.tab] = url
    for event in events:
        targets.setdefault(event.tab, blank.get(event.tab, f"tab-{event.tab}"))
    return targets


def _key_identity(event: RecordedEvent, values: dict[str, Any]) -> tuple[int, str]:
    return event.tab, _string(values, "code") or _string(values, "key")


def _typed_keys(events: Sequence[RecordedEvent], data: Sequence[dict[str, Any]]) -> set[int]:
    """Indexes of the keydown/keyup events that typed into a field: an ``input`` of the field follows.

    Characters, and Backspace, Delete or Enter in a textarea, fold into the field's change;
    keys pressed with Ctrl, Alt or Meta (a paste, an undo) stay keys, as in the Recorder.
    """
    typed: set[int] = set()
    last_down: dict[tuple[int, str], bool] = {}
    for index, event in enumerate(events):
        if event.type == "keydown":
            command = _integer(data[index], "modifiers") & _COMMAND_MODIFIERS
            absorbed = not command and _string(data[index], "key") not in _MODIFIERS and _input_follows(events, index)
            last_down[_key_identity(event, data[index])] = absorbed
            if absorbed:
                typed.add(index)
        elif event.type == "keyup" and last_down.pop(_key_identity(event, data[index]), False):
            typed.add(index)
    return typed


def _input_follows(events: Sequence[RecordedEvent], index: int) -> bool:
    """Whether an ``input`` on the keydown's element comes before the next keydown."""
    key = _element_key(events[index])
    for event in events[index + 1:]:
        if event.type == "keydown":
            return False
        if event.type == "input":
            return _element_key(event) == key
    return False


def _double_click_seconds(events: Sequence[RecordedEvent], data: Sequence[dict[str, Any]]) -> set[int]:
    """Indexes of second clicks that a ``dblclick`` on the same element follows."""
    seconds: set[int] = set()
    for index, event in enumerate(events):
        if event.type != "click" or _integer(data[index], "count") != 2:
            continue
        following = next((e for e in events[index + 1:] if e.type in ("click", "dblclick")), None)
        if following is not None and following.type == "dblclick" and _element_key(following) == _element_key(event):
            seconds.add(index)
    return seconds


class _FlowWriter:
    """Turns events into user-flow steps, one event at a time."""

    def __init__(self, targets: dict[int, str]) -> None:
        self.targets = targets
        self.steps: list[dict[str, Any]] = []
        #: The change step that further ``input`` events of its element update, and that element.
        self.open_change: tuple[dict[str, Any], tuple[Any, ...]] | None = None
        #: The last scroll step and its element, while it is the last step.
        self.last_scroll: tuple[dict[str, Any], tuple[Any, ...]] | None = None
        #: The last click step and its element, for a dblclick to turn into a doubleClick.
        self.last_click: tuple[dict[str, Any], tuple[Any, ...]] | None = None
        #: The value ``input`` events last gave each element, since its tab last navigated.
        self.typed: dict[tuple[Any, ...], str] = {}
        #: Modifiers held down by keyDown steps; those of them the writer added itself.
        self.held = 0
        self.synthetic = 0
        self.synthetic_tab = 0
        self.synthetic_steps: set[int] = set()
        self.handlers: dict[str, Callable[[RecordedEvent, dict[str, Any]], None]] = {
            "click": self.click,
            "dblclick": self.dblclick,
            "keydown": self.keydown,
            "keyup": self.keyup,
            "input": self.input,
            "change": self.change,
            "scroll": self.scroll,
            "navigate": self.navigate,
        }

    def add(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        handler = self.handlers.get(event.type)  # focus, wheel, tabs and unknown types make no step
        if event.type in _ELEMENT_STEPS and not event.element.selectors:
            return  # a step of the flow needs its element
        if handler is not None:
            handler(event, values)

    # -- steps

    def base(self, step_type: str, event: RecordedEvent, *, element: bool = True, frame: bool = True) -> dict[str, Any]:
        step: dict[str, Any] = {"type": step_type, "target": self.targets[event.tab]}
        if frame and event.frame:
            step["frame"] = list(event.frame)
        if element and event.element.selectors:
            step["selectors"] = [[selector] for selector in event.element.selectors]
        return step

    def emit(self, step: dict[str, Any], *, keeps_typing: bool = False) -> dict[str, Any]:
        self.steps.append(step)
        if not keeps_typing:
            self.open_change = None
        self.last_scroll = None
        return step

    def key_step(self, step_type: str, key: str, tab: int, *, synthetic: bool = False) -> dict[str, Any]:
        step = self.emit({"type": step_type, "target": self.targets[tab], "key": key}, keeps_typing=key == "Shift")
        if synthetic:
            self.synthetic_steps.add(id(step))
        return step

    # -- modifiers

    def press_modifiers(self, modifiers: int, tab: int) -> None:
        """keyDown steps for the modifiers ``modifiers`` needs that no keyDown holds yet."""
        for name, bit in _MODIFIERS.items():
            if modifiers & bit and not self.held & bit:
                self.synthetic_tab = tab
                self.key_step("keyDown", name, tab, synthetic=True)
                self.held |= bit
                self.synthetic |= bit

    def release_modifiers(self) -> None:
        """keyUp steps for the modifiers the writer pressed itself."""
        for name, bit in reversed(_MODIFIERS.items()):
            if self.synthetic & bit:
                self.key_step("keyUp", name, self.synthetic_tab, synthetic=True)
                self.held &= ~bit
                self.synthetic &= ~bit

    # -- events

    def click(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        step = self.click_step("click", event, values)
        self.last_click = (step, _element_key(event))

    def dblclick(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        click = self.last_click
        if click is not None and click[1] == _element_key(event) and self.only_synthetic_after(click[0]):
            click[0]["type"] = "doubleClick"
        else:
            self.click_step("doubleClick", event, values)
        self.last_click = None

    def click_step(self, step_type: str, event: RecordedEvent, values: dict[str, Any]) -> dict[str, Any]:
        step = self.base(step_type, event)
        button = _BUTTONS.get(_string(values, "button") or "left", "primary")
        if button != "primary":
            step["button"] = button
        step["offsetX"] = _number(values, "offsetX")
        step["offsetY"] = _number(values, "offsetY")
        self.press_modifiers(_integer(values, "modifiers"), event.tab)
        self.emit(step)
        self.release_modifiers()
        return step

    def only_synthetic_after(self, step: dict[str, Any]) -> bool:
        """Whether ``step`` is a step of this flow followed only by modifier steps the writer added."""
        for later in reversed(self.steps):
            if later is step:
                return True
            if id(later) not in self.synthetic_steps:
                return False
        return False

    def keydown(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        self.key(event, values, "keyDown")

    def keyup(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        self.key(event, values, "keyUp")

    def key(self, event: RecordedEvent, values: dict[str, Any], step_type: str) -> None:
        key = _string(values, "key")
        if not key:
            return
        bit = _MODIFIERS.get(key, 0)
        if bit:
            self.key_step(step_type, key, event.tab)
            self.held = self.held | bit if step_type == "keyDown" else self.held & ~bit
            self.synthetic &= ~bit
            return
        self.press_modifiers(_integer(values, "modifiers"), event.tab)
        self.key_step(step_type, key, event.tab)
        if step_type == "keyUp":
            self.release_modifiers()

    def input(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _element_key(event)
        value = _string(values, "value")
        if self.open_change is not None and self.open_change[1] == key:
            self.type_value(self.open_change[0], key, value)
        else:
            step = self.emit(self.base("change", event))
            self.type_value(step, key, value)
            self.open_change = (step, key)

    def change(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _element_key(event)
        typing = self.open_change if self.open_change is not None and self.open_change[1] == key else None
        self.open_change = None
        kind = _string(values, "kind") or "value"
        if kind == "files":  # a user flow has no step that gives a file input its files
            return
        if kind == "checked":  # the click made it; drop the change its input event began
            if typing is not None:
                self.steps[:] = [step for step in self.steps if step is not typing[0]]
                self.typed.pop(key, None)
            return
        if kind == "select":
            options = values.get("values")
            value = options[0] if isinstance(options, list) and options and isinstance(options[0], str) else ""
        else:
            value = _string(values, "value")
        if typing is not None:
            self.type_value(typing[0], key, value)
        elif kind == "select" or self.typed.get(key) != value:  # else it confirms what was typed before Enter, Tab...
            step = self.emit(self.base("change", event))
            step["value"] = value
            self.typed.pop(key, None)

    def type_value(self, step: dict[str, Any], key: tuple[Any, ...], value: str) -> None:
        step["value"] = value
        self.typed[key] = value

    def scroll(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _element_key(event)
        if self.last_scroll is not None and self.last_scroll[1] == key:
            step = self.last_scroll[0]
        else:
            step = self.emit(self.base("scroll", event))
        step["x"] = _number(values, "x")
        step["y"] = _number(values, "y")
        self.last_scroll = (step, key)

    def navigate(self, event: RecordedEvent, values: dict[str, Any]) -> None:
        url = _string(values, "url")
        if not url:
            return
        asserted = {"type": "navigation", "url": url, "title": ""}
        self.typed = {key: value for key, value in self.typed.items() if key[0] != event.tab}
        if _string(values, "initiator") == "page":
            self.assert_navigation(event.tab, asserted)
            return
        step = self.base("navigate", event, element=False, frame=False)
        step["url"] = url
        step["assertedEvents"] = [asserted]
        self.emit(step)

    def assert_navigation(self, tab: int, asserted: dict[str, Any]) -> None:
        """Add a navigation the page made to the last step of its tab (dropped when there is none)."""
        target = self.targets[tab]
        for step in reversed(self.steps):
            if step["target"] == target:
                step.setdefault("assertedEvents", []).append(asserted)
                return


# -- user flow -> recording ---------------------------------------------------------------------

def from_user_flow(flow: dict[str, Any]) -> RecordingState:
    """A recording of the steps of a Chrome DevTools Recorder user flow (see the module doc).

    A shadow-piercing selector (a selector list of several parts) is kept joined with
    ``" >>> "``. Raises :class:`StateError` for what is not a user flow and for a step type
    that has no event.
    """
    if not isinstance(flow, dict) or not isinstance(flow.get("steps"), list):
        raise StateError("not a Recorder user flow: expected a JSON object with a list of steps")
    reader = _FlowReader()
    for index, step in enumerate(flow["steps"]):
        reader.add(index, step)
    recording = RecordingState(recorded=["input"])
    recording.events.extend(reader.events)
    recording.duration = math.ceil(reader.events[-1].timestamp) if reader.events else 0
    return recording


def _selector(value: Any) -> str:
    """One selector of a flow as psp_cdp writes it; multi-part ones joined with " >>> "."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(part, str) for part in value):
        return " >>> ".join(value)
    raise ValueError("a selector is a string or a list of strings")


def _key_text(key: str, held: int) -> str:
    """What a keydown of ``key`` types with the modifiers ``held``."""
    if held & _COMMAND_MODIFIERS:
        return ""
    if key in ("Enter", "\r", "\n"):
        return "\r"
    return key if len(key) == 1 and key.isprintable() else ""


def _key_codes(key: str) -> tuple[str, int]:
    """``code`` and ``keyCode`` of a key, for the keys a US keyboard has; ("", 0) otherwise."""
    if key in _KEY_CODES:
        return _KEY_CODES[key]
    if len(key) == 1 and key.isascii() and key.isalpha():
        return f"Key{key.upper()}", ord(key.upper())
    if len(key) == 1 and key.isdigit() and key.isascii():
        return f"Digit{key}", ord(key)
    return "", 0


class _FlowReader:
    """Turns user-flow steps into events, one step at a time."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.tabs: dict[str, int] = {"main": 0}
        self.held = 0
        self.handlers: dict[str, Callable[[dict[str, Any], int, list[int]], None]] = {
            "click": self.click,
            "doubleClick": self.double_click,
            "change": self.change,
            "keyDown": self.key_down,
            "keyUp": self.key_up,
            "scroll": self.scroll,
            "navigate": self.navigate,
        }

    def add(self, index: int, step: Any) -> None:
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            raise StateError(f"step {index}: not an object with a type")
        step_type = step["type"]
        if step_type in _SKIPPED_STEPS:
            return
        handler = self.handlers.get(step_type)
        if handler is None:
            raise StateError(f"step {index}: step type {step_type!r} has no psp_cdp event")
        try:
            tab = self.tab(step)
            frame = self.frame(step)
            handler(step, tab, frame)
            self.asserted(step, tab)
        except (ValueError, TypeError) as exc:
            raise StateError(f"step {index} ({step_type}): {exc}") from None

    def event(
        self, event_type: str, data: dict[str, Any], tab: int, frame: Sequence[int] = (), selectors: Sequence[str] = ()
    ) -> None:
        self.events.append(json_event(event_type, len(self.events) * STEP_INTERVAL, data, tab=tab, frame=frame, selectors=selectors))

    # -- step fields

    def tab(self, step: dict[str, Any]) -> int:
        target = step.get("target", "main")
        if not isinstance(target, str):
            raise TypeError("target is not a string")
        if target not in self.tabs:
            self.tabs[target] = len(self.tabs)
            self.event("tab_open", {"url": target, "opener": 0}, self.tabs[target])
        return self.tabs[target]

    @staticmethod
    def frame(step: dict[str, Any]) -> list[int]:
        frame = step.get("frame", [])
        if not isinstance(frame, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in frame):
            raise TypeError("frame is not a list of frame indexes")
        return frame

    @staticmethod
    def selectors(step: dict[str, Any], *, required: bool = True) -> list[str]:
        selectors = step.get("selectors")
        if selectors is None and not required:
            return []
        if not isinstance(selectors, list) or not selectors:
            raise TypeError("selectors is not a list of selectors")
        return [_selector(selector) for selector in selectors]

    @staticmethod
    def number(step: dict[str, Any], name: str) -> float:
        value = step.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name} is not a number")
        return value

    @staticmethod
    def string(step: dict[str, Any], name: str) -> str:
        value = step.get(name)
        if not isinstance(value, str):
            raise TypeError(f"{name} is not a string")
        return value

    # -- steps

    def click_data(self, step: dict[str, Any], count: int) -> dict[str, Any]:
        button = step.get("button", "primary")
        if button not in _BUTTONS_BACK:
            raise ValueError(f"unknown button {button!r}")
        return {
            "button": _BUTTONS_BACK[button],
            "count": count,
            "modifiers": self.held,
            "offsetX": self.number(step, "offsetX"),
            "offsetY": self.number(step, "offsetY"),
        }

    def click(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        self.event("click", self.click_data(step, 1), tab, frame, self.selectors(step))

    def double_click(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        selectors = self.selectors(step)
        self.event("click", self.click_data(step, 1), tab, frame, selectors)
        self.event("click", self.click_data(step, 2), tab, frame, selectors)
        self.event("dblclick", self.click_data(step, 2), tab, frame, selectors)

    def change(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        selectors = self.selectors(step)
        value = self.string(step, "value")
        self.event("focus", {}, tab, frame, selectors)
        self.event("change", {"kind": "value", "value": value}, tab, frame, selectors)

    def key_down(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        key = self.string(step, "key")
        self.held |= _MODIFIERS.get(key, 0)
        self.event("keydown", self.key_data(key, _key_text(key, self.held)), tab, frame, FOCUSED)

    def key_up(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        key = self.string(step, "key")
        self.held &= ~_MODIFIERS.get(key, 0)
        self.event("keyup", self.key_data(key, ""), tab, frame, FOCUSED)

    def key_data(self, key: str, text: str) -> dict[str, Any]:
        code, key_code = _key_codes(key)
        location = 1 if key in _MODIFIERS else 0
        return {"key": key, "code": code, "keyCode": key_code, "location": location,
                "modifiers": self.held, "repeat": False, "text": text}

    def scroll(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        data = {"x": self.number(step, "x"), "y": self.number(step, "y")}
        self.event("scroll", data, tab, frame, self.selectors(step, required=False))

    def navigate(self, step: dict[str, Any], tab: int, frame: list[int]) -> None:
        self.event("navigate", {"url": self.string(step, "url"), "kind": "document", "initiator": "browser"}, tab)

    def asserted(self, step: dict[str, Any], tab: int) -> None:
        """The navigations a step asserts, as navigations of the page (a navigate step's own one left out)."""
        asserted = step.get("assertedEvents", [])
        if not isinstance(asserted, list):
            raise TypeError("assertedEvents is not a list")
        own = step["url"] if step["type"] == "navigate" else None
        for item in asserted:
            if not isinstance(item, dict) or item.get("type") != "navigation":
                continue
            url = item.get("url")
            if not isinstance(url, str) or not url:
                continue
            if url == own:
                own = None
                continue
            self.event("navigate", {"url": url, "kind": "document", "initiator": "page"}, tab)


# -- recording -> HAR ---------------------------------------------------------------------------

def to_har(recording: RecordingState, *, creator_version: str) -> dict[str, Any]:
    """The recording's network exchanges as a HAR 1.2 log (see the module doc)."""
    pages: dict[int, str] = {}
    entries = []
    for index, exchange in enumerate(recording.exchanges):
        started = _iso(recording.start_time + exchange.timestamp, index)
        pages.setdefault(exchange.tab, started)
        entries.append(_entry(exchange, started))
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "psp_cdp", "version": creator_version},
            "pages": [_page(tab, started) for tab, started in sorted(pages.items())],
            "entries": entries,
        }
    }


def _iso(milliseconds: float, index: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds."""
    try:
        when = _EPOCH + timedelta(milliseconds=round(milliseconds))
    except (OverflowError, ValueError):
        raise StateError(f"exchange {index}: its time is out of range") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _page(tab: int, started: str) -> dict[str, Any]:
    return {"startedDateTime": started, "id": f"tab-{tab}", "title": "", "pageTimings": {"onContentLoad": -1, "onLoad": -1}}


def _headers(headers: Iterable[Header]) -> list[dict[str, str]]:
    return [{"name": h.name, "value": h.value} for h in headers]


def _query_string(url: str) -> list[dict[str, str]]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [{"name": name, "value": value} for name, value in parse_qsl(query, keep_blank_values=True)]


def _header(headers: Iterable[Header], name: str) -> str:
    return next((h.value for h in headers if h.name.lower() == name), "")


def _body_text(body: bytes) -> tuple[str, bool]:
    """A body as HAR text: (text, False) when it is UTF-8, else (base64, True)."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _post_data(exchange: NetworkExchange) -> dict[str, Any]:
    text, encoded = _body_text(exchange.request_body)
    post_data: dict[str, Any] = {"mimeType": _header(exchange.request_headers, "content-type"), "text": text}
    if encoded:
        post_data["_encoding"] = "base64"
    return post_data


def _content(exchange: NetworkExchange) -> dict[str, Any]:
    content: dict[str, Any] = {"size": len(exchange.response_body), "mimeType": exchange.mime_type}
    if not exchange.body_missing:
        content["text"], encoded = _body_text(exchange.response_body)
        if encoded:
            content["encoding"] = "base64"
    return content


def _entry(exchange: NetworkExchange, started: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": exchange.method,
        "url": exchange.url,
        "httpVersion": exchange.protocol,
        "cookies": [],
        "headers": _headers(exchange.request_headers),
        "queryString": _query_string(exchange.url),
        "headersSize": -1,
        "bodySize": len(exchange.request_body),
    }
    if exchange.request_body:
        request["postData"] = _post_data(exchange)
    response = {
        "status": exchange.status,
        "statusText": exchange.status_text,
        "httpVersion": exchange.protocol,
        "cookies": [],
        "headers": _headers(exchange.response_headers),
        "content": _content(exchange),
        "redirectURL": _header(exchange.response_headers, "location"),
        "headersSize": -1,
        "bodySize": -1 if exchange.body_missing else len(exchange.response_body),
    }
    entry: dict[str, Any] = {
        "pageref": f"tab-{exchange.tab}",
        "startedDateTime": started,
        "time": exchange.duration,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": exchange.duration, "receive": 0, "ssl": -1},
        "_resourceType": exchange.resource_type,
    }
    if exchange.error:
        entry["_error"] = exchange.error
    if exchange.body_missing:
        entry["_bodyMissing"] = True
    return entry


# -- HAR -> exchanges ---------------------------------------------------------------------------

def from_har(har: dict[str, Any], *, start_time: int | None = None) -> list[NetworkExchange]:
    """The exchanges of a HAR log, in its order (see the module doc).

    Timestamps are milliseconds since ``start_time`` (milliseconds since the epoch) when it
    is given, else since the earliest entry. Raises :class:`StateError` for what is not a HAR.
    """
    entries = _har_entries(har)
    pages = _page_indexes(har["log"].get("pages"))
    started = [_started(entry, index) for index, entry in enumerate(entries)]
    origin = start_time * 1000 if start_time is not None else min(started, default=0)
    exchanges = []
    for index, entry in enumerate(entries):
        try:
            exchanges.append(_exchange(entry, (started[index] - origin) / 1000, pages))
        except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
            raise StateError(f"HAR entry {index}: {exc}") from None
    return exchanges


def har_start_time(har: dict[str, Any]) -> int | None:
    """When the earliest entry of a HAR log started, in milliseconds since the epoch (None: no entry)."""
    entries = _har_entries(har)
    if not entries:
        return None
    return min(_started(entry, index) for index, entry in enumerate(entries)) // 1000


def _har_entries(har: Any) -> list[dict[str, Any]]:
    log = har.get("log") if isinstance(har, dict) else None
    if not isinstance(log, dict) or not isinstance(log.get("entries"), list):
        raise StateError("not a HAR file: expected a JSON object with log.entries")
    entries: list[dict[str, Any]] = log["entries"]
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise StateError(f"HAR entry {index}: not an object with a request")
    return entries


def _page_indexes(pages: Any) -> dict[str, int]:
    if not isinstance(pages, list):
        return {}
    return {page["id"]: index for index, page in enumerate(pages) if isinstance(page, dict) and isinstance(page.get("id"), str)}


def _started(entry: dict[str, Any], index: int) -> int:
    """An entry's ``startedDateTime`` in microseconds since the epoch."""
    value = entry.get("startedDateTime")
    text = value.strip() if isinstance(value, str) else ""
    try:
        when = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))  # to the microsecond at most
    except ValueError:
        raise StateError(f"HAR entry {index}: startedDateTime {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not an object")
    return value


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise TypeError(f"{name} is not a {kind.__name__ if isinstance(kind, type) else 'number'}")
    return value


def _read_headers(data: dict[str, Any], what: str) -> list[Header]:
    headers = data.get("headers")
    if headers is None:
        return []
    if not isinstance(headers, list):
        raise TypeError(f"{what} headers is not a list")
    result = []
    for header in headers:
        header = _object(header, f"a {what} header")
        result.append(Header(name=_field(header, "name", str, ""), value=_field(header, "value", str, "")))
    return result


def _decode_text(text: str, encoding: Any) -> bytes:
    return body_bytes(text, encoding == "base64")


def _request_body(request: dict[str, Any]) -> bytes:
    post_data = _object(request.get("postData"), "postData")
    text = post_data.get("text")
    if isinstance(text, str):
        return _decode_text(text, post_data.get("_encoding") or post_data.get("encoding"))
    params = post_data.get("params")
    if isinstance(params, list):
        pairs = [_object(param, "a postData param") for param in params]
        return urlencode([(_field(p, "name", str, ""), _field(p, "value", str, "")) for p in pairs]).encode("utf-8", "surrogatepass")
    return b""


def _response_body(entry: dict[str, Any], content: dict[str, Any]) -> tuple[bytes, bool]:
    """The response body and whether it is missing."""
    text = content.get("text")
    if isinstance(text, str) and entry.get("_bodyMissing") is not True:
        return _decode_text(text, content.get("encoding")), False
    size = content.get("size")
    missing = entry.get("_bodyMissing") is True or isinstance(size, (int, float)) and size > 0
    return b"", bool(missing)


def _tab(entry: dict[str, Any], pages: dict[str, int]) -> int:
    pageref = entry.get("pageref")
    if not isinstance(pageref, str):
        return 0
    match = _TAB_PAGE_RE.match(pageref)
    if match is not None:
        return int(match[1])
    return pages.get(pageref, 0)


def _resource_type(entry: dict[str, Any]) -> str:
    value = entry.get("_resourceType")
    if not isinstance(value, str):
        return ""
    return _RESOURCE_TYPES.get(value.lower().replace("-", ""), value) if value.islower() else value


def _exchange(entry: dict[str, Any], timestamp: float, pages: dict[str, int]) -> NetworkExchange:
    request = entry["request"]
    response = _object(entry.get("response"), "response")
    content = _object(response.get("content"), "content")
    body, missing = _response_body(entry, content)
    error = entry.get("_error") or response.get("_error") or ""
    duration = _field(entry, "time", (int, float), 0)
    return NetworkExchange(
        timestamp=timestamp,
        tab=_tab(entry, pages),
        method=_field(request, "method", str, "GET"),
        url=_field(request, "url", str, ""),
        request_headers=_read_headers(request, "request"),
        request_body=_request_body(request),
        status=int(_field(response, "status", (int, float), 0)),
        status_text=_field(response, "statusText", str, ""),
        response_headers=_read_headers(response, "response"),
        response_body=body,
        resource_type=_resource_type(entry),
        mime_type=_field(content, "mimeType", str, ""),
        protocol=_field(response, "httpVersion", str, "") or _field(request, "httpVersion", str, ""),
        duration=duration if math.isfinite(duration) and duration >= 0 else 0,
        error=error if isinstance(error, str) else "",
        body_missing=missing,
    )
