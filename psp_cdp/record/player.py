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
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from ..cdp import CdpConnection, CdpSession, Posted
from ..errors import BrowserClosedError, ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, RecordedEvent, TabEndState
from ..state.dom import ELEMENT_HELPERS
from ..state.engine import restore_state
from ..state.pages import BrowserContext
from ..state.registry import RestoreReport
from .events import SERVICE_WORKER_SCRIPT, event_data, loads_document
from .mock import Fallback, MockNetwork, Unmatched
from .outcome import cookie_digests, differences, read_end_state
from .recorder import auto_attached, release_waiting as _resume

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
  if (this.isContentEditable) { this.innerHTML = value; fire("input"); return this.innerHTML; }
  const proto = this instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype
    : this instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, "value").set.call(this, value);
  fire("input"); fire("change");
  return this.value;
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
#: Milliseconds from a focus to the click on the same element within which the focus was the click's mousedown.
_PRESS = 500.0
_DETACHED = "__psp_detached"
#: Steps whose input goes to the tab in front.
_INPUT = {"click", "keydown", "keyup", "wheel", "focus"}
#: Wraps a function called on an element: it throws when the element has left its document.
_CONNECTED = "function (...args) { if (!this.isConnected) throw new Error('" + _DETACHED + "'); return (__DECLARATION__).apply(this, args); }"
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
    #: When the events began and ended (``trio.current_time()``), after the restore and before the comparison.
    events_started: float = 0.0
    events_ended: float = 0.0

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


class _Detached(Exception):
    """The element found before is no longer in its page."""


#: What ends a step with an outcome (see :func:`_outcome`) rather than the replay.
_STEP_ERRORS = (_Skipped, _Failed, ProtocolError, StateError, BrowserClosedError, trio.TooSlowError)


class _Ahead:
    """A step prepared in the background while the step before it waits for its time."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._action: _Action | None = None
        self._error: BaseException | None = None

    async def run(self, prepare: Callable[[int, RecordedEvent], Awaitable[_Action]], index: int, event: RecordedEvent) -> None:
        try:
            self._action = await prepare(index, event)
        except _STEP_ERRORS as exc:
            self._error = exc
        finally:
            self._done.set()

    async def done(self) -> None:
        await self._done.wait()

    async def result(self) -> _Action:
        """The prepared step; what preparing it raised is raised here."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._action is not None
        return self._action


@dataclass
class _Pressed:
    """A mouse button pressed by a focus step, to be released by the click step ``index``."""

    index: int
    x: float
    y: float
    retried: str


@dataclass
class _Tab:
    target_id: str
    session: CdpSession
    worlds: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Set once the input written so far has been answered (None: none written yet).
    busy: trio.Event | None = None
    #: Set once the checks and settings started so far (in the background) are done.
    calling: trio.Event | None = None
    #: A mouse move written ahead of a click, not answered yet.
    moved: Posted | None = None
    #: Where (:func:`_place`) the last keys went, focused.
    keys_to: tuple[Any, ...] | None = None
    pressed: _Pressed | None = None


