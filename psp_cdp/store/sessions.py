"""Sessions: capturing a browser into a store and restoring it from one.

:class:`Sessions` joins the state layer and a store. A capture writes nothing until
the whole state is in hand, then replaces the session's state atomically; a failed
capture leaves the session (or its absence) exactly as it was.

A capture keeps the session's sealed credentials (``state.auth.credentials``), which
are never captured from the browser.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import trio

from ..cdp import CdpConnection
from ..errors import CorruptSnapshotError, PspError, SessionExistsError
from ..snapshot import codec
from ..snapshot.model import BrowserSessionState
from ..state import RestoreReport, capture_state, components, restore_state, run_hooks
from .base import SessionInfo, Store, check_name

__all__ = ["Sessions", "Captured", "summarize"]


@dataclass
class Captured:
    info: SessionInfo
    state: BrowserSessionState


def summarize(state: BrowserSessionState) -> dict[str, int]:
    """Items per component in ``state``."""
    return {c.name: c.count(state) for c in components()}


def _origins(state: BrowserSessionState) -> list[str]:
    origins = {s.origin for s in state.storage.local_storage}
    origins.update(c.domain.lstrip(".") for c in state.storage.cookies)
    origins.update(t.navigation.current_url for t in state.history.tabs if t.navigation.current_url)
    return sorted(o for o in origins if o)


class Sessions:
    """The sessions of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _io(self, function, *args):  # type: ignore[no-untyped-def]
        return await trio.to_thread.run_sync(function, *args)

    async def get(self, ref: str) -> SessionInfo:
        return await self._io(self.store.get, ref)

    async def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        return await self._io(self.store.list, tags)

    async def delete(self, ref: str) -> SessionInfo:
        info = await self.get(ref)
        await self._io(self.store.delete, info)
        return info

    async def save(
        self,
        name: str,
        state: BrowserSessionState,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> SessionInfo:
        """Store ``state`` as the session ``name`` (created if new, its state replaced if not)."""
        check_name(name)
        state = run_hooks("before_store", state)
        blob = codec.encode(state)
        info = await self._io(self.store.find, name)
        if info is None:
            try:
                info = await self._io(lambda: self.store.create(name, description=description or "", tags=tags))
            except SessionExistsError:
                info = await self.get(name)  # created meanwhile by another process
        if description is not None:
            info.description = description
        if tags:
            info.tags.update(tags)
        info.components = summarize(state)
        info.origins = _origins(state)
        info.captured_at = state.timestamp / 1000 if state.timestamp else time.time()
        return await self._io(self.store.write_state, info, blob)

    async def load(self, ref: str) -> tuple[SessionInfo, BrowserSessionState]:
        """A session's metadata and state; a damaged state names its file."""
        info = await self.get(ref)
        blob = await self._io(self.store.read_state, info)
        try:
            state = codec.decode(blob)
        except CorruptSnapshotError as exc:
            raise CorruptSnapshotError(f"{self.store.state_location(info)}: {exc}") from None
        return info, run_hooks("after_load", state)

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
    ) -> Captured:
        """Capture a browser context into the session ``name``."""
        check_name(name)
        state = await capture_state(
            connection, context=context, only=only, skip=skip, origins=origins, options=options
        )
        if not state.auth.HasField("credentials"):
            await self._keep_credentials(name, state)
        info = await self.save(name, state, description=description, tags=tags)
        return Captured(info, state)

    async def _keep_credentials(self, name: str, state: BrowserSessionState) -> None:
        """Carry the sealed credentials of the stored session ``name``, if any, over to ``state``."""
        if await self._io(self.store.find, name) is None:
            return
        try:
            _, previous = await self.load(name)
        except PspError:
            return  # no readable previous state: nothing to carry over
        if previous.auth.HasField("credentials"):
            state.auth.credentials.CopyFrom(previous.auth.credentials)

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
        """Restore the session ``ref`` (name or id) into a browser context."""
        info, state = await self.load(ref)
        report = await restore_state(
            connection, state, context=context, only=only, skip=skip, clean=clean, options=options
        )
        return info, report
