"""Sessions: capturing a browser into a store as versions, and restoring any version.

:class:`Sessions` joins the state layer, the snapshot layer and a store. Each capture
of a session becomes its next version:

* a *full* version holds the whole state; a *delta* holds what changed since its
  parent (the version before it), item by item (:mod:`psp_cdp.snapshot.diff`);
* a full version is written for a session's first version, every ``full_every``
  versions (default :data:`FULL_EVERY`), and whenever the deltas since the last
  full one would outgrow it;
* every version is sealed (AES-256-GCM by default, ChaCha20-Poly1305 or none on
  request) with the keyring's current key, bound to the session id and version
  number, so a blob cannot pass for another session's or version's;
* a capture writes nothing until the whole state is in hand; if another writer
  stored a version meanwhile, the capture is written on top of it (rebased), so no
  writer's version is lost;
* after each write, retention drops versions older than the session's ``keep``
  (but never one a kept delta needs).

A capture keeps the session's sealed credentials (``state.auth.credentials``), which
are never captured from the browser.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from ..cdp import CdpConnection, single_error
from ..errors import ConflictError, CorruptSnapshotError, PspError, SessionExistsError, StoreError, UsageError, VersionNotFoundError
from ..snapshot import codec, diff
from ..snapshot.model import BrowserSessionState, StateDelta
from ..state import RestoreReport, capture_state, components, restore_state, run_hooks
from ..state.auth import discover_tokens
from ..state.pages import origin_of
from ..state.watch import ChangeTracker
from .base import DAMAGED, SessionInfo, Store, VersionInfo, check_name, prunable
from .keys import Keyring

__all__ = ["Sessions", "Captured", "summarize", "split_ref", "carry_over", "FULL_EVERY", "CIPHERS"]

#: A full version every this many versions, unless the session says otherwise.
FULL_EVERY = 20
#: Ciphers a session can be sealed with ("none" stores blobs unsealed).
CIPHERS = ("aes-256-gcm", "chacha20-poly1305", "none")
#: Writers that keep colliding give up after this many rebases ...
_REBASES = 32
#: ... each after a random pause of up to this many seconds times the attempt (capped).
_REBASE_PAUSE = 0.01
#: Parent indexes kept in memory, for sessions written by this process.
_CACHED_PARENTS = 8
_REF_RE = re.compile(r"^(?P<name>.+?)@(?P<version>\d+)$")


@dataclass
class Captured:
    info: SessionInfo
    state: BrowserSessionState
    version: VersionInfo | None = None


@dataclass
class _Parent:
    """What the next delta of a session needs of its latest version."""

    version: int
    index: diff.Index
    credentials: bytes | None


def summarize(state: BrowserSessionState) -> dict[str, int]:
    """Items per component in ``state``, and the events of its recording when it holds one."""
    counts = {c.name: c.count(state) for c in components()}
    if state.HasField("recording"):
        counts["recording"] = len(state.recording.events)
    return counts


def split_ref(ref: str) -> tuple[str, int | None]:
    """``"NAME@N"`` as (NAME, N); ``"NAME"`` as (NAME, None)."""
    match = _REF_RE.match(ref)
    if match is None:
        return ref, None
    return match["name"], int(match["version"])


def _origins(state: BrowserSessionState) -> list[str]:
    """Origins and cookie domains of a state, for listing; never a full URL (a query can hold a secret)."""
    origins = {s.origin for s in state.storage.local_storage}
    origins.update(c.domain.lstrip(".") for c in state.storage.cookies)
    origins.update(origin_of(t.navigation.current_url) or "" for t in state.history.tabs)
    return sorted(o for o in origins if o)


def _context(info: SessionInfo, version: int) -> bytes:
    """What a version's blob is bound to: its session and its number."""
    return f"psp session {info.id} version {version}".encode()


