"""`psp daemon`: the control API over a Unix socket, driven as clients drive it.

The daemon runs as a subprocess (``psp daemon --socket TMP/psp.sock --store TMP/store``)
and is stopped with SIGTERM, which must end it with status 0. Clients are httpx over the
socket, curl, and a WebSocket over the socket; browsers are the shared test ones, and
a Chromium of the test's own where one has to die.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import wrap_client_stream

from psp_cdp.cdp import CdpConnection, LaunchedBrowser, launch_chromium
from psp_cdp import errors
from psp_cdp.daemon import MAX_BODY, ROUTES

from .helpers import browser_context, dispose_browser_context, wait_until
from .site import Site

PSP = os.path.join(os.path.dirname(sys.executable), "psp")


class RunningDaemon:
    """A ``psp daemon`` subprocess on a socket of its own."""

    def __init__(self, directory: Path, *, socket_path: Path | None = None, store: str | None = None,
                 args: tuple[str, ...] = ()) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = str(socket_path or directory / "run" / "psp.sock")
        self.store = store or str(directory / "store")
        self.stderr_path = directory / "daemon.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [PSP, "daemon", "--socket", self.socket, "--store", self.store, *args],
                stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
        self.first_line = self._read_line(15)
        assert self.first_line == f"listening on {self.socket}\n", self.first_line + self.stderr()

    def _read_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.socket), base_url="http://localhost", timeout=60)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.socket), base_url="http://localhost", timeout=60)

    def terminate(self, *, signalled: bool = False) -> int:
        """SIGTERM (unless ``signalled`` already), then the exit status."""
        if self.process.poll() is None and not signalled:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def psp(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PSP, *args, "--store", self.store], capture_output=True, text=True, timeout=60)


def stop_cleanly(running: RunningDaemon | Any) -> None:
    """SIGTERM a daemon of a test; it must exit 0 with no traceback on stderr."""
    status = running.terminate()
    assert status == 0, running.stderr()
    assert "Traceback" not in running.stderr(), running.stderr()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield running
    finally:
        stop_cleanly(running)


@pytest.fixture
def client(daemon: RunningDaemon) -> Iterator[httpx.Client]:
    with daemon.client() as http:
        yield http


def error(response: httpx.Response, status: int, *needles: str) -> str:
    """The message of an error answer, after checking its status and shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["message", "error"] and isinstance(body["message"], str) and body["message"], body
    assert body["error"] in errors.__all__, body  # the class of the error tree it is
    for needle in needles:
        assert needle in body["message"], body
    return body["message"]


# -- meta --------------------------------------------------------------------------------


def test_health_version_and_openapi(client: httpx.Client) -> None:
    assert client.get("/v1/health").json() == {"status": "ok"}
    version = client.get("/v1/version").json()
    assert version["protocol"].count(".") == 2 and version["protocol"].startswith("1.")
    capabilities = version["capabilities"]
    assert {"cookies", "local_storage", "indexed_db", "tabs"} <= set(capabilities["components"])
    assert capabilities["stores"] == ["filesystem", "redis", "redis+cluster"]
    assert capabilities["encryption"] == ["aes-256-gcm", "chacha20-poly1305"]
    assert capabilities["recording"] is True and capabilities["replay"] is True and capabilities["events"] is True

    document = client.get("/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    served = {(route.path, route.method) for route in ROUTES}
    assert documented == served
    # Each documented operation is served: never "no such endpoint", never 405.
    for path, method in sorted(documented):
        concrete = path.replace("{id}", "unknown-id")
        response = client.request(method, concrete, content=b"{}" if method in ("POST", "PATCH") else None)
        assert response.status_code not in (405, 500), (method, concrete, response.text)
        if response.status_code == 404:
            assert "no such endpoint" not in response.json()["message"], (method, concrete)
    # What the document says a body must be is what is validated.
    new_session = document["components"]["schemas"]["NewSession"]
    assert new_session["required"] == ["name"] and new_session["additionalProperties"] is False


def test_curl_over_the_socket(daemon: RunningDaemon) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        [curl, "-sS", "--unix-socket", daemon.socket, "-w", "\n%{http_code}", "http://localhost/v1/health"],
        capture_output=True, text=True, timeout=30,
    )
    body, status = result.stdout.rsplit("\n", 1)
    assert (json.loads(body), status) == ({"status": "ok"}, "200"), result.stderr


