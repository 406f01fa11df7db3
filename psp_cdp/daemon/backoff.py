"""The daemon's one backoff: waits that double from a first to a longest, started over after a success.

Used by what the daemon keeps up for as long as it runs (an attached browser, the
store's version notices): each loss waits :meth:`Backoff.next` seconds before trying
again, and :meth:`Backoff.reset` starts the waits over once what was lost is back.
(Bounded retries of one operation use :mod:`stamina` instead.)
"""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Waits of ``first``, then twice as long each time, up to ``longest`` seconds."""

    def __init__(self, first: float, longest: float) -> None:
        if not 0 < first <= longest:
            raise ValueError("a backoff needs 0 < first <= longest")
        self.first = first
        self.longest = longest
        self.delay = first

    def next(self) -> float:
        """The wait before the next try; the one after it is twice as long (at most ``longest``)."""
        delay = self.delay
        self.delay = min(delay * 2, self.longest)
        return delay

    def reset(self) -> None:
        """What was lost is back: the next loss waits ``first`` again."""
        self.delay = self.first
