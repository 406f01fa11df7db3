"""Recordings and replays, served: ``psp record`` and ``psp replay`` through the control API.

**Recordings.** ``POST /v1/recordings`` runs :func:`psp_cdp.record.session.record` as a
task of the daemon and answers once the starting state is captured and every tab of the
context records, so everything done after the answer is recorded. The starting capture
takes its browser's turn (:attr:`Browser.lock`), as any capture does; from then on the
recording runs beside captures, restores and watches. Each recorded event (DOM mutations
included) is published on ``/v1/events`` as ``recording.event`` as it happens.

A recording stops, and is saved as the next version of its session, when it is asked to
(``POST /v1/recordings/{id}/stop``, ``DELETE /v1/recordings/{id}``), ``duration`` seconds
after it started, when its browser's connection is lost (what was recorded until then is
saved), when its browser is detached or its session deleted (before either happens), and
when the daemon stops (within the shutdown deadline, like watches). It stays listed with
its result (the version written, or why it failed); the last :data:`KEEP` stopped ones are
kept. One browser context is recorded by one recording at a time (409).

**Replays.** ``POST /v1/replays`` plays a stored recording into a browser context with
:class:`~psp_cdp.record.player.Player` and answers when it is done, with the report. The
replay takes its browser's turn for its whole length, as a restore does. Each step is
published as ``replay.step`` when it is done, the whole report as ``replay.finished``.
Replays are listed while they run and afterwards (the last :data:`KEEP` finished ones).

Each recording and each replay has a DevTools connection of its own to its browser: the
recorder and the player follow a browser's tabs with browser-level auto-attach, whose
settings belong to a connection, so two of them sharing one would undo each other's.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, leaf_errors, open_cdp
from ..errors import BrowserClosedError, PspError, StateError
from ..record.events import event_data
from ..record.player import Player, ReplayReport, Step
from ..record.recorder import Recorder
from ..record.session import record
from ..snapshot.model import BrowserSessionState, RecordedEvent
from ..state.pages import BrowserContext
from ..store import SessionInfo
from .app import ApiError, error_status
from .browsers import Browser
from .events import Events
from .sessions import DaemonSessions

__all__ = ["KEEP", "Claim", "Recording", "Recordings", "Replay", "Replays", "event_dict"]

log = logging.getLogger("psp_cdp.daemon")

#: Stopped recordings, and finished replays, kept listed at most (the oldest go first).
KEEP = 100


def event_dict(event: RecordedEvent) -> dict[str, Any]:
    """A recorded event as JSON: its ``data`` as an object (docs/recording.md lists its fields)."""
    try:
        data = event_data(event)
    except StateError:
        data = {}
    return {
        "type": event.type,
        "timestamp": round(event.timestamp, 3),
        "tab": event.tab,
        "frame": list(event.frame),
        "target": event.target,
        "selectors": list(event.element.selectors),
        "data": data,
    }


def _failure(error: BaseException) -> tuple[int, str]:
    """The status and message an error is answered with: the first error of the daemon's own in a group."""
    leaves = leaf_errors(error)
    first = next((e for e in leaves if isinstance(e, (PspError, ApiError))), leaves[0] if leaves else error)
    return error_status(first)


# -- recordings --------------------------------------------------------------------------


class Claim:
    """One browser context being recorded; :meth:`release` (any number of times) frees it."""

    def __init__(self, claims: dict[tuple[str, str | None], Claim], key: tuple[str, str | None]) -> None:
        self._claims = claims
        self.key = key

    def release(self) -> None:
        if self._claims.get(self.key) is self:
            del self._claims[self.key]