# -- sessions --------------------------------------------------------------------------


def test_session_crud_round_trip(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"name": "crud", "description": "made by a test", "tags": {"team": "qa"}})
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["name"] == "crud" and session["description"] == "made by a test" and session["tags"] == {"team": "qa"}
    assert session["head"] == 0 and created.headers["location"] == f"/v1/sessions/{session['id']}"

    assert client.get(f"/v1/sessions/{session['id']}").json() == session
    assert client.get("/v1/sessions/crud").json() == session
    assert "crud" in [s["name"] for s in client.get("/v1/sessions").json()]
    assert [s["name"] for s in client.get("/v1/sessions", params={"tag": "team=qa"}).json()] == ["crud"]
    assert client.get("/v1/sessions", params=[("tag", "team=qa"), ("tag", "env=ci")]).json() == []

    patched = client.patch("/v1/sessions/crud", json={"description": "changed", "tags": {"env": "ci"}, "keep": 3, "ttl": 3600})
    assert patched.status_code == 200, patched.text
    changed = patched.json()
    assert (changed["description"], changed["tags"], changed["keep"], changed["ttl"]) == ("changed", {"env": "ci"}, 3, 3600)
    assert client.patch(f"/v1/sessions/{session['id']}", json={"keep": None}).json()["keep"] is None
    assert client.get("/v1/sessions/crud").json()["description"] == "changed"

    assert client.get("/v1/sessions/crud/versions").json() == []
    deleted = client.delete("/v1/sessions/crud")
    assert deleted.status_code == 204 and deleted.content == b""
    error(client.get("/v1/sessions/crud"), 404, "crud")
    error(client.delete(f"/v1/sessions/{session['id']}"), 404)


