"""The OpenAPI 3.1 document of the control API, generated from the route table.

Every path and method in the document is a :class:`~psp_cdp.daemon.app.Route` the
daemon dispatches, every request body schema is the one it validates with, and every
error status listed is one the endpoint can answer with.

Security: the ``bearer`` scheme (an API key, ``Authorization: Bearer psp_...``) applies
to the optional TCP listener only; over the Unix socket no key is asked for. Each
operation's ``security`` says so: ``{}`` (nothing, the Unix socket) or ``bearer`` with
the scopes the route needs over TCP (:attr:`Route.scopes`; an empty list: any valid
key). ``GET /v1/health`` needs no key on either.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import __version__
from .api import PROTOCOL_VERSION
from .apikeys import SCOPES
from .app import MAX_BODY, Route
from .schema import SCHEMAS, ref

__all__ = ["document"]

_REASONS = {
    400: "the body is not JSON",
    401: "over TCP: no API key, or one that is not valid (malformed, unknown or revoked)",
    403: "over TCP: the API key lacks a scope this operation needs; on the Unix socket: the peer is neither the "
    "daemon's user, root, nor in the socket's group",
    404: "unknown session, version, browser, watch, recording, replay or path",
    405: "method not allowed",
    409: "conflict: the name is taken, the session has no version yet, or the browser context is being recorded already",
    413: f"the body is over {MAX_BODY} bytes",
    422: "the request fails validation",
    426: "a WebSocket upgrade is required",
    500: "internal error",
    502: "the browser is detached, dead or unreachable, or answered with an error",
    503: "the store cannot be reached (over TCP: or the daemon cannot read its API keys)",
}


_PATH_PARAMETERS = (
    ("/v1/sessions/", "session id or name"), ("/v1/browsers/", "browser id"), ("/v1/watches/", "watch id"),
    ("/v1/recordings/", "recording id"), ("/v1/replays/", "replay id"),
)


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.scopes is None:
        operation["security"] = [{}]
    else:
        operation["security"] = [{}, {"bearer": list(route.scopes)}]
    if route.tag:
        operation["tags"] = [route.tag]
    if route.description:
        operation["description"] = route.description
    parameters = []
    for segment in route.segments:
        if segment.startswith("{"):
            name = segment[1:-1]
            what = next(
                (what for prefix, what in _PATH_PARAMETERS if route.path.startswith(prefix)), "id"
            )
            parameters.append({"name": name, "in": "path", "required": True, "description": what,
                               "schema": {"type": "string", "minLength": 1}})
    for query in route.query:
        schema: dict[str, Any] = {"type": "array", "items": query.schema} if query.repeatable else query.schema
        parameter = {"name": query.name, "in": "query", "required": False, "description": query.description, "schema": schema}
        if query.repeatable:
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    responses: dict[str, Any] = {}
    if route.websocket:
        responses["101"] = {
            "description": "switching to the WebSocket protocol; each message is a JSON text message of this schema",
            "content": {"application/json": {"schema": route.response}},
        }
    elif route.response is None:
        responses[str(route.status)] = {"description": "done; no body"}
    else:
        responses[str(route.status)] = {
            "description": "success",
            "content": {"application/json": {"schema": route.response}},
        }
    for status in sorted(_errors(route)):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    operation["responses"] = responses
    return operation


def _errors(route: Route) -> set[int]:
    """The error statuses of a route: its own, 500, 403 (Unix peers, scopes), and over TCP 401 and 503 (keys)."""
    statuses = {*route.errors, 500, 403}
    if route.scopes is not None:
        statuses.update((401, 503))
    return statuses


def document(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    used_errors = {500}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        used_errors.update(_errors(route))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "psp_cdp control API",
            "version": PROTOCOL_VERSION,
            "summary": "Capture, store and restore browser sessions over a local socket",
            "description": "HTTP/1.1 with JSON bodies over a Unix socket, and optionally over TCP with TLS 1.3. "
            'Every error answer is `{"message": ...}`. A session `{id}` may be given by id or by name. A method '
            "a path does not list is answered with 405 and an `Allow` header; a path not listed, with 404. "
            "Over the Unix socket no key is needed (the socket's file permissions, and the peer's credentials, "
            "decide). Over TCP every request but GET /v1/health carries an API key "
            "(`Authorization: Bearer psp_...`, `psp keys api-create`) holding the scopes the operation lists "
            f"({', '.join(SCOPES)}; admin holds every scope); a key other than an admin key sees only its "
            "tenant's sessions (tagged `psp.tenant`), browsers, watches, recordings and replays, and anything else is 404. "
            f"psp_cdp {__version__}.",
        },
        "servers": [
            {"url": "http://localhost", "description": "over the daemon's Unix socket (curl --unix-socket PATH)"},
            {
                "url": "https://{host}:{port}",
                "description": "the optional TCP listener (psp daemon --tcp HOST:PORT): TLS 1.3 only, an API key on "
                "every request",
                "variables": {"host": {"default": "localhost"}, "port": {"default": "8443"}},
            },
        ],
        "security": [{}, {"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "psp_<key id>_<secret>",
                    "description": "An API key, over the TCP listener only (the Unix socket asks for none). "
                    "Missing or not valid: 401 with `WWW-Authenticate: Bearer`; valid without the operation's "
                    "scopes: 403.",
                },
            },
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": {
                f"E{status}": {
                    "description": _REASONS[status],
                    "content": {"application/json": {"schema": ref("Error")}},
                }
                for status in sorted(used_errors)
            },
        },
    }
