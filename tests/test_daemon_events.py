"""`psp daemon`, second part: re-attaching browsers, the hot versions cache, watches, and events
across daemons sharing a Redis store.

Daemons are ``psp daemon`` subprocesses (:class:`tests.test_daemon.RunningDaemon`); clients are
httpx, :mod:`psp_cdp.client` and WebSockets over the Unix socket; browsers are the shared test
ones, and a Chromium of the test's own where one has to die and come back.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from psp_cdp.cdp import CdpConnection, LaunchedBrowser, find_chromium, launch_chromium
from psp_cdp.cdp.launch import DEFAULT_ARGS
from psp_cdp.client import AsyncClient, Client, DaemonError

from .conftest import CHROMIUM_ARGS
from .helpers import browser_context, dispose_browser_context, evaluate, wait_until
from .site import Site
from .test_daemon import PSP, RunningDaemon, error, stop_cleanly

#: Fast watch settings for the tests: a batch is captured 0.1 s after the last change.
FAST = {"debounce": 0.1, "cookie_interval": 0.2, "max_delay": 1.0}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path_factory.mktemp("daemon-events"))
    try:
        yield running
    finally:
        stop_cleanly(running)


@asynccontextmanager
async def events(daemon: RunningDaemon, query: str = "") -> AsyncIterator[WebSocketConnection]:
    """A WebSocket on the daemon's /v1/events."""
    async with trio.open_nursery() as nursery:
        stream = await trio.open_unix_socket(daemon.socket)
        ws = await wrap_client_stream(nursery, stream, "localhost", f"/v1/events{query}")
        try:
            yield ws
        finally:
            await ws.aclose()


async def next_version(ws: WebSocketConnection, number: int, *, timeout: float = 20.0) -> dict[str, Any]:
    """The ``version`` event of version ``number`` (earlier events are skipped)."""
    with trio.fail_after(timeout):
        while True:
            event = json.loads(await ws.get_message())
            if event["type"] == "version" and event["version"]["version"] == number:
                return event


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_on_port(port: int, profile: str, timeout: float = 30.0) -> LaunchedBrowser:
    """Chromium with the project's flags on a fixed port (launch_chromium takes port 0, and Chromium
    writes DevToolsActivePort only for port 0, so this one is asked at /json/version until it answers)."""
    command = [
        find_chromium(), *DEFAULT_ARGS, *CHROMIUM_ARGS, f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1", "about:blank",
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with opener.open(f"http://127.0.0.1:{port}/json/version", timeout=2) as answer:
                ws_url = json.loads(answer.read())["webSocketDebuggerUrl"]
            return LaunchedBrowser(process, profile, port, ws_url)
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"Chromium did not answer on port {port} within {timeout:g} s")


# -- the attach manager ------------------------------------------------------------------


