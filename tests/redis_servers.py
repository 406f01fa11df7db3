"""Real Redis servers for the store tests: standalone (plain or TLS) and a three-master cluster.

Every server is a ``/usr/bin/redis-server`` child process on 127.0.0.1, listening on a
free port (found by binding port 0 and closing it; if another process takes the port in
between, the server fails to start and another port is tried). Servers keep nothing on
disk unless asked to (``--save "" --appendonly no``), log to a file in their own
temporary directory, and are stopped when their ``with`` block ends::

    with RedisServer(tmp_dir) as server:        # server.url == "redis://127.0.0.1:PORT/0"
        server.stop(save=True)                  # SHUTDOWN SAVE: the data survives...
        server.start()                          # ...a restart on the same port

    with RedisClusterServers(tmp_dir) as cluster:   # cluster.url == "redis+cluster://h:p,h:p,h:p"
        ...

A cluster is three masters without replicas, formed with ``redis-cli --cluster create``;
it is ready when every node reports ``cluster_state:ok``. Redis holds a new cluster
node read-only for two seconds after it starts (``CLUSTER_WRITABLE_DELAY``), so a cluster
takes a little over two seconds to come up; a standalone server is up in milliseconds.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["REDIS_SERVER", "REDIS_CLI", "RedisServer", "RedisClusterServers", "TlsFiles", "free_port", "make_tls_files"]

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"

#: Seconds a server may take to answer PING after it was started.
START_TIMEOUT = 10.0
#: Seconds a cluster may take to report ``cluster_state:ok`` on every node.
CLUSTER_TIMEOUT = 20.0
#: Attempts at finding a free port before giving up.
PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """A test Redis server could not be started (the message carries its log's tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS server: a private CA, and a server certificate it signed for 127.0.0.1."""

    ca_cert: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost, written to ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
                    signer: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("psp test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)

    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


class RedisServer:
    """One ``redis-server`` on 127.0.0.1; :meth:`stop` and :meth:`start` again keep its port.

    ``tls`` serves TLS only (``rediss://``), without asking clients for certificates;
    ``password`` requires it of clients (``requirepass``; the URL carries it).
    ``extra_args`` go to ``redis-server`` as they are (cluster nodes use it).
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: TlsFiles | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.password = password
        self.extra_args = list(extra_args)
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------------------

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://...?ssl_ca_certs=CA`` with TLS, ``:PASSWORD@`` with one)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}{self.host_port}/0"
        return f"rediss://{auth}{self.host_port}/0?ssl_ca_certs={self.tls.ca_cert}"

    def client(self, **kwargs: object) -> redis.Redis:
        """A plain redis-py client of this server, for checks and set-up; it does not retry."""
        kwargs = {"retry": Retry(NoBackoff(), 0), **kwargs}
        if self.tls is not None:
            kwargs = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_cert), **kwargs}
        if self.password:
            kwargs = {"password": self.password, **kwargs}
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    # -- life cycle ------------------------------------------------------------------

    def _command(self, port: int) -> list[str]:
        listen = ["--port", str(port)]
        if self.tls is not None:
            listen = [
                "--port", "0", "--tls-port", str(port),
                "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca_cert), "--tls-auth-clients", "no",
            ]  # fmt: skip
        return [
            REDIS_SERVER, *listen,
            "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            *(["--requirepass", self.password] if self.password else []),
            *self.extra_args,
        ]  # fmt: skip

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> RedisServer:
        """Start the server (on its old port after :meth:`stop`, else on a free one) and wait for PING."""
        if self.process is not None:
            raise RuntimeError(f"redis-server on {self.host_port} is running already")
        if self.port is not None:
            self._launch(self.port)
            return self
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._launch(free_port())
                return self
            except RedisServerError:
                if attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            self._command(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        probe = self.client(socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    self.process = None
                    raise RedisServerError(f"redis-server on port {port} exited at start:\n{self.log_tail()}")
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server on port {port} did not answer PING:\n{self.log_tail()}")
                time.sleep(0.01)
        finally:
            probe.close()

    def stop(self, *, save: bool = False) -> None:
        """Stop the server: ``save`` writes its data to disk first (SHUTDOWN SAVE), so :meth:`start` reloads it."""
        process, self.process = self.process, None
        if process is None:
            return
        if save:
            client = self.client(socket_timeout=5)
            try:
                client.shutdown(save=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
            finally:
                client.close()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, save: bool = True) -> None:
        """Stop (keeping the data by default) and start again on the same port."""
        self.stop(save=save)
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RedisClusterServers:
    """A Redis Cluster of ``masters`` redis-server processes (no replicas) on 127.0.0.1."""

    #: Milliseconds before a silent node counts as failing; short, so tests that stop a node recover quickly.
    NODE_TIMEOUT_MS = 2000

    def __init__(self, directory: Path, *, masters: int = 3) -> None:
        self.directory = Path(directory)
        self.nodes = [
            RedisServer(self.directory / f"node{i}") for i in range(masters)
        ]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...``"""
        return "redis+cluster://" + ",".join(node.host_port for node in self.nodes)

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            self._start_node(node)
        self._create()
        self.wait_ok()
        return self

    def _start_node(self, node: RedisServer) -> None:
        for attempt in range(PORT_ATTEMPTS):
            node.extra_args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node.directory / "nodes.conf"),
                "--cluster-port", str(free_port()),  # the bus port, instead of port + 10000
                "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS),
            ]  # fmt: skip
            try:
                node.start()
                return
            except RedisServerError:
                node.port = None
                if attempt == PORT_ATTEMPTS - 1:
                    raise

    def _create(self) -> None:
        command = [
            REDIS_CLI, "--cluster", "create", *(node.host_port for node in self.nodes),
            "--cluster-replicas", "0", "--cluster-yes",
        ]  # fmt: skip
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLUSTER_TIMEOUT)
        if done.returncode != 0:
            self.stop()
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RedisServerError(f"redis-cli --cluster create failed:\n{output}")

    def wait_ok(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Wait until every node reports ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        waiting = list(self.nodes)
        while waiting:
            waiting = [node for node in waiting if not _cluster_ok(node)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"cluster not ok after {timeout:g} s on {', '.join(n.host_port for n in waiting)}:\n"
                    + waiting[0].log_tail()
                )
            time.sleep(0.02)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _cluster_ok(node: RedisServer) -> bool:
    client = node.client(socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        info = client.execute_command("CLUSTER", "INFO")
    except redis.RedisError:
        return False
    finally:
        client.close()
    if isinstance(info, dict):
        return info.get("cluster_state") in ("ok", b"ok")
    return b"cluster_state:ok" in info


if __name__ == "__main__":  # python -m tests.redis_servers: start both kinds and print how long it took
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        with RedisServer(Path(tmp) / "standalone") as server:
            print(f"standalone {server.url} up in {time.monotonic() - started:.2f} s")
            started = time.monotonic()
            with RedisClusterServers(Path(tmp) / "cluster") as cluster:
                print(f"cluster {cluster.url} up in {time.monotonic() - started:.2f} s")
