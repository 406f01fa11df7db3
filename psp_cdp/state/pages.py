"""Pages, frames and stub pages of one browser context, as the state components use them.

* :class:`BrowserContext` resolves a context id (``None`` is the default context),
  lists its tabs and opens stub pages in it.
* :class:`Tab` is an attached page target with its frames, evaluated in an isolated
  world so that page scripts that patch ``Storage.prototype`` cannot interfere.
* :class:`StubPage` navigates a throwaway tab to an origin and answers the
  navigation itself through the ``Fetch`` domain with an empty document, so the
  origin's storage can be read or written without a request reaching the site.
  It can also embed stub iframes (:meth:`StubPage.embedded_frame`), which is how
  partitioned storage is reached: :meth:`StubPage.storage_frame` gives a frame
  holding exactly a given :class:`StorageKey`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import trio

from ..cdp import CdpConnection, CdpSession, single_error
from ..errors import BrowserClosedError, ProtocolError, StateError

__all__ = [
    "BrowserContext",
    "Frame",
    "Tab",
    "StubPage",
    "StorageKey",
    "parse_storage_key",
    "origin_of",
    "evaluate",
    "call_function",
]

WORLD_NAME = "__psp_cdp"
_DOCUMENT_REQUESTS = [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]
_KEY_ATTRIBUTE = re.compile(r"\^(\d)")
#: Hosts of the cross-site iframe put between a top-level stub document and a frame whose
#: storage key has a cross-site ancestor; stub pages answer them, so no request leaves.
_ANCESTOR_HOSTS = ("psp-cdp-ancestor.invalid", "psp-cdp-other-ancestor.invalid")

_EMBED = """function (src, name) {
  const frame = document.createElement("iframe");
  frame.name = name;
  frame.src = src;
  const loaded = new Promise((resolve) => { frame.onload = () => resolve(true); });
  (document.body || document.documentElement).appendChild(frame);
  return loaded;
}"""


def origin_of(url: str) -> str | None:
    """The serialised origin of an http(s) URL; ``None`` for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


@dataclass(frozen=True)
class StorageKey:
    """A storage key as Chromium serialises it (``Storage.getStorageKeyForFrame``).

    The serialised origin with a trailing "/", then ``^`` attributes::

        http://a.test:8000/                       first party: the origin in its own site
        http://a.test:8000/^0https://b.test       third party: in a frame under the top-level site https://b.test
        http://a.test:8000/^31                    the origin's own top-level site, with a cross-site frame between
        http://a.test:8000/^1<high>^2<low>        a nonce (fenced frame, credentialless iframe): transient
        http://a.test:8000/^4<high>^5<low>^6<site>  an opaque top-level site (sandboxed, data: URL): transient
    """

    text: str
    origin: str
    #: The top-level site (``scheme://host``) when it is not the origin's own site.
    top_level_site: str | None = None
    #: Whether a frame between the top-level document and this one is of another site.
    cross_site_ancestor: bool = False
    #: ``high.low`` of a nonce key.
    nonce: str | None = None
    #: Whether the top-level site is opaque (``top_level_site`` is then ``None``).
    opaque_top_level: bool = False

    def __str__(self) -> str:
        return self.text

    @property
    def first_party(self) -> bool:
        return not (self.top_level_site or self.cross_site_ancestor or self.nonce or self.opaque_top_level)

    @property
    def partitioned(self) -> bool:
        return not self.first_party

    @property
    def recreatable(self) -> bool:
        """Whether a frame with this key can be made again (no nonce, no opaque site, http(s) only)."""
        if self.nonce is not None or self.opaque_top_level or origin_of(self.origin) != self.origin:
            return False
        return self.top_level_site is None or origin_of(self.top_level_site) == self.top_level_site

    def top_level_url(self) -> str:
        """A URL whose document, as a tab's top-level one, can hold frames with this key."""
        return (self.top_level_site or self.origin) + "/"

    def fits_top_level(self, url: str) -> bool:
        """Whether a tab's top-level document at ``url`` is of this key's top-level site.

        A third-party key's site matches its host and subdomains; a key of the origin's own
        site matches that origin's host only (telling sites apart needs the public suffix list).
        """
        try:
            parts, own = urlsplit(url), urlsplit(self.top_level_site or self.origin)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.scheme != own.scheme or not parts.hostname:
            return False
        if self.top_level_site is None:
            return parts.hostname == own.hostname
        return parts.hostname == own.hostname or parts.hostname.endswith("." + (own.hostname or ""))


