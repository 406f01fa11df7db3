"""The CDP transport against a real Chromium: endpoints, failures, events, and drift.

Some tests pin down how ``mycdp`` and Chromium disagree today (a wrapper Chromium
rejects, events or enum values ``mycdp`` does not know, a module that does not
import). They assert what holds now, so that a new ``mycdp`` or a new Chromium that
changes any of it makes a test fail and the workaround can be revisited.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mycdp
import mycdp.indexed_db
import mycdp.page
import mycdp.util
import pytest
import trio

from psp_cdp.cdp import (
    CdpConnection,
    CdpSession,
    LaunchedBrowser,
    RawEvent,
    launch_chromium,
    open_cdp,
    read_devtools_active_port,
    resolve_endpoint,
    wire_json,
)
from psp_cdp.errors import BrowserClosedError, CdpError, EndpointError, ProtocolError

from .conftest import CHROMIUM_ARGS
from .helpers import BrowserContext, close_page, evaluate, navigate, open_page, wait_until
from .site import Site

#: An expression that starts an evaluation that never finishes, and says it started.
HANG = "(async () => { window.hung = true; await new Promise(() => {}); })()"


async def _open_cdp_error(endpoint: str | int, timeout: float = 5.0) -> BaseException:
    """What ``open_cdp(endpoint)`` raises."""
    try:
        async with open_cdp(endpoint, timeout=timeout):
            pass
    except Exception as exc:  # noqa: BLE001 - the point is to look at it
        return exc
    raise AssertionError(f"open_cdp({endpoint!r}) connected")


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _hang(session: CdpSession, failures: list[BaseException]) -> None:
    try:
        await session.send("Runtime.evaluate", {"expression": HANG, "awaitPromise": True})
    except BrowserClosedError as exc:
        failures.append(exc)
    else:
        raise AssertionError("the hanging evaluation returned")


async def _start_hang(nursery: trio.Nursery, session: CdpSession, failures: list[BaseException]) -> None:
    """Start a command that never gets an answer; return once the page is running it."""
    nursery.start_soon(_hang, session, failures)

    async def started() -> bool:
        return bool(await evaluate(session, "window.hung === true"))

    await wait_until(started, timeout=5)


@asynccontextmanager
async def _throwaway_browser() -> AsyncIterator[LaunchedBrowser]:
    browser = await trio.to_thread.run_sync(functools.partial(launch_chromium, args=CHROMIUM_ARGS))
    try:
        yield browser
    finally:
        await trio.to_thread.run_sync(browser.close)


# -- endpoints ------------------------------------------------------------------------------

ENDPOINT_FORMS: dict[str, Callable[[LaunchedBrowser], str | int]] = {
    "http-url": lambda b: f"http://127.0.0.1:{b.port}",
    "http-url-slash": lambda b: f"http://127.0.0.1:{b.port}/",
    "ws-url": lambda b: b.ws_url,
    "port-string": lambda b: str(b.port),
    "port-int": lambda b: b.port,
    "host-port": lambda b: f"127.0.0.1:{b.port}",
    "devtools-active-port-file": lambda b: os.path.join(b.user_data_dir, "DevToolsActivePort"),
    "profile-dir": lambda b: b.user_data_dir,
}


@pytest.mark.parametrize("form", list(ENDPOINT_FORMS))
async def test_every_endpoint_form_reaches_the_browser(chromium: LaunchedBrowser, form: str) -> None:
    endpoint = ENDPOINT_FORMS[form](chromium)
    assert await resolve_endpoint(endpoint) == chromium.ws_url
    async with open_cdp(endpoint) as connection:
        assert connection.url == chromium.ws_url
        assert connection.endpoint == str(endpoint)
        version = await connection.send("Browser.getVersion")
        assert "Chrome" in version["product"]


async def test_host_name_endpoint_keeps_the_host_it_was_given(chromium: LaunchedBrowser) -> None:
    endpoint = f"http://localhost:{chromium.port}"
    url = await resolve_endpoint(endpoint)
    assert url == chromium.ws_url.replace("127.0.0.1", "localhost", 1)
    async with open_cdp(endpoint) as connection:
        assert "Chrome" in (await connection.send("Browser.getVersion"))["product"]


def test_read_devtools_active_port_file_and_profile_agree(chromium: LaunchedBrowser) -> None:
    file = os.path.join(chromium.user_data_dir, "DevToolsActivePort")
    assert read_devtools_active_port(file) == read_devtools_active_port(chromium.user_data_dir) == chromium.ws_url


@pytest.mark.parametrize(
    "form", ["{port}", "http://127.0.0.1:{port}", "127.0.0.1:{port}", "ws://127.0.0.1:{port}/devtools/browser/x"]
)
async def test_closed_port_is_an_endpoint_error_naming_the_endpoint(form: str) -> None:
    endpoint = form.format(port=_closed_port())
    error = await _open_cdp_error(endpoint)
    assert isinstance(error, EndpointError), repr(error)
    assert endpoint in str(error)
    assert "refused" in error.problem or "cannot connect" in error.problem


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
async def test_a_web_server_is_not_a_devtools_endpoint(site: Site, host: str) -> None:
    endpoint = site.url(host)
    with pytest.raises(EndpointError, match="not a Chromium DevTools endpoint") as info:
        await resolve_endpoint(endpoint)
    assert info.value.endpoint == endpoint
    error = await _open_cdp_error(f"{host}:{site.port}")
    assert isinstance(error, EndpointError) and "not a Chromium DevTools endpoint" in error.problem


async def test_a_web_server_refuses_the_websocket_handshake(site: Site) -> None:
    endpoint = site.url("127.0.0.1", "/devtools/browser/none").replace("http://", "ws://")
    error = await _open_cdp_error(endpoint)
    assert isinstance(error, EndpointError), repr(error)
    assert str(error).startswith(endpoint) and "refused the WebSocket upgrade (HTTP 404)" in error.problem
    assert "Not found" not in str(error), "what the server answered stays out of the error"


async def test_an_untrusted_certificate_is_an_endpoint_error(site: Site) -> None:
    with pytest.raises(EndpointError, match="cannot connect") as info:
        await resolve_endpoint(site.https_url("localhost"))
    assert "CERTIFICATE" in info.value.problem.upper()


GARBAGE = [
    "",
    "   ",
    "not an endpoint",
    "-1",
    "1234567",
    "65536",
    "http://127.0.0.1:abc",
    "http://:9222",
    "https://",
    "ftp://127.0.0.1:21",
    "127.0.0.1:",
    "/no/such/profile/directory",
]


@pytest.mark.parametrize("endpoint", GARBAGE)
async def test_garbage_is_an_endpoint_error(endpoint: str) -> None:
    with pytest.raises(EndpointError) as info:
        await resolve_endpoint(endpoint)
    assert endpoint.strip() in str(info.value)
    error = await _open_cdp_error(endpoint)
    assert isinstance(error, EndpointError)


async def test_files_that_are_not_devtools_active_port_are_endpoint_errors(tmp_path: Path) -> None:
    empty_profile = tmp_path / "profile"
    empty_profile.mkdir()
    with pytest.raises(EndpointError, match="no DevToolsActivePort file"):
        await resolve_endpoint(str(empty_profile))
    bogus = tmp_path / "DevToolsActivePort"
    bogus.write_text("hello\nworld\n")
    with pytest.raises(EndpointError, match="does not hold a port"):
        await resolve_endpoint(str(bogus))


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://[127.0.0.1]:9222"])
async def test_malformed_url_is_an_endpoint_error(endpoint: str) -> None:
    with pytest.raises(EndpointError):
        await resolve_endpoint(endpoint)


@pytest.mark.parametrize("endpoint", ["ws://", "ws://[::1/devtools/browser/x"])
async def test_malformed_websocket_url_is_an_endpoint_error(endpoint: str) -> None:
    error = await _open_cdp_error(endpoint)
    assert isinstance(error, EndpointError), repr(error)


async def test_open_cdp_raises_endpoint_error_itself() -> None:
    with pytest.raises(EndpointError):
        async with open_cdp(_closed_port(), timeout=5):
            pass


async def test_open_cdp_lets_errors_of_its_block_through(chromium: LaunchedBrowser) -> None:
    with pytest.raises(ProtocolError):
        async with open_cdp(chromium.endpoint) as connection:
            await connection.send("No.suchMethod")


# -- commands --------------------------------------------------------------------------------


async def test_protocol_error_carries_method_code_and_message(cdp: CdpConnection) -> None:
    with pytest.raises(ProtocolError) as info:
        await cdp.send("No.suchMethod", {})
    assert info.value.method == "No.suchMethod"
    assert info.value.code == -32601
    assert "wasn't found" in info.value.browser_message
    assert isinstance(info.value, CdpError)
    assert (await cdp.send("Browser.getVersion"))["protocolVersion"]


async def test_concurrent_commands_each_get_their_own_answer(page: CdpSession) -> None:
    answers: dict[int, Any] = {}

    async def ask(i: int) -> None:
        answers[i] = await evaluate(page, f"new Promise(r => setTimeout(() => r({i}), {50 - i}))", await_promise=True)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(ask, i)
    assert answers == {i: i for i in range(50)}


async def test_messages_over_one_mebibyte_arrive_intact(page: CdpSession) -> None:
    unit = "aé€😀"
    count = 5 * 1024 * 1024 // len(unit.encode())
    result = await page.send(
        "Runtime.evaluate", {"expression": f"{json.dumps(unit)}.repeat({count})", "returnByValue": True}
    )
    value = result["result"]["value"]
    assert len(value.encode()) > 5 * 1024 * 1024 - len(unit.encode())
    assert value == unit * count


async def test_messages_over_one_mebibyte_can_be_sent(page: CdpSession) -> None:
    payload = "xyz€" * (2 * 1024 * 1024 // 6)
    assert await evaluate(page, f"{json.dumps(payload)}.length") == len(payload)


async def test_typed_wrapper_and_raw_send_agree(page: CdpSession, site: Site) -> None:
    await navigate(page, site.url("127.0.0.1", "/page?title=Typed"))
    tree = await page.execute(mycdp.page.get_frame_tree())
    raw = await page.send("Page.getFrameTree")
    assert tree.frame.url == raw["frameTree"]["frame"]["url"] == site.url("127.0.0.1", "/page?title=Typed")


async def test_indexeddb_request_data_needs_the_raw_path(context: BrowserContext, site: Site) -> None:
    """Chromium rejects ``indexName: ""``, which the mycdp wrapper always sends.

    The protocol says an empty index name means "the object store itself"; Chromium
    (at least up to 156) answers "Could not get index" instead, and only leaving the
    field out reads the store. If the typed call starts working, the raw workaround
    elsewhere can go.
    """
    page = await context.new_page(site.url("127.0.0.1", "/page?title=idb"))
    origin = site.url("127.0.0.1")
    await evaluate(
        page,
        """new Promise((resolve, reject) => {
            const open = indexedDB.open("shop", 1);
            open.onupgradeneeded = () => {
                const store = open.result.createObjectStore("items", {keyPath: "id"});
                store.createIndex("byName", "name");
            };
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
                const tx = open.result.transaction("items", "readwrite");
                tx.objectStore("items").put({id: 1, name: "pear"});
                tx.objectStore("items").put({id: 2, name: "apple"});
                tx.oncomplete = () => { open.result.close(); resolve(true); };
                tx.onerror = () => reject(tx.error);
            };
        })""",
        await_promise=True,
    )
    store = {
        "securityOrigin": origin,
        "databaseName": "shop",
        "objectStoreName": "items",
        "skipCount": 0,
        "pageSize": 10,
    }

    raw = await page.send("IndexedDB.requestData", store)
    assert [entry["primaryKey"]["value"] for entry in raw["objectStoreDataEntries"]] == [1, 2]
    assert raw["hasMore"] is False

    by_index = await page.send("IndexedDB.requestData", {**store, "indexName": "byName"})
    assert [entry["key"]["value"] for entry in by_index["objectStoreDataEntries"]] == ["apple", "pear"]

    with pytest.raises(ProtocolError, match="Could not get index"):
        await page.send("IndexedDB.requestData", {**store, "indexName": ""})
    with pytest.raises(ProtocolError, match="Could not get index"):
        await page.execute(mycdp.indexed_db.request_data("shop", "items", "", 0, 10, security_origin=origin))


# -- mycdp drift ---------------------------------------------------------------------------------


def test_mycdp_imports_except_animation() -> None:
    assert importlib.import_module("mycdp") is mycdp
    failing: dict[str, str] = {}
    sys.modules.pop("mycdp.animation", None)
    for name in mycdp.__all__:
        try:
            importlib.import_module(f"mycdp.{name}")
        except Exception as exc:  # noqa: BLE001 - collecting every failure is the point
            failing[name] = f"{type(exc).__name__}: {exc}"
    assert list(failing) == ["animation"]
    assert failing["animation"].startswith("TypeError: non-default argument 'duration' follows default argument")


def test_mycdp_lacks_events_chromium_sends() -> None:
    assert "Page.frameStartedNavigating" not in mycdp.util._event_parsers
    assert "initialFrameNavigation" not in {reason.value for reason in mycdp.page.ClientNavigationReason}


# -- events --------------------------------------------------------------------------------------


async def test_subscription_by_class_gets_parsed_events(page: CdpSession, site: Site) -> None:
    url = site.url("127.0.0.1", "/page?title=Parsed")
    with page.listen(mycdp.page.FrameNavigated, mycdp.page.LoadEventFired) as events:
        await navigate(page, url)
        navigated = await events.wait(lambda e: isinstance(e, mycdp.page.FrameNavigated))
        loaded = await events.receive()
    assert navigated.frame.url == url
    assert navigated.frame.parent_id is None
    assert isinstance(loaded, mycdp.page.LoadEventFired)
    assert loaded.timestamp > 0


async def test_subscription_by_method_name_gets_raw_events(page: CdpSession, site: Site) -> None:
    url = site.url("127.0.0.1", "/page?title=Raw")
    with page.listen("Page.frameStartedNavigating") as events:
        await navigate(page, url)
        event = await events.receive()
    assert isinstance(event, RawEvent)
    assert event.method == "Page.frameStartedNavigating"
    assert event.session_id == page.session_id
    assert event.params["url"] == url
    assert event.params["navigationType"] == "differentDocument"


async def test_event_with_an_unknown_enum_value_arrives_raw(page: CdpSession, site: Site) -> None:
    """Chromium reports an iframe's first navigation with a reason mycdp does not know."""
    with page.listen(mycdp.page.FrameRequestedNavigation) as events:
        await navigate(page, site.url("127.0.0.1", "/frames"))
        event = await events.receive()
    assert isinstance(event, RawEvent)
    assert event.params["reason"] == "initialFrameNavigation"
    assert event.params["url"] == site.url("127.0.0.2", "/page?title=child")
    assert await evaluate(page, "document.title") == "Frames"


