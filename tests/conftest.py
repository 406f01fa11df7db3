"""Shared fixtures for the psp_cdp tests.

Rules every test follows:

* Loopback only. The network is closed: every page a test loads is served by the
  test site (:mod:`tests.site`) on 127.0.0.1, 127.0.0.2, localhost or ::1, and every
  browser listens on 127.0.0.1.
* Port 0 everywhere: servers and browsers let the OS choose their ports; no test
  names a fixed port.
* A time limit on each test: an async test (fixtures included) fails after
  :data:`DEFAULT_TIME_LIMIT` seconds, or after ``@pytest.mark.time_limit(seconds)``.
* A failure is reported as itself: pytest-trio runs each test inside nurseries, so
  one error arrives wrapped in an exception group; the runner here unwraps a group of
  one (so ``xfail(raises=...)`` works and assertion output stays plain).
* One shared browser per test session (``chromium``; ``chromium_b`` is a second one,
  with its own profile, for capture-in-one/restore-into-another tests), and a fresh
  browser context or tab per test (``context``, ``page``), so tests never see each
  other's cookies or storage. A test that kills or breaks a browser launches its own;
  a test that stops the site starts it again before it ends.

Fixtures: ``site``, ``chromium``, ``chromium_b`` (session-scoped, sync); ``cdp``,
``cdp_b``, ``context``, ``page`` (per test, async). Helpers live in :mod:`tests.helpers`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from inspect import iscoroutinefunction
from typing import Any

import pytest
import trio

from psp_cdp.cdp import CdpConnection, CdpSession, LaunchedBrowser, launch_chromium, open_cdp

from .helpers import BrowserContext, browser_context
from .redis_servers import RedisClusterServers, RedisServer
from .site import Site

#: Seconds an async test may run, fixtures included, unless marked ``time_limit``.
DEFAULT_TIME_LIMIT = 60.0

#: Arguments every test browser is started with (on top of psp_cdp's own defaults).
CHROMIUM_ARGS = ("--ignore-certificate-errors",)


class TimeLimitExceeded(Exception):
    """An async test ran past its time limit and was cancelled."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "time_limit(seconds): fail an async test that runs longer than this (default 60)"
    )


async def _within_time_limit(test: Callable[[], Awaitable[Any]], seconds: float) -> Any:
    __tracebackhide__ = True
    message = f"the test ran longer than its {seconds:g} s time limit and was cancelled"
    with trio.CancelScope(deadline=trio.current_time() + seconds) as scope:
        try:
            return await test()
        except BaseException as exc:
            if scope.cancel_called:
                raise TimeLimitExceeded(message) from exc
            raise
    raise TimeLimitExceeded(message)


def _leaf_errors(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaf_errors(inner)]
    return [error]


def _run_with_time_limit(
    test: Callable[[], Awaitable[Any]], *, seconds: float, clock: Any = None, instruments: Any = ()
) -> Any:
    __tracebackhide__ = True
    try:
        return trio.run(_within_time_limit, test, seconds, clock=clock, instruments=instruments)
    except BaseExceptionGroup as group:
        # pytest-trio runs each test inside nurseries, so one failure arrives as a group of one;
        # unwrapped, it reports plainly and xfail(raises=...) can match it.
        leaves = _leaf_errors(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        function = getattr(item.obj, "hypothesis", None)
        test = function.inner_test if function is not None else item.obj
        if not iscoroutinefunction(test):
            continue
        marker = item.get_closest_marker("time_limit")
        seconds = float(marker.args[0]) if marker is not None else DEFAULT_TIME_LIMIT
        run = functools.partial(_run_with_time_limit, seconds=seconds)
        # pytest-trio uses the first trio marker that names a runner; put this one first.
        item.add_marker(pytest.mark.trio(run=run), append=False)


# -- session-wide resources ---------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A keyring of the test session's own ($PSP_KEYRING, inherited by every ``psp`` a test runs)."""
    path = str(tmp_path_factory.mktemp("keyring") / "keys")
    saved = {name: os.environ.pop(name, None) for name in ("PSP_KEYRING", "PSP_KEY", "PSP_CIPHER")}
    os.environ["PSP_KEYRING"] = path
    yield path
    del os.environ["PSP_KEYRING"]
    os.environ.update({name: value for name, value in saved.items() if value is not None})


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The test web site (HTTP and HTTPS on 127.0.0.1, 127.0.0.2 and localhost)."""
    with Site() as running:
        yield running


@pytest.fixture(scope="session")
def chromium() -> Iterator[LaunchedBrowser]:
    """The browser shared by the whole test session."""
    with launch_chromium(args=CHROMIUM_ARGS) as browser:
        yield browser


@pytest.fixture(scope="session")
def chromium_b() -> Iterator[LaunchedBrowser]:
    """A second shared browser with its own profile, started when a test first asks for it."""
    with launch_chromium(args=CHROMIUM_ARGS) as browser:
        yield browser


# -- per-test connections, contexts and tabs -------------------------------------------


@pytest.fixture
async def cdp(chromium: LaunchedBrowser) -> AsyncIterator[CdpConnection]:
    """A connection to the shared browser for this test."""
    async with open_cdp(chromium.endpoint) as connection:
        yield connection


@pytest.fixture
async def cdp_b(chromium_b: LaunchedBrowser) -> AsyncIterator[CdpConnection]:
    """A connection to the second shared browser for this test."""
    async with open_cdp(chromium_b.endpoint) as connection:
        yield connection


@pytest.fixture
async def context(cdp: CdpConnection) -> AsyncIterator[BrowserContext]:
    """A fresh browser context on the shared browser, disposed of after the test."""
    async with browser_context(cdp) as fresh:
        yield fresh


@pytest.fixture
async def page(context: BrowserContext) -> CdpSession:
    """A blank tab in this test's fresh context, attached, with the Page domain enabled."""
    return await context.new_page()


# -- Redis servers (tests/redis_servers.py), started when a test first asks for them ---------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone redis-server on 127.0.0.1 shared by the test session; tests use their own key prefix."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of :func:`redis_server`."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A three-master Redis Cluster on 127.0.0.1 shared by the test session."""
    with RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`` of :func:`redis_cluster`."""
    return redis_cluster.url
