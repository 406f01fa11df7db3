"""The script the recorder puts into every frame of every recorded tab.

It runs in an isolated world (the page cannot see it or its binding) and listens in the
capture phase on the window. Input (clicks, keys, the wheel, focus, scrolling) counts
when it is trusted: what the page dispatches itself is not the user's doing and happens
again on replay. Value changes of form controls count whoever made them (a person,
Playwright's ``fill`` or ``select_option``, Selenium, a script run over CDP) except the
page's own answer to an event still being dispatched; before a click, an Enter or a
submit, values that changed with no event at all are reported too (``source: "sync"``).
A file input's files are reported with their bytes, up to :data:`MAX_FILE_BYTES` each
and :data:`MAX_FILES_BYTES` per change.

Each event goes to the recorder through the binding as one JSON text: ``type``,
``time`` (milliseconds since the Unix epoch, taken when the page handled the event, so
events keep the order the page saw them in), ``frame`` (path in the frame tree),
``document`` (a token of the document it happened in), ``selectors`` and ``data`` as
docs/recording.md lists them.
"""

from __future__ import annotations

import re

from ..state.dom import ELEMENT_HELPERS, FORM_DEFAULTS

__all__ = ["BINDING", "MAX_FILES_BYTES", "MAX_FILE_BYTES", "SWITCH_OFF", "WORLD", "recorder_script"]

#: Bytes of one file of a file input kept in the recording; a bigger one is kept without them.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Bytes of all files of one file input change kept in the recording.
MAX_FILES_BYTES = 32 * 1024 * 1024

#: The isolated world the script runs in and the binding it reports through.
WORLD = "__psp_cdp_recorder"
BINDING = "__pspRecord"

