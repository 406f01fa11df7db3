"""Layer 4: session stores."""

from __future__ import annotations

import os

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
    "store_location",
    "summarize",
]


def store_location(spec: str | None = None) -> str:
    """Which store ``spec`` names (``None``: the default): a directory's absolute path, or a URL without its password.

    The daemon names its store so in ``GET /v1/version``; a command compares it with its own.
    """
    from .redis import redact

    spec = spec or default_store_path()
    if "://" in spec:
        return redact(spec)
    return os.path.abspath(os.path.expanduser(spec))


def open_store(spec: str | None = None) -> Store:
    """The store named by ``spec``: a directory path or a Redis URL (default: ``PSP_STORE`` or the XDG data dir)."""
    spec = spec or default_store_path()
    if spec.startswith(_REDIS_SCHEMES):
        return RedisStore(spec)
    if "://" in spec:
        raise UsageError(f"{spec}: unknown store; give a directory path or a redis:// URL")
    return FilesystemStore(spec)