@dataclass
class Recording:
    id: str
    session_id: str
    name: str
    browser: str
    context: str | None
    network: bool
    dom: bool
    #: Seconds after which it stops by itself (``None``: until asked).
    duration: float | None
    #: The tenant of its session (its ``psp.tenant`` tag when the recording started).
    tenant: str | None = None
    #: The session as events carry it.
    session: dict[str, Any] = field(default_factory=dict, repr=False)
    #: "recording", "saved" or "failed" ("starting" until the answer, when it is not listed yet).
    state: str = "starting"
    started_at: float | None = None
    stopped_at: float | None = None
    #: Why it stopped: "asked", "duration", "browser lost", "browser detached", "session deleted", "daemon stopping".
    stop_reason: str | None = None
    events: int = 0
    mutations: int = 0
    exchanges: int = 0
    version: int | None = None
    stored_bytes: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    #: The status and message a failed recording is answered with.
    failure: tuple[int, str] | None = None
    start_failure: BaseException | None = field(default=None, repr=False)
    recorder: Recorder | None = field(default=None, repr=False)
    claim: Claim | None = field(default=None, repr=False)
    stop: trio.Event = field(default_factory=trio.Event, repr=False)
    ready: trio.Event = field(default_factory=trio.Event, repr=False)
    done: trio.Event = field(default_factory=trio.Event, repr=False)

    def ask_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stopped_at = time.time()
            self.stop.set()

    def exchanges_so_far(self) -> int:
        if self.recorder is None:
            return self.exchanges
        return self.recorder.exchange_count

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session": {"id": self.session_id, "name": self.name},
            "browser": self.browser,
            "context": self.context,
            "network": self.network,
            "dom": self.dom,
            "duration": self.duration,
            "state": self.state,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "events": self.events,
            "exchanges": self.exchanges_so_far(),
            "mutations": self.mutations,
            "version": self.version,
            "stored_bytes": self.stored_bytes,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }


