"""Who may ask what: peer credentials on the Unix socket, API keys on the TCP listener.

Every connection hypercorn accepts is described to the application in the ASGI scope
under :data:`CONNECTION` (set by the server, :mod:`psp_cdp.daemon.server`, never
from anything the client sends): its transport and, on the Unix socket, the peer's
credentials (``SO_PEERCRED``: pid, uid, gid; and its supplementary groups,
``SO_PEERGROUPS``). :meth:`Guard.admit` turns that and the request into an
:class:`Access`; :meth:`Guard.allow` checks the route's scopes.

**The Unix socket** needs no key: its file mode (0660, in a 0700 or 0750 directory)
decides who can connect. On top of that, a connection from a uid other than the
daemon's own or root is refused (403 to each of its requests) unless the socket's
group is the peer's group or one of its supplementary groups: a socket file made
world-writable by mistake, or one passed on to another process, does not open the
daemon to everyone. Where the platform gives no peer credentials, the file
permissions alone decide. Each Unix connection's credentials are logged (debug) and
handed to handlers as :attr:`Access.peer`.

**The TCP listener** (TLS 1.3 only) needs ``Authorization: Bearer <token>`` on every
request but ``GET /v1/health``: none, or a token that is malformed, unknown or
revoked, is answered 401 with ``WWW-Authenticate: Bearer``; a valid key without the
route's scopes, 403. ``/v1/version`` and ``/v1/openapi.json`` take any valid key.
Each key may make at most ``rate`` requests a second (a moving one-second window,
:data:`DEFAULT_RATE` unless the daemon is told otherwise; ``0``: no limit); more are
answered 429 with ``Retry-After``, before anything else is done for them.

**Tenants.** A request through a key other than an ``admin`` key is *restricted*:
it sees only its tenant's sessions (tagged ``psp.tenant: <tenant>``, :data:`TENANT_TAG`;
sessions it creates get that tag, and it may not set or change that tag), browsers
and watches; anything else is answered as if it did not exist (404, never 403, so
names do not leak): the same message as for a name nobody has, without the "similar
names" hint, after the same single lookup. ``admin`` keys, and requests over the Unix
socket, see everything.

Session names stay global, as in the store (and as the CLI and the Unix socket see
them): creating a name another tenant holds is 409, with a message that names neither
the session's id nor its tenant. That one answer tells a key with ``sessions:write``
that *some* session has that name; it reveals nothing else (not its tenant, id,
tags or content), and nothing at all to read-only keys. Names per tenant would need
the daemon to rewrite names in every path, answer and event, and would make the
same session carry different names over TCP and over the Unix socket; tenants that
want no shared namespace give their sessions a prefix of their own (``teamA-login``).

A subscription to ``/v1/events`` made with a key ends (code 1008) soon after the key
is revoked; every other request is checked when it arrives.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..errors import StoreError
from .apikeys import ApiKey, ApiKeyFile
from .app import ApiError, Route

__all__ = ["Access", "CONNECTION", "Connection", "DEFAULT_RATE", "Guard", "LOCAL", "Peer", "TENANT_TAG", "peer_of"]

log = logging.getLogger("psp_cdp.daemon")

#: The ASGI scope key the server describes each connection under.
CONNECTION = "psp.connection"
#: The reserved session tag naming the tenant a session belongs to.
TENANT_TAG = "psp.tenant"
#: getsockopt option for a Unix peer's supplementary groups (Linux 4.13+; 59 where the
#: architecture uses the generic socket option numbers).
SO_PEERGROUPS = getattr(
    socket, "SO_PEERGROUPS",
    59 if sys.platform.startswith("linux") and platform.machine() in (
        "x86_64", "i386", "i686", "aarch64", "armv7l", "armv6l", "riscv64", "ppc64le", "ppc64", "s390x",
    ) else None,
)
_CHALLENGE = 'Bearer realm="psp"'
#: Requests a second one API key may make over TCP, unless the daemon is told otherwise.
DEFAULT_RATE = 100.0


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a Unix connection, when it connected."""

    pid: int
    uid: int
    gid: int
    #: Supplementary groups (``None``: not read, or not available).
    groups: tuple[int, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "uid": self.uid, "gid": self.gid, "groups": list(self.groups) if self.groups is not None else None}


@dataclass(frozen=True)
class Connection:
    """What the server knows of a connection: ``"unix"`` or ``"tcp"``, and the peer (Unix)."""

    transport: str
    peer: Peer | None = None


def _groups(sock: socket.socket, pid: int) -> tuple[int, ...] | None:
    if SO_PEERGROUPS is not None:
        for size in (64, 65536):
            try:
                raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * size)
            except OSError:
                continue  # ERANGE: more groups than that; or not supported
            return struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    try:  # an older kernel: what the process has now
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except (OSError, ValueError):
        pass
    return None


