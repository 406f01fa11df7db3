"""A small ASGI application: one table of routes, JSON in and out, errors as JSON.

No web framework: :class:`App` matches ``scope["path"]`` against the :class:`Route`
table (the same table :mod:`psp_cdp.daemon.openapi` describes), reads the body up to
:data:`MAX_BODY` bytes, parses and validates it against the route's schema, calls the
handler, and turns every error into ``{"message": ..., "error": ...}`` with a fitting status
(``error`` names the class of :mod:`psp_cdp.errors` it is, :func:`error_kind`):

=====  =====================================================================
400    the body is not JSON (or the query string is not UTF-8)
401    over TCP: no API key, or one that is not valid (``WWW-Authenticate: Bearer``)
403    over TCP: the key lacks the route's scope; on the Unix socket: a peer
       that is neither the daemon's user, root, nor in the socket's group
404    no such endpoint; unknown session, version, browser, watch, recording or
       replay (or another tenant's)
405    the path exists, the method does not (``Allow`` lists the methods)
408    the body did not arrive within :data:`BODY_SECONDS` of the request's head
409    the name is taken; the session has no version to restore yet; the browser
       context is being recorded already
413    the body is over :data:`MAX_BODY` bytes
422    JSON that fails validation; any :class:`UsageError` or :class:`StateError`
426    ``/v1/events`` asked for without a WebSocket upgrade
429    over TCP: the API key made more requests in the last second than it may
       (``Retry-After`` says when to try again)
502    the browser is detached, dead or unreachable; it answered with an error
503    the store cannot be reached (over TCP: the API keys cannot be read); the
       daemon serves as many connections as it may (``Retry-After``)
500    anything else: ``{"message": "internal error"}`` (logged with its traceback)
=====  =====================================================================

Who may ask what is :mod:`psp_cdp.daemon.auth`'s to say: each request is admitted
(:meth:`Guard.admit`: peer credentials, API key) before it is routed, then checked
against its route's :attr:`Route.scopes`; handlers get the result as
:attr:`Request.access`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import trio

from ..cdp import leaf_errors, wire_json
from ..errors import (
    CdpError,
    ConflictError,
    CorruptSnapshotError,
    PspError,
    SessionExistsError,
    SessionNotFoundError,
    StateError,
    StoreUnavailableError,
    UsageError,
    VersionNotFoundError,
)
from .schema import SchemaError, validate

if TYPE_CHECKING:
    from .auth import Access, Guard

__all__ = ["ABORT", "BODY_SECONDS", "MAX_BODY", "ApiError", "App", "Encoded", "encode", "error_kind", "Query", "Request", "Response", "Route", "WebSocket", "error_status"]

log = logging.getLogger("psp_cdp.daemon")

#: Largest request body accepted, in bytes.
MAX_BODY = 1024 * 1024
#: Seconds a request's body may take to arrive, from its head.
BODY_SECONDS = 30.0
#: The scope key of a function that closes the request's connection at once (set by the server).
ABORT = "psp.abort"

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class ApiError(Exception):
    """An error answer: ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ClientGone(Exception):
    """The client went away before sending its whole request."""


@dataclass
class Response:
    status: int = 200
    #: What is answered as JSON; :class:`Encoded` is sent as it is.
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoded:
    """An answer's body already encoded (as :func:`encode` does it), for answers worth keeping."""

    data: bytes


@dataclass(frozen=True)
class Query:
    """A query parameter: ``schema`` describes one value."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    repeatable: bool = False


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    scope: dict[str, Any]
    #: Who asks (:class:`~psp_cdp.daemon.auth.Access`): set by :class:`App` for every request.
    access: Access = None  # type: ignore[assignment]

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Route:
    """One endpoint: what dispatch matches and calls, and what the OpenAPI document says."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    operation_id: str
    summary: str
    #: Schema of the JSON body (``None``: no body is read).
    body: dict[str, Any] | None = None
    query: tuple[Query, ...] = ()
    #: Status of a successful answer, and the schema of its body (``None``: no body).
    status: int = 200
    response: dict[str, Any] | None = None
    #: Error statuses this endpoint may answer with (besides 500).
    errors: tuple[int, ...] = ()
    description: str = ""
    #: A WebSocket endpoint: ``handler(daemon, WebSocket)``.
    websocket: bool = False
    tag: str = ""
    #: API key scopes a request over TCP needs (all of them; ``admin`` holds every one):
    #: ``()`` any valid key, ``None`` no key at all. Unless a route says, only ``admin`` keys.
    scopes: tuple[str, ...] | None = ("admin",)

    @property
    def segments(self) -> list[str]:
        return self.path.strip("/").split("/")


