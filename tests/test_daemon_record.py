"""`psp daemon`: recordings and replays through the control API (/v1/recordings, /v1/replays).

The daemon is a ``psp daemon`` subprocess (:class:`tests.test_daemon.RunningDaemon`); clients are
httpx and :mod:`psp_cdp.client` over its Unix socket, and a WebSocket on /v1/events. The user is
:class:`tests.test_record.User` at the keyboard and mouse of a tab of the shared ``chromium``;
replays go into the second shared browser, ``chromium_b``, or into a fresh context of the first.
Each test works in fresh browser contexts, disposed of afterwards; a browser that has to die is
the test's own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from psp_cdp.cdp import CdpConnection, LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.client import AsyncClient, DaemonError
from psp_cdp.daemon.schema import ref, validate
from psp_cdp.record.session import load_recording
from psp_cdp.store import Sessions, open_store

from .helpers import browser_context, dispose_browser_context, evaluate, wait_until
from .site import Site
from .test_daemon import RunningDaemon, error, stop_cleanly
from .test_daemon_events import events
from .test_record import User, only_page


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path_factory.mktemp("daemon-record"))
    try:
        yield running
    finally:
        stop_cleanly(running)


class Feed:
    """Every message of a /v1/events WebSocket, gathered as they come."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0) -> dict[str, Any]:
        async def seen() -> bool:
            return any(predicate(e) for e in self.events)

        await wait_until(seen, timeout=timeout)
        return next(e for e in self.events if predicate(e))


@asynccontextmanager
async def feed(daemon: RunningDaemon, query: str = "") -> AsyncIterator[Feed]:
    gathered = Feed()
    async with events(daemon, query) as ws, trio.open_nursery() as nursery:

        async def gather() -> None:
            while True:
                gathered.events.append(json.loads(await ws.get_message()))

        nursery.start_soon(gather)
        yield gathered
        nursery.cancel_scope.cancel()


async def attach(http: httpx.AsyncClient, browser: LaunchedBrowser) -> str:
    attached = await http.post("/v1/browsers", json={"cdp": browser.endpoint})
    assert attached.status_code == 201, attached.text
    return str(attached.json()["id"])


_FORM = (
    "JSON.stringify({name: document.querySelector('#name').value, terms: document.querySelector('#terms').checked,"
    " answer: document.querySelector('#answer').textContent})"
)


