"""The daemon's :class:`Sessions`: hot versions, item names of deltas, browsers taking turns.

:class:`DaemonSessions` is :class:`~psp_cdp.store.Sessions` with three things the
daemon adds:

* restores load versions through the hot cache (:mod:`.cache`): a version restored
  again is neither read from the store nor decoded (only the store's list of versions,
  its metadata, is read, to check the version still exists);
* :meth:`DaemonSessions.version_delta` names the items a version added, changed and
  removed against the version before it (for ``/v1/events?delta=1``), from the
  *indexes* of the two versions (item keys and value hashes; never values). The index
  of a version this daemon wrote is kept when it is written, so for those nothing is
  read; for others, one blob (the delta, or the full state) is read and decoded;
* listings are shared: a request for the list of sessions that arrives while the
  store is being read waits for the next reading, which starts after it arrived, and
  every request waiting for it gets it (so a listing never misses a change made
  before it was asked for, and 200 clients asking at once cost one reading of the
  store, not 200 threads taking turns);
* a capture (a watch's included) takes its browser's turn (:attr:`Browser.lock`)
  unless the calling task holds it already;
* a capture made with :func:`pinned` to a session id writes into that session only:
  if the name now belongs to another session (it was deleted, and the name taken
  again while the capture ran), the capture fails as if the session were gone,
  rather than writing into someone else's session (another tenant's, say).

:attr:`DaemonSessions.decoded` counts the blobs read from the store and decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import trio

from ..cdp import CdpConnection
from ..errors import CorruptSnapshotError, PspError, SessionNotFoundError
from ..snapshot import diff
from ..snapshot.model import BrowserSessionState, StateDelta
from ..store import SessionInfo, Sessions, Store, VersionInfo
from ..store.sessions import Captured
from .cache import HotCache

__all__ = ["DaemonSessions", "NAMES_PER_LIST", "pinned"]

log = logging.getLogger("psp_cdp.daemon")

#: Item names listed per component and kind of change in a delta; the rest are counted only.
NAMES_PER_LIST = 1000
#: Bytes an index entry is reckoned to take beside its key (hash, list and dict slots).
_INDEX_ENTRY = 120


#: The session id captures in this context must write into (see :func:`pinned`).
_PINNED: ContextVar[str | None] = ContextVar("psp_daemon_pinned_session", default=None)


@contextmanager
def pinned(session_id: str) -> Iterator[None]:
    """Within: captures write into the session ``session_id`` only, whatever its name names by then."""
    token = _PINNED.set(session_id)
    try:
        yield
    finally:
        _PINNED.reset(token)


class _Listing:
    """One reading of the store's sessions, shared by the requests that arrived before it started."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.done = trio.Event()
        self.sessions: list[SessionInfo] = []
        self.error: BaseException | None = None
        self.complete = False


def _index_size(index: diff.Index) -> int:
    return sum(len(key) for key in index.keys) + _INDEX_ENTRY * len(index.keys) + 64


