"""API keys: bearer tokens for the daemon's TCP listener, with scopes and a tenant.

A token is ``psp_<key id>_<secret>``: the key id is 16 hex digits (not secret: it
names the key in listings and logs), the secret 32 random bytes in URL-safe base64
without padding (43 characters, which may hold ``_`` and ``-``; the token is split at
its first two ``_`` only). The token is shown once, when the key is created
(:func:`create_key`); the daemon keeps only a hash of it.

**Where keys are kept.** One JSON file, mode 0600 (its directory is made 0700 when
missing): by default ``api-keys.json`` beside the keyring directory
(``$PSP_KEYRING/../api-keys.json``, so ``~/.config/psp/api-keys.json`` for a user; see
:func:`default_api_keys_path`), or the path given to ``run_daemon(api_keys=...)`` and
to the ``psp keys api-*`` commands. A file readable or writable by anyone but its
owner is refused, as the keyring refuses such key files: whoever may write it may
mint keys. Writes are atomic (a temporary file, fsync, rename), and a rewrite keeps
the owner of the file it replaces (when run as root: ``sudo psp keys api-create ...``
for a daemon running as ``psp`` leaves the file to ``psp``).

**Hashing.** Each key stores ``sha256:<hex>`` of a domain-separated SHA-256 over its
id and secret. The secret is 256 random bits, so a fast hash is enough: nobody can
guess a preimage, and a slow KDF (scrypt, argon2) would add nothing but tens of
milliseconds of CPU to every request over TCP, a way to load the daemon with bad
tokens. Verification looks the key up by id and compares hashes with
:func:`hmac.compare_digest` (constant time); an unknown id still costs a comparison.

**Scopes.** ``sessions:read`` (list and read sessions and their versions, and
``/v1/events``), ``sessions:write`` (create, change, delete sessions; capture),
``browsers:control`` (attach, list, detach browsers; watches; capture and restore
also need it), ``admin`` (every scope, every tenant's sessions and browsers, and
``/v1/stats``).

**Tenants.** A key belongs to one tenant (1 to 64 letters, digits, ``_`` or ``-``; no
``.``): it sees only the sessions tagged ``psp.tenant: <tenant>`` (sessions it creates
get that tag) and the browsers and watches made through keys of that tenant. See
:mod:`psp_cdp.daemon.auth`.

The daemon reads the file again whenever it changes (checked on each request over
TCP: one ``stat``), so keys created or revoked while it runs count at once.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError, UsageError
from ..store.keys import default_keyring_path

__all__ = [
    "SCOPES", "ADMIN", "ApiKey", "ApiKeyFile", "create_key", "default_api_keys_path", "list_keys", "revoke_key",
    "verify", "parse_token",
]

#: Every scope, in the order they are listed.
SCOPES = ("sessions:read", "sessions:write", "browsers:control", "admin")
ADMIN = "admin"
#: Bytes of randomness in a token's secret.
SECRET_BYTES = 32
_FORMAT = 1
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_\-]{43}$")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_NAME_MAX = 128


def default_api_keys_path() -> str:
    """``api-keys.json`` beside the keyring directory (``$PSP_KEYRING/../api-keys.json``)."""
    keyring = os.path.normpath(os.path.abspath(os.path.expanduser(default_keyring_path())))
    return os.path.join(os.path.dirname(keyring), "api-keys.json")


def _digest(key_id: str, secret: str) -> str:
    return "sha256:" + hashlib.sha256(b"psp api key\0" + key_id.encode() + b"\0" + secret.encode()).hexdigest()


#: Compared against when a token names no known key, so that costs the same.
_DUMMY = _digest("0" * 16, "")


@dataclass(frozen=True)
class ApiKey:
    """One API key as stored: never its token."""

    id: str
    name: str
    tenant: str
    scopes: tuple[str, ...]
    created_at: float
    digest: str = field(default="", repr=False)

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes

    def allows(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (``admin`` holds every scope)."""
        return self.admin or scope in self.scopes

    def as_dict(self) -> dict[str, Any]:
        """What listings show: everything but the hash."""
        return {"id": self.id, "name": self.name, "tenant": self.tenant, "scopes": list(self.scopes), "created_at": self.created_at}

    def _stored(self) -> dict[str, Any]:
        return {**self.as_dict(), "hash": self.digest}

    @classmethod
    def _from_stored(cls, raw: Any, where: str) -> ApiKey:
        try:
            key = cls(
                id=raw["id"], name=raw["name"], tenant=raw["tenant"], scopes=tuple(raw["scopes"]),
                created_at=float(raw["created_at"]), digest=raw["hash"],
            )
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"{where}: a damaged API key entry") from None
        if (
            not isinstance(key.id, str) or not _ID_RE.match(key.id)
            or not isinstance(key.digest, str) or not key.digest.startswith("sha256:")
            or not isinstance(key.tenant, str) or not isinstance(key.name, str)
            or not all(s in SCOPES for s in key.scopes)
        ):
            raise StoreError(f"{where}: a damaged API key entry")
        return key


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else ``None``."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "psp" or not _ID_RE.match(parts[1]) or not _SECRET_RE.match(parts[2]):
        return None
    return parts[1], parts[2]


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in their canonical order; :class:`UsageError` for an unknown or no scope."""
    given = list(scopes)
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    if not given:
        raise UsageError(f"give at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in given)


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
        raise UsageError(f"tenant {tenant!r}: use 1 to 64 letters, digits, '_' or '-', starting with a letter or digit")
    return tenant


# -- the file -------------------------------------------------------------------------


def _read(path: str) -> tuple[list[ApiKey], os.stat_result | None]:
    """The keys in ``path`` and its stat (``[]``, ``None`` if there is no file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(f"{path}: not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise StoreError(f"{path}: the API keys file must be readable and writable by its owner only (chmod 600 it)")
        raw = fh.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: not an API keys file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT or not isinstance(document.get("keys"), list):
        raise StoreError(f"{path}: not an API keys file (format {_FORMAT} expected)")
    return [ApiKey._from_stored(entry, path) for entry in document["keys"]], info


def _write(path: str, keys: Sequence[ApiKey], previous: os.stat_result | None) -> None:
    directory = os.path.dirname(path) or "."
    payload = json.dumps({"format": _FORMAT, "keys": [k._stored() for k in keys]}, indent=2, sort_keys=True).encode() + b"\n"
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            if os.geteuid() == 0:
                # Keep the file its owner's (a daemon running as another user must still read it).
                owner = previous if previous is not None else os.stat(directory)
                os.fchown(fh.fileno(), owner.st_uid, owner.st_gid)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """Changes to the file take turns (two ``psp keys api-create`` at once both land): a lock on its directory."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _path(path: str | os.PathLike[str] | None) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path))) if path is not None else default_api_keys_path()


def create_key(
    path: str | os.PathLike[str] | None, *, name: str, tenant: str, scopes: Iterable[str]
) -> tuple[str, str]:
    """A new key in the file at ``path`` (default: :func:`default_api_keys_path`): ``(key id, token)``.

    The token is not kept anywhere: show it once. :class:`UsageError` for a bad name,
    tenant or scope; :class:`StoreError` if the file cannot be read or written.
    """
    where = _path(path)
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX or not name.isprintable():
        raise UsageError(f"an API key's name is 1 to {_NAME_MAX} printable characters")
    tenant = check_tenant(tenant)
    ordered = check_scopes(scopes)
    try:
        with _locked(where):
            keys, previous = _read(where)
            taken = {k.id for k in keys}
            key_id = secrets.token_hex(8)
            while key_id in taken:
                key_id = secrets.token_hex(8)
            secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")
            key = ApiKey(key_id, name, tenant, ordered, time.time(), _digest(key_id, secret))
            _write(where, [*keys, key], previous)
    except OSError as exc:
        raise StoreError(f"cannot write {where}: {exc.strerror}") from None
    return key_id, f"psp_{key_id}_{secret}"


def list_keys(path: str | os.PathLike[str] | None) -> list[ApiKey]:
    """The keys in the file, oldest first (none if there is no file)."""
    return sorted(_read(_path(path))[0], key=lambda k: (k.created_at, k.id))


def revoke_key(path: str | os.PathLike[str] | None, key_id: str) -> ApiKey:
    """Remove the key ``key_id`` (or a token of it) from the file; the key removed.

    :class:`UsageError` if the file holds no such key. A running daemon refuses the key
    from its next request on.
    """
    where = _path(path)
    parsed = parse_token(key_id)
    wanted = parsed[0] if parsed is not None else key_id
    try:
        with _locked(where):
            keys, previous = _read(where)
            doomed = next((k for k in keys if k.id == wanted), None)
            if doomed is None:
                raise UsageError(f"no API key {key_id!r} in {where}")
            _write(where, [k for k in keys if k.id != wanted], previous)
    except OSError as exc:
        raise StoreError(f"cannot write {where}: {exc.strerror}") from None
    return doomed


class ApiKeyFile:
    """The keys of one file, read again whenever the file changes (for the daemon)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = _path(path)
        self._signature: tuple[int, int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def __repr__(self) -> str:
        return f"<ApiKeyFile {self.path}>"

    def keys(self) -> dict[str, ApiKey]:
        """The keys by id, as the file holds them now; :class:`StoreError` if it cannot be read."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._signature, self._keys = None, {}
            return self._keys
        except OSError as exc:
            raise StoreError(f"{self.path}: {exc.strerror}") from None
        signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode)
        if signature != self._signature:
            keys, _ = _read(self.path)
            self._keys = {k.id: k for k in keys}
            self._signature = signature
        return self._keys

    def verify(self, token: str) -> ApiKey | None:
        return _verify(self.keys(), token)


def _verify(keys: dict[str, ApiKey], token: str) -> ApiKey | None:
    parsed = parse_token(token) if isinstance(token, str) else None
    if parsed is None:
        return None
    key_id, secret = parsed
    key = keys.get(key_id)
    expected = key.digest if key is not None else _DUMMY
    match = hmac.compare_digest(expected.encode(), _digest(key_id, secret).encode())
    return key if match and key is not None else None


def verify(path_or_loaded: str | os.PathLike[str] | ApiKeyFile | Iterable[ApiKey], token: str) -> ApiKey | None:
    """The key ``token`` belongs to, or ``None`` (unknown, revoked or malformed token).

    ``path_or_loaded`` is the file's path, an :class:`ApiKeyFile`, or keys already read
    (:func:`list_keys`). Hashes are compared in constant time.
    """
    if isinstance(path_or_loaded, ApiKeyFile):
        return path_or_loaded.verify(token)
    if isinstance(path_or_loaded, (str, os.PathLike)):
        keys = {k.id: k for k in _read(_path(path_or_loaded))[0]}
    else:
        keys = {k.id: k for k in path_or_loaded}
    return _verify(keys, token)