def parse_storage_key(text: str) -> StorageKey:
    """The parts of a serialised storage key; :class:`StateError` if it is not one."""
    head, caret, tail = text.partition("^")
    pieces = _KEY_ATTRIBUTE.split(caret + tail)
    tags, values = pieces[1::2], pieces[2::2]
    well_formed = (
        head.endswith("/")
        and len(head) > 1
        and not pieces[0]
        and tags in ([], ["0"], ["3"], ["1", "2"], ["4", "5", "6"])
        and all(values[:2])  # only an opaque site's precursor (^6) may be empty
        and (tags != ["3"] or values == ["1"])
    )
    if not well_formed:
        raise StateError(f"not a storage key: {text!r}")
    origin = head[:-1]
    if tags == ["0"]:
        return StorageKey(text, origin, top_level_site=values[0], cross_site_ancestor=True)
    if tags == ["1", "2"]:
        return StorageKey(text, origin, cross_site_ancestor=True, nonce=f"{values[0]}.{values[1]}")
    if tags == ["4", "5", "6"]:
        return StorageKey(text, origin, cross_site_ancestor=True, opaque_top_level=True)
    return StorageKey(text, origin, cross_site_ancestor=bool(tags))


def _cross_site_origin(origin: str) -> str:
    """An origin of the same scheme as ``origin`` and of another site."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    chosen = next(h for h in _ANCESTOR_HOSTS if host != h and not host.endswith("." + h))
    return f"{parts.scheme}://{chosen}"


def _raise_for_exception(method: str, result: dict[str, Any]) -> None:
    details = result.get("exceptionDetails")
    if details:
        exception = details.get("exception") or {}
        message = exception.get("description") or details.get("text") or "script failed"
        raise StateError(f"{method}: {message.splitlines()[0]}")


async def evaluate(session: CdpSession, expression: str, *, context_id: int | None = None) -> Any:
    """Evaluate ``expression`` (awaiting a promise) and return its value by value."""
    params: dict[str, Any] = {"expression": expression, "returnByValue": True, "awaitPromise": True}
    if context_id is not None:
        params["contextId"] = context_id
    result = await session.send("Runtime.evaluate", params)
    _raise_for_exception("Runtime.evaluate", result)
    return result.get("result", {}).get("value")


async def call_function(session: CdpSession, declaration: str, *args: Any, context_id: int) -> Any:
    """Call a function declaration in an execution context with JSON-able arguments.

    Arguments arrive exactly, strings with unpaired surrogates included (see :func:`psp_cdp.cdp.wire_json`);
    a result string is only exact when the page made it with ``JSON.stringify``.
    """
    params = {
        "functionDeclaration": declaration,
        "executionContextId": context_id,
        "arguments": [{"value": a} for a in args],
        "returnByValue": True,
        "awaitPromise": True,
    }
    result = await session.send("Runtime.callFunctionOn", params)
    _raise_for_exception("Runtime.callFunctionOn", result)
    return result.get("result", {}).get("value")


@dataclass
class Frame:
    """A frame of a tab, reachable through ``session`` (the tab's, or an out-of-process iframe's)."""

    session: CdpSession
    frame_id: str
    url: str
    parent_id: str | None = None
    _world: int | None = field(default=None, repr=False)

    @property
    def origin(self) -> str | None:
        return origin_of(self.url)

    async def world(self) -> int:
        """The id of this frame's isolated world, created on first use."""
        if self._world is None:
            result = await self.session.send(
                "Page.createIsolatedWorld", {"frameId": self.frame_id, "worldName": WORLD_NAME}
            )
            self._world = int(result["executionContextId"])
        return self._world

    async def call(self, declaration: str, *args: Any) -> Any:
        return await call_function(self.session, declaration, *args, context_id=await self.world())

    async def storage_key(self) -> str | None:
        try:
            result = await self.session.send("Storage.getStorageKeyForFrame", {"frameId": self.frame_id})
        except ProtocolError:
            return None
        return result.get("storageKey")


