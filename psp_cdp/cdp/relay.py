"""A CDP endpoint on loopback for a browser reachable only through a framework's own channel.

A browser that Playwright launched over a pipe has no debugging port; the only way in
is a browser-level CDP session that the framework hands out. Such a session carries
commands and events for itself, but messages of the flat sessions attached through it
go nowhere: the framework drops them, not knowing those session ids. So the relay
serves a plain WebSocket endpoint (``ws://127.0.0.1:PORT/devtools/browser/TOKEN``) that
every part of psp_cdp, the daemon included, attaches to as to any browser, and
translates:

* ``Target.attachToTarget`` is sent with ``flatten: false``; commands of that session
  travel inside ``Target.sendMessageToTarget`` and their answers and events come back
  inside ``Target.receivedMessageFromTarget``, unwrapped into flat messages with their
  ``sessionId``.
* Flat sessions attached under such a session (iframes, workers) ride inside their root's
  wrapper with their own ``sessionId``, which Chromium routes.
* Browser-level ``Target.setAutoAttach`` and ``Target.attachToBrowserTarget`` need flat
  sessions at the top and are refused with a clear error.

The framework side is a :class:`Channels` object: the relay asks it, from the relay's
trio thread and without blocking, to open a browser session per WebSocket client, to
send a command on it, and to close it; the framework answers through
:meth:`CdpRelay.deliver`, from any thread. Each client gets a browser session of its
own, so closing the client detaches everything it attached.

The endpoint's path holds a random token and the relay lives only as long as the block
that serves it.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from .connection import MAX_MESSAGE_SIZE, wire_json, wire_text

__all__ = ["Channels", "CdpRelay", "serve_relay"]

log = logging.getLogger("psp_cdp.cdp.relay")

_NOT_FOUND = -32001  # Chromium's code for an unknown session id
_REFUSED = -32000


class Channels(Protocol):
    """The framework's side: browser-level CDP sessions, driven without blocking, from another thread.

    Each call returns at once; the outcome comes back through :meth:`CdpRelay.deliver`
    as ``("opened", client, error)``, ``("result", client, rid, result, error)``,
    ``("event", client, method, params)`` or ``("closed", client, reason)``, where
    ``error`` is ``None`` or a message.
    """

    def open(self, client: int) -> None: ...

    def send(self, client: int, rid: int, method: str, params: dict[str, Any]) -> None: ...

    def close(self, client: int) -> None: ...


@dataclass(eq=False)
class _Client:
    id: int
    ws: WebSocketConnection
    outbox: trio.MemorySendChannel[str]
    inbox: trio.MemoryReceiveChannel[str]
    opened: trio.Event = field(default_factory=trio.Event)
    open_error: str | None = None
    roots: set[str] = field(default_factory=set)  # sessions attached with flatten: false
    owner: dict[str, str] = field(default_factory=dict)  # flat session -> its root
    calls: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # rid -> (client's id, wrapped session)

    def put(self, message: dict[str, Any]) -> None:
        self.send_text(wire_json(message))

    def send_text(self, text: str) -> None:
        try:
            self.outbox.send_nowait(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def answer_error(self, command_id: int, session: str | None, code: int, message: str) -> None:
        answer: dict[str, Any] = {"id": command_id, "error": {"code": code, "message": message}}
        if session is not None:
            answer["sessionId"] = session
        self.put(answer)


class CdpRelay:
    """A loopback CDP endpoint over a framework's channels; made by :func:`serve_relay`."""

    def __init__(self, channels: Channels, token: trio.lowlevel.TrioToken, path: str) -> None:
        self.channels = channels
        self.endpoint = ""
        self._token = token
        self._path = path
        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self._rids = itertools.count(1)

    # -- from the framework's thread ---------------------------------------

    def deliver(self, message: tuple[Any, ...]) -> None:
        """Hand the relay an outcome from the framework side; safe from any thread."""
        try:
            self._token.run_sync_soon(self._on_channel, message)
        except trio.RunFinishedError:
            pass

    def _on_channel(self, message: tuple[Any, ...]) -> None:
        kind, client_id, *rest = message
        client = self._clients.get(client_id)
        if client is None:
            return
        try:
            if kind == "opened":
                client.open_error = rest[0]
                client.opened.set()
            elif kind == "result":
                self._on_result(client, *rest)
            elif kind == "event":
                self._on_event(client, *rest)
            elif kind == "closed":
                client.open_error = client.open_error or rest[0] or "browser session closed"
                client.opened.set()
                client.outbox.close()
        except Exception:  # one odd message must not stop the relay
            log.exception("dropping a message from the framework's channel")

    def _on_result(self, client: _Client, rid: int, result: dict[str, Any] | None, error: str | None) -> None:
        command_id, wrapped = client.calls.pop(rid, (None, None))
        if command_id is None:
            return
        if error is not None:
            client.answer_error(command_id, wrapped, _REFUSED, error)
        elif wrapped is None:
            client.put({"id": command_id, "result": result or {}})
        # A wrapped command's own answer arrives inside Target.receivedMessageFromTarget.

    def _on_event(self, client: _Client, method: str, params: dict[str, Any]) -> None:
        if method == "Target.receivedMessageFromTarget":
            root = params.get("sessionId", "")
            text = params.get("message") or ""
            inner = json.loads(text)
            if not isinstance(inner, dict) or not inner:
                return
            inner_params = inner.get("params") or {}
            if inner.get("method") == "Target.attachedToTarget" and "sessionId" in inner_params:
                client.owner[inner_params["sessionId"]] = root
            elif inner.get("method") == "Target.detachedFromTarget":
                client.owner.pop(inner_params.get("sessionId", ""), None)
            if "sessionId" not in inner:
                # The browser's own text goes on as it is (answers can be megabytes), with the
                # root's session id put in front.
                text = '{"sessionId":' + json.dumps(root) + "," + text.lstrip()[1:]
            client.send_text(wire_text(text))
            return
        if method == "Target.attachedToTarget" and "sessionId" in params:
            client.roots.add(params["sessionId"])
        elif method == "Target.detachedFromTarget":
            root = params.get("sessionId", "")
            client.roots.discard(root)
            for session in [s for s, r in client.owner.items() if r == root]:
                del client.owner[session]
        client.put({"method": method, "params": params})

    # -- from the WebSocket client -------------------------------------------

    def _on_client(self, client: _Client, text: str) -> None:
        try:
            message = json.loads(text)
            command_id = message["id"]
            method = message["method"]
        except (ValueError, KeyError, TypeError):
            log.debug("relay: ignoring a message that is not a CDP command")
            return
        params = message.get("params") or {}
        session = message.get("sessionId")
        if session is None:
            if method in ("Target.setAutoAttach", "Target.attachToBrowserTarget"):
                client.answer_error(
                    command_id, None, _REFUSED, f"{method} is not available at browser level over a framework's channel"
                )
                return
            if method == "Target.attachToTarget":
                params = {**params, "flatten": False}
            self._send(client, command_id, None, method, params)
            return
        root = session if session in client.roots else client.owner.get(session)
        if root is None:
            client.answer_error(command_id, session, _NOT_FOUND, f"Session with given id not found: {session}")
            return
        inner: dict[str, Any] = {"id": command_id, "method": method, "params": params}
        if session != root:
            inner["sessionId"] = session
        self._send(client, command_id, session, "Target.sendMessageToTarget", {"sessionId": root, "message": wire_json(inner)})

    def _send(self, client: _Client, command_id: int, wrapped: str | None, method: str, params: dict[str, Any]) -> None:
        rid = next(self._rids)
        client.calls[rid] = (command_id, wrapped)
        self.channels.send(client.id, rid, method, params)

    async def _serve(self, request: WebSocketRequest) -> None:
        if request.path != self._path:
            await request.reject(404)
            return
        ws = await request.accept()
        outbox, outgoing = trio.open_memory_channel[str](float("inf"))
        client = _Client(next(self._ids), ws, outbox, outgoing)
        self._clients[client.id] = client
        self.channels.open(client.id)
        try:
            await client.opened.wait()
            if client.open_error is not None:
                await ws.aclose(code=1011, reason=client.open_error[:120])
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, client, nursery.cancel_scope)
                try:
                    while True:
                        self._on_client(client, await ws.get_message())  # type: ignore[arg-type]
                except ConnectionClosed:
                    nursery.cancel_scope.cancel()
        finally:
            del self._clients[client.id]
            self.channels.close(client.id)

    async def _write(self, client: _Client, scope: trio.CancelScope) -> None:
        try:
            async for text in client.inbox:
                await client.ws.send_message(text)
        except ConnectionClosed:
            pass
        finally:
            # The framework closed the browser session (or the browser went): end the client too.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await client.ws.aclose()
            scope.cancel()


@asynccontextmanager
async def serve_relay(channels: Channels) -> AsyncIterator[CdpRelay]:
    """Serve a relay over ``channels`` on 127.0.0.1 for the duration of the block."""
    path = f"/devtools/browser/{secrets.token_hex(16)}"
    relay = CdpRelay(channels, trio.lowlevel.current_trio_token(), path)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(
                serve_websocket, relay._serve, "127.0.0.1", 0, ssl_context=None, max_message_size=MAX_MESSAGE_SIZE
            )
        )
        relay.endpoint = f"ws://127.0.0.1:{server.port}{path}"
        try:
            yield relay
        finally:
            nursery.cancel_scope.cancel()
