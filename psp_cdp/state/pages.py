"""Pages, frames and stub pages of one browser context, as the state components use them.

* :class:`BrowserContext` resolves a context id (``None`` is the default context),
  lists its tabs and opens stub pages in it.
* :class:`Tab` is an attached page target with its frames, evaluated in an isolated
  world so that page scripts that patch ``Storage.prototype`` cannot interfere.
* :class:`StubPage` navigates a throwaway tab to an origin and answers the
  navigation itself through the ``Fetch`` domain with an empty document, so the
  origin's storage can be read or written without a request reaching the site.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from ..cdp import CdpConnection, CdpSession, single_error
from ..errors import BrowserClosedError, ProtocolError, StateError

__all__ = [
    "BrowserContext",
    "Frame",
    "Tab",
    "StubPage",
    "origin_of",
    "js_json",
    "evaluate",
    "call_function",
]

WORLD_NAME = "__psp_cdp"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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


def js_json(value: Any) -> str:
    """JSON text that survives the trip to the page exactly, lone surrogates included."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
    """Call a function declaration in an execution context with JSON-able arguments."""
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


class StubPage:
    """A throwaway tab whose navigations are answered with an empty document."""

    def __init__(self, session: CdpSession, target_id: str) -> None:
        self.session = session
        self.target_id = target_id
        self.titles: dict[str, str] = {}
        self.stubbing = True
        self._frame: Frame | None = None  # the current document's main frame, until the next navigation

    def document(self, url: str) -> bytes:
        title = self.titles.get(url, "")
        escaped = title.replace("&", "&amp;").replace("<", "&lt;")
        return f"<!doctype html><html><head><meta charset=utf-8><title>{escaped}</title></head><body></body></html>".encode(
            "utf-8", "surrogatepass"
        )

    async def _serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.session.listen("Fetch.requestPaused") as paused:
            task_status.started()
            async for event in paused:
                request_id = event.params["requestId"]
                url = event.params["request"]["url"]
                try:
                    if self.stubbing:
                        await self.session.send(
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
                    else:
                        await self.session.send("Fetch.continueRequest", {"requestId": request_id})
                except ProtocolError:
                    continue  # the request was cancelled meanwhile

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

    async def reload_live(self, *, timeout: float = 30.0) -> bool:
        """Stop stubbing and reload the current entry from the network; whether it loaded in time."""
        self.stubbing = False
        await self.session.send("Fetch.disable")
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