_SCRIPT = r"""
(() => {
  const TOKEN = "__TOKEN__";
  if (globalThis.__pspRecording === TOKEN) return;
  globalThis.__pspRecording = TOKEN;
""" + ELEMENT_HELPERS + FORM_DEFAULTS + r"""
  const DOM = __DOM__;
  const MAX_FILE = __MAX_FILE__, MAX_FILES = __MAX_FILES__, MAX_CONTROLS = 1000;
  // This document, for the recorder: events of one document carry the same token.
  const DOCUMENT = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const now = () => performance.timeOrigin + performance.now();
  const report = (type, el, data, time) => {
    if (globalThis.__pspRecording !== TOKEN) return;  // a later recorder took over this world
    const event = {type, time: time === undefined ? now() : time, frame: framePath(), document: DOCUMENT,
                   selectors: el ? target(el) : [], data};
    try { __BINDING__(JSON.stringify(event)); } catch (e) {}
  };
  const framePath = () => {
    const path = [];
    try {
      for (let w = window; w !== w.parent; w = w.parent) {
        let i = 0;
        while (i < w.parent.length && w.parent[i] !== w) i++;
        path.unshift(i);
      }
    } catch (e) {}
    return path;
  };
  const modifiers = (e) => (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
  const INTERACTIVE = "a, button, input, select, textarea, label, summary, option, [role=button], [role=link], [role=checkbox], [role=tab], [role=menuitem], [contenteditable]";
  const origin = (e) => {
    const node = e.composedPath()[0] || e.target;
    return node instanceof Element ? node : node && node.parentElement;
  };
  const element = (e) => {
    const el = origin(e);
    if (!el) return null;
    return (el.closest && el.closest(INTERACTIVE)) || el;
  };
  const BUTTONS = ["left", "middle", "right"];
  const pointer = (e, el) => {
    const box = el.getBoundingClientRect();
    return {button: BUTTONS[e.button] || "left", count: e.detail || 1, modifiers: modifiers(e),
            x: e.clientX, y: e.clientY, offsetX: e.clientX - box.left, offsetY: e.clientY - box.top};
  };
  // Events being dispatched now, newest last: a value change made while one of them is still
  // being dispatched is the page's answer to it, which a replay of that event makes again.
  const seen = [];
  const nested = (e) => seen.some((other) => other !== e && other.eventPhase !== 0);
  const track = (e) => {
    seen.push(e);
    if (seen.length > 16) seen.splice(0, seen.length - 16);
  };
  // Times are taken when the page handles the event, so events keep the order the page saw
  // them in (a mousedown's focus before its click), whatever the input's own timestamps say.
  const on = (type, handler, options) => window.addEventListener(type, (e) => {
    const time = now();
    track(e);
    if (!e.isTrusted && !(options && options.untrusted)) return;
    try { handler(e, time); } catch (err) {}
  }, Object.assign({capture: true}, options || {}));
  for (const type of ["mousedown", "mouseup", "pointerdown", "pointerup", "keypress", "beforeinput", "focusout", "blur",
                      "focus", "submit", "reset", "paste", "cut", "drop", "compositionend", "touchstart", "touchend"])
    window.addEventListener(type, track, {capture: true, passive: true});

  // The last state of each form control the recording knows of; a control it does not know
  // of is taken to hold what the page's HTML gave it.
  const known = new WeakMap();
  const TEXTLIKE = new Set(["checkbox", "radio", "file", "hidden", "submit", "reset", "button", "image"]);
  const isText = (el) => el instanceof HTMLTextAreaElement || (el instanceof HTMLInputElement && !TEXTLIKE.has(el.type));
  const selection = (el) => Array.from(el.options).flatMap((o, i) => (o.selected ? [i] : []));
  const stateOf = (el) => (el instanceof HTMLSelectElement ? selection(el).join() : el.value);
  const defaultOf = (el) => (el instanceof HTMLSelectElement ? defaultSelection(el).join()
    : el instanceof HTMLInputElement ? pristineValue(el) : el.defaultValue);
  const selectData = (el) => {
    const picked = selection(el);
    return {kind: "select", selected: picked, values: picked.map((i) => el.options[i].value)};
  };
  const remember = (el) => { if (isText(el) || el instanceof HTMLSelectElement) known.set(el, stateOf(el)); };
  // Before a click, an Enter or a submit: values the recording has not seen change (a script
  // that set .value and told nobody), so a replay sends the same form. They take the time of
  // the event they come before, and are reported first.
  const sync = (except, time) => {
    const controls = document.querySelectorAll("input, textarea, select");
    for (let i = 0; i < controls.length && i < MAX_CONTROLS; i++) {
      const el = controls[i];
      if (el === except || !(isText(el) || el instanceof HTMLSelectElement)) continue;
      const last = known.has(el) ? known.get(el) : defaultOf(el);
      if (stateOf(el) === last) continue;
      remember(el);
      if (el instanceof HTMLSelectElement) report("change", el, Object.assign(selectData(el), {source: "sync"}), time);
      else report("input", el, {value: el.value, inputType: "", data: null, source: "sync"}, time);
    }
  };
  // What made a value change: "key" (a key press the recording holds typed it), "user" (the
  // browser, with no key: Input.insertText, a paste, a drop, an IME), "script" (untrusted).
  // A change commits the value its last input made: it has that input's source.
  let keying = false;
  const sources = new WeakMap();
  const source = (e) => (!e.isTrusted ? "script" : keying ? "key" : "user");
  const committed = (e, el) => (!e.isTrusted ? "script" : sources.get(el) || source(e));

  on("click", (e, time) => { const el = element(e); sync(el, time); if (el) report("click", el, pointer(e, el), time); });
  on("auxclick", (e, time) => { const el = element(e); if (el) report("click", el, pointer(e, el), time); });
  on("dblclick", (e, time) => { const el = element(e); if (el) report("dblclick", el, pointer(e, el), time); });
  on("submit", (e, time) => sync(null, time), {untrusted: true});
  const typed = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return "";
    if (e.key === "Enter") return "\r";
    return Array.from(e.key).length === 1 ? e.key : "";
  };
  for (const type of ["keydown", "keyup"])
    on(type, (e, time) => {
      if (type === "keydown") {
        // A key's own edits come in the same task as its keydown.
        keying = true;
        setTimeout(() => { keying = false; }, 0);
        if (e.key === "Enter") sync(origin(e), time);
      }
      report(type, origin(e), {key: e.key, code: e.code, keyCode: e.keyCode, location: e.location,
                               modifiers: modifiers(e), repeat: e.repeat, text: type === "keydown" ? typed(e) : ""}, time);
    });
  const valueOf = (el) => (el.isContentEditable ? el.innerHTML : el.value);
  // Value changes count whoever made them (a person, Playwright's fill or select_option,
  // Selenium, a script run over CDP), but not the page's own answer to an event: replaying
  // that event makes it again.
  on("input", (e, time) => {
    const el = origin(e);
    if (!el || (!("value" in el) && !el.isContentEditable)) return;
    if (el instanceof HTMLSelectElement || (el instanceof HTMLInputElement && ["checkbox", "radio", "file"].includes(el.type))) return;
    if (!e.isTrusted && nested(e)) { remember(el); return; }
    remember(el);
    sources.set(el, source(e));
    report("input", el, {value: valueOf(el), inputType: e.inputType || "", data: e.data == null ? null : e.data, source: source(e)}, time);
  }, {untrusted: true});
  const files = async (el, time, from) => {
    const list = Array.from(el.files || []);
    let room = MAX_FILES;
    const described = [];
    for (const file of list) {
      const item = {name: file.name, type: file.type, size: file.size, lastModified: file.lastModified};
      if (file.size > MAX_FILE || file.size > room) {
        item.omitted = true;
      } else {
        room -= file.size;
        const bytes = new Uint8Array(await file.arrayBuffer());
        let binary = "";
        for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        item.data = btoa(binary);
      }
      described.push(item);
    }
    report("change", el, {kind: "files", files: described, source: from}, time);
  };
  on("change", (e, time) => {
    const el = origin(e);
    if (!el) return;
    if (!e.isTrusted && nested(e)) { remember(el); return; }
    if (el instanceof HTMLInputElement && el.type === "file") {
      files(el, time, source(e)).catch(() => report("change", el, {kind: "files", files: [], failed: true, source: source(e)}, time));
      return;
    }
    remember(el);
    if (el instanceof HTMLSelectElement) {
      report("change", el, Object.assign(selectData(el), {source: source(e)}), time);
    } else if (el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio")) {
      report("change", el, {kind: "checked", checked: el.checked, source: source(e)}, time);
    } else if ("value" in el) {
      report("change", el, {kind: "value", value: el.value, source: committed(e, el)}, time);
    }
  }, {untrusted: true});
  on("focusin", (e, time) => { const el = origin(e); if (el && el !== document.body) report("focus", el, {}, time); });
  on("wheel", (e, time) => {
    const el = origin(e);
    if (el) report("wheel", el, {x: e.clientX, y: e.clientY, deltaX: e.deltaX, deltaY: e.deltaY,
                                 deltaMode: e.deltaMode, modifiers: modifiers(e)}, time);
  }, {passive: true});
  const pending = new Map();
  const SCROLL_EVERY = 100;
  const scrolled = (node) => {
    const doc = node === document || node === document.documentElement || node === document.scrollingElement;
    const el = doc ? null : node;
    const position = doc ? {x: window.scrollX, y: window.scrollY} : {x: el.scrollLeft, y: el.scrollTop};
    return [el, position];
  };
  on("scroll", (e, time) => {
    const node = e.target;
    if (pending.has(node)) return;
    const [el, first] = scrolled(node);
    report("scroll", el, first, time);
    pending.set(node, setTimeout(() => {
      pending.delete(node);
      const [again, last] = scrolled(node);
      if (last.x !== first.x || last.y !== first.y) report("scroll", again, last);
    }, SCROLL_EVERY));
  }, {passive: true});

  if (DOM) {
    const MAX_HTML = 2000, MAX_RECORDS = 200;
    const describe = (node) => {
      const el = node instanceof Element ? node : node.parentElement;
      return el ? target(el).slice(-2, -1)[0] || "" : "";
    };
    const observe = () => {
      const observer = new MutationObserver((mutations) => {
        const time = performance.timeOrigin + performance.now();
        const records = [];
        for (const m of mutations.slice(0, MAX_RECORDS)) {
          const record = {type: m.type, target: describe(m.target)};
          if (m.type === "childList") {
            record.added = Array.from(m.addedNodes, (n) => (n.outerHTML !== undefined ? n.outerHTML : n.textContent || "").slice(0, MAX_HTML));
            record.removed = Array.from(m.removedNodes, (n) => n.nodeName);
          } else if (m.type === "attributes") {
            record.name = m.attributeName;
            record.value = m.target.getAttribute(m.attributeName);
          } else {
            record.value = (m.target.textContent || "").slice(0, MAX_HTML);
          }
          records.push(record);
        }
        report("mutation", null, {records, truncated: mutations.length > MAX_RECORDS}, time);
      });
      observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
      globalThis.__pspObserver = observer;
    };
    observe();
  }
})();
"""


#: Run in the recorder's world of a frame when the recording ends: its listeners go quiet.
SWITCH_OFF = "globalThis.__pspRecording = null; if (globalThis.__pspObserver) globalThis.__pspObserver.disconnect();"


def recorder_script(*, dom: bool, token: str) -> str:
    """The script's source: ``dom`` also observes DOM mutations; ``token`` names this recorder."""
    values = {"__DOM__": "true" if dom else "false", "__BINDING__": BINDING, "__TOKEN__": token,
              "__MAX_FILE__": str(MAX_FILE_BYTES), "__MAX_FILES__": str(MAX_FILES_BYTES)}
    return re.sub("|".join(values), lambda m: values[m.group(0)], _SCRIPT)
