"""The Redis store: sessions in a standalone Redis or a Redis Cluster, shared by many machines.

URLs (``user:pass@`` optional; every query argument of redis-py's ``from_url`` is
passed through, e.g. ``ssl_ca_certs=``, ``ssl_cert_reqs=``, ``socket_timeout=``)::

    redis://[user:pass@]host:port[/db][?prefix=psp&retries=4]
    rediss://...                                  TLS
    redis+cluster://host:port[,host:port...]      Redis Cluster; the hosts are startup nodes
    rediss+cluster://...                          Redis Cluster over TLS

``prefix`` (default ``psp``) namespaces every key, so stores can share a database;
``retries`` is how often an operation is retried after a connection error or timeout.

Key layout (``P`` is the prefix, ``ID`` a session id)::

    P:names              hash    session name -> id: the name index, the only key that
                                 sessions share
    P:{ID}:record        string  the session's own record (SessionInfo.record()) as JSON
    P:{ID}:head          string  the number of the latest version ever written
    P:{ID}:meta          hash    version number -> VersionInfo as JSON
    P:{ID}:v:N           string  the blob of version N, as given (never decoded here)
    P:{ID}:events        stream  one entry per version written (version, kind, created_at,
                                 blob_bytes), capped near 1000 entries
    P:versions           pub/sub channel: one JSON notice per version written,
                         {"session", "name", "version", "kind", "created_at"}

Every key of a session carries its id as a hash tag (``{ID}``), so all of them live in
one cluster slot and one Lua script reads and writes them together: a version is
written whole (blob, metadata, head and event in one script) or not at all, and the
script refuses a version that does not follow the head (optimistic concurrency), so
of two writers of version N exactly one wins and the other gets
:class:`ConflictError`. The scripts that expire or delete a whole session list its
``v:N`` keys from ``meta`` (they share the session's slot, so this holds in a cluster).

A session whose stored record has a ``ttl`` (set through :meth:`RedisStore.update`)
has every key expire that many seconds after its last write (update, version write or
replace). Redis cannot expire one field of ``P:names`` (7.0 has no field TTL), so a
name whose record has expired is *stale*: every reader treats it as absent and
removes it, and :meth:`RedisStore.create` takes the name over.

A session's record is written before its name is claimed (and its name released
before its keys are deleted), so a name never points at a session that is being
created. Names are claimed with ``HSETNX`` and taken over or released with a
compare-and-set script, so two processes never both own a name.

Resilience: connection errors, timeouts and cluster reconfigurations are retried with
exponential backoff (redis-py ``Retry`` + ``ExponentialBackoff``, ``retries`` attempts
after the first, about 2.5 s in all by default), each time as a whole operation,
which is safe because every write is idempotent when repeated: a version write whose
reply was lost finds its own metadata in place and succeeds. After the last attempt
the store raises :class:`StoreUnavailableError` naming the URL (never its password).
Every redis-py exception is translated into the :mod:`psp_cdp.errors` tree here; none
leaves this module.

The client (a redis-py connection pool, or a cluster client with a pool per node) is
thread-safe: trio code calls the store from worker threads.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TimeoutError as RedisTimeoutError,
    TryAgainError,
)
from redis.retry import Retry

from ..errors import (
    ConflictError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    StoreUnavailableError,
    UsageError,
    VersionNotFoundError,
)
from .base import SessionInfo, Store, VersionInfo, check_name, new_session_id, valid_session_id

__all__ = ["RedisStore", "VersionNotices", "SCHEMES", "DEFAULT_PREFIX"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: URL schemes this store serves.
SCHEMES = ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")
DEFAULT_PREFIX = "psp"
#: Retries after the first attempt; with the backoff below, about 2.5 s of waiting in all.
DEFAULT_RETRIES = 4
#: Backoff between attempts: 0.2, 0.4, 0.8, 1.0, 1.0, ... seconds.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0
#: Socket timeouts unless the URL sets ``socket_timeout`` / ``socket_connect_timeout``.
SOCKET_TIMEOUT = 2.0
SOCKET_CONNECT_TIMEOUT = 2.0
#: The events stream is trimmed to about this many entries.
EVENTS_MAXLEN = 1000
#: Bytes Redis keeps per stream entry besides its fields (the 128-bit entry id).
STREAM_ENTRY_OVERHEAD = 16

_DEFAULT_PORT = 6379
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
#: Query arguments that are ours; every other one must be one redis-py's from_url knows.
_OWN_ARGUMENTS = {"prefix", "retries"}
_CONNECTION_ARGUMENTS = set(URL_QUERY_ARGUMENT_PARSERS) | {
    "client_name",
    "username",
    "password",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_ca_data",
    "ssl_cert_reqs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
}
#: Errors after which an operation is tried again (then reported as StoreUnavailableError).
_TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
)


# -- Lua scripts: every one touches the keys of one session (one slot), or P:names alone --

# Applies the session's TTL (from its stored record) to every key of the session:
# PEXPIRE when the record has a ttl; PERSIST too when ``persist`` (after an update
# that may have removed the ttl). Keys: record, head, meta, events. ARGV[1]: "P:{ID}:".
_LUA_REFRESH_TTL = """
local function refresh_ttl(record, prefix, persist)
  local ttl = nil
  if record then
    local ok, decoded = pcall(cjson.decode, record)
    if ok and type(decoded) == 'table' and type(decoded['ttl']) == 'number' and decoded['ttl'] > 0 then
      ttl = math.ceil(decoded['ttl'] * 1000)
    end
  end
  if ttl == nil and not persist then return end
  local keys = {prefix .. 'record', prefix .. 'head', prefix .. 'meta', prefix .. 'events'}
  for _, n in ipairs(redis.call('HKEYS', prefix .. 'meta')) do
    keys[#keys + 1] = prefix .. 'v:' .. n
  end
  for _, key in ipairs(keys) do
    if ttl then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end
"""

# KEYS: record, head, meta, blob, events.
# ARGV: version, meta JSON, blob, prefix, kind, created_at, blob_bytes, events maxlen.
# Returns 1 written, 0 this very write was there already (a retry), -1 conflict, -2 no session.
_LUA_WRITE_VERSION = _LUA_REFRESH_TTL + """
local record = redis.call('GET', KEYS[1])
if not record then return -2 end
local n = tonumber(ARGV[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
if head ~= n - 1 then
  if head >= n and redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then return 0 end
  return -1
end
redis.call('SET', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*',
           'version', ARGV[1], 'kind', ARGV[5], 'created_at', ARGV[6], 'blob_bytes', ARGV[7])
refresh_ttl(record, ARGV[4], false)
return 1
"""

# KEYS: record, meta, blob. ARGV: version, meta JSON, blob, prefix.
# Returns 1 replaced, -3 no such version.
_LUA_REPLACE_VERSION = _LUA_REFRESH_TTL + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -3 end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
refresh_ttl(redis.call('GET', KEYS[1]), ARGV[4], false)
return 1
"""

# KEYS: record. ARGV: record JSON, prefix. Returns 1 written, 0 no such session.
_LUA_UPDATE = _LUA_REFRESH_TTL + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
refresh_ttl(ARGV[1], ARGV[2], true)
return 1
"""

# KEYS: record, head, meta. Returns {record, JSON of the latest version or ''}, or nil.
_LUA_DESCRIBE = """
local record = redis.call('GET', KEYS[1])
if not record then return nil end
local latest = false
local head = redis.call('GET', KEYS[2])
if head then latest = redis.call('HGET', KEYS[3], head) end
if not latest then
  local best = nil
  for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
    local n = tonumber(f)
    if n and (best == nil or n > best) then best = n end
  end
  if best then latest = redis.call('HGET', KEYS[3], tostring(best)) end
end
return {record, latest or ''}
"""

# KEYS: record, head, meta, events. ARGV: prefix. Deletes every key of the session.
_LUA_DELETE_SESSION = """
local keys = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
for _, n in ipairs(redis.call('HKEYS', KEYS[3])) do keys[#keys + 1] = ARGV[1] .. 'v:' .. n end
return redis.call('DEL', unpack(keys))
"""

# KEYS: meta, blob of each version. ARGV: the version numbers. Returns how many existed.
_LUA_DELETE_VERSIONS = """
local removed = 0
for i, n in ipairs(ARGV) do
  removed = removed + redis.call('HDEL', KEYS[1], n)
  redis.call('DEL', KEYS[i + 1])
end
return removed
"""

# KEYS: names. ARGV: name, new id ('' to release), expected id.
# Sets (or removes) the name only if it still maps to the expected id. Returns 1 or 0.
_LUA_SWAP_NAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


# -- URLs -------------------------------------------------------------------------------


@dataclass
class RedisURL:
    """A parsed store URL: where Redis is, how to reach it, and this store's own options."""

    cluster: bool
    tls: bool
    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None
    db: int = 0
    #: Query arguments for redis-py, as given.
    query: list[tuple[str, str]] = field(default_factory=list)
    prefix: str = DEFAULT_PREFIX
    retries: int = DEFAULT_RETRIES

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
            raise UsageError(f"{redact(url)}: not a Redis URL (redis://, rediss://, redis+cluster://, rediss+cluster://)")
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, at, hosts = netloc.rpartition("@")
        parsed = cls(cluster=scheme.endswith("+cluster"), tls=scheme.startswith("rediss"), nodes=[])
        if at:
            user, colon, password = userinfo.partition(":")
            parsed.username = unquote(user) or None
            parsed.password = unquote(password) if colon else None
        parsed.nodes = [_host_port(url, part) for part in hosts.split(",")] if hosts else []
        if not parsed.nodes:
            raise UsageError(f"{redact(url)}: no host")
        if len(parsed.nodes) > 1 and not parsed.cluster:
            raise UsageError(f"{redact(url)}: several hosts are for a cluster: use {scheme}+cluster://")
        if path.strip("/"):
            try:
                parsed.db = int(path.strip("/"))
            except ValueError:
                raise UsageError(f"{redact(url)}: the path must be a database number") from None
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "prefix":
                if not _PREFIX_RE.match(value):
                    raise UsageError(f"{redact(url)}: prefix {value!r}: use letters, digits, '.', '_', ':' or '-'")
                parsed.prefix = value
            elif name == "retries":
                if not value.isdigit():
                    raise UsageError(f"{redact(url)}: retries must be a whole number, not {value!r}")
                parsed.retries = int(value)
            elif name == "db":
                parsed.db = _query_int(url, name, value)
            elif name == "password":
                parsed.password = value
            elif name in _CONNECTION_ARGUMENTS:
                parsed.query.append((name, value))
            else:
                raise UsageError(f"{redact(url)}: unknown option {name!r}")
        if parsed.cluster and parsed.db != 0:
            raise UsageError(f"{redact(url)}: a Redis Cluster has database 0 only")
        return parsed

    def _userinfo(self) -> str:
        if self.username is None and self.password is None:
            return ""
        user = quote(self.username or "", safe="")
        return f"{user}:{quote(self.password, safe='')}@" if self.password is not None else f"{user}@"

    def redis_py_url(self) -> str:
        """A URL redis-py's ``from_url`` takes, for the first node (with the password)."""
        host, port = self.nodes[0]
        query = f"?{urlencode(self.query)}" if self.query else ""
        return f"{'rediss' if self.tls else 'redis'}://{self._userinfo()}{_join_host(host)}:{port}/{self.db}{query}"

    def public(self) -> str:
        """The URL without its password: what messages name."""
        scheme = ("rediss" if self.tls else "redis") + ("+cluster" if self.cluster else "")
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        hosts = ",".join(f"{_join_host(h)}:{p}" for h, p in self.nodes)
        path = "" if self.cluster else f"/{self.db}"
        options = [(k, v) for k, v in self.query if k not in ("ssl_password",)]
        if self.prefix != DEFAULT_PREFIX:
            options.append(("prefix", self.prefix))
        query = f"?{urlencode(options, safe='/')}" if options else ""
        return f"{scheme}://{user}{hosts}{path}{query}"


def _host_port(url: str, part: str) -> tuple[str, int]:
    if part.startswith("["):  # [::1]:6379
        host, _, port = part[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = part.partition(":")
    if not host:
        raise UsageError(f"{redact(url)}: missing host in {part!r}")
    if not port:
        return host, _DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{redact(url)}: bad port in {part!r}")
    return host, int(port)


def _join_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _query_int(url: str, name: str, value: str) -> int:
    if not value.isdigit():
        raise UsageError(f"{redact(url)}: {name} must be a whole number, not {value!r}")
    return int(value)


def redact(url: str) -> str:
    """``url`` without the password of its user part or its ``password=`` argument."""
    url = re.sub(r"(://[^/@?]*?):[^/@?]*@", r"\1@", url)
    return re.sub(r"([?&](?:ssl_)?password=)[^&]*", r"\1***", url)


# -- the store --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scripts:
    write_version: Any
    replace_version: Any
    update: Any
    describe: Any
    delete_session: Any
    delete_versions: Any
    swap_name: Any


class RedisStore(Store):
    """Sessions in Redis or a Redis Cluster; see the module docstring for the key layout."""

    def __init__(self, url: str) -> None:
        self._url = RedisURL.parse(url)
        self.location = self._url.public()
        self.prefix = self._url.prefix
        self._retry = Retry(
            ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE), self._url.retries, supported_errors=_TRANSIENT
        )
        self._lock = threading.Lock()
        self._client: redis.Redis | RedisCluster | None = None
        self._scripts: _Scripts | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<RedisStore {self.location}>"

    # -- keys ---------------------------------------------------------------------------

    @property
    def names_key(self) -> str:
        return f"{self.prefix}:names"

    @property
    def channel(self) -> str:
        """The pub/sub channel version notices are published on."""
        return f"{self.prefix}:versions"

    def _session_prefix(self, session_id: str) -> str:
        if not valid_session_id(session_id):
            raise StoreError(f"{self.location}: a session id that is not one was read (damaged store)")
        return f"{self.prefix}:{{{session_id}}}:"

    def _key(self, session_id: str, what: str) -> str:
        return self._session_prefix(session_id) + what

    def _blob_key(self, session_id: str, version: int) -> str:
        return self._key(session_id, f"v:{version}")

    def session_keys(self, info: SessionInfo) -> list[str]:
        """Every key the session has now: record, head, meta, events and one blob per version."""
        fixed = [self._key(info.id, what) for what in ("record", "head", "meta", "events")]
        return fixed + [self._blob_key(info.id, v.version) for v in self.versions(info)]

    # -- the client, made on first use ----------------------------------------------------

    @property
    def client(self) -> redis.Redis | RedisCluster:
        """The redis-py client (made on first use; a cluster client connects as it is made)."""
        return self._call("connect", self._connected)[0]

    def _connected(self) -> tuple[redis.Redis | RedisCluster, _Scripts]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.location}: the store is closed")
            if self._client is None or self._scripts is None:
                client = self._make_client()
                self._scripts = _Scripts(
                    write_version=client.register_script(_LUA_WRITE_VERSION),
                    replace_version=client.register_script(_LUA_REPLACE_VERSION),
                    update=client.register_script(_LUA_UPDATE),
                    describe=client.register_script(_LUA_DESCRIBE),
                    delete_session=client.register_script(_LUA_DELETE_SESSION),
                    delete_versions=client.register_script(_LUA_DELETE_VERSIONS),
                    swap_name=client.register_script(_LUA_SWAP_NAME),
                )
                self._client = client
            return self._client, self._scripts

    def _make_client(self) -> redis.Redis | RedisCluster:
        # Retries are the store's (whole operations, with backoff), not the client's.
        options: dict[str, Any] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT,
        }
        url = self._url.redis_py_url()  # query arguments in the URL win over these defaults
        try:
            if not self._url.cluster:
                pool = redis.ConnectionPool.from_url(url, retry=Retry(NoBackoff(), 0), **options)
                return redis.Redis(connection_pool=pool)
            others = [ClusterNode(host, port) for host, port in self._url.nodes[1:]]
            return RedisCluster(url=url, startup_nodes=others, retry=Retry(NoBackoff(), 0), **options)
        except ValueError as exc:  # a query argument redis-py cannot parse
            raise UsageError(f"{self.location}: {exc}") from None

    # -- calling Redis: retries and error translation -------------------------------------

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()``, retried after transient errors; redis-py errors become store errors."""
        try:
            return self._retry.call_with_retry(operation, self._failed, is_retryable=_is_transient)
        except (AuthenticationError, AuthorizationError, NoPermissionError) as exc:
            raise StoreError(f"{self.location}: {what}: access denied ({_message(exc)})") from None
        except _TRANSIENT as exc:
            raise StoreUnavailableError(
                f"{self.location}: {what}: Redis unavailable after {self._url.retries + 1} attempts ({_message(exc)})"
            ) from None
        except OutOfMemoryError as exc:
            raise StoreError(f"{self.location}: {what}: Redis is out of memory ({_message(exc)})") from None
        except RedisError as exc:
            raise StoreError(f"{self.location}: {what} failed: {_message(exc)}") from None

    def _failed(self, error: Exception) -> None:
        log.debug("%s: %s; retrying", self.location, _message(error))

    def _run(self, what: str, operation: Callable[[redis.Redis | RedisCluster, _Scripts], T]) -> T:
        """:meth:`_call` with the client and scripts made on first use, inside the retries."""
        return self._call(what, lambda: operation(*self._connected()))

    # -- reading sessions -------------------------------------------------------------------

    def _describe(self, session_id: str) -> SessionInfo | None:
        """The session with this id described by its latest version, or None."""

        def describe(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(session_id, what) for what in ("record", "head", "meta")]
            return scripts.describe(keys=keys, client=client)

        found = self._run(f"reading session {session_id}", describe)
        if not found:
            return None
        record, latest = found
        info = SessionInfo.from_dict(_json(record, f"session {session_id}"))
        if info.id != session_id:
            raise StoreError(f"{self.location}: damaged record of session {session_id} (it names another session)")
        return info.with_head(VersionInfo.from_dict(_json(latest, f"session {session_id}")) if latest else None)

    def _id_for_name(self, name: str) -> str | None:
        value = self._run(f"looking up {name!r}", lambda client, _: client.hget(self.names_key, name))
        session_id = value.decode("ascii", "replace") if value else None
        return session_id if valid_session_id(session_id) else None

    def find(self, ref: str) -> SessionInfo | None:
        if not ref:
            return None
        session_id = self._id_for_name(ref)
        if session_id is not None:
            info = self._describe(session_id)
            if info is not None:
                return info
            self._forget_stale(ref, session_id)
        if _ID_RE.match(ref):
            return self._describe(ref)
        return None

    def list(self, tags: dict[str, str] | None = None) -> list[SessionInfo]:
        index = self._run("listing sessions", lambda client, _: client.hgetall(self.names_key))
        sessions = []
        for raw_name, raw_id in index.items():
            name, session_id = raw_name.decode("utf-8", "replace"), raw_id.decode("ascii", "replace")
            if not valid_session_id(session_id):
                continue  # a damaged index entry does not hide the others
            try:
                info = self._describe(session_id)
            except StoreUnavailableError:
                raise
            except StoreError:
                continue  # a damaged session does not hide the others; `show` names it
            if info is None:
                self._forget_stale(name, session_id)
            elif info.matches(tags or {}):
                sessions.append(info)
        return sorted(sessions, key=lambda s: s.name)

    def _forget_stale(self, name: str, session_id: str) -> None:
        """Remove a name whose session record is gone (expired), and what is left of the session."""
        if self._swap_name(name, "", session_id):
            log.info("%s: session %r (%s) expired; name released", self.location, name, session_id)
            self._delete_keys(session_id)

    def _swap_name(self, name: str, new_id: str, expected_id: str) -> bool:
        def swap(client: Any, scripts: _Scripts) -> Any:
            return scripts.swap_name(keys=[self.names_key], args=[name, new_id, expected_id], client=client)

        return bool(self._run(f"{'claiming' if new_id else 'releasing'} {name!r}", swap))

    # -- writing sessions -------------------------------------------------------------------

    def create(self, name: str, *, description: str = "", tags: dict[str, str] | None = None) -> SessionInfo:
        check_name(name)
        now = time.time()
        info = SessionInfo(new_session_id(), name, description, dict(tags or {}), now, now)
        record_key = self._key(info.id, "record")
        record = json.dumps(info.record(), sort_keys=True)
        # The record first: a name never points at a session without one, except an expired session.
        self._run(f"creating {name!r}", lambda client, _: client.set(record_key, record))
        try:
            if self._claim_name(name, info.id):
                return info
        except BaseException:
            self._delete_keys(info.id)
            raise
        self._delete_keys(info.id)
        raise SessionExistsError(f"a session named {name!r} exists already")

    def _claim_name(self, name: str, session_id: str) -> bool:
        """Point ``name`` at ``session_id``: True if it was free or stale, False if a live session owns it."""
        for _ in range(5):
            if self._run(f"claiming {name!r}", lambda client, _: client.hsetnx(self.names_key, name, session_id)):
                return True
            owner = self._id_for_name(name)
            if owner == session_id:
                return True  # our claim landed but its reply was lost, then it was retried
            if owner is None:
                continue  # released meanwhile: try again
            owner_record = self._key(owner, "record")
            if self._run(f"reading session {owner}", lambda client, _: client.exists(owner_record)):
                return False
            if self._swap_name(name, session_id, owner):  # the owner expired: take the name over
                log.info("%s: session %r (%s) expired; name taken over", self.location, name, owner)
                self._delete_keys(owner)
                return True
        raise StoreError(f"{self.location}: could not claim {name!r}: too many concurrent claims")

    def update(self, info: SessionInfo) -> SessionInfo:
        info.updated_at = time.time()
        record = json.dumps(info.record(), sort_keys=True)

        def update(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(info.id, "record")]
            return scripts.update(keys=keys, args=[record, self._session_prefix(info.id)], client=client)

        if not self._run(f"updating {info.name!r}", update):
            raise SessionNotFoundError(info.name)
        return info

    def delete(self, info: SessionInfo) -> None:
        # The name first: once it is released, no reader finds the session by name while it goes.
        self._swap_name(info.name, "", info.id)
        self._delete_keys(info.id)

    def _delete_keys(self, session_id: str) -> None:
        def delete(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(session_id, what) for what in ("record", "head", "meta", "events")]
            return scripts.delete_session(keys=keys, args=[self._session_prefix(session_id)], client=client)

        self._run(f"deleting session {session_id}", delete)

    # -- versions ---------------------------------------------------------------------------

    def _stored_bytes(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> str:
        """Set ``version.stored_bytes`` (and ``blob_bytes``); the metadata JSON as stored.

        What Redis holds for a version: the blob and its key name, the metadata JSON and
        its field name, and the stream entry. The JSON holds the figure itself, so it is
        computed until it no longer changes the JSON's length.
        """
        version.blob_bytes = len(blob)
        fixed = (
            len(blob)
            + len(self._blob_key(info.id, version.version))
            + len(str(version.version))
            + sum(len(k) + len(v) for k, v in _event_fields(version).items())
            + STREAM_ENTRY_OVERHEAD
        )
        while True:  # converges in two or three rounds: only the figure's digit count can change
            meta = json.dumps(version.as_dict(), sort_keys=True)
            total = fixed + len(meta.encode())
            if total == version.stored_bytes:
                return meta
            version.stored_bytes = total

    def write_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        blob = bytes(blob)
        if not version.created_at:
            version.created_at = time.time()
        meta = self._stored_bytes(info, version, blob)
        fields = _event_fields(version)
        n = version.version

        def write(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(info.id, what) for what in ("record", "head", "meta")]
            keys += [self._blob_key(info.id, n), self._key(info.id, "events")]
            args = [n, meta, blob, self._session_prefix(info.id), fields["kind"], fields["created_at"],
                    fields["blob_bytes"], EVENTS_MAXLEN]  # fmt: skip
            return scripts.write_version(keys=keys, args=args, client=client)

        outcome = self._run(f"writing version {n} of {info.name!r}", write)
        if outcome == -1:
            raise ConflictError(info.name, n)
        if outcome == -2:
            raise SessionNotFoundError(info.name)
        self._announce(info, version)
        return version

    def _announce(self, info: SessionInfo, version: VersionInfo) -> None:
        """Publish the notice of a version that has landed; a failure here loses the notice, not the version."""
        notice = json.dumps(
            {"session": info.id, "name": info.name, "version": version.version, "kind": version.kind,
             "created_at": version.created_at}  # fmt: skip
        )
        try:
            self._run("publishing a version notice", lambda client, _: client.publish(self.channel, notice))
        except StoreError as exc:
            log.warning("%s: version %d of %r is stored, but its notice was not published: %s",
                        self.location, version.version, info.name, exc)  # fmt: skip

    def replace_version(self, info: SessionInfo, version: VersionInfo, blob: bytes) -> VersionInfo:
        blob = bytes(blob)
        meta = self._stored_bytes(info, version, blob)
        n = version.version

        def replace(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(info.id, "record"), self._key(info.id, "meta"), self._blob_key(info.id, n)]
            return scripts.replace_version(keys=keys, args=[n, meta, blob, self._session_prefix(info.id)], client=client)

        if self._run(f"replacing version {n} of {info.name!r}", replace) == -3:
            raise VersionNotFoundError(f"session {info.name!r} has no version {n}")
        return version

    def read_version(self, info: SessionInfo, version: int) -> bytes:
        key = self._blob_key(info.id, version)
        blob = self._run(f"reading version {version} of {info.name!r}", lambda client, _: client.get(key))
        if blob is None:
            raise VersionNotFoundError(f"session {info.name!r} has no version {version}")
        return bytes(blob)

    def versions(self, info: SessionInfo) -> list[VersionInfo]:
        key = self._key(info.id, "meta")
        entries = self._run(f"listing versions of {info.name!r}", lambda client, _: client.hgetall(key))
        found = [VersionInfo.from_dict(_json(raw, f"version {n.decode()} of {info.name!r}")) for n, raw in entries.items()]
        return sorted(found, key=lambda v: v.version)

    def delete_versions(self, info: SessionInfo, versions: list[int]) -> None:
        numbers = sorted(set(int(n) for n in versions))
        if not numbers:
            return

        def delete(client: Any, scripts: _Scripts) -> Any:
            keys = [self._key(info.id, "meta")] + [self._blob_key(info.id, n) for n in numbers]
            return scripts.delete_versions(keys=keys, args=numbers, client=client)

        self._run(f"deleting versions of {info.name!r}", delete)

    def version_location(self, info: SessionInfo, version: int) -> str:
        return f"{self.location} key {self._blob_key(info.id, version)}"

    # -- notices ----------------------------------------------------------------------------

    def subscribe(self) -> VersionNotices:
        """The notices of versions written from now on (by any client of this store), as dicts.

        Pub/sub keeps nothing: a notice published while the subscriber's connection is
        down is lost (the subscription is renewed when it reconnects); the events
        stream of each session (:meth:`events`) is the durable record.
        """

        def subscribe(client: Any, _: _Scripts) -> Any:
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                _wait_subscribed(pubsub)
            except BaseException:
                pubsub.close()
                raise
            return pubsub

        return VersionNotices(self, self._run(f"subscribing to {self.channel}", subscribe))

    def events(self, info: SessionInfo) -> list[dict[str, str]]:
        """The entries of the session's events stream, oldest first (at most about 1000)."""
        key = self._key(info.id, "events")
        entries = self._run(f"reading the events of {info.name!r}", lambda client, _: client.xrange(key))
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            client, self._client, self._scripts, self._closed = self._client, None, None, True
        if client is not None:
            try:
                client.close()
            except (RedisError, RedisClusterException, OSError):
                pass


class VersionNotices:
    """Version notices as they are published: a context manager and an iterator of dicts.

    Made by :meth:`RedisStore.subscribe`; use it from one thread at a time (``close``
    may come from any thread)::

        with store.subscribe() as notices:
            for notice in notices:          # blocks until the next notice
                print(notice["name"], notice["version"])
            notice = notices.get(timeout=5) # or poll: a dict, or None after 5 s
    """

    #: Seconds each wait for a message lasts, so that close() from another thread takes effect.
    SLICE = 0.1

    def __init__(self, store: RedisStore, pubsub: Any) -> None:
        self._store = store
        self._pubsub = pubsub
        self._lock = threading.Lock()
        self._closed = False

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next notice, or None once ``timeout`` seconds have passed (None: wait for ever) or when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closed:
                    return None
                message = self._store._call(f"reading {self._store.channel}", self._next_message)
            if message is not None:
                notice = _notice(message)
                if notice is not None:
                    return notice
            elif deadline is not None and time.monotonic() >= deadline:
                return None

    def _next_message(self) -> Any:
        return self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self.SLICE)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            notice = self.get()
            if notice is None:
                return
            yield notice

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._pubsub.close()
            except (RedisError, RedisClusterException, OSError):
                pass

    def __enter__(self) -> VersionNotices:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- helpers ------------------------------------------------------------------------------


def _is_transient(error: Exception) -> bool:
    """Whether trying again may help: not when the server refused our credentials."""
    return not isinstance(error, (AuthenticationError, AuthorizationError))


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return redact(text)


def _json(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{what}: damaged metadata ({exc})") from None
    if not isinstance(data, dict):
        raise StoreError(f"{what}: damaged metadata (not an object)")
    return data


def _event_fields(version: VersionInfo) -> dict[str, str]:
    """The fields of a version's entry in the events stream."""
    return {
        "version": str(version.version),
        "kind": version.kind,
        "created_at": repr(float(version.created_at)),
        "blob_bytes": str(version.blob_bytes),
    }


def _wait_subscribed(pubsub: Any, timeout: float = 5.0) -> None:
    """Read the server's confirmation, so notices published from now on reach ``pubsub``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=False, timeout=0.1)
        if message is not None and message.get("type") in ("subscribe", b"subscribe"):
            return
    raise RedisTimeoutError("no confirmation of SUBSCRIBE")


def _notice(message: dict[str, Any]) -> dict[str, Any] | None:
    if message.get("type") not in ("message", b"message"):
        return None
    try:
        notice = json.loads(message["data"])
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring a malformed version notice: %r", message.get("data"))
        return None
    return notice if isinstance(notice, dict) else None
