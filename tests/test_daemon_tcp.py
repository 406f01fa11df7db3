"""`psp daemon`, third part: the TCP listener (TLS 1.3, API keys with scopes and tenants), and
peer credentials on the Unix socket.

The daemon runs as a subprocess calling :func:`psp_cdp.daemon.run_daemon` with a TCP listener on
127.0.0.1, port 0 (it prints the port it got), a throw-away CA and server certificate, and an API
keys file made with :func:`psp_cdp.daemon.apikeys.create_key`. Clients are httpx over TLS trusting
that CA, trio-websocket over TLS, and httpx over the Unix socket.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from psp_cdp.cdp import LaunchedBrowser
from psp_cdp.daemon import run_daemon
from psp_cdp.daemon.apikeys import create_key, list_keys, parse_token, revoke_key, verify
from psp_cdp.errors import UsageError

from .redis_servers import TlsFiles, make_tls_files
from .test_daemon import error, stop_cleanly

_RUN = """
import logging, sys, trio
from psp_cdp.daemon import run_daemon
logging.basicConfig(level=logging.INFO, format="psp daemon: %(levelname)s: %(message)s", stream=sys.stderr)
logging.getLogger("psp_cdp.daemon.http").setLevel(logging.WARNING)
store, socket_path, tcp, cert, key, keys, rate = sys.argv[1:]
sys.exit(trio.run(lambda: run_daemon(store, socket_path, tcp=tcp, tls_cert=cert, tls_key=key, api_keys=keys,
                                     rate_limit=int(rate))))
