"""The control API's endpoints: :data:`ROUTES`, the one table both served and documented.

A session ``{id}`` in a path is a session id or a session name.

Each route names the API key scopes it needs over TCP (:attr:`Route.scopes`); each
handler shows a request only what its :attr:`Request.access` sees: through a
tenant's key, that tenant's sessions, browsers, watches, recordings and replays, and
nothing of any other (unknown and unseen answer alike, 404). See :mod:`psp_cdp.daemon.auth`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from .. import __version__
from ..errors import PspError, SessionNotFoundError, StateError
from ..record.session import load_recording
from ..snapshot.model import uncovered_list
from ..state import components
from ..store import RedisStore, SessionInfo, parse_tags
from ..store.sessions import CIPHERS, split_ref
from .app import ApiError, Encoded, Query, Request, Response, Route, WebSocket, encode
from .apikeys import SCOPES, ApiKeyFile
from .auth import LOCAL, TENANT_TAG, Access
from .browsers import Browser, Browsers
from .events import Events
from .recordings import Recording, Recordings, Replay, Replays
from .schema import ref
from .sessions import DaemonSessions, pinned
from .watches import Watch, Watches

__all__ = ["PROTOCOL_VERSION", "Daemon", "ROUTES"]

log = logging.getLogger("psp_cdp.daemon")

#: How often an open /v1/events subscription made with an API key checks that the key still exists.
KEY_RECHECK_SECONDS = 1.0
#: Answers to GET /v1/sessions kept (one per tenant and tag filter) while the listing stays the same.
_LISTED = 64
#: A /v1/events subscriber that has not taken one message in this many seconds is disconnected.
STALLED_SECONDS = 10.0
#: Semantic version of the control API (not of the package).
PROTOCOL_VERSION = "1.0.0"
STORES = ["filesystem", "redis", "redis+cluster"]


@dataclass
class Daemon:
    """What every handler works with."""

    sessions: DaemonSessions
    browsers: Browsers
    events: Events = field(default_factory=Events)
    #: Watches run in the daemon's nursery; made by :func:`~psp_cdp.daemon.server.run_daemon`.
    watches: Watches | None = None
    #: Recordings run in the daemon's nursery too; made by :func:`~psp_cdp.daemon.server.run_daemon`.
    recordings: Recordings | None = None
    #: Replays run in their requests' tasks.
    replays: Replays = field(init=False, repr=False)
    #: The OpenAPI document, made on first request.
    openapi: dict[str, Any] | None = None
    started_at: float = field(default_factory=time.time)
    #: The store as ``GET /v1/version`` names it (:func:`psp_cdp.store.store_location`).
    store_location: str | None = None
    #: The API keys of the TCP listener (``None``: no TCP listener).
    keys: ApiKeyFile | None = None
    #: GET /v1/sessions answers by (tenant, tag filter): the listing each was made from, and the answer.
    listed: dict[tuple[Any, ...], tuple[list[SessionInfo], Encoded]] = field(default_factory=dict)

    def key_valid(self, access: Access) -> bool:
        """Whether the key a request was made with is still in the keys file (True without a key)."""
        if access.key is None or self.keys is None:
            return access.key is None
        try:
            return self.keys.keys().get(access.key.id) == access.key
        except PspError:
            return False

    def __post_init__(self) -> None:
        # A capture (a watch's too) takes its browser's turn.
        def lock_for(connection: Any) -> trio.Lock | None:
            browser = self.browsers.by_connection(connection)
            return browser.lock if browser is not None else None

        self.sessions.lock_for = lock_for
        if self.watches is not None:
            self.browsers.before_detach.append(self.watches.before_detach)
        if self.recordings is not None:
            self.browsers.before_detach.append(self.recordings.before_detach)
        self.replays = Replays(self.events)

    def require_watches(self) -> Watches:
        if self.watches is None:
            raise ApiError(503, "watches are not available in this daemon")
        return self.watches

    def require_recordings(self) -> Recordings:
        if self.recordings is None:
            raise ApiError(503, "recordings are not available in this daemon")
        return self.recordings

    async def io(self, function, *args):  # type: ignore[no-untyped-def]
        return await trio.to_thread.run_sync(function, *args)

    async def session(self, ref: str, access: Access = LOCAL) -> SessionInfo:
        """The session with that id or name that ``access`` sees (404 if none).

        For a tenant's key, another tenant's session is answered exactly as a missing
        one: same message, no similar names, and one lookup either way.
        """
        store = self.sessions.store
        if not access.restricted:
            return await self.io(store.get, ref)
        info = await self.io(store.find, ref)
        if info is None or not access.sees_tags(info.tags):
            raise SessionNotFoundError(ref)
        return info

    def browser(self, browser_id: str, access: Access = LOCAL) -> Browser:
        """The attached browser ``access`` sees (404 if none, or another tenant's)."""
        browser = self.browsers.get(browser_id)
        if not access.sees(browser.tenant):
            raise ApiError(404, f"no browser {browser_id!r} (attach one with POST /v1/browsers)")
        return browser

    def watch(self, watch_id: str, access: Access = LOCAL) -> Watch:
        """The watch ``access`` sees (404 if none, or another tenant's)."""
        watch = self.require_watches().get(watch_id)
        if not access.sees(watch.tenant):
            raise ApiError(404, f"no watch {watch_id!r} (start one with POST /v1/sessions/{{id}}/watch)")
        return watch

    def recording(self, recording_id: str, access: Access = LOCAL) -> Recording:
        """The recording ``access`` sees (404 if none, or another tenant's)."""
        recording = self.require_recordings().get(recording_id)
        if not access.sees(recording.tenant):
            raise ApiError(404, f"no recording {recording_id!r} (start one with POST /v1/recordings)")
        return recording

    def replay(self, replay_id: str, access: Access = LOCAL) -> Replay:
        """The replay ``access`` sees (404 if none, or another tenant's)."""
        replay = self.replays.get(replay_id)
        if not access.sees(replay.tenant):
            raise ApiError(404, f"no replay {replay_id!r}")
        return replay


# -- meta ----------------------------------------------------------------------------


async def health(daemon: Daemon, request: Request) -> Any:
    return {"status": "ok"}


async def version(daemon: Daemon, request: Request) -> Any:
    answer: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "psp_cdp": __version__,
        "capabilities": {
            "components": [c.name for c in components()],
            "stores": list(STORES),
            "encryption": [c for c in CIPHERS if c != "none"],
            "recording": daemon.recordings is not None,
            "replay": True,
            "events": True,
            "event_deltas": True,
            "shared_events": isinstance(daemon.sessions.store, RedisStore),
            "watch": True,
        },
    }
    # Where this daemon's sessions live, so a local psp can tell whether it serves the same store;
    # not for a tenant's key over TCP (the layout of the daemon's machine is none of its business).
    if daemon.store_location is not None and not request.access.restricted:
        answer["store"] = daemon.store_location
    return answer


