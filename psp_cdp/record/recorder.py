"""Recording what happens in one browser context: input events, navigations, tabs, network.

:class:`Recorder` attaches to every tab of the context at the browser level
(``Target.setAutoAttach`` with ``waitForDebuggerOnStart``, pages only), so a tab opened
while it records is set up before its first document runs. In each tab, and in each
out-of-process iframe (auto-attached the same way), it:

* installs the script of :mod:`.script` in an isolated world of every frame
  (``Page.addScriptToEvaluateOnNewDocument`` with ``runImmediately``) and listens to
  its binding (``Runtime.addBinding`` scoped to that world);
* follows main-frame navigations (``Page.frameNavigated``, ``navigatedWithinDocument``):
  one the page asked for (``Page.frameRequestedNavigation``: a link, a form, a script)
  is marked ``initiator: "page"``, any other (``Page.navigate``, the address bar, a
  reload) ``"browser"``;
* records network exchanges from the ``Network`` domain, response bodies read once each
  response has finished, headers as they went over the wire (``...ExtraInfo``: with
  their ``Set-Cookie``); and, for the tabs open at the start, the resources their pages
  already hold (``Page.getResourceTree`` / ``getResourceContent``) and the scripts of
  the service workers registered for them (fetched again from the page, marked
  :data:`~.events.SERVICE_WORKER_SCRIPT`), so that a replay with the network mocked can
  load those pages and register those workers too.

With the network recorded, the context's service workers are attached as well (paused at
their start like tabs): what they fetch themselves is recorded with the tabs' traffic.

Each page event gets the number of the tab's document it happened in (``document``:
main-frame documents loaded before it during the recording), from the document token the
script reports and the navigations the recorder saw before that token's first report; its
time is never before the navigation that loaded its document.

Stopping (:meth:`Recorder.run` returns once ``stop`` is set) takes in the pages' last
reports, keeps the end state of each tab and of the cookies (:mod:`.outcome`), waits a
little for bodies still being read, switches the script off in every frame (its
listeners stay, doing nothing, until the document goes), removes the binding and
detaches from every target.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, CdpSession, EventStream
from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import Header, NetworkExchange, RecordedEvent, RecordingState, TabEndState, ValueDigest
from ..state.pages import BrowserContext, Frame
from .events import SERVICE_WORKER_SCRIPT, body_bytes, json_event, loads_document, posted_body
from .outcome import cookie_digests, read_end_state
from .script import BINDING, SWITCH_OFF, WORLD, recorder_script

__all__ = ["Recorder", "auto_attached", "release_waiting"]

log = logging.getLogger(__name__)

_BUFFER = 65536
#: Seconds :meth:`Recorder.run` waits for response bodies still being read when it stops.
_BODY_GRACE = 2.0
#: Seconds :meth:`Recorder.run` waits, when it stops, for the pages' last reports.
_FLUSH = 2.0
#: Seconds :meth:`Recorder.run` waits, when it stops, for the end state of the tabs.
_END_STATE = 5.0
#: Most document tokens remembered per tab.
_TOKENS = 1024
_NETWORK_BUFFER = {"maxTotalBufferSize": 200 * 1024 * 1024, "maxResourceBufferSize": 50 * 1024 * 1024}
_RECORDED_SCHEMES = ("http://", "https://")
_HISTORY = {"historySameDocument", "historyDifferentDocument", "BackForwardCacheRestore"}
_RELOADS = {"reload", "reloadBypassingCache", "restore", "restoreWithPost"}
_PAGE_EVENTS = (
    "Runtime.bindingCalled",
    "Page.frameNavigated",
    "Page.navigatedWithinDocument",
    "Page.frameRequestedNavigation",
    "Page.frameStartedNavigating",
    "Target.attachedToTarget",
)
_NETWORK_EVENTS = (
    "Network.requestWillBeSent",
    "Network.responseReceived",
    "Network.responseReceivedExtraInfo",
    "Network.loadingFinished",
    "Network.loadingFailed",
)


def _headers(raw: dict[str, Any] | None) -> list[Header]:
    """CDP's header object as a list; several values of one name come joined by newlines."""
    return [Header(name=name, value=value) for name, values in (raw or {}).items() for value in str(values).split("\n")]


