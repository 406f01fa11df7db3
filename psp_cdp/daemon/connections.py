"""Serving connections: hypercorn's HTTP/1.1 and WebSocket protocol over the daemon's own accept loop.

hypercorn speaks the protocol (one :class:`hypercorn.trio.tcp_server.TCPServer` per
connection); this module accepts the connections and bounds what they may hold:

* **A cap on connections** (:attr:`Limits.connections`, default 4,096). One more is
  answered ``503`` with ``Retry-After`` and closed (on the Unix socket; over TLS it is
  closed before the handshake), and the daemon logs one line a minute while it refuses.
* **Descriptors.** The daemon's soft ``RLIMIT_NOFILE`` is raised to its hard limit at
  start, and the cap is lowered to fit under it (with room for browsers and stores), so
  the cap is met before the descriptors run out. If they run out anyway (``EMFILE``,
  ``ENFILE``, ``ENOBUFS``, ``ENOMEM`` at accept), accepting pauses 100 ms and one line a
  minute is logged; never a traceback per attempt.
* **Idle and hung-up connections.** A connection that sends no complete request head
  within :attr:`Limits.idle` seconds (its first one, or the next on a keep-alive
  connection) is closed; one whose peer has hung up is closed at once, not after the
  keep-alive wait. (Bodies have their own deadline, in :mod:`psp_cdp.daemon.app`.)
* **Each connection's errors stay with it.** hypercorn runs every connection in one
  nursery, so an error its protocol code raises for one connection (a client that
  hangs up mid-body can make it send twice at once: ``trio.BusyResourceError``; see
  pgjones/hypercorn#203) would stop all of them; here it ends that connection only.
* **What each connection is.** hypercorn gives the application no access to the
  socket (the scope has ``client`` and ``server`` addresses only, ``None`` on a Unix
  socket), so the transport and the peer's credentials are read here, from the
  accepted socket, and put in each request's scope (:data:`~psp_cdp.daemon.auth.CONNECTION`),
  with :data:`~psp_cdp.daemon.app.ABORT`: a function that closes the connection at once, for a handler
  whose peer stopped reading (a slow WebSocket subscriber).
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from .app import ABORT
from .auth import CONNECTION, Connection, peer_of

__all__ = ["DEFAULT_CONNECTIONS", "REQUEST_SECONDS", "Limits", "raise_descriptor_limit", "serve"]

log = logging.getLogger("psp_cdp.daemon")

#: Connections served at once, unless told otherwise.
DEFAULT_CONNECTIONS = 4096
#: Seconds a connection may take to send a request's head, unless told otherwise.
REQUEST_SECONDS = 30.0
#: Descriptors kept for everything but client connections: browsers, stores, files, threads.
_RESERVED_FDS = 256
#: How often a condition that repeats (refusing, descriptors out) is logged.
_LOG_EVERY = 60.0
#: errno values of accept() that mean "no resources now", not "this connection failed".
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: errno values of accept() that concern only the connection being accepted.
_CONNECTION_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ECONNRESET}
_REFUSAL_BODY = b'{"message": "the daemon is serving as many connections as it may; try again"}\n'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


@dataclass
class Limits:
    """What connections may hold."""

    #: Connections served at once; one more is refused.
    connections: int = DEFAULT_CONNECTIONS
    #: Seconds a connection may go without sending a complete request head.
    idle: float = REQUEST_SECONDS


def raise_descriptor_limit(wanted: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards its hard limit; how many connections fit (at most ``wanted``)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + _RESERVED_FDS)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the limit on open files: %s", exc)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    fits = max(1, soft - _RESERVED_FDS)
    if fits < wanted:
        log.warning("the limit on open files (%d) allows %d client connections, not %d: raise it (LimitNOFILE=)",
                    soft, fits, wanted)
    return min(wanted, fits)


class _Every:
    """Log a repeating condition once per :data:`_LOG_EVERY` seconds, with how often it happened meanwhile."""

    def __init__(self) -> None:
        self.last = -_LOG_EVERY
        self.count = 0

    def tick(self, message: str, *args: Any) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= _LOG_EVERY:
            log.warning(message + " (%d time(s) since the last such line)", *args, self.count)
            self.last, self.count = now, 0


class _Served(TCPServer):
    """One connection: described to the application, its errors kept to itself, closed when its peer hangs up."""

    def __init__(self, app: Any, config: Config, context: WorkerContext, stream: Any, described: Connection) -> None:
        super().__init__(app, config, context, ConnectionState({}), stream)
        self.described = described

    async def run(self) -> None:
        try:
            await super().run()
        except Exception as exc:
            log.debug("a connection ended with an error: %r", exc)

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone (or the connection broke): no keep-alive wait holds its descriptor.
        await self.idle_task.stop()

    async def abort(self) -> None:
        """Close the connection at once (a send blocked on a peer that stopped reading ends with it)."""
        await trio.aclose_forcefully(self.stream)


class _DescribedApp:
    """hypercorn's app wrapper for one connection: each scope says what the connection is and how to abort it."""

    def __init__(self, app: ASGIWrapper, served: _Served) -> None:
        self.app = app
        self.served = served

    async def __call__(self, scope: dict[str, Any], *args: Any) -> None:
        scope[CONNECTION] = self.served.described
        scope[ABORT] = self.served.abort
        await self.app(scope, *args)


