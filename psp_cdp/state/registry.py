"""The one registry of state components, and the middleware hooks.

A component captures one part of a browser context's state into a
:class:`BrowserSessionState` and restores it from one. Components run in ``order``
(lowest first) for both capture and restore, so storage is in place before tabs
load their pages. Packages add components through the entry-point group
``psp_cdp.components`` (an entry point names a :class:`Component` subclass or
instance); a custom component keeps its data in ``state.extensions[name]``.

Hooks run on a whole state: ``before_store`` ones just before a state is written to
a store, ``after_load`` ones just after it is read back (to redact a field, say).
Entry-point group ``psp_cdp.hooks`` names callables ``hook(stage, state)``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import UsageError
from ..snapshot.model import BrowserSessionState, CaptureReport

if TYPE_CHECKING:
    from ..cdp import CdpConnection
    from .pages import Answerer, BrowserContext, Tab

__all__ = [
    "Component",
    "CaptureContext",
    "RestoreContext",
    "RestoreReport",
    "register",
    "components",
    "select",
    "Hook",
    "add_hook",
    "run_hooks",
    "OPTIONS",
    "check_options",
]

log = logging.getLogger("psp_cdp.state")


@dataclass
class CaptureContext:
    """What a capture shares between its components."""

    connection: CdpConnection
    context: BrowserContext
    state: BrowserSessionState
    selected: frozenset[str]
    #: Origins to read besides the ones psp_cdp finds itself.
    extra_origins: set[str] = field(default_factory=set)
    tabs: list[Tab] = field(default_factory=list)
    #: What components work out once and share during one capture (known origins, ...).
    memo: dict[str, Any] = field(default_factory=dict)
    #: Opt-in behaviours asked for by the caller (see :data:`OPTIONS`).
    options: frozenset[str] = frozenset()

    def uncovered(self, what: str, reason: str) -> None:
        self.state.report.uncovered.append(CaptureReport.Uncovered(what=what, reason=reason))


@dataclass
class RestoreReport:
    """What a restore did, per component, and what it could not do.

    ``notes`` says everything worth saying; ``missing`` (a part of ``notes``) names what
    the state held and the restore could not restore: a restore with anything missing
    is partial (``psp restore`` exits 3).
    """

    restored: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    context_id: str | None = None
    #: The target id of each tab recreated, by the index of its tab in the state.
    tabs: dict[int, str] = field(default_factory=dict)

    def count(self, component: str, n: int = 1) -> None:
        self.restored[component] = self.restored.get(component, 0) + n

    def note(self, text: str) -> None:
        """Something worth saying that leaves the restore whole (expired cookies not set, ...)."""
        self.notes.append(text)

    def not_restored(self, text: str) -> None:
        """Something the state held that the restore could not restore."""
        self.notes.append(text)
        self.missing.append(text)

    def as_dict(self) -> dict[str, object]:
        return {"restored": dict(self.restored), "notes": list(self.notes), "missing": list(self.missing),
                "context": self.context_id}


@dataclass
class RestoreContext:
    """What a restore shares between its components."""

    connection: CdpConnection
    context: BrowserContext
    state: BrowserSessionState
    selected: frozenset[str]
    report: RestoreReport
    timeout: float = 30.0
    #: Opt-in behaviours asked for by the caller (see :data:`OPTIONS`).
    options: frozenset[str] = frozenset()
    #: What components hand on to later ones (the tabs recreated, ...).
    memo: dict[str, Any] = field(default_factory=dict)
    #: Answers the requests of the tabs' live loads instead of the network (a replay's recording).
    network: Answerer | None = None


class Component:
    """One part of a browser context's state."""

    name: ClassVar[str]
    order: ClassVar[int]
    description: ClassVar[str] = ""
    #: Components this one needs to be captured with (sessionStorage needs tabs).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Whether capture reads the context's open tabs (they are attached once for all components).
    uses_tabs: ClassVar[bool] = False

    async def capture(self, ctx: CaptureContext) -> None:
        raise NotImplementedError

    async def restore(self, ctx: RestoreContext) -> None:
        raise NotImplementedError

    def count(self, state: BrowserSessionState) -> int:
        """How many items of this component ``state`` holds (for summaries)."""
        return 0


#: Opt-in behaviours of capture and restore, by name.
OPTIONS = {
    "authorization_headers": "capture: watch each tab's requests for 3 s and keep the tokens of their Authorization headers",
    "dom_snapshot": "capture: also keep a full DOM snapshot (DOMSnapshot) of each tab, for inspection",
    "service_workers": "restore: register the captured service workers again (fetches their scripts)",
}


def check_options(options: Iterable[str]) -> frozenset[str]:
    """The option names, or :class:`UsageError` for an unknown one."""
    chosen = frozenset(options)
    unknown = chosen - OPTIONS.keys()
    if unknown:
        raise UsageError(f"unknown option {', '.join(sorted(unknown))} (known: {', '.join(sorted(OPTIONS))})")
    return chosen


_components: dict[str, Component] = {}
_entry_points_loaded = False


def register(component: Component | type[Component]) -> Component:
    """Add a component (class or instance) to the registry; its name must be new."""
    instance = component() if isinstance(component, type) else component
    if instance.name in _components and type(_components[instance.name]) is not type(instance):
        raise ValueError(f"a state component named {instance.name!r} is registered already")
    _components[instance.name] = instance
    return instance


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for group, loader in (("psp_cdp.components", register), ("psp_cdp.hooks", _add_entry_hook)):
        for entry in importlib.metadata.entry_points(group=group):
            try:
                loader(entry.load())
            except Exception:
                log.exception("cannot load %s entry point %s", group, entry.name)


def components() -> list[Component]:
    """Every registered component, in capture and restore order."""
    from . import builtin  # noqa: F401  (registers the built-in components)

    _load_entry_points()
    return sorted(_components.values(), key=lambda c: (c.order, c.name))


def select(only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> frozenset[str]:
    """Names of the components ``--only``/``--skip`` select; :class:`UsageError` for unknown names.

    A selected component brings the components it ``requires`` along, unless they are skipped,
    which is a :class:`UsageError`.
    """
    known = {c.name for c in components()}
    wanted = set(only) if only else set(known)
    unwanted = set(skip or ())
    unknown = (wanted | unwanted) - known
    if unknown:
        raise UsageError(f"unknown component {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    selected = wanted - unwanted
    for name in sorted(selected):
        needed = set(_components[name].requires)
        if needed & unwanted:
            raise UsageError(f"component {name} needs {', '.join(sorted(needed & unwanted))}, which is skipped")
        selected |= needed
    return frozenset(selected)


Hook = Callable[[str, BrowserSessionState], BrowserSessionState | None]
_hooks: list[Hook] = []
STAGES = ("before_store", "after_load")


def add_hook(hook: Hook) -> Hook:
    """Register ``hook(stage, state)``; it may change ``state`` in place or return a new one."""
    _hooks.append(hook)
    return hook


def _add_entry_hook(hook: Hook) -> None:
    add_hook(hook)


def run_hooks(stage: str, state: BrowserSessionState) -> BrowserSessionState:
    """Run every hook for ``stage`` over ``state`` and return the result."""
    if stage not in STAGES:
        raise ValueError(f"unknown hook stage {stage!r}")
    _load_entry_points()
    for hook in _hooks:
        result = hook(stage, state)
        if result is not None:
            state = result
    return state