@dataclass
class _Exchange:
    message: NetworkExchange
    started: float  # the browser's monotonic seconds
    extra_headers: dict[str, Any] | None = None


@dataclass
class _Target:
    """A tab, or an out-of-process iframe of one, being recorded."""

    session: CdpSession
    tab: int
    main_frame: str | None = None
    requested: set[str] = field(default_factory=set)  # frames that asked to navigate
    starting: dict[str, str] = field(default_factory=dict)  # frame -> navigation type
    page_opened: bool = False  # opened by another tab: its first navigation is the page's
    events: EventStream | None = None
    worker: bool = False  # a service worker: its network only


class Recorder:
    """Records one browser context (``context``) until :meth:`run` is told to stop.

    ``tabs`` are the target ids of the tabs in the starting state, in its order: they get
    the first tab indexes. ``on_event`` is called with each event as it is recorded.
    """

    def __init__(
        self,
        connection: CdpConnection,
        context: BrowserContext,
        *,
        tabs: list[str] = (),  # type: ignore[assignment]
        network: bool = True,
        dom: bool = False,
        on_event: Callable[[RecordedEvent], None] | None = None,
    ) -> None:
        self.connection = connection
        self.context = context
        self.network = network
        self.dom = dom
        self.on_event = on_event
        self.start_time = time.time() * 1000
        self._tab_ids: dict[str, int] = {target: index for index, target in enumerate(tabs)}
        self._next_tab = len(self._tab_ids)
        self._events: list[RecordedEvent] = []
        self._mutations: list[RecordedEvent] = []
        self._exchanges: dict[tuple[str | None, str], _Exchange] = {}
        self._done: list[NetworkExchange] = []
        self._finished: dict[tuple[str | None, str], _Exchange] = {}
        self._early_headers: dict[tuple[str | None, str], dict[str, Any]] = {}
        self._targets: list[_Target] = []
        self._script = recorder_script(dom=dom, token=secrets.token_hex(8))
        self._bodies: trio.Nursery | None = None
        self._stopped_at: float | None = None
        # Per tab: documents loaded so far, the time each began, and the token of each seen.
        self._documents: dict[int, int] = {}
        self._document_times: dict[tuple[int, int], float] = {}
        self._tokens: dict[int, dict[str, int]] = {}
        self._ends: list[TabEndState] | None = None
        self._cookies: list[ValueDigest] = []

    # ---- the result

    def recording(self) -> RecordingState:
        """What was recorded so far, as the seed's RecordingState."""
        end = self._stopped_at if self._stopped_at is not None else time.time() * 1000
        state = RecordingState(start_time=int(self.start_time), duration=int(max(0.0, end - self.start_time)))
        state.recorded.append("input")
        if self.network:
            state.recorded.append("network")
        if self.dom:
            state.recorded.append("dom")
        state.events.extend(_in_order(self._events))
        state.mutations.extend(_in_order(self._mutations))
        exchanges = self._done + [e.message for e in self._exchanges.values()]
        state.exchanges.extend(sorted(exchanges, key=lambda x: x.timestamp))
        if self._ends is not None:
            state.ended = True
            state.ends.extend(sorted(self._ends, key=lambda end: end.tab))
            state.cookies.extend(self._cookies)
        return state

    @property
    def event_count(self) -> int:
        return len(self._events)

    @property
    def exchange_count(self) -> int:
        """Network exchanges recorded so far, finished or not."""
        return len(self._done) + len(self._exchanges)

    # ---- running

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record until ``stop`` is set; ``task_status.started()`` once every tab records."""
        try:
            async with trio.open_nursery() as bodies:
                self._bodies = bodies
                async with trio.open_nursery() as nursery:
                    with self.connection.listen("Target.attachedToTarget", "Target.detachedFromTarget", buffer=_BUFFER) as events:
                        kinds = ["page", "service_worker"] if self.network else ["page"]
                        await self.connection.send(
                            "Target.setAutoAttach",
                            {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True,
                             "filter": [{"type": kind, "exclude": False} for kind in kinds]},
                        )
                        # Tabs already open are attached at once; set each up before saying so.
                        initial = []
                        while True:
                            try:
                                initial.append(events.receive_nowait())
                            except trio.WouldBlock:
                                break
                        for event in initial:
                            await self._on_target_event(nursery, event, initial=True)
                        self.start_time = time.time() * 1000
                        task_status.started()
                        nursery.start_soon(self._follow_targets, nursery, events)
                        await stop.wait()
                        self._stopped_at = time.time() * 1000
                        with trio.move_on_after(_FLUSH):
                            await self._flush()
                        with trio.move_on_after(_END_STATE):
                            await self._read_end_state()
                        nursery.cancel_scope.cancel()
                bodies.cancel_scope.deadline = trio.current_time() + _BODY_GRACE
        finally:
            with trio.CancelScope(shield=True):
                await self._release()

    async def _flush(self) -> None:
        """Take in what the pages reported up to now.

        A page reports an event through its binding on its own session: one command's
        answer on that session comes after every report sent before it. Then each
        session's reports are handled before the recording ends.
        """
        for target in list(self._targets):
            try:
                await target.session.send("Runtime.evaluate", {"expression": "0"})
            except (ProtocolError, BrowserClosedError):
                continue
        while any(t.events is not None and t.events.statistics().buffered for t in self._targets):
            await trio.sleep(0.01)

    async def _read_end_state(self) -> None:
        """Keep how each open tab and the cookies look now; a tab that cannot be read is left out."""
        ends = []
        for target in list(self._targets):
            if target.session.target_id is None or target.worker:
                continue  # an iframe's or a worker's session
            try:
                ends.append(await read_end_state(target.session, target.tab))
            except StateError as exc:
                log.debug("%s", exc)
        try:
            self._cookies = await cookie_digests(self.context)
        except (ProtocolError, BrowserClosedError) as exc:
            log.debug("cannot read the cookies: %s", exc)
            return
        self._ends = ends

    async def _follow_targets(self, nursery: trio.Nursery, events: Any) -> None:
        async for event in events:
            if event.method == "Target.attachedToTarget" and not auto_attached(event.params):
                continue
            await self._on_target_event(nursery, event, initial=False)

    async def _on_target_event(self, nursery: trio.Nursery, event: Any, *, initial: bool) -> None:
        params = event.params
        if event.method == "Target.detachedFromTarget":
            for target in [t for t in self._targets if t.session.session_id == params.get("sessionId")]:
                self._targets.remove(target)
                if not target.worker:
                    self._add(json_event("tab_close", self._now(), {}, tab=target.tab))
            return
        info = params.get("targetInfo", {})
        session = self.connection.session(params["sessionId"], info.get("targetId"))
        if info.get("type") == "service_worker" and self.network and self.context.owns(info):
            await nursery.start(self._follow, _Target(session, 0, worker=True), initial)
            return
        if info.get("type") != "page" or not self.context.owns(info):
            await release_waiting(session)
            await session.detach()
            return
        target_id = info["targetId"]
        if target_id in self._tab_ids:
            tab = self._tab_ids[target_id]
        else:
            tab = self._tab_ids[target_id] = self._next_tab
            self._next_tab += 1
            opener = self._tab_ids.get(info.get("openerId") or "")
            self._add(json_event("tab_open", self._now(), {"url": info.get("url", ""), "opener": opener}, tab=tab))
            self._documents[tab] = 0
        target = _Target(session, tab, page_opened=bool(info.get("openerId")) and not initial)
        await nursery.start(self._follow, target, initial)

    async def _follow(self, target: _Target, initial: bool, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Set up one tab, iframe or service worker session and record what it reports, until it goes away."""
        session = target.session
        names = _NETWORK_EVENTS if target.worker else _PAGE_EVENTS + (_NETWORK_EVENTS if self.network else ())
        with session.listen(*names, buffer=_BUFFER) as events:
            try:
                await self._set_up(target, initial)
            except (ProtocolError, BrowserClosedError) as exc:
                log.debug("cannot record %s: %s", session, exc)
                await release_waiting(session)
                task_status.started()
                return
            target.events = events
            self._targets.append(target)
            task_status.started()
            async with trio.open_nursery() as children:
                async for event in events:
                    try:
                        await self._on_event(children, target, event)
                    except (ProtocolError, KeyError, ValueError, TypeError) as exc:
                        log.debug("%s: %s", event.method, exc)
                children.cancel_scope.cancel()

    async def _set_up(self, target: _Target, initial: bool) -> None:
        """Install the recorder, then let a target paused at its start run.

        The commands go out together with ``Runtime.runIfWaitingForDebugger``: a paused
        target answers some of them only once it runs, and it runs only after them.
        """
        session = target.session
        if target.worker:
            await session.send_all(("Network.enable", _NETWORK_BUFFER), ("Runtime.runIfWaitingForDebugger", None))
            return
        commands: list[tuple[str, dict[str, Any] | None]] = [
            ("Runtime.enable", None),
            ("Runtime.addBinding", {"name": BINDING, "executionContextName": WORLD}),
            ("Page.enable", None),
            ("Page.addScriptToEvaluateOnNewDocument", {"source": self._script, "worldName": WORLD, "runImmediately": True}),
            ("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True,
                                      "filter": [{"type": "iframe", "exclude": False}]}),
        ]
        if initial and self.network:
            await session.send_all(*commands)
            commands = []
            await self._page_resources(target)  # before Network sees these fetches
        if self.network:
            commands.append(("Network.enable", _NETWORK_BUFFER))
        await session.send_all(*commands, ("Runtime.runIfWaitingForDebugger", None))
        tree = (await session.send("Page.getFrameTree"))["frameTree"]
        if session.target_id and tree["frame"].get("parentId") is None:
            target.main_frame = tree["frame"]["id"]

    async def _on_event(self, nursery: trio.Nursery, target: _Target, event: Any) -> None:
        method, params = event.method, event.params
        if method == "Runtime.bindingCalled":
            if params.get("name") == BINDING:
                self._from_page(target, params["payload"])
        elif method.startswith("Network."):
            self._on_network(nursery, target.session, method, params)
        elif method == "Page.frameRequestedNavigation":
            target.requested.add(params["frameId"])
        elif method == "Page.frameStartedNavigating":
            target.starting[params["frameId"]] = params.get("navigationType", "")
        elif method == "Page.frameNavigated":
            self._navigated(target, params["frame"], params.get("type", ""))
        elif method == "Page.navigatedWithinDocument":
            if params["frameId"] == target.main_frame:
                self._add(json_event("navigate", self._now(), {"url": params["url"], "kind": "same-document", "initiator": "page"}, tab=target.tab))
        elif method == "Target.attachedToTarget":
            info = params.get("targetInfo", {})
            child = self.connection.session(params["sessionId"], None)
            if info.get("type") == "iframe":
                await nursery.start(self._follow, _Target(child, target.tab), False)
            else:
                await release_waiting(child)
                await child.detach()

    def _navigated(self, target: _Target, frame: dict[str, Any], kind: str) -> None:
        if frame.get("parentId") or (target.main_frame and frame["id"] != target.main_frame):
            return  # iframes navigate as their page makes them
        target.main_frame = frame["id"]
        navigation = target.starting.pop(frame["id"], "")
        page = frame["id"] in target.requested or target.page_opened
        target.requested.discard(frame["id"])
        target.page_opened = False
        if kind == "BackForwardCacheRestore" or navigation in _HISTORY:
            what = "history"
        elif navigation in _RELOADS:
            what = "reload"
        else:
            what = "document"
        url = frame.get("url", "") + frame.get("urlFragment", "")
        data = {"url": url, "kind": what, "initiator": "page" if page else "browser"}
        now = self._now()
        if loads_document(url):
            document = self._documents[target.tab] = self._documents.get(target.tab, 0) + 1
            self._document_times[(target.tab, document)] = now
        self._add(json_event("navigate", now, data, tab=target.tab, document=self._documents.get(target.tab, 0)))

    def _document_of(self, tab: int, token: Any) -> int:
        """The number of the tab's document that ``token`` names: the one loaded when it first reported."""
        current = self._documents.get(tab, 0)
        if not isinstance(token, str):
            return current
        tokens = self._tokens.setdefault(tab, {})
        if token not in tokens:
            if len(tokens) >= _TOKENS:
                tokens.pop(next(iter(tokens)))
            tokens[token] = current
        return tokens[token]

    def _from_page(self, target: _Target, payload: str) -> None:
        raw = json.loads(payload)
        document = self._document_of(target.tab, raw.get("document"))
        # Never before the navigation that loaded the document (the page's clock and ours differ a little).
        begun = self._document_times.get((target.tab, document), 0.0)
        timestamp = max(0.0, begun, float(raw["time"]) - self.start_time)
        event = json_event(raw["type"], timestamp, raw.get("data") or {}, tab=target.tab, frame=raw.get("frame") or (),
                           selectors=raw.get("selectors") or (), document=document)
        self._add(event)

    def _add(self, event: RecordedEvent) -> None:
        (self._mutations if event.type == "mutation" else self._events).append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a listener's failure is not the recording's
                log.exception("recording listener failed")

    def _now(self) -> float:
        return max(0.0, time.time() * 1000 - self.start_time)

    # ---- network

    def _on_network(self, nursery: trio.Nursery, session: CdpSession, method: str, params: dict[str, Any]) -> None:
        key = (session.session_id, params["requestId"])
        if method == "Network.requestWillBeSent":
            if key in self._exchanges and params.get("redirectResponse"):
                self._finish(self._exchanges.pop(key), params["redirectResponse"], params["timestamp"])
                self._finished.pop(key, None)  # later wire headers are the next hop's
            request = params["request"]
            if not request["url"].startswith(_RECORDED_SCHEMES):
                return
            message = NetworkExchange(
                timestamp=max(0.0, params.get("wallTime", time.time()) * 1000 - self.start_time),
                tab=self._tab_of(session),
                method=request["method"],
                url=request["url"],
                resource_type=params.get("type", ""),
            )
            message.request_headers.extend(_headers(request.get("headers")))
            message.request_body = posted_body(request)
            if not message.request_body and request.get("hasPostData"):
                nursery.start_soon(self._read_post_data, session, params["requestId"], message)
            self._exchanges[key] = _Exchange(message, params["timestamp"], self._early_headers.pop(key, None))
            return
        exchange = self._exchanges.get(key)
        if method == "Network.responseReceivedExtraInfo":
            # The headers as they went over the wire (Set-Cookie included), before or after
            # responseReceived, even after loadingFinished.
            target = exchange or self._finished.get(key)
            if target is None:
                self._early_headers[key] = params.get("headers") or {}
                return
            target.extra_headers = params.get("headers") or {}
            if target.message.status:
                del target.message.response_headers[:]
                target.message.response_headers.extend(_headers(target.extra_headers))
            return
        if exchange is None:
            return
        if method == "Network.responseReceived":
            self._respond(exchange, params["response"])
        elif method == "Network.loadingFinished":
            exchange.message.duration = max(0.0, (params["timestamp"] - exchange.started) * 1000)
            del self._exchanges[key]
            self._done.append(exchange.message)
            self._finished[key] = exchange
            assert self._bodies is not None
            self._bodies.start_soon(self._read_body, session, params["requestId"], exchange.message)
        elif method == "Network.loadingFailed":
            exchange.message.duration = max(0.0, (params["timestamp"] - exchange.started) * 1000)
            exchange.message.error = params.get("errorText", "failed") if not params.get("canceled") else "net::ERR_ABORTED"
            exchange.message.body_missing = True
            del self._exchanges[key]
            self._done.append(exchange.message)

    def _respond(self, exchange: _Exchange, response: dict[str, Any]) -> None:
        message = exchange.message
        message.status = int(response.get("status", 0))
        message.status_text = response.get("statusText", "")
        message.mime_type = response.get("mimeType", "")
        message.protocol = response.get("protocol", "")
        del message.response_headers[:]
        message.response_headers.extend(_headers(exchange.extra_headers or response.get("headers")))

    def _finish(self, exchange: _Exchange, response: dict[str, Any], timestamp: float) -> None:
        self._respond(exchange, response)
        exchange.message.duration = max(0.0, (timestamp - exchange.started) * 1000)
        self._done.append(exchange.message)

    def _tab_of(self, session: CdpSession) -> int:
        for target in self._targets:
            if target.session is session:
                return target.tab
        return 0

    async def _read_body(self, session: CdpSession, request_id: str, message: NetworkExchange) -> None:
        try:
            result = await session.send("Network.getResponseBody", {"requestId": request_id})
        except (ProtocolError, BrowserClosedError):
            bodiless = 300 <= message.status < 400 or message.status in (204, 304) or message.method == "HEAD"
            message.body_missing = not bodiless
            return
        message.response_body = body_bytes(result.get("body", ""), bool(result.get("base64Encoded")))
        if not message.response_body and any(t.worker and t.session is session for t in self._targets):
            # A worker's network keeps no body of what it streamed on (to a page, as its answer).
            message.body_missing = not (300 <= message.status < 400 or message.status in (204, 304) or message.method == "HEAD")

    async def _read_post_data(self, session: CdpSession, request_id: str, message: NetworkExchange) -> None:
        try:
            result = await session.send("Network.getRequestPostData", {"requestId": request_id})
        except (ProtocolError, BrowserClosedError):
            return
        message.request_body = body_bytes(result.get("postData", ""), bool(result.get("base64Encoded")))

    async def _page_resources(self, target: _Target) -> None:
        """The resources the tab's frames already show, as exchanges at time 0.

        Each comes from the browser's resource cache (``Page.getResourceContent``) or,
        when the browser kept none (a page loaded before anyone listened), is fetched
        again from its frame (same-origin resources only).
        """
        session = target.session
        try:
            tree = (await session.send("Page.getResourceTree"))["frameTree"]
        except ProtocolError:
            return
        stack = [tree]
        while stack:
            node = stack.pop()
            stack.extend(node.get("childFrames", []))
            frame = node["frame"]
            resources = [{"url": frame["url"], "type": "Document", "mimeType": frame.get("mimeType", "text/html")}]
            resources += node.get("resources", [])
            for resource in resources:
                if not resource["url"].startswith(_RECORDED_SCHEMES) or resource.get("failed") or resource.get("canceled"):
                    continue
                message = await _cached(session, frame, resource) or await _fetched(session, frame, resource)
                if message is not None:
                    message.tab = target.tab
                    self._done.append(message)
            if frame.get("parentId") is None:
                await self._worker_scripts(target, frame)

    async def _worker_scripts(self, target: _Target, frame: dict[str, Any]) -> None:
        """The scripts of the service workers registered for the tab's page, fetched again from it."""
        try:
            urls = await Frame(target.session, frame["id"], frame["url"]).call(_WORKER_SCRIPTS)
        except (ProtocolError, StateError):
            return
        known = {x.url for x in self._done}
        for url in urls if isinstance(urls, list) else []:
            if not isinstance(url, str) or url in known or not url.startswith(_RECORDED_SCHEMES):
                continue
            resource = {"url": url, "type": SERVICE_WORKER_SCRIPT, "mimeType": "text/javascript"}
            message = await _fetched(target.session, frame, resource)
            if message is not None:
                message.tab = target.tab
                self._done.append(message)

    async def _release(self) -> None:
        # Before auto-attaching ends: that detaches the sessions it made.
        for target in self._targets:
            if target.worker:
                continue
            try:
                await _switch_off(target.session)
                await target.session.send("Runtime.removeBinding", {"name": BINDING})
            except (ProtocolError, BrowserClosedError):
                pass
        try:
            await self.connection.send("Target.setAutoAttach", {"autoAttach": False, "waitForDebuggerOnStart": False, "flatten": True})
        except (ProtocolError, BrowserClosedError):
            pass
        for target in self._targets:
            await target.session.detach()


