"""What a hostile file, store or client sends cannot escape the store, leak values or slip past validation.

Each test is the regression test of one defect a hostile run found: it fails on the code
before the fix. The CLI runs as a subprocess (``psp``), as a user would run it; stores are
filesystem stores in the test's own directory, tampered with by hand; Redis is the
session's loopback server. Rules: loopback only, no browser needed.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

from psp_cdp.daemon.schema import SchemaError, validate
from psp_cdp.errors import UsageError
from psp_cdp.snapshot.model import BrowserSessionState
from psp_cdp.store import Sessions, open_store
from psp_cdp.store.base import check_name, valid_session_id

from .test_cli import PSP, psp


def _store_with(tmp_path: Path, *names: str) -> str:
    store = str(tmp_path / "store")
    sessions = Sessions(open_store(store))

    async def save() -> None:
        for name in names:
            await sessions.save(name, BrowserSessionState(version="1.0.0"))

    trio.run(save)
    return store


def _record_path(store: str, name: str) -> Path:
    session_id = (Path(store) / "names" / name).read_text().strip()
    return Path(store) / "sessions" / session_id / "session.json"


def _one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_session_record_whose_id_points_outside_the_store_deletes_nothing_outside(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "a", "b")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    record = _record_path(store, "a")
    data = json.loads(record.read_text())
    data.update(id="../../victim", ttl=1, updated_at=0)  # expired: listing would delete it
    record.write_text(json.dumps(data))

    listed = psp("ls", "--json", store=store)
    assert [s["name"] for s in json.loads(listed.stdout)] == ["b"], "the damaged session is left out, the others listed"
    _one_line_error(psp("rm", "a", store=store, check=False))
    assert (victim / "keep").read_text() == "precious"


def test_a_name_entry_pointing_outside_the_store_reads_nothing_outside(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "a")
    outside = tmp_path / "outside"
    (outside / "versions").mkdir(parents=True)
    (outside / "session.json").write_text(json.dumps({"id": "../../outside", "name": "z"}))
    (Path(store) / "names" / "z").write_text("../../outside\n")
    shown = psp("show", "z", store=store, check=False)
    _one_line_error(shown)
    assert "not found" in shown.stderr or "no session" in shown.stderr
    assert [s["name"] for s in json.loads(psp("ls", "--json", store=store).stdout)] == ["a"]


def test_session_ids_that_could_leave_a_path_or_a_key_are_refused() -> None:
    assert valid_session_id("0123456789abcdef0123456789abcdef")
    for bad in ["", "..", "../x", "a/b", "a}:b", "a\n", ".hidden", "x" * 129, None, 7]:
        assert not valid_session_id(bad), bad


@pytest.mark.parametrize("name", ["login\n", "login\r", "lo gin", "", "-x", "x/y"])
def test_session_names_with_a_trailing_newline_or_other_junk_are_refused(name: str) -> None:
    with pytest.raises(UsageError):
        check_name(name)
    from psp_cdp.daemon.schema import SCHEMAS  # the API's own schema for new sessions

    with pytest.raises(SchemaError):
        validate({"name": name}, SCHEMAS["NewSession"])


def test_the_cli_refuses_a_name_with_a_trailing_newline(tmp_path: Path) -> None:
    result = subprocess.run([PSP, "import", "-", "--name", "x\n", "--store", str(tmp_path / "s")],
                            input=b"{}", capture_output=True, timeout=60)
    assert result.returncode != 0 and b"invalid session name" in result.stderr and b"Traceback" not in result.stderr


def test_session_directories_and_exports_are_for_their_owner_only(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "a")
    session_dir = _record_path(store, "a").parent
    assert stat.S_IMODE(session_dir.stat().st_mode) & 0o077 == 0, oct(session_dir.stat().st_mode)
    out = tmp_path / "a.json"
    psp("export", "a", "--format", "json", "-o", str(out), store=store)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["version"] == "1.0.0"


def test_an_export_to_a_special_file_writes_into_it_instead_of_replacing_it(tmp_path: Path) -> None:
    store = _store_with(tmp_path, "a")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    (tmp_path / "target").write_text("old")
    # The read end, held open without blocking: the export's write fits in the pipe.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        psp("export", "a", "--format", "json", "-o", str(fifo), store=store)
        try:
            received = os.read(reader, 1 << 16)
        except BlockingIOError:
            received = b""
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert json.loads(received)["version"] == "1.0.0"
    psp("export", "a", "--format", "json", "-o", str(link), store=store)
    assert link.is_symlink() and json.loads((tmp_path / "target").read_text())["version"] == "1.0.0"
    stdout = psp("export", "a", "--format", "json", "-o", "-", store=store)
    assert json.loads(stdout.stdout)["version"] == "1.0.0"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _write_redis_name(redis_url: str, prefix: str, name: str, session_id: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.hset(f"{prefix}:names", name, session_id)
    client.close()


def test_a_redis_name_entry_that_is_no_session_id_is_passed_over(redis_url: str, tmp_path: Path) -> None:
    prefix = f"psp-hard-{os.getpid()}"
    url = f"{redis_url}?prefix={prefix}"
    sessions = Sessions(open_store(url))

    async def save() -> Any:
        return await sessions.save("a", BrowserSessionState(version="1.0.0"))

    trio.run(save)
    _write_redis_name(redis_url, prefix, "evil", "x}:v:1")
    assert [s["name"] for s in json.loads(psp("ls", "--json", store=url).stdout)] == ["a"]
    _one_line_error(psp("show", "evil", store=url, check=False))


class _Secret(BaseHTTPRequestHandler):
    """Any path: a 1 MB page holding a marker, as an internal service the daemon could reach might."""

    MARKER = b"SECRET-BODY-MARKER"

    def do_GET(self) -> None:  # noqa: N802
        body = self.MARKER + b"x" * (1 << 20) + self.MARKER
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Internal", "SECRET-HEADER-MARKER")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_attaching_to_something_that_is_no_browser_never_returns_or_logs_what_it_answered(tmp_path: Path) -> None:
    from .test_daemon import RunningDaemon, error, stop_cleanly

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Secret)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    running = RunningDaemon(tmp_path / "daemon")
    try:
        with running.client() as http:
            for cdp in (f"ws://127.0.0.1:{server.server_address[1]}/any/page", f"http://127.0.0.1:{server.server_address[1]}"):
                message = error(http.post("/v1/browsers", json={"cdp": cdp}), 502)
                assert "MARKER" not in message and len(message) < 300, message
    finally:
        server.shutdown()
        stop_cleanly(running)
    assert "MARKER" not in running.stderr()


def test_a_playwright_state_with_an_endless_cookie_is_refused_at_import(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for expires in ("1e400", "-5", '"soon"'):
        state.write_text('{"cookies": [{"name": "sid", "value": "v", "domain": "a.test", "path": "/", "expires": %s}],'
                         ' "origins": []}' % expires)
        result = psp("import", str(state), "--name", "endless", "--format", "playwright", store=str(tmp_path / "s"), check=False)
        _one_line_error(result)
        assert "expires is not a time" in result.stderr


@pytest.mark.time_limit(60)
async def test_a_browser_that_stops_answering_fails_the_command_at_its_deadline(tmp_path: Path) -> None:
    from psp_cdp.cdp import launch_chromium, open_cdp
    from psp_cdp.errors import BrowserTimeoutError, ProtocolError

    with launch_chromium(user_data_dir=str(tmp_path / "profile")) as browser:
        async with open_cdp(browser.endpoint) as connection:
            with pytest.raises(ProtocolError, match="not finite"):
                await connection.send("Storage.setCookies", {"cookies": [{"name": "a", "value": "b", "expires": float("inf")}]})
            connection.command_timeout = 1.0
            os.kill(browser.process.pid, signal.SIGSTOP)
            try:
                started = trio.current_time()
                with pytest.raises(BrowserTimeoutError, match="did not answer within 1s"):
                    await connection.send("Browser.getVersion")
                assert trio.current_time() - started < 5
                with pytest.raises(BrowserTimeoutError, match="within 0.5s"):
                    await connection.send("Browser.getVersion", timeout=0.5)
            finally:
                os.kill(browser.process.pid, signal.SIGCONT)
            assert (await connection.send("Browser.getVersion"))["product"]  # the connection is still usable


def test_the_daemon_fails_a_capture_of_a_stopped_browser_and_lets_it_go(tmp_path: Path) -> None:
    from psp_cdp.cdp import launch_chromium

    from .test_daemon import RunningDaemon, stop_cleanly

    with launch_chromium(user_data_dir=str(tmp_path / "profile")) as browser:
        os.environ["PSP_CDP_TIMEOUT"] = "2"
        try:
            running = RunningDaemon(tmp_path / "daemon")
        finally:
            del os.environ["PSP_CDP_TIMEOUT"]
        try:
            with running.client() as http:
                attached = http.post("/v1/browsers", json={"cdp": browser.endpoint}).json()["id"]
                assert http.post("/v1/sessions", json={"name": "stopped"}).status_code == 201
                os.kill(browser.process.pid, signal.SIGSTOP)
                try:
                    started = time.monotonic()
                    captured = http.post("/v1/sessions/stopped/capture", json={"browser": attached})
                    assert captured.status_code in (502, 504), captured.text
                    assert "did not answer" in captured.json()["message"]
                    assert time.monotonic() - started < 30
                finally:
                    os.kill(browser.process.pid, signal.SIGCONT)
                assert http.delete(f"/v1/browsers/{attached}").status_code == 204
        finally:
            stop_cleanly(running)


def _big_state(value_bytes: int) -> bytes:
    from psp_cdp.snapshot import codec
    from psp_cdp.snapshot.model import OriginStorage, storage_items

    state = BrowserSessionState(version="1.0.0")
    state.storage.local_storage.append(storage_items(OriginStorage(origin="https://a.test"), {"k": "0" * value_bytes}))
    return codec.encode(state)


@pytest.mark.parametrize("limit, refused", [(1 << 20, True), (64 << 20, False)])
def test_a_container_that_expands_past_the_bound_is_refused_before_it_is_expanded(tmp_path: Path, limit: int, refused: bool) -> None:
    blob = tmp_path / "bomb.psp"
    blob.write_bytes(_big_state(6 << 20))  # 6 MiB of zeros: some KiB on disk
    assert blob.stat().st_size < 200_000
    result = subprocess.run([PSP, "import", str(blob), "--name", "bomb", "--store", str(tmp_path / "s")],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PSP_MAX_STATE_BYTES": str(limit)})
    if refused:
        _one_line_error(result)
        assert "expands past" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_the_default_bound_admits_large_states_and_refuses_a_gigabyte_value() -> None:
    from psp_cdp.errors import CorruptSnapshotError
    from psp_cdp.snapshot import codec

    assert codec.max_state_bytes() == codec.MAX_STATE_BYTES >= 512 << 20
    budget = codec._Budget(codec.MAX_STATE_BYTES)
    assert budget.chunk >= 200 << 20  # one 100 MiB IndexedDB record fits a chunk
    with pytest.raises(CorruptSnapshotError, match="expands past"):
        budget.take(codec.MAX_STATE_BYTES + 1)


def test_unexpected_errors_are_one_line_and_the_traceback_is_there_when_asked(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    command = [PSP, "import", str(deep), "--name", "deep", "--store", str(tmp_path / "s")]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=60)
    _one_line_error(plain)  # once a RecursionError's traceback; now refused by the importer itself
    assert "recursion" in plain.stderr or "nested too deeply" in plain.stderr
    # An error nobody foresaw (a command that raises RuntimeError) reaches the one boundary.
    broken = ("import sys, psp_cdp.cli as cli\n"
              "async def broken(args): raise RuntimeError('no one foresaw this')\n"
              "cli.cmd_ls = broken\n"
              f"sys.exit(cli.main(['ls', '--store', {str(tmp_path / 's')!r}]))\n")
    unexpected = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True, timeout=60)
    _one_line_error(unexpected)
    assert "unexpected RuntimeError" in unexpected.stderr and "no one foresaw" not in unexpected.stderr
    debug = subprocess.run([sys.executable, "-c", broken], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PSP_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "no one foresaw this" in debug.stderr


def _versions_dir(store: str, name: str) -> Path:
    return _record_path(store, name).parent / "versions"


def _save(store: str, name: str, marker: str) -> int:
    from psp_cdp.snapshot.model import OriginStorage, storage_items

    async def save() -> int:
        state = BrowserSessionState(version="1.0.0")
        state.storage.local_storage.append(storage_items(OriginStorage(origin="https://a.test"), {"k": marker}))
        _, version = await Sessions(open_store(store)).save(name, state)
        return version.version

    return trio.run(save)


def test_a_damaged_version_affects_only_itself_and_the_next_capture_is_whole(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for marker in ("one", "two", "three"):
        _save(store, "a", marker)
    versions = _versions_dir(store, "a")
    (versions / "2").write_bytes((versions / "2").read_bytes()[:12])  # its metadata cut short
    (versions / "5").mkdir()  # and a directory where no version should be
    log = json.loads(psp("log", "a", "--json", store=store).stdout)
    assert [(v["version"], v["kind"] == "damaged") for v in log] == [(1, False), (2, True), (3, False), (5, True)], log
    assert [s["name"] for s in json.loads(psp("ls", "--json", store=store).stdout)] == ["a"]
    assert "one" in psp("export", "a@1", "--format", "json", "-o", "-", store=store).stdout
    _one_line_error(psp("export", "a@2", "--format", "json", "-o", "-", store=store, check=False))
    assert _save(store, "a", "four") == 6
    assert json.loads(psp("log", "a", "--json", store=store).stdout)[-1]["kind"] == "full"
    assert "four" in psp("export", "a", "--format", "json", "-o", "-", store=store).stdout


def test_temporary_files_a_crashed_writer_left_are_swept(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    _save(store, "a", "one")
    versions = _versions_dir(store, "a")
    stale, fresh = versions / ".2.dead.tmp", versions / ".2.live.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half a version")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    psp("ls", store=store)
    assert not stale.exists() and fresh.exists(), "a writer's file still being written is left alone"


def test_a_first_save_that_fails_leaves_no_empty_session(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    (tmp_path / "not-a-keyring").write_text("garbage")
    result = subprocess.run([PSP, "import", "-", "--name", "y", "--store", store], input='{"version": "1.0.0"}',
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PSP_KEYRING": str(tmp_path / "not-a-keyring")})
    _one_line_error(result)
    assert json.loads(psp("ls", "--json", store=store).stdout) == []
    # The name is free again.
    again = subprocess.run([PSP, "import", "-", "--name", "y", "--store", store], input='{"version": "1.0.0"}',
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "version 1" in again.stdout, again.stderr


@pytest.mark.parametrize("fmt, content, said", [
    ("json", '{"version": "1.0.0", "storage": {"cookies": [{"name": "a", "value": "b", "domain": "a.test", "expires": "Infinity"}]}}',
     "expires is not a time"),
    ("playwright", '{"cookies": [], "origins": [{"origin": "https://a.test", "indexedDB": [{"name": "d", "version": -1, "stores": []}]}]}',
     "not a Playwright storageState"),
    ("playwright", '{"cookies": [{"name": "\\ud800", "value": "v", "domain": "a.test", "path": "/"}], "origins": []}',
     "not a Playwright storageState"),
])
def test_values_no_browser_takes_are_refused_at_import_in_one_line(tmp_path: Path, fmt: str, content: str, said: str) -> None:
    source = tmp_path / "state.json"
    source.write_text(content)
    result = psp("import", str(source), "--name", "odd", "--format", fmt, store=str(tmp_path / "s"), check=False)
    _one_line_error(result)
    assert said in result.stderr
    assert json.loads(psp("ls", "--json", store=str(tmp_path / "s")).stdout) == []


_HOLD_DATABASE = """
new Promise((resolve, reject) => {
  const request = indexedDB.open("held", 1);
  request.onupgradeneeded = () => request.result.createObjectStore("s");
  request.onsuccess = () => { window.held = request.result; resolve(true); };  // never closed, even when asked
  request.onerror = () => reject(request.error);
})
"""


async def test_a_restore_that_could_not_restore_something_exits_3_and_names_it(tmp_path: Path, site: Any, chromium: Any) -> None:
    """A page holding its database open kept a restore from writing it; the restore printed notes and exited 0."""
    from psp_cdp.cdp import open_cdp
    from psp_cdp.state import capture_state
    from psp_cdp.state.pages import evaluate

    from .helpers import browser_context, open_page

    store = str(tmp_path / "store")
    origin = site.url("127.0.0.1")
    async with open_cdp(chromium.endpoint) as cdp:
        async with browser_context(cdp) as source:
            page = await open_page(cdp, source.id, origin + "/page?title=source")
            await evaluate(page, _HOLD_DATABASE.replace("window.held = request.result;", "request.result.close();"))
            await evaluate(page, "new Promise(r => { const q = indexedDB.open('held', 2); "
                                 "q.onupgradeneeded = () => q.result.createObjectStore('t'); "
                                 "q.onsuccess = () => { q.result.transaction('t', 'readwrite').objectStore('t').put('v', 'k'); "
                                 "q.result.close(); r(true); }; })")
            state = await capture_state(cdp, context=source.id, only=["indexed_db", "local_storage"])
        sessions = Sessions(open_store(store))
        await sessions.save("held", state)
        for json_flag in ((), ("--json",)):
            async with browser_context(cdp) as target:
                page = await open_page(cdp, target.id, origin + "/page?title=target")
                assert await evaluate(page, _HOLD_DATABASE) is True
                result = await trio.to_thread.run_sync(lambda: subprocess.run(
                    [PSP, "restore", "held", "--cdp", chromium.endpoint, "--context", target.id, "--store", store,
                     "--no-daemon", *json_flag], capture_output=True, text=True, timeout=120))
                assert result.returncode == 3, result.stdout + result.stderr
                assert "Traceback" not in result.stderr
                if json_flag:
                    missing = json.loads(result.stdout)["missing"]
                    assert any("IndexedDB" in m and "held open by a page" in m for m in missing), missing
                else:
                    assert "not restored: IndexedDB database 'held'" in result.stdout, result.stdout
                    assert "the restore is partial" in result.stderr
                assert await evaluate(page, "window.held.objectStoreNames.length") == 1  # the page's database untouched
