"""Layer 1: the Chrome DevTools Protocol transport."""

from .connection import (
    MAX_MESSAGE_SIZE,
    CdpConnection,
    CdpSession,
    EventStream,
    Posted,
    RawEvent,
    connect_cdp,
    open_cdp,
    wire_json,
)
from .endpoint import read_devtools_active_port, resolve_endpoint
from .nursery import leaf_errors, single_error
from .launch import LaunchedBrowser, find_chromium, launch_chromium

__all__ = [
    "MAX_MESSAGE_SIZE",
    "CdpConnection",
    "CdpSession",
    "EventStream",
    "Posted",
    "RawEvent",
    "connect_cdp",
    "open_cdp",
    "wire_json",
    "read_devtools_active_port",
    "resolve_endpoint",
    "LaunchedBrowser",
    "find_chromium",
    "launch_chromium",
    "leaf_errors",
    "single_error",
]
