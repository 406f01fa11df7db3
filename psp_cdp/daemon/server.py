"""Running the daemon: the socket, hypercorn's trio worker, signals, systemd.

* The socket: ``--socket PATH``, else ``$PSP_SOCKET``, else
  ``$XDG_RUNTIME_DIR/psp/psp.sock``, else ``/run/psp/psp.sock`` (the system service's
  path; a user without ``XDG_RUNTIME_DIR`` gives ``--socket``). A missing directory is
  made 0700 (0750 for ``/run/psp``, whose group may use the socket); the socket is 0660.
  If another daemon answers on the path, this one refuses to start; a socket file
  nobody answers on (left by a daemon that was killed) is replaced.
* systemd socket activation: when ``LISTEN_PID`` is this process and ``LISTEN_FDS`` is
  1 or more, the daemon serves the inherited socket (fd 3) and makes none of its own.
  With ``NOTIFY_SOCKET`` set it reports ``READY=1`` once serving and ``STOPPING=1`` on
  shutdown (``Type=notify``).
* Shutdown: SIGTERM or SIGINT stops accepting connections and lets requests in
  flight finish for up to :data:`GRACEFUL_SECONDS`; a capture in flight writes its
  version (store writes are whole or nothing in any case); then each watch writes what
  changed since its last write, within another such deadline. A second signal stops at once.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import socket
import stat
import sys
from dataclasses import dataclass

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ..errors import UsageError
from ..store import open_store
from .api import ROUTES, Daemon
from .app import App
from .browsers import Browsers
from .cache import DEFAULT_CACHE_MIB, HotCache
from .events import forward_store_notices
from .sessions import DaemonSessions
from .watches import Watches

__all__ = ["GRACEFUL_SECONDS", "default_socket_path", "run_daemon", "sd_notify", "Listener", "open_listener"]

log = logging.getLogger("psp_cdp.daemon")

#: How long requests in flight may take to finish once a shutdown is asked for.
GRACEFUL_SECONDS = 10.0
#: The first file descriptor systemd passes (SD_LISTEN_FDS_START).
_LISTEN_FDS_START = 3
SYSTEM_SOCKET = "/run/psp/psp.sock"


def default_socket_path() -> str:
    """``$PSP_SOCKET``, else ``$XDG_RUNTIME_DIR/psp/psp.sock``, else ``/run/psp/psp.sock``."""
    configured = os.environ.get("PSP_SOCKET")
    if configured:
        return configured
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "psp", "psp.sock")
    return SYSTEM_SOCKET


def sd_notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ...) to systemd's ``NOTIFY_SOCKET``; whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False


@dataclass
class Listener:
    """The listening socket and where it is: a path we made, or one systemd passed."""

    sock: socket.socket
    path: str
    inherited: bool
    removed: bool = False

    def remove(self) -> None:
        """Remove the socket file (ours only, once), so no new client finds it."""
        if self.inherited or self.removed:
            return
        self.removed = True
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        except OSError:
            pass


def _inherited() -> socket.socket | None:
    """The socket systemd passed, if it passed one to this process."""
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return None
    if pid != os.getpid() or count < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for children
    sock = socket.socket(fileno=_LISTEN_FDS_START)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise UsageError("the socket systemd passed is not a Unix stream socket (ListenStream=/path in the .socket unit)")
    os.set_inheritable(sock.fileno(), False)
    return sock


def _answers(path: str) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            return True  # it is there, if busy (EAGAIN: a full backlog)
        return True


def open_listener(path: str | None) -> Listener:
    """The socket to serve: systemd's, else a new one at ``path`` (mode 0660)."""
    inherited = _inherited()
    if inherited is not None:
        name = inherited.getsockname()
        where = name if isinstance(name, str) and name else (path or "the socket systemd passed")
        return Listener(inherited, where, True)
    path = os.path.abspath(path or default_socket_path())
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        mode = 0o750 if directory == os.path.dirname(SYSTEM_SOCKET) else 0o700
        try:
            os.makedirs(directory, mode=mode, exist_ok=True)
            os.chmod(directory, mode)
        except OSError as exc:
            raise UsageError(
                f"cannot create {directory}: {exc.strerror}; give --socket PATH (or set XDG_RUNTIME_DIR)"
            ) from None
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISSOCK(existing.st_mode):
            raise UsageError(f"{path} exists and is not a socket; remove it or give another --socket")
        if _answers(path):
            raise UsageError(f"another daemon is listening on {path}; stop it first, or give another --socket")
        os.unlink(path)  # stale: left by a daemon that did not stop cleanly
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o117)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(previous)
    os.chmod(path, 0o660)
    return Listener(sock, path, False)


def _contain_connection_errors() -> None:
    """Keep one broken connection from ending the server.

    hypercorn's trio worker runs each connection in the server's nursery, so an error
    its protocol code raises for one connection (a client that hangs up mid-body can
    make it send twice at once: trio.BusyResourceError; see pgjones/hypercorn#203)
    would stop every connection. Each connection's errors stay with it here.
    """
    from hypercorn.trio import run as hypercorn_run

    base = hypercorn_run.TCPServer
    if getattr(base, "psp_contained", False):
        return

    class ContainedTCPServer(base):  # type: ignore[misc, valid-type]
        psp_contained = True

        async def run(self) -> None:
            try:
                await super().run()
            except Exception as exc:
                log.debug("a connection ended with an error: %r", exc)

    hypercorn_run.TCPServer = ContainedTCPServer  # type: ignore[misc]


async def run_daemon(
    store: str | None = None,
    socket_path: str | None = None,
    *,
    graceful: float = GRACEFUL_SECONDS,
    cache_mib: float = DEFAULT_CACHE_MIB,
) -> int:
    """Serve the control API until SIGTERM or SIGINT; the exit status.

    ``cache_mib`` bounds the hot versions cache (0: none).
    """
    if cache_mib < 0:
        raise UsageError("--cache-mib: give 0 (no cache) or more MiB")
    sessions = DaemonSessions(open_store(store), HotCache(int(cache_mib * 1024 * 1024)))
    try:
        listener = open_listener(socket_path)
    except BaseException:
        sessions.store.close()
        raise
    _contain_connection_errors()
    config = Config()
    # hypercorn serves the socket we made (or systemd passed) by its descriptor, and owns it from here.
    config.bind = [f"fd://{listener.sock.detach()}"]
    config.graceful_timeout = graceful
    config.accesslog = None
    config.errorlog = logging.getLogger("psp_cdp.daemon.http")  # hypercorn's own messages
    config.include_server_header = False
    config.keep_alive_timeout = 30
    config.keep_alive_max_requests = 1_000_000  # one client connection may live as long as the client does
    config.websocket_ping_interval = 20
    stop = trio.Event()
    forced = False
    serving: trio.Nursery | None = None
    stopping_watches = trio.CancelScope()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:  # until the very end
        try:
            async with trio.open_nursery() as daemon_nursery:
                daemon = Daemon(sessions, Browsers(daemon_nursery))
                daemon.watches = Watches(daemon_nursery, sessions, daemon.events)
                daemon.browsers.before_detach.append(daemon.watches.before_detach)
                app = App(ROUTES, daemon)
                daemon_nursery.start_soon(daemon.events.run, sessions.event_delta)
                daemon_nursery.start_soon(forward_store_notices, daemon.events, sessions)

                async def on_signals() -> None:
                    nonlocal forced
                    async for signum in signals:
                        if not stop.is_set():
                            log.info("%s: stopping; requests in flight have %gs to finish", signal.Signals(signum).name, graceful)
                            sd_notify("STOPPING=1")
                            listener.remove()
                            daemon.events.close()
                            stop.set()
                        else:
                            forced = True
                            print("psp: stopping now", file=sys.stderr, flush=True)
                            if serving is not None:
                                serving.cancel_scope.cancel()
                            stopping_watches.cancel()

                daemon_nursery.start_soon(on_signals)
                async with trio.open_nursery() as serving:
                    await serving.start(functools.partial(serve, app, config, shutdown_trigger=stop.wait))
                    print(f"listening on {listener.path}", flush=True)
                    sd_notify("READY=1")
                # Each watch writes what changed since its last write, within the deadline.
                stopping_watches.deadline = trio.current_time() + graceful
                with stopping_watches:
                    await daemon.watches.stop_all()
                daemon_nursery.cancel_scope.cancel()  # detach every browser
        finally:
            listener.remove()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(sessions.store.close)
    return 1 if forced else 0
