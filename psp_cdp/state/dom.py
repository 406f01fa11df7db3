"""DOM state: what the user typed and did not submit, the focused element, scrolled elements.

Captured per tab and frame, in an isolated world, for the tab's current document:

* form controls whose state differs from the default the page's HTML gave them: text
  inputs and textareas (``value`` against ``defaultValue`` and the value a pristine
  copy of the input would sanitise to), checkboxes and radio buttons (``checked``
  against ``defaultChecked``), selects (the selected options against the default
  selection). Password, file and hidden inputs and buttons are left out; a password
  field that holds a typed value is reported as not covered, without its value.
* editing hosts (outermost ``contenteditable`` elements, and the body of a document
  in ``designMode``) that have focus or hold content: what the document loaded with
  is unknown, so each such host's ``innerHTML`` is kept, and restore writes it only
  where the restored page shows something else.
* the focused element, in the frame that holds focus (``document.activeElement``
  other than the body), and elements scrolled away from their origin; the page's own
  scroll belongs to its history entry (see :mod:`.tabs`).

Each element is kept as several selectors, most robust first, in the syntax of
Chrome's Recorder: a CSS selector on a unique ``id``, ``name`` (with ``value`` for
radio buttons), ``data-testid`` or ``aria-label``; ``aria/Name`` when the element's
label, ``aria-label`` or ``aria-labelledby`` names it uniquely; ``text/Words`` when a
link, button, label or option is the only one with that text; an ``:nth-of-type``
path from the nearest ancestor with a unique id; ``xpath/...`` last. Frames are
identified by their path in the frame tree (indexes into ``window.frames``).

Restore runs after the tabs are reloaded live. It waits for each frame's document to
finish loading, finds each element by the first selector that matches exactly one
element, and sets it as a user would: text through the native value setter followed
by bubbling ``input`` and ``change`` events (so a framework's own value tracking sees
the change), checkboxes and radio buttons by a click (which is what frameworks listen
to), options through the native ``selected`` setter followed by ``input`` and
``change``, editing hosts by their content (without scripts, frames, embedded objects
or event handler attributes) followed by ``input``. Elements are scrolled, and focus
is given back last. What cannot be found or set is listed in the report by selector.

With the ``dom_snapshot`` option, capture also keeps ``DOMSnapshot.captureSnapshot``
of each tab (JSON), for inspection; it is never replayed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urldefrag

import trio

from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, DOMState, FrameDOMState, Tab as TabState, domstring, text
from .origins import STUB_CONCURRENCY
from .pages import Frame, Tab, gather_limited
from .registry import CaptureContext, Component, RestoreContext

__all__ = ["ELEMENT_HELPERS", "FORM_DEFAULTS", "DomState", "SETTLE"]

#: Seconds restore keeps looking for elements that a page renders after it has loaded.
SETTLE = 2.0

_POLL = 0.05

_HELPERS = r"""
  const XHTML = "http://www.w3.org/1999/xhtml";
  const NAMED = "[aria-label], [aria-labelledby], input, select, textarea";
  const squash = (s) => (s || "").replace(/\s+/g, " ").trim();
  const sameTypeIndex = (node) => {
    let i = 1;
    for (let s = node.previousElementSibling; s; s = s.previousElementSibling)
      if (s.localName === node.localName && s.namespaceURI === node.namespaceURI) i++;
    return i;
  };
  const labelText = (label) => {
    const copy = label.cloneNode(true);
    for (const inner of copy.querySelectorAll("input, select, textarea, button")) inner.remove();
    return copy.textContent;
  };
  const ariaName = (el) => {
    const own = squash(el.getAttribute("aria-label"));
    if (own) return own;
    const ids = el.getAttribute("aria-labelledby");
    if (ids) {
      const named = squash(ids.split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean)
        .map((n) => n.textContent).join(" "));
      if (named) return named;
    }
    return el.labels && el.labels.length ? squash(Array.from(el.labels, labelText).join(" ")) : "";
  };
  const byAria = (name) => Array.from(document.querySelectorAll(NAMED)).filter((el) => ariaName(el) === name);
  const byXpath = (path) => {
    const r = document.evaluate(path, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
    return Array.from({length: r.snapshotLength}, (_, i) => r.snapshotItem(i));
  };
  const TEXTUAL = "a, button, summary, label, option, [role=button], [role=link], [role=tab], [role=menuitem], [role=option]";
  const byText = (t) => Array.from(document.querySelectorAll(TEXTUAL)).filter((el) => squash(el.textContent) === t);
  const matches = (selector) => {
    if (selector.startsWith("xpath/")) return byXpath(selector.slice(6));
    if (selector.startsWith("aria/")) return byAria(selector.slice(5));
    if (selector.startsWith("text/")) return byText(selector.slice(5));
    if (/^[a-z]+\//.test(selector)) return [];
    return Array.from(document.querySelectorAll(selector));
  };
  const find = (selectors) => {
    for (const selector of selectors) {
      try {
        const found = matches(selector);
        if (found.length === 1) return found[0];
      } catch (e) {}
    }
    return null;
  };
"""

#: Builds an element's selectors, most robust first: ``target(el)`` (needs :data:`_HELPERS`).
_TARGET = r"""
  const unique = (selector, el) => {
    try { const all = document.querySelectorAll(selector); return all.length === 1 && all[0] === el; }
    catch (e) { return false; }
  };
  const attributeCss = (el) => {
    const tag = CSS.escape(el.localName);
    const quoted = (name) => `[${name}="${CSS.escape(el.getAttribute(name))}"]`;
    const candidates = [];
    if (el.id) candidates.push("#" + CSS.escape(el.id));
    for (const name of ["name", "data-testid", "aria-label"])
      if (el.getAttribute(name)) candidates.push(tag + quoted(name));
    if (el.getAttribute("name") && el.hasAttribute("value")) candidates.push(tag + quoted("name") + quoted("value"));
    return candidates.find((c) => unique(c, el)) || null;
  };
  const cssPath = (el) => {
    const parts = [];
    for (let node = el; node; node = node.parentElement) {
      if (node !== el && node.id && unique("#" + CSS.escape(node.id), node)) { parts.unshift("#" + CSS.escape(node.id)); break; }
      if (node === document.documentElement) { parts.unshift(":root"); break; }
      parts.unshift(`${CSS.escape(node.localName)}:nth-of-type(${sameTypeIndex(node)})`);
    }
    return parts.join(" > ");
  };
  const xpath = (el) => {
    const parts = [];
    for (let node = el; node; node = node.parentElement) {
      const name = node.namespaceURI === XHTML ? node.localName : `*[local-name()="${node.localName}"]`;
      parts.unshift(node === document.documentElement ? name : `${name}[${sameTypeIndex(node)}]`);
    }
    return "xpath//" + parts.join("/");
  };
  const target = (el) => {
    const selectors = [];
    const css = attributeCss(el);
    if (css) selectors.push(css);
    const name = ariaName(el);
    if (name && byAria(name).length === 1) selectors.push("aria/" + name);
    const words = el.matches(TEXTUAL) ? squash(el.textContent) : "";
    if (words && words.length <= 80 && byText(words).length === 1) selectors.push("text/" + words);
    const path = cssPath(el);
    if (path !== css) selectors.push(path);
    selectors.push(xpath(el));
    return selectors;
  };
"""

#: Script text defining ``find(selectors)`` and ``target(element)`` inside a function body.
ELEMENT_HELPERS = _HELPERS + _TARGET

#: Script text defining ``defaultSelection(select)``: the option indexes a select shows before anyone
#: changes it, and ``pristineValue(input)``: the value an input shows before anyone changes it (its
#: ``value`` attribute as its type sanitises it: a range input with none shows its middle).
FORM_DEFAULTS = r"""
  const pristineValue = (el) => {
    const fresh = document.createElement("input");
    for (const name of ["type", "min", "max", "step", "multiple", "value"])
      if (el.hasAttribute(name)) fresh.setAttribute(name, el.getAttribute(name));
    return fresh.value;
  };
  const defaultSelection = (select) => {
    const options = Array.from(select.options);
    let picked = options.flatMap((o, i) => (o.defaultSelected ? [i] : []));
    if (!select.multiple) {
      picked = picked.slice(-1);
      if (!picked.length && select.size <= 1) {
        const first = options.findIndex((o) => !o.disabled);
        if (first >= 0) picked = [first];
      }
    }
    return picked;
  };
"""

_CAPTURE = (
    "function () {"
    + ELEMENT_HELPERS
    + FORM_DEFAULTS
    + r"""
  const NOT_STATE = new Set(["file", "hidden", "submit", "reset", "button", "image"]);
  const fields = [], passwords = [], scrolls = [];
  for (const el of document.querySelectorAll("input, textarea, select")) {
    if (el.localName === "select") {
      const now = Array.from(el.options).flatMap((o, i) => (o.selected ? [i] : []));
      if (now.join() !== defaultSelection(el).join()) fields.push({target: target(el), kind: "select", selected: now});
    } else if (el.localName === "textarea") {
      if (el.value !== el.defaultValue) fields.push({target: target(el), kind: "value", value: el.value});
    } else if (el.type === "password") {
      if (el.value !== el.defaultValue) passwords.push(target(el)[0]);
    } else if (el.type === "checkbox" || el.type === "radio") {
      if (el.checked !== el.defaultChecked) fields.push({target: target(el), kind: "checked", checked: el.checked});
    } else if (!NOT_STATE.has(el.type) && el.value !== el.defaultValue && el.value !== pristineValue(el)) {
      fields.push({target: target(el), kind: "value", value: el.value});
    }
  }
  const hosts = Array.from(document.querySelectorAll("[contenteditable]"));
  if (document.designMode === "on" && document.body) hosts.unshift(document.body);
  for (const el of hosts) {
    if (!el.isContentEditable || (el !== document.body && el.parentElement && el.parentElement.isContentEditable)) continue;
    const html = el.innerHTML;
    if (el === document.activeElement || !/^\s*(<br>)?\s*$/.test(html))
      fields.push({target: target(el), kind: "contenteditable", value: html});
  }
  let focused = null, focusedFrame = -1;
  const active = document.activeElement;
  if (active && active !== document.body && active !== document.documentElement) {
    if (active.contentWindow) {
      for (let i = 0; i < window.length; i++) if (window[i] === active.contentWindow) focusedFrame = i;
    } else {
      focused = target(active);
    }
  }
  const page = new Set([document.documentElement, document.body, document.scrollingElement]);
  for (const el of document.querySelectorAll("*"))
    if (!page.has(el) && (el.scrollTop || el.scrollLeft)) scrolls.push({target: target(el), x: el.scrollLeft, y: el.scrollTop});
  const path = [];
  for (let w = window; w !== w.parent; w = w.parent) {
    let i = 0;
    while (i < w.parent.length && w.parent[i] !== w) i++;
    path.unshift(i);
  }
  return JSON.stringify({path, fields, passwords, focused, focusedFrame, scrolls});
}"""
)

_PATH = r"""function () {
  const path = [];
  for (let w = window; w !== w.parent; w = w.parent) {
    let i = 0;
    while (i < w.parent.length && w.parent[i] !== w) i++;
    path.unshift(i);
  }
  return path;
}"""

_READY = 'function () { return document.readyState === "complete"; }'

_RESTORE = (
    "function (fields, scrolls) {"
    + _HELPERS
    + r"""
  const fire = (el, type) => el.dispatchEvent(new Event(type, {bubbles: true, composed: type === "input"}));
  const setter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).set;
  const INERT = "script, iframe, frame, frameset, object, embed, meta, link, base";
  const inert = (html) => {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const el of template.content.querySelectorAll(INERT)) el.remove();
    for (const el of template.content.querySelectorAll("*"))
      for (const attr of Array.from(el.attributes))
        if (/^on/i.test(attr.name) || /^\s*javascript:/i.test(attr.value.replace(/[\u0000-\u001f]/g, ""))) el.removeAttribute(attr.name);
    return template;
  };
  const apply = (el, field) => {
    if (field.kind === "value") {
      const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype
        : el instanceof HTMLInputElement ? HTMLInputElement.prototype : null;
      if (!proto) return "the element is not a text field";
      if (el.value !== field.value) {
        setter(proto, "value").call(el, field.value);
        fire(el, "input");
        fire(el, "change");
      }
      return el.value === field.value ? "" : "the field did not take the value";
    }
    if (field.kind === "checked") {
      if (!(el instanceof HTMLInputElement) || (el.type !== "checkbox" && el.type !== "radio"))
        return "the element is not a checkbox or radio button";
      if (el.checked !== field.checked && (el.type === "checkbox" || field.checked)) el.click();
      if (el.checked !== field.checked) {
        setter(HTMLInputElement.prototype, "checked").call(el, field.checked);
        if (field.checked || el.type === "checkbox") { fire(el, "input"); fire(el, "change"); }
      }
      return el.checked === field.checked ? "" : "the element did not take the checked state";
    }
    if (field.kind === "select") {
      if (!(el instanceof HTMLSelectElement)) return "the element is not a select";
      const want = new Set(field.selected);
      const options = Array.from(el.options);
      const same = () => options.every((o, i) => o.selected === want.has(i));
      if (!same()) {
        const select = setter(HTMLOptionElement.prototype, "selected");
        options.forEach((o, i) => select.call(o, want.has(i)));
        fire(el, "input");
        fire(el, "change");
      }
      return same() ? "" : "the select does not have the captured options";
    }
    if (field.kind === "contenteditable") {
      if (!el.isContentEditable) return "the element is not editable";
      const content = inert(field.value);
      if (el.innerHTML !== content.innerHTML) {
        el.replaceChildren(document.importNode(content.content, true));
        el.dispatchEvent(new InputEvent("input", {bubbles: true, composed: true, inputType: "insertReplacementText"}));
      }
      return "";
    }
    return `unknown kind ${JSON.stringify(field.kind)}`;
  };
  const outcome = (items, act) => items.map((item) => {
    const el = find(item.target);
    if (!el) return "no element matches";
    try { return act(el, item); } catch (e) { return String(e); }
  });
  const applied = outcome(fields, apply);
  const scrolled = outcome(scrolls, (el, s) => {
    el.scrollTo({left: s.x, top: s.y, behavior: "instant"});
    return Math.abs(el.scrollLeft - s.x) <= 1 && Math.abs(el.scrollTop - s.y) <= 1
      ? "" : `scrolled to ${el.scrollLeft}, ${el.scrollTop} only`;
  });
  return JSON.stringify({fields: applied, scrolls: scrolled});
}"""
)

_FOCUS = (
    "function (selectors) {"
    + _HELPERS
    + r"""
  const el = find(selectors);
  if (!el) return "no element matches";
  el.focus({preventScroll: true});
  return document.activeElement === el ? "" : "the element did not take focus";
}"""
)

_MISSING = "no element matches"


class DomState(Component):
    name = "dom"
    order = 60
    description = "form values, focus and scrolled elements of each tab's page (and a DOM snapshot on request)"
    requires = ("tabs",)
    uses_tabs = True

    async def capture(self, ctx: CaptureContext) -> None:
        if "tabs" not in ctx.selected:
            ctx.uncovered("DOM state", "it is captured with the tabs, and the tabs component was not selected")
            return
        for tab, tab_state in zip(ctx.tabs, ctx.state.history.tabs):
            if tab.frames:
                await _capture_tab(ctx, tab, tab_state.dom)

    async def restore(self, ctx: RestoreContext) -> None:
        restored: list[tuple[TabState, str]] = [(t, i) for t, i in ctx.memo.get("restored_tabs", []) if t.dom.frames]
        for tab in ctx.state.history.tabs:
            if tab.dom.frames and not any(tab == t for t, _ in restored):
                why = "its tab was not restored" if "tabs" in ctx.selected else "tabs were not selected"
                ctx.report.not_restored(f"DOM state of tab {tab.navigation.current_url} was not restored: {why}")
        await gather_limited([lambda t=t, i=i: _restore_tab(ctx, t, i) for t, i in restored], STUB_CONCURRENCY)

    def count(self, state: BrowserSessionState) -> int:
        return sum(len(f.fields) for t in state.history.tabs for f in t.dom.frames)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _selectors(raw: list[str]) -> list[str]:
    """The selectors a protobuf ``string`` can hold (an id with a lone surrogate cannot be one)."""
    return [s for s in raw if _encodable(s)]


async def _capture_tab(ctx: CaptureContext, tab: Tab, dom: DOMState) -> None:
    found: dict[tuple[int, ...], tuple[Frame, dict[str, Any]]] = {}
    for frame in tab.frames:
        try:
            raw = json.loads(await frame.call(_CAPTURE))
        except (StateError, ProtocolError) as exc:
            ctx.uncovered(f"DOM state of frame {frame.url}", str(exc))
            continue
        except BrowserClosedError:
            continue  # the frame went away meanwhile
        found.setdefault(tuple(raw["path"]), (frame, raw))
    focus = _focus_path(found)
    for path, (frame, raw) in found.items():
        for password in raw["passwords"]:
            ctx.uncovered(f"password field {password} in {frame.url}", "password values are never captured")
        if raw["fields"] or raw["scrolls"] or path == focus:
            _fill_frame(ctx, dom.frames.add(url=frame.url, path=list(path)), raw, path == focus)
    if "dom_snapshot" in ctx.options:
        try:
            snapshot = await tab.session.send("DOMSnapshot.captureSnapshot", {"computedStyles": [], "includeDOMRects": True})
        except ProtocolError as exc:
            ctx.uncovered(f"DOM snapshot of {tab.url}", exc.browser_message)
        else:
            dom.snapshot = json.dumps(snapshot, separators=(",", ":")).encode("ascii")


def _focus_path(found: dict[tuple[int, ...], tuple[Frame, dict[str, Any]]]) -> tuple[int, ...] | None:
    """The path of the frame whose focused element has focus in the tab, if any."""
    path: tuple[int, ...] = ()
    while path in found:
        raw = found[path][1]
        if raw["focused"]:
            return path
        if raw["focusedFrame"] < 0:
            return None
        path += (raw["focusedFrame"],)
    return None


def _fill_frame(ctx: CaptureContext, state: FrameDOMState, raw: dict[str, Any], focused: bool) -> None:
    for field in raw["fields"]:
        selectors = _selectors(field["target"])
        if not selectors:
            ctx.uncovered(f"{field['kind']} field in {state.url}", "no selector for it can be stored")
            continue
        item = state.fields.add(kind=field["kind"], checked=field.get("checked", False), selected=field.get("selected", []))
        item.target.selectors.extend(selectors)
        if "value" in field:
            domstring(field["value"], item.value)
    if focused:
        state.focused.selectors.extend(_selectors(raw["focused"]))
    for scroll in raw["scrolls"]:
        selectors = _selectors(scroll["target"])
        if selectors:
            item = state.scrolls.add(x=scroll["x"], y=scroll["y"])
            item.target.selectors.extend(selectors)


def _name(selectors: Any) -> str:
    return selectors[0] if selectors else "(no selector)"


async def _restore_tab(ctx: RestoreContext, tab_state: TabState, target_id: str) -> None:
    where = f"tab {tab_state.navigation.current_url}"
    try:
        session = await ctx.connection.attach(target_id)
    except (ProtocolError, BrowserClosedError) as exc:
        ctx.report.not_restored(f"DOM state of {where} was not restored: {exc}")
        return
    tab = Tab(target_id, tab_state.navigation.current_url, "", session)
    try:
        restored = await _restore_frames(ctx, tab, tab_state.dom, where)
    except (StateError, ProtocolError, BrowserClosedError) as exc:
        ctx.report.not_restored(f"DOM state of {where} was not restored: {exc}")
        return
    finally:
        await tab.release()
    if restored:
        ctx.report.count("dom", restored)


async def _restore_frames(ctx: RestoreContext, tab: Tab, dom: DOMState, where: str) -> int:
    """Restore every frame's fields and scrolls, then focus; the number of fields restored."""
    deadline = trio.current_time() + ctx.timeout
    tree = (await tab.session.send("Page.getFrameTree"))["frameTree"]["frame"]
    if not await _wait_ready(Frame(tab.session, tree["id"], tree.get("url", "")), deadline):
        ctx.report.note(f"{where} did not finish loading within {ctx.timeout:g}s; its DOM state was restored as far as it could be")
    await tab.load_frames()
    frames: dict[tuple[int, ...], Frame] = {}
    for frame in tab.frames:
        try:
            frames.setdefault(tuple(await frame.call(_PATH)), frame)
        except (StateError, ProtocolError):
            continue  # a frame without a document to run in
    restored = 0
    focus: tuple[Frame, FrameDOMState] | None = None
    for state in dom.frames:
        frame = frames.get(tuple(state.path))
        label = f"frame {state.url}" + (f" ({'/'.join(map(str, state.path))})" if state.path else "")
        if frame is None:
            ctx.report.not_restored(f"DOM state of {label} in {where} was not restored: the frame is not there")
            continue
        if urldefrag(frame.url).url != urldefrag(state.url).url:
            ctx.report.not_restored(f"DOM state of {label} in {where} was not restored: the frame shows {frame.url}")
            continue
        try:
            await _wait_ready(frame, deadline)
            restored += await _restore_frame(ctx, frame, state, label, deadline)
        except (StateError, ProtocolError) as exc:
            ctx.report.not_restored(f"DOM state of {label} in {where} was not restored: {exc}")
            continue
        if state.focused.selectors:
            focus = (frame, state)
    if focus:
        frame, state = focus
        try:
            problem = await frame.call(_FOCUS, list(state.focused.selectors))
        except (StateError, ProtocolError) as exc:
            problem = str(exc)
        if problem:
            ctx.report.note(f"focus on {_name(state.focused.selectors)} in {state.url}: {problem}")
    return restored