@pytest.mark.time_limit(120)
async def test_record_over_the_api_then_replay_into_another_browser(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, cdp_b: CdpConnection,
    chromium: LaunchedBrowser, chromium_b: LaunchedBrowser,
) -> None:
    async with daemon.async_client() as http, feed(daemon, "?session=api-flow") as seen:
        source, target = await attach(http, chromium), await attach(http, chromium_b)
        async with browser_context(cdp) as context:
            tab = await context.new_page(site.url(path="/flow"))
            started = await http.post(
                "/v1/recordings", json={"browser": source, "session": "api-flow", "context": context.id, "dom": True}
            )
            assert started.status_code == 201, started.text
            recording = started.json()
            assert recording["state"] == "recording" and recording["events"] == 0 and recording["version"] is None
            assert recording["session"]["name"] == "api-flow" and recording["browser"] == source
            assert recording["started_at"] and started.headers["location"] == f"/v1/recordings/{recording['id']}"
            await seen.wait_for(lambda e: e["type"] == "created")  # the session was made for it
            await seen.wait_for(lambda e: e["type"] == "recording.started" and e["recording"] == recording["id"])
            # One recording per browser context.
            error(await http.post("/v1/recordings", json={"browser": source, "session": "other", "context": context.id}),
                  409, "being recorded")

            user = User(tab)
            await user.click("#name")
            await user.type("Ann Lee")
            await user.click("#terms")
            await user.click("#send")
            await wait_until(lambda: evaluate(tab, "document.querySelector('#answer').textContent !== ''"))
            recorded = json.loads(await evaluate(tab, _FORM))
            assert recorded["name"] == "Ann Lee" and recorded["terms"] is True and recorded["answer"]

            click = await seen.wait_for(lambda e: e["type"] == "recording.event" and e["event"]["type"] == "click")
            assert click["recording"] == recording["id"] and click["session"]["name"] == "api-flow"
            assert click["event"]["target"] and click["event"]["selectors"][0] == click["event"]["target"]
            assert click["event"]["data"]["button"] == "left" and click["event"]["tab"] == 0 and click["event"]["frame"] == []
            typed = await seen.wait_for(
                lambda e: e["type"] == "recording.event" and e["event"]["type"] == "input" and e["event"]["data"].get("value") == "Ann Lee"
            )
            assert typed["event"]["timestamp"] >= click["event"]["timestamp"]
            await seen.wait_for(lambda e: e["type"] == "recording.event" and e["event"]["type"] == "mutation")
            running = (await http.get(f"/v1/recordings/{recording['id']}")).json()
            assert running["state"] == "recording" and running["events"] >= 10 and running["exchanges"] >= 1
            assert recording["id"] in [r["id"] for r in (await http.get("/v1/recordings")).json()]

            stopped = await http.post(f"/v1/recordings/{recording['id']}/stop")
        assert stopped.status_code == 200, stopped.text
        result = stopped.json()
        assert (result["state"], result["version"], result["stop_reason"]) == ("saved", 1, "asked")
        assert result["events"] >= 10 and result["mutations"] >= 1 and result["stored_bytes"] > 0 and result["duration_ms"] > 0
        assert result["exchanges"] >= 2  # the page, and the form's POST
        validate(result, ref("Recording"))
        saved = await seen.wait_for(lambda e: e["type"] == "recording.saved")
        assert saved["details"] == result and saved["version"]["version"] == 1
        version_event = next(e for e in seen.events if e["type"] == "version")
        assert seen.events.index(version_event) < seen.events.index(saved)
        # Stopping again (or with DELETE) answers what was saved, and writes nothing more.
        assert (await http.post(f"/v1/recordings/{recording['id']}/stop")).json() == result
        deleted = await http.delete(f"/v1/recordings/{recording['id']}")
        assert (deleted.status_code, deleted.json()) == (200, result)
        assert [v["version"] for v in (await http.get("/v1/sessions/api-flow/versions")).json()] == [1]

        # The version holds the recording.
        sessions = Sessions(open_store(daemon.store))
        info, number, state = await load_recording(sessions, "api-flow")
        assert (info.name, number) == ("api-flow", 1)
        kinds = [e.type for e in state.recording.events]
        assert {"click", "keydown", "keyup", "input", "change"} <= set(kinds)
        assert len(state.recording.events) == result["events"] and len(state.recording.mutations) == result["mutations"]
        assert any(x.method == "POST" and x.url.endswith("/api/flow") for x in state.recording.exchanges)

        # Replayed into the second browser, as fast as it goes, the network answered from the recording.
        replayed = await http.post("/v1/replays", json={"browser": target, "session": "api-flow", "context": "new", "max": True})
        assert replayed.status_code == 200, replayed.text
        report = replayed.json()
        assert report["failed"] is False and report["state"] == "finished" and report["error"] is None, report
        assert report["counts"]["failed"] == 0 and len(report["steps"]) == len(kinds)
        assert (report["version"], report["speed"], report["network"]) == (1, None, "mock")
        assert report["answered"] >= 2 and report["session"]["name"] == "api-flow"
        context_b = report["restore"]["context"]
        assert context_b
        try:
            page_b = await only_page(cdp_b, context_b)
            assert json.loads(await evaluate(page_b, _FORM)) == recorded
        finally:
            await dispose_browser_context(cdp_b, context_b)
        step = await seen.wait_for(lambda e: e["type"] == "replay.step")
        assert step["replay"] == report["id"] and step["step"] == report["steps"][0]
        finished = await seen.wait_for(lambda e: e["type"] == "replay.finished")
        assert finished["replay"] == report["id"] and finished["report"] == report
        assert len(seen.of("replay.step")) == len(report["steps"])
        assert (await http.get(f"/v1/replays/{report['id']}")).json() == report
        validate(report, ref("Replay"))
        validate(recording, ref("Recording"))
        validate(running, ref("Recording"))
        for event in seen.events:  # as documented
            validate(event, ref("Event"))
        assert {e["type"] for e in seen.events} == {
            "created", "recording.started", "recording.event", "version", "recording.saved", "replay.step", "replay.finished"
        }
        assert report["id"] in [r["id"] for r in (await http.get("/v1/replays")).json()]

        for browser in (source, target):
            assert (await http.delete(f"/v1/browsers/{browser}")).status_code == 204