@dataclass
class Tab:
    """An attached page target of the captured context."""

    target_id: str
    url: str
    title: str
    session: CdpSession
    frames: list[Frame] = field(default_factory=list)
    _children: list[CdpSession] = field(default_factory=list, repr=False)
    _navigation: dict[str, Any] | None = field(default=None, repr=False)

    async def navigation(self) -> dict[str, Any]:
        """``Page.getNavigationHistory`` of the tab: ``currentIndex`` and ``entries``."""
        if self._navigation is None:
            self._navigation = await self.session.send("Page.getNavigationHistory")
        return self._navigation

    async def history(self) -> list[dict[str, Any]]:
        return list((await self.navigation()).get("entries", []))

    async def load_frames(self) -> None:
        """Every frame of the tab, out-of-process iframes included."""
        self.frames = []
        await self._collect(self.session)

    async def _collect(self, session: CdpSession) -> None:
        tree = (await session.send("Page.getFrameTree"))["frameTree"]
        stack = [(tree, None)]
        while stack:
            node, parent = stack.pop()
            frame = node["frame"]
            self.frames.append(Frame(session, frame["id"], frame.get("url", "") + frame.get("urlFragment", ""), parent))
            stack.extend((child, frame["id"]) for child in reversed(node.get("childFrames", [])))
        with session.listen("Target.attachedToTarget") as attached:
            await session.send(
                "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True}
            )
            children = []
            while True:
                try:
                    event = attached.receive_nowait()
                except trio.WouldBlock:
                    break
                if event.params.get("targetInfo", {}).get("type") == "iframe":
                    children.append(session.connection.session(event.params["sessionId"]))
        for child in children:
            self._children.append(child)
            try:
                await self._collect(child)
            except (ProtocolError, BrowserClosedError):
                continue  # the iframe went away meanwhile

    async def release(self) -> None:
        """Detach from the tab and its iframes; the tab itself stays as it was."""
        with trio.CancelScope(shield=True):
            for child in self._children:
                await child.detach()
            try:
                await self.session.send("Target.setAutoAttach", {"autoAttach": False, "waitForDebuggerOnStart": False})
            except (ProtocolError, BrowserClosedError):
                pass
            await self.session.detach()


class Answerer(Protocol):
    """Answers the requests a tab would send to the network (a replay's recorded network)."""

    async def answer(self, session: CdpSession, paused: dict[str, Any]) -> None:
        """Answer one ``Fetch.requestPaused`` (its params) of ``session``."""


