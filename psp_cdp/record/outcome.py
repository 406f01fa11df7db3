"""How a recording ended, and whether a replay ended the same way.

When a recording stops, the recorder keeps the end state of each tab still open
(:class:`TabEndState`: the main frame's URL and title, every form control's state, a
digest of each localStorage and sessionStorage value of its origin) and of the browser
context's cookies (a digest of each value). A replay reads the same from the tabs it
replayed into and :func:`differences` says, one line each, where they differ. Values are
compared by digest and never printed: a difference names the tab, the field or the key.

The digest (:func:`digest`, and ``digest`` in :data:`END_STATE`, which exported scripts
run too) is 64 bits over a string's UTF-16 code units, two 32-bit multiply-xorshift
lanes: quick on megabyte values, and the same in Python and in the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..cdp import CdpSession
from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import FormField, RecordingState, TabEndState, ValueDigest, domstring, text
from ..state.dom import ELEMENT_HELPERS
from ..state.pages import BrowserContext, Frame

__all__ = ["DIGEST", "END_STATE", "cookie_digests", "differences", "digest", "read_end_state"]

_M = 0xFFFFFFFF

#: The digest as a JavaScript function expression.
DIGEST = r"""(s) => {
  let h1 = 0xdeadbeef ^ s.length, h2 = 0x41c6ce57 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 >>> 0).toString(16).padStart(8, "0") + (h1 >>> 0).toString(16).padStart(8, "0");
}"""

#: Most form controls and storage keys an end state keeps per tab.
MAX_FIELDS = 300
MAX_KEYS = 10000

#: A function, run in a frame (``this`` unused): the frame's end state as JSON text.
END_STATE = (
    "function () {"
    + ELEMENT_HELPERS
    + "  const digest = " + DIGEST + ";\n"
    + r"""
  const SKIP = new Set(["hidden", "submit", "reset", "button", "image"]);
  const fields = [];
  for (const el of document.querySelectorAll("input, textarea, select, [contenteditable]")) {
    if (fields.length >= __MAX_FIELDS__) break;
    let field = null;
    if (el instanceof HTMLSelectElement) {
      field = {kind: "select", selected: Array.from(el.options).flatMap((o, i) => (o.selected ? [i] : []))};
    } else if (el instanceof HTMLTextAreaElement) {
      field = {kind: "value", value: el.value};
    } else if (el instanceof HTMLInputElement) {
      if (SKIP.has(el.type)) continue;
      if (el.type === "checkbox" || el.type === "radio") field = {kind: "checked", checked: el.checked};
      else if (el.type === "password") field = {kind: "password", value: digest(el.value)};
      else if (el.type === "file") field = {kind: "files", value: Array.from(el.files || [], (f) => f.name).join("\n")};
      else field = {kind: "value", value: el.value};
    } else if (el.isContentEditable && !(el.parentElement && el.parentElement.isContentEditable)) {
      field = {kind: "contenteditable", value: digest(el.innerHTML)};
    }
    if (field) { field.target = target(el); fields.push(field); }
  }
  const store = (name) => {
    const out = [];
    try {
      const s = window[name];
      for (let i = 0; i < s.length && i < __MAX_KEYS__; i++) { const k = s.key(i); out.push([k, digest(s.getItem(k))]); }
    } catch (e) { return []; }
    return out;
  };
  return JSON.stringify({url: location.href, title: document.title, fields,
                         local: store("localStorage"), session: store("sessionStorage")});
}""".replace("__MAX_FIELDS__", str(MAX_FIELDS)).replace("__MAX_KEYS__", str(MAX_KEYS))
)


def digest(value: str) -> str:
    """The 16-hex-digit digest of ``value``'s UTF-16 code units (lone surrogates included)."""
    units = value.encode("utf-16-le", "surrogatepass")
    count = len(units) // 2
    h1, h2 = 0xDEADBEEF ^ count, 0x41C6CE57 ^ count
    for i in range(0, len(units), 2):
        c = units[i] | units[i + 1] << 8
        h1 = ((h1 ^ c) * 2654435761) & _M
        h2 = ((h2 ^ c) * 1597334677) & _M
    h1 = (((h1 ^ (h1 >> 16)) * 2246822507) & _M) ^ (((h2 ^ (h2 >> 13)) * 3266489909) & _M)
    h2 = (((h2 ^ (h2 >> 16)) * 2246822507) & _M) ^ (((h1 ^ (h1 >> 13)) * 3266489909) & _M)
    return f"{h2:08x}{h1:08x}"


def _digests(pairs: Iterable[Any]) -> list[ValueDigest]:
    out = []
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str):
            out.append(ValueDigest(key=domstring(pair[0]), digest=pair[1][:16]))
    return out


def _valid_selectors(raw: Any) -> list[str]:
    selectors = []
    for selector in raw if isinstance(raw, list) else []:
        if isinstance(selector, str):
            try:
                selector.encode("utf-8")
            except UnicodeEncodeError:
                continue
            selectors.append(selector)
    return selectors


