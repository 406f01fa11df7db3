"""The scripts psp_cdp runs inside pages, and calling them with arguments of any size.

``clone.js`` is the structured-clone-v1 codec (docs/structured-clone.md); ``idb.js``
reads and writes IndexedDB with it. A library is installed once per isolated world
(a global set on first use). Arguments cross as protocol values (the transport carries
unpaired surrogates exactly, see :func:`psp_cdp.cdp.wire_json`); a result text longer than
:data:`SLICE` is kept in the page and fetched in slices, so no protocol message
outgrows the browser's limit.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any, Protocol

__all__ = ["CLONE_ENCODING", "CLONE", "SLICE", "Library", "clone_library", "idb_library"]

#: SerializedValue.encoding of values written by clone.js.
CLONE_ENCODING = "structured-clone-v1"

#: Longest result text fetched in one message, in UTF-16 code units.
SLICE = 8 * 1024 * 1024

_SOURCES = files(__package__) / "js"


class _Callable(Protocol):
    async def call(self, declaration: str, *args: Any) -> Any: ...


def _source(name: str) -> str:
    return (_SOURCES / name).read_text(encoding="utf-8")


_TAKE = """function (id, start, end) {
  const text = globalThis.__pspStash.get(id);
  if (end >= text.length) globalThis.__pspStash.delete(id);
  return text.slice(start, end);
}"""


class Library:
    """A script library installed as ``globalThis[name]`` and called by operation name."""

    def __init__(self, global_name: str, expression: str) -> None:
        self.declaration = (
            "async function (op, ...args) {\n"
            f"  const L = (globalThis.{global_name} ??= {expression});\n"
            "  const out = await L[op](...args);\n"
            f"  if (typeof out !== 'string' || out.length <= {SLICE}) return out;\n"
            "  const stash = (globalThis.__pspStash ??= new Map()), id = String(stash.size + Math.random());\n"
            "  stash.set(id, out);\n"
            "  return {stash: id, length: out.length};\n"
            "}"
        )

    async def call(self, target: _Callable, op: str, *args: Any) -> Any:
        """``op(...args)`` in ``target``'s isolated world; a long text result is fetched in slices."""
        out = await target.call(self.declaration, op, *args)
        if isinstance(out, dict) and "stash" in out:
            parts = []
            for start in range(0, int(out["length"]), SLICE):
                parts.append(await target.call(_TAKE, out["stash"], start, start + SLICE))
            return "".join(parts)
        return out

    async def call_json(self, target: _Callable, op: str, *args: Any) -> Any:
        """Like :meth:`call`, for operations that return JSON text: the parsed value."""
        return json.loads(await self.call(target, op, *args))


_CLONE = "(\n" + _source("clone.js") + "\n)"

#: An expression for the structured-clone-v1 codec of the current world (installed once).
CLONE = f"(globalThis.__pspClone ??= {_CLONE})"

#: The structured-clone-v1 codec: ``encode(value)``, ``decode(text)``.
clone_library = Library("__pspClone", _CLONE)

#: IndexedDB access: ``schema()``, ``read(...)``, ``clear()``, ``create(...)``, ``write(...)``, ...
idb_library = Library("__pspIdb", f"(\n{_source('idb.js')}\n)({CLONE})")
