"""Layer 6: the control API daemon (``psp daemon``).

HTTP/1.1 with JSON, and a WebSocket, over a Unix socket, served by hypercorn's trio
worker. :mod:`.app` is the ASGI layer (routing, errors, JSON), :mod:`.api` the
endpoints (one route table), :mod:`.schema` the JSON Schemas both validated and
documented, :mod:`.openapi` the document at ``/v1/openapi.json``, :mod:`.browsers`
the attach manager (re-attaching restarted browsers with backoff), :mod:`.events` the
``/v1/events`` feed (with other daemons' versions through Redis pub/sub, and deltas on
request), :mod:`.watches` the watches, :mod:`.sessions` and :mod:`.cache` the hot
versions cache, :mod:`.server` the socket, signals and systemd integration.
"""

from .api import PROTOCOL_VERSION, ROUTES, Daemon
from .app import MAX_BODY, App
from .server import default_socket_path, run_daemon, sd_notify

__all__ = ["App", "Daemon", "MAX_BODY", "PROTOCOL_VERSION", "ROUTES", "default_socket_path", "run_daemon", "sd_notify"]