class StubPage:
    """A throwaway tab whose navigations are answered with an empty document."""

    def __init__(self, session: CdpSession, target_id: str) -> None:
        self.session = session
        self.target_id = target_id
        self.titles: dict[str, str] = {}
        self.stubbing = True
        self.network: Answerer | None = None
        self._frame: Frame | None = None  # the current document's main frame, until the next navigation
        self._nursery: trio.Nursery | None = None
        self._auto_attached: set[str | None] = set()  # sessions that attach their out-of-process iframes
        self._embedded = 0

    def document(self, url: str) -> bytes:
        title = self.titles.get(url, "")
        escaped = title.replace("&", "&amp;").replace("<", "&lt;")
        return f"<!doctype html><html><head><meta charset=utf-8><link rel=icon href=data:,><title>{escaped}</title></head><body></body></html>".encode(
            "utf-8", "surrogatepass"
        )

    async def _serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._answer, self.session)
            task_status.started()

    async def _answer(self, session: CdpSession, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer the document requests ``session`` intercepts, until it goes away."""
        with session.listen("Fetch.requestPaused") as paused:
            task_status.started()
            async for event in paused:
                request_id = event.params["requestId"]
                url = event.params["request"]["url"]
                try:
                    if self.stubbing:
                        await session.send(
                            "Fetch.fulfillRequest",
                            {
                                "requestId": request_id,
                                "responseCode": 200,
                                "responseHeaders": [
                                    {"name": "Content-Type", "value": "text/html; charset=utf-8"},
                                    {"name": "Cache-Control", "value": "no-store"},
                                ],
                                "body": base64.b64encode(self.document(url)).decode("ascii"),
                            },
                        )
                    elif self.network is not None:
                        await self.network.answer(session, event.params)
                    else:
                        await session.send("Fetch.continueRequest", {"requestId": request_id})
                except ProtocolError:
                    continue  # the request was cancelled meanwhile
                except BrowserClosedError:
                    if session is self.session:
                        raise
                    return  # an iframe of the stub went away with its document

    async def navigate(self, url: str, *, replace: bool = False, timeout: float = 30.0) -> None:
        """Navigate and wait until the document has loaded (at once for same-document ones).

        ``replace`` navigates with ``location.replace`` from the current document, so the
        current history entry is replaced rather than a new one added.
        """
        with self.session.listen("Page.loadEventFired") as loaded:
            self._frame = None
            if replace:
                frame = await self.main_frame()
                await frame.call("function (url) { location.replace(url); }", url)
                wait = True
            else:
                result = await self.session.send("Page.navigate", {"url": url})
                if result.get("errorText"):
                    raise StateError(f"cannot open {url}: {result['errorText']}")
                wait = bool(result.get("loaderId"))
            if wait:
                with trio.fail_after(timeout):
                    await loaded.receive()

    async def go_to_entry(self, index: int, *, timeout: float = 30.0) -> None:
        """Traverse the tab's history to entry ``index`` and wait (at most ``timeout``) for it to load."""
        history = await self.session.send("Page.getNavigationHistory")
        with self.session.listen("Page.loadEventFired") as loaded:
            self._frame = None
            await self.session.send("Page.navigateToHistoryEntry", {"entryId": history["entries"][index]["id"]})
            with trio.move_on_after(timeout):
                await loaded.receive()

    async def reload_live(self, *, timeout: float = 30.0, network: Answerer | None = None) -> bool:
        """Stop stubbing and reload the current entry from the network; whether it loaded in time.

        With ``network``, every request of the tab (same-process frames included) is handed
        to it instead of going to the network, until the stub page is released.
        """
        self.stubbing = False
        self.network = network
        if network is None:
            await self.session.send("Fetch.disable")
        else:
            await self.session.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]})
        with self.session.listen("Page.loadEventFired") as loaded:
            self._frame = None
            await self.session.send("Page.reload")
            with trio.move_on_after(timeout):
                await loaded.receive()
                return True
        return False

    async def main_frame(self) -> Frame:
        """The main frame of the current document (its isolated world made once per document)."""
        if self._frame is None:
            tree = (await self.session.send("Page.getFrameTree"))["frameTree"]
            self._frame = Frame(self.session, tree["frame"]["id"], tree["frame"]["url"])
        return self._frame

    async def call(self, declaration: str, *args: Any) -> Any:
        """Call a function in the current document's isolated world."""
        return await (await self.main_frame()).call(declaration, *args)

    async def embedded_frame(
        self, origin: str, path: str = "/", *, parent: Frame | None = None, timeout: float = 30.0
    ) -> Frame:
        """A new iframe of ``origin`` + ``path`` in the current stub document, once it has loaded.

        The iframe's document is a stub document too. ``parent`` is the frame to put it in:
        the main frame by default, or a frame an earlier call returned, so that frames nest.
        A cross-site iframe runs out of process and the returned frame is reached through its
        own session; either way ``Frame.call`` runs in the iframe's isolated world. The frame
        lives as long as the document that holds it. :class:`StateError` if it does not load
        within ``timeout`` seconds.
        """
        if not self.stubbing:
            raise StateError("the page is live again: stub iframes can no longer be embedded")
        parent = parent or await self.main_frame()
        await self._attach_iframes_of(parent.session)
        self._embedded += 1
        name = f"{WORLD_NAME}_{self._embedded}"
        url = origin + path
        with parent.session.listen("Target.attachedToTarget") as attached:
            with trio.move_on_after(timeout) as waited:
                await parent.call(_EMBED, url, name)
            if waited.cancelled_caught:
                raise StateError(f"the iframe {url} did not load within {timeout:g}s")
            events = []
            while True:
                try:
                    events.append(attached.receive_nowait())
                except trio.WouldBlock:
                    break
        nodes = [(await parent.session.send("Page.getFrameTree"))["frameTree"]]
        while nodes:
            node = nodes.pop()
            frame = node["frame"]
            if frame.get("name") == name and frame.get("parentId") == parent.frame_id:
                return Frame(parent.session, frame["id"], frame.get("url", ""), parent.frame_id)
            nodes.extend(node.get("childFrames", []))
        for event in events:
            info = event.params.get("targetInfo", {})
            if info.get("type") != "iframe" or info.get("parentFrameId") != parent.frame_id:
                continue
            child = self.session.connection.session(event.params["sessionId"], info.get("targetId"))
            root = (await child.send("Page.getFrameTree"))["frameTree"]["frame"]
            if root.get("name") == name:
                return Frame(child, root["id"], root.get("url", ""), parent.frame_id)
        raise StateError(f"the iframe {url} loaded but cannot be found")

    async def storage_frame(self, key: str | StorageKey, *, timeout: float = 30.0) -> Frame:
        """A frame of the current document whose storage key is exactly ``key``.

        For a first-party key that is the main frame. For a partitioned key it is a stub
        iframe of the key's origin (:meth:`embedded_frame`), put under a cross-site stub
        iframe when the key has a cross-site ancestor but no other top-level site. The
        current document must be of the key's top-level site: navigate to
        :meth:`StorageKey.top_level_url` first, or to any URL it :meth:`StorageKey.fits_top_level`.
        :class:`StateError` if the key cannot be made again or the frame gets another key.
        """
        key = parse_storage_key(key) if isinstance(key, str) else key
        if not key.recreatable:
            raise StateError(f"storage key {key} cannot be made again (it holds a nonce or an opaque site)")
        frame = await self.main_frame()
        if key.top_level_site is not None:
            frame = await self.embedded_frame(key.origin, parent=frame, timeout=timeout)
        elif key.cross_site_ancestor:
            between = await self.embedded_frame(_cross_site_origin(key.origin), parent=frame, timeout=timeout)
            frame = await self.embedded_frame(key.origin, parent=between, timeout=timeout)
        actual = await frame.storage_key()
        if actual != key.text:
            raise StateError(f"a frame of {frame.url} has storage key {actual}, not {key}")
        return frame

    async def _attach_iframes_of(self, session: CdpSession) -> None:
        """Have ``session`` attach its out-of-process iframes, and answer their document requests."""
        if session.session_id in self._auto_attached:
            return
        if session is not self.session:
            if self._nursery is None:
                raise StateError("the stub page is not serving")
            await self._nursery.start(self._answer, session)
            await session.send("Fetch.enable", {"patterns": _DOCUMENT_REQUESTS})
        await session.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True})
        self._auto_attached.add(session.session_id)


