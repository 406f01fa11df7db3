"""Layer 6: the control API daemon (``psp daemon``).

HTTP/1.1 with JSON, and a WebSocket, over a Unix socket, served by hypercorn's trio
worker. :mod:`.app` is the ASGI layer (routing, errors, JSON), :mod:`.api` the
endpoints (one route table), :mod:`.schema` the JSON Schemas both validated and
documented, :mod:`.openapi` the document at ``/v1/openapi.json``, :mod:`.browsers`
the attach manager (re-attaching restarted browsers with backoff), :mod:`.events` the
``/v1/events`` feed (with other daemons' versions through Redis pub/sub, and deltas on
request), :mod:`.watches` the watches, :mod:`.recordings` recordings and replays,
:mod:`.sessions` and :mod:`.cache` the hot
versions cache, :mod:`.server` the socket, the optional TLS 1.3 TCP listener, signals
and systemd integration, :mod:`.auth` who may ask what (peer credentials on the Unix
socket, API keys and tenants over TCP), :mod:`.apikeys` the API keys file.
"""

from importlib import import_module
from typing import Any

from .apikeys import SCOPES, ApiKey, create_key, default_api_keys_path, list_keys, revoke_key, verify

#: Names served by the modules that need the server libraries, imported on first use so
#: that the API keys (and ``psp keys api-*``) do not load them.
_LAZY = {
    "PROTOCOL_VERSION": "api", "ROUTES": "api", "Daemon": "api", "MAX_BODY": "app", "App": "app",
    "default_socket_path": "server", "run_daemon": "server", "sd_notify": "server", "store_location": "server",
}

__all__ = [
    "App", "ApiKey", "Daemon", "MAX_BODY", "PROTOCOL_VERSION", "ROUTES", "SCOPES", "create_key", "default_api_keys_path",
    "default_socket_path", "list_keys", "revoke_key", "run_daemon", "sd_notify", "store_location", "verify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
