"""Clients of the psp daemon's control API, over its Unix socket.

:class:`Client` is synchronous; :class:`AsyncClient` has the same methods as
coroutines and runs under asyncio and under trio (httpx over anyio). Both speak
the HTTP/1.1 JSON API of DESIGN.md; an error answer raises :class:`DaemonError`
with the daemon's status and message, which is also an instance of the class of
:mod:`psp_cdp.errors` the daemon named (``except SessionNotFoundError`` works alike
in process and through the daemon), and a daemon that does not answer raises
:class:`DaemonUnavailableError`::

    from psp_cdp.client import Client

    with Client() as psp:                     # $PSP_SOCKET, else the default socket
    # or, over the network: Client(url="https://host:8443", token="psp_...", verify="ca.pem")
        browser = psp.attach("http://127.0.0.1:9222")
        psp.create_session("login")
        psp.capture("login", browser["id"])
        psp.restore("login", browser["id"], context="new")
        watch = psp.watch("login", browser["id"])   # a new version per batch of changes
        psp.unwatch(watch["watch"])              # after its last write
        recording = psp.start_recording("flow", browser["id"])   # records from the answer on
        psp.stop_recording(recording["id"])      # saved: {"version": N, "events": ..., ...}
        psp.replay("flow", other["id"], max=True)["failed"]      # the report, once replayed
        psp.stats()["cache"]                     # the hot versions cache
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .. import errors
from ..errors import PspError, UsageError
from ..store.base import SessionInfo, VersionInfo

__all__ = ["Client", "AsyncClient", "DaemonError", "DaemonUnavailableError", "daemon_error", "default_socket_path"]

#: Seconds a request may take; captures and restores of large states take a while.
TIMEOUT = 600.0


class DaemonError(PspError):
    """The daemon answered with an error status; an instance of the error class it named, too."""

    def __init__(self, status: int, message: str) -> None:
        PspError.__init__(self, f"{message} (HTTP {status})")  # not the named class's own arguments
        self.status = status
        self.daemon_message = message


#: DaemonError subclasses by the name of the errors.py class they also are.
_DAEMON_ERRORS: dict[str, type[DaemonError]] = {}


def daemon_error(status: int, message: str, kind: Any = None) -> DaemonError:
    """The :class:`DaemonError` of an error answer: also an instance of the :mod:`psp_cdp.errors` class ``kind`` names."""
    named = getattr(errors, kind, None) if isinstance(kind, str) and kind in errors.__all__ else None
    if not isinstance(named, type) or not issubclass(named, PspError) or named is PspError:
        return DaemonError(status, message)
    cls = _DAEMON_ERRORS.get(kind)
    if cls is None:
        cls = _DAEMON_ERRORS[kind] = type(f"Daemon{kind}", (DaemonError, named), {"__module__": __name__})
    error = cls(status, message)
    error.__dict__.setdefault("similar", [])  # what SessionNotFoundError carries in process
    return error


class DaemonUnavailableError(PspError):
    """No daemon answers on the socket."""


def default_socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """``$PSP_SOCKET``, else ``$XDG_RUNTIME_DIR/psp/psp.sock``, else ``/run/psp/psp.sock`` (the system service)."""
    if environ.get("PSP_SOCKET"):
        return environ["PSP_SOCKET"]
    runtime = environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime, "psp", "psp.sock") if runtime else "/run/psp/psp.sock"


def _connection(
    socket: str | None, url: str | None, token: str | None, verify: ssl.SSLContext | str | bool, timeout: float
) -> tuple[str, dict[str, Any]]:
    """Where a client connects (for messages) and the options of its httpx client.

    With ``url`` (the daemon's TLS listener, ``https://host:port``) and the API key's
    ``token``; else over the Unix socket, which needs no key. ``verify`` is a CA file,
    an SSL context, or a boolean, as httpx takes it.
    """
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if url is not None:
        if not url.startswith("https://"):
            raise UsageError(f"{url}: the daemon's TCP listener speaks TLS only; give an https:// URL")
        if isinstance(verify, str):
            verify = ssl.create_default_context(cafile=verify)
        return url, {"uds": None, "verify": verify, "base_url": url, "headers": headers, "timeout": timeout}
    path = socket or default_socket_path()
    return path, {"uds": path, "verify": True, "base_url": "http://psp", "headers": headers, "timeout": timeout}


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        kind = None
        try:
            answer = response.json()
            message, kind = str(answer.get("message", response.text)), answer.get("error")
        except (ValueError, AttributeError):
            message = response.text or response.reason_phrase
        raise daemon_error(response.status_code, message, kind)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


@dataclass(frozen=True)
class _Call:
    """One request, and how its answer becomes what the method returns."""

    method: str
    path: str
    params: Any = None
    json: Any = None
    parse: Callable[[Any], Any] = lambda answer: answer


def _sessions(answer: Any) -> list[SessionInfo]:
    return [SessionInfo.from_dict(s) for s in answer]


def _versions(answer: Any) -> list[VersionInfo]:
    return [VersionInfo.from_dict(v) for v in answer]


class _Api:
    """The calls of the control API. Each method builds a request and hands it to ``_send``:
    :class:`Client` answers at once, :class:`AsyncClient` gives a coroutine."""

    _client_class: Any
    _transport_class: Any

    def __init__(
        self,
        socket: str | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        verify: ssl.SSLContext | str | bool = True,
        timeout: float = TIMEOUT,
    ) -> None:
        self.socket, options = _connection(socket, url, token, verify, timeout)
        transport = self._transport_class(uds=options.pop("uds"), verify=options.pop("verify"))
        self._http = self._client_class(transport=transport, **options)

    def _send(self, call: _Call) -> Any:
        raise NotImplementedError

    def health(self) -> Any:
        """``{"status": "ok"}``."""
        return self._send(_Call("GET", "/v1/health"))

    def version(self) -> Any:
        """The API's protocol version and the daemon's capabilities."""
        return self._send(_Call("GET", "/v1/version"))

    def sessions(self, tags: Mapping[str, str] | None = None) -> Any:
        """Every session (with all of ``tags``): a list of SessionInfo."""
        params = {"tag": [f"{k}={v}" for k, v in tags.items()]} if tags else None
        return self._send(_Call("GET", "/v1/sessions", params=params, parse=_sessions))

    def session(self, ref: str) -> Any:
        """One session, by name or id: a SessionInfo."""
        return self._send(_Call("GET", f"/v1/sessions/{ref}", parse=SessionInfo.from_dict))

    def create_session(self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None) -> Any:
        body = _body(name=name, description=description, tags=dict(tags) if tags else None)
        return self._send(_Call("POST", "/v1/sessions", json=body, parse=SessionInfo.from_dict))

    def update_session(self, ref: str, **fields: Any) -> Any:
        """Change description, tags, keep, ttl or full_every."""
        return self._send(_Call("PATCH", f"/v1/sessions/{ref}", json=_body(**fields), parse=SessionInfo.from_dict))

    def delete_session(self, ref: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/sessions/{ref}"))

    def versions(self, ref: str) -> Any:
        """The session's versions, oldest first: a list of VersionInfo."""
        return self._send(_Call("GET", f"/v1/sessions/{ref}/versions", parse=_versions))

    def attach(self, cdp: str) -> Any:
        """Attach the daemon to a browser endpoint; its description, with the ``id`` to use."""
        return self._send(_Call("POST", "/v1/browsers", json={"cdp": cdp}))

    def browsers(self) -> Any:
        return self._send(_Call("GET", "/v1/browsers"))

    def detach(self, browser: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/browsers/{browser}"))

    def capture(self, ref: str, browser: str, *, context: str | None = None, only: list[str] | None = None,
                skip: list[str] | None = None) -> Any:
        """Capture a browser (context) as the next version of the session."""
        body = _body(browser=browser, context=context, only=only, skip=skip)
        return self._send(_Call("POST", f"/v1/sessions/{ref}/capture", json=body))

    def restore(self, ref: str, browser: str, *, version: int | None = None, context: str | None = None,
                only: list[str] | None = None, skip: list[str] | None = None, clean: bool | None = None) -> Any:
        """Restore a version (default: the latest) into a browser (context); the restore report."""
        body = _body(browser=browser, version=version, context=context, only=only, skip=skip, clean=clean)
        return self._send(_Call("POST", f"/v1/sessions/{ref}/restore", json=body))

    def watch(self, ref: str, browser: str, *, context: str | None = None, cookie_interval: float | None = None,
              debounce: float | None = None, max_delay: float | None = None) -> Any:
        """Keep the session up to date with a browser (context); answers once the first capture is written.

        The watch's description, with its id under ``"watch"`` (and ``"id"``).
        """
        body = _body(browser=browser, context=context, cookie_interval=cookie_interval, debounce=debounce,
                     max_delay=max_delay)
        return self._send(_Call("POST", f"/v1/sessions/{ref}/watch", json=body))

    def watches(self) -> Any:
        """Every watch of the daemon."""
        return self._send(_Call("GET", "/v1/watches"))

    def watch_info(self, watch: str) -> Any:
        """One watch: its state, versions written, last version, error."""
        return self._send(_Call("GET", f"/v1/watches/{watch}"))

    def unwatch(self, watch: str) -> Any:
        """Stop a watch, once it has written what changed since its last write."""
        return self._send(_Call("DELETE", f"/v1/watches/{watch}"))

    def start_recording(self, ref: str, browser: str, *, context: str | None = None, network: bool | None = None,
                        dom: bool | None = None, duration: float | None = None) -> Any:
        """Record a browser (context) into the next version of the session ``ref`` (made if new).

        Answers once it records; the recording's description, with its ``id``. It is saved by
        :meth:`stop_recording`, or by itself after ``duration`` seconds.
        """
        body = _body(browser=browser, session=ref, context=context, network=network, dom=dom, duration=duration)
        return self._send(_Call("POST", "/v1/recordings", json=body))

    def stop_recording(self, recording: str) -> Any:
        """Stop a recording; once saved, what was saved: ``version``, ``events``, ``exchanges``, ``mutations``..."""
        return self._send(_Call("POST", f"/v1/recordings/{recording}/stop"))

    def recordings(self) -> Any:
        """Every recording of the daemon: running, and the last stopped ones."""
        return self._send(_Call("GET", "/v1/recordings"))

    def recording_info(self, recording: str) -> Any:
        """One recording: its state, what it recorded so far, the version it wrote, or its error."""
        return self._send(_Call("GET", f"/v1/recordings/{recording}"))

    def replay(self, ref: str, browser: str, *, context: str | None = None, speed: float | None = None,
               max: bool | None = None, network: str | None = None, timeout: float | None = None,
               ignore_fields: list[str] | None = None, strict: bool | None = None) -> Any:
        """Replay the recording ``ref`` (NAME: its newest; NAME@N) into a browser (context); the report, once done.

        ``speed`` (default 1: the recorded pace) or ``max=True`` (each event as soon as the one
        before is done); ``network`` "mock" (the default) or "live"; ``ignore_fields``: with the
        network mocked, request fields a match may differ in (listed as fallbacks). The report's
        ``outcome`` says whether it ended as recorded (``as_recorded``) or where it differed
        (``differences``); its ``failed`` whether a step failed (with ``strict``, also whether it
        ended otherwise than recorded).
        """
        body = _body(browser=browser, session=ref, context=context, speed=speed, max=max, network=network, timeout=timeout,
                     ignore_fields=ignore_fields, strict=strict)
        return self._send(_Call("POST", "/v1/replays", json=body))

    def replays(self) -> Any:
        """Replays of the daemon: running, and the last finished ones."""
        return self._send(_Call("GET", "/v1/replays"))

    def replay_info(self, replay: str) -> Any:
        """One replay: its state and its steps so far."""
        return self._send(_Call("GET", f"/v1/replays/{replay}"))

    def stats(self) -> Any:
        """The daemon's figures: hot versions cache, blobs decoded, browsers, watches, recordings, replays, events."""
        return self._send(_Call("GET", "/v1/stats"))


class Client(_Api):
    """The synchronous client."""

    _client_class = httpx.Client
    _transport_class = httpx.HTTPTransport

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TransportError as exc:
            raise DaemonUnavailableError(f"no psp daemon answers at {self.socket}: {exc}") from None
        return call.parse(_answer(response))


class AsyncClient(_Api):
    """The asynchronous client: the methods of :class:`Client`, awaited; under asyncio or trio."""

    _client_class = httpx.AsyncClient
    _transport_class = httpx.AsyncHTTPTransport

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TransportError as exc:
            raise DaemonUnavailableError(f"no psp daemon answers at {self.socket}: {exc}") from None
        return call.parse(_answer(response))