"""


@dataclass
class Keys:
    admin: str
    reader_a: str
    writer_a: str
    writer_b: str
    control_a: str
    control_b: str


class TcpDaemon:
    """A daemon with a Unix socket and a TLS listener on 127.0.0.1."""

    def __init__(self, directory: Path, tls: TlsFiles, keys_path: Path, *, rate: int = 100) -> None:
        # The socket's directory is reachable by other users, so the peer-credential test can get there.
        self.run_dir = tempfile.mkdtemp(prefix="psp-tcp-")
        os.chmod(self.run_dir, 0o755)
        self.socket = os.path.join(self.run_dir, "psp.sock")
        self.store = str(directory / "store")
        self.tls = tls
        self.keys_path = keys_path
        self.stderr_path = directory / "daemon.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _RUN, self.store, self.socket, "127.0.0.1:0", str(tls.cert), str(tls.key), str(keys_path),
                 str(rate)],
                stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
        first = self._read_line(15)
        assert self.process.stdout is not None
        second = self.process.stdout.readline() if first else ""  # printed right after the first (maybe buffered with it)
        assert first == f"listening on {self.socket}\n", first + self.stderr()
        assert second.startswith("listening on https://127.0.0.1:"), second + self.stderr()
        self.url = second.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def _read_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.tls.ca_cert)),
                            headers=headers, timeout=30)

    def unix(self) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.socket), base_url="http://localhost", timeout=30)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    os.chmod(files.key, 0o600)
    return files


@pytest.fixture(scope="module")
def keys_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "api-keys.json"


@pytest.fixture(scope="module")
def keys(keys_path: Path) -> Keys:
    def make(name: str, tenant: str, *scopes: str) -> str:
        return create_key(keys_path, name=name, tenant=tenant, scopes=scopes)[1]

    return Keys(
        admin=make("ops", "ops", "admin"),
        reader_a=make("reader a", "a", "sessions:read"),
        writer_a=make("writer a", "a", "sessions:read", "sessions:write"),
        writer_b=make("writer b", "b", "sessions:write", "sessions:read"),
        control_a=make("control a", "a", "sessions:read", "sessions:write", "browsers:control"),
        control_b=make("control b", "b", "sessions:read", "sessions:write", "browsers:control"),
    )


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles, keys_path: Path, keys: Keys) -> Iterator[TcpDaemon]:
    running = TcpDaemon(tmp_path_factory.mktemp("daemon-tcp"), tls, keys_path)
    try:
        yield running
    finally:
        stop_cleanly(running)


# -- keys ----------------------------------------------------------------------------------


def test_the_key_file_holds_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api-keys.json"
    key_id, token = create_key(path, name="ci", tenant="team-a", scopes=["sessions:write", "sessions:read"])
    assert token.startswith(f"psp_{key_id}_") and parse_token(token) is not None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = token.split("_", 2)[2]
    raw = path.read_text()
    assert secret not in raw and token not in raw
    [listed] = list_keys(path)
    assert (listed.id, listed.name, listed.tenant, listed.scopes) == (key_id, "ci", "team-a", ("sessions:read", "sessions:write"))
    assert "hash" not in listed.as_dict()
    assert verify(path, token) == listed
    assert verify(list_keys(path), token) == listed
    assert verify(path, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verify(path, f"psp_{'0' * 16}_{secret}") is None
    assert verify(path, "nonsense") is None
    with pytest.raises(UsageError, match="scope"):
        create_key(path, name="x", tenant="a", scopes=["sessions:delete"])
    with pytest.raises(UsageError, match="tenant"):
        create_key(path, name="x", tenant="a.b", scopes=["admin"])
    assert revoke_key(path, key_id).id == key_id
    assert list_keys(path) == [] and verify(path, token) is None
    with pytest.raises(UsageError, match="no API key"):
        revoke_key(path, key_id)
    # A file others may read or write is refused, as the keyring refuses such key files.
    os.chmod(path, 0o644)
    with pytest.raises(Exception, match="chmod 600"):
        list_keys(path)


async def test_tcp_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--tls-cert and --tls-key"):
        await run_daemon(str(tmp_path / "store"), str(tmp_path / "psp.sock"), tcp="127.0.0.1:0")
    with pytest.raises(UsageError, match="only with --tcp"):
        await run_daemon(str(tmp_path / "store"), str(tmp_path / "psp.sock"), tls_cert="c.pem", tls_key="k.pem")
    assert not (tmp_path / "psp.sock").exists()


# -- the listener ----------------------------------------------------------------------------


def test_bearer_tokens(daemon: TcpDaemon, keys: Keys) -> None:
    with daemon.client() as anonymous:
        assert anonymous.get("/v1/health").json() == {"status": "ok"}  # no key needed
        for path in ("/v1/version", "/v1/openapi.json", "/v1/sessions", "/v1/no-such-endpoint"):
            refused = anonymous.get(path)
            error(refused, 401, "Authorization: Bearer")
            assert refused.headers["www-authenticate"].startswith("Bearer"), path
        for bad in ("nonsense", keys.reader_a[:-2], "psp_0123456789abcdef_" + "A" * 43):
            refused = anonymous.get("/v1/sessions", headers={"authorization": f"Bearer {bad}"})
            error(refused, 401, "not valid")
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        error(anonymous.get("/v1/sessions", headers={"authorization": f"Basic {keys.reader_a}"}), 401)
    with daemon.client(keys.reader_a) as reader:
        version = reader.get("/v1/version").json()
        assert version["protocol"].startswith("1.") and "store" not in version  # not a tenant's business
        document = reader.get("/v1/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        operations = {op["operationId"]: op for ops in document["paths"].values() for op in ops.values()}
        assert operations["health"]["security"] == [{}]
        assert operations["listSessions"]["security"] == [{}, {"bearer": ["sessions:read"]}]
        assert operations["capture"]["security"] == [{}, {"bearer": ["sessions:write", "browsers:control"]}]
        error(reader.get("/v1/no-such-endpoint"), 404, "no such endpoint")
    with daemon.client(keys.admin) as admin:
        assert admin.get("/v1/version").json()["store"] == os.path.abspath(daemon.store)
    with daemon.unix() as local:  # the Unix socket needs no key, and names the store
        assert local.get("/v1/version").json()["store"] == os.path.abspath(daemon.store)


def test_scopes(daemon: TcpDaemon, keys: Keys) -> None:
    with daemon.client(keys.reader_a) as reader, daemon.client(keys.writer_a) as writer, \
            daemon.client(keys.control_a) as control, daemon.client(keys.admin) as admin:
        assert reader.get("/v1/sessions").status_code == 200
        error(reader.post("/v1/sessions", json={"name": "scoped"}), 403, "sessions:write")
        assert writer.post("/v1/sessions", json={"name": "scoped"}).status_code == 201
        assert reader.get("/v1/sessions/scoped").status_code == 200
        assert reader.get("/v1/sessions/scoped/versions").json() == []
        error(reader.patch("/v1/sessions/scoped", json={"description": "x"}), 403, "sessions:write")
        error(reader.delete("/v1/sessions/scoped"), 403)
        error(writer.post("/v1/sessions/scoped/capture", json={"browser": "b"}), 403, "browsers:control")
        error(writer.post("/v1/sessions/scoped/restore", json={"browser": "b"}), 403, "browsers:control")
        error(writer.get("/v1/browsers"), 403, "browsers:control")
        error(writer.get("/v1/watches"), 403, "browsers:control")
        error(reader.get("/v1/stats"), 403, "admin")
        assert admin.get("/v1/stats").status_code == 200
        assert control.get("/v1/browsers").json() == []
        # Over TCP, an endpoint is an address on the network, never a path on the daemon's machine.
        error(control.post("/v1/browsers", json={"cdp": daemon.run_dir}), 403, "over TCP")
        error(control.post("/v1/browsers", json={"cdp": "http://127.0.0.1:1"}), 502)
        assert writer.delete("/v1/sessions/scoped").status_code == 204


def test_tls_1_2_is_refused(daemon: TcpDaemon) -> None:
    context = ssl.create_default_context(cafile=str(daemon.tls.ca_cert))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass
    # TLS 1.3 is what it speaks; plain HTTP gets nothing.
    modern = ssl.create_default_context(cafile=str(daemon.tls.ca_cert))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with modern.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.3"
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        raw.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200" not in raw.recv(4096)
    with daemon.client() as http:
        assert http.get("/v1/health").status_code == 200  # still serving


def test_revoked_key_is_refused(daemon: TcpDaemon, keys_path: Path) -> None:
    key_id, token = create_key(keys_path, name="short-lived", tenant="a", scopes=["sessions:read"])
    with daemon.client(token) as http:
        assert http.get("/v1/sessions").status_code == 200  # a key made while the daemon runs counts at once
        revoke_key(keys_path, key_id)
        error(http.get("/v1/sessions"), 401, "not valid")


async def test_events_over_tcp_need_a_key_and_end_when_it_is_revoked(daemon: TcpDaemon, keys_path: Path) -> None:
    context = ssl.create_default_context(cafile=str(daemon.tls.ca_cert))
    url = f"wss://127.0.0.1:{daemon.port}/v1/events"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(url, ssl_context=context):
            pass
    assert rejected.value.status_code == 401
    key_id, token = create_key(keys_path, name="events", tenant="a", scopes=["sessions:read"])
    async with open_websocket_url(url, ssl_context=context, extra_headers=[("authorization", f"Bearer {token}")]) as ws:
        revoke_key(keys_path, key_id)
        with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason.code == 1008


# -- tenants -------------------------------------------------------------------------------


async def test_tenants_see_only_their_own(daemon: TcpDaemon, keys: Keys) -> None:
    a, b = daemon.client(keys.writer_a), daemon.client(keys.writer_b)
    admin, local = daemon.client(keys.admin), daemon.unix()
    context = ssl.create_default_context(cafile=str(daemon.tls.ca_cert))
    try:
        async with open_websocket_url(
            f"wss://127.0.0.1:{daemon.port}/v1/events", ssl_context=context,
            extra_headers=[("authorization", f"Bearer {keys.writer_b}")],
        ) as b_events:
            created = a.post("/v1/sessions", json={"name": "tenant-s", "tags": {"team": "x"}})
            assert created.status_code == 201, created.text
            session = created.json()
            assert session["tags"] == {"team": "x", "psp.tenant": "a"}
            assert [s["name"] for s in a.get("/v1/sessions").json()] == ["tenant-s"]

            # Tenant b does not see it: not listed, and 404 (as for a name nobody has) however asked.
            assert "tenant-s" not in [s["name"] for s in b.get("/v1/sessions").json()]
            assert b.get("/v1/sessions", params={"tag": "psp.tenant=a"}).json() == []
            missing = error(b.get("/v1/sessions/tenant-t"), 404)
            assert error(b.get("/v1/sessions/tenant-s"), 404) == missing.replace("tenant-t", "tenant-s")
            error(b.get(f"/v1/sessions/{session['id']}"), 404)
            error(b.get("/v1/sessions/tenant-s/versions"), 404)
            error(b.patch("/v1/sessions/tenant-s", json={"description": "mine now"}), 404)
            error(b.delete("/v1/sessions/tenant-s"), 404)
            with daemon.client(keys.control_b) as control_b:
                error(control_b.post("/v1/sessions/tenant-s/capture", json={"browser": "b"}), 404, "tenant-s")
                error(control_b.post("/v1/sessions/tenant-s/restore", json={"browser": "b"}), 404, "tenant-s")
            # Names are global: b cannot take a's name, and learns nothing but that it is taken.
            clash = error(b.post("/v1/sessions", json={"name": "tenant-s"}), 409, "exists")
            assert session["id"] not in clash and "psp.tenant" not in clash
            # The tenant tag is the daemon's to set.
            error(b.post("/v1/sessions", json={"name": "tenant-u", "tags": {"psp.tenant": "a"}}), 422, "reserved")
            assert b.post("/v1/sessions", json={"name": "tenant-t"}).status_code == 201
            patched = a.patch("/v1/sessions/tenant-s", json={"tags": {"team": "y"}}).json()
            assert patched["tags"] == {"team": "y", "psp.tenant": "a"}
            error(a.patch("/v1/sessions/tenant-s", json={"tags": {"psp.tenant": "b"}}), 422, "reserved")

            # b's event feed carries b's sessions only.
            with trio.fail_after(10):
                event = json.loads(await b_events.get_message())
            assert (event["type"], event["session"]["name"]) == ("created", "tenant-t")
            with trio.move_on_after(0.5):
                unexpected = await b_events.get_message()
                raise AssertionError(f"tenant b saw {unexpected}")

        # An admin key and the Unix socket see every tenant's sessions.
        everything = {s["name"]: s["tags"].get("psp.tenant") for s in admin.get("/v1/sessions").json()}
        assert {"tenant-s": "a", "tenant-t": "b"}.items() <= everything.items()
        assert local.get("/v1/sessions/tenant-s").json()["tags"]["psp.tenant"] == "a"
        for name in ("tenant-s", "tenant-t"):
            assert admin.delete(f"/v1/sessions/{name}").status_code == 204
    finally:
        for http in (a, b, admin, local):
            http.close()


async def test_tenants_do_not_share_browsers(daemon: TcpDaemon, keys: Keys, chromium: LaunchedBrowser) -> None:
    with daemon.client(keys.control_a) as a, daemon.client(keys.control_b) as b:
        attached = a.post("/v1/browsers", json={"cdp": chromium.endpoint})
        assert attached.status_code == 201, attached.text
        browser = attached.json()["id"]
        try:
            assert [x["id"] for x in a.get("/v1/browsers").json()] == [browser]
            assert b.get("/v1/browsers").json() == []
            error(b.get(f"/v1/browsers/{browser}"), 404, browser)
            error(b.delete(f"/v1/browsers/{browser}"), 404)
            # b cannot capture a's browser into its own session.
            assert b.post("/v1/sessions", json={"name": "tenant-b-own"}).status_code == 201
            error(b.post("/v1/sessions/tenant-b-own/capture", json={"browser": browser}), 404, browser)
            assert b.get("/v1/sessions/tenant-b-own").json()["head"] == 0
            # a can, into its own.
            assert a.post("/v1/sessions", json={"name": "tenant-a-own"}).status_code == 201
            captured = a.post("/v1/sessions/tenant-a-own/capture", json={"browser": browser})
            assert captured.status_code == 200, captured.text
            assert captured.json()["version"] == 1
        finally:
            assert a.delete(f"/v1/browsers/{browser}").status_code == 204
            for client, name in ((a, "tenant-a-own"), (b, "tenant-b-own")):
                client.delete(f"/v1/sessions/{name}")


# -- the Unix socket: peer credentials ---------------------------------------------------------


def _health_as(socket_path: str, uid: int, gid: int, groups: list[int]) -> int:
    """The status ``GET /v1/health`` gets over the Unix socket from a process of that uid, gid and groups."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become that user, ask, report the status line
        status = b"fork failed"
        try:
            os.close(read)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                raw.settimeout(10)
                raw.connect(socket_path)
                raw.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                status = raw.recv(64).split(b"\r\n")[0]
        except BaseException as exc:
            status = repr(exc).encode()
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        line = fh.read()
    os.waitpid(pid, 0)
    parts = line.split()
    assert len(parts) >= 2 and parts[0].startswith(b"HTTP/"), line
    return int(parts[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to connect as other users")
def test_peer_credentials_on_the_unix_socket(daemon: TcpDaemon) -> None:
    # The socket opened to everyone by mistake: its group and peer credentials still decide.
    socket_gid = os.stat(daemon.socket).st_gid
    os.chmod(daemon.socket, 0o666)
    try:
        nobody = 65534
        other_group = 65534 if socket_gid != 65534 else 65533
        assert _health_as(daemon.socket, nobody, other_group, []) == 403
        assert _health_as(daemon.socket, nobody, socket_gid, []) == 200  # the socket's group
        assert _health_as(daemon.socket, nobody, other_group, [socket_gid]) == 200  # ... as a supplementary group
        assert _health_as(daemon.socket, 0, 0, [0]) == 200  # root
    finally:
        os.chmod(daemon.socket, 0o660)
    with daemon.unix() as local:
        assert local.get("/v1/health").status_code == 200


# -- a capture writes into the session it was asked for ---------------------------------------------


async def test_a_pinned_capture_never_writes_into_a_session_that_took_the_name(tmp_path: Path) -> None:
    from psp_cdp.daemon.sessions import DaemonSessions, pinned
    from psp_cdp.errors import SessionNotFoundError
    from psp_cdp.snapshot.model import BrowserSessionState
    from psp_cdp.store import open_store

    sessions = DaemonSessions(open_store(str(tmp_path / "store")), cipher="none")
    try:
        first = await trio.to_thread.run_sync(lambda: sessions.store.create("pinned"))
        await sessions.delete(first.id)  # gone while its capture ran, and the name taken by another
        second = await trio.to_thread.run_sync(lambda: sessions.store.create("pinned"))
        with pinned(first.id), pytest.raises(SessionNotFoundError):
            await sessions.save("pinned", BrowserSessionState())
        assert (await sessions.versions(second.id))[1] == []
        with pinned(second.id):
            _, written = await sessions.save("pinned", BrowserSessionState())
        assert written.version == 1
    finally:
        sessions.store.close()


def test_the_python_clients_over_tls_with_a_key(daemon: TcpDaemon, keys: Keys) -> None:
    from psp_cdp.client import AsyncClient, Client, DaemonError

    with Client(url=daemon.url, token=keys.admin, verify=str(daemon.tls.ca_cert)) as psp:
        assert psp.health() == {"status": "ok"}
        assert psp.version()["store"] == os.path.abspath(daemon.store)
    with Client(url=daemon.url, verify=str(daemon.tls.ca_cert)) as anonymous, pytest.raises(DaemonError) as caught:
        anonymous.sessions()
    assert caught.value.status == 401

    async def listed() -> list[str]:
        async with AsyncClient(url=daemon.url, token=keys.admin, verify=str(daemon.tls.ca_cert)) as psp:
            return [s.name for s in await psp.sessions()]

    assert isinstance(trio.run(listed), list)
