"""Every error psp_cdp raises on purpose.

One tree, rooted at :class:`PspError`; each layer translates what the layer below
raised into the most specific error of this tree at its boundary, so callers catch
by class and never by message text::

    PspError
    ├── UsageError                 a user mistake: a bad name, option or argument
    ├── NotFoundError              no such thing: a session, version, browser, watch, recording, replay
    ├── AccessError                the daemon refused who asks (no API key, a bad one, a missing scope)
    ├── CdpError                   talking to the browser
    │   ├── EndpointError          the endpoint is unreachable or is not a DevTools endpoint
    │   ├── BrowserClosedError     the connection or the target went away
    │   │   └── BrowserTimeoutError  the browser did not answer a command in time
    │   └── ProtocolError          the browser answered a command with an error
    ├── StateError                 capturing or restoring a state component
    ├── SnapshotError              encoding or decoding a snapshot
    │   └── CorruptSnapshotError   truncated, corrupted or not a snapshot at all
    └── StoreError                 the session store
        ├── SessionNotFoundError   no session with that name or id (a NotFoundError too)
        ├── SessionExistsError     the name is taken
        ├── VersionNotFoundError   the session has no such version (a NotFoundError too)
        ├── ConflictError          another writer wrote the version this one meant to write
        └── StoreUnavailableError  the store cannot be reached (after retries)

Through the daemon the same classes are raised: its error answers name the class
(``{"message": ..., "error": "SessionNotFoundError"}``), and the clients raise a
:class:`~psp_cdp.client.DaemonError` that is also an instance of that class, so
``except SessionNotFoundError`` works alike in process and through the daemon.
"""

from __future__ import annotations

__all__ = [
    "PspError",
    "UsageError",
    "NotFoundError",
    "AccessError",
    "CdpError",
    "EndpointError",
    "BrowserClosedError",
    "BrowserTimeoutError",
    "ProtocolError",
    "StateError",
    "SnapshotError",
    "CorruptSnapshotError",
    "StoreError",
    "SessionNotFoundError",
    "SessionExistsError",
    "VersionNotFoundError",
    "ConflictError",
    "StoreUnavailableError",
]


class PspError(Exception):
    """Root of every error psp_cdp raises on purpose."""


class UsageError(PspError):
    """A user mistake: reported as one line, without a traceback."""


class NotFoundError(PspError):
    """No such thing: a session, a version, an attached browser, a watch, a recording or a replay."""


class AccessError(PspError):
    """The daemon refused who asks: no API key, one that is not valid, or one without the scope needed."""


class CdpError(PspError):
    """Something went wrong between psp_cdp and the browser."""


class EndpointError(CdpError):
    """The endpoint cannot be reached, or what answers there is not a browser."""

    def __init__(self, endpoint: str, problem: str) -> None:
        super().__init__(f"{endpoint}: {problem}")
        self.endpoint = endpoint
        self.problem = problem


class BrowserClosedError(CdpError):
    """The browser connection (or the target a session was attached to) is gone."""


class BrowserTimeoutError(BrowserClosedError):
    """The browser did not answer a command within its deadline (it hangs, or it is stopped)."""


class ProtocolError(CdpError):
    """The browser answered a command with an error."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method} failed: {message}" + (f" ({code})" if code is not None else ""))
        self.method = method
        self.code = code
        self.browser_message = message


class StateError(PspError):
    """A state component could not be captured or restored."""


class SnapshotError(PspError):
    """A snapshot could not be encoded or decoded."""


class CorruptSnapshotError(SnapshotError):
    """The bytes are truncated, corrupted, or not a psp snapshot."""


class StoreError(PspError):
    """The session store failed or was asked for something it cannot do."""


class SessionNotFoundError(StoreError, NotFoundError):
    """No session has that name or id; ``similar`` lists names that come close."""

    def __init__(self, name: str, similar: list[str] | None = None) -> None:
        self.name = name
        self.similar = list(similar or [])
        hint = f"; similar: {', '.join(self.similar)}" if self.similar else ""
        super().__init__(f"no session named {name!r}{hint}")


class SessionExistsError(StoreError):
    """A session with that name exists already."""


class VersionNotFoundError(StoreError, NotFoundError):
    """The session exists but has no such version (never written, or removed by retention)."""


class ConflictError(StoreError):
    """Optimistic concurrency: the version a writer meant to write exists already."""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        super().__init__(f"session {name!r}: version {version} was written by another writer meanwhile")


class StoreUnavailableError(StoreError):
    """The store did not answer, after retrying with backoff."""
