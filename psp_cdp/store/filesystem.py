"""The embedded default store: a directory a person can inspect.

Layout::

    STORE/
      names/<name>                  the session id, one line: the name index
      sessions/<id>/session.json    the session's record (name, description, tags, times, policy)
      sessions/<id>/versions/<n>    version n (decimal, no padding)

A version file is one envelope::

    4 bytes  b"PSPV"
    4 bytes  length m of the metadata (big-endian)
    m bytes  the version's metadata as JSON (VersionInfo): readable without any key
    rest     the blob: a snapshot container (sealed, so no value is in clear)

Every file is written to a temporary name and fsynced first. A version is then
claimed with a hard link to its final name, which fails if that version exists: so
a version appears whole or not at all, and of two writers of the same version one
gets :class:`ConflictError`. The latest version is the highest number present.
Session records are replaced by rename. A name is claimed with a hard link too, so
two processes cannot create the same name. Files are mode 0600, directories 0700.

A session with a ``ttl`` whose last write is older than that is expired: it is
treated as absent and removed when next looked up.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import struct
import time

from ..errors import ConflictError, SessionExistsError, SessionNotFoundError, StoreError, VersionNotFoundError
from .base import DAMAGED, SessionInfo, Store, VersionInfo, check_name, new_session_id, valid_session_id

log = logging.getLogger(__name__)

__all__ = ["FilesystemStore", "atomic_write"]

_RECORD = "session.json"
#: The single state file of the earlier, unversioned layout; adopted as version 1 when met.
_LEGACY_STATE = "state.psp"
_VERSIONS = "versions"
_ENVELOPE = b"PSPV"
_META_LEN = struct.Struct(">I")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: str, name: str, data: bytes) -> str:
    """``data`` written and fsynced to a fresh temporary file in ``directory``; its path."""
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


#: Seconds after which a temporary file is taken to be a crashed writer's, and removed.
STALE_TEMP = 600.0


def _sweep(directory: str, names: list[str]) -> None:
    """Remove the temporary files among ``names`` that a writer left when it crashed (older than STALE_TEMP)."""
    limit = time.time() - STALE_TEMP
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            path = os.path.join(directory, name)
            try:
                if os.lstat(path).st_mtime < limit:
                    os.unlink(path)
            except OSError:
                pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


#: Sessions whose descriptions are kept (beyond it, they are all read again).
_DESCRIBED = 10_000
#: Files changed this recently (ns) are read again every time (timestamps may be that coarse).
_RACY_NS = 2_000_000_000


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with a new file (mode 0600) holding ``data``, whole or not at all."""
    directory = os.path.dirname(path)
    tmp = _write_temp(directory, os.path.basename(path), data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_dir(directory)


def _envelope(version: VersionInfo, blob: bytes) -> bytes:
    """The version file; sets ``version.stored_bytes`` to its size."""
    version.blob_bytes = len(blob)
    version.stored_bytes = len(blob)
    while True:
        meta = json.dumps(version.as_dict(), sort_keys=True).encode()
        size = len(_ENVELOPE) + _META_LEN.size + len(meta) + len(blob)
        if size == version.stored_bytes:
            return _ENVELOPE + _META_LEN.pack(len(meta)) + meta + blob
        version.stored_bytes = size


def _read_envelope(path: str, *, blob: bool) -> tuple[VersionInfo, bytes]:
    with open(path, "rb") as fh:
        head = fh.read(len(_ENVELOPE) + _META_LEN.size)
        if len(head) < len(_ENVELOPE) + _META_LEN.size or head[:4] != _ENVELOPE:
            raise StoreError(f"{path}: not a psp version file")
        (length,) = _META_LEN.unpack_from(head, 4)
        meta = fh.read(length)
        try:
            version = VersionInfo.from_dict(json.loads(meta))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{path}: damaged version metadata ({exc})") from None
        return version, fh.read() if blob else b""


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _signed_paths(directory: str, head: VersionInfo | None) -> tuple[str, ...]:
    """The files a session's description is read from: its record, its versions directory and its head."""
    paths = (os.path.join(directory, _RECORD), os.path.join(directory, _VERSIONS))
    return paths if head is None else (*paths, os.path.join(directory, _VERSIONS, str(head.version)))


def _signature(paths: tuple[str, ...]) -> tuple | None:
    """The files at ``paths`` as the file system has them (``None``: one is missing)."""
    signature = tuple(_stat(path) for path in paths)
    return None if None in signature else signature


def _racy(signature: tuple) -> bool:
    """Whether a file of ``signature`` changed so recently that another change might not show in its time."""
    recent = time.time_ns() - _RACY_NS
    return any(part is not None and part[2] > recent for part in signature)


class FilesystemStore(Store):
    def __init__(self, path: str) -> None:
        self.location = path
        self.root = os.path.abspath(os.path.expanduser(path))
        self._names = os.path.join(self.root, "names")
        self._sessions = os.path.join(self.root, "sessions")
        try:
            for directory in (self.root, self._names, self._sessions):
                os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use {self.root} as a store: {exc.strerror}") from None

        #: Session descriptions by id, with the signature of the files they were read from.
        self._described: dict[str, tuple[tuple, tuple[str, ...], SessionInfo, VersionInfo | None]] = {}
        #: The ids the names directory pointed to, with the directory's signature.
        self._names_seen: tuple[tuple[int, int, int], list[str]] | None = None

    def __repr__(self) -> str:
        return f"<FilesystemStore {self.root}>"

    # -- paths ---------------------------------------------------------------

    def _session_dir(self, session_id: str) -> str:
        """The session's directory; a :class:`StoreError` for an id that is not one (it never leaves the store)."""
        if not valid_session_id(session_id):
            raise StoreError(f"{self.root}: a session id that is not one was read (damaged store)")
        return os.path.join(self._sessions, session_id)

    def _versions_dir(self, info: SessionInfo) -> str:
        return os.path.join(self._session_dir(info.id), _VERSIONS)

    def _version_path(self, info: SessionInfo, version: int) -> str:
        return os.path.join(self._versions_dir(info), str(version))

    def version_location(self, info: SessionInfo, version: int) -> str:
        return self._version_path(info, version)

    # -- reading -------------------------------------------------------------

    def _read_record(self, session_id: str) -> SessionInfo | None:
        """The session described by its record and its latest version (``None``: no such session, or expired).

        A description is kept while the files it was read from stay as they were (their
        inode, size and modification time), so listing many sessions again and again
        reads next to nothing; a file changed in the last :data:`_RACY_NS` is read every
        time, since a change within its timestamp's granularity would not show.
        """
        cached = self._described.get(session_id)
        if cached is not None and cached[0] == _signature(cached[1]):
            info, head = cached[2].copy(), cached[3]
        else:
            loaded = self._load_record(session_id)
            if loaded is None:
                self._described.pop(session_id, None)
                return None
            info, head = loaded
            paths = _signed_paths(self._session_dir(session_id), head)
            signature = _signature(paths)
            if signature is not None and not _racy(signature):
                if len(self._described) >= _DESCRIBED:
                    self._described.clear()
                self._described[session_id] = (signature, paths, info.copy(), head)
        if self._expired(info, head):
            self.delete(info)
            return None
        return info

    def _load_record(self, session_id: str) -> tuple[SessionInfo, VersionInfo | None] | None:
        path = os.path.join(self._session_dir(session_id), _RECORD)
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read())
            info = SessionInfo.from_dict(data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{path}: damaged session record ({exc})") from None
        if info.id != session_id:
            raise StoreError(f"{path}: damaged session record (it names another session)")
        versions = self._numbers(info) or self._adopt_legacy_state(info, data)
        head = None
        if versions:
            try:
                head = self._version_info(info, versions[-1])
            except FileNotFoundError:
                pass  # removed meanwhile
        return info.with_head(head), head

    def _adopt_legacy_state(self, info: SessionInfo, record: dict) -> list[int]:
        """A session of an earlier layout (one ``state.psp``, unversioned) becomes version 1."""
        legacy = os.path.join(self._session_dir(info.id), _LEGACY_STATE)
        try:
            with open(legacy, "rb") as fh:
                blob = fh.read()
        except FileNotFoundError:
            return []
        version = VersionInfo(
            1,
            created_at=record.get("updated_at") or time.time(),
            components=record.get("components") or {},
            origins=record.get("origins") or [],
            captured_at=record.get("captured_at"),
        )
        os.makedirs(self._versions_dir(info), mode=0o700, exist_ok=True)
        try:
            self.write_version(info, version, blob)
        except ConflictError:
            pass  # adopted meanwhile by another process
        _unlink(legacy)
        return self._numbers(info)

    @staticmethod
    def _expired(info: SessionInfo, head: VersionInfo | None) -> bool:
        if not info.ttl:
            return False
        last_write = max(info.updated_at, head.created_at if head else 0.0)
        return time.time() > last_write + info.ttl

    def _numbers(self, info: SessionInfo) -> list[int]:
        directory = self._versions_dir(info)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        _sweep(directory, names)
        return sorted(int(n) for n in names if n.isdigit())

    def _id_for_name(self, name: str) -> str | None:
        try:
            check_name(name)
        except Exception:
            return None
        try:
            with open(os.path.join(self._names, name), encoding="ascii") as fh:
                session_id = fh.read(256).strip()
        except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
            return None
        return session_id if valid_session_id(session_id) else None

    def find(self, ref: str) -> SessionInfo | None:
        session_id = self._id_for_name(ref)
        if session_id is not None:
            info = self._read_record(session_id)
            if info is not None:
                return info
        if valid_session_id(ref) and os.path.isdir(self._session_dir(ref)):
            return self._read_record(ref)
        return None

    def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        sessions = []
        for session_id in self._listed_ids():
            try:
                info = self._read_record(session_id)
            except StoreError:
                continue  # a damaged session does not hide the others; `show` names the file
            if info is not None and info.matches(tags or {}):
                sessions.append(info)
        return sorted(sessions, key=lambda s: s.name)

    def _listed_ids(self) -> list[str]:
        """The ids the names directory points to; kept while the directory stays as it was (a name's file is
        never changed in place: it is made whole, then linked or removed)."""
        signature = _stat(self._names)
        if signature is not None and self._names_seen is not None and self._names_seen[0] == signature:
            return self._names_seen[1]
        names = os.listdir(self._names)
        _sweep(self._names, names)
        ids = [i for i in (self._id_for_name(n) for n in names if not n.startswith(".")) if i is not None]
        if signature is not None and not _racy((signature,)):
            self._names_seen = (signature, ids)
        return ids

    def versions(self, info: SessionInfo) -> list[VersionInfo]:
        found = []
        for number in self._numbers(info):
            try:
                found.append(self._version_info(info, number))
            except FileNotFoundError:
                continue  # removed by retention meanwhile
        return found

    def _version_info(self, info: SessionInfo, number: int) -> VersionInfo:
        """A version's metadata; a file that cannot be read is listed as a ``damaged`` version of its own
        (it does not hide the others, and the next version is written whole)."""
        path = self._version_path(info, number)
        try:
            version, _ = _read_envelope(path, blob=False)
            if version.version == number:
                return version
            problem = "it names another version"
        except StoreError:
            problem = "its metadata cannot be read"
        except IsADirectoryError:
            problem = "a directory where a version file should be"
        log.info("%s: damaged version file: %s", path, problem)
        return VersionInfo(number, kind=DAMAGED, base=number)

    def read_version(self, info: SessionInfo, version: int) -> bytes:
        path = self._version_path(info, version)
        try:
            return _read_envelope(path, blob=True)[1]
        except FileNotFoundError:
            raise VersionNotFoundError(f"session {info.name!r} has no version {version}") from None
        except IsADirectoryError:
            raise StoreError(f"{path}: a directory where a version file should be") from None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror}") from None

    # -- writing -------------------------------------------------------------

    def _write_record(self, info: SessionInfo) -> None:
        data = json.dumps(info.record(), indent=2, sort_keys=True).encode() + b"\n"
        atomic_write(os.path.join(self._session_dir(info.id), _RECORD), data)

    def create(self, name: str, *, description: str = "", tags: dict[str, str] | None = None) -> SessionInfo:
        check_name(name)
        now = time.time()
        info = SessionInfo(new_session_id(), name, description, dict(tags or {}), now, now)
        directory = self._session_dir(info.id)
        os.mkdir(directory, mode=0o700)  # makedirs would give the parent the default mode
        os.mkdir(os.path.join(directory, _VERSIONS), mode=0o700)
        self._write_record(info)
        claim = _write_temp(self._names, name, info.id.encode("ascii") + b"\n")
        try:
            try:
                os.link(claim, os.path.join(self._names, name))
            except FileExistsError:
                if self.find(name) is not None:  # a lookup also clears an expired session's name
                    raise
                self._unclaim_stale(name)
                os.link(claim, os.path.join(self._names, name))
        except FileExistsError:
            shutil.rmtree(directory, ignore_errors=True)
            raise SessionExistsError(f"a session named {name!r} exists already") from None
        finally:
            os.unlink(claim)
        _fsync_dir(self._names)
        return info

    def _unclaim_stale(self, name: str) -> None:
        """Drop a name whose session is gone (removed, or its record never written)."""
        session_id = self._id_for_name(name)
        if session_id is not None and not os.path.exists(os.path.join(self._session_dir(session_id), _RECORD)):
            _unlink(os.path.join(self._names, name))

    def _check_exists(self, info: SessionInfo) -> None:
        if not os.path.isdir(self._versions_dir(info)):
            raise SessionNotFoundError(info.name)

    def update(self, info: SessionInfo) -> SessionInfo:
        self._check_exists(info)
        info.updated_at = time.time()
        self._write_record(info)
        return info

    def write_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        self._check_exists(info)
        directory = self._versions_dir(info)
        numbers = self._numbers(info)
        if (numbers[-1] if numbers else 0) != version.version - 1:
            raise ConflictError(info.name, version.version)
        tmp = _write_temp(directory, str(version.version), _envelope(version, blob))
        try:
            os.link(tmp, self._version_path(info, version.version))
        except FileExistsError:
            raise ConflictError(info.name, version.version) from None
        except FileNotFoundError:
            raise SessionNotFoundError(info.name) from None
        finally:
            _unlink(tmp)
        _fsync_dir(directory)
        return version

    def replace_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        path = self._version_path(info, version.version)
        if not os.path.exists(path):
            raise VersionNotFoundError(f"session {info.name!r} has no version {version.version}")
        atomic_write(path, _envelope(version, blob))
        return version

    def delete_versions(self, info: SessionInfo, versions: list[int]) -> None:
        for number in versions:
            _unlink(self._version_path(info, number))
        _fsync_dir(self._versions_dir(info))

    def delete(self, info: SessionInfo) -> None:
        if self._id_for_name(info.name) == info.id:
            _unlink(os.path.join(self._names, info.name))
            _fsync_dir(self._names)
        shutil.rmtree(self._session_dir(info.id), ignore_errors=True)