async def _cached(session: CdpSession, frame: dict[str, Any], resource: dict[str, Any]) -> NetworkExchange | None:
    try:
        content = await session.send("Page.getResourceContent", {"frameId": frame["id"], "url": resource["url"]})
    except ProtocolError:
        return None
    message = NetworkExchange(
        method="GET", url=resource["url"], status=200, status_text="OK",
        resource_type=resource.get("type", ""), mime_type=resource.get("mimeType", ""),
        response_body=body_bytes(content.get("content", ""), bool(content.get("base64Encoded"))),
    )
    textual = not content.get("base64Encoded")
    content_type = message.mime_type + ("; charset=utf-8" if textual and message.mime_type else "")
    message.response_headers.add(name="Content-Type", value=content_type or "application/octet-stream")
    return message


#: The script URLs of the service workers registered for a page's origin (in the page's scope or not).
_WORKER_SCRIPTS = """async function () {
  if (!navigator.serviceWorker) return [];
  const registrations = await navigator.serviceWorker.getRegistrations();
  const workers = registrations.flatMap((r) => [r.active, r.waiting, r.installing]).filter(Boolean);
  return [...new Set(workers.map((w) => w.scriptURL))];
}"""

_FETCH_AGAIN = """async function (url) {
  if (new URL(url).origin !== location.origin) return null;
  const response = await fetch(url, {credentials: "include", cache: "force-cache"});
  const bytes = new Uint8Array(await response.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return {status: response.status, statusText: response.statusText, headers: Array.from(response.headers), body: btoa(binary)};
}"""