async def stats(daemon: Daemon, request: Request) -> Any:
    browsers = daemon.browsers.list()
    watches = daemon.watches.list() if daemon.watches is not None else []
    return {
        "uptime": time.time() - daemon.started_at,
        "cache": daemon.sessions.cache.stats(),
        "versions_decoded": daemon.sessions.decoded,
        "browsers": {"attached": sum(b.attached for b in browsers), "detached": sum(not b.attached for b in browsers)},
        "watches": len(watches),
        "recordings": daemon.recordings.running if daemon.recordings is not None else 0,
        "replays": daemon.replays.running,
        "events": {
            "subscribers": daemon.events.subscribers,
            "forwarded": daemon.events.forwarded,
            "dropped": daemon.events.dropped,
            "store_notices": dict(daemon.events.store_notices),
        },
    }


async def openapi(daemon: Daemon, request: Request) -> Any:
    from .openapi import document

    if daemon.openapi is None:
        daemon.openapi = document(ROUTES)
    return daemon.openapi


# -- sessions ------------------------------------------------------------------------


def _tags(request: Request, tags: dict[str, str] | None) -> dict[str, str] | None:
    """Tags a request gives a session: over TCP, never the reserved tenant tag (422)."""
    if tags and TENANT_TAG in tags and request.access.transport == "tcp":
        raise ApiError(422, f"tags: {TENANT_TAG!r} is reserved: a session made with an API key belongs to the key's tenant")
    return tags


async def list_sessions(daemon: Daemon, request: Request) -> Any:
    tags = parse_tags(request.query.get("tag"))
    listing = await daemon.sessions.list()
    # Clients that poll get the same answer again for as long as the listing is the same one.
    access = request.access
    key = (access.tenant if access.restricted else None, tuple(sorted(tags.items())) if tags else ())
    kept = daemon.listed.get(key)
    if kept is not None and kept[0] is listing:
        return Response(200, kept[1])
    answer = Encoded(encode([s.as_dict() for s in listing if s.matches(tags or {}) and access.sees_tags(s.tags)]))
    if len(daemon.listed) >= _LISTED:
        daemon.listed.clear()
    daemon.listed[key] = (listing, answer)
    return Response(200, answer)


