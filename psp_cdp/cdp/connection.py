"""One WebSocket to the browser, many flat sessions over it.

A :class:`CdpConnection` owns the browser-level WebSocket and a reader task. Commands
go out through :meth:`CdpSession.execute` (typed ``mycdp`` wrappers) or
:meth:`CdpSession.send` (raw JSON, for when a wrapper is wrong or missing); each waits
for its own answer. Events are delivered to :class:`EventStream` listeners.

Guarantees:

* When the connection ends, every pending command fails at once with
  :class:`BrowserClosedError`, raised in the caller's own task so its traceback
  points at the call. When a target detaches, the same happens to the commands of
  its session.
* The reader never blocks on a listener. Each stream is a bounded channel; when it is
  full, the new event is dropped for that stream and counted in
  ``EventStream.statistics().dropped`` (a debug log says so too).
* Events ``mycdp`` cannot parse (new events, new enum values from a newer browser)
  never stop the reader: a stream that asked for them by method name gets a
  :class:`RawEvent`; a stream that asked by class gets a :class:`RawEvent` too, and
  the parse failure is logged at debug level.
* Messages up to :data:`MAX_MESSAGE_SIZE` are accepted (Chromium sends up to 100 MiB).
* Every command has a deadline: the connection's ``command_timeout`` (:data:`COMMAND_TIMEOUT`,
  or ``$PSP_CDP_TIMEOUT`` seconds), or the ``timeout`` given to the call. A command the
  browser does not answer in time raises :class:`BrowserTimeoutError`; its answer, if it
  comes later, is dropped.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import mycdp
import mycdp.util
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, WebSocketConnection, connect_websocket_url

from ..errors import BrowserClosedError, BrowserTimeoutError, EndpointError, ProtocolError
from .endpoint import resolve_endpoint
from .nursery import single_error

__all__ = [
    "COMMAND_TIMEOUT",
    "MAX_MESSAGE_SIZE",
    "CdpConnection",
    "CdpSession",
    "EventStream",
    "EventStreamStatistics",
    "Posted",
    "RawEvent",
    "connect_cdp",
    "open_cdp",
    "wire_json",
    "wire_text",
]

log = logging.getLogger("psp_cdp.cdp")

T = TypeVar("T")

#: Largest message accepted from the browser.
MAX_MESSAGE_SIZE = 100 * 1024 * 1024
#: Seconds the browser has to answer a command, unless the connection or the call says otherwise.
COMMAND_TIMEOUT = 120.0


def _command_timeout() -> float:
    """``$PSP_CDP_TIMEOUT`` when it is a number of seconds above 0, else :data:`COMMAND_TIMEOUT`."""
    try:
        value = float(os.environ.get("PSP_CDP_TIMEOUT", ""))
    except ValueError:
        return COMMAND_TIMEOUT
    return value if 0 < value < float("inf") else COMMAND_TIMEOUT


_RECEIVE_BUFFER = 256 * 1024
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def wire_json(value: Any) -> str:
    """Compact JSON text that carries every string exactly, unpaired surrogates included.

    ValueError for NaN and infinities: they are not JSON, and a browser sent one never answers.
    """
    return wire_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def wire_text(text: str) -> str:
    """JSON text made fit for the wire: non-ASCII text stays as is; only lone surrogates,
    which UTF-8 cannot carry, are written as ``\\uXXXX`` escapes, which JSON parsers (the
    browser's included) read back as the same code unit."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True, slots=True)
class RawEvent:
    """An event as the browser sent it, for events ``mycdp`` does not know or cannot parse."""

    method: str
    params: dict[str, Any]
    session_id: str | None = None


def _event_method(event_type: type | str) -> str:
    if isinstance(event_type, str):
        return event_type
    for method, cls in mycdp.util._event_parsers.items():
        if cls is event_type:
            return method
    raise TypeError(f"{event_type!r} is not a CDP event class")


@dataclass(frozen=True, slots=True)
class EventStreamStatistics:
    buffered: int
    dropped: int


class EventStream:
    """Events for one listener, in the order the browser sent them.

    Iterate it, or ``await receive()``; both raise :class:`BrowserClosedError` (iteration:
    ends) once the session is gone and the buffered events are consumed.
    """

    def __init__(self, session: CdpSession, methods: dict[str, bool], buffer: int) -> None:
        self._session = session
        self._methods = methods  # method -> wants the parsed class
        self._send, self._receive = trio.open_memory_channel[Any](buffer)
        self._dropped = 0

    def statistics(self) -> EventStreamStatistics:
        return EventStreamStatistics(self._receive.statistics().current_buffer_used, self._dropped)

    def _offer(self, method: str, params: dict[str, Any], session_id: str | None) -> None:
        event: Any = RawEvent(method, params, session_id)
        if self._methods[method]:
            try:
                event = mycdp.util.parse_json_event({"method": method, "params": params})
            except Exception as exc:  # a newer browser's enum value or field
                log.debug("cannot parse %s (%s); delivering it raw", method, exc)
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._dropped += 1
            log.debug("event stream full; dropped %s", method)
        except trio.ClosedResourceError:
            pass

    def _close(self) -> None:
        self._send.close()

    async def receive(self) -> Any:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise BrowserClosedError(self._session.closed_reason or "event stream closed") from None

    def receive_nowait(self) -> Any:
        """The next buffered event; ``trio.WouldBlock`` if there is none yet."""
        try:
            return self._receive.receive_nowait()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise BrowserClosedError(self._session.closed_reason or "event stream closed") from None

    async def wait(self, predicate: Callable[[Any], bool] = lambda event: True) -> Any:
        """The next event for which ``predicate`` is true; earlier ones are discarded."""
        while True:
            event = await self.receive()
            if predicate(event):
                return event

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        try:
            async for event in self._receive:
                yield event
        except trio.ClosedResourceError:
            return


@dataclass(slots=True)
class _Pending:
    method: str
    session_id: str | None
    done: trio.Event = field(default_factory=trio.Event)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    closed: str | None = None


class Posted:
    """Commands written to the browser whose answers are still to come (:meth:`CdpSession.post`)."""

    def __init__(self, connection: CdpConnection) -> None:
        self._connection = connection
        self._pendings: list[tuple[int, str, _Pending]] = []

    async def results(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for every answer, in order, at most ``timeout`` seconds (the connection's deadline by default);
        the first failure is raised, :class:`BrowserTimeoutError` when an answer did not come in time."""
        seconds = self._connection.command_timeout if timeout is None else timeout
        try:
            with trio.move_on_after(seconds):
                for _, _, pending in self._pendings:
                    if pending.closed is None:
                        await pending.done.wait()
        finally:
            self.aclose()
        for _, method, pending in self._pendings:
            if not pending.done.is_set() and pending.closed is None:
                raise BrowserTimeoutError(f"{method}: the browser did not answer within {seconds:g}s ({self._connection.endpoint})")
        results = []
        for _, method, pending in self._pendings:
            if pending.closed is not None:
                raise BrowserClosedError(f"{method}: {pending.closed} ({self._connection.endpoint})")
            if pending.error is not None:
                raise ProtocolError(method, pending.error.get("code"), str(pending.error.get("message", pending.error)))
            results.append(pending.result or {})
        return results

    def aclose(self) -> None:
        """Forget the commands: answers that come later are dropped."""
        for command_id, _, _ in self._pendings:
            self._connection._pending.pop(command_id, None)


class CdpSession:
    """A flat session on one target (or, for :class:`CdpConnection`, the browser itself)."""

    def __init__(self, connection: CdpConnection, session_id: str | None, target_id: str | None) -> None:
        self._connection = connection
        self.session_id = session_id
        self.target_id = target_id
        self._streams: list[EventStream] = []
        self.closed_reason: str | None = None

    @property
    def connection(self) -> CdpConnection:
        return self._connection

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    async def execute(self, command: Generator[dict[str, Any], dict[str, Any], T]) -> T:
        """Run a typed ``mycdp`` command and return its parsed result."""
        request = next(command)
        response = await self.send(request["method"], request.get("params"))
        try:
            command.send(response)
        except StopIteration as stop:
            return stop.value
        raise ProtocolError(request["method"], None, "command wrapper did not finish")

    async def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> dict[str, Any]:
        """Send a command as raw JSON; its raw JSON result (within ``timeout`` seconds: the connection's deadline by default)."""
        return (await (await self.post((method, params))).results(timeout))[0]

    async def send_all(self, *commands: tuple[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
        """Send several raw commands back to back, in order, then wait for all their results.

        A target paused at its start (``waitForDebuggerOnStart``) answers some commands only
        once it runs: send those together with ``Runtime.runIfWaitingForDebugger``.
        """
        return await (await self.post(*commands)).results()

    async def post(self, *commands: tuple[str, dict[str, Any] | None]) -> Posted:
        """Write raw commands back to back, in order, and return without waiting for their answers.

        The browser handles a session's commands in the order they were written; await
        :meth:`Posted.results` for the answers (its first failure is raised there). Always
        await it, or ``aclose`` it: until then the commands are remembered.
        """
        return await self._connection._post_many([(m, p or {}) for m, p in commands], self)

    @contextmanager
    def listen(self, *events: type | str, buffer: int = 1024) -> Iterator[EventStream]:
        """Receive these events (``mycdp`` classes or raw method names) while the block runs."""
        methods = {_event_method(e): not isinstance(e, str) for e in events}
        stream = EventStream(self, methods, buffer)
        if self.closed:
            stream._close()
        self._streams.append(stream)
        try:
            yield stream
        finally:
            self._streams.remove(stream)
            stream._close()

    def _dispatch(self, method: str, params: dict[str, Any]) -> None:
        for stream in self._streams:
            if method in stream._methods:
                stream._offer(method, params, self.session_id)

    def _mark_closed(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        for stream in self._streams:
            stream._close()

    async def detach(self) -> None:
        """Detach from the target; the target itself is left as it is."""
        if self.session_id is None or self.closed:
            return
        try:
            await self._connection.send("Target.detachFromTarget", {"sessionId": self.session_id})
        except (ProtocolError, BrowserClosedError):
            pass
        self._connection._forget(self.session_id, "detached")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} session={self.session_id} target={self.target_id}>"


class CdpConnection(CdpSession):
    """The browser-level session and owner of the WebSocket."""

    def __init__(self, ws: WebSocketConnection, endpoint: str, url: str) -> None:
        super().__init__(self, None, None)
        self.endpoint = endpoint
        self.url = url
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        #: Seconds the browser has to answer a command (see :data:`COMMAND_TIMEOUT`).
        self.command_timeout = _command_timeout()
        self._sessions: dict[str, CdpSession] = {}

    # -- sessions ---------------------------------------------------------

    async def attach(self, target_id: str) -> CdpSession:
        """Attach to a target with a flat session."""
        result = await self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        return self.session(result["sessionId"], target_id)

    def session(self, session_id: str, target_id: str | None = None) -> CdpSession:
        """The session object for a session id (one the browser auto-attached, for one)."""
        session = self._sessions.get(session_id)
        if session is None:
            session = CdpSession(self, session_id, target_id)
            self._sessions[session_id] = session
            if self.closed:
                session._mark_closed(self.closed_reason or "closed")
        return session

    def _forget(self, session_id: str, reason: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session._mark_closed(f"target {session.target_id or session_id} {reason}")
        for pending in self._pending.values():
            if pending.session_id == session_id and not pending.done.is_set():
                pending.closed = f"target {reason}"
                pending.done.set()

    # -- the wire -----------------------------------------------------------

    async def _post_many(self, commands: list[tuple[str, dict[str, Any]]], session: CdpSession) -> Posted:
        """Write the commands in order; their answers are awaited through the :class:`Posted`."""
        posted = Posted(self)
        try:
            for method, params in commands:
                if session.closed:
                    raise BrowserClosedError(f"{method}: {session.closed_reason} ({self.endpoint})")
                command_id = next(self._ids)
                message: dict[str, Any] = {"id": command_id, "method": method, "params": params}
                if session.session_id is not None:
                    message["sessionId"] = session.session_id
                try:
                    text = wire_json(message)
                except ValueError:
                    raise ProtocolError(method, None, "a number in the command is not finite (NaN or infinity); not sent") from None
                pending = _Pending(method, session.session_id)
                self._pending[command_id] = pending
                posted._pendings.append((command_id, method, pending))
                try:
                    await self._ws.send_message(text)
                except ConnectionClosed:
                    for _, _, sent in posted._pendings:
                        sent.closed = "browser connection closed"
                    break
        except BaseException:
            posted.aclose()
            raise
        return posted

    async def _read(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        reason = "browser connection closed"
        try:
            while True:
                message = await self._ws.get_message()
                try:
                    self._dispatch_message(message)
                except Exception:  # never let one bad message stop the reader
                    log.exception("dropping a CDP message that could not be handled")
        except ConnectionClosed as exc:
            if exc.reason is not None and exc.reason.code == 1009:
                reason = f"browser sent a message over the {MAX_MESSAGE_SIZE}-byte limit"
        finally:
            self._close_everything(reason)

    def _dispatch_message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        command_id = message.get("id")
        if command_id is not None:
            pending = self._pending.get(command_id)
            if pending is not None and not pending.done.is_set():
                if "error" in message:
                    pending.error = message["error"]
                else:
                    pending.result = message.get("result", {})
                pending.done.set()
            return
        method = message.get("method")
        if not isinstance(method, str):
            return
        params = message.get("params") or {}
        if method == "Target.attachedToTarget":
            info = params.get("targetInfo") or {}
            self.session(params["sessionId"], info.get("targetId"))
        elif method == "Target.detachedFromTarget":
            self._forget(params.get("sessionId", ""), "detached or closed")
        session_id = message.get("sessionId")
        if session_id is None:
            self._dispatch(method, params)
        else:
            session = self._sessions.get(session_id)
            if session is not None:
                session._dispatch(method, params)

    def _close_everything(self, reason: str) -> None:
        self._mark_closed(reason)
        for session in list(self._sessions.values()):
            session._mark_closed(reason)
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.closed = reason
                pending.done.set()

    async def aclose(self) -> None:
        """Close the WebSocket; the browser keeps running."""
        self._close_everything("connection closed by psp_cdp")
        # Cancelled, the WebSocket's reader is cancelled too and the browser's answer to
        # the close frame is never read: send the frame and go, rather than wait for it.
        cancelled = trio.current_effective_deadline() == float("-inf")
        with trio.CancelScope(shield=True):
            with trio.move_on_after(0.05 if cancelled else 2):
                await self._ws.aclose()

    def __repr__(self) -> str:
        return f"<CdpConnection {self.endpoint}>"


async def connect_cdp(nursery: trio.Nursery, endpoint: str | int, *, timeout: float = 10.0) -> CdpConnection:
    """Connect to a browser; the reader runs in ``nursery`` until :meth:`CdpConnection.aclose`."""
    url = await resolve_endpoint(endpoint, timeout=timeout)
    try:
        with trio.fail_after(timeout):
            ws = await connect_websocket_url(
                nursery, url, max_message_size=MAX_MESSAGE_SIZE, receive_buffer_size=_RECEIVE_BUFFER
            )
    except trio.TooSlowError:
        raise EndpointError(str(endpoint), f"no WebSocket handshake within {timeout:g}s") from None
    except HandshakeError as exc:
        raise EndpointError(str(endpoint), _refused(exc)) from None
    except OSError as exc:
        raise EndpointError(str(endpoint), f"cannot connect to {url}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise EndpointError(str(endpoint), f"malformed WebSocket URL: {exc}") from None
    connection = CdpConnection(ws, str(endpoint), url)
    await nursery.start(connection._read)
    return connection


@asynccontextmanager
async def open_cdp(endpoint: str | int, *, timeout: float = 10.0) -> AsyncIterator[CdpConnection]:
    """Connect to a browser for the duration of the block."""
    try:
        async with _nursery() as nursery:
            connection = await connect_cdp(nursery, endpoint, timeout=timeout)
            try:
                yield connection
            finally:
                await connection.aclose()
    except HandshakeError as exc:
        # trio-websocket reports a refused handshake from its reader task, through the nursery.
        raise EndpointError(str(endpoint), _refused(exc)) from None


def _refused(error: HandshakeError) -> str:
    """A refused WebSocket handshake in words: its status, never what the server sent with it."""
    if isinstance(error, ConnectionRejected):
        return f"the server refused the WebSocket upgrade (HTTP {int(error.status_code)}); not a DevTools endpoint"
    return "WebSocket handshake failed"


@asynccontextmanager
async def _nursery() -> AsyncIterator[trio.Nursery]:
    with single_error():
        async with trio.open_nursery() as nursery:
            yield nursery