class Recordings:
    def __init__(self, nursery: trio.Nursery, sessions: DaemonSessions, events: Events, *, keep: int = KEEP) -> None:
        self._nursery = nursery
        self._sessions = sessions
        self._events = events
        self._keep = keep
        self._recordings: dict[str, Recording] = {}
        self._claims: dict[tuple[str, str | None], Claim] = {}

    def list(self) -> list[Recording]:
        return list(self._recordings.values())

    @property
    def running(self) -> int:
        return sum(not r.done.is_set() for r in self._recordings.values())

    def get(self, recording_id: str) -> Recording:
        recording = self._recordings.get(recording_id)
        if recording is None:
            raise ApiError(404, f"no recording {recording_id!r} (start one with POST /v1/recordings)")
        return recording

    async def claim(self, browser: Browser, context: str | None) -> Claim:
        """The browser context to record, claimed (409 if it is being recorded; 422 if the browser has no such context)."""
        resolved = await BrowserContext.resolve(browser.require(), context)
        key = (browser.id, resolved.id or resolved.default_id)
        if key in self._claims:
            what = f"browser context {context}" if resolved.id else "the default browser context"
            raise ApiError(409, f"{what} of browser {browser.id} is being recorded already (GET /v1/recordings)")
        claim = self._claims[key] = Claim(self._claims, key)
        return claim

    async def start(
        self, info: SessionInfo, browser: Browser, claim: Claim, *, context: str | None = None, network: bool = True,
        dom: bool = False, duration: float | None = None, tenant: str | None = None,
    ) -> Recording:
        """Start recording into ``info``; returns once it records (its errors are raised).

        ``claim`` (from :meth:`claim`) is the recording's from here on: released when it ends.
        """
        try:
            endpoint = browser.require().url
        except BaseException:
            claim.release()
            raise
        recording = Recording(
            secrets.token_hex(8), info.id, info.name, browser.id, context, network, dom, duration,
            tenant=tenant, session=info.as_dict(), claim=claim,
        )
        self._nursery.start_soon(self._run, recording, browser, endpoint)
        await recording.ready.wait()
        if recording.start_failure is not None:
            raise recording.start_failure
        log.info("recording %s (%s) in browser %s", info.name, recording.id, browser.id)
        return recording

    async def stop(self, recording_id: str, reason: str = "asked") -> Recording:
        """Stop a recording; returns once it is saved (or has failed). A stopped one is returned as it is."""
        recording = self.get(recording_id)
        recording.ask_stop(reason)
        await recording.done.wait()  # (if the caller is cancelled meanwhile, the recording still stops and saves)
        return recording

    async def stop_where(self, *, reason: str, session_id: str | None = None, browser_id: str | None = None) -> None:
        """Stop every recording of a session, or of a browser, and wait until each is saved."""
        doomed = [
            r for r in self._recordings.values()
            if not r.done.is_set()
            and ((session_id is not None and r.session_id == session_id) or (browser_id is not None and r.browser == browser_id))
        ]
        async with trio.open_nursery() as nursery:
            for recording in doomed:
                nursery.start_soon(self.stop, recording.id, reason)

    async def stop_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for recording in list(self._recordings.values()):
                if not recording.done.is_set():
                    nursery.start_soon(self.stop, recording.id, "daemon stopping")

    async def before_detach(self, browser: Browser) -> None:
        await self.stop_where(browser_id=browser.id, reason="browser detached")

    def _list(self, recording: Recording) -> None:
        """List a recording; the oldest stopped ones beyond ``keep`` go."""
        self._recordings[recording.id] = recording
        stopped = [r.id for r in self._recordings.values() if r.done.is_set()]
        for recording_id in stopped[: max(0, len(stopped) - self._keep)]:
            del self._recordings[recording_id]

    async def _run(self, recording: Recording, browser: Browser, endpoint: str) -> None:
        lock = browser.lock

        def holding() -> bool:
            return lock.statistics().owner is trio.lowlevel.current_task()

        early: list[RecordedEvent] = []  # recorded while the recorder set up, announced after recording.started

        def publish(event: RecordedEvent) -> None:
            self._events.publish("recording.event", recording.session, recording=recording.id, event=event_dict(event))

        def on_event(event: RecordedEvent) -> None:
            if event.type == "mutation":
                recording.mutations += 1
            else:
                recording.events += 1
            if recording.ready.is_set():
                publish(event)
            else:
                early.append(event)

        try:
            async with open_cdp(endpoint) as connection, trio.open_nursery() as nursery:

                def started(recorder: Recorder) -> None:
                    if holding():
                        lock.release()  # the starting state is captured: captures and restores may go on
                    recording.recorder = recorder
                    recording.state = "recording"
                    recording.started_at = time.time()
                    self._list(recording)
                    self._events.publish("recording.started", recording.session, recording=recording.id,
                                         details=recording.as_dict())
                    for event in early:
                        publish(event)
                    early.clear()
                    if recording.duration is not None:
                        nursery.start_soon(_stop_after, recording)
                    recording.ready.set()

                nursery.start_soon(_stop_when_lost, connection, recording)
                await lock.acquire()
                try:
                    info, version, state = await record(
                        connection, self._sessions, recording.name, recording.stop, context=recording.context,
                        network=recording.network, dom=recording.dom, started=started, on_event=on_event,
                    )
                finally:
                    if holding():
                        lock.release()
                nursery.cancel_scope.cancel()
            self._saved(recording, info, version, state)
        except Exception as exc:
            if not recording.ready.is_set():
                recording.start_failure = exc
            else:
                self._failed(recording, exc)
        finally:
            recording.recorder = None  # what it recorded is saved, or lost: let it go
            if recording.claim is not None:
                recording.claim.release()
            if recording.state == "recording":  # cancelled: the daemon stopped at once
                recording.state, recording.error = "failed", "stopped before it was saved"
            elif recording.state == "starting" and recording.start_failure is None:
                recording.start_failure = ApiError(503, "the daemon is stopping")
            recording.ready.set()
            recording.done.set()

    def _saved(self, recording: Recording, info: SessionInfo, version: Any, state: BrowserSessionState) -> None:
        saved = state.recording
        recording.exchanges = len(saved.exchanges)
        recording.recorder = None
        recording.state = "saved"
        recording.stopped_at = recording.stopped_at or time.time()
        recording.events, recording.mutations = len(saved.events), len(saved.mutations)
        recording.version, recording.stored_bytes, recording.duration_ms = version.version, version.stored_bytes, saved.duration
        session = info.as_dict()
        self._events.publish("version", session, version=version.as_dict())
        self._events.publish("recording.saved", session, recording=recording.id, details=recording.as_dict(),
                             version=version.as_dict())
        log.info("recording %s of %s saved as version %d: %d event(s), %d exchange(s)",
                 recording.id, recording.name, version.version, recording.events, recording.exchanges)

    def _failed(self, recording: Recording, error: BaseException) -> None:
        recording.exchanges = recording.exchanges_so_far()
        recording.recorder = None
        recording.failure = _failure(error)
        recording.state, recording.error = "failed", recording.failure[1]
        recording.stopped_at = recording.stopped_at or time.time()
        if recording.failure[0] == 500 and not isinstance(leaf_errors(error)[0], PspError):
            log.error("recording %s of %s failed", recording.id, recording.name, exc_info=error)
        else:
            log.warning("recording %s of %s failed: %s", recording.id, recording.name, recording.error)
        self._events.publish("recording.failed", recording.session, recording=recording.id, details=recording.as_dict())