async def create_session(daemon: Daemon, request: Request) -> Any:
    body = request.body
    store = daemon.sessions.store
    tags = _tags(request, body.get("tags"))
    tenant = request.access.tenant
    if tenant is not None:
        tags = {**(tags or {}), TENANT_TAG: tenant}
    info = await daemon.io(lambda: store.create(body["name"], description=body.get("description", ""), tags=tags))
    info = await daemon.session(info.id)
    daemon.events.publish("created", info.as_dict())
    return Response(201, info.as_dict(), {"location": f"/v1/sessions/{info.id}"})


async def get_session(daemon: Daemon, request: Request) -> Any:
    return (await daemon.session(request.params["id"], request.access)).as_dict()


async def patch_session(daemon: Daemon, request: Request) -> Any:
    info = await daemon.session(request.params["id"], request.access)
    body = request.body
    for name in ("description", "keep", "ttl", "full_every"):
        if name in body:
            setattr(info, name, body[name])
    if "tags" in body:
        tags = dict(_tags(request, body["tags"]) or {})
        if request.access.transport == "tcp" and TENANT_TAG in info.tags:
            tags[TENANT_TAG] = info.tags[TENANT_TAG]  # over TCP, the tenant stays what it is
        info.tags = tags
    await daemon.io(daemon.sessions.store.update, info)
    info = await daemon.session(info.id)
    daemon.events.publish("updated", info.as_dict())
    return info.as_dict()


async def delete_session(daemon: Daemon, request: Request) -> Any:
    info = await daemon.session(request.params["id"], request.access)
    if daemon.watches is not None:
        await daemon.watches.stop_where(session_id=info.id)  # else its next write would make it anew
    if daemon.recordings is not None:
        await daemon.recordings.stop_where(session_id=info.id, reason="session deleted")  # saved, then deleted
    await daemon.sessions.delete(info.id)
    daemon.events.publish("deleted", info.as_dict())
    return Response(204)


async def list_versions(daemon: Daemon, request: Request) -> Any:
    info = await daemon.session(request.params["id"], request.access)
    _, versions = await daemon.sessions.versions(info.id)
    return [v.as_dict() for v in versions]


async def capture(daemon: Daemon, request: Request) -> Any:
    body = request.body
    info = await daemon.session(request.params["id"], request.access)
    browser = daemon.browser(body["browser"], request.access)
    async with browser.lock:
        connection = browser.require()
        with pinned(info.id):  # into this session, even if its name is taken by another meanwhile
            captured = await daemon.sessions.capture(
                connection, info.name, context=body.get("context"), only=body.get("only"), skip=body.get("skip")
            )
    written = captured.version
    assert written is not None
    session = captured.info.as_dict()
    daemon.events.publish("version", session, version=written.as_dict())
    report = captured.state.report
    return {
        "version": written.version,
        "kind": written.kind,
        "stored_bytes": written.stored_bytes,
        "record": written.as_dict(),
        "session": session,
        "origins_covered": list(report.origins_covered),
        "uncovered": uncovered_list(report),
    }


async def restore(daemon: Daemon, request: Request) -> Any:
    body = request.body
    info = await daemon.session(request.params["id"], request.access)
    if not info.head:
        raise ApiError(409, f"session {info.name!r} has no captured state yet")
    browser = daemon.browser(body["browser"], request.access)
    number = body.get("version")
    target = f"{info.id}@{number}" if number is not None else info.id
    async with browser.lock:
        connection = browser.require()
        restored, report = await daemon.sessions.restore(
            connection,
            target,
            context=body.get("context"),
            only=body.get("only"),
            skip=body.get("skip"),
            clean=bool(body.get("clean", False)),
        )
    return {"id": restored.id, "name": restored.name, "version": restored.head, **report.as_dict()}


# -- watches -------------------------------------------------------------------------


