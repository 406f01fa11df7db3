"""Watches: sessions the daemon keeps up to date with a browser context (``psp watch``, served).

``POST /v1/sessions/{id}/watch`` starts :meth:`Sessions.watch` as a task of the
daemon and answers once its first capture is written (so every change made after the
answer is seen). From then on, each debounced batch of changes in the browser context
becomes a new version (a small delta of the components that changed), announced on
``/v1/events`` like any other. ``DELETE /v1/watches/{id}`` stops it: what changed
since its last write is written, then it answers 204.

A watch whose browser goes away (or whose capture fails) ends: it stays listed with
``state: "failed"`` and the error until it is deleted; it is not started again when
the browser is attached again. Deleting the session or detaching the browser stops
its watches first; so does stopping the daemon (within the shutdown deadline).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, leaf_errors
from ..errors import PspError
from ..store import SessionInfo
from ..store.sessions import Captured
from .app import ApiError
from .browsers import Browser
from .events import Events
from .sessions import DaemonSessions

__all__ = ["Watch", "Watches"]

log = logging.getLogger("psp_cdp.daemon")


@dataclass
class Watch:
    id: str
    session_id: str
    name: str
    browser: str
    context: str | None
    cookie_interval: float
    debounce: float
    max_delay: float
    created_at: float = field(default_factory=time.time)
    #: "starting", "running", "stopping", "stopped" or "failed".
    state: str = "starting"
    versions: int = 0
    last_version: int | None = None
    changed_at: float | None = None
    error: str | None = None
    failure: BaseException | None = field(default=None, repr=False)
    #: The tenant of its session (its ``psp.tenant`` tag when the watch started).
    tenant: str | None = None
    stop: trio.Event = field(default_factory=trio.Event, repr=False)
    ready: trio.Event = field(default_factory=trio.Event, repr=False)
    done: trio.Event = field(default_factory=trio.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session": {"id": self.session_id, "name": self.name},
            "browser": self.browser,
            "context": self.context,
            "cookie_interval": self.cookie_interval,
            "debounce": self.debounce,
            "max_delay": self.max_delay,
            "created_at": self.created_at,
            "state": self.state,
            "versions": self.versions,
            "last_version": self.last_version,
            "changed_at": self.changed_at,
            "error": self.error,
        }


class Watches:
    def __init__(self, nursery: trio.Nursery, sessions: DaemonSessions, events: Events) -> None:
        self._nursery = nursery
        self._sessions = sessions
        self._events = events
        self._watches: dict[str, Watch] = {}

    def list(self) -> list[Watch]:
        return list(self._watches.values())

    def get(self, watch_id: str) -> Watch:
        watch = self._watches.get(watch_id)
        if watch is None:
            raise ApiError(404, f"no watch {watch_id!r} (start one with POST /v1/sessions/{{id}}/watch)")
        return watch

    async def start(
        self, info: SessionInfo, browser: Browser, *, context: str | None = None,
        cookie_interval: float = 2.0, debounce: float = 0.5, max_delay: float = 5.0, tenant: str | None = None,
    ) -> Watch:
        """Start watching; returns once the first capture is written (its errors are raised)."""
        connection = browser.require()
        watch = Watch(
            secrets.token_hex(8), info.id, info.name, browser.id, context, cookie_interval, debounce, max_delay,
            tenant=tenant,
        )
        self._watches[watch.id] = watch
        self._nursery.start_soon(self._run, watch, connection)
        await watch.ready.wait()
        if watch.versions == 0:
            self._watches.pop(watch.id, None)
            assert watch.failure is not None
            raise watch.failure
        log.info("watching %s (%s) in browser %s", info.name, watch.id, browser.id)
        return watch

    async def stop(self, watch_id: str) -> Watch:
        """Stop a watch once it has written what changed since its last write; remove it."""
        watch = self.get(watch_id)
        watch.stop.set()
        if watch.state in ("starting", "running"):
            watch.state = "stopping"
        await watch.done.wait()  # (if the caller is cancelled meanwhile, the watch still stops, and goes)
        self._watches.pop(watch_id, None)
        log.info("stopped watching %s (%s): %d version(s) written", watch.name, watch.id, watch.versions)
        return watch

    async def stop_where(self, *, session_id: str | None = None, browser_id: str | None = None) -> None:
        """Stop every watch of a session, or of a browser."""
        doomed = [
            w.id for w in self._watches.values()
            if (session_id is not None and w.session_id == session_id) or (browser_id is not None and w.browser == browser_id)
        ]
        async with trio.open_nursery() as nursery:
            for watch_id in doomed:
                nursery.start_soon(self.stop, watch_id)

    async def stop_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for watch_id in list(self._watches):
                nursery.start_soon(self.stop, watch_id)

    async def before_detach(self, browser: Browser) -> None:
        await self.stop_where(browser_id=browser.id)

    def _announce(self, watch: Watch, captured: Captured) -> None:
        version = captured.version
        assert version is not None
        watch.versions += 1
        watch.last_version = version.version
        watch.changed_at = time.time()
        self._events.publish("version", captured.info.as_dict(), version=version.as_dict())

    async def _run(self, watch: Watch, connection: CdpConnection) -> None:
        def started(captured: Captured) -> None:
            self._announce(watch, captured)
            if watch.state == "starting":
                watch.state = "running"
            watch.ready.set()

        def written(captured: Captured, batch: set[str]) -> None:
            self._announce(watch, captured)

        try:
            await self._sessions.watch(
                connection,
                watch.name,
                context=watch.context,
                cookie_interval=watch.cookie_interval,
                debounce=watch.debounce,
                max_delay=watch.max_delay,
                stop=watch.stop,
                started=started,
                written=written,
            )
            watch.state = "stopped"
        except Exception as exc:
            leaves = leaf_errors(exc)
            first = next((e for e in leaves if isinstance(e, PspError)), leaves[0] if leaves else exc)
            watch.state = "failed"
            watch.error = str(first) or type(first).__name__
            watch.failure = exc
            if watch.versions:
                log.warning("watch %s of %s ended: %s", watch.id, watch.name, watch.error)
        finally:
            if watch.stop.is_set():
                self._watches.pop(watch.id, None)
            watch.ready.set()
            watch.done.set()