async def test_errors(daemon: RunningDaemon, cdp: CdpConnection, chromium: LaunchedBrowser) -> None:
    async with daemon.async_client() as http:
        browser = await attach(http, chromium)
        # Unknown browser: 404, and no session made.
        error(await http.post("/v1/recordings", json={"browser": "nope", "session": "not-made"}), 404, "nope")
        error(await http.post("/v1/replays", json={"browser": "nope", "session": "not-made"}), 404, "nope")
        # Bodies that fail validation: 422.
        error(await http.post("/v1/recordings", json={"browser": browser}), 422, "'session' is required")
        error(await http.post("/v1/recordings", json={"browser": browser, "session": "x", "colour": 1}), 422, "unknown field 'colour'")
        error(await http.post("/v1/recordings", json={"browser": browser, "session": "x", "duration": 0}), 422, "duration")
        error(await http.post("/v1/recordings", json={"browser": browser, "session": "bad name"}), 422, "session")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "x", "speed": 0}), 422, "speed")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "x", "speed": -1}), 422, "speed")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "x", "network": "offline"}), 422, "network")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "x", "speed": 2, "max": True}), 422, "not both")
        error(await http.post("/v1/recordings", content=b'{"browser": '), 400, "not JSON")
        # A context the browser does not have: 422, and no session made.
        error(await http.post("/v1/recordings", json={"browser": browser, "session": "not-made", "context": "ABCDEF"}),
              422, "ABCDEF")
        error(await http.get("/v1/sessions/not-made"), 404)
        # Replays of sessions without a recording: 422 (unknown sessions and versions: 404).
        error(await http.post("/v1/replays", json={"browser": browser, "session": "nobody"}), 404, "nobody")
        assert (await http.post("/v1/sessions", json={"name": "empty"})).status_code == 201
        error(await http.post("/v1/replays", json={"browser": browser, "session": "empty"}), 422, "has no recording",
              "POST /v1/recordings")
        async with browser_context(cdp) as context:
            captured = await http.post("/v1/sessions/empty/capture", json={"browser": browser, "context": context.id})
            assert captured.status_code == 200, captured.text
        error(await http.post("/v1/replays", json={"browser": browser, "session": "empty"}), 422, "has no recording")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "empty@1"}), 422, "empty@1 holds no recording")
        error(await http.post("/v1/replays", json={"browser": browser, "session": "empty@7"}), 404)
        # Unknown recordings and replays: 404.
        error(await http.post("/v1/recordings/unknown/stop"), 404, "unknown")
        error(await http.delete("/v1/recordings/unknown"), 404, "unknown")
        error(await http.get("/v1/recordings/unknown"), 404, "unknown")
        error(await http.get("/v1/replays/unknown"), 404, "unknown")
        assert (await http.delete(f"/v1/browsers/{browser}")).status_code == 204


async def test_a_dead_browser_is_502(daemon: RunningDaemon, tmp_path: Path) -> None:
    browser = await trio.to_thread.run_sync(lambda: launch_chromium(user_data_dir=str(tmp_path / "profile")))
    async with daemon.async_client() as http:
        try:
            attached = await attach(http, browser)
        finally:
            await trio.to_thread.run_sync(browser.kill)

        async def detached() -> bool:
            return (await http.get(f"/v1/browsers/{attached}")).json()["attached"] is False

        await wait_until(detached)
        error(await http.post("/v1/recordings", json={"browser": attached, "session": "dead"}), 502, attached)
        error(await http.post("/v1/replays", json={"browser": attached, "session": "dead"}), 502, attached)
        error(await http.get("/v1/sessions/dead"), 404)
        assert (await http.delete(f"/v1/browsers/{attached}")).status_code == 204