async def _fetched(session: CdpSession, frame: dict[str, Any], resource: dict[str, Any]) -> NetworkExchange | None:
    try:
        answer = await Frame(session, frame["id"], frame["url"]).call(_FETCH_AGAIN, resource["url"])
    except (ProtocolError, StateError) as exc:
        log.debug("cannot read %s again: %s", resource["url"], exc)
        return None
    if not answer:
        return None
    message = NetworkExchange(
        method="GET", url=resource["url"], status=int(answer["status"]), status_text=answer["statusText"],
        resource_type=resource.get("type", ""), mime_type=resource.get("mimeType", ""),
        response_body=body_bytes(answer["body"], True),
    )
    message.response_headers.extend(Header(name=name, value=value) for name, value in answer["headers"])
    return message


async def _switch_off(session: CdpSession) -> None:
    """Quiet the script in every frame of the session: it stays in the documents, doing nothing."""
    stack = [(await session.send("Page.getFrameTree"))["frameTree"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("childFrames", []))
        try:
            world = await session.send("Page.createIsolatedWorld", {"frameId": node["frame"]["id"], "worldName": WORLD})
            await session.send("Runtime.evaluate", {"expression": SWITCH_OFF, "contextId": world["executionContextId"]})
        except ProtocolError:
            continue  # a frame of another process, or gone


def _in_order(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """Events by timestamp (stable), never decreasing."""
    ordered = sorted(events, key=lambda e: e.timestamp)
    last = 0.0
    for event in ordered:
        event.timestamp = last = max(last, event.timestamp)
    return ordered


def auto_attached(params: dict[str, Any]) -> bool:
    """Whether a ``Target.attachedToTarget`` after the start comes from auto-attaching, which pauses each
    new target: another user of the connection attaching to a tab (``Target.attachToTarget``) is not ours."""
    return bool(params.get("waitingForDebugger"))


async def release_waiting(session: CdpSession) -> None:
    """Let a target paused at its start (``waitForDebuggerOnStart``) run; gone targets are fine."""
    try:
        await session.send("Runtime.runIfWaitingForDebugger")
    except (ProtocolError, BrowserClosedError):
        pass