def peer_of(sock: socket.socket, *, own_uid: int | None = None) -> Peer | None:
    """The credentials of a Unix socket's peer (``SO_PEERCRED``); ``None`` where unavailable.

    Supplementary groups are read only for a peer that is neither ``own_uid`` nor root
    (the only peers they decide anything for).
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
    except (OSError, struct.error):
        return None
    own = os.geteuid() if own_uid is None else own_uid
    groups = None if uid in (own, 0) else _groups(sock, pid)
    return Peer(pid, uid, gid, groups)


@dataclass(frozen=True)
class Access:
    """Who is asking, as handlers see it (:attr:`Request.access`)."""

    #: ``"unix"`` (the Unix socket), ``"tcp"`` (the TLS listener) or ``"local"`` (in-process ASGI).
    transport: str
    key: ApiKey | None = None
    peer: Peer | None = None

    @property
    def restricted(self) -> bool:
        """Whether tenants apply: over TCP, with any key but an ``admin`` one (or none)."""
        return self.transport == "tcp" and not (self.key is not None and self.key.admin)

    @property
    def tenant(self) -> str | None:
        """The tenant things made by this request belong to (``None``: no tenant)."""
        return self.key.tenant if self.key is not None else None

    def sees(self, tenant: str | None) -> bool:
        """Whether something of ``tenant`` (``None``: of no tenant) is visible to this request."""
        if not self.restricted:
            return True
        return self.key is not None and tenant is not None and tenant == self.key.tenant

    def sees_tags(self, tags: dict[str, str] | None) -> bool:
        return self.sees((tags or {}).get(TENANT_TAG))


#: Access of an in-process caller of the ASGI app (no server, no listener): unrestricted.
LOCAL = Access("local")


class Guard:
    """Admits requests: peer credentials on the Unix socket, bearer tokens over TCP.

    ``keys`` is the API keys file when a TCP listener is configured (``None``: no TCP
    listener, and a request the server did not describe is taken as in-process).
    ``socket_gid`` is the Unix socket's group (``None``: the daemon's own group).
    ``rate`` is the requests a second each key may make (0: no limit).
    """

    def __init__(self, keys: ApiKeyFile | None = None, *, socket_gid: int | None = None, uid: int | None = None,
                 rate: float = DEFAULT_RATE) -> None:
        self.keys = keys
        self.uid = os.geteuid() if uid is None else uid
        self.socket_gid = os.getegid() if socket_gid is None else socket_gid
        self.refused = 0
        self.throttled = 0
        self._rate = RateLimitItemPerSecond(max(1, round(rate))) if rate > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self._rate is not None else None

    # -- who ---------------------------------------------------------------------------

    def admit(self, scope: dict[str, Any], route: Route | None) -> Access:
        """The :class:`Access` of a request; 401 or 403 (:class:`ApiError`) if it is not admitted.

        ``route`` is the matched route, or ``None`` if the path matched none (a request
        over TCP is then answered 401 before 404, when it has no valid key).
        """
        connection = scope.get(CONNECTION)
        if isinstance(connection, Connection) and connection.transport == "unix":
            self._check_peer(connection.peer)
            return Access("unix", peer=connection.peer)
        if connection is None and self.keys is None:
            return LOCAL
        # Over TCP; or not described by the server while a TCP listener exists: a key is required.
        if route is not None and _public(route):
            return Access("tcp")
        key = self._key(scope)
        self._throttle(key)
        return Access("tcp", key=key)

    def _throttle(self, key: ApiKey) -> None:
        """429 when ``key`` has made its ``rate`` requests in the last second already."""
        if self._limiter is None or self._rate is None or self._limiter.hit(self._rate, key.id):
            return
        self.throttled += 1
        reset = self._limiter.get_window_stats(self._rate, key.id).reset_time
        wait = max(1, int(reset - time.time() + 0.999))
        raise ApiError(429, f"too many requests with this API key: at most {self._rate.amount} a second",
                       {"retry-after": str(wait)})

    def _check_peer(self, peer: Peer | None) -> None:
        if peer is None or peer.uid in (self.uid, 0):
            return
        if peer.gid == self.socket_gid or (peer.groups is not None and self.socket_gid in peer.groups):
            return
        self.refused += 1
        log.warning("refused a request on the Unix socket from pid %d uid %d gid %d: not the daemon's user, "
                    "root, or in the socket's group %d", peer.pid, peer.uid, peer.gid, self.socket_gid)
        raise ApiError(
            403,
            f"uid {peer.uid} may not use this daemon: it is neither the daemon's user (uid {self.uid}) "
            f"nor root, nor in the socket's group (gid {self.socket_gid})",
        )

    def _key(self, scope: dict[str, Any]) -> ApiKey:
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        if not values:
            raise ApiError(401, "an API key is required over TCP: send Authorization: Bearer <token>",
                           {"www-authenticate": _CHALLENGE})
        invalid = ApiError(401, "the API key is not valid (malformed, unknown or revoked)",
                           {"www-authenticate": f'{_CHALLENGE}, error="invalid_token"'})
        if len(values) > 1:
            raise invalid
        scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise invalid
        if self.keys is None:
            raise invalid  # a TCP connection with no keys configured: never made by run_daemon
        try:
            key = self.keys.verify(token.strip())
        except StoreError as exc:
            log.error("cannot read the API keys: %s", exc)
            raise ApiError(503, "the daemon cannot read its API keys; see its log") from None
        if key is None:
            raise invalid
        return key

    # -- what ---------------------------------------------------------------------------

    def allow(self, access: Access, route: Route) -> None:
        """403 unless the request's key holds every scope the route needs (TCP only)."""
        if access.transport != "tcp" or _public(route):
            return
        key = access.key
        if key is None:  # admit() gives every non-public TCP request a key; never reached
            raise ApiError(401, "an API key is required", {"www-authenticate": _CHALLENGE})
        missing = [s for s in route.scopes if not key.allows(s)]
        if missing:
            raise ApiError(
                403, f"this API key lacks the scope {' and '.join(missing)} needed for {route.method} {route.path}"
            )


def _public(route: Route) -> bool:
    return route.scopes is None
