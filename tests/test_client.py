"""psp_cdp.client: the synchronous client, and the asynchronous one under trio and asyncio.

The daemon is the real one (a ``psp daemon`` subprocess, as in test_daemon.py) and the
browsers the shared test ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import trio

from psp_cdp.cdp import CdpConnection, LaunchedBrowser
from psp_cdp.client import AsyncClient, Client, DaemonError, DaemonUnavailableError, default_socket_path
from psp_cdp.store import SessionInfo, VersionInfo

from .helpers import browser_context, dispose_browser_context
from .site import Site
from .test_daemon import RunningDaemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path_factory.mktemp("client-daemon"))
    try:
        yield running
    finally:
        assert running.terminate() == 0, running.stderr()


def test_sync_client_sessions_and_errors(daemon: RunningDaemon) -> None:
    with Client(daemon.socket) as psp:
        assert psp.health() == {"status": "ok"}
        assert "indexed_db" in psp.version()["capabilities"]["components"]
        made = psp.create_session("sync-one", description="d", tags={"team": "qa"})
        assert isinstance(made, SessionInfo) and made.name == "sync-one" and made.tags == {"team": "qa"}
        assert [s.name for s in psp.sessions({"team": "qa"})] == ["sync-one"]
        assert psp.update_session("sync-one", description="changed").description == "changed"
        assert psp.session(made.id).name == "sync-one"
        assert psp.versions("sync-one") == []
        with pytest.raises(DaemonError) as caught:
            psp.create_session("sync-one")
        assert caught.value.status == 409
        with pytest.raises(DaemonError) as caught:
            psp.session("no-such-session")
        assert caught.value.status == 404 and "no-such-session" in str(caught.value)
        psp.delete_session("sync-one")
        assert psp.sessions({"team": "qa"}) == []


def test_no_daemon_is_a_clear_error(tmp_path) -> None:
    with Client(str(tmp_path / "nothing.sock")) as psp, pytest.raises(DaemonUnavailableError, match="nothing.sock"):
        psp.health()


def test_default_socket_path() -> None:
    assert default_socket_path({"PSP_SOCKET": "/x.sock"}) == "/x.sock"
    assert default_socket_path({"XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/user/7/psp/psp.sock"
    assert default_socket_path({}) == "/run/psp/psp.sock"


async def test_async_client_under_trio_captures_and_restores(
    daemon: RunningDaemon, site: Site, cdp: CdpConnection, cdp_b: CdpConnection,
    chromium: LaunchedBrowser, chromium_b: LaunchedBrowser,
) -> None:
    async with AsyncClient(daemon.socket) as psp:
        source = await psp.attach(chromium.endpoint)
        target = await psp.attach(chromium_b.endpoint)
        await psp.create_session("trio-flow")
        async with browser_context(cdp) as context:
            await context.new_page(f"{site.url()}/set-cookie?c=sid%3Dfrom-client%3B%20Max-Age%3D600&next=/")
            captured = await psp.capture("trio-flow", source["id"], context=context.id)
        assert captured["version"] == 1
        versions = await psp.versions("trio-flow")
        assert [v.version for v in versions] == [1] and isinstance(versions[0], VersionInfo)
        report = await psp.restore("trio-flow", target["id"], context="new")
        try:
            cookies = (await cdp_b.send("Storage.getCookies", {"browserContextId": report["context"]}))["cookies"]
            assert ("sid", "from-client") in [(c["name"], c["value"]) for c in cookies]
        finally:
            await dispose_browser_context(cdp_b, report["context"])
        for browser in (source, target):
            await psp.detach(browser["id"])
        assert await psp.browsers() == []


def test_async_client_under_asyncio(daemon: RunningDaemon) -> None:
    async def flow() -> list[str]:
        async with AsyncClient(daemon.socket) as psp:
            assert await psp.health() == {"status": "ok"}
            await psp.create_session("asyncio-one")
            names = [s.name for s in await psp.sessions()]
            await psp.delete_session("asyncio-one")
            return names

    assert "asyncio-one" in asyncio.run(flow())


async def test_async_client_errors_under_trio(daemon: RunningDaemon) -> None:
    async with AsyncClient(daemon.socket) as psp:
        with pytest.raises(DaemonError) as caught:
            await psp.capture("nobody", "no-browser")
        assert caught.value.status == 404
    with trio.fail_after(5):
        async with AsyncClient(daemon.socket + ".missing") as psp:
            with pytest.raises(DaemonUnavailableError):
                await psp.health()


def test_errors_through_the_daemon_are_the_errors_of_the_tree(daemon: RunningDaemon) -> None:
    """``except SessionNotFoundError`` works alike in process and through the daemon."""
    from psp_cdp.errors import NotFoundError, SessionExistsError, SessionNotFoundError, UsageError, VersionNotFoundError

    with Client(daemon.socket) as psp:
        with pytest.raises(SessionNotFoundError) as missing:
            psp.session("no-such-session")
        assert isinstance(missing.value, DaemonError) and isinstance(missing.value, NotFoundError)
        assert missing.value.status == 404 and missing.value.similar == []
        psp.create_session("typed-errors")
        with pytest.raises(SessionExistsError):
            psp.create_session("typed-errors")
        with pytest.raises(UsageError):
            psp.create_session("bad name with spaces")
        with pytest.raises(NotFoundError) as browser:  # not a session: a browser nobody attached
            psp.capture("typed-errors", "no-such-browser")
        assert not isinstance(browser.value, SessionNotFoundError)
        with pytest.raises(UsageError):  # no version to restore yet
            psp.restore("typed-errors", "no-such-browser")
        assert not issubclass(VersionNotFoundError, UsageError)
        psp.delete_session("typed-errors")
