"""Small pieces of the recording model shared by the recorder, the player and the formats.

No I/O here: an event's ``data`` in and out of its JSON encoding, and bytes out of the
two shapes CDP hands bodies in (text, or base64 with a flag; a request's posted body as
``postDataEntries`` or ``postData``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from ..errors import StateError
from ..snapshot.model import RecordedEvent

__all__ = ["SERVICE_WORKER_SCRIPT", "body_bytes", "event_data", "json_event", "loads_document", "posted_body"]

#: The resource type of a recorded service worker's script: a replay answers its request at
#: the browser level, where the browser fetches it (no page's network sees that request).
SERVICE_WORKER_SCRIPT = "ServiceWorkerScript"


def json_event(type_: str, timestamp: float, data: dict[str, Any], *, tab: int = 0, frame: Sequence[int] = (),
               selectors: Sequence[str] = (), document: int = 0) -> RecordedEvent:
    """A :class:`RecordedEvent` with ``data`` in the ``json`` encoding (NaN and infinities refused)."""
    event = RecordedEvent(type=type_, timestamp=timestamp, tab=tab, frame=list(frame), document=document)
    if selectors:
        event.element.selectors.extend(selectors)
        event.target = selectors[0]
    event.data.encoding = "json"
    event.data.data = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")
    return event


def event_data(event: RecordedEvent) -> dict[str, Any]:
    """The JSON object an event's ``data`` holds ({} when it holds nothing); StateError if it is not one."""
    if not event.data.data:
        return {}
    if event.data.encoding not in ("json", ""):
        raise StateError(f"its data is in the {event.data.encoding!r} encoding, not json")
    try:
        value = json.loads(event.data.data.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError):
        raise StateError("its data is not JSON") from None
    if not isinstance(value, dict):
        raise StateError("its data is not a JSON object")
    return value


def loads_document(url: str) -> bool:
    """Whether a main-frame navigation to ``url`` counts as a new document of its tab.

    A tab's initial empty document (``about:blank``) is not counted: whether it is
    reported depends on how the tab was opened, not on what the user did.
    """
    return not url.startswith(("about:blank", "about:srcdoc"))


def body_bytes(text: str, base64_encoded: bool) -> bytes:
    """A body CDP (or HAR) gives as text, or as base64 when flagged so."""
    return base64.b64decode(text) if base64_encoded else text.encode("utf-8", "surrogatepass")


def posted_body(request: dict[str, Any]) -> bytes:
    """The body of a CDP ``Network.Request``: its ``postDataEntries`` when given, else ``postData``."""
    entries = request.get("postDataEntries")
    if entries:
        return b"".join(base64.b64decode(e.get("bytes", "")) for e in entries)
    return str(request.get("postData", "")).encode("utf-8", "surrogatepass")
