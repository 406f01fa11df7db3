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

__all__ = [
    "DAMAGED", "SessionInfo", "VersionInfo", "Store", "prunable", "new_session_id", "check_name", "valid_session_id", "parse_tags",
    "similar_names", "default_store_path",
]

# \Z, not $: "$" also matches before a final newline.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}\Z")
#: A session id, as it may be used in a path or a key: letters, digits, '_' and '-' (no dots, no separators).
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}\Z")


@dataclass
class VersionInfo:
    """What a store keeps about one version besides its blob; readable without any key.

    A version is ``"full"`` (the whole state) or ``"delta"`` (what changed since
    ``parent``); ``base`` is the full version its chain of deltas starts from.
    """

    version: int
    kind: str = "full"
    parent: int | None = None
    base: int = 0
    created_at: float = 0.0
    #: Every byte the store holds for this version: blob, metadata, index entries.
    stored_bytes: int = 0
    #: Bytes of the blob (the snapshot container) alone.
    blob_bytes: int = 0
    #: Serialised bytes before compression and encryption.
    raw_bytes: int = 0
    #: "aes-256-gcm", "chacha20-poly1305" or "none".
    cipher: str = "none"
    key_id: str | None = None
    #: Items per component in the state this version gives.
    components: dict[str, int] = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)
    #: Capture time of the state, seconds since the epoch.
    captured_at: float | None = None
    #: For a delta: items added, changed and removed, per component.
    changes: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        # What asdict gives, a good deal faster (listings describe many of these).
        data = dict(self.__dict__)
        data["components"] = dict(self.components)
        data["origins"] = list(self.origins)
        data["changes"] = {k: dict(v) for k, v in self.changes.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class SessionInfo:
    """What a store keeps about a session besides its versions; readable without any key.

    The fields below ``updated_at`` describe the latest version (``head``; 0 while the
    session has none) and are filled in by the store when it reads the session.
    """

    id: str
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    #: Versioning policy: keep the last ``keep`` versions (None: all), write a full
    #: snapshot every ``full_every`` versions, forget the session ``ttl`` seconds after
    #: its last write (None: never).
    keep: int | None = None
    full_every: int | None = None
    ttl: float | None = None
    head: int = 0
    #: Bytes the store holds for the latest version.
    size: int = 0
    #: Items per component in the latest version.
    components: dict[str, int] = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)
    captured_at: float | None = None

    #: Fields that come from the latest version, not from the session's own record.
    HEAD_FIELDS = ("head", "size", "components", "origins", "captured_at")

    def as_dict(self) -> dict[str, Any]:
        # What asdict gives, a good deal faster (the daemon lists sessions again and again).
        data = dict(self.__dict__)
        data["tags"] = dict(self.tags)
        data["components"] = dict(self.components)
        data["origins"] = list(self.origins)
        return data

    def copy(self) -> SessionInfo:
        """A copy whose tags, components and origins are its own."""
        new = object.__new__(SessionInfo)
        new.__dict__.update(self.__dict__)
        new.tags, new.components, new.origins = dict(self.tags), dict(self.components), list(self.origins)
        return new

    def record(self) -> dict[str, Any]:
        """The session's own record: what :meth:`Store.update` writes."""
        return {k: v for k, v in asdict(self).items() if k not in self.HEAD_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_head(self, head: VersionInfo | None) -> SessionInfo:
        """This session described by its latest version ``head``."""
        if head is not None:
            self.head = head.version
            self.size = head.stored_bytes
            self.components = dict(head.components)
            self.origins = list(head.origins)
            self.captured_at = head.captured_at
        return self

    def matches(self, tags: dict[str, str]) -> bool:
        return all(self.tags.get(k) == v for k, v in tags.items())


#: The kind of a version whose file cannot be read: listed, never a parent of another.
DAMAGED = "damaged"


def prunable(versions: list[VersionInfo], keep: int | None) -> list[int]:
    """Versions that retention removes: older than the last ``keep`` and than every
    version a kept delta needs (its chain back to its full base)."""
    if not keep or len(versions) <= keep:
        return []
    kept = versions[-keep:]
    floor = min(min(v.base or v.version for v in kept), kept[0].version)
    return [v.version for v in versions if v.version < floor]


def new_session_id() -> str:
    """A cryptographically random session id (128 bits, hex)."""
    return secrets.token_hex(16)


def valid_session_id(session_id: object) -> bool:
    """Whether ``session_id`` may be a session id: what a store reads from disk, a server or a client is checked
    with this before it becomes part of a path or a key."""
    return isinstance(session_id, str) and _ID_RE.match(session_id) is not None


def check_name(name: str) -> str:
    """``name`` if it is a valid session name, else :class:`UsageError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
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
    """Where sessions live: a name index, each session's record and its versions.

    Versions are numbered 1, 2, ... per session. Writing version N succeeds only if
    the session's latest version is N-1 when the write lands (optimistic
    concurrency); the loser gets :class:`ConflictError` and nothing of it is stored.
    A version is written whole or not at all.
    """

    #: How the store was named (a path or URL), for messages.
    location: str

    @abstractmethod
    def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        """Every session (with all of ``tags``), sorted by name, described by its latest version."""

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
        """A new session without versions; :class:`SessionExistsError` if the name is taken."""

    @abstractmethod
    def update(self, info: SessionInfo) -> SessionInfo:
        """Write a session's own record (description, tags, policy); never its versions."""

    @abstractmethod
    def write_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        """Store ``blob`` as ``version.version``, which must follow the latest version.

        Sets ``version.stored_bytes`` and returns it. :class:`ConflictError` if that
        version exists already. Refreshes the session's TTL and announces the version
        where the store can (Redis pub/sub and event stream).
        """

    @abstractmethod
    def replace_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        """Atomically replace an existing version's blob and metadata (same content, new seal)."""

    @abstractmethod
    def read_version(self, info: SessionInfo, version: int) -> bytes:
        """The blob of a version; :class:`VersionNotFoundError` if there is none."""

    @abstractmethod
    def versions(self, info: SessionInfo) -> list[VersionInfo]:
        """Every version of the session, oldest first."""

    @abstractmethod
    def delete_versions(self, info: SessionInfo, versions: list[int]) -> None:
        """Remove these versions (retention); missing ones are skipped."""

    @abstractmethod
    def version_location(self, info: SessionInfo, version: int) -> str:
        """Where a version lives, for error messages."""

    @abstractmethod
    def delete(self, info: SessionInfo) -> None:
        """Remove the session and everything stored for it."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
