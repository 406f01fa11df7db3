"""Session events for ``/v1/events`` subscribers, within one daemon.

:meth:`Events.publish` hands an event to every subscriber whose filter matches it,
without ever waiting: each subscriber has a bounded buffer, and one that falls behind
by more than that is dropped (its WebSocket is closed with code 1013, "try again").

Not yet (a later part of issue 5): events from other daemons sharing a Redis store
(pub/sub), and deltas on request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

__all__ = ["Events", "Subscriber"]


class Subscriber:
    def __init__(self, refs: set[str] | None, buffer: int) -> None:
        self.refs = refs
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](buffer)
        self.overflowed = False

    def wants(self, event: dict[str, Any]) -> bool:
        if not self.refs:
            return True
        session = event.get("session") or {}
        return session.get("id") in self.refs or session.get("name") in self.refs

    def offer(self, event: dict[str, Any]) -> None:
        if not self.wants(event):
            return
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
        self.closed = False

    def publish(self, kind: str, session: dict[str, Any], **extra: Any) -> None:
        event = {"type": kind, "session": session, **extra}
        for subscriber in list(self._subscribers):
            subscriber.offer(event)

    @contextmanager
    def subscribe(self, refs: set[str] | None = None) -> Iterator[Subscriber]:
        subscriber = Subscriber(refs, self._buffer)
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