async def test_a_parse_failure_does_not_stop_the_reader(
    page: CdpSession, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse = mycdp.util.parse_json_event

    def failing_parse(json: dict[str, Any]) -> Any:
        if json["method"] == "Page.loadEventFired":
            raise RuntimeError("cannot parse this one")
        return parse(json)

    monkeypatch.setattr(mycdp.util, "parse_json_event", failing_parse)
    with page.listen(mycdp.page.LoadEventFired, mycdp.page.FrameNavigated) as events:
        await navigate(page, site.url("127.0.0.1", "/page?title=one"))
        await navigate(page, site.url("127.0.0.1", "/page?title=two"))
        received = [await events.receive() for _ in range(4)]
    assert [type(e) for e in received] == [mycdp.page.FrameNavigated, RawEvent] * 2
    assert [e.method for e in received if isinstance(e, RawEvent)] == ["Page.loadEventFired"] * 2
    assert await evaluate(page, "document.title") == "two"


async def test_a_full_stream_drops_and_counts_while_the_reader_goes_on(page: CdpSession) -> None:
    await page.send("Runtime.enable")
    with page.listen("Runtime.consoleAPICalled", buffer=2) as small, page.listen("Runtime.consoleAPICalled") as big:
        await evaluate(page, "for (let i = 0; i < 20; i++) console.log(i)")
        await evaluate(page, "0")
        assert small.statistics().buffered == 2
        assert small.statistics().dropped == 18
        assert big.statistics().buffered == 20
        assert big.statistics().dropped == 0
        kept = [(await small.receive()).params["args"][0]["value"] for _ in range(2)]
        assert kept == [0, 1]
        await evaluate(page, "console.log('after')")
        later = await small.receive()
        assert later.params["args"][0]["value"] == "after"
        assert small.statistics().dropped == 18
    assert await evaluate(page, "6 * 7") == 42


# -- sessions and targets going away ----------------------------------------------------------------


async def test_detach_fails_pending_commands_and_leaves_the_target(
    cdp: CdpConnection, context: BrowserContext
) -> None:
    page = await context.new_page()
    failures: list[BaseException] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await _start_hang(nursery, page, failures)
            await page.detach()
    assert len(failures) == 1 and isinstance(failures[0], BrowserClosedError)
    assert page.closed and "detached" in (page.closed_reason or "")
    with pytest.raises(BrowserClosedError):
        await page.send("Runtime.evaluate", {"expression": "1"})
    assert page.target_id is not None
    again = await cdp.attach(page.target_id)
    assert await evaluate(again, "window.hung") is True


async def test_closing_a_tab_closes_its_session(context: BrowserContext, site: Site) -> None:
    page = await context.new_page(site.url("127.0.0.1", "/page?title=closing"))
    failures: list[BaseException] = []
    with page.listen("Page.loadEventFired") as events:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await _start_hang(nursery, page, failures)
                await close_page(page)
            assert [event async for event in events] == []
    assert len(failures) == 1 and isinstance(failures[0], BrowserClosedError)
    assert page.closed
    with trio.fail_after(0.5):
        with pytest.raises(BrowserClosedError, match="Runtime.evaluate"):
            await page.send("Runtime.evaluate", {"expression": "1"})
        with page.listen("Page.loadEventFired") as late, pytest.raises(BrowserClosedError):
            await late.receive()
    targets = await context.connection.send("Target.getTargets")
    assert page.target_id not in {t["targetId"] for t in targets["targetInfos"]}


async def test_an_auto_attached_iframe_gets_its_own_session(page: CdpSession, site: Site) -> None:
    """The other-origin iframe of /frames is an out-of-process frame: a target of its own."""
    await navigate(page, site.url("127.0.0.1", "/frames"))
    with page.listen("Target.attachedToTarget") as events:
        await page.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True})
        with trio.fail_after(5):
            attached = await events.wait(lambda event: event.params["targetInfo"]["type"] == "iframe")
    child = page.connection.session(attached.params["sessionId"])
    assert child.target_id == attached.params["targetInfo"]["targetId"]
    assert await evaluate(child, "location.origin") == site.url("127.0.0.2")
    assert await evaluate(page, "location.origin") == site.url("127.0.0.1")

    await navigate(page, site.url("127.0.0.1", "/page?title=no+frames"))

    async def child_closed() -> bool:
        return child.closed

    await wait_until(child_closed, timeout=5)
    with pytest.raises(BrowserClosedError):
        await child.send("Runtime.evaluate", {"expression": "1"})


