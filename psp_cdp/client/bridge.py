"""What the framework bridges share (``psp_cdp.playwright``, ``psp_cdp.selenium``).

A bridge turns the framework's object (a page, a driver) into a CDP endpoint and a
browser context id, and runs a *job* on them: a trio function ``job(endpoint,
context)`` that captures or restores through :mod:`psp_cdp.client.runner`, so by the
daemon when one serves the store, else in this process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ..errors import UsageError
from ..store import SessionInfo
from . import runner
from .runner import Captured, storage_spec

__all__ = ["Adapter", "BridgeSession", "Job", "SyncBridgeSession"]

T = TypeVar("T")
#: A bridge's unit of work: (CDP endpoint, browser context id or None) -> result.
Job = Callable[[str, "str | None"], Awaitable[T]]


class Adapter:
    """What every bridge's adapter holds: the default storage, and where each session it made lives."""

    def __init__(self, storage: str = "local", *, no_daemon: bool = False) -> None:
        self.storage = storage
        self.no_daemon = no_daemon
        self._storage_of: dict[str, str] = {}  # session id -> the storage it was made in

    def _store(self, storage: str | None, ref: str | None = None) -> str | None:
        if storage is None:
            storage = self._storage_of.get(ref or "", self.storage)
        return storage_spec(storage)

    def _made(
        self, name: str, storage: str | None, description: str | None, tags: Mapping[str, str] | None
    ) -> tuple[SessionInfo, str | None]:
        """The session ``name`` (made if it does not exist) and its store; blocks, from any thread."""
        store = self._store(storage)
        info = runner.run_sync(
            lambda: runner.ensure_session(name, store=store, description=description, tags=tags, no_daemon=self.no_daemon)
        )
        self._storage_of[info.id] = storage or self.storage
        return info, store

    def _loaded(self, ref: str, storage: str | None) -> tuple[SessionInfo, str | None]:
        """The stored session ``ref`` (an id or a name) and its store; blocks, from any thread."""
        store = self._store(storage, ref)
        return runner.run_sync(lambda: runner.find_session(ref, store=store, no_daemon=self.no_daemon)), store


class BridgeSession:
    """A stored session as a bridge hands it out: its id and name, and the capture and restore jobs it runs."""

    def __init__(self, adapter: Adapter, info: SessionInfo, store: str | None, page: Any = None) -> None:
        self._adapter = adapter
        self.info = info
        self.store = store
        self.page = page

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    def _capture_job(self, only: list[str] | None, skip: list[str] | None) -> Job[Captured]:
        async def job(endpoint: str, context: str | None) -> Captured:
            return await runner.capture(
                endpoint, self.info.name, store=self.store, context=context, only=only, skip=skip,
                no_daemon=self._adapter.no_daemon,
            )

        return job

    def _restore_job(
        self, version: int | None, only: list[str] | None, skip: list[str] | None, clean: bool
    ) -> Job[dict[str, Any]]:
        ref = self.info.name if version is None else f"{self.info.name}@{version}"

        async def job(endpoint: str, context: str | None) -> dict[str, Any]:
            return await runner.restore(
                endpoint, ref, store=self.store, context=context, only=only, skip=skip, clean=clean,
                no_daemon=self._adapter.no_daemon,
            )

        return job

    def _bound(self, page: Any) -> Any:
        page = page if page is not None else self.page
        if page is None:
            raise UsageError(f"session {self.info.name!r} was loaded, not made on a page or driver: give capture() one")
        return page

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.name} ({self.info.id})>"


class SyncBridgeSession(BridgeSession):
    """A session of a synchronous framework: ``capture()`` and ``restore()`` block until done."""

    def _run(self, target: Any, job: Job[T]) -> T:
        """Run ``job`` on the browser behind ``target`` (a page, a driver)."""
        raise NotImplementedError

    def capture(self, target: Any = None, *, only: list[str] | None = None, skip: list[str] | None = None) -> Captured:
        """Capture the browser behind ``target`` (by default the one the session was made on) as the next version."""
        result = self._run(self._bound(target), self._capture_job(only, skip))
        self.info = result.info
        return result

    def restore(
        self,
        target: Any,
        *,
        version: int | None = None,
        only: list[str] | None = None,
        skip: list[str] | None = None,
        clean: bool = False,
    ) -> dict[str, Any]:
        """Restore the session (its latest version, or ``version``) into the browser behind ``target``; the summary."""
        return self._run(target, self._restore_job(version, only, skip, clean))

