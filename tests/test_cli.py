"""The `psp` command as a user runs it: a subprocess, its output and exit code.

Rules: each test has its own store directory; browsers are the shared ones; the site
is on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from psp_cdp.cdp import CdpConnection, LaunchedBrowser

from .helpers import browser_context
from .site import Site

PSP = os.path.join(os.path.dirname(sys.executable), "psp")


def psp(*args: str, store: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PSP, *args, "--store", store], capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise AssertionError(f"psp {args} failed: {result.stderr}")
    return result


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


async def test_capture_ls_show_export_import_restore_rm(
    tmp_path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser, chromium_b: LaunchedBrowser
) -> None:
    store = str(tmp_path / "store")
    async with browser_context(cdp) as source:
        await source.new_page(f"{site.url()}/set-cookie?c=token%3Dsecret-value%3B%20Max-Age%3D3600&next=/storage%3Flocal.k%3Dv")
        captured = psp("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "cli",
                       "--tag", "team=qa", "--description", "made by a test", "--json", store=store)
    info = json.loads(captured.stdout)
    assert info["name"] == "cli" and info["components"]["cookies"] == 1 and info["components"]["local_storage"] == 1
    assert site.url() in info["origins_covered"]

    listed = json.loads(psp("ls", "--json", "--tag", "team=qa", store=store).stdout)
    assert [s["name"] for s in listed] == ["cli"]
    assert json.loads(psp("ls", "--json", "--tag", "team=dev", store=store).stdout) == []
    assert "cli" in psp("ls", store=store).stdout

    shown = psp("show", "cli", "--json", store=store).stdout
    assert "secret-value" not in shown and "secret-value" not in psp("show", "cli", store=store).stdout
    assert json.loads(shown)["cookies"][0]["name"] == "token"

    for fmt in ("psp", "json"):
        exported = tmp_path / f"cli.{fmt}"
        psp("export", "cli", "--format", fmt, "-o", str(exported), store=store)
        psp("import", str(exported), "--name", f"copy-{fmt}", store=store)
        again = json.loads(psp("show", f"copy-{fmt}", "--json", store=store).stdout)
        assert again["components"] == info["components"]

    restored = json.loads(psp("restore", "cli", "--cdp", chromium_b.endpoint, "--context", "new", "--json", store=store).stdout)
    assert restored["restored"]["cookies"] == 1 and restored["restored"]["local_storage"] == 1
    assert restored["context"]

    assert "removed cli" in psp("rm", "cli", store=store).stdout
    assert_clean_error(psp("show", "cli", store=store, check=False), "no session named 'cli'")


def test_unknown_name_lists_similar_names(tmp_path) -> None:
    store = str(tmp_path)
    empty = tmp_path / "empty.json"
    empty.write_text('{"version": "1.0.0"}')
    psp("import", str(empty), "--name", "login-prod", store=store)
    result = psp("restore", "login-prd", "--cdp", "1", store=store, check=False)
    assert_clean_error(result, "login-prd", "login-prod")


@pytest.mark.parametrize("endpoint", ["1", "http://127.0.0.1:1", "not an endpoint", "/nonexistent/profile"])
def test_unreachable_endpoints_fail_cleanly(tmp_path, endpoint: str) -> None:
    result = psp("capture", "--cdp", endpoint, "--name", "x", store=str(tmp_path), check=False)
    assert_clean_error(result, endpoint.split("://")[-1])
    assert psp("ls", "--json", store=str(tmp_path)).stdout.strip() == "[]"


def test_http_server_that_is_not_a_browser(tmp_path, site: Site) -> None:
    result = psp("capture", "--cdp", site.url(), "--name", "x", store=str(tmp_path), check=False)
    assert_clean_error(result, site.url(), "not a Chromium DevTools endpoint")


def test_corrupted_session_file_is_named(tmp_path) -> None:
    store = str(tmp_path)
    source = tmp_path / "s.json"
    source.write_text('{"version": "1.0.0", "origin": "https://example.com"}')
    psp("import", str(source), "--name", "a", store=store)
    psp("import", str(source), "--name", "b", store=store)
    session_id = json.loads(psp("show", "a", "--json", store=store).stdout)["id"]
    state = tmp_path / "sessions" / session_id / "versions" / "1"
    state.write_bytes(state.read_bytes()[:-7])
    assert_clean_error(psp("show", "a", store=store, check=False), str(state), "version 1")
    assert json.loads(psp("show", "b", "--json", store=store).stdout)["name"] == "b"


def test_bad_names_and_garbage_imports(tmp_path) -> None:
    assert_clean_error(psp("capture", "--cdp", "1", "--name", "../evil", store=str(tmp_path), check=False), "invalid session name")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff\xfe garbage")
    assert_clean_error(psp("import", str(garbage), "--name", "g", store=str(tmp_path), check=False), str(garbage))
    assert psp("ls", "--json", store=str(tmp_path)).stdout.strip() == "[]"


async def test_versions_log_diff_restore_at_and_keys(
    tmp_path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser, chromium_b: LaunchedBrowser
) -> None:
    store = str(tmp_path / "store")
    env_keys = str(tmp_path / "keys")
    os.environ["PSP_KEYRING"], saved = env_keys, os.environ["PSP_KEYRING"]
    try:
        async with browser_context(cdp) as source:
            page = await source.new_page(f"{site.url()}/storage?local.theme=dark&local.big=" + "x" * 5000)
            psp("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "v", store=store)
            await page.send("Runtime.evaluate", {"expression": "localStorage.setItem('theme', 'light')"})
            second = json.loads(psp("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "v",
                                    "--json", store=store).stdout)
        assert second["version"]["version"] == 2 and second["version"]["kind"] == "delta"

        log = json.loads(psp("log", "v", "--json", store=store).stdout)
        assert [(v["version"], v["kind"]) for v in log] == [(1, "full"), (2, "delta")]
        assert all(isinstance(v["stored_bytes"], int) and v["stored_bytes"] > 0 and v["created_at"] > 0 for v in log)
        assert log[1]["stored_bytes"] < log[0]["stored_bytes"]
        assert "delta" in psp("log", "v", store=store).stdout

        changes = psp("diff", "v@1", "v@2", store=store).stdout
        assert "~ local_storage: localStorage 'theme'" in changes and "light" not in changes and "dark" not in changes
        assert json.loads(psp("diff", "v@1", "v@2", "--json", store=store).stdout)["summary"]["local_storage"]["changed"] == 1

        restored = json.loads(psp("restore", "v@1", "--cdp", chromium_b.endpoint, "--context", "new", "--json",
                                  store=store).stdout)
        assert restored["restored"]["local_storage"] == 2
        assert_clean_error(psp("restore", "v@9", "--cdp", chromium_b.endpoint, store=store, check=False), "no version 9")

        old_key = json.loads(psp("keys", "list", "--json", store=store).stdout)["keys"][0]["id"]
        assert "new current key" in psp("keys", "rotate", store=store).stdout
        keys = json.loads(psp("keys", "list", "--json", store=store).stdout)["keys"]
        assert {k["id"]: k["versions"] for k in keys}[old_key] == 2
        assert "re-sealed 2 version(s)" in psp("keys", "rewrap", store=store).stdout
        keys = json.loads(psp("keys", "list", "--json", store=store).stdout)["keys"]
        assert [k["versions"] for k in keys if k["current"]] == [2]
        for root, _, files in os.walk(store):
            for name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    assert b"dark" not in fh.read()
    finally:
        os.environ["PSP_KEYRING"] = saved


async def test_watch_writes_a_delta_per_change_and_stops_cleanly(
    tmp_path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    import signal

    import trio

    store = str(tmp_path / "store")
    async with browser_context(cdp) as source:
        page = await source.new_page(f"{site.url()}/storage?local.step=0")
        watcher = subprocess.Popen(
            [PSP, "watch", "--cdp", chromium.endpoint, "--context", source.id, "--name", "w", "--store", store,
             "--cookie-interval", "0.5", "--debounce", "0.2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            first = await trio.to_thread.run_sync(watcher.stdout.readline)
            assert first.startswith("watching w: version 1 (full"), first + watcher.stderr.read()
            await page.send("Runtime.evaluate", {"expression": "localStorage.setItem('step', '1')"})
            line = await trio.to_thread.run_sync(watcher.stdout.readline)
            assert line.startswith("version 2 (delta") and "local_storage" in line, line
            await page.send("Runtime.evaluate", {"expression": "document.cookie = 'seen=yes; path=/'"})
            line = await trio.to_thread.run_sync(watcher.stdout.readline)
            assert line.startswith("version 3 (") and "cookies" in line, line  # full or delta: the state is tiny
            # A change right before SIGTERM is still written.
            await page.send("Runtime.evaluate", {"expression": "localStorage.setItem('step', 'last')"})
            await trio.sleep(0.05)
            watcher.send_signal(signal.SIGTERM)
            out, err = await trio.to_thread.run_sync(watcher.communicate, None, 30)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert watcher.returncode == 0, err
    assert out.strip().endswith("version(s) written"), out
    log = json.loads(psp("log", "w", "--json", store=store).stdout)
    assert [v["kind"] for v in log][:2] == ["full", "delta"] and len(log) >= 4
    shown = json.loads(psp("show", "w", "--json", store=store).stdout)
    assert [c["name"] for c in shown["cookies"]] == ["seen"]
    exported = json.loads(psp("export", "w", "--format", "json", "-o", "-", store=store).stdout)
    items = {i["key"]["text"]: i["value"]["text"] for s in exported["storage"]["localStorage"] for i in s["items"]}
    assert items["step"] == "last"


async def test_capture_and_restore_go_through_a_daemon_serving_the_same_store(
    tmp_path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser, chromium_b: LaunchedBrowser
) -> None:
    from .test_daemon import RunningDaemon

    daemon = RunningDaemon(tmp_path / "daemon")
    # The command's own keyring is unusable: only the daemon (its keyring) can seal what it writes.
    through = {**os.environ, "PSP_SOCKET": daemon.socket, "PSP_KEY": "not a key"}

    def run(*args: str, env: dict[str, str], store: str = daemon.store) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PSP, *args, "--store", store], capture_output=True, text=True, timeout=60, env=env)

    try:
        async with browser_context(cdp) as source:
            await source.new_page(f"{site.url()}/set-cookie?c=via%3Ddaemon%3B%20Max-Age%3D600&next=/storage%3Flocal.k%3Dv")
            delegated = run("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "d", "--tag", "a=1",
                            env=through)
            assert delegated.returncode == 0, delegated.stderr
            assert delegated.stdout.startswith("captured d version 1 (full, "), delegated.stdout
            assert "1 cookies, 1 localStorage items" in delegated.stdout
            assert f"origins covered: {site.url()}" in delegated.stdout
            as_json = json.loads(run("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "d",
                                     "--json", env=through).stdout)
            assert as_json["version"]["version"] == 2 and as_json["tags"] == {"a": "1"}
            # Another store: the daemon is not used, and the unusable keyring shows it.
            elsewhere = run("capture", "--cdp", chromium.endpoint, "--context", source.id, "--name", "d",
                            env=through, store=str(tmp_path / "other"))
            assert elsewhere.returncode == 1 and "PSP_KEY" in elsewhere.stderr
        restored = run("restore", "d@1", "--cdp", chromium_b.endpoint, "--context", "new", "--json", env=through)
        assert restored.returncode == 0, restored.stderr
        result = json.loads(restored.stdout)
        assert result["version"] == 1 and result["restored"]["cookies"] == 1 and result["context"]
        listed = json.loads(run("ls", "--json", env={**os.environ, "PSP_NO_DAEMON": "1"}).stdout)
        assert [s["name"] for s in listed] == ["d"]
    finally:
        assert daemon.terminate() == 0, daemon.stderr()