class Sessions:
    """The sessions of one store, sealed with one keyring."""

    def __init__(self, store: Store, *, keyring: Keyring | None = None, cipher: str | None = None) -> None:
        self.store = store
        self.keyring = keyring or Keyring()
        self.cipher = cipher or os.environ.get("PSP_CIPHER") or "aes-256-gcm"
        if self.cipher not in CIPHERS:
            raise UsageError(f"unknown cipher {self.cipher!r}: use {', '.join(CIPHERS)}")
        self._parents: OrderedDict[str, _Parent] = OrderedDict()

    async def _io(self, function, *args):  # type: ignore[no-untyped-def]
        return await trio.to_thread.run_sync(function, *args)

    async def get(self, ref: str) -> SessionInfo:
        return await self._io(self.store.get, split_ref(ref)[0])

    async def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        return await self._io(self.store.list, tags)

    async def versions(self, ref: str) -> tuple[SessionInfo, list[VersionInfo]]:
        info = await self.get(ref)
        return info, await self._io(self.store.versions, info)

    async def delete(self, ref: str) -> SessionInfo:
        info = await self.get(ref)
        await self._io(self.store.delete, info)
        self._parents.pop(info.id, None)
        return info

    async def update(self, info: SessionInfo) -> SessionInfo:
        return await self._io(self.store.update, info)

    # -- writing -----------------------------------------------------------------

    async def save(
        self,
        name: str,
        state: BrowserSessionState,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        keep: int | None = None,
        ttl: float | None = None,
        full_every: int | None = None,
        skip_unchanged: bool = False,
    ) -> tuple[SessionInfo, VersionInfo]:
        """Store ``state`` as the next version of the session ``name`` (created if new).

        With ``skip_unchanged``, a state that differs from the latest version only in
        its capture time and report is not written; the latest version is given back.
        """
        check_name(name)
        state = run_hooks("before_store", state)
        info = await self._io(self.store.find, name)
        created = False
        if info is None:
            try:
                info = await self._io(lambda: self.store.create(name, description=description or "", tags=tags))
                created = True
            except SessionExistsError:
                info = await self.get(name)  # created meanwhile by another process
        changed = False
        for attribute, value in (("description", description), ("keep", keep), ("ttl", ttl), ("full_every", full_every)):
            if value is not None and getattr(info, attribute) != value:
                setattr(info, attribute, value)
                changed = True
        if tags and any(info.tags.get(k) != v for k, v in tags.items()):
            info.tags.update(tags)
            changed = True
        try:
            if changed:
                info = await self._io(self.store.update, info)
            version = await self._io(self._write, info, state, skip_unchanged)
        except BaseException:
            if created:  # a session whose first version could not be written is not left behind, empty
                with trio.CancelScope(shield=True):
                    await self._forget_empty(info)
            raise
        return info.with_head(version), version

    async def _forget_empty(self, info: SessionInfo) -> None:
        """Remove a session this object created, if it holds no version (another writer may have written one)."""
        try:
            if not await self._io(self.store.versions, info):
                await self._io(self.store.delete, info)
        except PspError:
            pass  # the store is failing too: what `psp ls` lists as empty can be removed later

    def _write(self, info: SessionInfo, state: BrowserSessionState, unchanged: bool = False) -> VersionInfo:
        """Write ``state`` as the next version; with ``unchanged``, not if only its capture time differs."""
        state.storage.SetInParent()  # as every stored state reads back: a delta compares with that
        child = diff.items(state)
        child_index = diff.index(child)
        components, origins = summarize(state), _origins(state)
        seal = None if self.cipher == "none" else codec.Seal(*self.keyring.current(), cipher=self.cipher)
        for attempt in range(_REBASES):
            if attempt:
                time.sleep(random.uniform(0, _REBASE_PAUSE * min(attempt, 10)))  # let the other writer land
            versions = self.store.versions(info)
            head = versions[-1] if versions else None
            number = head.version + 1 if head else 1
            version = VersionInfo(
                number,
                created_at=time.time(),
                cipher=self.cipher,
                key_id=seal.key_id if seal else None,
                components=dict(components),
                origins=list(origins),
                captured_at=state.timestamp / 1000 if state.timestamp else time.time(),
            )
            if unchanged and head is not None and _content(child_index) == _content(self._parent(info, head).index):
                return head  # nothing but the capture time and report changed
            blob = self._delta_blob(info, versions, version, child, child_index, seal) if head else None
            if blob is None:
                version.kind, version.base, version.raw_bytes = "full", number, state.ByteSize()
                blob = codec.encode(state, seal=seal, context=_context(info, number))
            try:
                self.store.write_version(info, version, blob)
            except ConflictError:
                continue  # another writer got there first: diff against its version
            break
        else:
            raise ConflictError(info.name, number)
        self._remember(info, _Parent(number, child_index, _credentials(state)))
        doomed = prunable(self.store.versions(info), info.keep) if info.keep else []
        if doomed:
            self.store.delete_versions(info, doomed)
        return version

    def _delta_blob(
        self,
        info: SessionInfo,
        versions: list[VersionInfo],
        version: VersionInfo,
        child: list[diff.Item],
        child_index: diff.Index,
        seal: codec.Seal | None,
    ) -> bytes | None:
        """The delta blob for ``version`` if a delta is due, else ``None``."""
        head = versions[-1]
        if head.kind == DAMAGED or version.version - head.base >= (info.full_every or FULL_EVERY):
            return None
        base = next((v for v in versions if v.version == head.base), None)
        if base is None:
            return None
        parent = self._parent(info, head)
        delta = diff.diff(parent.index, child, parent_version=head.version, child_index=child_index)
        blob = codec.encode(delta, seal=seal, context=_context(info, version.version))
        chain = sum(v.blob_bytes for v in versions if head.base < v.version <= head.version)
        if chain + len(blob) > base.blob_bytes:
            return None
        version.kind, version.parent, version.base = "delta", head.version, head.base
        version.raw_bytes = delta.ByteSize()
        version.changes = diff.delta_changes(parent.index, delta)
        return blob

    def _remember(self, info: SessionInfo, parent: _Parent) -> None:
        self._parents[info.id] = parent
        self._parents.move_to_end(info.id)
        while len(self._parents) > _CACHED_PARENTS:
            self._parents.popitem(last=False)

    def _parent(self, info: SessionInfo, head: VersionInfo) -> _Parent:
        cached = self._parents.get(info.id)
        if cached is not None and cached.version == head.version:
            return cached
        state_items, index = self._items(info, head.version)
        auth = [value for key, value in state_items if diff.component_of(key) == "auth"]
        parent = _Parent(head.version, index, _credentials(BrowserSessionState.FromString(b"".join(auth))))
        self._remember(info, parent)
        return parent

    # -- reading -----------------------------------------------------------------

    def _open(self, info: SessionInfo, version: int, blob: bytes):  # type: ignore[no-untyped-def]
        where = f"session {info.name!r} version {version} ({self.store.version_location(info, version)})"
        try:
            return codec.decode(blob, keys=self.keyring.get, context=_context(info, version))
        except CorruptSnapshotError as exc:
            raise CorruptSnapshotError(f"{where}: {exc}") from None
        except StoreError as exc:
            raise StoreError(f"{where}: {exc}") from None

    def _chain(self, info: SessionInfo, version: int) -> list[VersionInfo]:
        """The versions that give ``version``: its full base, then each delta up to it."""
        by_number = {v.version: v for v in self.store.versions(info)}
        if version not in by_number:
            head = max(by_number, default=0)
            hint = f"; it has versions {min(by_number)} to {head}" if by_number else "; it has no versions yet"
            raise VersionNotFoundError(f"session {info.name!r} has no version {version}{hint}")
        chain = [by_number[version]]
        while chain[-1].kind == "delta":
            parent = chain[-1].parent
            if parent not in by_number:
                raise VersionNotFoundError(
                    f"session {info.name!r} version {chain[-1].version} is a delta of version {parent}, which is missing"
                )
            chain.append(by_number[parent])
        return chain[::-1]

    def _items(self, info: SessionInfo, version: int) -> tuple[list[diff.Item], diff.Index]:
        chain = self._chain(info, version)
        base = self._state(info, chain[0])
        state_items = diff.items(base)
        index = diff.index(state_items)
        for link in chain[1:]:
            delta = self._open(info, link.version, self.store.read_version(info, link.version))
            if not isinstance(delta, StateDelta):
                raise CorruptSnapshotError(f"session {info.name!r} version {link.version}: a full state where a delta was listed")
            try:
                state_items, index = diff.apply_indexed(state_items, index, delta)
            except CorruptSnapshotError as exc:
                raise CorruptSnapshotError(f"session {info.name!r} version {link.version}: {exc}") from None
        return state_items, index

    def _state(self, info: SessionInfo, version: VersionInfo) -> BrowserSessionState:
        state = self._open(info, version.version, self.store.read_version(info, version.version))
        if not isinstance(state, BrowserSessionState):
            raise CorruptSnapshotError(f"session {info.name!r} version {version.version}: a delta where a full state was listed")
        return state

    def _load(self, info: SessionInfo, version: int | None) -> tuple[VersionInfo, BrowserSessionState]:
        if version is None:
            version = info.head
            if not version:
                raise StoreError(f"session {info.name!r} has no captured state yet")
        chain = self._chain(info, version)
        if len(chain) == 1:
            return chain[0], self._state(info, chain[0])
        return chain[-1], diff.compose(self._items(info, version)[0])

    async def load(self, ref: str, version: int | None = None) -> tuple[SessionInfo, BrowserSessionState]:
        """A session's metadata and the state of one version (``NAME@N``, ``version``, else the latest)."""
        name, at = split_ref(ref)
        info = await self._io(self.store.get, name)
        loaded, state = await self._io(self._load, info, version if version is not None else at)
        return info.with_head(loaded), run_hooks("after_load", state)

    async def items(self, ref: str) -> tuple[SessionInfo, int, list[diff.Item]]:
        """The items of one version (``NAME@N`` or the latest), for comparing versions."""
        name, at = split_ref(ref)
        info = await self._io(self.store.get, name)
        number = at or info.head
        if not number:
            raise StoreError(f"session {info.name!r} has no captured state yet")
        return info, number, (await self._io(self._items, info, number))[0]

    # -- keys --------------------------------------------------------------------

    async def rewrap(self, ref: str | None = None) -> list[tuple[SessionInfo, int]]:
        """Seal again, with the current key and cipher, every version sealed otherwise; what was resealed."""
        if self.cipher == "none":
            raise UsageError("rewrap seals with a cipher; PSP_CIPHER is none")
        sessions = [await self.get(ref)] if ref else await self.list()
        return await self._io(self._rewrap_all, sessions)

    def _rewrap_all(self, sessions: list[SessionInfo]) -> list[tuple[SessionInfo, int]]:
        key_id, key = self.keyring.current()
        seal = codec.Seal(key_id, key, cipher=self.cipher)
        done = []
        for info in sessions:
            for version in self.store.versions(info):
                if version.key_id == key_id and version.cipher == self.cipher:
                    continue
                blob = self.store.read_version(info, version.version)
                context = _context(info, version.version)
                try:
                    if codec.read_header(blob).format == codec.FORMAT_VERSION:
                        sealed = codec.reseal(blob, keys=self.keyring.get, context=context, seal=seal)
                    else:
                        sealed = codec.encode(self._open(info, version.version, blob), seal=seal, context=context)
                except (CorruptSnapshotError, StoreError) as exc:
                    raise type(exc)(f"session {info.name!r} version {version.version}: {exc}") from None
                version.key_id, version.cipher = key_id, self.cipher
                self.store.replace_version(info, version, sealed)
                done.append((info, version.version))
        return done

    # -- browsers ------------------------------------------------------------------

    async def capture(
        self,
        connection: CdpConnection,
        name: str,
        *,
        context: str | None = None,
        only: Iterable[str] | None = None,
        skip: Iterable[str] | None = None,
        origins: Iterable[str] = (),
        description: str | None = None,
        tags: dict[str, str] | None = None,
        options: Iterable[str] = (),
        keep: int | None = None,
        ttl: float | None = None,
        full_every: int | None = None,
        carry: bool = False,
        skip_unchanged: bool = False,
    ) -> Captured:
        """Capture a browser context as the next version of the session ``name``.

        With ``carry``, the components not captured (``only``/``skip``) keep what the
        latest version holds, so capturing just what changed updates the session.
        """
        check_name(name)
        state = await capture_state(
            connection, context=context, only=only, skip=skip, origins=origins, options=options
        )
        if carry:
            state = await self._carried_over(name, state)
        if not state.auth.HasField("credentials"):
            await self.keep_credentials(name, state)
        info, version = await self.save(
            name,
            state,
            description=description,
            tags=tags,
            keep=keep,
            ttl=ttl,
            full_every=full_every,
            skip_unchanged=skip_unchanged,
        )
        return Captured(info, state, version)

    async def _carried_over(self, name: str, state: BrowserSessionState) -> BrowserSessionState:
        """``state`` with what it did not capture taken from the latest version of ``name``."""
        info = await self._io(self.store.find, name)
        if info is None or not info.head:
            return state
        _, latest = await self._io(self._load, info, None)
        return carry_over(latest, state)

    async def watch(
        self,
        connection: CdpConnection,
        name: str,
        *,
        context: str | None = None,
        cookie_interval: float = 2.0,
        debounce: float = 0.5,
        max_delay: float = 5.0,
        stop: trio.Event | None = None,
        started: Callable[[Captured], Awaitable[None] | None] | None = None,
        written: Callable[[Captured, set[str]], Awaitable[None] | None] | None = None,
        **capture_options: Any,
    ) -> int:
        """Keep the session ``name`` up to date with a browser context until ``stop`` is set.

        Captures once at the start, then again after each debounced batch of changes
        (:class:`~psp_cdp.state.watch.ChangeTracker`), only the changed components,
        carrying the rest over: each write is a small delta. Once ``stop`` is set, it
        writes what changed since its last write and returns the number of versions
        written. A browser that goes away ends it with :class:`BrowserClosedError`.
        """
        tracker = ChangeTracker(
            connection, context=context, cookie_interval=cookie_interval, debounce=debounce, max_delay=max_delay
        )
        tracking = trio.CancelScope()

        async def track(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with tracking:
                await tracker.run(task_status=task_status)

        async def stop_tracking() -> None:
            assert stop is not None
            await stop.wait()
            tracking.cancel()

        written_count = 0
        with single_error():
            async with trio.open_nursery() as nursery:
                await nursery.start(track)
                if stop is not None:
                    nursery.start_soon(stop_tracking)
                try:
                    async with tracker.ignoring_new_tabs():
                        first = await self.capture(connection, name, context=context, **capture_options)
                    written_count += 1
                    assert first.version is not None
                    last = first.version.version
                    await _call(started, first)
                    while True:
                        try:
                            batch = await tracker.changes()
                        except trio.EndOfChannel:
                            break
                        async with tracker.ignoring_new_tabs():
                            captured = await self.capture(
                                connection,
                                name,
                                context=context,
                                only=_recapture(batch),
                                carry=True,
                                skip_unchanged=True,
                                **capture_options,
                            )
                        assert captured.version is not None
                        if captured.version.version > last:
                            last = captured.version.version
                            written_count += 1
                            await _call(written, captured, batch)
                        else:
                            # Nothing changed: what these components reported during the
                            # capture was the capture itself (reading IndexedDB is reported).
                            tracker.discard(batch)
                finally:
                    nursery.cancel_scope.cancel()
        return written_count

    async def keep_credentials(self, name: str, state: BrowserSessionState) -> None:
        """Carry the sealed credentials of the stored session ``name``, if any, over to ``state``."""
        info = await self._io(self.store.find, name)
        if info is None or not info.head:
            return
        try:
            versions = await self._io(self.store.versions, info)
            parent = await self._io(self._parent, info, versions[-1])
        except (PspError, IndexError):
            return  # no readable previous state: nothing to carry over
        if parent.credentials is not None:
            state.auth.credentials.MergeFromString(parent.credentials)

    async def restore(
        self,
        connection: CdpConnection,
        ref: str,
        *,
        context: str | None = None,
        only: Iterable[str] | None = None,
        skip: Iterable[str] | None = None,
        clean: bool = False,
        options: Iterable[str] = (),
    ) -> tuple[SessionInfo, RestoreReport]:
        """Restore the session ``ref`` (``NAME``, ``NAME@N`` or an id) into a browser context."""
        info, state = await self.load(ref)
        report = await restore_state(
            connection, state, context=context, only=only, skip=skip, clean=clean, options=options
        )
        return info, report


#: What to capture again when a tracked component changed: the tabs component also
#: holds each tab's sessionStorage and DOM state; auth tokens derive from the rest.
_RECAPTURE = {"session_storage": ("tabs", "session_storage", "dom"), "tabs": ("tabs", "session_storage", "dom")}
#: Item groups of psp_cdp.snapshot.diff that a registry component's capture fills.
_ITEM_GROUPS = {"session_storage": "tabs", "dom": "tabs"}


def _content(index: diff.Index) -> list[tuple[bytes, bytes]]:
    """The items of a state that are not about its capture (time, report, source)."""
    return [(key, index.hashes[key]) for key in index.keys if diff.component_of(key) != "capture"]


def _recapture(batch: Iterable[str]) -> list[str]:
    chosen = {"auth"}
    for component in batch:
        chosen.update(_RECAPTURE.get(component, (component,)))
    return sorted(chosen)


def carry_over(latest: BrowserSessionState, captured: BrowserSessionState) -> BrowserSessionState:
    """``captured`` (of some components only) completed with the other components of ``latest``.

    Auth tokens are found again over the whole result.
    """
    groups = {_ITEM_GROUPS.get(name, name) for name in captured.report.components} | {"capture", "auth"}
    kept = [item for item in diff.items(latest) if diff.component_of(item[0]) not in groups]
    fresh = [item for item in diff.items(captured) if diff.component_of(item[0]) in groups]
    merged = diff.compose(kept + fresh)
    known = {(t.type, t.domain, t.source) for t in merged.auth.tokens}
    for token in discover_tokens(merged):
        if (token.type, token.domain, token.source) not in known:
            merged.auth.tokens.append(token)
    return merged


async def _call(callback, *args) -> None:  # type: ignore[no-untyped-def]
    if callback is not None:
        result = callback(*args)
        if result is not None:
            await result


def _credentials(state: BrowserSessionState) -> bytes | None:
    if not state.auth.HasField("credentials"):
        return None
    return state.auth.credentials.SerializeToString(deterministic=True)
