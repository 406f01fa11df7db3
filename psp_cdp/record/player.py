"""Replaying a recording into a browser context.

:class:`Player` restores the recording's starting state (the tabs' pages loaded from the
recording when the network is mocked), then dispatches each event at its recorded time
divided by the speed (``speed=None``: each as soon as the one before is done), finding
its element again by the first of its selectors that matches exactly one element; an
element that is not there yet is waited for (``timeout``). docs/recording.md says what
each event type does. Each event becomes a :class:`Step`: done, retried (it worked on a
later try, or the page needed correcting), skipped (its document was replaced by a
navigation the recording itself shows, earlier than recorded) or failed (with the reason).
Once the events are replayed, the end state of each tab and the cookies are compared with
the recorded ones (:mod:`.outcome`): the report's ``differences``.

The player attaches to the context's tabs at the browser level with
``waitForDebuggerOnStart``, so a tab the page opens is answered from the recording from
its first request, and is told apart from the tabs that were there. With the network
mocked, it attaches to the context's service workers too, before the starting state is
restored (a restored page registers its worker as it loads): what a worker fetches is
answered through its own session, and the worker's script, which the browser fetches
where no page sees it, through ``Fetch`` at the browser level (for the scripts the
recording holds only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, CdpSession
from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, RecordedEvent, TabEndState
from ..state.dom import ELEMENT_HELPERS
from ..state.engine import restore_state
from ..state.pages import BrowserContext
from ..state.registry import RestoreReport
from .events import SERVICE_WORKER_SCRIPT, event_data, loads_document
from .mock import Fallback, MockNetwork, Unmatched
from .outcome import cookie_digests, differences, read_end_state
from .recorder import release_waiting as _resume

__all__ = ["DONE", "FAILED", "RETRIED", "SKIPPED", "Player", "ReplayReport", "Step"]

log = logging.getLogger(__name__)

DONE, RETRIED, SKIPPED, FAILED = "done", "retried", "skipped", "failed"
#: Value changes the replay makes itself (automation, a script, the browser with no key, a
#: change found before a click): setting them is the step, not a correction. Only a value a
#: replayed key press should have typed ("key", and recordings that do not say) is corrected.
_SET_BY_STEP = {"user", "script", "sync"}
_WORLD = "__psp_cdp_player"
_POLL = 0.05
#: Seconds without a request after which a mocked replay's pages are taken to be done.
_IDLE = 0.5
_BUTTONS = {"left": 1, "right": 2, "middle": 4}
_FIND = "function (selectors) {" + ELEMENT_HELPERS + " return find(selectors); }"
_VALUE = "function () { return this.isContentEditable ? this.innerHTML : this.value; }"
_SET_VALUE = r"""function (value) {
  const fire = (type) => this.dispatchEvent(new Event(type, {bubbles: true, composed: type === "input"}));
  if (this.isContentEditable) { this.innerHTML = value; fire("input"); return; }
  const proto = this instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype
    : this instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, "value").set.call(this, value);
  fire("input"); fire("change");
}"""
_CHECKED = "function () { return this.checked; }"
#: Gives a file input the recorded files (bytes in base64), unless it holds files of the same names, types and sizes.
_SET_FILES = r"""function (files) {
  const key = (list) => Array.from(list, (f) => [f.name, f.type, f.size].join("\0")).join("\n");
  const wanted = files.map((f) => ({name: f.name, type: f.type, size: f.size}));
  if (key(this.files || []) === key(wanted)) return false;
  const transfer = new DataTransfer();
  for (const f of files) {
    const binary = atob(f.data || "");
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    transfer.items.add(new File([bytes], f.name, {type: f.type, lastModified: f.lastModified}));
  }
  this.files = transfer.files;
  this.dispatchEvent(new Event("input", {bubbles: true, composed: true}));
  this.dispatchEvent(new Event("change", {bubbles: true}));
  return true;
}"""
_SET_CHECKED = r"""function (checked) {
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "checked").set.call(this, checked);
  for (const type of ["input", "change"]) this.dispatchEvent(new Event(type, {bubbles: true}));
}"""
_SELECT = r"""function (selected, values) {
  const options = Array.from(this.options);
  const want = new Set(options.every((o, i) => !selected.includes(i) || o.value === values[selected.indexOf(i)])
    ? selected : options.flatMap((o, i) => (values.includes(o.value) ? [i] : [])));
  if (options.every((o, i) => o.selected === want.has(i))) return true;
  const set = Object.getOwnPropertyDescriptor(HTMLOptionElement.prototype, "selected").set;
  options.forEach((o, i) => set.call(o, want.has(i)));
  for (const type of ["input", "change"]) this.dispatchEvent(new Event(type, {bubbles: true}));
  return options.every((o, i) => o.selected === want.has(i));
}"""
_FOCUS = r"""function () {
  if (document.activeElement === this || this.contains(document.activeElement)) return true;
  this.focus();
  return document.activeElement === this;
}"""
#: Scroll offsets of the element, its ancestors and the page: a wheel's effect lands on one of them.
_OFFSETS = r"""function () {
  const offsets = [window.scrollX, window.scrollY];
  for (let el = this; el; el = el.parentElement) offsets.push(el.scrollLeft, el.scrollTop);
  return offsets.join();
}"""
#: Seconds to wait for a wheel's scrolling to start, and the polls it must stay still to be over.
_WHEEL_START, _WHEEL_STILL = 0.5, 3
_SCROLL = r"""function (x, y) {
  const el = this instanceof Element ? this : document.scrollingElement || document.documentElement;
  el.scrollTo({left: x, top: y, behavior: "instant"});
}"""


@dataclass
class Step:
    """One event of the recording, replayed."""

    index: int
    type: str
    target: str
    tab: int
    #: When it was due and when it was dispatched, milliseconds since the replay's start.
    scheduled: float
    dispatched: float = 0.0
    outcome: str = DONE
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "target": self.target, "tab": self.tab,
                "scheduled": round(self.scheduled, 3), "dispatched": round(self.dispatched, 3),
                "outcome": self.outcome, "reason": self.reason}


@dataclass
class ReplayReport:
    steps: list[Step] = field(default_factory=list)
    restore: RestoreReport | None = None
    network: str = "live"
    answered: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)
    fallbacks: list[Fallback] = field(default_factory=list)
    #: Whether the recording has an end state to compare with; where the replay ended otherwise.
    compared: bool = False
    differences: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.outcome == FAILED]

    @property
    def as_recorded(self) -> bool:
        """True when the end state was compared and nothing differed."""
        return self.compared and not self.differences

    def counts(self) -> dict[str, int]:
        counts = {DONE: 0, RETRIED: 0, SKIPPED: 0, FAILED: 0}
        for step in self.steps:
            counts[step.outcome] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.as_dict() for s in self.steps],
            "counts": self.counts(),
            "network": self.network,
            "answered": self.answered,
            "unmatched": [{"method": u.method, "url": u.url} for u in self.unmatched],
            "fallbacks": [{"method": f.method, "url": f.url, "how": f.how} for f in self.fallbacks],
            "restore": self.restore.as_dict() if self.restore else None,
            "outcome": {"compared": self.compared, "as_recorded": self.as_recorded, "differences": list(self.differences)},
        }


class _Failed(Exception):
    """A step that could not be done, with the reason."""


class _Skipped(Exception):
    """A step whose document is gone, replaced by a navigation the recording shows; the reason."""


@dataclass
class _Tab:
    target_id: str
    session: CdpSession
    worlds: dict[tuple[str, str], int] = field(default_factory=dict)


class Player:
    """Replays ``state``'s recording into ``context`` of the browser behind ``connection``."""

    def __init__(
        self,
        connection: CdpConnection,
        state: BrowserSessionState,
        *,
        context: str | None = None,
        speed: float | None = 1.0,
        network: str = "mock",
        timeout: float = 10.0,
        ignore_fields: Iterable[str] = (),
        on_step: Callable[[Step], None] | None = None,
    ) -> None:
        if network not in ("mock", "live"):
            raise StateError(f"network must be mock or live, not {network!r}")
        if speed is not None and speed <= 0:
            raise StateError("the speed must be above 0")
        self.connection = connection
        self.state = state
        self.context_id = context
        self.speed = speed
        self.timeout = timeout
        self.on_step = on_step
        self.mock = MockNetwork(state.recording.exchanges, ignore_fields) if network == "mock" else None
        self.report = ReplayReport(network=network)
        self._tabs: dict[int, _Tab] = {}
        self._attached: dict[str, CdpSession] = {}
        self._claimed: set[str] = set()
        self._initial: set[str] = set()  # tabs that were there before the replay began
        self._new_tab = trio.Event()
        self._last_request = 0.0
        # Documents each attached tab loaded since it was attached (by target id).
        self._documents: dict[str, int] = {}
        self._closed: set[int] = set()
        self._workers: dict[str, CdpSession] = {}  # service workers of the context, by target id
        # The navigations the recording shows: (tab, document) -> URL.
        self._navigations = {
            (e.tab, e.document): _url_of(e) for e in state.recording.events if e.type == "navigate" and e.document
        }

    async def run(self) -> ReplayReport:
        """Restore the starting state, replay every event; the report (it lists failed steps)."""
        if self.context_id == "new":
            self.context = await BrowserContext.create(self.connection)
        else:
            self.context = await BrowserContext.resolve(self.connection, self.context_id)
        try:
            async with trio.open_nursery() as nursery:
                if self.mock is not None:
                    await nursery.start(self._serve_workers, nursery)
                self.report.restore = await restore_state(
                    self.connection, self.state, context=self.context.id or "default", network=self.mock)
                await self._attach(nursery)
                await self._replay()
                await self._settle()
                await self._compare()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._release()
        if self.mock is not None:
            self.report.answered = self.mock.answered
            self.report.unmatched = list(self.mock.unmatched)
            self.report.fallbacks = list(self.mock.fallbacks)
        return self.report

    async def _settle(self) -> None:
        """With the network mocked, answer what the last steps set off: until no request came for a while."""
        if self.mock is None:
            return
        self._last_request = trio.current_time()  # a request the last step sets off may not be out yet
        with trio.move_on_after(self.timeout):
            while trio.current_time() - self._last_request < _IDLE:
                await trio.sleep(_IDLE - (trio.current_time() - self._last_request))

    async def _compare(self) -> None:
        """Compare each replayed tab still open, and the cookies, with the recorded end state."""
        recording = self.state.recording
        if not recording.ended:
            return
        ends: dict[int, TabEndState] = {}
        unread = []
        for index, tab in sorted(self._tabs.items()):
            if index in self._closed:
                continue
            try:
                ends[index] = await read_end_state(tab.session, index)
            except StateError as exc:
                unread.append(str(exc))
        cookies = await cookie_digests(self.context)
        self.report.compared = True
        self.report.differences = unread + differences(recording, ends, cookies)

    # ---- tabs

    def _auto_attach(self, *kinds: str) -> dict[str, Any]:
        if self.mock is not None:
            kinds += ("service_worker",)
        return {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True,
                "filter": [{"type": kind, "exclude": False} for kind in kinds]}

    async def _serve_workers(self, nursery: trio.Nursery, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer the context's service workers from the recording: their requests, and their scripts."""
        scripts = {x.url for x in self.state.recording.exchanges if x.resource_type == SERVICE_WORKER_SCRIPT}
        with self.connection.listen("Fetch.requestPaused", "Target.attachedToTarget", buffer=4096) as events:
            await self.connection.send("Target.setAutoAttach", self._auto_attach())
            if scripts:
                patterns = [{"urlPattern": _url_pattern(url), "requestStage": "Request"} for url in sorted(scripts)]
                await self.connection.send("Fetch.enable", {"patterns": patterns})
            task_status.started()
            async for event in events:
                if event.method == "Target.attachedToTarget":
                    # Only workers: a page attached meanwhile is the restore's own session.
                    if event.params.get("targetInfo", {}).get("type") == "service_worker":
                        await self._on_attached(nursery, event.params, initial=False)
                else:
                    nursery.start_soon(self._worker_script, event.params)

    async def _worker_script(self, paused: dict[str, Any]) -> None:
        """A service worker's script, paused at the browser level: answered when the worker is the context's."""
        assert self.mock is not None
        owner = paused.get("frameId", "")
        if owner not in self._workers:
            try:
                info = (await self.connection.send("Target.getTargetInfo", {"targetId": owner}))["targetInfo"]
            except (ProtocolError, KeyError):
                info = None
            if info is None or not self.context.owns(info):
                try:
                    await self.connection.send("Fetch.continueRequest", {"requestId": paused["requestId"]})
                except (ProtocolError, BrowserClosedError):
                    pass
                return
        self._last_request = trio.current_time()
        await self.mock.answer(self.connection, paused)

    async def _attach(self, nursery: trio.Nursery) -> None:
        with self.connection.listen("Target.attachedToTarget", buffer=4096) as attached:
            await self.connection.send("Target.setAutoAttach", self._auto_attach("page"))
            while True:
                try:
                    event = attached.receive_nowait()
                except trio.WouldBlock:
                    break
                await self._on_attached(nursery, event.params, initial=True)
        nursery.start_soon(self._follow_new_tabs, nursery)
        for index, target_id in sorted(self.report.restore.tabs.items()):  # type: ignore[union-attr]
            if target_id in self._attached:
                self._tabs[index] = _Tab(target_id, self._attached[target_id])
                self._claimed.add(target_id)

    async def _follow_new_tabs(self, nursery: trio.Nursery) -> None:
        with self.connection.listen("Target.attachedToTarget", buffer=4096) as attached:
            async for event in attached:
                if event.params.get("targetInfo", {}).get("type") != "service_worker":  # _serve_workers has those
                    await self._on_attached(nursery, event.params, initial=False)

    async def _on_attached(self, nursery: trio.Nursery, params: dict[str, Any], *, initial: bool) -> None:
        info = params.get("targetInfo", {})
        session = self.connection.session(params["sessionId"], info.get("targetId"))
        if info.get("type") == "service_worker" and self.context.owns(info) and info["targetId"] not in self._workers:
            # Not awaited: a new worker answers its set-up only once its script has come, which
            # is a request paused at the browser level, answered by the task that called this.
            self._workers[info["targetId"]] = session
            nursery.start_soon(self._serve, session, True)
            return
        if info.get("type") != "page" or not self.context.owns(info) or info["targetId"] in self._attached:
            await _resume(session)
            if info.get("type") != "page" or not self.context.owns(info):
                await session.detach()
            return
        await nursery.start(self._serve, session)
        self._attached[info["targetId"]] = session
        if initial:
            self._initial.add(info["targetId"])
        else:
            self._new_tab.set()

    async def _serve(self, session: CdpSession, worker: bool = False, *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Set a tab, iframe or service worker session up; answer its requests from the recording."""
        with session.listen("Fetch.requestPaused", "Target.attachedToTarget", "Page.frameNavigated", buffer=4096) as events:
            commands: list[tuple[str, dict[str, Any] | None]] = [] if worker else [("Page.enable", None)]
            if self.mock is not None:
                commands.append(("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}))
                if not worker:
                    # The recording holds what the page got, its worker's answers included: the page
                    # asks the recording, not its worker (whose answers the recording holds no body of).
                    commands += [("Network.enable", None), ("Network.setBypassServiceWorker", {"bypass": True})]
            if not worker:
                commands.append(("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True,
                                                          "filter": [{"type": "iframe", "exclude": False}]}))
            async with trio.open_nursery() as nursery:
                # Requests are answered while the set-up runs: Page.enable on a tab paused at its
                # start answers once its first document has come, which may be a paused request.
                nursery.start_soon(self._answer, nursery, session, events)
                try:
                    # Sent with the resume: a target paused at its start answers some only once it runs.
                    await session.send_all(*commands, ("Runtime.runIfWaitingForDebugger", None))
                except (ProtocolError, BrowserClosedError) as exc:
                    log.debug("cannot replay into %s: %s", session, exc)
                    await _resume(session)
                task_status.started()

    async def _answer(self, nursery: trio.Nursery, session: CdpSession, events: Any) -> None:
        async for event in events:
            if event.method == "Fetch.requestPaused" and self.mock is not None:
                self._last_request = trio.current_time()
                nursery.start_soon(self.mock.answer, session, event.params)
            elif event.method == "Page.frameNavigated":
                frame = event.params.get("frame", {})
                if session.target_id is not None and not frame.get("parentId") and loads_document(frame.get("url", "")):
                    self._documents[session.target_id] = self._documents.get(session.target_id, 0) + 1
            elif event.method == "Target.attachedToTarget":
                child = self.connection.session(event.params["sessionId"], None)
                if event.params.get("targetInfo", {}).get("type") == "iframe":
                    nursery.start_soon(self._serve, child)
                else:
                    await _resume(child)
                    await child.detach()

    async def _tab(self, index: int) -> _Tab:
        tab = self._tabs.get(index)
        if tab is not None:
            return tab
        # A recording with no starting tab (one imported from a user flow): use a blank tab.
        blank = self._unclaimed(initial=True)
        return self._claim(index, blank) if blank is not None else await self._open_tab(index)

    def _unclaimed(self, *, initial: bool) -> str | None:
        """A tab nobody replays into yet: one there before the replay began, or one opened since."""
        return next((t for t in self._attached if t not in self._claimed and (t in self._initial) == initial), None)

    def _claim(self, index: int, target_id: str) -> _Tab:
        self._claimed.add(target_id)
        tab = self._tabs[index] = _Tab(target_id, self._attached[target_id])
        return tab

    async def _wait_for_tab(self, found: Callable[[], str | None], what: str) -> str:
        with trio.move_on_after(self.timeout):
            while (target_id := found()) is None:
                self._new_tab = trio.Event()
                await self._new_tab.wait()
            return target_id
        raise _Failed(f"{what} within {self.timeout:g}s")

    async def _open_tab(self, index: int) -> _Tab:
        target_id = await self.context.new_tab()
        await self._wait_for_tab(lambda: target_id if target_id in self._attached else None, "the new tab did not attach")
        return self._claim(index, target_id)

    async def _opened_by_page(self, index: int) -> _Tab:
        return self._claim(index, await self._wait_for_tab(lambda: self._unclaimed(initial=False), "no tab opened"))

    async def _release(self) -> None:
        try:
            await self.connection.send("Target.setAutoAttach", {"autoAttach": False, "waitForDebuggerOnStart": False, "flatten": True})
            if self.mock is not None:
                await self.connection.send("Fetch.disable")
        except (ProtocolError, BrowserClosedError):
            pass
        for session in [*self._attached.values(), *self._workers.values()]:
            await session.detach()

    # ---- events

    async def _replay(self) -> None:
        start = trio.current_time()
        for index, event in enumerate(self.state.recording.events):
            due = event.timestamp / self.speed if self.speed else 0.0
            if self.speed:
                await trio.sleep_until(start + due / 1000)
            step = Step(index, event.type, event.target, event.tab, scheduled=due)
            step.dispatched = (trio.current_time() - start) * 1000
            if not self.speed:
                step.scheduled = step.dispatched
            try:
                retried = await self._dispatch(event)
                if retried:
                    step.outcome, step.reason = RETRIED, retried
            except _Skipped as exc:
                step.outcome, step.reason = SKIPPED, str(exc)
            except _Failed as exc:
                step.outcome, step.reason = FAILED, str(exc)
            except (ProtocolError, StateError) as exc:
                step.outcome, step.reason = FAILED, str(exc)
            except trio.TooSlowError:
                step.outcome, step.reason = FAILED, f"timed out after {self.timeout:g}s"
            self.report.steps.append(step)
            if self.on_step is not None:
                self.on_step(step)

    async def _dispatch(self, event: RecordedEvent) -> str:
        """Replay one event; a reason when it needed a retry, else an empty string."""
        data = event_data(event)
        kind = event.type
        if kind == "tab_open":
            if data.get("opener") is not None:
                await self._opened_by_page(event.tab)
            else:
                await self._open_tab(event.tab)
            return ""
        tab = await self._tab(event.tab)
        if kind == "navigate":
            return await self._navigate(tab, data)
        if kind == "tab_close":
            await self.context.close_target(tab.target_id)
            self._closed.add(event.tab)
            return ""
        self._check_document(tab, event)
        if kind in ("dblclick", "mutation"):
            return ""  # the second click made it
        if kind == "keyup":
            await self._key(tab, "keyUp", data)
            return ""
        if kind == "scroll" and not event.element.selectors:
            await self._call(tab, _SCROLL, data.get("x", 0), data.get("y", 0), world=await self._world(tab, list(event.frame)))
            return ""
        element, late = await self._element(tab, event)
        retried = f"the element appeared after {late:.1f}s" if late else ""
        if kind in ("click", "wheel"):
            element, x, y, waited = await self._visible_point(
                tab, event, element, *((data.get("offsetX"), data.get("offsetY")) if kind == "click" else (data.get("x"), data.get("y"))),
                absolute=kind == "wheel")
            retried = retried or ("the element became visible late" if waited else "")
            if kind == "click":
                await self._click(tab, x, y, data)
            else:
                await self._wheel(tab, element, x, y, data)
        elif kind == "keydown":
            if event.element.selectors and not await self._call_on(tab, element, _FOCUS):
                raise _Failed("the element did not take focus")
            await self._key(tab, "keyDown" if data.get("text") else "rawKeyDown", data)
        elif kind == "input":
            retried = await self._value(tab, element, data.get("value", ""), data.get("source")) or retried
        elif kind == "change":
            retried = await self._change(tab, element, data) or retried
        elif kind == "focus":
            await self._call_on(tab, element, _FOCUS)
        elif kind == "scroll":
            await self._call_on(tab, element, _SCROLL, data.get("x", 0), data.get("y", 0))
        else:
            raise _Failed(f"unknown event type {kind!r}")
        return retried

    async def _navigate(self, tab: _Tab, data: dict[str, Any]) -> str:
        url = data.get("url", "")
        if data.get("initiator") == "browser":
            if data.get("kind") == "reload":
                await tab.session.send("Page.reload")
            elif await self._current_url(tab) != url:
                result = await tab.session.send("Page.navigate", {"url": url})
                if result.get("errorText"):
                    raise _Failed(f"cannot open {url}: {result['errorText']}")
        with trio.move_on_after(self.timeout):
            while (current := await self._current_url(tab)) != url:
                await trio.sleep(_POLL)
            return ""
        raise _Failed(f"the tab shows {current}, not {url}")

    def _check_document(self, tab: _Tab, event: RecordedEvent) -> None:
        """Raise :class:`_Skipped` when the document the event went to is gone, replaced by a navigation the recording shows."""
        if self._documents.get(tab.target_id, 0) <= event.document:
            return
        url = self._navigations.get((event.tab, event.document + 1))
        if url is not None:
            raise _Skipped(f"its page was replaced by the navigation to {url}, which the recording shows after it")

    async def _current_url(self, tab: _Tab) -> str:
        tree = (await tab.session.send("Page.getFrameTree"))["frameTree"]["frame"]
        return str(tree.get("url", "")) + str(tree.get("urlFragment", ""))

    async def _frame(self, tab: _Tab, path: list[int]) -> tuple[str, str]:
        node = (await tab.session.send("Page.getFrameTree"))["frameTree"]
        for index in path:
            children = node.get("childFrames", [])
            if index >= len(children):
                raise _Failed(f"no frame at {path}")
            node = children[index]
        return node["frame"]["id"], node["frame"].get("loaderId", "")

    async def _world(self, tab: _Tab, path: list[int]) -> int:
        key = await self._frame(tab, path)
        if key not in tab.worlds:
            result = await tab.session.send("Page.createIsolatedWorld", {"frameId": key[0], "worldName": _WORLD})
            tab.worlds[key] = int(result["executionContextId"])
        return tab.worlds[key]

    async def _element(self, tab: _Tab, event: RecordedEvent) -> tuple[str, float]:
        """The element's object id, and how long it took to appear (0 when it was there)."""
        selectors = list(event.element.selectors)
        if not selectors:
            raise _Failed("the event has no element")
        started = trio.current_time()
        with trio.move_on_after(self.timeout):
            while True:
                self._check_document(tab, event)
                found = await self._find(tab, list(event.frame), selectors)
                if found:
                    waited = trio.current_time() - started
                    return found, waited if waited > 0.25 else 0.0
                await trio.sleep(_POLL)
        raise _Failed(f"no element matches {selectors[0]}" + (f" (nor {len(selectors) - 1} other selectors)" if len(selectors) > 1 else ""))

    async def _find(self, tab: _Tab, path: list[int], selectors: list[str]) -> str | None:
        try:
            found = await self._call(tab, _FIND, selectors, world=await self._world(tab, path), by_value=False)
        except _Failed:
            return None
        except ProtocolError:
            tab.worlds.clear()  # the document went away meanwhile
            return None
        return found.get("objectId") if found.get("subtype") != "null" else None

    async def _call_on(self, tab: _Tab, object_id: str, declaration: str, *args: Any) -> Any:
        """Call ``declaration`` with the element as ``this``; its value."""
        return await self._call(tab, declaration, *args, object_id=object_id)

    async def _call(self, tab: _Tab, declaration: str, *args: Any, object_id: str | None = None, world: int | None = None,
                    by_value: bool = True) -> Any:
        """``Runtime.callFunctionOn`` on an element or in a world: the value (``by_value``) or the remote object."""
        params: dict[str, Any] = {"functionDeclaration": declaration, "returnByValue": by_value,
                                  "arguments": [{"value": a} for a in args]}
        if object_id is not None:
            params["objectId"] = object_id
        else:
            params["executionContextId"] = world
        result = await tab.session.send("Runtime.callFunctionOn", params)
        if result.get("exceptionDetails"):
            raise _Failed(result["exceptionDetails"].get("exception", {}).get("description", "script failed").splitlines()[0])
        remote = result.get("result", {})
        return remote.get("value") if by_value else remote

    async def _point(self, tab: _Tab, object_id: str, x: Any, y: Any, *, absolute: bool = False) -> tuple[float, float]:
        """Where to point at the element: the recorded offset (or point) when it falls inside it, else its center."""
        try:
            await tab.session.send("DOM.scrollIntoViewIfNeeded", {"objectId": object_id})
        except ProtocolError:
            pass
        quads = (await tab.session.send("DOM.getContentQuads", {"objectId": object_id})).get("quads") or []
        if not quads:
            raise _Failed("the element is not visible")
        xs, ys = quads[0][0::2], quads[0][1::2]
        left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
        if x is not None and y is not None:
            px, py = (x, y) if absolute else (left + x, top + y)
            if left <= px <= right and top <= py <= bottom:
                return px, py
        return (left + right) / 2, (top + bottom) / 2

    async def _visible_point(self, tab: _Tab, event: RecordedEvent, object_id: str, x: Any, y: Any, *, absolute: bool = False) -> tuple[str, float, float, bool]:
        """Wait (at most ``timeout``) for the element to be visible: it, the point, and whether it had to wait."""
        started = trio.current_time()
        with trio.move_on_after(self.timeout):
            while True:
                try:
                    px, py = await self._point(tab, object_id, x, y, absolute=absolute)
                    return object_id, px, py, trio.current_time() - started > 0.25
                except (_Failed, ProtocolError):
                    await trio.sleep(_POLL)
                    object_id, _ = await self._element(tab, event)  # it may have been replaced meanwhile
        raise _Failed(f"{event.target} did not become visible within {self.timeout:g}s")

    async def _wheel(self, tab: _Tab, object_id: str, x: float, y: float, data: dict[str, Any]) -> None:
        """Turn the wheel, and wait for the scrolling it starts to end.

        The browser scrolls after it has acknowledged the wheel event; the recorded scroll
        positions that follow are set only once it is done, or it would scroll past them.
        """
        before = await self._call_on(tab, object_id, _OFFSETS)
        await tab.session.send("Input.dispatchMouseEvent", {
            "type": "mouseWheel", "x": x, "y": y, "deltaX": data.get("deltaX", 0), "deltaY": data.get("deltaY", 0),
            "modifiers": data.get("modifiers", 0)})
        with trio.move_on_after(_WHEEL_START):
            while (now := await self._call_on(tab, object_id, _OFFSETS)) == before:
                await trio.sleep(_POLL / 2)
        still = 0
        with trio.move_on_after(self.timeout):
            while still < _WHEEL_STILL:
                await trio.sleep(_POLL / 2)
                later = await self._call_on(tab, object_id, _OFFSETS)
                still = still + 1 if later == now else 0
                now = later

    async def _click(self, tab: _Tab, x: float, y: float, data: dict[str, Any]) -> None:
        button = data.get("button", "left")
        common = {"x": x, "y": y, "modifiers": data.get("modifiers", 0)}
        await tab.session.send("Input.dispatchMouseEvent", {"type": "mouseMoved", **common})
        press = {**common, "button": button, "clickCount": data.get("count", 1)}
        await tab.session.send("Input.dispatchMouseEvent", {"type": "mousePressed", "buttons": _BUTTONS.get(button, 1), **press})
        await tab.session.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "buttons": 0, **press})

    async def _key(self, tab: _Tab, kind: str, data: dict[str, Any]) -> None:
        params: dict[str, Any] = {
            "type": kind, "key": data.get("key", ""), "code": data.get("code", ""),
            "windowsVirtualKeyCode": data.get("keyCode", 0), "nativeVirtualKeyCode": data.get("keyCode", 0),
            "modifiers": data.get("modifiers", 0), "location": data.get("location", 0),
            "autoRepeat": bool(data.get("repeat")), "isKeypad": data.get("location") == 3,
        }
        if kind == "keyDown":
            params["text"] = params["unmodifiedText"] = data["text"]
        await tab.session.send("Input.dispatchKeyEvent", params)

    async def _value(self, tab: _Tab, object_id: str, value: str, source: Any = None) -> str:
        if await self._call_on(tab, object_id, _VALUE) == value:
            return ""
        await self._call_on(tab, object_id, _SET_VALUE, value)
        if await self._call_on(tab, object_id, _VALUE) != value:
            raise _Failed("the element did not take the recorded value")
        return "" if source in _SET_BY_STEP else "the value differed from the recording; set it"

    async def _change(self, tab: _Tab, object_id: str, data: dict[str, Any]) -> str:
        kind = data.get("kind")
        if kind == "files":
            files = data.get("files") or []
            if data.get("failed") or not isinstance(files, list):
                raise _Failed("the recording could not read the files")
            for file in files:
                if not isinstance(file, dict) or not isinstance(file.get("name"), str):
                    raise _Failed("the recorded files are not readable")
                if file.get("omitted"):
                    raise _Failed(f"the file {file['name']!r} ({file.get('size', 0)} bytes) was too big to keep in the recording")
            await self._call_on(tab, object_id, _SET_FILES, files)
            return ""
        if kind == "select":
            if not await self._call_on(tab, object_id, _SELECT, data.get("selected", []), data.get("values", [])):
                raise _Failed("the select does not have the recorded options")
            return ""
        if kind == "checked":
            if await self._call_on(tab, object_id, _CHECKED) == data.get("checked"):
                return ""
            await self._call_on(tab, object_id, _SET_CHECKED, bool(data.get("checked")))
            return "" if data.get("source") in _SET_BY_STEP else "the checked state differed from the recording; set it"
        return await self._value(tab, object_id, data.get("value", ""), data.get("source"))


def _url_of(event: RecordedEvent) -> str:
    try:
        return str(event_data(event).get("url", ""))
    except StateError:
        return ""


def _url_pattern(url: str) -> str:
    """A ``Fetch`` URL pattern that matches ``url`` alone (``*`` and ``?`` are wildcards; backslash escapes)."""
    return url.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