class DaemonSessions(Sessions):
    def __init__(self, store: Store, cache: HotCache | None = None, **options: Any) -> None:
        super().__init__(store, **options)
        self.cache = cache or HotCache()
        #: Blobs read from the store and decoded by this daemon.
        self.decoded = 0
        #: The lock of the browser a connection belongs to (set by the daemon).
        self.lock_for: Callable[[CdpConnection], trio.Lock | None] = lambda connection: None
        #: The reading of the sessions under way, and how many readings were started.
        self._listing: _Listing | None = None
        self._listings = 0
        self._last_listed: list[SessionInfo] = []

    async def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        """The sessions with all of ``tags``, from a reading of the store that started after this call.

        The list (without ``tags``) and its :class:`SessionInfo` objects are shared with other
        callers, and the same list again until the store is read again: read them, do not change them.
        """
        arrived = self._listings
        while True:
            listing = self._listing
            if listing is None:
                listing = await self._read_sessions()
                break
            await listing.done.wait()
            if listing.number > arrived and listing.complete:
                break
        if listing.error is not None:
            raise listing.error
        return [s for s in listing.sessions if s.matches(tags)] if tags else listing.sessions

    async def _read_sessions(self) -> _Listing:
        self._listings += 1
        listing = self._listing = _Listing(self._listings)
        try:
            sessions = await self._io(self.store.list, None)
            # The same sessions as last time give the same list, so answers made from it can be kept.
            if sessions != self._last_listed:
                self._last_listed = sessions
            listing.sessions = self._last_listed
        except Exception as exc:
            listing.error = exc
        else:
            listing.complete = True
        finally:
            self._listing = None
            listing.done.set()
        return listing

    # -- counting, caching ----------------------------------------------------------

    def _open(self, info: SessionInfo, version: int, blob: bytes):  # type: ignore[no-untyped-def]
        self.decoded += 1
        return super()._open(info, version, blob)

    def _load(self, info: SessionInfo, version: int | None) -> tuple[VersionInfo, BrowserSessionState]:
        number = version if version is not None else info.head
        if number:
            cached = self.cache.get("state", info.id, number)
            if cached is not None:
                chain = self._chain(info, number)  # metadata only: the version must still exist
                return chain[-1], _copy(cached)
        loaded, state = super()._load(info, version)
        self.cache.put("state", info.id, loaded.version, state, state.ByteSize())
        return loaded, _copy(state)

    def _remember(self, info: SessionInfo, parent: Any) -> None:
        super()._remember(info, parent)
        index = parent.index
        self.cache.put("index", info.id, parent.version, index, _index_size(index))

    async def delete(self, ref: str) -> SessionInfo:
        info = await super().delete(ref)
        self.cache.drop_session(info.id)
        return info

    # -- a capture writes into the session it was asked for ---------------------------------

    async def save(self, name: str, state: BrowserSessionState, **options: Any) -> tuple[SessionInfo, VersionInfo]:
        expected = _PINNED.get()
        if expected is not None:
            info = await trio.to_thread.run_sync(self.store.find, name)
            if info is None or info.id != expected:
                raise SessionNotFoundError(name)
        return await super().save(name, state, **options)

    def _write(self, info: SessionInfo, state: BrowserSessionState, unchanged: bool = False) -> VersionInfo:
        expected = _PINNED.get()  # (threads run in a copy of the calling task's context)
        if expected is not None and info.id != expected:
            raise SessionNotFoundError(info.name)
        return super()._write(info, state, unchanged)

    # -- browsers take turns -----------------------------------------------------------

    async def capture(self, connection: CdpConnection, name: str, **options: Any) -> Captured:
        lock = self.lock_for(connection)
        if lock is None or lock.statistics().owner is trio.lowlevel.current_task():
            return await super().capture(connection, name, **options)
        async with lock:
            return await super().capture(connection, name, **options)

    # -- deltas for events -------------------------------------------------------------

    def index_of(self, info: SessionInfo, number: int, versions: dict[int, VersionInfo] | None = None) -> diff.Index:
        """The index of version ``number``: from the cache, else from its blob (and its parent's index)."""
        cached = self.cache.get("index", info.id, number)
        if cached is not None:
            return cached
        if versions is None:
            versions = {v.version: v for v in self.store.versions(info)}
        # Walk back to a version whose index is known (or a full one), then forward.
        pending: list[VersionInfo] = []
        index: diff.Index | None = None
        at: int | None = number
        while index is None:
            link = versions.get(at) if at is not None else None
            if link is None:
                raise CorruptSnapshotError(f"session {info.name!r} has no version {at}")
            if link.version != number:
                index = self.cache.peek("index", info.id, link.version)
                if index is not None:
                    break
            if link.kind != "delta":
                state = self.cache.peek("state", info.id, link.version)
                if state is None:
                    state = self._state(info, link)
                index = diff.index(diff.items(state))
                self.cache.put("index", info.id, link.version, index, _index_size(index))
                break
            pending.append(link)
            at = link.parent
        for link in reversed(pending):
            delta = self._open(info, link.version, self.store.read_version(info, link.version))
            if not isinstance(delta, StateDelta):
                raise CorruptSnapshotError(f"session {info.name!r} version {link.version}: a full state where a delta was listed")
            # Only the index is wanted: the parent's values are not needed to place the delta's items.
            _, index = diff.apply_indexed([(key, b"") for key in index.keys], index, delta)
            self.cache.put("index", info.id, link.version, index, _index_size(index))
        return index

    def version_delta(self, info: SessionInfo, version: VersionInfo) -> dict[str, Any]:
        """What ``version`` changed against the version before it: counts and item names per component.

        ``{"from": N or None, "changes": {component: {added, changed, removed}},
        "items": {component: {"added": [name, ...], "changed": [...], "removed": [...]}},
        "truncated": bool}``. Names are what ``psp diff`` prints (``describe``): what an
        item is, never its value.
        """
        versions = {v.version: v for v in self.store.versions(info)}
        number = version.version
        if version.kind == "delta" and version.parent:
            parent: int | None = version.parent
        else:
            parent = max((n for n in versions if n < number), default=None)
        after = self.index_of(info, number, versions)
        before = self.index_of(info, parent, versions) if parent is not None else diff.Index([], {}, b"")
        changes: dict[str, dict[str, int]] = {}
        names: dict[str, dict[str, list[str]]] = {}
        truncated = False

        def note(key: bytes, op: str) -> None:
            nonlocal truncated
            component = diff.component_of(key)
            counts = changes.setdefault(component, {"added": 0, "changed": 0, "removed": 0})
            counts[op] += 1
            listed = names.setdefault(component, {"added": [], "changed": [], "removed": []})[op]
            if len(listed) < NAMES_PER_LIST:
                listed.append(diff.describe(key))
            else:
                truncated = True

        for key in after.keys:
            old = before.hashes.get(key)
            if old is None:
                note(key, "added")
            elif old != after.hashes[key]:
                note(key, "changed")
        for key in before.keys:
            if key not in after.hashes:
                note(key, "removed")
        return {"from": parent, "changes": changes, "items": names, "truncated": truncated}

    async def event_delta(self, session: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
        """:meth:`version_delta` for an event; on failure, the stored counts and the reason."""
        info = SessionInfo.from_dict(session)
        written = VersionInfo.from_dict(version)
        try:
            return await trio.to_thread.run_sync(self.version_delta, info, written)
        except Exception as exc:
            if isinstance(exc, PspError):
                reason = str(exc) or type(exc).__name__
            else:
                log.error("working out the delta of %s version %d failed", info.name, written.version, exc_info=exc)
                reason = "internal error"
            return {"from": written.parent, "changes": written.changes, "items": None, "truncated": False, "error": reason}


def _copy(state: BrowserSessionState) -> BrowserSessionState:
    """A copy for one restore, so hooks and restores never touch the cached state."""
    copy = BrowserSessionState()
    copy.CopyFrom(state)
    return copy