async def start_watch(daemon: Daemon, request: Request) -> Any:
    body = request.body
    watches = daemon.require_watches()
    info = await daemon.session(request.params["id"], request.access)
    browser = daemon.browser(body["browser"], request.access)
    options = {name: body[name] for name in ("cookie_interval", "debounce", "max_delay") if name in body}
    with pinned(info.id):  # (the watch's task inherits this: its captures go into this session only)
        watch = await watches.start(info, browser, context=body.get("context"), tenant=info.tags.get(TENANT_TAG), **options)
    return Response(201, {"watch": watch.id, **watch.as_dict()}, {"location": f"/v1/watches/{watch.id}"})


async def list_watches(daemon: Daemon, request: Request) -> Any:
    return [w.as_dict() for w in daemon.require_watches().list() if request.access.sees(w.tenant)]


async def get_watch(daemon: Daemon, request: Request) -> Any:
    return daemon.watch(request.params["id"], request.access).as_dict()


async def stop_watch(daemon: Daemon, request: Request) -> Any:
    watch = daemon.watch(request.params["id"], request.access)
    await daemon.require_watches().stop(watch.id)
    return Response(204)


# -- recordings and replays -------------------------------------------------------------


async def _recorded_session(daemon: Daemon, request: Request, ref: str) -> tuple[SessionInfo, bool]:
    """The session a recording goes into (by id or name), made if there is none; whether it was made."""
    store = daemon.sessions.store
    info = await daemon.io(store.find, ref)
    if info is not None and request.access.sees_tags(info.tags):
        return info, False
    # A new name (or, through a tenant's key, another tenant's name: 409, as POST /v1/sessions answers).
    tenant = request.access.tenant
    tags = {TENANT_TAG: tenant} if tenant is not None else None
    info = await daemon.io(lambda: store.create(ref, tags=tags))
    info = await daemon.session(info.id)
    daemon.events.publish("created", info.as_dict())
    return info, True


async def start_recording(daemon: Daemon, request: Request) -> Any:
    body = request.body
    recordings = daemon.require_recordings()
    browser = daemon.browser(body["browser"], request.access)
    claim = await recordings.claim(browser, body.get("context"))
    try:
        info, created = await _recorded_session(daemon, request, body["session"])
    except BaseException:
        claim.release()
        raise
    try:
        with pinned(info.id):  # (the recording's task inherits this: it saves into this session only)
            recording = await recordings.start(  # the claim is the recording's from here on
                info, browser, claim, context=body.get("context"), network=body.get("network", True),
                dom=body.get("dom", False), duration=body.get("duration"), tenant=info.tags.get(TENANT_TAG),
            )
    except Exception:  # (not if this request is cancelled: the recording may start all the same)
        if created:
            with trio.CancelScope(shield=True):
                await _forget_new_session(daemon, info)
        raise
    return Response(201, recording.as_dict(), {"location": f"/v1/recordings/{recording.id}"})


async def _forget_new_session(daemon: Daemon, info: SessionInfo) -> None:
    """Remove a session made for a recording that did not start (if it is still empty)."""
    try:
        current = await daemon.session(info.id)
        if current.head:
            return
        await daemon.sessions.delete(info.id)
    except PspError as exc:
        log.debug("could not remove the session %s made for a recording that did not start: %s", info.name, exc)
        return
    daemon.events.publish("deleted", current.as_dict())


async def list_recordings(daemon: Daemon, request: Request) -> Any:
    return [r.as_dict() for r in daemon.require_recordings().list() if request.access.sees(r.tenant)]


async def get_recording(daemon: Daemon, request: Request) -> Any:
    return daemon.recording(request.params["id"], request.access).as_dict()


async def stop_recording(daemon: Daemon, request: Request) -> Any:
    recording = daemon.recording(request.params["id"], request.access)
    await daemon.require_recordings().stop(recording.id)
    if recording.failure is not None:
        status, message = recording.failure
        raise ApiError(status, f"recording {recording.id} of {recording.name} failed: {message}")
    return recording.as_dict()


async def start_replay(daemon: Daemon, request: Request) -> Any:
    body = request.body
    if body.get("max") and "speed" in body:
        raise ApiError(422, "give speed or max, not both")
    browser = daemon.browser(body["browser"], request.access)
    browser.require()  # 502 now, rather than after the recording is read
    name, number = split_ref(body["session"])
    info = await daemon.session(name, request.access)
    try:
        _, number, state = await load_recording(daemon.sessions, info.id if number is None else f"{info.id}@{number}")
    except StateError as exc:
        raise ApiError(422, f"{exc}: nothing to replay (POST /v1/recordings records one)") from None
    replay = await daemon.replays.run(
        info, number, state, browser, context=body.get("context"),
        speed=None if body.get("max") else body.get("speed", 1.0), network=body.get("network", "mock"),
        timeout=body.get("timeout", 10.0), ignore_fields=body.get("ignore_fields", ()), strict=body.get("strict", False),
        tenant=info.tags.get(TENANT_TAG),
    )
    return replay.as_dict()