async def _wait_ready(frame: Frame, deadline: float) -> bool:
    """Wait until the frame's document has loaded (``readyState`` "complete"), at most until ``deadline``."""
    while not await frame.call(_READY):
        if trio.current_time() >= deadline:
            return False
        await trio.sleep(_POLL)
    return True


async def _restore_frame(ctx: RestoreContext, frame: Frame, state: FrameDOMState, label: str, deadline: float) -> int:
    """Restore one frame's fields and scrolls; the number of fields restored.

    Elements not found at first are looked for again for :data:`SETTLE` seconds, for
    pages that render their forms after they have loaded.
    """
    fields = [
        {
            "target": list(f.target.selectors),
            "kind": f.kind,
            "value": text(f.value),
            "checked": f.checked,
            "selected": list(f.selected),
        }
        for f in state.fields
    ]
    scrolls = [{"target": list(s.target.selectors), "x": s.x, "y": s.y} for s in state.scrolls]
    settle = min(deadline, trio.current_time() + SETTLE)
    restored = 0
    while True:
        result = json.loads(await frame.call(_RESTORE, fields, scrolls))
        restored += sum(1 for problem in result["fields"] if not problem)
        missing = [f for f, problem in zip(fields, result["fields"]) if problem == _MISSING]
        missing_scrolls = [s for s, problem in zip(scrolls, result["scrolls"]) if problem == _MISSING]
        for item, problem in [*zip(fields, result["fields"]), *zip(scrolls, result["scrolls"])]:
            if problem and problem != _MISSING:
                kind = item.get("kind", "scroll")
                ctx.report.not_restored(f"DOM {kind} of {_name(item['target'])} in {label}: {problem}")
        fields, scrolls = missing, missing_scrolls
        if not (fields or scrolls) or trio.current_time() >= settle:
            break
        await trio.sleep(_POLL * 2)
    for item in [*fields, *scrolls]:
        kind = item.get("kind", "scroll")
        ctx.report.not_restored(f"DOM {kind} of {_name(item['target'])} in {label}: {_MISSING} ({', '.join(item['target'])})")
    return restored
