"""Recordings kept in sessions: record into a new version, replay a stored one.

A recording is stored as one version of its session: the state captured when the
recording started, with the recording in its ``recording`` field (docs/recording.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import trio

from ..cdp import CdpConnection
from ..errors import StateError
from ..snapshot.model import BrowserSessionState, RecordedEvent
from ..state.engine import capture_state
from ..state.pages import BrowserContext
from ..store.base import SessionInfo, VersionInfo
from ..store.sessions import Sessions, split_ref
from .player import Player, ReplayReport, Step
from .recorder import Recorder

__all__ = ["load_recording", "record", "replay"]


async def record(
    connection: CdpConnection,
    sessions: Sessions,
    name: str,
    stop: trio.Event,
    *,
    context: str | None = None,
    network: bool = True,
    dom: bool = False,
    started: Callable[[Recorder], None] | None = None,
    on_event: Callable[[RecordedEvent], None] | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    **policy: Any,
) -> tuple[SessionInfo, VersionInfo, BrowserSessionState]:
    """Capture the starting state, record until ``stop`` is set, store both as a new version."""
    state = await capture_state(connection, context=context)
    browser_context = await BrowserContext.resolve(connection, context)
    tabs = [tab.target_id for tab in state.history.tabs]
    recorder = Recorder(connection, browser_context, tabs=tabs, network=network, dom=dom, on_event=on_event)
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run, stop)
        if started is not None:
            started(recorder)
    state.recording.CopyFrom(recorder.recording())
    if not state.auth.HasField("credentials"):
        await sessions.keep_credentials(name, state)
    info, version = await sessions.save(name, state, description=description, tags=tags, **policy)
    return info, version, state


async def load_recording(sessions: Sessions, ref: str) -> tuple[SessionInfo, int, BrowserSessionState]:
    """``NAME@N``, or the newest version of ``NAME`` that holds a recording."""
    name, number = split_ref(ref)
    if number is not None:
        info, state = await sessions.load(name, number)
        if not state.HasField("recording"):
            raise StateError(f"{info.name}@{number} holds no recording")
        return info, number, state
    info, versions = await sessions.versions(name)
    for version in sorted(versions, key=lambda v: v.version, reverse=True):
        if "recording" in version.components:
            info, state = await sessions.load(name, version.version)
            return info, version.version, state
    raise StateError(f"{info.name} has no recording")


async def replay(
    connection: CdpConnection,
    sessions: Sessions,
    ref: str,
    *,
    context: str | None = None,
    speed: float | None = 1.0,
    network: str = "mock",
    timeout: float = 10.0,
    ignore_fields: Iterable[str] = (),
    on_step: Callable[[Step], None] | None = None,
) -> ReplayReport:
    """Replay the recording ``ref`` names into ``context`` of the browser behind ``connection``."""
    _, _, state = await load_recording(sessions, ref)
    player = Player(connection, state, context=context, speed=speed, network=network, timeout=timeout,
                    ignore_fields=ignore_fields, on_step=on_step)
    return await player.run()
