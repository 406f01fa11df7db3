"""Session events for ``/v1/events`` subscribers: this daemon's, and other daemons' through Redis.

:meth:`Events.publish` queues an event without ever waiting; :meth:`Events.run` (a
task of the daemon) takes them in order and hands each to every subscriber whose
filter matches it. Each subscriber has a bounded buffer, and one that falls behind by
more than that is dropped (its WebSocket is closed with code 1013, "try again").

* **Versions are announced once.** A ``version`` event is known by its session id and
  version number; the second announcement of the same version (a version this daemon
  wrote comes back from Redis pub/sub) is dropped, whichever came first.
* **Other writers' versions** (other daemons, ``psp`` commands) reach subscribers when
  the store is Redis: :func:`forward_store_notices` subscribes to the store's pub/sub
  channel (:meth:`RedisStore.subscribe`) and turns each notice into a ``version``
  event with the session and version metadata read from the store. Pub/sub keeps
  nothing: notices published while the daemon's subscription is down (Redis
  restarting) are not seen; the subscription is renewed with backoff.
* **Deltas on request.** A subscriber that asked for them (``/v1/events?delta=1``) gets
  each ``version`` event with a ``delta``: counts and item names per component
  (:meth:`DaemonSessions.version_delta`; never values). It is worked out once per
  version, and only when such a subscriber wants that session's events.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from ..errors import PspError
from ..store import RedisStore, Sessions
from .backoff import Backoff

__all__ = ["Events", "Subscriber", "forward_store_notices"]

log = logging.getLogger("psp_cdp.daemon")

#: Versions remembered as announced, for dropping the second announcement.
_SEEN = 4096
#: Events waiting for the pump at most; more are dropped (and logged).
_QUEUE = 4096

DeltaSource = Callable[[dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


class Subscriber:
    def __init__(self, refs: set[str] | None, buffer: int, delta: bool = False,
                 visible: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.refs = refs
        self.delta = delta
        #: Which sessions this subscriber may see at all (a tenant's API key: its tenant's only).
        self.visible = visible
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](buffer)
        self.overflowed = False

    def wants(self, event: dict[str, Any]) -> bool:
        session = event.get("session") or {}
        if self.visible is not None and not self.visible(session):
            return False
        if not self.refs:
            return True
        return session.get("id") in self.refs or session.get("name") in self.refs

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            self.overflowed = True
            self.send.close()
        except trio.ClosedResourceError:
            pass


class Events:
    def __init__(self, buffer: int = 256) -> None:
        self._subscribers: set[Subscriber] = set()
        self._buffer = buffer
        self._queue_send, self._queue_receive = trio.open_memory_channel[dict[str, Any]](_QUEUE)
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.running = False
        self.closed = False
        #: Versions other writers announced through the store, handed to subscribers.
        self.forwarded = 0
        #: Events dropped because the queue was full.
        self.dropped = 0
        #: Whether the store's notices are being followed (a Redis store), and how that goes.
        self.store_notices: dict[str, Any] = {"following": False, "error": None}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, session: dict[str, Any], **extra: Any) -> None:
        """Queue an event for the subscribers; never waits."""
        event = {"type": kind, "session": session, **extra}
        if not self.running:
            if not self._first(event):
                return
            self._deliver(event, None)
            return
        try:
            self._queue_send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("the event queue is full: a %s event of %s was dropped", kind, session.get("name"))

    def announced(self, session_id: str, version: int) -> bool:
        """Whether that version was announced already."""
        return (session_id, version) in self._seen

    def _first(self, event: dict[str, Any]) -> bool:
        """Whether this is the first announcement of its version (any other event: True)."""
        if event["type"] != "version":
            return True
        key = (str(event["session"].get("id")), int(event["version"]["version"]))
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        return True

    async def run(self, delta: DeltaSource | None = None) -> None:
        """Hand queued events to subscribers, in order, working out deltas where asked for."""
        self.running = True
        try:
            async for event in self._queue_receive:
                if not self._first(event):
                    continue
                worked_out = None
                if delta is not None and event["type"] == "version":
                    if any(s.delta and s.wants(event) for s in self._subscribers):
                        worked_out = await delta(event["session"], event["version"])
                self._deliver(event, worked_out)
        finally:
            self.running = False

    def _deliver(self, event: dict[str, Any], delta: dict[str, Any] | None) -> None:
        with_delta = {**event, "delta": delta} if delta is not None else event
        for subscriber in list(self._subscribers):
            if subscriber.wants(event):
                subscriber.offer(with_delta if subscriber.delta else event)

    @contextmanager
    def subscribe(self, refs: set[str] | None = None, *, delta: bool = False,
                  visible: Callable[[dict[str, Any]], bool] | None = None) -> Iterator[Subscriber]:
        """A subscription to events of the sessions ``refs`` (ids or names; all if none) that ``visible`` lets through."""
        subscriber = Subscriber(refs, self._buffer, delta, visible)
        if self.closed:
            subscriber.send.close()
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)
            subscriber.send.close()

    def close(self) -> None:
        """End every subscription (the daemon is stopping)."""
        self.closed = True
        for subscriber in list(self._subscribers):
            subscriber.send.close()


async def forward_store_notices(events: Events, sessions: Sessions, *, backoff: tuple[float, float] = (0.2, 10.0)) -> None:
    """Publish the versions other writers of a Redis store announce; returns at once for other stores.

    A subscription that cannot be made, or is lost, is made again with backoff.
    """
    store = sessions.store
    if not isinstance(store, RedisStore):
        return
    waits = Backoff(*backoff)
    while True:
        notices = None
        since = trio.current_time()
        try:
            notices = await trio.to_thread.run_sync(store.subscribe, abandon_on_cancel=True)
            events.store_notices.update(following=True, error=None)
            log.info("following the version notices of %s", store.location)
            while True:
                notice = await trio.to_thread.run_sync(notices.get, 1.0, abandon_on_cancel=True)
                if notice is not None:
                    await _forward(events, store, notice)
        except Exception as exc:  # a PspError; anything else is logged with its traceback, and tried again too
            events.store_notices.update(following=False, error=str(exc) or type(exc).__name__)
            if trio.current_time() - since > 4 * backoff[1]:
                waits.reset()  # it held for a while: this is a new outage
            delay = waits.next()
            if isinstance(exc, PspError):
                log.warning("cannot follow the version notices of %s: %s; trying again in %.1f s", store.location, exc, delay)
            else:
                log.error("following the version notices of %s failed; trying again in %.1f s", store.location, delay, exc_info=exc)
        finally:
            if notices is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(notices.close)
        await trio.sleep(delay)


async def _forward(events: Events, store: RedisStore, notice: dict[str, Any]) -> None:
    session_id, number = notice.get("session"), notice.get("version")
    if not isinstance(session_id, str) or not isinstance(number, int) or isinstance(number, bool):
        return
    if not events.subscribers or events.announced(session_id, number):
        return

    def read() -> tuple[Any, Any]:
        info = store.find(session_id)
        if info is None:
            return None, None
        found = next((v for v in store.versions(info) if v.version == number), None)
        return info, found

    try:
        info, version = await trio.to_thread.run_sync(read)
    except Exception as exc:
        log.warning("cannot read version %s of session %s announced by the store: %s", number, session_id, exc)
        return
    if info is None or version is None:
        return  # deleted (or pruned) meanwhile
    if events.announced(session_id, number):
        return
    events.forwarded += 1
    events.publish("version", info.with_head(version).as_dict(), version=version.as_dict())