def test_bad_requests_are_answered_with_json_errors(client: httpx.Client) -> None:
    assert client.post("/v1/sessions", json={"name": "bad-requests"}).status_code == 201
    # 400: not JSON
    error(client.post("/v1/sessions", content=b'{"name": "x"'), 400, "not JSON")
    error(client.post("/v1/sessions", content=b""), 400, "empty")
    error(client.post("/v1/sessions", content=b"\xff\xfe"), 400)
    error(client.post("/v1/sessions", content=b'{"name": NaN}'), 400)
    # 422: valid JSON that fails validation
    error(client.post("/v1/sessions", json=["name"]), 422, "expected object")
    error(client.post("/v1/sessions", json={"name": "x", "colour": "red"}), 422, "unknown field 'colour'")
    error(client.post("/v1/sessions", json={"name": 5}), 422, "name", "expected string")
    error(client.post("/v1/sessions", json={"description": "no name"}), 422, "'name' is required")
    error(client.post("/v1/sessions", json={"name": "../evil"}), 422, "name")
    error(client.post("/v1/sessions", json={"name": "x", "tags": {"k": 1}}), 422, "tags.k")
    error(client.post("/v1/sessions", content=b'{"name": "x", "description": "\\ud800"}'), 422, "surrogate")
    error(client.patch("/v1/sessions/bad-requests", json={"keep": 0}), 422, "keep")
    error(client.patch("/v1/sessions/bad-requests", json={"keep": True}), 422, "keep")
    error(client.post("/v1/sessions/bad-requests/capture", json={}), 422, "'browser' is required")
    error(client.post("/v1/sessions/bad-requests/restore", json={"browser": "b", "version": "1"}), 422, "version")
    error(client.get("/v1/sessions", params={"tag": "no-equals-sign"}), 422, "tag")
    error(client.get("/v1/sessions", params={"colour": "red"}), 422, "colour")
    # 404: unknown ids, unknown paths
    error(client.get("/v1/sessions/no-such-session"), 404, "no-such-session")
    error(client.get("/v1/sessions/bad-requests@1"), 404)
    error(client.post("/v1/sessions/no-such-session/capture", json={"browser": "b"}), 404, "no-such-session")
    error(client.post("/v1/sessions/bad-requests/capture", json={"browser": "no-such-browser"}), 404, "no-such-browser")
    error(client.delete("/v1/browsers/no-such-browser"), 404)
    error(client.get("/v1/nothing-here"), 404, "no such endpoint")
    error(client.get("/v1/health/"), 404)
    # 409: the name is taken; nothing to restore yet
    error(client.post("/v1/sessions", json={"name": "bad-requests"}), 409, "exists")
    error(client.post("/v1/sessions/bad-requests/restore", json={"browser": "b"}), 409, "no captured state")
    # 413: too big, announced or not
    error(client.post("/v1/sessions", content=b" " * (MAX_BODY + 1)), 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    error(client.post("/v1/sessions", content=chunks()), 413)
    # 405: the path exists, the method does not
    wrong = client.put("/v1/sessions")
    error(wrong, 405, "PUT")
    assert wrong.headers["allow"] == "GET, POST"
    error(client.delete("/v1/health"), 405)
    # 426: the events endpoint is a WebSocket
    error(client.get("/v1/events"), 426, "WebSocket")
    # After all that, the daemon still serves and nothing was created by mistake.
    assert client.get("/v1/health").status_code == 200
    assert sorted(s["name"] for s in client.get("/v1/sessions").json() if s["name"] in ("x", "bad-requests")) == ["bad-requests"]


def test_clients_that_hang_up_mid_request_do_not_stop_it(daemon: RunningDaemon) -> None:
    requests = [
        b'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"na',
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b" " * 100_000,
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"not HTTP at all\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\n",
    ]
    for _ in range(10):
        for request in requests:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                raw.connect(daemon.socket)
                try:
                    raw.sendall(request)
                except OSError:
                    pass  # the daemon may hang up first
    with daemon.client() as http:
        assert http.get("/v1/health").json() == {"status": "ok"}
    assert daemon.process.poll() is None


# -- browsers, capture, restore ----------------------------------------------------------


async def test_capture_and_restore_through_the_daemon(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, cdp_b: CdpConnection,
    chromium: LaunchedBrowser, chromium_b: LaunchedBrowser,
) -> None:
    async with daemon.async_client() as http:
        attached = await http.post("/v1/browsers", json={"cdp": chromium.endpoint})
        assert attached.status_code == 201, attached.text
        source_browser = attached.json()
        assert source_browser["attached"] is True and "Chrome" in source_browser["browser"]
        target_browser = (await http.post("/v1/browsers", json={"cdp": chromium_b.endpoint})).json()
        listed = {b["id"]: b for b in (await http.get("/v1/browsers")).json()}
        assert {source_browser["id"], target_browser["id"]} <= set(listed)

        assert (await http.post("/v1/sessions", json={"name": "through-daemon"})).status_code == 201
        async with browser_context(cdp) as source:
            await source.new_page(
                f"{site.url()}/set-cookie?c=token%3Dsecret-value%3B%20Max-Age%3D3600&next=/storage%3Flocal.k%3Dv"
            )
            captured = await http.post(
                "/v1/sessions/through-daemon/capture", json={"browser": source_browser["id"], "context": source.id}
            )
        assert captured.status_code == 200, captured.text
        result = captured.json()
        assert (result["version"], result["kind"]) == (1, "full") and result["stored_bytes"] > 0
        assert result["session"]["name"] == "through-daemon" and result["session"]["head"] == 1
        assert result["session"]["components"]["cookies"] == 1 and result["session"]["components"]["local_storage"] == 1
        versions = (await http.get("/v1/sessions/through-daemon/versions")).json()
        assert [(v["version"], v["kind"]) for v in versions] == [(1, "full")]
        assert versions[0]["stored_bytes"] == result["stored_bytes"]

        restored = await http.post(
            f"/v1/sessions/{result['session']['id']}/restore",
            json={"browser": target_browser["id"], "context": "new", "version": 1},
        )
        assert restored.status_code == 200, restored.text
        report = restored.json()
        assert report["name"] == "through-daemon" and report["version"] == 1
        assert report["restored"]["cookies"] == 1 and report["restored"]["local_storage"] == 1
        context_id = report["context"]
        assert context_id
        try:
            cookies = (await cdp_b.send("Storage.getCookies", {"browserContextId": context_id}))["cookies"]
            assert [(c["name"], c["value"]) for c in cookies] == [("token", "secret-value")]
        finally:
            await dispose_browser_context(cdp_b, context_id)

        for browser in (source_browser, target_browser):
            assert (await http.delete(f"/v1/browsers/{browser['id']}")).status_code == 204
        assert not {source_browser["id"], target_browser["id"]} & {b["id"] for b in (await http.get("/v1/browsers")).json()}
    # Detaching left the browsers running.
    assert chromium.alive() and chromium_b.alive()
    assert (await cdp.send("Browser.getVersion"))["product"]


async def test_dead_browser_is_502(daemon: RunningDaemon, tmp_path: Path) -> None:
    async with daemon.async_client() as http:
        error(await http.post("/v1/browsers", json={"cdp": "http://127.0.0.1:1"}), 502, "127.0.0.1:1")
        error(await http.post("/v1/browsers", json={"cdp": "not an endpoint"}), 502, "not an endpoint")
        assert (await http.post("/v1/sessions", json={"name": "dead-browser"})).status_code == 201
        browser = await trio.to_thread.run_sync(lambda: launch_chromium(user_data_dir=str(tmp_path / "profile")))
        try:
            attached = (await http.post("/v1/browsers", json={"cdp": browser.endpoint})).json()
            assert attached["attached"] is True
        finally:
            await trio.to_thread.run_sync(browser.kill)
        error(await http.post("/v1/sessions/dead-browser/capture", json={"browser": attached["id"]}), 502, attached["id"])

        async def detached() -> bool:
            listed = (await http.get(f"/v1/browsers/{attached['id']}")).json()
            return listed["attached"] is False and bool(listed["reason"])

        await wait_until(detached)
        # Nothing was written, and the daemon keeps serving.
        assert (await http.get("/v1/sessions/dead-browser/versions")).json() == []
        assert (await http.delete(f"/v1/browsers/{attached['id']}")).status_code == 204
        assert (await http.get("/v1/health")).json() == {"status": "ok"}


# -- events ----------------------------------------------------------------------------


async def test_events_websocket(daemon: RunningDaemon) -> None:
    async with trio.open_nursery() as nursery:
        stream = await trio.open_unix_socket(daemon.socket)
        ws = await wrap_client_stream(nursery, stream, "localhost", "/v1/events?session=evented")
        async with daemon.async_client() as http:
            await http.post("/v1/sessions", json={"name": "not-evented"})
            await http.post("/v1/sessions", json={"name": "evented"})
            await http.patch("/v1/sessions/evented", json={"description": "d"})
            await http.delete("/v1/sessions/evented")
        seen = []
        with trio.fail_after(10):
            for _ in range(3):
                event = json.loads(await ws.get_message())
                seen.append((event["type"], event["session"]["name"]))
        assert seen == [("created", "evented"), ("updated", "evented"), ("deleted", "evented")]
        await ws.aclose()


# -- the process: socket, refusal, signals -------------------------------------------------


def test_socket_mode_and_one_daemon_per_socket(daemon: RunningDaemon, tmp_path: Path) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(daemon.socket)).st_mode) == 0o700
    second = subprocess.run(
        [PSP, "daemon", "--socket", daemon.socket, "--store", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=30,
    )
    assert second.returncode == 1 and "another daemon is listening" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    with daemon.client() as http:
        assert http.get("/v1/health").status_code == 200  # the first one is untouched

    # A socket file nobody answers on (a daemon killed with SIGKILL) is replaced.
    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))
    leftover.close()
    restarted = RunningDaemon(tmp_path / "restarted", socket_path=stale)
    try:
        with restarted.client() as http:
            assert http.get("/v1/health").json() == {"status": "ok"}
    finally:
        assert restarted.terminate() == 0, restarted.stderr()
    assert not stale.exists()


