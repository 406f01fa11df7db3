"""The daemon's limits: no client can hold its descriptors, its memory or its attention for long.

Each test is the regression test of a defect a hostile run found, against a real
``psp daemon`` subprocess over its Unix socket (and its TLS listener for rate limits):
connections closed at once held a descriptor for the 30 s keep-alive, a connect/close
loop ran the daemon out of descriptors, a body sent a byte a second was never timed
out, and a WebSocket subscriber that never reads was never disconnected.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_daemon import RunningDaemon, stop_cleanly


def _eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _fds(process_id: int) -> int:
    return len(os.listdir(f"/proc/{process_id}/fd"))


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer whose length is given: status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_connections_closed_at_once_give_their_descriptors_back_at_once(tmp_path: Path) -> None:
    running = RunningDaemon(tmp_path)
    try:
        pid = running.process.pid
        with running.client() as http:
            assert http.get("/v1/health").status_code == 200
        before = _fds(pid)
        for _ in range(300):
            _connect(running.socket).close()  # a connect/close loop: nothing sent
        # Before, each held its descriptor for the 30 s keep-alive.
        assert _eventually(lambda: _fds(pid) <= before + 5, timeout=5), f"{_fds(pid)} descriptors open, {before} before"
        with running.client() as http:
            assert http.get("/v1/health").status_code == 200
    finally:
        stop_cleanly(running)
    assert "Traceback" not in running.stderr()


def test_connections_over_the_cap_are_refused_cleanly_and_served_again_once_others_go(tmp_path: Path) -> None:
    running = RunningDaemon(tmp_path, args=("--max-connections", "20"))
    held: list[socket.socket] = []
    try:
        for _ in range(20):
            held.append(_connect(running.socket))
        time.sleep(0.3)
        refused = []
        for _ in range(50):
            extra = _connect(running.socket)  # accepted by the kernel, refused by the daemon
            extra.sendall(b"GET /v1/health HTTP/1.1\r\nhost: psp\r\n\r\n")
            refused.append(_answer(extra))
            extra.close()
        assert {status for status, _, _ in refused} == {503}
        status, headers, body = refused[0]
        assert headers["retry-after"] == "1" and "connections" in json.loads(body)["message"]
        for sock in held[:5]:
            sock.close()
        time.sleep(0.3)
        with running.client() as http:
            assert http.get("/v1/health").json() == {"status": "ok"}
        lines = [line for line in running.stderr().splitlines() if "refusing connections" in line]
        assert len(lines) == 1, running.stderr()  # one line a minute, however many were refused
    finally:
        for sock in held:
            sock.close()
        stop_cleanly(running)


def test_heads_and_bodies_sent_too_slowly_are_cut_off(tmp_path: Path) -> None:
    running = RunningDaemon(tmp_path, args=("--request-timeout", "1.5"))
    try:
        silent = _connect(running.socket)
        started = time.monotonic()
        assert _closed_by_peer(silent, within=10)
        assert 1.0 < time.monotonic() - started < 6

        trickle = _connect(running.socket)
        trickle.sendall(b"POST /v1/sessions HTTP/1.1\r\nhost: psp\r\ncontent-type: application/json\r\n"
                        b"content-length: 100\r\n\r\n{")
        started = time.monotonic()
        trickle.settimeout(0.25)
        answer = b""
        while time.monotonic() - started < 10 and b"}" not in answer:
            try:
                trickle.sendall(b" ")  # a byte at a time, never the whole body
                answer += trickle.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert b"did not arrive within 1.5 s" in answer
        assert time.monotonic() - started < 6
        with running.client() as http:  # others are served meanwhile and after
            assert http.get("/v1/health").status_code == 200
    finally:
        stop_cleanly(running)


def test_a_websocket_subscriber_that_reads_nothing_is_dropped(tmp_path: Path) -> None:
    running = RunningDaemon(tmp_path)
    try:
        subscriber = _connect(running.socket)
        subscriber.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        subscriber.sendall(
            b"GET /v1/events HTTP/1.1\r\nhost: psp\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        )
        assert subscriber.recv(4096).startswith(b"HTTP/1.1 101")
        pid = running.process.pid
        with running.client() as http:
            description = "d" * 4000
            started = time.monotonic()
            # Events nobody reads: the subscriber's buffer, then the socket's, fill up.
            for n in range(300):
                assert http.post("/v1/sessions", json={"name": f"s{n}", "description": description}).status_code == 201
            assert _eventually(lambda: "dropped a /v1/events subscriber" in running.stderr(), timeout=30), running.stderr()
            assert time.monotonic() - started < 40
            assert http.get("/v1/health").status_code == 200
        assert _closed_by_peer(subscriber, within=10)
        assert _fds(pid) < 40
    finally:
        stop_cleanly(running)


@pytest.mark.parametrize("rate", [5])
def test_each_api_key_is_held_to_its_request_rate(tmp_path: Path, rate: int) -> None:
    from psp_cdp.daemon import create_key

    from .redis_servers import make_tls_files
    from .test_daemon_tcp import TcpDaemon

    tls = make_tls_files(tmp_path / "tls")
    os.chmod(tls.key, 0o600)
    keys_path = tmp_path / "api-keys.json"
    first = create_key(keys_path, name="first", tenant="a", scopes=["sessions:read"])[1]
    second = create_key(keys_path, name="second", tenant="b", scopes=["sessions:read"])[1]
    (tmp_path / "daemon").mkdir()
    running = TcpDaemon(tmp_path / "daemon", tls, keys_path, rate=rate)
    try:
        with running.client(first) as http:
            statuses = [http.get("/v1/sessions").status_code for _ in range(rate * 3)]
            assert statuses[:rate] == [200] * rate
            assert 429 in statuses
            refused = http.get("/v1/sessions")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert f"at most {rate} a second" in refused.json()["message"]
            assert http.get("/v1/health").status_code == 200  # no key, no limit
        with running.client(second) as http:  # another key has its own allowance
            assert http.get("/v1/sessions").status_code == 200
        time.sleep(1.1)
        with running.client(first) as http:
            assert http.get("/v1/sessions").status_code == 200
    finally:
        stop_cleanly(running)


async def test_clients_listing_at_once_share_readings_yet_each_sees_what_it_made(tmp_path: Path) -> None:
    import trio

    running = RunningDaemon(tmp_path)
    try:
        async with running.async_client() as http:
            missing: list[str] = []

            async def one(n: int) -> None:
                for round_ in range(3):
                    name = f"c{n}-{round_}"
                    assert (await http.post("/v1/sessions", json={"name": name})).status_code == 201
                    listed = {s["name"] for s in (await http.get("/v1/sessions")).json()}
                    if name not in listed:
                        missing.append(name)

            async with trio.open_nursery() as nursery:
                for n in range(40):
                    nursery.start_soon(one, n)
            assert not missing, missing
            assert len((await http.get("/v1/sessions")).json()) == 120
            deleted = await http.delete("/v1/sessions/c0-0")
            assert deleted.status_code == 204
            assert "c0-0" not in {s["name"] for s in (await http.get("/v1/sessions")).json()}
    finally:
        stop_cleanly(running)
