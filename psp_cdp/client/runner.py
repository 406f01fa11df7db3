"""Capture and restore by whoever should do it: the running daemon, or this process.

The ``psp`` command and the framework bridges hand a capture or a restore to a daemon
that answers on the local socket and serves the same store, so one process owns the
store's writes and its hot versions; with no such daemon (or ``PSP_NO_DAEMON=1``), the
work runs here. Either way the answer has the same shape:

* :func:`capture` → :class:`Captured` (the session, the version written, the origins
  covered and what could not be captured);
* :func:`restore` → the restore summary of the control API (``id``, ``name``,
  ``version``, ``context``, ``restored``, ``notes``, ...).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from ..cdp import open_cdp
from ..errors import PspError, SessionExistsError, SessionNotFoundError
from ..snapshot.model import uncovered_list
from ..store import SessionInfo, Sessions, VersionInfo, check_name, open_store, split_ref, store_location
from . import AsyncClient, default_socket_path

__all__ = [
    "Captured",
    "attached",
    "capture",
    "capture_through",
    "daemon_for_store",
    "ensure_session",
    "find_session",
    "restore",
    "run_sync",
    "storage_spec",
]

T = TypeVar("T")

#: The Redis server ``storage="redis"`` means when ``PSP_REDIS_URL`` is not set.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def storage_spec(storage: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The store a bridge's ``storage=`` names: ``"local"`` (or ``None``) is the default store, which
    honours ``PSP_STORE``; ``"redis"`` is ``PSP_REDIS_URL``, else a Redis server on localhost; anything
    else is a STORE as the CLI takes it (a directory or a ``redis://`` URL)."""
    if storage in (None, "", "local"):
        return None
    if storage == "redis":
        return environ.get("PSP_REDIS_URL") or DEFAULT_REDIS_URL
    return storage