#: What an :class:`ApiError` is, by its status, as the error tree of :mod:`psp_cdp.errors` names it.
_KIND_OF_STATUS = {401: "AccessError", 403: "AccessError", 404: "NotFoundError", 502: "CdpError"}


def error_kind(error: BaseException, status: int) -> str:
    """The class of :mod:`psp_cdp.errors` an error answer names (``"PspError"``: none more specific)."""
    if isinstance(error, (ApiError, SchemaError)):
        return _KIND_OF_STATUS.get(status, "UsageError" if 400 <= status < 500 else "PspError")
    for cls in type(error).__mro__:
        if cls.__module__ == PspError.__module__:
            return cls.__name__
    return "PspError"


def error_status(error: BaseException) -> tuple[int, str]:
    """The status and message an error is answered with."""
    if isinstance(error, ApiError):
        return error.status, error.message
    if isinstance(error, SchemaError):
        return 422, str(error)
    message = str(error) or type(error).__name__
    if isinstance(error, (SessionNotFoundError, VersionNotFoundError)):
        return 404, message
    if isinstance(error, (SessionExistsError, ConflictError)):
        return 409, message
    if isinstance(error, (UsageError, StateError)):
        return 422, message
    if isinstance(error, CdpError):
        return 502, message
    if isinstance(error, StoreUnavailableError):
        return 503, message
    if isinstance(error, (CorruptSnapshotError, PspError)):
        return 500, message
    return 500, "internal error"


