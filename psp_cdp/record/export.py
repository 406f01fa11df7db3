"""Recordings as runnable scripts: Playwright for Python, Playwright Test (TypeScript), Selenium for Python.

Pure code generation, no I/O and no CDP (:func:`to_playwright_python`,
:func:`to_playwright_test`, :func:`to_selenium_python`). The event model is
docs/recording.md. Each script does three things:

1. it starts Debian's Chromium headless (``/usr/bin/chromium``, ``$PSP_CHROMIUM`` for
   another) with :data:`CHROMIUM_ARGS` and restores the recording's starting state into it
   with psp: the Python scripts through the adapters
   (``PlaywrightAdapter().load_session(NAME, storage=STORE).restore(page, version=N)``,
   ``SeleniumAdapter`` likewise, on ``/usr/bin/chromedriver`` or ``$PSP_CHROMEDRIVER``),
   the TypeScript test by running ``psp restore NAME@N --cdp PROFILE`` (``$PSP_BIN``, else
   ``psp`` on the PATH) on the persistent context it launched with
   ``--remote-debugging-port=0``, whose profile directory holds DevToolsActivePort.
   ``STORE`` is ``$PSP_STORE`` when set, else the store the export was made from;
2. it plays the steps below with the framework's own API, each waiting up to ``TIMEOUT``
   seconds (10, or ``$PSP_TIMEOUT``) for its element or page;
3. it checks the recording's end state (``RecordingState.ended``; a recording without one
   just ends after its steps), waiting up to ``TIMEOUT`` for each: every tab still open
   shows the recorded URL and title; every form field holds its value, checked state or
   selection (passwords and contenteditables by digest, file inputs by file names); every
   localStorage and sessionStorage key of the tab's origin holds a value of the recorded
   digest, computed in the page by the JavaScript of :data:`psp_cdp.record.outcome.DIGEST`,
   whose text the script's page functions embed. Playwright checks with ``expect``
   (``expect.poll`` in TypeScript), Selenium with plain asserts; a failure names the tab
   and the field or key, and the script exits non-zero. Cookies are not checked.

Steps
-----
Events fold into steps as :func:`psp_cdp.record.formats.to_user_flow` folds them (its
helpers find the keys that typed into a field and the second click of a double click).
``loc`` is the element's locator, ``page`` its tab (``tabs[N]``); an event in a frame acts
in ``frame_at(page, i, ...)``, the frame by its recorded path (each index into its
parent's child frames; Selenium: ``switch_to.frame(i)`` for each). Playwright brings a tab
to the front when the steps move to it (a tab in the background draws no frames, which
actions wait for); Selenium switches to its window.

=======================================  =================================================
events                                   Playwright (TypeScript alike)
=======================================  =================================================
``click``                                ``loc.click(button=, modifiers=)``
``click`` (1), ``click`` (2),            ``loc.dblclick()``
``dblclick``
``input``... (``change``) on a field     one ``loc.fill(final value)``; a contenteditable's
                                         ``innerHTML`` set in the page, with an ``input``
                                         event
``change`` of a checkbox, radio          ``loc.set_checked(checked)``, unless it follows a
                                         click on it
``change`` of a select                   ``loc.select_option(value=[...])`` (``index=`` when
                                         the values are missing)
``change`` of a file input               ``loc.set_input_files([{name, mimeType, buffer}])``
                                         with the recorded bytes (a click on it before
                                         dropped: it only opens the chooser)
other ``keydown`` (Enter, Tab, Escape,   ``loc.press("Control+a")``
arrows, keys with Ctrl/Alt/Meta...)
``wheel`` (consecutive ones summed)      ``wheel(page, loc, dx, dy)``: the mouse over the
                                         middle of what the element's scrolling boxes
                                         show of it, then ``page.mouse.wheel``
``scroll`` (consecutive ones folded)     ``scrollTo(x, y)`` in the page
``navigate`` from the browser            ``page.goto(url)``; ``page.reload()``
``navigate`` from the page               ``expect(page).to_have_url(url)``
``tab_open`` with an opener              ``page.expect_popup()`` around the opener's last
                                         step (else the context's next new page)
``tab_open`` without one                 ``context.new_page()``
``tab_close``                            ``page.close()``
=======================================  =================================================

Selenium does the same with ``find(driver, (By.CSS_SELECTOR, css), (By.XPATH, path))``
for ``loc``: ``click()`` (``ActionChains`` for another button, a double click or
modifiers); ``clear()`` and ``send_keys(value)`` (a value with characters chromedriver
cannot type is set in the page, with ``input`` and ``change`` events); a click when
``is_selected()`` differs; ``Select`` by value (or index); the files written to a
temporary directory and their paths sent with ``send_keys`` (their type is then the
browser's guess from their name); the element focused, then ``ActionChains`` for keys;
``ActionChains.scroll_from_origin`` at the same point for the wheel; ``driver.get``,
``driver.refresh``, waiting for the URL; the new window handle; ``switch_to.new_window``;
``driver.close()``.

Locators come from the recorded selectors, in this order: ``aria/Name`` as
``get_by_role(role, name=, exact=True)`` where the element's tag (from its XPath) gives the
role (textarea: textbox; button; select: combobox or listbox), else
``get_by_label(Name, exact=True)``; ``text/Words`` as ``get_by_text(Words, exact=True)``;
CSS as ``locator(css)`` (``css=`` when it could read as another engine's selector, and
Puppeteer's ``>>>`` as a descendant: Playwright's CSS pierces shadow roots); ``xpath//...``
last, as ``locator("xpath=//...")``. Playwright takes the first one. Selenium has no role or
text locator: it tries the CSS selectors and the XPath in the recorded order, each until
one finds an element.

Not in a script: the recorded times (steps run one after the other), ``focus`` (the next
step focuses), the click offset (clicks hit the element's middle), keyups, lone modifier
keys, keys no framework names (``Dead``, ``Process``, characters outside the BMP; a
comment says so), back and forward clicks (a comment), a history move of the browser (a
navigation to its URL), mutations and network exchanges (the site is live). A recorded
file whose bytes were omitted is left out, with a comment.

Every value, selector, URL and file name is written as a literal of the script's language
that reads back as the same string, whatever it holds: Python ``repr()``, and in
TypeScript JSON with every non-ASCII character escaped (lone surrogates included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..snapshot.model import FormField, RecordedEvent, RecordingState, TabEndState, text
from .events import loads_document
from .formats import (
    _KEY_CODES,
    _MODIFIERS,
    _double_click_seconds,
    _element_key,
    _event_data,
    _integer,
    _number,
    _string,
    _typed_keys,
)
from .outcome import DIGEST, MAX_KEYS

__all__ = ["CHROMIUM_ARGS", "to_playwright_python", "to_playwright_test", "to_selenium_python"]

#: How a script starts Chromium (Playwright adds its own flags; ``--headless`` is given either way).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Seconds a script waits for an element, a page or an end-state check (unless $PSP_TIMEOUT says).
TIMEOUT = 10

#: Pixels per unit of a wheel event's ``deltaMode`` (pixels, lines, pages).
_WHEEL_PIXELS = {0: 1, 1: 40, 2: 800}

#: Roles a tag gives an element for ``get_by_role`` (a select is one or the other).
_ROLES = {"textarea": ("textbox",), "button": ("button",), "select": ("combobox", "listbox")}

#: Steps after which a page may open a popup.
_OPENING = frozenset({"click", "dblclick", "press", "fill", "html", "check", "select", "files"})

#: Keys that no framework presses as a key.
_NO_KEYS = frozenset({"Dead", "Unidentified", "Process", "Compose", "AltGraph"})

#: Selenium's ``Keys`` name of each named key.
_SELENIUM_KEYS = {
    "Enter": "ENTER", "Tab": "TAB", "Escape": "ESCAPE", "Backspace": "BACKSPACE", "Delete": "DELETE",
    "Insert": "INSERT", "ArrowLeft": "ARROW_LEFT", "ArrowUp": "ARROW_UP", "ArrowRight": "ARROW_RIGHT",
    "ArrowDown": "ARROW_DOWN", "Home": "HOME", "End": "END", "PageUp": "PAGE_UP", "PageDown": "PAGE_DOWN",
    " ": "SPACE", "Shift": "SHIFT", "Control": "CONTROL", "Alt": "ALT", "Meta": "META", "Pause": "PAUSE",
    "Help": "HELP", "Clear": "CLEAR", "Cancel": "CANCEL", **{f"F{n}": f"F{n}" for n in range(1, 13)},
}

_XPATH_TAG_RE = re.compile(r"/([A-Za-z][A-Za-z0-9_-]*)(?:\[\d+\])?$")
#: The tag that begins the last compound of a CSS path or attribute selector (``form > input:nth-of-type(2)``).
_CSS_TAG_RE = re.compile(r"^([a-z][a-z0-9-]*)(?=$|[\[:.#])")
#: A Playwright selector that names its engine (``text=...``), or that Playwright reads as XPath or text.
_ENGINE_RE = re.compile(r"^[a-zA-Z_0-9+:*-]+=|^//|^\.\.|^[\"']")
_OTHER_TOOL_RE = re.compile(r"^[a-z]+/")

# -- JavaScript the scripts run in the page ---------------------------------------------------------
# Functions, each whole in itself (the TypeScript test passes them to evaluate() as functions, which
# sends their text), with no backslashes or quotes of Python's, so that they embed as they read.

#: Each localStorage or sessionStorage key of the page's origin with the digest of its value, sorted.
_STORAGE_JS = """(name) => {
  const digest = __DIGEST__;
  const out = [];
  try {
    const store = window[name];
    for (let i = 0; i < store.length && i < __MAX_KEYS__; i++) {
      const key = store.key(i);
      out.push([key, digest(store.getItem(key))]);
    }
  } catch (e) {
    return [];
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}""".replace("__MAX_KEYS__", str(MAX_KEYS)).replace("__DIGEST__", DIGEST.replace("\n", "\n  "))

#: A form field's state as the end state keeps it, by its kind.
_FIELD_JS = """(el, kind) => {
  const digest = __DIGEST__;
  if (kind === "select") return Array.from(el.options).flatMap((o, i) => (o.selected ? [i] : []));
  if (kind === "checked") return el.checked;
  if (kind === "password") return digest(el.value);
  if (kind === "contenteditable") return digest(el.innerHTML);
  if (kind === "files") return Array.from(el.files || [], (f) => f.name).join(String.fromCharCode(10));
  return el.value;
}""".replace("__DIGEST__", DIGEST.replace("\n", "\n  "))

#: A contenteditable's content set as recorded.
_SET_HTML_JS = """(el, html) => {
  el.innerHTML = html;
  el.dispatchEvent(new Event("input", {bubbles: true}));
}"""

#: A value set as a user's edit would leave it (for what chromedriver cannot type).
_SET_VALUE_JS = """(el, value) => {
  Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), "value").set.call(el, value);
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
}"""

#: Where to point at an element for the wheel: the middle of what its scrolling boxes show of it, from
#: its top left corner (Playwright's ``position``) and from the middle of its part in the viewport
#: (WebDriver's element origin).
_POINT_JS = """(el) => {
  el.scrollIntoView({block: "nearest", inline: "nearest"});
  const r = el.getBoundingClientRect();
  let left = Math.max(r.left, 0), top = Math.max(r.top, 0);
  let right = Math.min(r.right, innerWidth), bottom = Math.min(r.bottom, innerHeight);
  const middle = [(left + right) / 2, (top + bottom) / 2];
  for (let box = el.parentElement; box; box = box.parentElement) {
    if (getComputedStyle(box).overflow === "visible") continue;
    const b = box.getBoundingClientRect();
    left = Math.max(left, b.left); top = Math.max(top, b.top);
    right = Math.min(right, b.right); bottom = Math.min(bottom, b.bottom);
  }
  const x = (left + right) / 2, y = (top + bottom) / 2;
  return {x: x - r.left, y: y - r.top, fromMiddle: [Math.round(x - middle[0]), Math.round(y - middle[1])]};
}"""

_SCROLL_ELEMENT_JS = "(el, [x, y]) => el.scrollTo(x, y)"
_SCROLL_WINDOW_JS = "([x, y]) => window.scrollTo(x, y)"
_CLEAR_FILES_JS = '(el) => { el.value = ""; el.dispatchEvent(new Event("change", {bubbles: true})); }'


# -- events -> steps ----------------------------------------------------------------------------

@dataclass
class _Step:
    """One thing a script does; ``value`` by action (see :class:`_StepWriter`)."""

    action: str
    tab: int
    frame: tuple[int, ...] = ()
    selectors: tuple[str, ...] = ()
    value: Any = None
    button: str = "left"
    modifiers: tuple[str, ...] = ()
    #: The tab a popup this step opens gets.
    opens: int | None = None

    @property
    def key(self) -> tuple[int, tuple[int, ...], tuple[str, ...]]:
        return self.tab, self.frame, self.selectors


def _steps(recording: RecordingState) -> list[_Step]:
    """The recording's events folded into steps (see the module doc)."""
    events = list(recording.events)
    data = [_event_data(event, index) for index, event in enumerate(events)]
    skipped = _typed_keys(events, data) | _double_click_seconds(events, data)
    writer = _StepWriter(events)
    for index, event in enumerate(events):
        if index not in skipped:
            writer.add(index, event, data[index])
    return writer.steps


