"""The store interface: sessions with metadata, each holding an encoded state.

Stores are synchronous (filesystem calls, or the Redis client); trio code calls them
through ``trio.to_thread.run_sync``. A store knows nothing of CDP nor of what is
inside a state: it keeps blobs and the metadata that lists them.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import SessionNotFoundError, UsageError

__all__ = ["SessionInfo", "Store", "new_session_id", "check_name", "parse_tags", "similar_names", "default_store_path"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


@dataclass
class SessionInfo:
    """What a store keeps about a session besides its state; readable without decoding it."""

    id: str
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    #: Bytes the store holds for the current state.
    size: int = 0
    #: Items per component in the current state.
    components: dict[str, int] = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)
    captured_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def matches(self, tags: dict[str, str]) -> bool:
        return all(self.tags.get(k) == v for k, v in tags.items())


def new_session_id() -> str:
    """A cryptographically random session id (128 bits, hex)."""
    return secrets.token_hex(16)


def check_name(name: str) -> str:
    """``name`` if it is a valid session name, else :class:`UsageError`."""
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid session name {name!r}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    """``["team=qa", "env=ci"]`` as a dict; :class:`UsageError` for a pair without ``=``."""
    tags: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid tag {pair!r}: use KEY=VALUE")
        tags[key] = value
    return tags


def similar_names(name: str, names: list[str]) -> list[str]:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    close += [n for n in names if name and (name in n or n in name) and n not in close]
    return close[:5]


def default_store_path() -> str:
    """``$PSP_STORE``, else ``$XDG_DATA_HOME/psp`` (``~/.local/share/psp``)."""
    configured = os.environ.get("PSP_STORE")
    if configured:
        return configured
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "psp")


class Store(ABC):
    """Where sessions live."""

    #: How the store was named (a path or URL), for messages.
    location: str

    @abstractmethod
    def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        """Every session (with all of ``tags``), sorted by name."""

    @abstractmethod
    def find(self, ref: str) -> SessionInfo | None:
        """The session with that name or id, or ``None``."""

    def get(self, ref: str) -> SessionInfo:
        """The session with that name or id; :class:`SessionNotFoundError` naming similar ones."""
        info = self.find(ref)
        if info is None:
            raise SessionNotFoundError(ref, similar_names(ref, [s.name for s in self.list()]))
        return info

    @abstractmethod
    def create(self, name: str, *, description: str = "", tags: dict[str, str] | None = None) -> SessionInfo:
        """A new, empty session; :class:`SessionExistsError` if the name is taken."""

    @abstractmethod
    def update(self, info: SessionInfo) -> SessionInfo:
        """Write a session's metadata (description, tags)."""

    @abstractmethod
    def write_state(self, info: SessionInfo, blob: bytes) -> SessionInfo:
        """Replace the session's state with ``blob`` atomically and write ``info`` with it."""

    @abstractmethod
    def read_state(self, info: SessionInfo) -> bytes:
        """The session's current state; :class:`StoreError` if it has none."""

    @abstractmethod
    def state_location(self, info: SessionInfo) -> str:
        """Where the state of ``info`` lives, for error messages."""

    @abstractmethod
    def delete(self, info: SessionInfo) -> None:
        """Remove the session and everything stored for it."""
