"""Layer 3: state components, each capturing and restoring one part of a browser context."""

from .engine import capture_state, restore_state
from .registry import (
    OPTIONS,
    CaptureContext,
    Component,
    RestoreContext,
    RestoreReport,
    add_hook,
    components,
    register,
    run_hooks,
    select,
)

__all__ = [
    "OPTIONS",
    "capture_state",
    "restore_state",
    "CaptureContext",
    "Component",
    "RestoreContext",
    "RestoreReport",
    "add_hook",
    "components",
    "register",
    "run_hooks",
    "select",
]
