"""The replay's network mock without a browser: how requests are matched to recorded exchanges.

No I/O: these are the pure parts of psp_cdp.record.mock (matching, the fields dropped for
``--ignore-field``, the answer to a request the recording has none for). That the browser
takes these answers is tested in tests/test_record.py and tests/test_replay_drivers.py.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from psp_cdp.record.mock import Fallback, MockNetwork, Unmatched, unrecorded_answer, without_fields
from psp_cdp.snapshot.model import NetworkExchange

IGNORED = frozenset({"ts", "nonce"})

names = st.text(min_size=1, max_size=8).filter(lambda n: n not in IGNORED)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4), max_leaves=12)


def exchange(method: str, url: str, body: bytes = b"", status: int = 200, timestamp: float = 0.0) -> NetworkExchange:
    return NetworkExchange(method=method, url=url, request_body=body, status=status, timestamp=timestamp)


def _with_noise(value: Any, noise: Any) -> Any:
    """``value`` with ignored fields added to every object in it."""
    if isinstance(value, dict):
        return {**{k: _with_noise(v, noise) for k, v in value.items()}, "ts": noise, "nonce": [noise]}
    if isinstance(value, list):
        return [_with_noise(v, noise) for v in value]
    return value


@given(st.dictionaries(names, json_values, max_size=5), scalars, scalars)
def test_ignored_fields_of_a_json_body_do_not_matter_at_any_depth(body: dict[str, Any], first: Any, second: Any) -> None:
    one = json.dumps(_with_noise(body, first)).encode()
    two = json.dumps(_with_noise(body, second), indent=1).encode()
    assert without_fields("http://a.test/x", one, IGNORED) == without_fields("http://a.test/x", two, IGNORED)


@given(st.lists(st.tuples(names, st.text(max_size=10)), max_size=5), st.text(max_size=10), st.text(max_size=10))
def test_ignored_fields_of_a_form_body_and_a_query_do_not_matter(pairs: list[tuple[str, str]], first: str, second: str) -> None:
    one = urlencode([*pairs, ("ts", first)])
    two = urlencode([("ts", second), *pairs, ("nonce", first)])
    assert without_fields(f"http://a.test/x?{one}", one.encode(), IGNORED) == without_fields(f"http://a.test/x?{two}", two.encode(), IGNORED)


@given(st.binary(max_size=200), st.text(max_size=40))
def test_any_body_and_url_are_taken_without_an_error(body: bytes, tail: str) -> None:
    url, kept = without_fields("http://a.test/" + tail, body, IGNORED)
    assert isinstance(url, str) and isinstance(kept, bytes)


def test_a_body_nested_too_deep_is_compared_as_it_is() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert without_fields("http://a.test/", deep, IGNORED) == ("http://a.test/", deep)


def test_exact_matches_come_first_in_recorded_order_then_ignoring_fields_then_by_url() -> None:
    first = exchange("POST", "http://a.test/api", b'{"v":1,"ts":1}', timestamp=1)
    second = exchange("POST", "http://a.test/api", b'{"v":1,"ts":1}', timestamp=2)
    other = exchange("POST", "http://a.test/api", b'{"v":2,"ts":5}', timestamp=3)
    mock = MockNetwork([other, second, first], ignore_fields=["ts"])
    assert mock.match("post", "http://a.test/api#frag", b'{"v":1,"ts":1}') == (first, "")
    assert mock.match("POST", "http://a.test/api", b'{"v":1,"ts":1}') == (second, "")
    assert mock.match("POST", "http://a.test/api", b'{"v": 2, "ts": 9}') == (other, "ignoring ts")
    # Every recorded answer given out: the last one of the request again, as a page that polls needs.
    assert mock.match("POST", "http://a.test/api", b'{"v":1,"ts":1}') == (second, "")
    assert mock.match("POST", "http://a.test/api", b'{"v":3}') == (other, "same method and URL, another body")
    assert mock.match("GET", "http://a.test/api", b"") == (None, "")


def test_without_ignored_fields_a_body_that_differs_is_a_fallback_by_url() -> None:
    recorded = exchange("POST", "http://a.test/api", b"a=1&ts=5")
    mock = MockNetwork([recorded])
    assert mock.match("POST", "http://a.test/api", b"a=1&ts=6") == (recorded, "same method and URL, another body")


def _paused(method: str, url: str, headers: dict[str, str] | None = None, kind: str = "Fetch") -> dict[str, Any]:
    return {"requestId": "r1", "resourceType": kind, "request": {"method": method, "url": url, "headers": headers or {}}}


def test_requests_the_recording_has_no_answer_for() -> None:
    answer, listed = unrecorded_answer(_paused("OPTIONS", "http://b.test/api", {
        "Origin": "http://a.test", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-token"}))
    headers = {h["name"]: h["value"] for h in answer["responseHeaders"]}
    assert answer["responseCode"] == 204 and headers["Access-Control-Allow-Origin"] == "http://a.test"
    assert headers["Access-Control-Allow-Methods"] == "PUT" and headers["Access-Control-Allow-Headers"] == "x-token"
    assert listed == Fallback("OPTIONS", "http://b.test/api", "CORS preflight, allowed by the mock")

    answer, listed = unrecorded_answer(_paused("POST", "http://a.test/beacon", kind="Ping"))
    assert answer["responseCode"] == 204 and isinstance(listed, Fallback) and "beacon" in listed.how
    answer, listed = unrecorded_answer(_paused("GET", "http://a.test/favicon.ico", kind="Other"))
    assert answer["responseCode"] == 404 and isinstance(listed, Fallback)
    # A plain OPTIONS is no preflight.
    answer, listed = unrecorded_answer(_paused("OPTIONS", "http://a.test/api"))
    assert answer["responseCode"] == 404 and listed == Unmatched("OPTIONS", "http://a.test/api")
