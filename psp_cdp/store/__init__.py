"""Layer 4: session stores."""

from __future__ import annotations

from ..errors import UsageError
from .base import SessionInfo, Store, check_name, default_store_path, parse_tags
from .filesystem import FilesystemStore
from .sessions import Captured, Sessions, summarize

__all__ = [
    "Captured",
    "FilesystemStore",
    "SessionInfo",
    "Sessions",
    "Store",
    "check_name",
    "default_store_path",
    "open_store",
    "parse_tags",
    "summarize",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "redis+cluster://")


def open_store(spec: str | None = None) -> Store:
    """The store named by ``spec``: a directory path or a Redis URL (default: ``PSP_STORE`` or the XDG data dir)."""
    spec = spec or default_store_path()
    if spec.startswith(_REDIS_SCHEMES):
        raise UsageError(f"{spec}: Redis stores are not supported by this version of psp_cdp; use a directory")
    if "://" in spec:
        raise UsageError(f"{spec}: unknown store; give a directory path or a redis:// URL")
    return FilesystemStore(spec)
