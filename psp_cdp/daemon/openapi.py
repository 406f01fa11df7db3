"""The OpenAPI 3.1 document of the control API, generated from the route table.

Every path and method in the document is a :class:`~psp_cdp.daemon.app.Route` the
daemon dispatches, every request body schema is the one it validates with, and every
error status listed is one the endpoint can answer with.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import __version__
from .api import PROTOCOL_VERSION
from .app import MAX_BODY, Route
from .schema import SCHEMAS, ref

__all__ = ["document"]

_REASONS = {
    400: "the body is not JSON",
    404: "unknown session, version, browser or path",
    405: "method not allowed",
    409: "conflict: the name is taken, or the session has no version yet",
    413: f"the body is over {MAX_BODY} bytes",
    422: "the request fails validation",
    426: "a WebSocket upgrade is required",
    500: "internal error",
    502: "the browser is detached, dead or unreachable, or answered with an error",
    503: "the store cannot be reached",
}


_PATH_PARAMETERS = (("/v1/sessions/", "session id or name"), ("/v1/browsers/", "browser id"), ("/v1/watches/", "watch id"))


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
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
    for status in sorted({*route.errors, 500}):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    operation["responses"] = responses
    return operation


def document(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    used_errors = {500}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        used_errors.update(route.errors)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "psp_cdp control API",
            "version": PROTOCOL_VERSION,
            "summary": "Capture, store and restore browser sessions over a local socket",
            "description": "HTTP/1.1 with JSON bodies over a Unix socket. Every error answer is "
            '`{"message": ...}`. A session `{id}` may be given by id or by name. A method a path does not '
            "list is answered with 405 and an `Allow` header; a path not listed, with 404. "
            f"psp_cdp {__version__}.",
        },
        "servers": [{"url": "http://localhost", "description": "over the daemon's Unix socket (curl --unix-socket PATH)"}],
        "paths": paths,
        "components": {
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