async def _stop_after(recording: Recording) -> None:
    assert recording.duration is not None
    await trio.sleep(recording.duration)
    recording.ask_stop("duration")


async def _stop_when_lost(connection: CdpConnection, recording: Recording) -> None:
    """Stop (and save what was recorded) once the recording's connection to its browser is lost."""
    with connection.listen("psp.connection-closed") as closed:
        try:
            await closed.receive()  # no such event: returns only when the connection ends
        except BrowserClosedError:
            pass
    recording.ask_stop("browser lost")


# -- replays --------------------------------------------------------------------------------


@dataclass
class Replay:
    id: str
    session_id: str
    name: str
    version: int
    browser: str
    context: str | None
    #: Times the recorded pace (``None``: each event as soon as the one before is done).
    speed: float | None
    network: str
    timeout: float
    tenant: str | None = None
    #: A replay that ended otherwise than recorded counts as failed.
    strict: bool = False
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    #: "running", "finished" (every step was tried; some may have failed) or "failed" (it could not go on).
    state: str = "running"
    error: str | None = None
    report: ReplayReport = field(default_factory=ReplayReport)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session": {"id": self.session_id, "name": self.name},
            "version": self.version,
            "browser": self.browser,
            "context": self.context,
            "speed": self.speed,
            "timeout": self.timeout,
            "state": self.state,
            "strict": self.strict,
            "failed": self.state == "failed" or bool(self.report.failed) or (self.strict and bool(self.report.differences)),
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **self.report.as_dict(),
        }


class Replays:
    def __init__(self, events: Events, *, keep: int = KEEP) -> None:
        self._events = events
        self._keep = keep
        self._replays: dict[str, Replay] = {}

    def list(self) -> list[Replay]:
        return list(self._replays.values())

    @property
    def running(self) -> int:
        return sum(r.state == "running" for r in self._replays.values())

    def get(self, replay_id: str) -> Replay:
        replay = self._replays.get(replay_id)
        if replay is None:
            raise ApiError(404, f"no replay {replay_id!r} (replays are kept while the daemon runs: the last {self._keep})")
        return replay

    async def run(
        self, info: SessionInfo, number: int, state: BrowserSessionState, browser: Browser, *,
        context: str | None = None, speed: float | None = 1.0, network: str = "mock", timeout: float = 10.0,
        ignore_fields: Iterable[str] = (), strict: bool = False, tenant: str | None = None,
    ) -> Replay:
        """Replay version ``number`` of ``info`` (``state``) into ``browser``; the finished replay.

        Errors that stop it are raised (the replay stays listed, failed); failed steps are in its report.
        """
        replay = Replay(
            secrets.token_hex(8), info.id, info.name, number, browser.id, context, speed, network, timeout, tenant=tenant,
            strict=strict, report=ReplayReport(network=network),
        )
        self._replays[replay.id] = replay
        session = info.as_dict()

        def step_done(step: Step) -> None:
            self._events.publish("replay.step", session, replay=replay.id, step=step.as_dict())

        try:
            async with browser.lock:
                async with open_cdp(browser.require().url) as connection:
                    player = Player(connection, state, context=context, speed=speed, network=network, timeout=timeout,
                                    ignore_fields=ignore_fields, on_step=step_done)
                    replay.report = player.report  # its steps, as they are done
                    await player.run()
            replay.state = "finished"
        except BaseException as exc:
            replay.state = "failed"
            if isinstance(exc, trio.Cancelled):
                replay.error = "cancelled: the request went away, or the daemon stopped"
            else:
                replay.error = _failure(exc)[1]
            raise
        finally:
            replay.finished_at = time.time()
            finished = [r.id for r in self._replays.values() if r.state != "running"]
            for replay_id in finished[: max(0, len(finished) - self._keep)]:
                del self._replays[replay_id]
            self._events.publish("replay.finished", session, replay=replay.id, report=replay.as_dict())
            counts = replay.report.counts()
            log.info("replayed %s@%d (%s) into browser %s: %s; %d done, %d retried, %d skipped, %d failed; %s", info.name,
                     number, replay.id, browser.id, replay.error or replay.state, counts["done"], counts["retried"],
                     counts["skipped"], counts["failed"],
                     "ended as recorded" if replay.report.as_recorded else f"{len(replay.report.differences)} difference(s)")
        return replay