def end_state_from(raw: Mapping[str, Any], tab: int) -> TabEndState:
    """A :class:`TabEndState` from what :data:`END_STATE` returned (parsed)."""
    end = TabEndState(tab=tab, url=str(raw.get("url", "")))
    domstring(str(raw.get("title", "")), end.title)
    for field in raw.get("fields", [])[:MAX_FIELDS]:
        if not isinstance(field, dict):
            continue
        item = end.fields.add(kind=str(field.get("kind", "")), checked=bool(field.get("checked", False)))
        item.selected.extend(i for i in field.get("selected", []) if isinstance(i, int) and i >= 0)
        item.target.selectors.extend(_valid_selectors(field.get("target")))
        if "value" in field:
            domstring(str(field["value"]), item.value)
    end.local_storage.extend(_digests(raw.get("local", [])[:MAX_KEYS]))
    end.session_storage.extend(_digests(raw.get("session", [])[:MAX_KEYS]))
    return end


async def read_end_state(session: CdpSession, tab: int) -> TabEndState:
    """The end state of the tab behind ``session`` (its main frame); StateError if it cannot be read."""
    try:
        tree = (await session.send("Page.getFrameTree"))["frameTree"]["frame"]
        raw = await Frame(session, tree["id"], tree.get("url", "")).call(END_STATE)
    except (ProtocolError, BrowserClosedError, KeyError) as exc:
        raise StateError(f"cannot read the end state of tab {tab}: {exc}") from None
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        raise StateError(f"cannot read the end state of tab {tab}: not JSON") from None
    if not isinstance(parsed, dict):
        raise StateError(f"cannot read the end state of tab {tab}: not an object")
    return end_state_from(parsed, tab)


def _cookie_key(cookie: Mapping[str, Any]) -> str:
    return f"{cookie.get('name', '')} {cookie.get('domain', '')}{cookie.get('path', '')}"


async def cookie_digests(context: BrowserContext) -> list[ValueDigest]:
    """A digest of each cookie of ``context``, keyed by name, domain and path."""
    result = await context.connection.send("Storage.getCookies", context.context_params())
    out = []
    for cookie in sorted(result.get("cookies", []), key=_cookie_key):
        out.append(ValueDigest(key=domstring(_cookie_key(cookie)), digest=digest(str(cookie.get("value", "")))))
    return out


def _short(value: str, limit: int = 80) -> str:
    return json.dumps(value if len(value) <= limit else value[: limit - 1] + "…", ensure_ascii=False)


def _compare_digests(where: str, recorded: Iterable[ValueDigest], replayed: Iterable[ValueDigest]) -> list[str]:
    want = {text(d.key): d.digest for d in recorded}
    got = {text(d.key): d.digest for d in replayed}
    out = []
    for key in sorted(want.keys() | got.keys()):
        if key not in got:
            out.append(f"{where} {_short(key)} is missing")
        elif key not in want:
            out.append(f"{where} {_short(key)} was not there when the recording stopped")
        elif want[key] != got[key]:
            out.append(f"{where} {_short(key)} has another value")
    return out


def _field_key(field: FormField) -> str:
    return field.target.selectors[0] if field.target.selectors else "(no selector)"


def _same_field(a: FormField, b: FormField) -> bool:
    return a.kind == b.kind and a.checked == b.checked and list(a.selected) == list(b.selected) and text(a.value) == text(b.value)


def _compare_tab(recorded: TabEndState, replayed: TabEndState) -> list[str]:
    where = f"tab {recorded.tab}"
    out = []
    if recorded.url != replayed.url:
        out.append(f"{where} shows {replayed.url}, recorded {recorded.url}")
    if text(recorded.title) != text(replayed.title):
        out.append(f"{where} has the title {_short(text(replayed.title))}, recorded {_short(text(recorded.title))}")
    want = {_field_key(f): f for f in recorded.fields}
    got = {_field_key(f): f for f in replayed.fields}
    for key in [k for k in want if k not in got]:
        out.append(f"{where}: field {key} is not on the page")
    for key in [k for k in got if k not in want]:
        out.append(f"{where}: field {key} was not on the recorded page")
    for key in [k for k in want if k in got and not _same_field(want[k], got[k])]:
        out.append(f"{where}: field {key} holds another {'selection' if want[key].kind == 'select' else 'value'}")
    out += _compare_digests(f"{where}: localStorage key", recorded.local_storage, replayed.local_storage)
    out += _compare_digests(f"{where}: sessionStorage key", recorded.session_storage, replayed.session_storage)
    return out


def differences(recording: RecordingState, ends: Mapping[int, TabEndState], cookies: Iterable[ValueDigest]) -> list[str]:
    """Where the replayed end state (``ends`` by tab index, ``cookies``) differs from the recorded one.

    An empty list means it ended as recorded; a recording with no end state (``ended``
    false) has nothing to compare and gives an empty list too.
    """
    if not recording.ended:
        return []
    out = []
    recorded = {end.tab: end for end in recording.ends}
    for tab in sorted(recorded.keys() - ends.keys()):
        out.append(f"tab {tab} ({recorded[tab].url}) is not open")
    for tab in sorted(ends.keys() - recorded.keys()):
        out.append(f"tab {tab} ({ends[tab].url}) is open; it was closed when the recording stopped")
    for tab in sorted(recorded.keys() & ends.keys()):
        out += _compare_tab(recorded[tab], ends[tab])
    out += _compare_digests("cookie", recording.cookies, cookies)
    return out