async def list_replays(daemon: Daemon, request: Request) -> Any:
    return [r.as_dict() for r in daemon.replays.list() if request.access.sees(r.tenant)]


async def get_replay(daemon: Daemon, request: Request) -> Any:
    return daemon.replay(request.params["id"], request.access).as_dict()


# -- browsers ------------------------------------------------------------------------

#: Endpoints a request over TCP may attach: network addresses, never a path on the daemon's machine.
_NETWORK_ENDPOINT = re.compile(
    r"^(?:(?:https?|wss?)://\S+|\d{1,5}|[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$"
)


async def attach_browser(daemon: Daemon, request: Request) -> Any:
    endpoint = request.body["cdp"]
    if request.access.transport == "tcp" and not _NETWORK_ENDPOINT.match(endpoint.strip()):
        raise ApiError(
            403, "cdp: over TCP, give http://host:port, a ws:// URL, host:port or a port "
            "(a DevToolsActivePort file or profile directory names a path on the daemon's machine)",
        )
    browser = await daemon.browsers.attach(endpoint, tenant=request.access.tenant)
    return Response(201, browser.as_dict(), {"location": f"/v1/browsers/{browser.id}"})


async def list_browsers(daemon: Daemon, request: Request) -> Any:
    return [b.as_dict() for b in daemon.browsers.list() if request.access.sees(b.tenant)]


async def get_browser(daemon: Daemon, request: Request) -> Any:
    return daemon.browser(request.params["id"], request.access).as_dict()


async def detach_browser(daemon: Daemon, request: Request) -> Any:
    browser = daemon.browser(request.params["id"], request.access)
    await daemon.browsers.detach(browser.id)
    return Response(204)


# -- events --------------------------------------------------------------------------


async def events(daemon: Daemon, socket: WebSocket) -> None:
    """Send each session event as one JSON text message until either side closes."""
    refs = set(socket.query.get("session", ())) or None
    delta = socket.query.get("delta", ["0"])[0] in ("1", "true")
    access = socket.access
    visible = (lambda session: access.sees_tags(session.get("tags"))) if access.restricted else None
    with daemon.events.subscribe(refs, delta=delta, visible=visible) as subscriber:
        await socket.accept()
        async with trio.open_nursery() as nursery:

            async def until_client_goes() -> None:
                while True:
                    message = await socket.receive()
                    if message is None:
                        nursery.cancel_scope.cancel()
                        return
                    try:
                        json.loads(message)
                    except ValueError:
                        pass  # nothing is asked of clients yet; what they send is ignored

            nursery.start_soon(until_client_goes)

            async def until_reader_stalls() -> None:
                # A peer that reads nothing fills the socket's buffer and blocks a send for good: cut it off.
                while True:
                    await trio.sleep(1)
                    since = socket.sending_since
                    if since is not None and trio.current_time() - since > STALLED_SECONDS:
                        log.info("dropped a /v1/events subscriber that read nothing for %g s", STALLED_SECONDS)
                        await socket.abort()
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(until_reader_stalls)
            if access.key is not None:

                async def until_key_revoked() -> None:
                    while daemon.key_valid(access):
                        await trio.sleep(KEY_RECHECK_SECONDS)
                    await socket.close(1008, "the API key was revoked")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_key_revoked)
            async for event in subscriber.receive:
                await socket.send_json(event)
            nursery.cancel_scope.cancel()
        if not socket.closed:
            if subscriber.overflowed:
                await socket.close(1013, "too slow: more events than the buffer holds went unread")
            else:
                await socket.close(1001, "the daemon is stopping")


# -- the table -----------------------------------------------------------------------

_ID = "session id or name"
READ, WRITE, CONTROL, ADMIN = SCOPES
_SESSION_ERRORS = (404,)
_BODY_ERRORS = (400, 413, 422)