class BrowserContext:
    """One browser context of a connected browser."""

    def __init__(self, connection: CdpConnection, context_id: str | None, default_id: str | None) -> None:
        self.connection = connection
        self.id = context_id
        self.default_id = default_id

    @classmethod
    async def resolve(cls, connection: CdpConnection, context_id: str | None) -> BrowserContext:
        """The context ``context_id`` (``None``/"default": the default one); error if unknown."""
        result = await connection.send("Target.getBrowserContexts")
        default_id = result.get("defaultBrowserContextId")
        if context_id in (None, "", "default") or context_id == default_id:
            return cls(connection, None, default_id)
        if context_id not in result.get("browserContextIds", []):
            known = ", ".join(result.get("browserContextIds", [])) or "none besides the default"
            raise StateError(f"no browser context {context_id!r} (known: {known})")
        return cls(connection, context_id, default_id)

    @classmethod
    async def create(cls, connection: CdpConnection) -> BrowserContext:
        """A new, empty context that outlives this connection."""
        result = await connection.send("Target.createBrowserContext", {"disposeOnDetach": False})
        defaults = await connection.send("Target.getBrowserContexts")
        return cls(connection, result["browserContextId"], defaults.get("defaultBrowserContextId"))

    def owns(self, info: dict[str, Any]) -> bool:
        context = info.get("browserContextId")
        return context == (self.id or self.default_id) or (self.id is None and context is None)

    def context_params(self) -> dict[str, Any]:
        return {"browserContextId": self.id} if self.id else {}

    async def page_targets(self) -> list[dict[str, Any]]:
        """Target infos of this context's tabs."""
        targets = (await self.connection.send("Target.getTargets"))["targetInfos"]
        return [t for t in targets if t.get("type") == "page" and self.owns(t)]

    async def attach_tab(self, info: dict[str, Any]) -> Tab:
        session = await self.connection.attach(info["targetId"])
        return Tab(info["targetId"], info.get("url", ""), info.get("title", ""), session)

    async def new_tab(self, url: str = "about:blank", *, background: bool = True) -> str:
        params = {"url": url, "background": background, **self.context_params()}
        return (await self.connection.send("Target.createTarget", params))["targetId"]

    async def close_target(self, target_id: str) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.connection.send("Target.closeTarget", {"targetId": target_id})
            except (ProtocolError, BrowserClosedError):
                pass

    @asynccontextmanager
    async def stub_page(self, *, target_id: str | None = None) -> AsyncIterator[StubPage]:
        """A stub page; a new throwaway tab unless ``target_id`` names a tab to drive."""
        own = target_id is None
        if target_id is None:
            target_id = await self.new_tab()
        try:
            session = await self.connection.attach(target_id)
            stub = StubPage(session, target_id)
            with single_error():
                async with trio.open_nursery() as nursery:
                    await nursery.start(stub._serve)
                    await session.send("Page.enable")
                    await session.send(
                        "Fetch.enable", {"patterns": [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]}
                    )
                    try:
                        await session.send("Network.setBypassServiceWorker", {"bypass": True})
                    except ProtocolError:
                        pass
                    try:
                        yield stub
                    finally:
                        nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                if not own:
                    try:
                        await session.send("Fetch.disable")
                    except (ProtocolError, BrowserClosedError):
                        pass
                    await session.detach()
        finally:
            if own:
                await self.close_target(target_id)


async def gather_limited(functions: list[Callable[[], Any]], limit: int) -> list[Any]:
    """Run async callables concurrently, at most ``limit`` at a time; results in order."""
    results: list[Any] = [None] * len(functions)
    semaphore = trio.Semaphore(limit)

    async def run(index: int, function: Callable[[], Any]) -> None:
        async with semaphore:
            results[index] = await function()

    with single_error():
        async with trio.open_nursery() as nursery:
            for index, function in enumerate(functions):
                nursery.start_soon(run, index, function)
    return results