async def test_a_closed_connection_fails_commands_at_once(chromium: LaunchedBrowser) -> None:
    async with open_cdp(chromium.endpoint) as connection:
        page = await open_page(connection)
        target_id = page.target_id
    assert connection.closed and page.closed
    with trio.fail_after(0.5):
        with pytest.raises(BrowserClosedError, match="closed by psp_cdp"):
            await connection.send("Browser.getVersion")
        with pytest.raises(BrowserClosedError):
            await page.send("Runtime.evaluate", {"expression": "1"})
    async with open_cdp(chromium.endpoint) as connection:
        targets = await connection.send("Target.getTargets")
        assert target_id in {t["targetId"] for t in targets["targetInfos"]}
        await connection.send("Target.closeTarget", {"targetId": target_id})


@pytest.mark.time_limit(30)
async def test_a_browser_that_dies_fails_pending_and_later_commands() -> None:
    async with _throwaway_browser() as browser:
        async with open_cdp(browser.endpoint) as connection:
            page = await open_page(connection)
            failures: list[BaseException] = []
            async with trio.open_nursery() as nursery:
                await _start_hang(nursery, page, failures)
                await trio.to_thread.run_sync(browser.kill)
                killed_at = trio.current_time()
                nursery.cancel_scope.deadline = killed_at + 5
            assert not nursery.cancel_scope.cancelled_caught, "the pending command outlived the browser"
            assert trio.current_time() - killed_at < 5
            assert len(failures) == 1 and isinstance(failures[0], BrowserClosedError)
            assert "browser connection closed" in str(failures[0])
            assert connection.closed and page.closed
            with trio.fail_after(0.5):
                with pytest.raises(BrowserClosedError):
                    await connection.send("Browser.getVersion")
                with pytest.raises(BrowserClosedError):
                    await page.send("Runtime.evaluate", {"expression": "1"})
                with connection.listen("Target.targetCreated") as events, pytest.raises(BrowserClosedError):
                    await events.receive()


async def test_lone_surrogates_cross_to_the_browser_exactly(page: CdpSession) -> None:
    assert wire_json({"a": "é\ud800"}) == '{"a":"é\\ud800"}'
    # The expression itself holds raw unpaired surrogates, which UTF-8 cannot carry.
    expression = "(s => [s.length, s.charCodeAt(1), s.charCodeAt(3), s.codePointAt(4)])('x\ud800é\udfff😀')"
    result = await page.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    assert result["result"]["value"] == [6, 0xD800, 0xDFFF, 0x1F600]