def run_sync(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a trio function to its end from synchronous code.

    It runs in a thread of its own, so it works whether or not the caller's thread
    already runs an event loop (asyncio, or the one a framework keeps there).
    """
    outcome: list[Any] = []

    def main() -> None:
        try:
            outcome.append((trio.run(function, *args), None))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((None, exc))

    thread = threading.Thread(target=main, name="psp_cdp", daemon=True)
    thread.start()
    thread.join()
    result, error = outcome[0]
    if error is not None:
        raise error
    return result  # type: ignore[no-any-return]


@dataclass
class Captured:
    info: SessionInfo
    version: VersionInfo
    origins_covered: list[str] = field(default_factory=list)
    uncovered: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def daemon_for_store(store: str | None, *, no_daemon: bool = False) -> AsyncIterator[AsyncClient | None]:
    """A client of the running daemon if one answers and serves ``store``; else ``None``.

    ``no_daemon`` or ``PSP_NO_DAEMON=1`` keep the work in this process.
    """
    path = default_socket_path()
    if no_daemon or os.environ.get("PSP_NO_DAEMON") or not os.path.exists(path):
        yield None
        return
    psp = AsyncClient(path)
    try:
        try:
            with trio.fail_after(2):
                served = (await psp.version()).get("store")
        except (PspError, trio.TooSlowError):
            served = None
        yield psp if served is not None and served == store_location(store) else None
    finally:
        with trio.CancelScope(shield=True):
            await psp.aclose()


@asynccontextmanager
async def attached(psp: AsyncClient, cdp: str) -> AsyncIterator[str]:
    """The daemon's id for the browser at ``cdp``: one it has attached already, else attached for the block."""
    for browser in await psp.browsers():
        if browser.get("cdp") == cdp and browser.get("attached"):
            yield browser["id"]
            return
    browser = await psp.attach(cdp)
    try:
        yield browser["id"]
    finally:
        with trio.CancelScope(shield=True):
            await psp.detach(browser["id"])


async def ensure_session(
    name: str,
    *,
    store: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    no_daemon: bool = False,
) -> SessionInfo:
    """The session ``name``, made (empty, with no version yet) if it does not exist."""
    check_name(name)
    async with daemon_for_store(store, no_daemon=no_daemon) as psp:
        if psp is not None:
            try:
                return await psp.session(name)
            except SessionNotFoundError:
                pass
            try:
                return await psp.create_session(name, description=description, tags=tags)
            except SessionExistsError:  # made meanwhile by another writer
                return await psp.session(name)
    opened = open_store(store)
    try:
        info = await trio.to_thread.run_sync(opened.find, name)
        if info is not None:
            return info
        try:
            return await trio.to_thread.run_sync(
                lambda: opened.create(name, description=description or "", tags=dict(tags or {}))
            )
        except SessionExistsError:
            return await trio.to_thread.run_sync(opened.get, name)
    finally:
        opened.close()


async def find_session(ref: str, *, store: str | None = None, no_daemon: bool = False) -> SessionInfo:
    """The session ``ref`` names (a name, ``NAME@N`` or an id); SessionNotFoundError if there is none."""
    name = split_ref(ref)[0]
    async with daemon_for_store(store, no_daemon=no_daemon) as psp:
        if psp is not None:
            return await psp.session(name)
    opened = open_store(store)
    try:
        return await trio.to_thread.run_sync(opened.get, name)
    finally:
        opened.close()


async def capture_through(
    psp: AsyncClient,
    cdp: str,
    name: str,
    *,
    context: str | None = None,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    policy: Mapping[str, Any] | None = None,
) -> Captured:
    """A capture done by the daemon: the session made or updated, the browser attached for the capture."""
    tags = dict(tags or {})
    changes = {k: v for k, v in (policy or {}).items() if v is not None}
    try:
        info = await psp.session(name)
    except SessionNotFoundError:
        info = await psp.create_session(name, description=description, tags=tags)
    else:
        if description is not None or tags:
            changes.update(description=description, tags={**info.tags, **tags} if tags else None)
    if any(v is not None for v in changes.values()):
        await psp.update_session(info.id, **changes)
    async with attached(psp, cdp) as browser:
        result = await psp.capture(info.id, browser, context=context, only=only, skip=skip)
    version = VersionInfo.from_dict(result["record"])  # the version's record comes with the answer
    return Captured(SessionInfo.from_dict(result["session"]), version, result["origins_covered"], result["uncovered"])


async def capture(
    cdp: str,
    name: str,
    *,
    store: str | None = None,
    context: str | None = None,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    policy: Mapping[str, Any] | None = None,
    origins: Sequence[str] = (),
    options: Sequence[str] = (),
    cipher: str | None = None,
    no_daemon: bool = False,
) -> Captured:
    """Capture the browser at ``cdp`` (its ``context``, else the default one) as the next version of ``name``.

    ``policy`` holds the session's ``keep``, ``ttl`` and ``full_every``. Extra
    ``origins``, capture ``options`` and a ``cipher`` of this call's own are honoured
    in this process only, so they keep the work here.
    """
    local = bool(origins or options or cipher)
    async with daemon_for_store(store, no_daemon=no_daemon or local) as psp:
        if psp is not None:
            return await capture_through(
                psp, cdp, name, context=context, only=only, skip=skip, description=description, tags=tags, policy=policy
            )
    sessions = Sessions(open_store(store), cipher=cipher)
    async with open_cdp(cdp) as connection:
        captured = await sessions.capture(
            connection, name, context=context, only=only, skip=skip, origins=origins, options=options,
            description=description, tags=dict(tags or {}), **dict(policy or {}),
        )
    assert captured.version is not None
    report = captured.state.report
    return Captured(captured.info, captured.version, list(report.origins_covered), uncovered_list(report))


async def restore(
    cdp: str,
    ref: str,
    *,
    store: str | None = None,
    context: str | None = None,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    clean: bool = False,
    options: Sequence[str] = (),
    no_daemon: bool = False,
) -> dict[str, Any]:
    """Restore ``ref`` (``NAME``, ``NAME@N`` or a session id) into the browser at ``cdp``; the restore summary.

    Restore ``options`` are honoured in this process only, so they keep the work here.
    """
    name, number = split_ref(ref)
    async with daemon_for_store(store, no_daemon=no_daemon or bool(options)) as psp:
        if psp is not None:
            info = await psp.session(name)  # an unknown name fails before attaching
            async with attached(psp, cdp) as browser:
                return await psp.restore(
                    info.id, browser, version=number, context=context, only=only, skip=skip, clean=clean or None
                )
    sessions = Sessions(open_store(store))
    await sessions.get(ref)  # an unknown name fails before connecting
    async with open_cdp(cdp) as connection:
        info, report = await sessions.restore(
            connection, ref, context=context, only=only, skip=skip, clean=clean, options=options
        )
    return {"id": info.id, "name": info.name, "version": info.head, **report.as_dict()}
