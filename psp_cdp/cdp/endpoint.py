"""Turning what a user calls a browser endpoint into a DevTools WebSocket URL.

Accepted forms:

* ``ws://host:port/devtools/browser/<id>`` (or ``wss://``): used as it is;
* ``http://host:port`` (or ``https://``), ``host:port``: asked at ``/json/version``;
* a bare port ``9222``: ``http://127.0.0.1:9222``;
* a ``DevToolsActivePort`` file, or a profile directory holding one: the port and
  browser path Chromium wrote there when started with ``--remote-debugging-port``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import trio

from ..errors import EndpointError

__all__ = ["resolve_endpoint", "read_devtools_active_port"]

_PORT_RE = re.compile(r"^\d{1,5}$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")


async def resolve_endpoint(endpoint: str | int, *, timeout: float = 10.0) -> str:
    """The browser-level WebSocket URL for ``endpoint``; :class:`EndpointError` if there is none."""
    try:
        return await _resolve(str(endpoint).strip(), timeout)
    except ValueError as exc:  # urlsplit on a malformed URL
        raise EndpointError(str(endpoint), f"malformed endpoint: {exc}") from None


async def _resolve(text: str, timeout: float) -> str:
    if not text:
        raise EndpointError(text, "empty endpoint")
    if text.startswith(("ws://", "wss://")):
        return text
    if text.startswith(("http://", "https://")):
        return await _ask_version(text, timeout)
    if _PORT_RE.match(text):
        return await _ask_version(f"http://127.0.0.1:{text}", timeout)
    if os.path.exists(text):
        return read_devtools_active_port(text)
    if _HOSTPORT_RE.match(text):
        return await _ask_version(f"http://{text}", timeout)
    raise EndpointError(
        text,
        "not an endpoint: give http://host:port, a ws:// URL, a port, "
        "a DevToolsActivePort file or a profile directory",
    )


def read_devtools_active_port(path: str) -> str:
    """The WebSocket URL recorded in a DevToolsActivePort file (or the one in a profile directory)."""
    file = os.path.join(path, "DevToolsActivePort") if os.path.isdir(path) else path
    try:
        with open(file, encoding="utf-8") as fh:
            lines = fh.read().split()
    except FileNotFoundError:
        raise EndpointError(path, "no DevToolsActivePort file (was the browser started with --remote-debugging-port?)") from None
    except OSError as exc:
        raise EndpointError(path, f"cannot read DevToolsActivePort: {exc.strerror}") from None
    if len(lines) < 2 or not _PORT_RE.match(lines[0]) or not lines[1].startswith("/devtools/browser/"):
        raise EndpointError(path, "DevToolsActivePort does not hold a port and a browser path")
    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"


async def _ask_version(base: str, timeout: float) -> str:
    parts = urlsplit(base)
    try:
        parts.port
    except ValueError:
        raise EndpointError(base, "the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise EndpointError(base, "no host in the endpoint")
    url = f"{parts.scheme}://{parts.netloc}/json/version"
    body = await trio.to_thread.run_sync(_http_get, base, url, timeout)
    try:
        info = json.loads(body)
        ws_url = info["webSocketDebuggerUrl"]
    except (ValueError, KeyError, TypeError):
        raise EndpointError(base, "answers HTTP but is not a Chromium DevTools endpoint (no webSocketDebuggerUrl at /json/version)") from None
    if not isinstance(ws_url, str) or not ws_url.startswith(("ws://", "wss://")):
        raise EndpointError(base, "answers HTTP but is not a Chromium DevTools endpoint")
    # The browser names itself by the address it listens on; keep the host the user reached it by.
    ws_parts = urlsplit(ws_url)
    return ws_parts._replace(netloc=parts.netloc).geturl()


def _http_get(base: str, url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        raise EndpointError(base, f"answers HTTP {exc.code} at /json/version; not a Chromium DevTools endpoint") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise EndpointError(base, "connection refused (is the browser running with --remote-debugging-port?)") from None
        raise EndpointError(base, f"cannot connect: {getattr(reason, 'strerror', None) or reason}") from None
    except (TimeoutError, OSError) as exc:
        raise EndpointError(base, f"cannot connect: {exc}") from None
