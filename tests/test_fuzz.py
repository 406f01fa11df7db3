"""A bounded fuzz run: whatever a file or a client sends, the answer is a clear error, never a traceback or a hang.

Hypothesis, with a fixed seed (``derandomize``) and a bound on examples and time, over:

* the importers (``psp import``'s parsing, in process): psp containers, PSP JSON,
  Playwright storageState, Chrome Recorder user flows and HAR files; from random bytes,
  random JSON of any shape and depth, and valid files mutated (fields replaced,
  truncated, bytes flipped);
* the container reader (:func:`psp_cdp.snapshot.codec.decode`) on damaged containers;
* the control API's bodies, sent to the ASGI application in process (garbage, any JSON,
  deep nesting, huge numbers) for every route that takes a body: a 4xx, never a 500.

An input may be refused (:class:`~psp_cdp.errors.PspError`) or taken; any other
exception fails the test. The schema-driven run of the API is in
:mod:`tests.test_schemathesis`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psp_cdp.cli import import_format, parse_recording, parse_state
from psp_cdp.errors import PspError
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.model import RecordingState
from psp_cdp.snapshot.playwright import from_storage_state

#: Every run is the same run (fixed seed), bounded in examples and in each example's time.
FUZZ = settings(derandomize=True, max_examples=300, deadline=2000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Seconds any one input may take to be refused or taken.
EACH = 2.0

_PLAYWRIGHT = {
    "cookies": [{"name": "sid", "value": "abc", "domain": "example.test", "path": "/", "expires": 2_000_000_000,
                 "httpOnly": True, "secure": True, "sameSite": "Lax"}],
    "origins": [{"origin": "https://example.test", "localStorage": [{"name": "k", "value": "v"}]}],
}
_FLOW = {"title": "t", "steps": [{"type": "navigate", "url": "https://example.test/"},
                                 {"type": "click", "selectors": [["#go"]], "offsetX": 1, "offsetY": 2}]}
_HAR = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [{
    "startedDateTime": "2026-01-01T00:00:00.000Z", "time": 1,
    "request": {"method": "GET", "url": "https://example.test/", "httpVersion": "HTTP/1.1", "headers": [],
                "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
    "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                 "content": {"size": 2, "mimeType": "text/plain", "text": "ok"}, "redirectURL": "",
                 "headersSize": -1, "bodySize": 2},
    "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}}]}}


def _container() -> bytes:
    return codec.encode(from_storage_state(_PLAYWRIGHT))


_CONTAINER = _container()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=40,
)


def _nested(depth: int, kind: str) -> bytes:
    return (("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)).encode()


def _mutate(document: Any, path: list[Any], value: Any) -> Any:
    """``document`` with the value at the end of ``path`` (as far as it leads) replaced by ``value``."""
    if not path or not isinstance(document, (dict, list)) or not document:
        return value
    if isinstance(document, dict):
        key = list(document)[path[0] % len(document)] if isinstance(path[0], int) else path[0]
        return {**document, key: _mutate(document.get(key), path[1:], value)}
    index = path[0] % len(document) if isinstance(path[0], int) else 0
    return [*document[:index], _mutate(document[index], path[1:], value), *document[index + 1:]]


def _import(data: bytes, fmt: str | None = None) -> None:
    """What ``psp import`` does with ``data``, short of saving: a PspError or nothing, within :data:`EACH`."""
    started = time.monotonic()
    try:
        file = import_format(data, fmt)
        if file.format in ("recorder", "har"):
            parse_recording(file, RecordingState())
        else:
            parse_state(file)
    except PspError as error:
        assert str(error) and "\n" not in str(error).strip(), repr(error)  # one line
    assert time.monotonic() - started < EACH


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([None, "psp", "json", "playwright", "recorder", "har"]))
def test_any_bytes_import_or_are_refused(data: bytes, fmt: str | None) -> None:
    _import(data, fmt)


@FUZZ
@given(json_values, st.sampled_from([None, "json", "playwright", "recorder", "har"]))
def test_any_json_imports_or_is_refused(document: Any, fmt: str | None) -> None:
    _import(json.dumps(document).encode(), fmt)


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("fmt", [None, "json", "playwright", "recorder", "har"])
def test_json_nested_beyond_any_parser_is_refused(kind: str, fmt: str | None) -> None:
    _import(_nested(100_000, kind), fmt)


@FUZZ
@given(
    st.sampled_from([("playwright", _PLAYWRIGHT), ("recorder", _FLOW), ("har", _HAR)]),
    st.lists(st.one_of(st.integers(0, 8), st.sampled_from(["cookies", "origins", "steps", "log", "entries",
                                                            "expires", "value", "url", "request", "response"])),
             max_size=6),
    json_values | st.sampled_from([1e308, -1e308, 2**63, -(2**63) - 1, "\ud800", "", "x" * 5000, [], {}]),
)
def test_valid_files_with_any_field_replaced_import_or_are_refused(base: tuple[str, Any], path: list[Any], value: Any) -> None:
    fmt, document = base
    mutated = _mutate(document, path, value)
    _import(json.dumps(mutated).encode(), fmt)
    _import(json.dumps(mutated).encode())


@FUZZ
@given(st.data())
def test_damaged_containers_are_refused_cleanly(data: st.DataObject) -> None:
    blob = bytearray(_CONTAINER)
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(blob) - 1))
            blob[at] ^= data.draw(st.integers(1, 255))
    else:
        at = data.draw(st.integers(0, len(blob)))
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    started = time.monotonic()
    try:
        codec.decode(bytes(blob))
    except PspError:
        pass
    assert time.monotonic() - started < EACH
    _import(bytes(blob), "psp")


# -- the control API's bodies --------------------------------------------------------------


def _api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from psp_cdp.daemon.api import ROUTES, Daemon
    from psp_cdp.daemon.app import App
    from psp_cdp.daemon.browsers import Browsers
    from psp_cdp.daemon.sessions import DaemonSessions
    from psp_cdp.store import open_store

    directory = tmp_path_factory.mktemp("fuzz-api")
    sessions = DaemonSessions(open_store(str(directory / "store")))
    return App, ROUTES, Daemon, Browsers, sessions



async def _ask(app: Any, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request to the ASGI app in process: its status and body."""
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    with trio.fail_after(EACH * 5):
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.fixture(scope="module")
def api_parts(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _api(tmp_path_factory)


def _body_routes() -> list[tuple[str, str]]:
    from psp_cdp.daemon.api import ROUTES

    paths = []
    for route in ROUTES:
        if route.body is not None:
            paths.append((route.method, route.path.replace("{id}", "fuzzed")))
    return paths


@FUZZ
@given(
    route=st.sampled_from(_body_routes()),
    body=st.one_of(
        st.binary(max_size=512),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(["name", "browser", "cdp", "tags", "description", "only", "skip", "keep", "ttl",
                                         "speed", "session", "context", "strict", "ignore_fields", "duration"]),
                        json_values | st.sampled_from([1e308, 2**64, -1, "", "x" * 3000, "..", "a/b", "\n"]),
                        max_size=6).map(lambda v: json.dumps(v).encode()),
        st.integers(1, 200_000).map(lambda depth: _nested(depth, "list")),
    ),
)
def test_any_body_gets_a_4xx_never_a_500(api_parts: Any, route: tuple[str, str], body: bytes) -> None:
    App, ROUTES, Daemon, Browsers, sessions = api_parts
    method, path = route

    async def main() -> tuple[int, bytes]:
        async with trio.open_nursery() as nursery:
            app = App(ROUTES, Daemon(sessions, Browsers(nursery)))
            answer = await _ask(app, method, path, body)
            nursery.cancel_scope.cancel()
        return answer

    status, answer = trio.run(main)
    assert status < 500 or status in (502, 503), (status, answer[:200])
    if status >= 400:
        message = json.loads(answer)["message"]
        assert "\n" not in message.strip() and len(message) < 2000  # one line, and never the body sent back whole