def encode(body: Any) -> bytes:
    """A JSON answer's body, as sent."""
    return (wire_json(body) + "\n").encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class WebSocket:
    """The ASGI side of one WebSocket connection."""

    def __init__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.query: dict[str, list[str]] = {}
        self.closed = False
        #: Who asks (:class:`~psp_cdp.daemon.auth.Access`): set by :class:`App` before the handler runs.
        self.access: Access = None  # type: ignore[assignment]
        #: When the message being sent started to be sent (``None``: none is being sent).
        self.sending_since: float | None = None

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept"})

    async def send_json(self, value: Any) -> None:
        self.sending_since = trio.current_time()
        try:
            await self._send({"type": "websocket.send", "text": wire_json(value)})
        finally:
            self.sending_since = None

    async def abort(self) -> None:
        """Close the connection at once, without a closing handshake (a send stuck on a peer that reads nothing ends)."""
        self.closed = True
        abort = self.scope.get(ABORT)
        if abort is not None:
            await abort()

    async def receive(self) -> str | bytes | None:
        """The next message; ``None`` once the client has gone."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                return message.get("text") if message.get("text") is not None else message.get("bytes", b"")
            if message["type"] == "websocket.disconnect":
                self.closed = True
                return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


class App:
    """The ASGI application over a route table; ``context`` is handed to every handler."""

    def __init__(self, routes: list[Route], context: Any, *, max_body: int = MAX_BODY, guard: Guard | None = None,
                 body_seconds: float = BODY_SECONDS) -> None:
        from .auth import Guard

        self.routes = routes
        self.context = context
        self.max_body = max_body
        self.body_seconds = body_seconds
        #: Admits requests (peer credentials, API keys); by default: no TCP listener, Unix peers checked.
        self.guard = guard if guard is not None else Guard()

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- routing ----------------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        segments: list[str | None] = path[1:].split("/") if path.startswith("/") else [None]
        allowed: list[str] = []
        found = None
        for route in self.routes:
            params = _match(route.segments, segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
            found = route
        if found is None:
            raise ApiError(404, f"no such endpoint: {method} {path}")
        raise ApiError(405, f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})", {"allow": ", ".join(allowed)})

    # -- HTTP -------------------------------------------------------------------------

    def admit(self, scope: dict[str, Any], method: str) -> tuple[Route, dict[str, str], Access]:
        """The route, its parameters and who asks; 401 or 403 before 404 or 405 for who may not ask."""
        try:
            route, params = self.match(method, scope["path"])
        except ApiError as unrouted:
            self.guard.admit(scope, None)
            raise unrouted
        access = self.guard.admit(scope, route)
        self.guard.allow(access, route)
        return route, params, access

    async def _http(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        method, path = scope["method"], scope["path"]
        asking: list[Access] = []
        try:
            response = await self._answer(scope, receive, asking)
        except ClientGone:
            return  # nobody to answer
        except Exception as error:  # every error becomes a JSON answer
            response = self._error_response(error, method, path, asking[0] if asking else None)
        await self._send(send, response)

    async def _answer(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], asking: list[Access]) -> Response:
        method, path = scope["method"], scope["path"]
        route, params, access = self.admit(scope, method)
        asking.append(access)
        if route.websocket:
            raise ApiError(426, f"{path} is a WebSocket endpoint: ask for an upgrade", {"upgrade": "websocket"})
        query = _query(scope)
        _check_query(route, query)
        body = None
        if route.body is not None:
            body = _parse(await self._read_body(scope, receive))
            validate(body, route.body)
        request = Request(method, path, params, query, body, scope, access)
        result = await route.handler(self.context, request)
        if isinstance(result, Response):
            return result
        return Response(route.status, result)

    async def _read_body(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]]) -> bytes:
        too_big = ApiError(413, f"the body is over the {self.max_body}-byte limit")
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    if int(value) > self.max_body:
                        raise too_big
                except ValueError:
                    raise ApiError(400, "Content-Length is not a number") from None
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.body_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise too_big
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        raise ApiError(408, f"the body did not arrive within {self.body_seconds:g} s", {"connection": "close"})

    def _error_response(self, error: BaseException, method: str, path: str, access: Access | None = None) -> Response:
        leaves = leaf_errors(error)
        if len(leaves) > 1 and all(isinstance(e, PspError) for e in leaves):
            error = leaves[0]
        elif len(leaves) == 1:
            error = leaves[0]
        if isinstance(error, SessionNotFoundError) and error.similar and (access is None or access.restricted):
            error = SessionNotFoundError(error.name)  # "similar" names may be other tenants'
        status, message = error_status(error)
        if status == 500 and not isinstance(error, PspError):
            log.error("%s %s failed", method, path, exc_info=error)
        elif status >= 500:
            log.warning("%s %s: %s", method, path, message)
        headers = error.headers if isinstance(error, ApiError) else {}
        return Response(status, {"message": message, "error": error_kind(error, status)}, headers)

    async def _send(self, send: Callable[[dict], Awaitable[None]], response: Response) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        if response.status == 204 or response.body is None:
            payload = b""
        else:
            try:
                payload = response.body.data if isinstance(response.body, Encoded) else encode(response.body)
            except Exception:  # a handler returned something that is not JSON
                log.exception("cannot encode the answer")
                response = Response(500, {"message": "internal error"})
                payload = encode(response.body)
            headers.append((b"content-type", b"application/json"))
        if response.status != 204:
            headers.append((b"content-length", str(len(payload)).encode()))
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        except Exception as exc:  # the client went away (or hung up while still sending its body)
            log.debug("could not answer %s: %r", response.status, exc)

    # -- WebSocket -----------------------------------------------------------------

    async def _websocket(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
        socket = WebSocket(scope, receive, send)
        try:
            route, _, socket.access = self.admit(scope, "GET")
            if not route.websocket:
                raise ApiError(404, f"{scope['path']} is not a WebSocket endpoint")
            socket.query = _query(scope)
            _check_query(route, socket.query)
        except Exception as error:
            first = await receive()  # websocket.connect
            if first["type"] == "websocket.connect":
                await self._deny(scope, send, self._error_response(error, "GET", scope["path"], socket.access))
            return
        try:
            await route.handler(self.context, socket)
        except Exception:
            log.exception("WebSocket %s failed", scope["path"])
            try:
                await socket.close(1011, "internal error")
            except Exception:
                pass

    async def _deny(self, scope: dict[str, Any], send: Callable[[dict], Awaitable[None]], response: Response) -> None:
        """Refuse a WebSocket handshake, with a JSON body where the server can send one."""
        if "websocket.http.response" in scope.get("extensions", {}):
            payload = encode(response.body)
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": response.status,
                    "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
                }
            )
            await send({"type": "websocket.http.response.body", "body": payload})
        else:
            await send({"type": "websocket.close", "code": 1008})


def _match(pattern: list[str], segments: list[str | None]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, segments):
        if actual is None:
            return None
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params


def _query(scope: dict[str, Any]) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"")
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the query string is not valid UTF-8") from None
    query: dict[str, list[str]] = {}
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    return query


def _check_query(route: Route, query: dict[str, list[str]]) -> None:
    known = {q.name: q for q in route.query}
    for name, values in query.items():
        parameter = known.get(name)
        if parameter is None:
            names = ", ".join(known) or "none"
            raise ApiError(422, f"unknown query parameter {name!r} (known: {names})")
        if len(values) > 1 and not parameter.repeatable:
            raise ApiError(422, f"query parameter {name!r} is given more than once")
        for value in values:
            validate(value, parameter.schema, f"query parameter {name!r}")


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError(400, "the body is empty; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
