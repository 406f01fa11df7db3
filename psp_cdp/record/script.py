"""The script the recorder puts into every frame of every recorded tab.

It runs in an isolated world (the page cannot see it or its binding) and listens, in the
capture phase on the window, to trusted events only: what the page dispatches itself is
not the user's doing and will happen again on replay. Each event goes to the recorder
through the binding as one JSON text: ``type``, ``time`` (milliseconds since the Unix
epoch, from ``performance.timeOrigin`` and the event's own ``timeStamp``, so it does not
depend on when the recorder reads it), ``frame`` (path in the frame tree), ``selectors``
and ``data`` as docs/recording.md lists them.
"""

from __future__ import annotations

from ..state.dom import ELEMENT_HELPERS

__all__ = ["BINDING", "SWITCH_OFF", "WORLD", "recorder_script"]

#: The isolated world the script runs in and the binding it reports through.
WORLD = "__psp_cdp_recorder"
BINDING = "__pspRecord"

_SCRIPT = r"""
(() => {
  const TOKEN = "__TOKEN__";
  if (globalThis.__pspRecording === TOKEN) return;
  globalThis.__pspRecording = TOKEN;
""" + ELEMENT_HELPERS + r"""
  const DOM = __DOM__;
  const report = (type, el, data, time) => {
    if (globalThis.__pspRecording !== TOKEN) return;  // a later recorder took over this world
    const event = {type, time: time === undefined ? performance.timeOrigin + performance.now() : time,
                   frame: framePath(), selectors: el ? target(el) : [], data};
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
  const at = (e) => performance.timeOrigin + e.timeStamp;
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
  const on = (type, handler, options) => window.addEventListener(type, (e) => {
    if (!e.isTrusted) return;
    try { handler(e); } catch (err) {}
  }, Object.assign({capture: true}, options || {}));

  on("click", (e) => { const el = element(e); if (el) report("click", el, pointer(e, el), at(e)); });
  on("auxclick", (e) => { const el = element(e); if (el) report("click", el, pointer(e, el), at(e)); });
  on("dblclick", (e) => { const el = element(e); if (el) report("dblclick", el, pointer(e, el), at(e)); });
  const typed = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return "";
    if (e.key === "Enter") return "\r";
    return Array.from(e.key).length === 1 ? e.key : "";
  };
  for (const type of ["keydown", "keyup"])
    on(type, (e) => {
      report(type, origin(e), {key: e.key, code: e.code, keyCode: e.keyCode, location: e.location,
                               modifiers: modifiers(e), repeat: e.repeat, text: type === "keydown" ? typed(e) : ""}, at(e));
    });
  const valueOf = (el) => (el.isContentEditable ? el.innerHTML : el.value);
  on("input", (e) => {
    const el = origin(e);
    if (!el || (!("value" in el) && !el.isContentEditable)) return;
    if (el instanceof HTMLSelectElement || (el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio"))) return;
    report("input", el, {value: valueOf(el), inputType: e.inputType || "", data: e.data == null ? null : e.data}, at(e));
  });
  on("change", (e) => {
    const el = origin(e);
    if (!el) return;
    if (el instanceof HTMLSelectElement) {
      const picked = Array.from(el.options).flatMap((o, i) => (o.selected ? [i] : []));
      report("change", el, {kind: "select", selected: picked, values: picked.map((i) => el.options[i].value)}, at(e));
    } else if (el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio")) {
      report("change", el, {kind: "checked", checked: el.checked}, at(e));
    } else if ("value" in el) {
      report("change", el, {kind: "value", value: el.value}, at(e));
    }
  });
  on("focusin", (e) => { const el = origin(e); if (el && el !== document.body) report("focus", el, {}, at(e)); });
  on("wheel", (e) => {
    const el = origin(e);
    if (el) report("wheel", el, {x: e.clientX, y: e.clientY, deltaX: e.deltaX, deltaY: e.deltaY,
                                 deltaMode: e.deltaMode, modifiers: modifiers(e)}, at(e));
  }, {passive: true});
  const pending = new Map();
  const SCROLL_EVERY = 100;
  const scrolled = (node) => {
    const doc = node === document || node === document.documentElement || node === document.scrollingElement;
    const el = doc ? null : node;
    const position = doc ? {x: window.scrollX, y: window.scrollY} : {x: el.scrollLeft, y: el.scrollTop};
    return [el, position];
  };
  on("scroll", (e) => {
    const node = e.target;
    if (pending.has(node)) return;
    const [el, first] = scrolled(node);
    report("scroll", el, first, at(e));
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
    return _SCRIPT.replace("__DOM__", "true" if dom else "false").replace("__BINDING__", BINDING).replace("__TOKEN__", token)
