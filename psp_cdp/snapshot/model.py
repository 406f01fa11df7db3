"""The PSP data model: generated protobuf messages and the helpers around them.

No I/O and no CDP here. DOMStrings can hold unpaired surrogates; in Python they
arrive as ``str`` with lone surrogate code points (``json.loads`` keeps them), and
:func:`domstring` / :func:`text` carry them through protobuf exactly.
"""

from __future__ import annotations

import math

from .pb.psp.v1.session_pb2 import (
    AuthenticationState,
    AuthToken,
    BrowserSessionState,
    CacheEntry,
    CacheStorageCache,
    CaptureReport,
    CaptureSource,
    Cookie,
    CookiePartitionKey,
    DeltaItem,
    DOMState,
    DOMString,
    ElementScroll,
    ElementTarget,
    EncryptedCredentials,
    Extension,
    FormField,
    FrameDOMState,
    Header,
    HistoryEntry,
    HistoryState,
    IndexedDBDatabase,
    IndexedDBIndex,
    IndexedDBObjectStore,
    IndexedDBRecord,
    KeyPath,
    KeyPathList,
    NavigationState,
    NetworkExchange,
    NetworkState,
    OriginStorage,
    RecordedEvent,
    RecordingState,
    ScrollPosition,
    SerializedValue,
    ServiceWorkerRegistration,
    StateDelta,
    StorageItem,
    StorageState,
    Tab,
    TabEndState,
    ValueDigest,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AuthenticationState",
    "AuthToken",
    "BrowserSessionState",
    "CacheEntry",
    "CacheStorageCache",
    "CaptureReport",
    "CaptureSource",
    "Cookie",
    "CookiePartitionKey",
    "DeltaItem",
    "DOMState",
    "DOMString",
    "ElementScroll",
    "ElementTarget",
    "EncryptedCredentials",
    "Extension",
    "FormField",
    "FrameDOMState",
    "Header",
    "HistoryEntry",
    "HistoryState",
    "IndexedDBDatabase",
    "IndexedDBIndex",
    "IndexedDBObjectStore",
    "IndexedDBRecord",
    "KeyPath",
    "KeyPathList",
    "NavigationState",
    "NetworkExchange",
    "NetworkState",
    "OriginStorage",
    "RecordedEvent",
    "RecordingState",
    "ScrollPosition",
    "SerializedValue",
    "ServiceWorkerRegistration",
    "StateDelta",
    "StorageItem",
    "StorageState",
    "Tab",
    "TabEndState",
    "ValueDigest",
    "LAST_EXPIRY",
    "MAX_IDB_VERSION",
    "check_values",
    "domstring",
    "text",
    "storage_items",
    "storage_dict",
    "uncovered_list",
]

#: Version of the data model this code writes (semantic versioning).
PROTOCOL_VERSION = "1.0.0"


#: The latest expiry a cookie may have (the end of year 9999), and the largest IndexedDB version.
LAST_EXPIRY = 253402300799.0
MAX_IDB_VERSION = 2**53 - 1


def check_values(state: BrowserSessionState) -> None:
    """Raise ValueError (naming the item, never its value) for a value no browser takes: a cookie expiry that
    is not a time, an IndexedDB version past what IndexedDB allows. Run on what is imported."""
    for cookie in state.storage.cookies:
        if cookie.HasField("expires") and not (math.isfinite(cookie.expires) and 0 <= cookie.expires <= LAST_EXPIRY):
            raise ValueError(f"cookie {cookie.name[:64]!r} of {cookie.domain[:128]!r}: expires is not a time")
    for database in state.storage.indexed_db:
        if database.version > MAX_IDB_VERSION:
            raise ValueError(f"IndexedDB database of {database.origin[:128]!r}: version past {MAX_IDB_VERSION}")


def domstring(value: str, into: DOMString | None = None) -> DOMString:
    """Wrap a Python ``str`` (which may hold lone surrogates) as a DOMString."""
    message = DOMString() if into is None else into
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        message.wtf8 = value.encode("utf-8", "surrogatepass")
    else:
        message.text = value
    return message


def text(message: DOMString) -> str:
    """The exact ``str`` a DOMString holds."""
    if message.WhichOneof("kind") == "wtf8":
        return message.wtf8.decode("utf-8", "surrogatepass")
    return message.text


def storage_items(origin_storage: OriginStorage, items: dict[str, str]) -> OriginStorage:
    """Fill ``origin_storage.items`` from a key/value mapping, keeping its order."""
    for key, value in items.items():
        item = origin_storage.items.add()
        domstring(key, item.key)
        domstring(value, item.value)
    return origin_storage


def storage_dict(origin_storage: OriginStorage) -> dict[str, str]:
    """The key/value mapping an OriginStorage holds."""
    return {text(item.key): text(item.value) for item in origin_storage.items}


def uncovered_list(report: CaptureReport) -> list[dict[str, str]]:
    """What a capture could not read, as ``{"what", "reason"}`` records (the CLI's and the control API's form)."""
    return [{"what": u.what, "reason": u.reason} for u in report.uncovered]
