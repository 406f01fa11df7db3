"""Reading structured-clone-v1 values (docs/structured-clone.md) in Python.

The browser writes and reads these values itself; Python reads them only to look
inside (token discovery, exports). :func:`to_python` turns one into plain Python
data, iteratively, keeping shared references and cycles as shared objects.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import SnapshotError

__all__ = ["ENCODING", "Opaque", "to_python", "walk_strings"]

ENCODING = "structured-clone-v1"

_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


@dataclass(eq=False)
class Opaque:
    """A value with no plain Python counterpart (Blob, Date, Map, typed array, ...): its kind and fields."""

    kind: str
    fields: list[Any] = field(default_factory=list)


def _load(data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise SnapshotError(f"not a structured-clone-v1 value: {exc}") from None
    if not isinstance(value, dict) or value.get("v") != 1 or not isinstance(value.get("n"), list):
        raise SnapshotError("not a structured-clone-v1 value")
    return value


def to_python(data: bytes | str) -> Any:
    """The value as Python data: dict, list, str, int/float, bool, None, ``Opaque`` for the rest.

    ``undefined`` becomes ``None``; BigInts become ints; Maps and Sets become ``Opaque``
    whose fields are their children.
    """
    value = _load(data)
    nodes: list[Any] = value["n"]
    objects: list[Any] = []
    for node in nodes:
        kind = node[0]
        objects.append({} if kind == "Object" else [] if kind in ("Array", "SparseArray") else Opaque(kind))

    def child(c: Any) -> Any:
        if not isinstance(c, list):
            return c
        if len(c) == 1 and isinstance(c[0], int):
            return objects[c[0]]
        if c[0] == "u":
            return None
        if c[0] == "n":
            return int(c[1])
        if c[0] in _NUMBERS:
            return _NUMBERS[c[0]]
        raise SnapshotError(f"unknown structured-clone child {c!r}")

    for node, target in zip(nodes, objects):
        kind = node[0]
        if kind == "Object":
            target.update((node[i], child(node[i + 1])) for i in range(1, len(node) - 1, 2))
        elif kind == "Array":
            target.extend(child(c) for c in node[2:])
        elif kind == "SparseArray":
            items = {node[i]: child(node[i + 1]) for i in range(2, len(node) - 1, 2)}
            target.extend(items.get(str(i)) for i in range(int(node[1])))
        elif kind in ("Map", "Set"):
            target.fields = [child(c) for c in node[1:]]
        else:
            target.fields = list(node[1:])
    return child(value["r"])


def walk_strings(data: bytes | str) -> list[tuple[str | None, str]]:
    """Every string in the value with the property name it sits under (``None`` if none).

    Map entries count as properties when their key is a string.
    """
    value = _load(data)
    found: list[tuple[str | None, str]] = []
    if isinstance(value["r"], str):
        found.append((None, value["r"]))
    for node in value["n"]:
        kind = node[0]
        if kind == "Object":
            pairs = [(node[i], node[i + 1]) for i in range(1, len(node) - 1, 2)]
        elif kind == "SparseArray":
            pairs = [(None, node[i + 1]) for i in range(2, len(node) - 1, 2)]
        elif kind == "Array":
            pairs = [(None, c) for c in node[2:]]
        elif kind == "Map":
            pairs = [(node[i] if isinstance(node[i], str) else None, node[i + 1]) for i in range(1, len(node) - 1, 2)]
        elif kind in ("Set", "String"):
            pairs = [(None, c) for c in node[1:]]
        else:
            continue
        found.extend((key, c) for key, c in pairs if isinstance(c, str))
    return found