ROUTES: list[Route] = [
    Route("GET", "/v1/health", health, "health", "Whether the daemon answers", response=ref("Health"), tag="meta", scopes=None),
    Route(
        "GET", "/v1/version", version, "version", "Protocol version and capabilities",
        response=ref("Version"), tag="meta", scopes=(),
        description="`protocol` follows semantic versioning: clients check its major version and degrade gracefully "
        "on the capabilities this daemon lacks. `store` names the store this daemon serves (a directory's absolute "
        "path, or the URL without its password), so a client can tell whether the daemon serves its store; it is "
        "left out for a tenant's API key over TCP.",
    ),
    Route("GET", "/v1/openapi.json", openapi, "openapi", "This document", response={"type": "object"}, tag="meta", scopes=()),
    Route(
        "GET", "/v1/stats", stats, "stats", "Figures of this daemon: hot versions cache, store reads, browsers, events",
        response=ref("Stats"), tag="meta", scopes=(ADMIN,),
        description="`cache` is the hot versions cache (`psp daemon --cache-mib`, default 256): decoded versions by "
        "session and version, so a repeated restore of the same version reads no blob from the store and decodes "
        "nothing (`hits` grows, `versions_decoded` does not). `versions_decoded` counts every blob this daemon read "
        "from the store and decoded.",
    ),
    Route(
        "GET", "/v1/sessions", list_sessions, "listSessions", "List sessions",
        query=(Query("tag", {"type": "string", "pattern": "^[^=]+=", "description": "KEY=VALUE"},
                     "only sessions with this tag (KEY=VALUE; repeatable: all must match)", repeatable=True),),
        response={"type": "array", "items": ref("Session")}, errors=(422,), tag="sessions", scopes=(READ,),
    ),
    Route(
        "POST", "/v1/sessions", create_session, "createSession", "Create a session (without versions)",
        body=ref("NewSession"), status=201, response=ref("Session"), errors=(*_BODY_ERRORS, 409), tag="sessions", scopes=(WRITE,),
    ),
    Route("GET", "/v1/sessions/{id}", get_session, "getSession", "Describe a session",
          response=ref("Session"), errors=_SESSION_ERRORS, tag="sessions", scopes=(READ,)),
    Route(
        "PATCH", "/v1/sessions/{id}", patch_session, "updateSession", "Change a session's description, tags or policy",
        body=ref("SessionPatch"), response=ref("Session"), errors=(*_BODY_ERRORS, 404), tag="sessions", scopes=(WRITE,),
    ),
    Route("DELETE", "/v1/sessions/{id}", delete_session, "deleteSession", "Remove a session and all its versions",
          status=204, errors=_SESSION_ERRORS, tag="sessions", scopes=(WRITE,)),
    Route(
        "GET", "/v1/sessions/{id}/versions", list_versions, "listVersions", "List a session's versions, oldest first",
        response={"type": "array", "items": ref("SessionVersion")}, errors=_SESSION_ERRORS, tag="sessions", scopes=(READ,),
    ),
    Route(
        "POST", "/v1/sessions/{id}/capture", capture, "capture",
        "Capture a browser context as the session's next version",
        body=ref("Capture"), response=ref("Captured"), errors=(*_BODY_ERRORS, 404, 502, 503), tag="sessions", scopes=(WRITE, CONTROL),
        description="Answers once the version is written. The session must exist (POST /v1/sessions). "
        "Captures and restores on one browser take turns.",
    ),
    Route(
        "POST", "/v1/sessions/{id}/restore", restore, "restore", "Restore a version of the session into a browser",
        body=ref("Restore"), response=ref("Restored"), errors=(*_BODY_ERRORS, 404, 409, 502, 503), tag="sessions", scopes=(READ, CONTROL),
        description="Answers once the state is restored, with what was restored per component. A version restored "
        "before is taken from the hot versions cache (see GET /v1/stats): only the list of versions is read from the "
        "store, to check that the version still exists.",
    ),
    Route(
        "POST", "/v1/sessions/{id}/watch", start_watch, "startWatch",
        "Keep the session up to date with a browser context: a new version for each batch of changes",
        body=ref("NewWatch"), status=201, response=ref("Watch"), errors=(*_BODY_ERRORS, 404, 502, 503), tag="watches", scopes=(WRITE, CONTROL),
        description="Answers once the first capture is written (as the session's next version), so every change "
        "made after the answer is seen. Each batch of changes (after `debounce` seconds of quiet, at most "
        "`max_delay` seconds after the first change; cookies are polled every `cookie_interval` seconds) is "
        "captured, only the components that changed, as a new version, announced on /v1/events. A watch whose "
        "browser goes away ends with `state: failed`; it is not started again when the browser is attached again. "
        "Deleting the session or detaching the browser stops its watches.",
    ),
    Route("GET", "/v1/watches", list_watches, "listWatches", "List watches",
          response={"type": "array", "items": ref("Watch")}, tag="watches", scopes=(CONTROL,)),
    Route("GET", "/v1/watches/{id}", get_watch, "getWatch", "Describe a watch",
          response=ref("Watch"), errors=(404,), tag="watches", scopes=(CONTROL,)),
    Route(
        "DELETE", "/v1/watches/{id}", stop_watch, "stopWatch", "Stop a watch",
        status=204, errors=(404,), tag="watches", scopes=(CONTROL,),
        description="Writes what changed since the watch's last write, then answers. A failed watch is just removed.",
    ),
    Route(
        "POST", "/v1/recordings", start_recording, "startRecording",
        "Record what happens in a browser context into a new version of a session",
        body=ref("NewRecording"), status=201, response=ref("Recording"), errors=(*_BODY_ERRORS, 404, 409, 502, 503),
        tag="recordings", scopes=(WRITE, CONTROL),
        description="Answers once the starting state is captured and every tab of the context records (`state: "
        "recording`), so everything done after the answer is recorded: input, navigations, tabs, network exchanges "
        "(`network`, default true) and DOM mutations (`dom`, default false), as docs/recording.md describes. `session` "
        "is a session id or name; a name no session has makes a new session (announced as `created`; removed again "
        "if the recording cannot start). Each event is announced on /v1/events as `recording.event` as it is "
        "recorded. The recording is saved as the session's next version (its state when the recording started, "
        "with the recording) when it is stopped (POST /v1/recordings/{id}/stop or DELETE /v1/recordings/{id}), "
        "`duration` seconds after it started, when the browser's connection is lost (what was recorded until then), "
        "before its browser is detached or its session deleted, and when the daemon stops. The starting capture "
        "takes its turn on the browser with captures, restores and replays. 409: that browser context is being "
        "recorded already; 422: the browser has no such context.",
    ),
    Route("GET", "/v1/recordings", list_recordings, "listRecordings", "List recordings: running, and the last 100 stopped",
          response={"type": "array", "items": ref("Recording")}, tag="recordings", scopes=(CONTROL,)),
    Route("GET", "/v1/recordings/{id}", get_recording, "getRecording", "Describe a recording",
          response=ref("Recording"), errors=(404,), tag="recordings", scopes=(CONTROL,),
          description="While it records: the events, exchanges and mutations recorded so far. Once saved: the version "
          "written and its stored bytes; once failed: the error."),
    Route(
        "POST", "/v1/recordings/{id}/stop", stop_recording, "stopRecording", "Stop a recording and save it",
        response=ref("Recording"), errors=(404, 409, 422, 502, 503), tag="recordings", scopes=(CONTROL,),
        description="Answers once the recording is saved as the next version of its session, with that `version`, "
        "its `stored_bytes`, and the `events`, `exchanges`, `mutations` and `duration_ms` saved. Stopping a recording "
        "that stopped already answers the same again. If saving failed, the answer is that error (its status, and "
        "the reason).",
    ),
    Route(
        "DELETE", "/v1/recordings/{id}", stop_recording, "deleteRecording", "Stop a recording and save it (as .../stop)",
        response=ref("Recording"), errors=(404, 409, 422, 502, 503), tag="recordings", scopes=(CONTROL,),
        description="The same as POST /v1/recordings/{id}/stop: stops the recording, saves it and answers 200 with "
        "what was saved. It deletes nothing: the version written stays (DELETE /v1/sessions/{id} removes sessions), "
        "and the recording stays listed.",
    ),
    Route(
        "POST", "/v1/replays", start_replay, "replay", "Replay a recording into a browser context",
        body=ref("NewReplay"), response=ref("Replay"), errors=(*_BODY_ERRORS, 404, 502, 503), tag="replays",
        scopes=(READ, CONTROL),
        description="Answers when the replay is done: the recording's starting state is restored into `context` "
        "(default, new or a context id), then each event is dispatched at its recorded time divided by `speed` "
        "(default 1), or each as soon as the one before is done with `max: true`; `network: mock` (the default) "
        "answers every request from the recording. `session` is NAME (its newest version holding a recording) or "
        "NAME@N. The answer is the report: each step done, retried or failed (with the reason), and `failed` (true "
        "when a step failed). A session without a recording (or a version without one) is 422; an unknown session "
        "or version 404. Each step is announced on /v1/events as `replay.step`, the report as `replay.finished`. A "
        "replay takes its turn on the browser for its whole length, as a restore does.",
    ),
    Route("GET", "/v1/replays", list_replays, "listReplays", "List replays: running, and the last 100 finished",
          response={"type": "array", "items": ref("Replay")}, tag="replays", scopes=(CONTROL,)),
    Route("GET", "/v1/replays/{id}", get_replay, "getReplay", "Describe a replay and its steps so far",
          response=ref("Replay"), errors=(404,), tag="replays", scopes=(CONTROL,)),
    Route(
        "POST", "/v1/browsers", attach_browser, "attachBrowser", "Attach a browser by its DevTools endpoint",
        body=ref("Attach"), status=201, response=ref("Browser"), errors=(*_BODY_ERRORS, 502), tag="browsers", scopes=(CONTROL,),
        description="502 if the browser cannot be reached now. Once attached, a browser whose connection is lost "
        "(it crashed or was restarted) is attached again at the same endpoint, resolved anew each time, with "
        "exponential backoff (0.2 s doubling to 10 s between attempts) for as long as it stays attached; "
        "meanwhile it is listed with `attached: false` and commands for it answer 502. Over TCP, `cdp` must be a "
        "network address (http://host:port, a ws:// URL, host:port or a port), never a path on the daemon's machine "
        "(403); the daemon connects to whatever address it is given, so browsers:control is for trusted clients.",
    ),
    Route("GET", "/v1/browsers", list_browsers, "listBrowsers", "List attached browsers",
          response={"type": "array", "items": ref("Browser")}, tag="browsers", scopes=(CONTROL,)),
    Route("GET", "/v1/browsers/{id}", get_browser, "getBrowser", "Describe an attached browser",
          response=ref("Browser"), errors=(404,), tag="browsers", scopes=(CONTROL,)),
    Route(
        "DELETE", "/v1/browsers/{id}", detach_browser, "detachBrowser",
        "Detach a browser (it keeps running, as it was)", status=204, errors=(404,), tag="browsers", scopes=(CONTROL,),
        description="Stops attaching it again, stops its watches (each writes what changed since its last write) and "
        "its recordings (each is saved), and waits for the capture, restore or replay in flight on that browser.",
    ),
    Route(
        "GET", "/v1/events", events, "events", "WebSocket: session events as they happen",
        query=(
            Query("session", {"type": "string", "minLength": 1}, "only events of this session (id or name; repeatable)",
                  repeatable=True),
            Query("delta", {"type": "string", "enum": ["0", "1", "false", "true"]},
                  "1: each `version` event carries a `delta`: what the version changed against the one before it"),
        ),
        status=101, response=ref("Event"), errors=(422, 426), websocket=True, tag="events", scopes=(READ,),
        description="Upgrade to a WebSocket; each text message is one JSON event: `created`, `updated`, `deleted` "
        "(with the session) or `version` (with the session and the new version). Recordings add "
        "`recording.started`, `recording.saved` (after the `version` event of the version it wrote; with `version`) "
        "and `recording.failed` (each with the recording's id under `recording` and its description under "
        "`details`), and `recording.event` for each event recorded (DOM mutations included: type `mutation`), "
        "under `event`; replays add `replay.step` for each step done (under `step`) and `replay.finished` (the "
        "report, under `report`); each with the replay's id under `replay`. All carry their session, so "
        "`?session=` selects them too. Versions are announced once each, "
        "whoever wrote them: this daemon (captures, watches, recordings) and, with a Redis store, every other daemon and `psp` "
        "command sharing that Redis (through its pub/sub channel; notices published while the daemon's "
        "subscription is down are not seen). Session `created`, `updated` and `deleted` events are this daemon's "
        "only. With `?delta=1` each `version` event also has `delta`: `from` (the version compared against, null for "
        "a first version), `changes` (items added, changed and removed per component) and `items` (their names per "
        "component and kind of change, as `psp diff` prints them: what an item is, never its value; at most 1000 per "
        "list, `truncated` says when more were left out); when that cannot be worked out, `items` is null and "
        "`error` says why. What clients send is ignored. A client too slow to read is closed with code 1013; on "
        "shutdown the daemon closes with 1001.",
    ),
]
