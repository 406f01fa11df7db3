"""The keyring: 32-byte secret keys that seal what psp_cdp keeps encrypted.

Keys live in a directory (``$PSP_KEYRING``, else ``$XDG_CONFIG_HOME/psp/keys``, else
``~/.config/psp/keys``), mode 0700, one file per key (mode 0600, the key in base64)
named by its id; the file ``current`` names the key new data is sealed with. The
first key is created on first use. A key's id is derived from the key itself, so
the same key has the same id on every machine.

``PSP_KEY`` (base64 of 32 bytes) overrides the directory: it is the current key and
the key for its own id; keys of other ids are still read from the directory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Mapping

from ..errors import StoreError, UsageError

__all__ = ["Keyring", "KEY_SIZE", "key_id_of", "default_keyring_path"]

#: Bytes in a key.
KEY_SIZE = 32
_CURRENT = "current"
_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def key_id_of(key: bytes) -> str:
    """The id of a key: a fingerprint that reveals nothing of it."""
    return hashlib.sha256(b"psp key id\0" + key).hexdigest()[:16]


def default_keyring_path(environ: Mapping[str, str] = os.environ) -> str:
    """``$PSP_KEYRING``, else ``$XDG_CONFIG_HOME/psp/keys`` (``~/.config/psp/keys``)."""
    configured = environ.get("PSP_KEYRING")
    if configured:
        return configured
    config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "psp", "keys")


def _decode_key(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise UsageError(f"{where} must hold a base64-encoded {KEY_SIZE}-byte key")
    return key


class Keyring:
    """Keys by id in one directory, ``PSP_KEY`` first."""

    def __init__(self, directory: str | None = None, *, environ: Mapping[str, str] = os.environ) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory or default_keyring_path(environ)))
        self._environ = environ

    def __repr__(self) -> str:
        return f"<Keyring {self.directory}>"

    def _env_key(self) -> tuple[str, bytes] | None:
        encoded = self._environ.get("PSP_KEY")
        if not encoded:
            return None
        key = _decode_key(encoded, "PSP_KEY")
        return key_id_of(key), key

    def _path(self, key_id: str) -> str:
        if not _ID_RE.match(key_id):
            raise StoreError(f"invalid key id {key_id!r}")
        return os.path.join(self.directory, key_id)

    def get(self, key_id: str) -> bytes:
        """The key with this id; :class:`StoreError` if the keyring does not hold it."""
        env = self._env_key()
        if env is not None and env[0] == key_id:
            return env[1]
        path = self._path(key_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            hint = f"; PSP_KEY holds key {env[0]}" if env is not None else ""
            raise StoreError(f"no key {key_id} in the keyring {self.directory}{hint}: it was sealed with a key this keyring lacks") from None
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror}") from None
        with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
            if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:
                raise StoreError(f"{path}: a key file must be readable by its owner only (chmod 600 it)")
            key = _decode_key(fh.read(), path)
        if key_id_of(key) != key_id:
            raise StoreError(f"{path}: the file holds a different key than its name says")
        return key

    def ids(self) -> list[str]:
        """Ids of the keys in the directory."""
        try:
            return sorted(name for name in os.listdir(self.directory) if _ID_RE.match(name))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"{self.directory}: {exc.strerror}") from None

    def current_id(self) -> str | None:
        """The id of the current key, or ``None`` if there is none yet (never creates one)."""
        env = self._env_key()
        if env is not None:
            return env[0]
        try:
            with open(os.path.join(self.directory, _CURRENT), encoding="ascii") as fh:
                return fh.read().strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.directory}: cannot read the current key id ({exc})") from None

    def current(self) -> tuple[str, bytes]:
        """The key to seal new data with, as (id, key); ``PSP_KEY``, else the directory's, created if none."""
        env = self._env_key()
        if env is not None:
            return env
        try:
            with open(os.path.join(self.directory, _CURRENT), encoding="ascii") as fh:
                key_id = fh.read().strip()
        except FileNotFoundError:
            return self.create()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.directory}: cannot read the current key id ({exc})") from None
        return key_id, self.get(key_id)

    def create(self) -> tuple[str, bytes]:
        """A new random key, written to the directory and made current; (id, key)."""
        key = secrets.token_bytes(KEY_SIZE)
        key_id = key_id_of(key)
        try:
            self._ensure_directory()
            self._write(key_id, base64.b64encode(key) + b"\n", exclusive=True)
            self._write(_CURRENT, key_id.encode("ascii") + b"\n", exclusive=False)
            self._fsync_directory()
        except OSError as exc:
            raise StoreError(f"cannot write a key to {self.directory}: {exc.strerror}") from None
        return key_id, key

    def _ensure_directory(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if stat.S_IMODE(os.stat(self.directory).st_mode) != 0o700:
            os.chmod(self.directory, 0o700)

    def _write(self, name: str, data: bytes, *, exclusive: bool) -> None:
        path = os.path.join(self.directory, name)
        target = path if exclusive else os.path.join(self.directory, f".{name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            os.replace(target, path)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