@pytest.mark.time_limit(90)
async def test_duration_the_client_and_shutdown_save_recordings(
    tmp_path: Path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    running = await trio.to_thread.run_sync(RunningDaemon, tmp_path / "daemon")
    try:
        async with AsyncClient(running.socket) as psp, browser_context(cdp) as first, browser_context(cdp) as second:
            assert (await psp.version())["capabilities"]["recording"] is True
            browser = (await psp.attach(chromium.endpoint))["id"]
            tab = await first.new_page(site.url(path="/flow"))
            timed = await psp.start_recording("timed", browser, context=first.id, network=False, duration=1.0)
            assert timed["duration"] == 1.0 and timed["network"] is False
            await User(tab).click("#name")

            async def saved() -> bool:
                return (await psp.recording_info(timed["id"]))["state"] == "saved"

            await wait_until(saved, timeout=20)
            info = await psp.recording_info(timed["id"])
            assert (info["version"], info["stop_reason"], info["exchanges"]) == (1, "duration", 0)
            assert info["events"] >= 1 and info["duration_ms"] >= 900
            assert (await psp.stop_recording(timed["id"])) == info

            report = await psp.replay("timed", browser, context=second.id, speed=4.0, network="live", strict=True,
                                      ignore_fields=["ts"])
            assert report["failed"] is False and report["speed"] == 4.0 and report["steps"], report
            assert report["strict"] is True and report["counts"]["skipped"] == 0
            assert report["outcome"] == {"compared": True, "as_recorded": True, "differences": []}, report["outcome"]
            assert report["restore"]["context"] == second.id
            with pytest.raises(DaemonError) as caught:
                await psp.replay("timed@5", browser)
            assert caught.value.status == 404

            # A recording running when the daemon stops is saved (the context is free again: "timed" stopped).
            left = await psp.start_recording("left-running", browser, context=first.id)
            assert left["state"] == "recording"
            assert [r["id"] for r in await psp.recordings() if r["state"] == "recording"] == [left["id"]]
            await trio.to_thread.run_sync(stop_cleanly, running)  # while the context is still there
    finally:
        if running.process.poll() is None:
            running.process.kill()
    log = running.psp("log", "left-running", "--json")
    assert log.returncode == 0, log.stderr
    [version] = json.loads(log.stdout)
    assert "recording" in version["components"], version


@pytest.mark.time_limit(90)
async def test_a_lost_or_detached_browser_or_a_deleted_session_stops_and_saves_a_recording(
    daemon: RunningDaemon, tmp_path: Path, site: Site, cdp: CdpConnection, chromium: LaunchedBrowser
) -> None:
    own = await trio.to_thread.run_sync(lambda: launch_chromium(user_data_dir=str(tmp_path / "profile"), url=site.url(path="/flow")))
    try:
        async with AsyncClient(daemon.socket) as psp:
            lost = (await psp.attach(own.endpoint))["id"]
            async with open_cdp(own.endpoint) as connection:
                [page] = [t for t in (await connection.send("Target.getTargets"))["targetInfos"] if t["type"] == "page"]
                tab = await connection.attach(page["targetId"])
                await wait_until(lambda: evaluate(tab, "location.pathname === '/flow' && document.readyState === 'complete'"))
                recording = await psp.start_recording("lost", lost, network=False)
                await User(tab).click("#name")
                await wait_until(lambda: _has_events(psp, recording["id"]))
                await trio.to_thread.run_sync(own.kill)

            async def stopped() -> bool:
                return (await psp.recording_info(recording["id"]))["state"] != "recording"

            await wait_until(stopped, timeout=20)
            info = await psp.recording_info(recording["id"])
            assert (info["state"], info["stop_reason"], info["version"]) == ("saved", "browser lost", 1), info
            assert info["events"] >= 1
            await psp.detach(lost)

            shared = (await psp.attach(chromium.endpoint))["id"]
            async with browser_context(cdp) as context:
                await context.new_page(site.url(path="/flow"))
                detached = await psp.start_recording("detached", shared, context=context.id)
                await psp.detach(shared)  # answers once the recording is saved
                info = await psp.recording_info(detached["id"])
                assert (info["state"], info["stop_reason"], info["version"]) == ("saved", "browser detached", 1), info

                shared = (await psp.attach(chromium.endpoint))["id"]
                deleted = await psp.start_recording("deleted", shared, context=context.id)
                await psp.delete_session("deleted")  # stops the recording (which saves), then deletes
                info = await psp.recording_info(deleted["id"])
                assert (info["state"], info["stop_reason"]) == ("saved", "session deleted"), info
                with pytest.raises(DaemonError) as caught:
                    await psp.session("deleted")
                assert caught.value.status == 404
                await psp.detach(shared)
    finally:
        await trio.to_thread.run_sync(own.kill)


async def _has_events(psp: AsyncClient, recording: str) -> bool:
    return bool((await psp.recording_info(recording))["events"])