def _describe(sock: socket.socket) -> Connection:
    """What a new connection is: TLS over TCP, or the Unix socket and its peer's credentials."""
    if sock.family == socket.AF_UNIX:
        peer = peer_of(sock)
        if peer is not None:
            log.debug("connection on the Unix socket from pid %d uid %d gid %d", peer.pid, peer.uid, peer.gid)
        return Connection("unix", peer)
    return Connection("tcp")


class _Server:
    def __init__(self, app: Callable[..., Awaitable[None]], config: Config, limits: Limits) -> None:
        self.app = ASGIWrapper(app)  # type: ignore[arg-type]
        self.config = config
        self.limits = limits
        self.context = WorkerContext(None)
        self.active = 0
        self.refused = 0
        self._refusing = _Every()
        self._starved = _Every()

    async def accept_from(self, listener: trio.SocketListener, tls: ssl.SSLContext | None, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._starved.tick("cannot accept connections: %s; trying again every 100 ms", exc.strerror)
                    await trio.sleep(0.1)
                elif exc.errno not in _CONNECTION_GONE:
                    raise
                continue
            if self.active >= self.limits.connections:
                self.refused += 1
                self._refusing.tick("refusing connections: %d are open, the most this daemon serves", self.active)
                nursery.start_soon(self._refuse, stream, tls is None)
                continue
            try:
                described = _describe(stream.socket)
            except OSError as exc:  # not expected; then it must show a key, as over TCP
                log.warning("cannot tell what a new connection is (%s): treating it as one over TCP", exc.strerror)
                described = Connection("tcp")
            served_stream: Any = stream if tls is None else trio.SSLStream(stream, tls, server_side=True,
                                                                           https_compatible=True)
            self.active += 1
            nursery.start_soon(self._serve, served_stream, described)

    async def _serve(self, stream: Any, described: Connection) -> None:
        try:
            served = _Served(self.app, self.config, self.context, stream, described)
            served.app = _DescribedApp(self.app, served)
            await served.run()
        finally:
            self.active -= 1
            await trio.aclose_forcefully(stream)  # hypercorn leaves a stream whose TLS handshake failed open

    @staticmethod
    async def _refuse(stream: trio.SocketStream, plain: bool) -> None:
        if plain:
            with trio.move_on_after(0.5):
                try:
                    await stream.send_all(_REFUSAL)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        await trio.aclose_forcefully(stream)


async def serve(
    app: Callable[..., Awaitable[None]],
    config: Config,
    sockets: list[tuple[socket.socket, ssl.SSLContext | None]],
    *,
    limits: Limits | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on each listening socket (with TLS where a context is given) until ``shutdown_trigger`` returns.

    Then no connection is accepted any more, idle ones are closed, and requests in
    flight have ``config.graceful_timeout`` seconds to finish.
    """
    limits = limits or Limits()
    config.keep_alive_timeout = limits.idle
    server = _Server(app, config, limits)
    listeners = []
    for sock, tls in sockets:
        sock.listen(config.backlog)
        listeners.append((trio.SocketListener(trio.socket.from_stdlib_socket(sock)), tls))
    async with trio.open_nursery() as connections:
        try:
            async with trio.open_nursery() as accepting:
                for listener, tls in listeners:
                    accepting.start_soon(server.accept_from, listener, tls, connections)
                task_status.started()
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
        finally:
            for listener, _ in listeners:
                await trio.aclose_forcefully(listener)
            await server.context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