@pytest.mark.time_limit(120)
async def test_a_restarted_browser_is_attached_again(daemon: RunningDaemon, tmp_path: Path, site: Site) -> None:
    port = free_port()
    profile = str(tmp_path / "profile")

    def launch() -> LaunchedBrowser:
        return launch_on_port(port, profile)

    browser = await trio.to_thread.run_sync(launch)
    try:
        assert browser.port == port
        async with AsyncClient(daemon.socket) as psp:
            await psp.create_session("restarted")
            # Attached by its ws:// URL, whose /devtools/browser/<id> changes when the browser restarts.
            attached = await psp.attach(browser.ws_url)
            assert attached["attached"] is True and attached["reconnects"] == 0 and attached["last_error"] is None
            assert (await psp.capture("restarted", attached["id"]))["version"] == 1
            watch = await psp.watch("restarted", attached["id"], **FAST)
            assert watch["last_version"] == 2

            await trio.to_thread.run_sync(browser.kill)

            async def lost() -> bool:
                [listed] = [b for b in await psp.browsers() if b["id"] == attached["id"]]
                return listed["attached"] is False

            await wait_until(lost, timeout=15)
            [listed] = [b for b in await psp.browsers() if b["id"] == attached["id"]]
            assert listed["reason"] and listed["last_error"], listed
            with pytest.raises(DaemonError) as caught:
                await psp.capture("restarted", attached["id"])
            assert caught.value.status == 502
            assert attached["id"] in caught.value.daemon_message and "not attached" in caught.value.daemon_message
            # Its watch ended with the connection; it stays listed, failed, until deleted.
            async def watch_failed() -> bool:
                return (await psp.watch_info(watch["watch"]))["state"] == "failed"

            await wait_until(watch_failed)
            assert (await psp.watch_info(watch["watch"]))["error"]
            await psp.unwatch(watch["watch"])
            assert watch["watch"] not in [w["id"] for w in await psp.watches()]

            await trio.sleep(1.0)  # a few attempts fail meanwhile
            browser = await trio.to_thread.run_sync(launch)

            async def back() -> bool:
                [listed] = [b for b in await psp.browsers() if b["id"] == attached["id"]]
                return listed["attached"] is True

            await wait_until(back, timeout=20)
            [listed] = [b for b in await psp.browsers() if b["id"] == attached["id"]]
            assert listed["reconnects"] == 1 and listed["reason"] is None and listed["last_error"], listed
            assert "Chrome" in listed["browser"]
            captured = await psp.capture("restarted", attached["id"])
            assert captured["version"] == 3

            await psp.detach(attached["id"])
            assert attached["id"] not in [b["id"] for b in await psp.browsers()]
        # Detached: it keeps running, and is left alone from now on.
        assert browser.alive()
    finally:
        await trio.to_thread.run_sync(browser.close)


async def test_detached_browser_is_not_attached_again(daemon: RunningDaemon, tmp_path: Path) -> None:
    browser = await trio.to_thread.run_sync(lambda: launch_chromium(user_data_dir=str(tmp_path / "p"), args=CHROMIUM_ARGS))
    try:
        async with daemon.async_client() as http:
            attached = (await http.post("/v1/browsers", json={"cdp": browser.endpoint})).json()
            await trio.to_thread.run_sync(browser.kill)

            async def lost() -> bool:
                return (await http.get(f"/v1/browsers/{attached['id']}")).json()["attached"] is False

            await wait_until(lost)
            assert (await http.delete(f"/v1/browsers/{attached['id']}")).status_code == 204
            error(await http.get(f"/v1/browsers/{attached['id']}"), 404)
            error(await http.post("/v1/sessions/x/capture", json={"browser": attached["id"]}), 404)
    finally:
        await trio.to_thread.run_sync(browser.close)


# -- the hot versions cache -------------------------------------------------------------------


async def test_a_repeated_restore_reads_nothing_from_the_store(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, cdp_b: CdpConnection,
    chromium: LaunchedBrowser, chromium_b: LaunchedBrowser,
) -> None:
    async with AsyncClient(daemon.socket) as psp:
        source = await psp.attach(chromium.endpoint)
        target = await psp.attach(chromium_b.endpoint)
        await psp.create_session("hot")
        async with browser_context(cdp) as context:
            await context.new_page(f"{site.url()}/storage?local.k=v")
            assert (await psp.capture("hot", source["id"], context=context.id))["version"] == 1
            await context.new_page(f"{site.url()}/storage?local.k2=v2")
            assert (await psp.capture("hot", source["id"], context=context.id))["kind"] == "delta"

        contexts = []
        try:
            before = await psp.stats()
            first = await psp.restore("hot", target["id"], context="new")
            contexts.append(first["context"])
            after_first = await psp.stats()
            # The first restore of version 2 (a delta) reads and decodes its chain: versions 1 and 2.
            assert after_first["versions_decoded"] - before["versions_decoded"] == 2
            second = await psp.restore("hot", target["id"], context="new")
            contexts.append(second["context"])
            after_second = await psp.stats()
            assert after_second["versions_decoded"] == after_first["versions_decoded"]
            assert after_second["cache"]["hits"] > after_first["cache"]["hits"]
            assert second["restored"] == first["restored"] and second["restored"]["local_storage"] == 2
            # A version not restored before is read and decoded (version 1: one full blob).
            third = await psp.restore("hot", target["id"], context="new", version=1)
            contexts.append(third["context"])
            assert (await psp.stats())["versions_decoded"] == after_second["versions_decoded"] + 1
            assert third["restored"]["local_storage"] == 1
        finally:
            for context_id in contexts:
                if context_id:
                    await dispose_browser_context(cdp_b, context_id)
        cache = (await psp.stats())["cache"]
        assert cache["entries"] >= 2 and 0 < cache["bytes"] <= cache["limit_bytes"] == 256 * 1024 * 1024
        # Deleting the session forgets its versions.
        entries = cache["entries"]
        await psp.delete_session("hot")
        assert (await psp.stats())["cache"]["entries"] < entries
        for browser in (source, target):
            await psp.detach(browser["id"])


