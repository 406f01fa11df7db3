"""The embedded default store: a directory a person can inspect.

Layout::

    STORE/
      names/<name>               the session id, one line: the name index
      sessions/<id>/session.json metadata (name, description, tags, times, sizes, origins)
      sessions/<id>/state.psp    the current state (snapshot container)

Every file is written to a temporary name, fsynced and renamed into place, so a
reader sees the old content or the new, never a mix. A name is claimed with a hard
link, which fails if it exists, so two processes cannot create the same name; two
processes writing different sessions touch different files. Files are mode 0600,
directories 0700.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time

from ..errors import SessionExistsError, StoreError
from .base import SessionInfo, Store, check_name, new_session_id

__all__ = ["FilesystemStore"]

_STATE = "state.psp"
_META = "session.json"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


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

    def __repr__(self) -> str:
        return f"<FilesystemStore {self.root}>"

    # -- reading -------------------------------------------------------------

    def _session_dir(self, session_id: str) -> str:
        return os.path.join(self._sessions, session_id)

    def _read_meta(self, session_id: str) -> SessionInfo | None:
        path = os.path.join(self._session_dir(session_id), _META)
        try:
            with open(path, "rb") as fh:
                return SessionInfo.from_dict(json.loads(fh.read()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{path}: damaged session metadata ({exc})") from None

    def _id_for_name(self, name: str) -> str | None:
        try:
            check_name(name)
        except Exception:
            return None
        try:
            with open(os.path.join(self._names, name), encoding="ascii") as fh:
                return fh.read().strip() or None
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def find(self, ref: str) -> SessionInfo | None:
        session_id = self._id_for_name(ref)
        if session_id is not None:
            info = self._read_meta(session_id)
            if info is not None:
                return info
        if ref and "/" not in ref and not ref.startswith(".") and os.path.isdir(self._session_dir(ref)):
            return self._read_meta(ref)
        return None

    def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        sessions = []
        for name in os.listdir(self._names):
            if name.startswith("."):
                continue
            session_id = self._id_for_name(name)
            if session_id is None:
                continue
            try:
                info = self._read_meta(session_id)
            except StoreError:
                continue  # a damaged session does not hide the others; `show` names the file
            if info is not None and info.matches(tags or {}):
                sessions.append(info)
        return sorted(sessions, key=lambda s: s.name)

    def read_state(self, info: SessionInfo) -> bytes:
        path = self.state_location(info)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise StoreError(f"session {info.name!r} has no captured state yet") from None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror}") from None

    def state_location(self, info: SessionInfo) -> str:
        return os.path.join(self._session_dir(info.id), _STATE)

    # -- writing -------------------------------------------------------------

    def _write_meta(self, info: SessionInfo) -> None:
        data = json.dumps(info.as_dict(), indent=2, sort_keys=True).encode() + b"\n"
        _atomic_write(os.path.join(self._session_dir(info.id), _META), data)

    def create(self, name: str, *, description: str = "", tags: dict[str, str] | None = None) -> SessionInfo:
        check_name(name)
        now = time.time()
        info = SessionInfo(new_session_id(), name, description, dict(tags or {}), now, now)
        directory = self._session_dir(info.id)
        os.makedirs(directory, mode=0o700)
        self._write_meta(info)
        claim = os.path.join(self._names, f".{name}.{secrets.token_hex(6)}.tmp")
        with open(claim, "w", encoding="ascii") as fh:
            fh.write(info.id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(claim, os.path.join(self._names, name))
        except FileExistsError:
            shutil.rmtree(directory, ignore_errors=True)
            raise SessionExistsError(f"a session named {name!r} exists already") from None
        finally:
            os.unlink(claim)
        _fsync_dir(self._names)
        return info

    def update(self, info: SessionInfo) -> SessionInfo:
        info.updated_at = time.time()
        self._write_meta(info)
        return info

    def write_state(self, info: SessionInfo, blob: bytes) -> SessionInfo:
        _atomic_write(self.state_location(info), blob)
        info.size = len(blob)
        return self.update(info)

    def delete(self, info: SessionInfo) -> None:
        try:
            os.unlink(os.path.join(self._names, info.name))
        except FileNotFoundError:
            pass
        _fsync_dir(self._names)
        shutil.rmtree(self._session_dir(info.id), ignore_errors=True)