@dataclass
class _Action:
    """What a step does at its due time: input to write (``post``), answered in the background; a ``call``,
    run in the background after the tab's earlier input and checks (``background``) or at once."""

    tab: _Tab | None = None
    post: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    call: Callable[[], Awaitable[Any]] | None = None
    background: bool = False
    retried: str = ""
    #: Once the input is answered: what else the step waits for (the wheel's scrolling).
    after: Callable[[], Awaitable[None]] | None = None
    posted: list[Posted] = field(default_factory=list)
    #: What the background call waits for first: the tab's input and checks before it.
    before: list[trio.Event] = field(default_factory=list)
    #: The tab's events this step sets once it is finished.
    owns: list[trio.Event] = field(default_factory=list)


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
        self._trees: dict[str, dict[str, Any]] = {}  # each tab's frame tree, by session id, until a frame changes
        self._front: str | None = None  # the tab input last went to, brought to the front
        self._worker_scripts = {x.url for x in state.recording.exchanges if x.resource_type == SERVICE_WORKER_SCRIPT}
        # Each event's data, read once (a step whose data cannot be read fails when it comes), and its place.
        self._data: dict[int, dict[str, Any]] = {}
        self._places = [_place(e) for e in state.recording.events]
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
                await self._warm_up()
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
        scripts = self._worker_scripts
        with self.connection.listen("Fetch.requestPaused", "Target.attachedToTarget", buffer=4096) as events:
            await self.connection.send("Target.setAutoAttach", self._auto_attach())
            if scripts:
                patterns = [{"urlPattern": _url_pattern(url), "requestStage": "Request"} for url in sorted(scripts)]
                await self.connection.send("Fetch.enable", {"patterns": patterns})
            task_status.started()
            async for event in events:
                if event.method == "Target.attachedToTarget":
                    # Only new workers: a page attached meanwhile is the restore's own session.
                    if event.params.get("targetInfo", {}).get("type") == "service_worker" and auto_attached(event.params):
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

    async def _warm_up(self) -> None:
        """Read each tab's frame tree and make its main frame's world now, not at its first step."""
        for tab in self._tabs.values():
            try:
                await self._world(tab, [])
            except (_Failed, ProtocolError, BrowserClosedError):
                pass  # found again at the first step

    async def _follow_new_tabs(self, nursery: trio.Nursery) -> None:
        with self.connection.listen("Target.attachedToTarget", buffer=4096) as attached:
            async for event in attached:
                # Workers are _serve_workers'; a tab someone else attached to is not a new tab.
                if event.params.get("targetInfo", {}).get("type") != "service_worker" and auto_attached(event.params):
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
        with session.listen("Fetch.requestPaused", "Target.attachedToTarget", "Page.frameNavigated", "Page.frameAttached",
                            "Page.frameDetached", buffer=4096) as events:
            commands: list[tuple[str, dict[str, Any] | None]] = [] if worker else [("Page.enable", None)]
            if self.mock is not None:
                commands.append(("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}))
                if not worker and self._worker_scripts:
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
            elif event.method in ("Page.frameAttached", "Page.frameDetached"):
                self._trees.pop(session.session_id or "", None)
            elif event.method == "Page.frameNavigated":
                self._trees.pop(session.session_id or "", None)
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
    #
    # Each step is prepared before it is due (its element found, the mouse moved over it),
    # acted on at its due time (its input written without waiting for the answer to the
    # input before it: the browser handles a tab's commands in order), and finished in the
    # background (the answers, the wheel's scrolling). A step that reads the page waits for
    # the tab's earlier input to be answered first, so that it sees what that input did.

    async def _replay(self) -> None:
        events = self.state.recording.events
        previous = trio.Event()
        previous.set()
        ahead: _Ahead | None = None
        async with trio.open_nursery() as finishing:
            if events:
                # The first step is prepared before the clock starts, as the recording's began once it was ready.
                ahead = _Ahead()
                finishing.start_soon(ahead.run, self._prepare, 0, events[0])
                await ahead.done()
            start = self.report.events_started = trio.current_time()
            for index, event in enumerate(events):
                due = event.timestamp / self.speed if self.speed else 0.0
                step = Step(index, event.type, event.target, event.tab, scheduled=due)
                action = _Action()
                with _outcome(step, f"timed out after {self.timeout:g}s"):
                    prepared, ahead = ahead, None
                    action = await (prepared.result() if prepared is not None else self._prepare(index, event))
                    if not action.post and action.background and index + 1 < len(events):
                        # This step writes no input: the next one is prepared while this one waits.
                        ahead = _Ahead()
                        finishing.start_soon(ahead.run, self._prepare, index + 1, events[index + 1])
                    if self.speed:
                        await trio.sleep_until(start + due / 1000)
                    step.dispatched = (trio.current_time() - start) * 1000
                    step.reason = action.retried
                    await self._act(action, step)
                if not step.dispatched:
                    step.dispatched = (trio.current_time() - start) * 1000
                if not self.speed:
                    step.scheduled = step.dispatched
                self.report.steps.append(step)
                done = trio.Event()
                finishing.start_soon(self._finish, step, action, previous, done)
                previous = done
        self.report.events_ended = trio.current_time()

    async def _act(self, action: _Action, step: Step) -> None:
        """Do what a step does at its due time; what it set off is finished by :meth:`_finish`."""
        tab = action.tab
        if tab is not None and action.post:
            if tab.calling is not None:
                await tab.calling.wait()  # input goes after the checks and settings before it
            if tab.moved is not None:
                action.posted.append(tab.moved)
                tab.moved = None
            action.posted.append(await tab.session.post(*action.post))
            tab.busy = trio.Event()
            action.owns.append(tab.busy)
        elif tab is not None and action.call is not None and action.background:
            action.before = [e for e in (tab.busy, tab.calling) if e is not None]
            tab.calling = trio.Event()
            action.owns.append(tab.calling)
        elif action.call is not None:
            step.reason = await action.call() or action.retried

    async def _finish(self, step: Step, action: _Action, previous: trio.Event, done: trio.Event) -> None:
        """Wait for what the step set off (or run its check), then report it, after the steps before it."""
        try:
            with _outcome(step, f"the browser did not take the step within {self.timeout:g}s"), trio.fail_after(self.timeout):
                for posted in action.posted:
                    await posted.results()
                if action.after is not None and step.outcome == DONE:
                    await action.after()
                if action.background and action.call is not None and step.outcome == DONE:
                    for event in action.before:
                        await event.wait()
                    step.reason = await action.call() or action.retried
        finally:
            for posted in action.posted:
                posted.aclose()
            for event in action.owns:
                event.set()
        if step.outcome == DONE and step.reason:
            step.outcome = RETRIED
        await previous.wait()
        if self.on_step is not None:
            self.on_step(step)
        done.set()

    async def _settled(self, tab: _Tab) -> None:
        """Wait until the tab's input so far has been answered (its scrolling done), and its checks are done."""
        while True:
            pending = [e for e in (tab.busy, tab.calling) if e is not None and not e.is_set()]
            if not pending:
                return
            await pending[0].wait()

    async def _answered(self, tab: _Tab) -> None:
        """Wait until the tab's input so far has been answered (its scrolling done): what a step that reads the page needs."""
        while tab.busy is not None and not tab.busy.is_set():
            await tab.busy.wait()

    def _event_data(self, index: int) -> dict[str, Any]:
        """The data of event ``index``, parsed once; StateError if it cannot be read."""
        if index not in self._data:
            self._data[index] = event_data(self.state.recording.events[index])
        return self._data[index]

    def _source(self, index: int) -> Any:
        """What made the value change of event ``index`` (None when it does not say, or cannot be read)."""
        try:
            return self._event_data(index).get("source")
        except StateError:
            return None

    async def _prepare(self, index: int, event: RecordedEvent) -> _Action:
        """What the step does at its due time; what can be done before (finding its element) is done here."""
        data = self._event_data(index)
        kind = event.type
        if kind == "tab_open":
            return _Action(call=lambda: self._open(event, data))
        tab = await self._tab(event.tab)
        if kind in _INPUT and self._front != tab.target_id:
            # A tab in the background gets no animation frames, and input waits for them.
            await tab.session.send("Page.bringToFront")
            self._front = tab.target_id
        if kind == "click" and tab.pressed is not None and tab.pressed.index == index:
            pressed, tab.pressed = tab.pressed, None
            return _Action(tab, post=[_mouse("mouseReleased", pressed.x, pressed.y, data)], retried=pressed.retried)
        if kind not in ("keydown", "keyup", "input", "change"):
            # What had the keys may not have them now; a focus says what does, and a click on it keeps it.
            target = self._places[index]
            if kind == "focus":
                tab.keys_to = target
            elif not (kind == "click" and tab.keys_to == target):
                tab.keys_to = None
        if kind == "navigate":
            return _Action(call=lambda: self._navigate(tab, data))
        if kind == "tab_close":
            return _Action(call=lambda: self._close(tab, event.tab))
        self._check_document(tab, event)
        if kind in ("dblclick", "mutation"):
            return _Action(background=True)  # the second click made it
        if kind == "keyup":
            return _Action(tab, post=[_key("keyUp", data)])
        if kind == "keydown":
            return await self._prepare_key(tab, index, event, data)
        if kind == "scroll" and not event.element.selectors:
            world = await self._world(tab, list(event.frame))
            return _Action(tab, call=lambda: self._call(tab, _SCROLL, data.get("x", 0), data.get("y", 0), world=world),
                           background=True)
        if kind == "input" and self._typed_on(index):
            return _Action(background=True)  # the input its keys typed next checks this one's too
        following = self._click_after(index) if kind == "focus" else None
        if kind in ("input", "change", "scroll") or (kind == "focus" and following is None):
            # A check or a setting, done in the background once the tab's earlier input has been answered.
            return _Action(tab, call=self._check(tab, event, data), background=True)
        await self._answered(tab)
        element, retried = await self._element(tab, event)
        if kind == "click":
            x, y, aimed = await self._aim(tab, event, element, data)
            press = [_mouse("mousePressed", x, y, data), _mouse("mouseReleased", x, y, data)]
            return _Action(tab, post=press, retried=retried or aimed)
        if kind == "focus":
            # The focus of a mousedown: the press goes at its time, the release at the click's.
            assert following is not None
            click = self._event_data(following)
            x, y, aimed = await self._aim(tab, self.state.recording.events[following], element, click)
            tab.pressed = _Pressed(following, x, y, retried or aimed)
            return _Action(tab, post=[_mouse("mousePressed", x, y, click)])
        if kind == "wheel":
            x, y, aimed = await self._point_at(tab, event, element, data.get("x"), data.get("y"), absolute=True)
            before = await self._call_on(tab, element, _OFFSETS)
            wheel = ("Input.dispatchMouseEvent", {
                "type": "mouseWheel", "x": x, "y": y, "deltaX": data.get("deltaX", 0), "deltaY": data.get("deltaY", 0),
                "modifiers": data.get("modifiers", 0)})
            return _Action(tab, post=[wheel], retried=retried or aimed, after=lambda: self._wheel_settles(tab, element, before))
        raise _Failed(f"unknown event type {kind!r}")

    def _check(self, tab: _Tab, event: RecordedEvent, data: dict[str, Any]) -> Callable[[], Awaitable[str]]:
        """The check (or setting) an input, change, focus or scroll step does on its element, found then."""
        kind = event.type

        async def check() -> str:
            element, late = await self._element(tab, event)
            corrected = ""
            if kind == "input":
                corrected = await self._value(tab, event, element, data.get("value", ""), data.get("source"))
            elif kind == "change":
                corrected = await self._change(tab, event, element, data)
            elif kind == "focus":
                await self._on_element(tab, event, element, _FOCUS)
            else:
                await self._on_element(tab, event, element, _SCROLL, data.get("x", 0), data.get("y", 0))
            return corrected or late

        return check

    async def _prepare_key(self, tab: _Tab, index: int, event: RecordedEvent, data: dict[str, Any]) -> _Action:
        """A keydown: its element focused first, unless the keys before it went there already."""
        command = _key("keyDown" if data.get("text") else "rawKeyDown", data)
        target = self._places[index]
        if not event.element.selectors or tab.keys_to == target:
            return _Action(tab, post=[command])
        await self._answered(tab)
        element, retried = await self._element(tab, event)
        if not await self._on_element(tab, event, element, _FOCUS):
            raise _Failed("the element did not take focus")
        tab.keys_to = target
        return _Action(tab, post=[command], retried=retried)

    def _typed_on(self, index: int) -> bool:
        """Whether an input typed by keys is followed, with nothing but keys and inputs to the same element
        between, by another input its keys typed: that one's check covers this one's."""
        if self._source(index) not in ("key", None):
            return False
        events = self.state.recording.events
        for later in range(index + 1, len(events)):
            if events[later].type not in ("keydown", "keyup", "input") or self._places[later] != self._places[index]:
                return False
            if events[later].type == "input":
                return self._source(later) in ("key", None)
        return False

    def _click_after(self, index: int) -> int | None:
        """The click that follows a focus on the same element within a moment: the focus was its mousedown's.

        Values found changed at the click (``source`` "sync") may come between: they are set
        before the release is written.
        """
        events = self.state.recording.events
        following = index + 1
        while following < len(events) and events[following].type in ("input", "change") and self._source(following) == "sync":
            following += 1
        if following >= len(events):
            return None
        click = events[following]
        if (click.type != "click" or self._places[following] != self._places[index]
                or click.timestamp - events[index].timestamp > _PRESS):
            return None
        return following

    async def _open(self, event: RecordedEvent, data: dict[str, Any]) -> str:
        if data.get("opener") is not None:
            await self._opened_by_page(event.tab)
        else:
            await self._open_tab(event.tab)
        return ""

    async def _close(self, tab: _Tab, index: int) -> str:
        await self._settled(tab)
        await self.context.close_target(tab.target_id)
        self._closed.add(index)
        return ""

    async def _navigate(self, tab: _Tab, data: dict[str, Any]) -> str:
        await self._settled(tab)
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
        node = self._trees.get(tab.session.session_id or "")
        if node is None:
            node = self._trees[tab.session.session_id or ""] = (await tab.session.send("Page.getFrameTree"))["frameTree"]
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

    async def _element(self, tab: _Tab, event: RecordedEvent) -> tuple[str, str]:
        """The element's object id, and a reason to report when it took a while to appear."""
        selectors = list(event.element.selectors)
        if not selectors:
            raise _Failed("the event has no element")
        missing: float | None = None  # when a lookup first found nothing
        with trio.move_on_after(self.timeout):
            while True:
                self._check_document(tab, event)
                found = await self._find(tab, list(event.frame), selectors)
                if found:
                    waited = trio.current_time() - missing if missing is not None else 0.0
                    return found, f"the element appeared after {waited:.1f}s" if waited > 0.25 else ""
                if missing is None:
                    missing = trio.current_time()
                await trio.sleep(_POLL)
        raise _Failed(f"no element matches {selectors[0]}" + (f" (nor {len(selectors) - 1} other selectors)" if len(selectors) > 1 else ""))

    async def _find(self, tab: _Tab, path: list[int], selectors: list[str]) -> str | None:
        try:
            found = await self._call(tab, _FIND, selectors, world=await self._world(tab, path), by_value=False)
        except _Failed:
            return None
        except ProtocolError:
            tab.worlds.clear()  # the document went away meanwhile
            self._trees.pop(tab.session.session_id or "", None)
            return None
        return found.get("objectId") if found.get("subtype") != "null" else None

    async def _on_element(self, tab: _Tab, event: RecordedEvent, element: str, declaration: str, *args: Any) -> Any:
        """Call ``declaration`` on the element found before; found again if the page replaced it meanwhile."""
        try:
            return await self._call_on(tab, element, declaration, *args)
        except _Detached:
            element, _ = await self._element(tab, event)
            return await self._call_on(tab, element, declaration, *args)

    async def _call_on(self, tab: _Tab, object_id: str, declaration: str, *args: Any) -> Any:
        """Call ``declaration`` with the element as ``this``; its value. :class:`_Detached` if it left the page."""
        return await self._call(tab, _CONNECTED.replace("__DECLARATION__", declaration), *args, object_id=object_id)

    async def _call(self, tab: _Tab, declaration: str, *args: Any, object_id: str | None = None, world: int | None = None,
                    by_value: bool = True) -> Any:
        """``Runtime.callFunctionOn`` on an element or in a world: the value (``by_value``) or the remote object."""
        params: dict[str, Any] = {"functionDeclaration": declaration, "returnByValue": by_value,
                                  "arguments": [{"value": a} for a in args]}
        if object_id is not None:
            params["objectId"] = object_id
        else:
            params["executionContextId"] = world
        try:
            result = await tab.session.send("Runtime.callFunctionOn", params)
        except ProtocolError:
            if object_id is None:
                raise
            raise _Detached() from None  # its document went away
        if result.get("exceptionDetails"):
            message = result["exceptionDetails"].get("exception", {}).get("description", "script failed").splitlines()[0]
            if _DETACHED in message:
                raise _Detached()
            raise _Failed(message)
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

    async def _point_at(self, tab: _Tab, event: RecordedEvent, object_id: str, x: Any, y: Any, *,
                        absolute: bool = False) -> tuple[float, float, str]:
        """Wait (at most ``timeout``) for the element to be visible: the point, and a reason when it had to wait."""
        started = trio.current_time()
        with trio.move_on_after(self.timeout):
            while True:
                try:
                    px, py = await self._point(tab, object_id, x, y, absolute=absolute)
                    return px, py, "the element became visible late" if trio.current_time() - started > 0.25 else ""
                except (_Failed, ProtocolError):
                    await trio.sleep(_POLL)
                    object_id, _ = await self._element(tab, event)  # it may have been replaced meanwhile
        raise _Failed(f"{event.target} did not become visible within {self.timeout:g}s")

    async def _aim(self, tab: _Tab, click: RecordedEvent, element: str, data: dict[str, Any]) -> tuple[float, float, str]:
        """Move the mouse to where the click goes, before it is due.

        The move is written, not awaited: Chromium hands a move to the page with its next
        animation frame and answers then; the press written after it follows it.
        """
        x, y, late = await self._point_at(tab, click, element, data.get("offsetX"), data.get("offsetY"))
        tab.moved = await tab.session.post(_mouse("mouseMoved", x, y, data))
        return x, y, late

    async def _wheel_settles(self, tab: _Tab, object_id: str, before: Any) -> None:
        """Wait for the scrolling a wheel started to end.

        The browser scrolls after it has acknowledged the wheel event; the recorded scroll
        positions that follow are set only once it is done, or it would scroll past them.
        """
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

    async def _value(self, tab: _Tab, event: RecordedEvent, element: str, value: str, source: Any = None) -> str:
        if await self._on_element(tab, event, element, _VALUE) == value:
            return ""
        if await self._on_element(tab, event, element, _SET_VALUE, value) != value:
            raise _Failed("the element did not take the recorded value")
        return "" if source in _SET_BY_STEP else "the value differed from the recording; set it"

    async def _change(self, tab: _Tab, event: RecordedEvent, element: str, data: dict[str, Any]) -> str:
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
            await self._on_element(tab, event, element, _SET_FILES, files)
            return ""
        if kind == "select":
            if not await self._on_element(tab, event, element, _SELECT, data.get("selected", []), data.get("values", [])):
                raise _Failed("the select does not have the recorded options")
            return ""
        if kind == "checked":
            if await self._on_element(tab, event, element, _CHECKED) == data.get("checked"):
                return ""
            await self._on_element(tab, event, element, _SET_CHECKED, bool(data.get("checked")))
            return "" if data.get("source") in _SET_BY_STEP else "the checked state differed from the recording; set it"
        return await self._value(tab, event, element, data.get("value", ""), data.get("source"))


def _mouse(kind: str, x: float, y: float, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An ``Input.dispatchMouseEvent`` of a recorded click's button, count and modifiers at (x, y)."""
    params: dict[str, Any] = {"type": kind, "x": x, "y": y, "modifiers": data.get("modifiers", 0)}
    if kind != "mouseMoved":
        button = data.get("button", "left")
        params.update(button=button, clickCount=data.get("count", 1), buttons=_BUTTONS.get(button, 1) if kind == "mousePressed" else 0)
    return "Input.dispatchMouseEvent", params


def _key(kind: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An ``Input.dispatchKeyEvent`` of a recorded key."""
    params: dict[str, Any] = {
        "type": kind, "key": data.get("key", ""), "code": data.get("code", ""),
        "windowsVirtualKeyCode": data.get("keyCode", 0), "nativeVirtualKeyCode": data.get("keyCode", 0),
        "modifiers": data.get("modifiers", 0), "location": data.get("location", 0),
        "autoRepeat": bool(data.get("repeat")), "isKeypad": data.get("location") == 3,
    }
    if kind == "keyDown":
        params["text"] = params["unmodifiedText"] = data["text"]
    return "Input.dispatchKeyEvent", params


@contextmanager
def _outcome(step: Step, too_slow: str) -> Iterator[None]:
    """Turn what stops a step into its outcome: skipped, or failed with the reason."""
    try:
        yield
    except trio.TooSlowError:
        step.outcome, step.reason = FAILED, too_slow
    except _Skipped as exc:
        step.outcome, step.reason = SKIPPED, str(exc)
    except _STEP_ERRORS as exc:
        step.outcome, step.reason = FAILED, str(exc)


def _place(event: RecordedEvent) -> tuple[Any, ...]:
    """Where an event went: its tab, the tab's document, its frame and its element's selectors."""
    return event.tab, event.document, tuple(event.frame), tuple(event.element.selectors)


def _url_of(event: RecordedEvent) -> str:
    try:
        return str(event_data(event).get("url", ""))
    except StateError:
        return ""


def _url_pattern(url: str) -> str:
    """A ``Fetch`` URL pattern that matches ``url`` alone (``*`` and ``?`` are wildcards; backslash escapes)."""
    return url.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