# -- watches ---------------------------------------------------------------------------------

@pytest.mark.time_limit(90)
async def test_watch_writes_a_version_per_change(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    async with AsyncClient(daemon.socket) as psp, browser_context(cdp) as context:
        browser = await psp.attach(chromium.endpoint)
        session = await psp.create_session("watched")
        page = await context.new_page(f"{site.url()}/storage?local.k=v")
        async with events(daemon, "?session=watched&delta=1") as ws:
            started = await psp.watch("watched", browser["id"], context=context.id, **FAST)
            watch_id = started["watch"]
            assert started["id"] == watch_id and started["state"] == "running"
            assert started["versions"] == 1 and started["last_version"] == 1
            assert started["session"] == {"id": session.id, "name": "watched"}
            first = await next_version(ws, 1)
            assert first["delta"]["from"] is None and first["delta"]["changes"]["local_storage"]["added"] >= 1

            await evaluate(page, "localStorage.setItem('watched-key', 'a value the event must not carry'); 1")
            second = await next_version(ws, 2)
            assert second["session"]["name"] == "watched" and second["session"]["head"] == 2
            assert second["version"]["kind"] == "delta"
            delta = second["delta"]
            assert delta["from"] == 1 and delta["changes"]["local_storage"] == {"added": 1, "changed": 0, "removed": 0}
            assert delta["items"]["local_storage"]["added"] == [f"localStorage 'watched-key' of {site.url()}"]
            assert "a value the event must not carry" not in json.dumps(second)

            listed = {w["id"]: w for w in await psp.watches()}
            assert listed[watch_id]["versions"] >= 2 and listed[watch_id]["state"] == "running"
            assert (await psp.watch_info(watch_id))["browser"] == browser["id"]

            await psp.unwatch(watch_id)
        assert watch_id not in [w["id"] for w in await psp.watches()]
        assert [v.version for v in await psp.versions("watched")][:2] == [1, 2]
        with pytest.raises(DaemonError) as caught:
            await psp.unwatch(watch_id)
        assert caught.value.status == 404
        await psp.detach(browser["id"])


async def test_watch_bad_requests(daemon: RunningDaemon) -> None:
    async with daemon.async_client() as http:
        await http.post("/v1/sessions", json={"name": "watch-errors"})
        error(await http.post("/v1/sessions/watch-errors/watch", json={}), 422, "'browser' is required")
        error(await http.post("/v1/sessions/watch-errors/watch", json={"browser": "b", "debounce": -1}), 422, "debounce")
        error(await http.post("/v1/sessions/watch-errors/watch", json={"browser": "b", "every": 1}), 422, "every")
        error(await http.post("/v1/sessions/watch-errors/watch", json={"browser": "no-such-browser"}), 404, "no-such-browser")
        error(await http.post("/v1/sessions/no-such-session/watch", json={"browser": "b"}), 404, "no-such-session")
        error(await http.get("/v1/watches/no-such-watch"), 404, "no-such-watch")
        error(await http.delete("/v1/watches/no-such-watch"), 404, "no-such-watch")
        assert (await http.get("/v1/watches")).status_code == 200


async def test_deleting_a_watched_session_stops_its_watch(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    async with AsyncClient(daemon.socket) as psp, browser_context(cdp) as context:
        browser = await psp.attach(chromium.endpoint)
        await psp.create_session("watched-then-deleted")
        await context.new_page(f"{site.url()}/storage?local.k=v")
        watch = await psp.watch("watched-then-deleted", browser["id"], context=context.id, **FAST)
        await psp.delete_session("watched-then-deleted")
        assert watch["watch"] not in [w["id"] for w in await psp.watches()]
        await trio.sleep(0.5)
        assert "watched-then-deleted" not in [s.name for s in await psp.sessions()]
        await psp.detach(browser["id"])


# -- events across daemons ---------------------------------------------------------------------


@pytest.fixture
def shared_store(redis_url: str) -> str:
    """The test Redis, under a key prefix of this test's own."""
    return f"{redis_url}?prefix=daemon-events-{secrets.token_hex(4)}"


@pytest.mark.time_limit(120)
async def test_versions_written_through_one_daemon_reach_the_other(
    tmp_path: Path, shared_store: str, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    a, b = await trio.to_thread.run_sync(
        lambda: (RunningDaemon(tmp_path / "a", store=shared_store), RunningDaemon(tmp_path / "b", store=shared_store))
    )
    try:
        async with AsyncClient(a.socket) as through_a, AsyncClient(b.socket) as through_b:
            assert (await through_b.version())["capabilities"]["shared_events"] is True

            async def following(client: AsyncClient) -> bool:
                return (await client.stats())["events"]["store_notices"]["following"]

            await wait_until(lambda: following(through_a))
            await wait_until(lambda: following(through_b))
            browser = await through_a.attach(chromium.endpoint)
            await through_a.create_session("shared")
            async with events(b, "?session=shared&delta=1") as on_b, events(a, "?session=shared") as on_a, \
                    browser_context(cdp) as context:
                await context.new_page(f"{site.url()}/storage?local.k=v")
                await through_a.capture("shared", browser["id"], context=context.id)
                first = await next_version(on_b, 1)
                assert first["session"]["name"] == "shared" and first["version"]["kind"] == "full"
                assert first["delta"]["from"] is None
                assert f"localStorage 'k' of {site.url()}" in first["delta"]["items"]["local_storage"]["added"]

                await context.new_page(f"{site.url()}/storage?local.k=changed&local.k2=v2")
                await through_a.capture("shared", browser["id"], context=context.id)
                second = await next_version(on_b, 2)
                assert second["version"]["kind"] == "delta"
                items = second["delta"]["items"]["local_storage"]
                assert items["added"] == [f"localStorage 'k2' of {site.url()}"]
                assert items["changed"] == [f"localStorage 'k' of {site.url()}"]
                assert second["delta"]["changes"]["local_storage"] == {"added": 1, "changed": 1, "removed": 0}

                # A version written by a psp command sharing the store reaches both daemons' subscribers.
                captured = await trio.to_thread.run_sync(lambda: subprocess.run(
                    [PSP, "capture", "--cdp", chromium.endpoint, "--name", "shared", "--context", context.id,
                     "--store", shared_store],
                    capture_output=True, text=True, timeout=60,
                ))
                assert captured.returncode == 0, captured.stderr
                assert (await next_version(on_b, 3))["session"]["head"] == 3

                # Daemon A announced each version once, though it came back to it through Redis.
                seen = []
                with trio.move_on_after(1.0):
                    while True:
                        event = json.loads(await on_a.get_message())
                        seen.append(event["version"]["version"])
                assert seen == [1, 2, 3]
            stats = await through_b.stats()
            assert stats["events"]["forwarded"] >= 3
            await through_a.detach(browser["id"])
            await through_a.delete_session("shared")
    finally:
        for running in (a, b):
            assert await trio.to_thread.run_sync(running.terminate) == 0, running.stderr()
            assert "Traceback" not in running.stderr(), running.stderr()


def test_sync_client_stats_and_watches(daemon: RunningDaemon) -> None:
    with Client(daemon.socket) as psp:
        stats = psp.stats()
        assert stats["cache"]["limit_bytes"] == 256 * 1024 * 1024 and stats["versions_decoded"] >= 0
        assert stats["events"]["store_notices"]["following"] is False  # a filesystem store has no notices
        assert isinstance(psp.watches(), list)
        with pytest.raises(DaemonError) as caught:
            psp.watch_info("no-such-watch")
        assert caught.value.status == 404
        capabilities = psp.version()["capabilities"]
        assert capabilities["watch"] is True and capabilities["event_deltas"] is True
        assert capabilities["shared_events"] is False
