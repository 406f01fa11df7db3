"""The hot versions cache: decoded versions kept in memory, bounded by bytes (LRU).

A restore reads a version's blob (and, for a delta, every blob of its chain back to
its full base), opens the seal, decompresses and decodes it, and composes the state.
The daemon keeps the result by ``(session id, version)``, so restoring the same
version again costs no store read and no decoding. Two kinds of entry share the one
budget:

* ``"state"``: the decoded :class:`BrowserSessionState` of a version, for restores;
  its size is the state's serialised size;
* ``"items"``: a version's items and their index (:mod:`psp_cdp.snapshot.diff`), for
  the item names of ``/v1/events`` deltas; its size is the bytes of its keys and values.

A version's content never changes once written (a rewrap seals the same content
anew), so entries need no invalidation but this: deleting a session drops all of its
entries. The least recently used entries go first once the total is over the
limit; an entry bigger than the whole limit is not kept at all. A limit of 0
disables the cache.

The figures (entries, bytes, hits, misses, evictions) are served at ``GET /v1/stats``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["DEFAULT_CACHE_MIB", "HotCache"]

#: The default limit, in MiB (``psp daemon --cache-mib``).
DEFAULT_CACHE_MIB = 256


class HotCache:
    """A byte-bounded LRU of decoded versions; safe to use from worker threads."""

    def __init__(self, limit_bytes: int = DEFAULT_CACHE_MIB * 1024 * 1024) -> None:
        self.limit = max(0, int(limit_bytes))
        self._entries: OrderedDict[tuple[str, str, int], tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, kind: str, session_id: str, version: int) -> Any | None:
        key = (kind, session_id, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def peek(self, kind: str, session_id: str, version: int) -> Any | None:
        """The entry if there is one, without counting a hit or a miss or refreshing it."""
        with self._lock:
            entry = self._entries.get((kind, session_id, version))
            return None if entry is None else entry[0]

    def put(self, kind: str, session_id: str, version: int, value: Any, size: int) -> None:
        if size > self.limit:
            return
        key = (kind, session_id, version)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.limit and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1

    def drop_session(self, session_id: str) -> int:
        """Forget every entry of a session (it was deleted); how many there were."""
        with self._lock:
            doomed = [key for key in self._entries if key[1] == session_id]
            for key in doomed:
                self._bytes -= self._entries.pop(key)[1]
            return len(doomed)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "limit_bytes": self.limit,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }
