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
  changed since its last write, and each recording running is stopped and saved, within
  another such deadline. A second signal stops at once.
* The optional TCP listener (``tcp="HOST:PORT"``): TLS 1.3 only (``tls_cert`` and
  ``tls_key`` are required; there is no plain-text TCP), HTTP/1.1, served by the same
  hypercorn instance as the Unix socket (the TCP socket is its TLS bind, the Unix
  socket its plain one). Every request over it but ``GET /v1/health`` needs an API key
  from the ``api_keys`` file (default :func:`~psp_cdp.daemon.apikeys.default_api_keys_path`),
  read again whenever it changes; each key may make at most ``--rate-limit`` requests
  a second (default :data:`~psp_cdp.daemon.auth.DEFAULT_RATE`; more are answered 429).
  Port 0 takes a free port; the second line printed says which
  (``listening on https://HOST:PORT``).
* Connections: at most ``--max-connections`` at once (default 4,096), each closed after
  ``--request-timeout`` seconds (default 30) without a request's head or, once its head
  came, without its whole body; and at once when its peer hangs up; see
  :mod:`psp_cdp.daemon.connections`.
* Peer credentials: each connection on the Unix socket is described to the
  application with its peer's pid, uid and gid (``SO_PEERCRED``); see
  :mod:`psp_cdp.daemon.auth` for who is refused.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import socket
import ssl
import stat
import sys
from dataclasses import dataclass

import trio
from hypercorn.config import Config

from ..errors import StoreError, UsageError
from ..store import open_store, store_location
from .api import ROUTES, Daemon
from .apikeys import ApiKeyFile
from .app import App
from .auth import DEFAULT_RATE, Guard
from .browsers import Browsers
from .cache import DEFAULT_CACHE_MIB, HotCache
from .connections import DEFAULT_CONNECTIONS, REQUEST_SECONDS, Limits, raise_descriptor_limit, serve
from .events import forward_store_notices
from .recordings import Recordings
from .sessions import DaemonSessions
from .watches import Watches

__all__ = [
    "GRACEFUL_SECONDS", "default_socket_path", "run_daemon", "sd_notify", "Listener", "open_listener",
    "parse_tcp_address", "store_location", "tls_context",
]

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


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` or ``[IPv6]:PORT`` (port 0: any free port)."""
    host, colon, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or int(port) > 65535 or ("[" in host or "]" in host):
        raise UsageError(f"--tcp {text!r}: give HOST:PORT, for instance 127.0.0.1:8443 or [::1]:8443")
    return host, int(port)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The TCP listener's server context: TLS 1.3 only, HTTP/1.1 by ALPN, the certificate chain and key loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except FileNotFoundError as exc:
        raise UsageError(f"--tls-cert/--tls-key: {exc.filename or cert}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: cannot load the certificate and key ({exc})") from None
    try:
        if stat.S_IMODE(os.stat(key).st_mode) & 0o004:
            log.warning("%s: the TLS private key is readable by everyone (chmod 600 or 640 it)", key)
    except OSError:
        pass
    return context


def _tcp_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``host:port`` (hypercorn listens on it)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UsageError(f"--tcp {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _socket_gid(listener: Listener) -> int | None:
    """The group of the Unix socket's file (``None``: no file to ask, the daemon's group counts)."""
    try:
        info = os.stat(listener.path)
    except (OSError, TypeError, ValueError):
        return None
    return info.st_gid if stat.S_ISSOCK(info.st_mode) else None


async def run_daemon(
    store: str | None = None,
    socket_path: str | None = None,
    *,
    graceful: float = GRACEFUL_SECONDS,
    cache_mib: float = DEFAULT_CACHE_MIB,
    tcp: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    api_keys: str | None = None,
    max_connections: int = DEFAULT_CONNECTIONS,
    rate_limit: float = DEFAULT_RATE,
    request_timeout: float = REQUEST_SECONDS,
) -> int:
    """Serve the control API until SIGTERM or SIGINT; the exit status.

    ``cache_mib`` bounds the hot versions cache (0: none). ``tcp`` (``HOST:PORT``) also
    serves it over TCP with TLS 1.3, which needs ``tls_cert`` (a PEM certificate chain)
    and ``tls_key`` (its PEM private key); requests over TCP need an API key from the
    ``api_keys`` file (default: ``api-keys.json`` beside the keyring), each key at most
    ``rate_limit`` requests a second (0: no limit). At most ``max_connections``
    connections are served at once, and each has ``request_timeout`` seconds to send
    a request's head, and as many for its body (:mod:`psp_cdp.daemon.connections`).
    """
    if cache_mib < 0:
        raise UsageError("--cache-mib: give 0 (no cache) or more MiB")
    if max_connections < 1:
        raise UsageError("--max-connections: give 1 or more")
    if rate_limit < 0:
        raise UsageError("--rate-limit: give 0 (no limit) or more requests a second")
    if not 0 < request_timeout <= 3600:
        raise UsageError("--request-timeout: give more than 0 and at most 3600 seconds")
    keys: ApiKeyFile | None = None
    tcp_sock: socket.socket | None = None
    context: ssl.SSLContext | None = None
    if tcp is None:
        given = [name for name, value in (("--tls-cert", tls_cert), ("--tls-key", tls_key), ("--api-keys", api_keys)) if value]
        if given:
            raise UsageError(f"{' and '.join(given)}: only with --tcp HOST:PORT")
    else:
        if not tls_cert or not tls_key:
            raise UsageError("--tcp needs --tls-cert and --tls-key: the TCP listener speaks TLS 1.3 only, never plain HTTP")
        host, port = parse_tcp_address(tcp)
        context = tls_context(tls_cert, tls_key)
        keys = ApiKeyFile(api_keys)
        try:
            count = len(keys.keys())
        except StoreError as exc:
            raise UsageError(f"cannot read the API keys: {exc}") from None
        if not count:
            log.warning("%s holds no API key: every request over TCP but /v1/health is refused until one is "
                        "created (psp keys api-create)", keys.path)
        tcp_sock = _tcp_socket(host, port)
    try:
        sessions = DaemonSessions(open_store(store), HotCache(int(cache_mib * 1024 * 1024)))
    except BaseException:
        if tcp_sock is not None:
            tcp_sock.close()
        raise
    try:
        listener = open_listener(socket_path)
    except BaseException:
        if tcp_sock is not None:
            tcp_sock.close()
        sessions.store.close()
        raise
    guard = Guard(keys, socket_gid=_socket_gid(listener), rate=rate_limit)
    limits = Limits(raise_descriptor_limit(max_connections), idle=request_timeout)
    config = Config()
    # The socket we made (or systemd passed), and with a TCP listener its TLS socket, are served from here.
    sockets: list[tuple[socket.socket, ssl.SSLContext | None]] = [(listener.sock, None)]
    tcp_url = None
    if tcp_sock is not None:
        name = tcp_sock.getsockname()
        tcp_url = f"https://[{name[0]}]:{name[1]}" if tcp_sock.family == socket.AF_INET6 else f"https://{name[0]}:{name[1]}"
        sockets.append((tcp_sock, context))
    config.ssl_handshake_timeout = 10
    config.graceful_timeout = graceful
    config.accesslog = None
    config.errorlog = logging.getLogger("psp_cdp.daemon.http")  # hypercorn's own messages
    config.include_server_header = False
    config.keep_alive_max_requests = 1_000_000  # one client connection may live as long as the client does
    config.websocket_ping_interval = 20
    config.backlog = 4096
    stop = trio.Event()
    forced = False
    serving: trio.Nursery | None = None
    stopping_jobs = trio.CancelScope()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:  # until the very end
        try:
            async with trio.open_nursery() as daemon_nursery:
                daemon = Daemon(sessions, Browsers(daemon_nursery), store_location=store_location(store), keys=keys)
                daemon.watches = Watches(daemon_nursery, sessions, daemon.events)
                daemon.browsers.before_detach.append(daemon.watches.before_detach)
                daemon.recordings = Recordings(daemon_nursery, sessions, daemon.events)
                daemon.browsers.before_detach.append(daemon.recordings.before_detach)
                app = App(ROUTES, daemon, guard=guard, body_seconds=request_timeout)
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
                            stopping_jobs.cancel()

                daemon_nursery.start_soon(on_signals)
                async with trio.open_nursery() as serving:
                    await serving.start(functools.partial(serve, app, config, sockets, limits=limits, shutdown_trigger=stop.wait))
                    print(f"listening on {listener.path}", flush=True)
                    if tcp_url is not None:
                        print(f"listening on {tcp_url}", flush=True)
                        log.info("TCP listener %s: TLS 1.3, API keys from %s", tcp_url, keys.path if keys else "-")
                    sd_notify("READY=1")
                # Each watch writes what changed since its last write, each recording is saved, within the deadline.
                stopping_jobs.deadline = trio.current_time() + graceful
                with stopping_jobs:
                    async with trio.open_nursery() as stopping:
                        stopping.start_soon(daemon.watches.stop_all)
                        stopping.start_soon(daemon.recordings.stop_all)
                daemon_nursery.cancel_scope.cancel()  # detach every browser
        finally:
            listener.remove()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(sessions.store.close)
    return 1 if forced else 0
