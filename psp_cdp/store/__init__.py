"""Layer 4: session stores."""

from __future__ import annotations

from ..errors import UsageError
from .base import SessionInfo, Store, VersionInfo, check_name, default_store_path, parse_tags
from .filesystem import FilesystemStore
from .redis import SCHEMES as _REDIS_SCHEMES
from .redis import RedisStore
from .sessions import Captured, Sessions, split_ref, summarize

__all__ = [
    "Captured",
    "FilesystemStore",
    "RedisStore",
    "SessionInfo",
    "Sessions",
    "Store",
    "VersionInfo",
    "check_name",
    "default_store_path",
    "open_store",
    "parse_tags",
    "split_ref",
    "summarize",
]


def open_store(spec: str | None = None) -> Store:
    """The store named by ``spec``: a directory path or a Redis URL (default: ``PSP_STORE`` or the XDG data dir)."""
    spec = spec or default_store_path()
    if spec.startswith(_REDIS_SCHEMES):
        return RedisStore(spec)
    if "://" in spec:
        raise UsageError(f"{spec}: unknown store; give a directory path or a redis:// URL")
    return FilesystemStore(spec)