def _tag(selectors: Sequence[str]) -> str:
    """The element's tag name, from its XPath (else its CSS path); "" when none tells."""
    for selector in reversed(selectors):
        if selector.startswith("xpath/"):
            match = _XPATH_TAG_RE.search(selector)
            return match[1].lower() if match else ""
    for selector in reversed(selectors):
        if not _OTHER_TOOL_RE.match(selector):
            match = _CSS_TAG_RE.match(selector.rsplit(" > ", 1)[-1])
            if match:
                return match[1]
    return ""


def _modifier_names(mask: int, key: str = "") -> tuple[str, ...]:
    return tuple(name for name, bit in _MODIFIERS.items() if mask & bit and name != key)


class _StepWriter:
    """Turns events into steps, one event at a time.

    Step values: ``fill``/``html`` the text; ``press`` the key; ``check`` a bool;
    ``select`` ("value" or "index", [...]); ``files`` a list of recorded files; ``wheel``
    [dx, dy]; ``scroll`` [x, y]; ``goto``/``wait_url`` the URL; ``note`` a comment.
    """

    def __init__(self, events: Sequence[RecordedEvent]) -> None:
        self.events = events
        self.steps: list[_Step] = []
        #: The fill step further ``input`` events of its element update.
        self.open_fill: _Step | None = None
        #: The value each element was last given, since its tab last navigated.
        self.typed: dict[tuple[Any, ...], str] = {}
        self.last_scroll: _Step | None = None
        self.last_wheel: _Step | None = None
        self.handlers: dict[str, Callable[[int, RecordedEvent, dict[str, Any]], None]] = {
            "click": self.click,
            "dblclick": self.dblclick,
            "keydown": self.keydown,
            "input": self.input,
            "change": self.change,
            "scroll": self.scroll,
            "wheel": self.wheel,
            "navigate": self.navigate,
            "tab_open": self.tab_open,
            "tab_close": self.tab_close,
        }

    def add(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        handler = self.handlers.get(event.type)  # focus, keyup and unknown types make no step
        if handler is None:
            return
        if event.type in ("click", "dblclick", "input", "change", "wheel") and not event.element.selectors:
            return  # the step needs its element
        handler(index, event, values)

    def step(self, action: str, event: RecordedEvent, value: Any = None, **fields: Any) -> _Step:
        return _Step(action, event.tab, tuple(event.frame), tuple(event.element.selectors), value, **fields)

    def emit(self, step: _Step) -> _Step:
        self.steps.append(step)
        self.open_fill = None
        if step.action not in ("scroll", "wheel"):
            self.last_scroll = self.last_wheel = None
        return step

    def last(self) -> _Step | None:
        return self.steps[-1] if self.steps else None

    def note(self, event: RecordedEvent, words: str, about: str) -> None:
        """A comment in the script: ``words`` with ``about`` (as a literal) in place of ``{}``."""
        self.emit(_Step("note", event.tab, value=(words, about)))

    # -- input

    def click(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        button = _string(values, "button") or "left"
        if button not in ("left", "middle", "right"):
            self.note(event, f"a {button} click on {{}}: no framework clicks this button; skipped", event.target)
            return
        self.emit(self.step("click", event, button=button, modifiers=_modifier_names(_integer(values, "modifiers"))))

    def dblclick(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        last = self.last()
        if last is not None and last.action == "click" and last.key == _element_key(event):
            last.action = "dblclick"
        else:
            self.emit(self.step("dblclick", event, button=_string(values, "button") or "left",
                                modifiers=_modifier_names(_integer(values, "modifiers"))))

    def keydown(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _string(values, "key")
        if not key or key in _MODIFIERS:
            return
        if key in _NO_KEYS or not (key in _KEY_CODES or key in _SELENIUM_KEYS or _one_bmp_character(key)):
            self.note(event, "the key {}: no framework presses it; skipped", key)
            return
        self.emit(self.step("press", event, key, modifiers=_modifier_names(_integer(values, "modifiers"), key)))

    def input(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _element_key(event)
        value = _string(values, "value")
        if self.open_fill is not None and self.open_fill.key == key:
            self.set_value(self.open_fill, value)
        else:
            self.open_fill = self.emit(self.value_step(event, value))
        self.typed[key] = value

    def value_step(self, event: RecordedEvent, value: str) -> _Step:
        tag = _tag(event.element.selectors)
        action = "select" if tag == "select" else "fill" if tag in ("input", "textarea", "") else "html"
        return self.set_value(self.step(action, event), value)

    @staticmethod
    def set_value(step: _Step, value: str) -> _Step:
        step.value = ("value", [value]) if step.action == "select" else value
        return step

    def change(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        key = _element_key(event)
        typing = self.open_fill if self.open_fill is not None and self.open_fill.key == key else None
        self.open_fill = None
        kind = _string(values, "kind") or "value"
        if kind in ("checked", "files", "select") and typing is not None:
            self.steps.remove(typing)  # the input event that began it is part of this change
            typing = None
        if kind == "checked":
            last = self.last()
            if last is None or last.action != "click" or last.key != key:  # else the click made it
                self.emit(self.step("check", event, values.get("checked") is True))
        elif kind == "files":
            last = self.last()
            if last is not None and last.action == "click" and last.key == key:
                self.steps.pop()  # a click on a file input only opens the chooser
            files = values.get("files")
            self.emit(self.step("files", event, [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []))
        elif kind == "select":
            options = values.get("values")
            if isinstance(options, list) and options and all(isinstance(o, str) for o in options):
                self.emit(self.step("select", event, ("value", options)))
            else:
                selected = values.get("selected")
                indexes = [i for i in selected if isinstance(i, int) and not isinstance(i, bool)] if isinstance(selected, list) else []
                self.emit(self.step("select", event, ("index", indexes)))
        else:
            value = _string(values, "value")
            if typing is not None:
                self.set_value(typing, value)
            elif self.typed.get(key) != value:  # else it confirms what was typed before Enter, Tab...
                self.emit(self.value_step(event, value))
            self.typed[key] = value
        if kind != "value":
            self.typed.pop(key, None)

    def scroll(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        position = [_number(values, "x"), _number(values, "y")]
        if self.last_scroll is not None and self.last_scroll.key == _element_key(event):
            self.last_scroll.value = position
        else:
            self.last_scroll = self.emit(self.step("scroll", event, position))

    def wheel(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        unit = _WHEEL_PIXELS.get(_integer(values, "deltaMode"), 1)
        delta = [_number(values, "deltaX") * unit, _number(values, "deltaY") * unit]
        if self.last_wheel is not None and self.last_wheel.key == _element_key(event):
            self.last_wheel.value = [a + b for a, b in zip(self.last_wheel.value, delta)]
        else:
            self.last_wheel = self.emit(self.step("wheel", event, delta))

    # -- navigations and tabs

    def navigate(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        url = _string(values, "url")
        if not url:
            return
        self.typed = {key: value for key, value in self.typed.items() if key[0] != event.tab}
        if _string(values, "initiator") == "page":
            if not loads_document(url):
                return
            last = self.last()
            if last is not None and last.action == "wait_url" and last.tab == event.tab:
                last.value = url  # only where it ends up counts
            else:
                self.emit(_Step("wait_url", event.tab, value=url))
        elif _string(values, "kind") == "reload":
            self.emit(_Step("reload", event.tab))
        else:
            self.emit(_Step("goto", event.tab, value=url))

    def tab_open(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        opener = values.get("opener")
        if isinstance(opener, int) and not isinstance(opener, bool):
            cause = next((s for s in reversed(self.steps) if s.tab == opener and s.action in _OPENING), None)
            if cause is not None and cause.opens is None:
                cause.opens = event.tab
            else:
                self.emit(_Step("adopt", event.tab))
            return
        self.emit(_Step("new_tab", event.tab))
        url = _string(values, "url")
        following = next((e for e in self.events[index + 1:] if e.tab == event.tab), None)
        if loads_document(url) and (following is None or following.type != "navigate"):
            self.emit(_Step("goto", event.tab, value=url))

    def tab_close(self, index: int, event: RecordedEvent, values: dict[str, Any]) -> None:
        self.emit(_Step("close", event.tab))


def _one_bmp_character(key: str) -> bool:
    return len(key) == 1 and not 0xD800 <= ord(key) <= 0xDFFF and key.isprintable()


def _start_tabs(recording: RecordingState) -> int:
    """How many tabs the recording started with: those before the first tab that opened."""
    opened = [e.tab for e in recording.events if e.type == "tab_open"]
    if opened:
        return min(opened)
    seen = [e.tab for e in recording.events] + [end.tab for end in recording.ends]
    return max(seen, default=0) + 1


def _selector_choices(selectors: Iterable[str]) -> list[tuple[str, str]]:
    """Each usable selector as (kind, text), in the order a script tries them.

    Kinds: "aria" (the name), "text" (the words), "css", "xpath" (the path without
    ``xpath/``). Selectors of another tool's kind (``pierce/`` aside) are left out.
    """
    ranked: dict[str, list[tuple[str, str]]] = {"aria": [], "text": [], "css": [], "xpath": []}
    for selector in selectors:
        if selector.startswith("aria/"):
            if selector[5:]:
                ranked["aria"].append(("aria", selector[5:]))
        elif selector.startswith("text/"):
            if selector[5:]:
                ranked["text"].append(("text", selector[5:]))
        elif selector.startswith("xpath/"):
            if selector[6:]:
                ranked["xpath"].append(("xpath", selector[6:]))
        elif selector.startswith("pierce/"):
            ranked["css"].append(("css", selector[7:]))
        elif selector and not _OTHER_TOOL_RE.match(selector):
            ranked["css"].append(("css", selector))
    return [choice for kind in ranked.values() for choice in kind]


# -- literals -----------------------------------------------------------------------------------

class _Code(str):
    """Code that goes into a script as it is, where a literal could go."""


class _Python:
    """How Python scripts write literals, calls and statements."""

    comment = "#"

    def literal(self, value: Any) -> str:
        if isinstance(value, _Code):
            return str(value)
        if isinstance(value, (str, bool, int, float)) or value is None:
            return repr(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.literal(k)}: {self.literal(v)}" for k, v in value.items()) + "}"
        return "[" + ", ".join(self.literal(v) for v in value) + "]"

    def function(self, source: str) -> Any:
        """A JavaScript function of ours as an argument of ``evaluate``: its text."""
        return source

    def constant(self, name: str, source: str) -> str:
        """A JavaScript function of ours as a constant, as it reads when it can."""
        if "\\" in source or "'''" in source or source.endswith("'") or not source.isascii():
            return f"{name} = {source!r}"
        return f"{name} = '''{source}'''"

    def name(self, snake: str) -> str:
        return snake

    def call(self, method: str, *args: Any, **options: Any) -> str:
        parts = [self.literal(a) for a in args] + [f"{name}={self.literal(v)}" for name, v in options.items()]
        return f"{self.name(method)}({', '.join(parts)})"

    def do(self, expression: str) -> str:
        return expression

    def assign(self, target: str, expression: str) -> str:
        return f"{target} = {expression}"

    def files(self, names: Sequence[tuple[str, str, str]]) -> Any:
        """Files for ``set_input_files``, from (name, type, base64 data)."""
        return [{"name": n, "mimeType": t, "buffer": _Code(f"base64.b64decode({self.literal(data)})")} for n, t, data in names]

    def options(self, by: str, items: list[Any]) -> list[Any]:
        """The argument of ``select_option`` that selects these values (``by`` "value") or indexes."""
        return [_Code(f"{by}={self.literal(items)}")]


class _TypeScript(_Python):
    """How TypeScript tests write them: JSON literals, all non-ASCII escaped."""

    comment = "//"
    _NAMES = {"to_have_url": "toHaveURL", "or_": "or"}

    def literal(self, value: Any) -> str:
        if isinstance(value, _Code):
            return str(value)
        if isinstance(value, (str, bool, int, float)) or value is None:
            return json.dumps(value)
        if isinstance(value, dict):  # keys are ours, identifiers
            return "{ " + ", ".join(f"{k}: {self.literal(v)}" for k, v in value.items()) + " }"
        return "[" + ", ".join(self.literal(v) for v in value) + "]"

    def function(self, source: str) -> Any:
        return _Code(source)

    def constant(self, name: str, source: str) -> str:
        return f"const {name} = {source};"

    def name(self, snake: str) -> str:
        if snake in self._NAMES:
            return self._NAMES[snake]
        head, *rest = snake.split("_")
        return head + "".join(part.capitalize() for part in rest)

    def call(self, method: str, *args: Any, **options: Any) -> str:
        parts = [self.literal(a) for a in args]
        if options:
            parts.append(self.literal({self.name(k): v for k, v in options.items()}))
        return f"{self.name(method)}({', '.join(parts)})"

    def do(self, expression: str) -> str:
        return f"await {expression};"

    def assign(self, target: str, expression: str) -> str:
        return f"{target} = await {expression};"

    def files(self, names: Sequence[tuple[str, str, str]]) -> Any:
        return [{"name": n, "mimeType": t, "buffer": _Code(f"Buffer.from({self.literal(data)}, 'base64')")} for n, t, data in names]

    def options(self, by: str, items: list[Any]) -> list[Any]:
        return [[{by: item} for item in items]]


def _recorded_files(step: _Step) -> tuple[list[tuple[str, str, str]], list[_Step]]:
    """The files of a ``files`` step as (name, type, base64 data), and a note for each one left out."""
    files, notes = [], []
    for item in step.value:
        name, data = item.get("name"), item.get("data")
        name = name if isinstance(name, str) else ""
        if not isinstance(data, str) or item.get("omitted") is True:
            notes.append(_Step("note", step.tab, value=("the file {} was too large to record: left out", name)))
            continue
        files.append((name, item["type"] if isinstance(item.get("type"), str) else "", data))
    return files, notes


# -- scripts ------------------------------------------------------------------------------------

class _Script:
    """What the three scripts share: the steps, the helpers they need, comments and the end state."""

    lang: _Python = _Python()

    def __init__(self, recording: RecordingState, name: str, version: int, store: str) -> None:
        self.recording = recording
        self.name = name
        self.version = version
        self.store = store
        self.steps = _steps(recording)
        self.needed: set[str] = set()
        self.handlers: dict[str, Callable[[_Step], list[str]]] = {
            action: getattr(self, f"do_{action}")
            for action in ("click", "dblclick", "press", "fill", "html", "check", "select", "files", "wheel",
                           "scroll", "goto", "reload", "wait_url", "new_tab", "adopt", "close", "note")
        }

    def need(self, helper: str) -> None:
        self.needed.add(helper)

    def comment(self, words: str) -> str:
        return f"{self.lang.comment} {words}"

    def body(self) -> list[str]:
        lines: list[str] = []
        for step in self.steps:
            lines += self.step_lines(step)
        if self.recording.ended:
            lines.append(self.comment("How the recording ended"))
            for end in sorted(self.recording.ends, key=lambda e: e.tab):
                lines += self.end_lines(end)
        return lines

    def step_lines(self, step: _Step) -> list[str]:
        return self.handlers[step.action](step)

    def do_note(self, step: _Step) -> list[str]:
        words, about = step.value
        return [self.comment(words.format(self.lang.literal(about)))]

    def skipped(self, step: _Step, why: str) -> list[str]:
        return self.do_note(_Step("note", step.tab, value=(f"{step.action} on {{}}: {why}; skipped", step.selectors[0] if step.selectors else "")))

    def end_lines(self, end: TabEndState) -> list[str]:
        raise NotImplementedError

    def field_what(self, end: TabEndState, field: FormField) -> str:
        return f"tab {end.tab}: field {field.target.selectors[0]}"

    @staticmethod
    def storage(digests: Iterable[Any]) -> list[list[str]]:
        """Digests by key, sorted by UTF-16 code units as the page sorts them."""
        pairs = [[text(d.key), d.digest] for d in digests]
        return sorted(pairs, key=lambda pair: pair[0].encode("utf-16-be", "surrogatepass"))

    def constants(self) -> list[str]:
        """The JavaScript functions the script runs in pages, as constants (the digest's text is in two)."""
        functions = [("STORAGE", _STORAGE_JS), ("FIELD", _FIELD_JS), ("SET_HTML", _SET_HTML_JS), ("POINT", _POINT_JS),
                     ("SET_VALUE", _SET_VALUE_JS)]
        return [self.lang.constant(name, source) for name, source in functions if name in self.needed]

    def js(self, name: str) -> _Code:
        """One of the page functions of :meth:`constants`, by name."""
        self.need(name)
        return _Code(name)


def _indent(lines: Iterable[str], depth: int) -> list[str]:
    return [("    " * depth + line) if line else "" for line in lines]


# -- Playwright (Python and TypeScript) ---------------------------------------------------------

class _PlaywrightScript(_Script):
    """Playwright's API, in the language of :attr:`lang`."""

    def page(self, tab: int) -> str:
        return f"tabs[{tab}]"

    def base(self, tab: int, frame: Sequence[int]) -> str:
        if not frame:
            return self.page(tab)
        self.need("frame_at")
        return self.frame_at(self.page(tab), frame)

    def frame_at(self, page: str, frame: Sequence[int]) -> str:
        return f"frame_at({page}, {', '.join(str(i) for i in frame)})"

    def locator(self, tab: int, frame: Sequence[int], selectors: Sequence[str]) -> str | None:
        """The step's element as a Playwright locator, from its first usable selector; None if none is."""
        choices = _selector_choices(selectors)
        if not choices:
            return None
        kind, value = choices[0]
        base, lang, roles = self.base(tab, frame), self.lang, _ROLES.get(_tag(selectors))
        if kind == "aria" and roles:
            by_role = [f"{base}.{lang.call('get_by_role', role, name=value, exact=True)}" for role in roles]
            return by_role[0] + "".join(f".{lang.name('or_')}({other})" for other in by_role[1:])
        if kind == "aria":
            return f"{base}.{lang.call('get_by_label', value, exact=True)}"
        if kind == "text":
            return f"{base}.{lang.call('get_by_text', value, exact=True)}"
        if kind == "xpath":
            return f"{base}.{lang.call('locator', 'xpath=' + value)}"
        css = value.replace(" >>> ", " ")
        return f"{base}.{lang.call('locator', 'css=' + css if _ENGINE_RE.match(css) or '>>' in css else css)}"

    def on(self, step: _Step, method: str, *args: Any, **options: Any) -> list[str]:
        """``method`` called on the step's element."""
        locator = self.locator(step.tab, step.frame, step.selectors)
        if locator is None:
            return self.skipped(step, "no selector Playwright takes")
        return [self.lang.do(f"{locator}.{self.lang.call(method, *args, **options)}")]

    #: The tab in front, as far as the steps so far tell.
    front: int | None = None

    def step_lines(self, step: _Step) -> list[str]:
        lines, front = super().step_lines(step), []
        if step.action in ("new_tab", "adopt"):
            self.front = step.tab
        elif step.action == "close":
            self.front = None
        elif step.action != "note" and step.tab != self.front:
            # The user moved to this tab: a tab in the background draws no frames, which actions wait for.
            front = [self.lang.do(f"{self.page(step.tab)}.{self.lang.call('bring_to_front')}")]
            self.front = step.tab
        if step.opens is not None:
            self.front = step.opens
            if lines[-1].startswith(self.lang.comment):  # the step was skipped: wait for the tab all the same
                lines += self.do_adopt(_Step("adopt", step.opens))
            else:
                lines = self.popup(self.page(step.tab), lines, step.opens)
        return front + lines

    def popup(self, opener: str, lines: list[str], tab: int) -> list[str]:
        return [f"with {opener}.expect_popup() as popup:", *_indent(lines, 1), f"{self.page(tab)} = popup.value"]

    @staticmethod
    def click_options(step: _Step) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if step.button != "left":
            options["button"] = step.button
        if step.modifiers:
            options["modifiers"] = list(step.modifiers)
        return options

    def do_click(self, step: _Step) -> list[str]:
        return self.on(step, "click", **self.click_options(step))

    def do_dblclick(self, step: _Step) -> list[str]:
        return self.on(step, "dblclick", **self.click_options(step))

    def do_press(self, step: _Step) -> list[str]:
        keys = "+".join([*step.modifiers, step.value])
        if not step.selectors:
            return [self.lang.do(f"{self.page(step.tab)}.keyboard.{self.lang.call('press', keys)}")]
        return self.on(step, "press", keys)

    def do_fill(self, step: _Step) -> list[str]:
        return self.on(step, "fill", step.value)

    def do_html(self, step: _Step) -> list[str]:
        return self.on(step, "evaluate", self.js("SET_HTML"), step.value)

    def do_check(self, step: _Step) -> list[str]:
        return self.on(step, "set_checked", step.value)

    def do_select(self, step: _Step) -> list[str]:
        by, items = step.value
        return self.on(step, "select_option", *self.lang.options(by, items))

    def do_files(self, step: _Step) -> list[str]:
        files, notes = _recorded_files(step)
        return [line for note in notes for line in self.do_note(note)] + self.on(step, "set_input_files", self.lang.files(files))

    def do_wheel(self, step: _Step) -> list[str]:
        locator = self.locator(step.tab, step.frame, step.selectors)
        if locator is None:
            return self.skipped(step, "no selector Playwright takes")
        self.need("wheel")
        self.need("POINT")
        return [self.lang.do(self.lang.call("wheel", _Code(self.page(step.tab)), _Code(locator), *step.value))]

    def do_scroll(self, step: _Step) -> list[str]:
        if not step.selectors:
            call = self.lang.call("evaluate", self.lang.function(_SCROLL_WINDOW_JS), step.value)
            return [self.lang.do(f"{self.base(step.tab, step.frame)}.{call}")]
        return self.on(step, "evaluate", self.lang.function(_SCROLL_ELEMENT_JS), step.value)

    def do_goto(self, step: _Step) -> list[str]:
        return [self.lang.do(f"{self.page(step.tab)}.{self.lang.call('goto', step.value)}")]

    def do_reload(self, step: _Step) -> list[str]:
        return [self.lang.do(f"{self.page(step.tab)}.reload()")]

    def do_wait_url(self, step: _Step) -> list[str]:
        return [self.lang.do(f"expect({self.page(step.tab)}).{self.lang.call('to_have_url', step.value)}")]

    def do_new_tab(self, step: _Step) -> list[str]:
        return [self.lang.assign(self.page(step.tab), f"context.{self.lang.call('new_page')}")]

    def do_adopt(self, step: _Step) -> list[str]:
        self.need("new_tab")
        return [self.lang.assign(self.page(step.tab), f"{self.lang.name('new_tab')}(context, tabs)")]

    def do_close(self, step: _Step) -> list[str]:
        return [self.lang.do(f"{self.page(step.tab)}.close()")]

    def poll(self, read: str, want: Any, what: str) -> str:
        """Wait for ``read`` to give ``want``; fail naming ``what``."""
        self.need("same")
        return f"same(lambda: {read}, {self.lang.literal(want)}, {self.lang.literal(what)})"

    def end_lines(self, end: TabEndState) -> list[str]:
        lang, page = self.lang, self.page(end.tab)
        lines = [
            lang.do(f"expect({page}).{lang.call('to_have_url', end.url)}"),
            lang.do(f"expect({page}).{lang.call('to_have_title', text(end.title))}"),
        ]
        for field in end.fields:
            locator = self.locator(end.tab, (), field.target.selectors)
            if locator is None:
                continue
            if field.kind == "value":
                lines.append(lang.do(f"expect({locator}).{lang.call('to_have_value', text(field.value))}"))
            elif field.kind == "checked":
                lines.append(lang.do(f"expect({locator}).{lang.call('to_be_checked', checked=field.checked)}"))
            else:
                want = list(field.selected) if field.kind == "select" else text(field.value)
                read = f"{locator}.{lang.call('evaluate', self.js('FIELD'), field.kind)}"
                lines.append(self.poll(read, want, self.field_what(end, field)))
        for name, digests in (("localStorage", end.local_storage), ("sessionStorage", end.session_storage)):
            read = f"{page}.{lang.call('evaluate', self.js('STORAGE'), name)}"
            lines.append(self.poll(read, self.storage(digests), f"tab {end.tab}: {name} (keys and digests of values)"))
        return lines


class _PlaywrightPython(_PlaywrightScript):
    """``psp export --format playwright-python``."""

    def render(self) -> str:
        body = self.body()
        lines = [
            "#!/usr/bin/env python3",
            '"""The recording of a psp session replayed with Playwright for Python, then checked against its end.',
            "",
            "Written by `psp export --format playwright-python`. It restores the recording's starting state",
            "with psp_cdp into a Chromium of its own, plays the recorded steps and checks that every tab",
            "ended as recorded. It needs playwright and psp_cdp; $PSP_STORE names another store,",
            "$PSP_CHROMIUM another Chromium, $PSP_TIMEOUT how many seconds to wait for a page or an element.",
            '"""',
            "",
            "import base64",
            "import os",
            "import time",
            "",
            "from playwright.sync_api import expect, sync_playwright",
            "",
            "from psp_cdp.playwright import PlaywrightAdapter",
            "",
            *_header_constants(self),
            "START_TABS = " + str(_start_tabs(self.recording)),
            *self.constants(),
            "",
            *_helpers(self, _PLAYWRIGHT_PYTHON_HELPERS),
            "",
            "def main() -> None:",
            "    with sync_playwright() as playwright:",
            "        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)",
            "        try:",
            "            context = browser.new_context()",
            "            context.set_default_timeout(TIMEOUT * 1000)",
            "            expect.set_options(timeout=TIMEOUT * 1000)",
            "            page = context.new_page()",
            "            PlaywrightAdapter().load_session(SESSION, storage=STORE).restore(page, version=VERSION)",
            "            tabs = start_tabs(context, START_TABS)",
            *_indent(body, 3),
            "        finally:",
            "            browser.close()",
            "",
            "",
            'if __name__ == "__main__":',
            "    main()",
        ]
        return "\n".join(lines) + "\n"


def _header_constants(script: _Script) -> list[str]:
    """SESSION, VERSION, STORE, CHROMIUM, ARGS and TIMEOUT of a Python script."""
    lang = script.lang
    return [
        f"SESSION = {lang.literal(script.name)}",
        f"VERSION = {script.version}",
        f"STORE = os.environ.get('PSP_STORE') or {lang.literal(script.store)}",
        "CHROMIUM = os.environ.get('PSP_CHROMIUM') or '/usr/bin/chromium'",
        f"ARGS = {lang.literal(list(CHROMIUM_ARGS))}",
        f"TIMEOUT = float(os.environ.get('PSP_TIMEOUT') or {TIMEOUT})  # seconds",
    ]


def _helpers(script: _Script, helpers: dict[str, str]) -> list[str]:
    """The text of each helper the script needs (those with no name in ``needed`` always), in order."""
    out: list[str] = []
    for name, source in helpers.items():
        if name.startswith("always:") or name in script.needed:
            out += ["", source.strip("\n"), ""]
    return out


_SAME_PYTHON = '''
def same(read, want, what):
    """Wait up to TIMEOUT for read() to give want; fail naming what differs."""
    deadline = time.monotonic() + TIMEOUT
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = read()
    assert got == want, f"{what}: {got!r}, recorded {want!r}"
'''

_PLAYWRIGHT_PYTHON_HELPERS = {
    "always:start_tabs": '''
def start_tabs(context, count):
    """The restored tabs by index (the first one is the page restored into), once all are open."""
    deadline = time.monotonic() + TIMEOUT
    while len(context.pages) < count and time.monotonic() < deadline:
        context.pages[0].wait_for_timeout(100)  # Playwright hears of new tabs while it waits
    return dict(enumerate(context.pages))
''',
    "frame_at": '''
def frame_at(page, *path):
    """The frame of page at path (an index into each frame's child frames), waiting for it."""
    frame = page.main_frame
    for index in path:
        deadline = time.monotonic() + TIMEOUT
        while len(frame.child_frames) <= index and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        frame = frame.child_frames[index]
    return frame
''',
    "wheel": '''
def wheel(page, locator, dx, dy):
    """Turn the mouse wheel by dx, dy pixels over what the scrolling boxes of locator's element show of it."""
    locator.hover(position=locator.evaluate(POINT))
    page.mouse.wheel(dx, dy)
''',
    "new_tab": '''
def new_tab(context, tabs):
    """A tab of context that is none of tabs (one a page opened), waiting for it."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for page in context.pages:
            if page not in tabs.values():
                return page
        context.pages[0].wait_for_timeout(100)  # Playwright hears of new tabs while it waits
    raise AssertionError("no tab opened")
''',
    "same": _SAME_PYTHON,
}


class _PlaywrightTest(_PlaywrightScript):
    """``psp export --format playwright-test``: a Playwright Test spec in TypeScript."""

    lang = _TypeScript()

    def frame_at(self, page: str, frame: Sequence[int]) -> str:
        return f"(await frameAt({page}, {', '.join(str(i) for i in frame)}))"

    def popup(self, opener: str, lines: list[str], tab: int) -> list[str]:
        return [f"const popup{tab} = {opener}.waitForEvent('popup');", *lines, f"{self.page(tab)} = await popup{tab};"]

    def poll(self, read: str, want: Any, what: str) -> str:
        lang = self.lang
        options = lang.literal({"message": what, "timeout": _Code("TIMEOUT")})
        return f"await expect.poll(() => {read}, {options}).toEqual({lang.literal(want)});"

    def render(self) -> str:
        lang = self.lang
        body = self.body()
        lines = [
            "// The recording of a psp session replayed with Playwright Test, then checked against its end.",
            "//",
            "// Written by `psp export --format playwright-test`; run it with `npx playwright test FILE`. It",
            "// restores the recording's starting state with `psp restore` ($PSP_BIN, else psp on the PATH)",
            "// into a Chromium of its own, plays the recorded steps and checks that every tab ended as",
            "// recorded. $PSP_STORE names another store, $PSP_CHROMIUM another Chromium, $PSP_TIMEOUT how many",
            "// seconds to wait for a page or an element.",
            "import { execFile } from 'node:child_process';",
            "import { existsSync, mkdtempSync, rmSync } from 'node:fs';",
            "import { tmpdir } from 'node:os';",
            "import { join } from 'node:path';",
            "import { promisify } from 'node:util';",
            "import { type BrowserContext, type Frame, type Locator, type Page, expect as baseExpect, chromium, test } from '@playwright/test';",
            "",
            f"const SESSION = {lang.literal(self.name)};",
            f"const VERSION = {self.version};",
            f"const STORE = process.env.PSP_STORE || {lang.literal(self.store)};",
            "const CHROMIUM = process.env.PSP_CHROMIUM || '/usr/bin/chromium';",
            f"const ARGS = {lang.literal(list(CHROMIUM_ARGS))};",
            f"const TIMEOUT = 1000 * Number(process.env.PSP_TIMEOUT || {TIMEOUT});",
            f"const START_TABS = {_start_tabs(self.recording)};",
            *self.constants(),
            "const expect = baseExpect.configure({ timeout: TIMEOUT });",
            *_helpers(self, _PLAYWRIGHT_TEST_HELPERS),
            f"test.setTimeout({6 + len(body)} * TIMEOUT);  // every line may wait TIMEOUT",
            "",
            "test('replays the recording and ends as recorded', async () => {",
            "  const profile = mkdtempSync(join(tmpdir(), 'psp-export-'));",
            "  const context = await chromium.launchPersistentContext(profile, {",
            "    executablePath: CHROMIUM,",
            "    args: ['--remote-debugging-port=0', ...ARGS],",
            "  });",
            "  try {",
            "    context.setDefaultTimeout(TIMEOUT);",
            "    await restore(profile);",
            "    const tabs = await startTabs(context, START_TABS);",
            *["    " + line for line in body],
            "  } finally {",
            "    await context.close();",
            "    rmSync(profile, { recursive: true, force: true });",
            "  }",
            "});",
        ]
        return "\n".join(lines) + "\n"


_PLAYWRIGHT_TEST_HELPERS = {
    "always:restore": """
/** Restore the recording's starting state into the browser whose profile is `profile`, with psp. */
async function restore(profile: string): Promise<void> {
  // psp finds the browser's DevTools endpoint in the profile's DevToolsActivePort file.
  await expect.poll(() => existsSync(join(profile, 'DevToolsActivePort'))).toBe(true);
  const store = STORE === 'local' ? [] : ['--store', STORE];
  await promisify(execFile)(process.env.PSP_BIN || 'psp', ['restore', `${SESSION}@${VERSION}`, '--cdp', profile, ...store]);
}
""",
    "always:startTabs": """
/** The restored tabs by index (the browser's first page is the first one), once all are open. */
async function startTabs(context: BrowserContext, count: number): Promise<Record<number, Page>> {
  await expect.poll(() => context.pages().length).toBeGreaterThanOrEqual(count);
  return { ...context.pages() };
}
""",
    "frame_at": """
/** The frame of `page` at `path` (an index into each frame's child frames), waiting for it. */
async function frameAt(page: Page, ...path: number[]): Promise<Frame> {
  let frame = page.mainFrame();
  for (const index of path) {
    await expect.poll(() => frame.childFrames().length).toBeGreaterThan(index);
    frame = frame.childFrames()[index];
  }
  return frame;
}
""",
    "wheel": """
/** Turn the mouse wheel by `dx`, `dy` pixels over what the scrolling boxes of the element show of it. */
async function wheel(page: Page, locator: Locator, dx: number, dy: number): Promise<void> {
  const { x, y } = await locator.evaluate(POINT);
  await locator.hover({ position: { x, y } });
  await page.mouse.wheel(dx, dy);
}
""",
    "new_tab": """
/** A tab of `context` that is none of `tabs` (one a page opened), waiting for it. */
async function newTab(context: BrowserContext, tabs: Record<number, Page>): Promise<Page> {
  const known = () => context.pages().filter((page) => !Object.values(tabs).includes(page));
  await expect.poll(() => known().length).toBeGreaterThan(0);
  return known()[0];
}
""",
}


# -- Selenium -----------------------------------------------------------------------------------

class _SeleniumPython(_Script):
    """``psp export --format selenium-python``."""

    def __init__(self, recording: RecordingState, name: str, version: int, store: str, start_urls: Sequence[str]) -> None:
        super().__init__(recording, name, version, store)
        count = _start_tabs(recording)
        self.start_urls = list(start_urls) or [""] * count
        #: The (tab, frame) the driver is switched to, None when unknown.
        self.where: tuple[int, tuple[int, ...]] | None = None

    def at(self, tab: int, frame: Sequence[int] = ()) -> list[str]:
        if self.where == (tab, tuple(frame)):
            return []
        self.where = (tab, tuple(frame))
        return [f"at(driver, tabs, {', '.join(str(i) for i in (tab, *frame))})"]

    def find(self, selectors: Sequence[str], *, shown: bool = True) -> str | None:
        """A ``find(...)`` call with the step's CSS selectors and XPath in order; None if it has none."""
        choices = []
        for kind, value in _selector_choices(selectors):
            if kind == "css" and ">>>" not in value:
                choices.append(_Code(f"(By.CSS_SELECTOR, {value!r})"))
            elif kind == "xpath":
                choices.append(_Code(f"(By.XPATH, {value!r})"))
        if not choices:
            return None
        options = {} if shown else {"shown": False}
        return self.lang.call("find", _Code("driver"), *choices, **options)

    def on(self, step: _Step, make: Callable[[str], str | list[str]], *, shown: bool = True) -> list[str]:
        """The lines ``make(element)`` gives for the step's element, after switching to its tab and frame."""
        found = self.find(step.selectors, shown=shown)
        if found is None:
            return self.skipped(step, "no CSS selector or XPath to find it by")
        made = make(found)
        return self.at(step.tab, step.frame) + ([made] if isinstance(made, str) else made)

    def step_lines(self, step: _Step) -> list[str]:
        lines = super().step_lines(step)
        if step.opens is not None:
            lines += self.do_adopt(_Step("adopt", step.opens))
        return lines

    @staticmethod
    def keys(modifiers: Sequence[str]) -> list[_Code]:
        return [_Code(f"Keys.{_SELENIUM_KEYS[m]}") for m in modifiers]

    def do_click(self, step: _Step) -> list[str]:
        if step.button == "left" and not step.modifiers:
            return self.on(step, lambda found: f"{found}.click()")
        self.need("click")
        options = {"button": step.button} if step.button != "left" else {}
        return self.on(step, lambda found: self.lang.call("click", _Code("driver"), _Code(found), *self.keys(step.modifiers), **options))

    def do_dblclick(self, step: _Step) -> list[str]:
        self.need("click")
        options: dict[str, Any] = {"count": 2}
        if step.button != "left":
            options["button"] = step.button
        return self.on(step, lambda found: self.lang.call("click", _Code("driver"), _Code(found), *self.keys(step.modifiers), **options))

    def do_press(self, step: _Step) -> list[str]:
        self.need("press")
        key = _Code(f"Keys.{_SELENIUM_KEYS[step.value]}") if step.value in _SELENIUM_KEYS else step.value
        if step.value not in _SELENIUM_KEYS and not _one_bmp_character(step.value):
            return self.do_note(_Step("note", step.tab, value=("the key {}: Selenium has no name for it; skipped", step.value)))

        def press(found: str) -> str:
            return self.lang.call("press", _Code("driver"), _Code(found), key, *self.keys(step.modifiers))

        if not step.selectors:
            return self.at(step.tab, step.frame) + [press("None")]
        return self.on(step, press)

    def do_fill(self, step: _Step) -> list[str]:
        self.need("fill")
        self.need("SET_VALUE")
        return self.on(step, lambda found: self.lang.call("fill", _Code("driver"), _Code(found), step.value))

    def do_html(self, step: _Step) -> list[str]:
        return self.on(step, lambda found: self.lang.call("run", _Code("driver"), self.js("SET_HTML"), _Code(found), step.value))

    def do_check(self, step: _Step) -> list[str]:
        self.need("check")
        return self.on(step, lambda found: self.lang.call("check", _Code(found), step.value))

    def do_select(self, step: _Step) -> list[str]:
        self.need("select")
        by, items = step.value
        return self.on(step, lambda found: self.lang.call("select", _Code(found), **{"values" if by == "value" else "indexes": items}))

    def do_files(self, step: _Step) -> list[str]:
        files, notes = _recorded_files(step)
        lines = [line for note in notes for line in self.do_note(note)]
        if not files:
            return lines + self.on(step, lambda found: self.lang.call("run", _Code("driver"), _CLEAR_FILES_JS, _Code(found)), shown=False)
        self.need("write_files")
        written = self.lang.call("write_files", _Code("files.name"), [[name, data] for name, _, data in files])
        return lines + self.on(step, lambda found: f"{found}.send_keys({written})", shown=False)

    def do_wheel(self, step: _Step) -> list[str]:
        self.need("wheel")
        self.need("POINT")
        return self.on(step, lambda found: self.lang.call("wheel", _Code("driver"), _Code(found), *step.value))

    def do_scroll(self, step: _Step) -> list[str]:
        if not step.selectors:
            return self.at(step.tab, step.frame) + [self.lang.call("run", _Code("driver"), _SCROLL_WINDOW_JS, step.value)]
        return self.on(step, lambda found: self.lang.call("run", _Code("driver"), _SCROLL_ELEMENT_JS, _Code(found), step.value), shown=False)

    def do_goto(self, step: _Step) -> list[str]:
        return self.at(step.tab) + [self.lang.call("driver.get", step.value)]

    def do_reload(self, step: _Step) -> list[str]:
        return self.at(step.tab) + ["driver.refresh()"]

    def do_wait_url(self, step: _Step) -> list[str]:
        self.need("wait_url")
        return self.at(step.tab) + [self.lang.call("wait_url", _Code("driver"), step.value)]

    def do_new_tab(self, step: _Step) -> list[str]:
        self.where = (step.tab, ())
        return ['driver.switch_to.new_window("tab")', f"tabs[{step.tab}] = driver.current_window_handle"]

    def do_adopt(self, step: _Step) -> list[str]:
        self.need("new_window")
        return [f"tabs[{step.tab}] = new_window(driver, tabs)"]

    def do_close(self, step: _Step) -> list[str]:
        lines = self.at(step.tab) + ["driver.close()"]
        self.where = None
        return lines

    def end_lines(self, end: TabEndState) -> list[str]:
        self.need("same")
        lang = self.lang
        self.where = None
        lines = self.at(end.tab) + [
            lang.call("same", _Code("lambda: driver.current_url"), end.url, f"tab {end.tab}: the URL"),
            lang.call("same", _Code("lambda: driver.title"), text(end.title), f"tab {end.tab}: the title"),
        ]
        for field in end.fields:
            found = self.find(field.target.selectors, shown=False)
            if found is None:
                continue
            want = list(field.selected) if field.kind == "select" else field.checked if field.kind == "checked" else text(field.value)
            read = _Code("lambda: " + lang.call("run", _Code("driver"), self.js("FIELD"), _Code(found), field.kind))
            lines.append(lang.call("same", read, want, self.field_what(end, field)))
        for name, digests in (("localStorage", end.local_storage), ("sessionStorage", end.session_storage)):
            read = _Code("lambda: " + lang.call("run", _Code("driver"), self.js("STORAGE"), name))
            lines.append(lang.call("same", read, self.storage(digests), f"tab {end.tab}: {name} (keys and digests of values)"))
        return lines

    def render(self) -> str:
        body = self.body()
        files = any(step.action == "files" for step in self.steps)
        main = [
            "def main() -> None:",
            "    options = webdriver.ChromeOptions()",
            "    options.binary_location = CHROMIUM",
            "    for arg in ARGS:",
            "        options.add_argument(arg)",
            "    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))",
            *(["    files = tempfile.TemporaryDirectory(prefix='psp-files-')"] if files else []),
            "    try:",
            "        SeleniumAdapter().load_session(SESSION, storage=STORE).restore(driver, version=VERSION)",
            "        tabs = start_tabs(driver, START_URLS)",
            *_indent(body, 2),
            "    finally:",
            "        driver.quit()",
            *(["        files.cleanup()"] if files else []),
        ]
        lines = [
            "#!/usr/bin/env python3",
            '"""The recording of a psp session replayed with Selenium, then checked against its end.',
            "",
            "Written by `psp export --format selenium-python`. It restores the recording's starting state",
            "with psp_cdp into a Chromium of its own (through chromedriver), plays the recorded steps and",
            "checks that every tab ended as recorded. It needs selenium and psp_cdp; $PSP_STORE names",
            "another store, $PSP_CHROMIUM another Chromium, $PSP_CHROMEDRIVER another chromedriver and",
            "$PSP_TIMEOUT how many seconds to wait for a page or an element.",
            '"""',
            "",
            "import base64",
            "import os",
            "import tempfile",
            "import time",
            "",
            "from selenium import webdriver",
            "from selenium.common.exceptions import InvalidSelectorException, StaleElementReferenceException",
            "from selenium.webdriver.chrome.service import Service",
            "from selenium.webdriver.common.action_chains import ActionChains",
            "from selenium.webdriver.common.actions.mouse_button import MouseButton",
            "from selenium.webdriver.common.actions.wheel_input import ScrollOrigin",
            "from selenium.webdriver.common.by import By",
            "from selenium.webdriver.common.keys import Keys",
            "from selenium.webdriver.support.select import Select",
            "from selenium.webdriver.support.wait import WebDriverWait",
            "",
            "from psp_cdp.selenium import SeleniumAdapter",
            "",
            *_header_constants(self),
            "CHROMEDRIVER = os.environ.get('PSP_CHROMEDRIVER') or '/usr/bin/chromedriver'",
            f"START_URLS = {self.lang.literal(self.start_urls)}",
            *self.constants(),
            "",
            *_helpers(self, _SELENIUM_HELPERS),
            "",
            *main,
            "",
            "",
            'if __name__ == "__main__":',
            "    main()",
        ]
        return "\n".join(lines) + "\n"


_SELENIUM_HELPERS = {
    "always:run": '''
def run(driver, function, *args):
    """What the JavaScript function gives when called in the page with args."""
    return driver.execute_script(f"return ({function})(...arguments)", *args)
''',
    "always:start_tabs": '''
def start_tabs(driver, urls):
    """The restored windows by tab index: each tab's by the URL it was restored at, the others in order."""
    WebDriverWait(driver, TIMEOUT).until(lambda d: len(d.window_handles) >= len(urls), "the restored tabs did not open")
    shown = {}
    for handle in driver.window_handles:
        driver.switch_to.window(handle)
        shown[handle] = driver.current_url
    tabs, left = {}, list(shown)
    for index, url in enumerate(urls):
        handle = next((h for h in left if url and shown[h] == url), None)
        if handle is not None:
            tabs[index] = handle
            left.remove(handle)
    for index in range(len(urls)):
        if index not in tabs and left:
            tabs[index] = left.pop(0)
    return tabs
''',
    "always:at": '''
def at(driver, tabs, tab, *frames):
    """Switch to the window of tab and to the frame at frames (indexes into window.frames)."""
    driver.switch_to.window(tabs[tab])
    driver.switch_to.default_content()
    for index in frames:
        WebDriverWait(driver, TIMEOUT).until(lambda d: d.execute_script("return window.frames.length") > index, "no such frame")
        driver.switch_to.frame(index)
''',
    "always:find": '''
def find(driver, *selectors, shown=True):
    """The element the first of selectors to find one finds (a shown one unless shown is False), waiting for it."""
    def first(driver):
        for by, value in selectors:
            try:
                found = driver.find_elements(by, value)
            except InvalidSelectorException:
                continue
            if found and (not shown or found[0].is_displayed()):
                return found[0]
        return None

    return WebDriverWait(driver, TIMEOUT, ignored_exceptions=[StaleElementReferenceException]).until(
        first, f"no element matches {selectors}"
    )
''',
    "click": '''
BUTTONS = {"left": MouseButton.LEFT, "middle": MouseButton.MIDDLE, "right": MouseButton.RIGHT}


def click(driver, element, *modifiers, button="left", count=1):
    """Click element count times with button, modifiers held."""
    actions = ActionChains(driver)
    for modifier in modifiers:
        actions.key_down(modifier)
    actions.move_to_element(element)
    for _ in range(count):
        actions.w3c_actions.pointer_action.click(button=BUTTONS[button])
    for modifier in reversed(modifiers):
        actions.key_up(modifier)
    actions.perform()
''',
    "press": '''
def press(driver, element, key, *modifiers):
    """Press key with modifiers held, in element (focused first) or wherever the focus is."""
    if element is not None:
        driver.execute_script("if (document.activeElement !== arguments[0]) arguments[0].focus();", element)
    actions = ActionChains(driver)
    for modifier in modifiers:
        actions.key_down(modifier)
    actions.send_keys(key)
    for modifier in reversed(modifiers):
        actions.key_up(modifier)
    actions.perform()
''',
    "fill": '''
def fill(driver, element, value):
    """Type value into element over what it holds (chromedriver types BMP characters only: others are set)."""
    if all(ord(c) < 0xD800 or 0xF900 <= ord(c) <= 0xFFFF for c in value):
        element.clear()
        element.send_keys(value)
    else:
        run(driver, SET_VALUE, element, value)
''',
    "check": '''
def check(element, checked):
    """Click a checkbox or radio button unless it is checked or not as it should be."""
    if element.is_selected() != checked:
        element.click()
''',
    "select": '''
def select(element, values=(), indexes=()):
    """Select the options of element with these values (or at these indexes), and only them."""
    options = Select(element)
    if options.is_multiple:
        options.deselect_all()
    for value in values:
        options.select_by_value(value)
    for index in indexes:
        options.select_by_index(index)
''',
    "write_files": '''
def write_files(directory, files):
    """Write files ([name, base64 bytes]) each in a folder of its own under directory; their paths, a line each."""
    paths = []
    for number, (name, data) in enumerate(files):
        folder = os.path.join(directory, f"{len(os.listdir(directory))}-{number}")
        os.makedirs(folder)
        safe = name.replace("/", "_").replace("\\x00", "_")
        try:
            os.fsencode(safe)
        except UnicodeEncodeError:
            safe = "file"
        path = os.path.join(folder, safe if safe not in ("", ".", "..") else "file")
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))
        paths.append(path)
    return "\\n".join(paths)
''',
    "wheel": '''
def wheel(driver, element, dx, dy):
    """Turn the mouse wheel by dx, dy pixels over what the scrolling boxes of element show of it."""
    origin = ScrollOrigin.from_element(element, *run(driver, POINT, element)["fromMiddle"])
    ActionChains(driver).scroll_from_origin(origin, round(dx), round(dy)).perform()
''',
    "wait_url": '''
def wait_url(driver, url):
    """Wait for the page to navigate to url."""
    WebDriverWait(driver, TIMEOUT).until(lambda d: d.current_url == url, f"the page did not navigate to {url}")
''',
    "new_window": '''
def new_window(driver, tabs):
    """The handle of a window that is none of tabs (one a page opened), waiting for it."""
    return WebDriverWait(driver, TIMEOUT).until(
        lambda d: next((h for h in d.window_handles if h not in tabs.values()), None), "no window opened"
    )
''',
    "same": _SAME_PYTHON,
}


# -- entry points -------------------------------------------------------------------------------

def to_playwright_python(recording: RecordingState, name: str, version: int, store: str) -> str:
    """A Python script that restores version ``version`` of session ``name`` from ``store`` and replays
    its recording with Playwright's sync API, then checks its end state (see the module doc).

    ``store`` is what the script uses when ``PSP_STORE`` is not set: a STORE as ``psp``
    takes it, or ``"local"`` for the default store.
    """
    return _PlaywrightPython(recording, name, version, store).render()


def to_playwright_test(recording: RecordingState, name: str, version: int, store: str) -> str:
    """A Playwright Test spec (TypeScript) that restores the recording's starting state with ``psp
    restore``, replays it and checks its end state (see :func:`to_playwright_python`)."""
    return _PlaywrightTest(recording, name, version, store).render()


def to_selenium_python(recording: RecordingState, name: str, version: int, store: str, *, start_urls: Sequence[str] = ()) -> str:
    """A Python script that restores the recording's starting state and replays it with Selenium,
    then checks its end state (see :func:`to_playwright_python`).

    ``start_urls`` are the URLs of the starting state's tabs, in order: the script tells
    the restored windows apart by them (without them, by the order chromedriver lists
    its windows in).
    """
    return _SeleniumPython(recording, name, version, store, start_urls).render()