@pytest.mark.time_limit(60)
async def test_sigterm_lets_a_capture_in_flight_finish(
    tmp_path: Path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    running = await trio.to_thread.run_sync(RunningDaemon, tmp_path)
    try:
        async with running.async_client() as http, browser_context(cdp) as source:
            browser = (await http.post("/v1/browsers", json={"cdp": chromium.endpoint})).json()
            await http.post("/v1/sessions", json={"name": "in-flight"})
            page = await source.new_page(f"{site.url()}/storage?local.k=v")
            # The tab's main thread is busy for a while, so the capture waits on it.
            await page.send(
                "Runtime.evaluate",
                {"expression": "setTimeout(() => { const end = Date.now() + 3000; while (Date.now() < end) {} }, 100)"},
            )
            await trio.sleep(0.3)
            signalled = trio.Event()
            answers: list[httpx.Response] = []

            async def capture() -> None:
                answers.append(
                    await http.post("/v1/sessions/in-flight/capture", json={"browser": browser["id"], "context": source.id})
                )
                assert signalled.is_set(), "the capture was answered before SIGTERM was sent: not in flight"

            async with trio.open_nursery() as nursery:
                nursery.start_soon(capture)
                await trio.sleep(1.0)
                running.process.send_signal(signal.SIGTERM)
                signalled.set()
        status = await trio.to_thread.run_sync(lambda: running.terminate(signalled=True))
    finally:
        if running.process.poll() is None:
            running.process.kill()
    assert status == 0, running.stderr()
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert not os.path.exists(running.socket)
    log = running.psp("log", "in-flight", "--json")
    assert [v["version"] for v in json.loads(log.stdout)] == [1], log.stderr
    assert "Traceback" not in running.stderr()


def test_systemd_socket_activation_and_notify(tmp_path: Path) -> None:
    """LISTEN_PID/LISTEN_FDS: serve the inherited fd 3; READY=1 and STOPPING=1 go to NOTIFY_SOCKET."""
    path = str(tmp_path / "activated.sock")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(path)
    listening.listen(16)
    notify_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(15)

    def as_fd_3() -> None:
        os.dup2(listening.fileno(), 3)
        os.set_inheritable(3, True)

    env = {**os.environ, "LISTEN_FDS": "1", "NOTIFY_SOCKET": notify_path}
    env.pop("PSP_SOCKET", None)
    # LISTEN_PID must be the daemon's own pid: the shell sets it to its pid, then execs psp in its place.
    process = subprocess.Popen(
        ["/bin/sh", "-c", f'LISTEN_PID=$$ exec "{PSP}" daemon --store "{tmp_path / "store"}" --socket "{tmp_path / "unused.sock"}"'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_fd_3, close_fds=False,
    )
    try:
        assert notify.recv(256) == b"READY=1"
        assert process.stdout is not None and process.stdout.readline() == f"listening on {path}\n"
        assert not (tmp_path / "unused.sock").exists()
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), base_url="http://localhost") as http:
            assert http.get("/v1/health").json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        assert notify.recv(256) == b"STOPPING=1"
        assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listening.close()
        notify.close()
    assert os.path.exists(path)  # systemd's socket file is systemd's to remove
