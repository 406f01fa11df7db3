"""Answering a replay's requests from a recording's network exchanges.

A request is answered by the first of these that finds a recorded exchange:

1. the same method, URL (without its fragment) and body, exactly;
2. with ``ignore_fields``: the same after dropping those fields from the URL's query and
   from a JSON body (at any depth) or a form body (``application/x-www-form-urlencoded``):
   timestamps, nonces, cache busters;
3. the same method and URL with another body.

The exchanges recorded for one request are given out in recorded order; once they run
out, the last one is given again (a page that polls asks more often when replayed
faster). Exchanges that failed without a response are answered with the same network
error. With no recorded exchange, a CORS preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is allowed for the origin, method and headers it asks
for, a beacon (``navigator.sendBeacon``, whose answer no page reads) gets a 204, and the
browser's own ``/favicon.ico`` request (which a page's recorded traffic never holds) a 404.
What was answered by a rule after the first is kept in :attr:`MockNetwork.fallbacks`,
with how; a request nothing answers gets a 404 and is kept in :attr:`MockNetwork.unmatched`.

The recorded body is the decoded one, so ``Content-Encoding``, ``Content-Length`` and
``Transfer-Encoding`` are left out of the answer's headers; the browser computes them.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..cdp import CdpSession
from ..errors import BrowserClosedError, ProtocolError
from ..snapshot.model import NetworkExchange
from .events import posted_body

__all__ = ["Fallback", "MockNetwork", "Unmatched", "unrecorded_answer", "without_fields"]

_DROPPED_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
_NOT_FOUND = b"not in the recording"
#: ``Fetch.failRequest`` reasons for the recorded ``net::ERR_...`` errors.
_ERRORS = {
    "net::ERR_ABORTED": "Aborted",
    "net::ERR_CONNECTION_REFUSED": "ConnectionRefused",
    "net::ERR_CONNECTION_RESET": "ConnectionReset",
    "net::ERR_CONNECTION_CLOSED": "ConnectionClosed",
    "net::ERR_NAME_NOT_RESOLVED": "NameNotResolved",
    "net::ERR_TIMED_OUT": "TimedOut",
    "net::ERR_INTERNET_DISCONNECTED": "InternetDisconnected",
    "net::ERR_ADDRESS_UNREACHABLE": "AddressUnreachable",
    "net::ERR_BLOCKED_BY_CLIENT": "BlockedByClient",
    "net::ERR_BLOCKED_BY_RESPONSE": "BlockedByResponse",
    "net::ERR_ACCESS_DENIED": "AccessDenied",
}
#: Largest body whose fields are looked into for ``ignore_fields``.
_MAX_PARSED_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Unmatched:
    method: str
    url: str


@dataclass(frozen=True)
class Fallback:
    """A request answered by a rule after the exact match: ``how`` says which."""

    method: str
    url: str
    how: str


Key = tuple[str, str, bytes]


def _url(url: str) -> str:
    return url.split("#", 1)[0]


def _drop(value: Any, names: frozenset[str], depth: int = 0) -> Any:
    if depth > 64:
        raise ValueError("too deep")
    if isinstance(value, dict):
        return {k: _drop(v, names, depth + 1) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_drop(v, names, depth + 1) for v in value]
    return value


def without_fields(url: str, body: bytes, names: frozenset[str]) -> tuple[str, bytes]:
    """``url`` and ``body`` with the fields ``names`` dropped from the query and from a JSON or form body."""
    parts = urlsplit(_url(url))
    if parts.query:
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    else:
        url = _url(url)
    if not body or len(body) > _MAX_PARSED_BODY:
        return url, body
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            parsed = json.loads(body)
            return url, json.dumps(_drop(parsed, names), sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, RecursionError):
            return url, body
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return url, body
    if "=" in text and not any(c.isspace() for c in text):
        pairs = parse_qsl(text, keep_blank_values=True)
        if pairs:
            return url, urlencode([(k, v) for k, v in pairs if k not in names]).encode()
    return url, body


@dataclass
class _Queue:
    """The recorded exchanges of one kind of request, in recorded order; the last one given out."""

    items: deque[NetworkExchange] = field(default_factory=deque)
    last: NetworkExchange | None = None


@dataclass
class MockNetwork:
    """The recorded answers, ready to be given out."""

    exchanges: Iterable[NetworkExchange]
    ignore_fields: Iterable[str] = ()
    answered: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)
    fallbacks: list[Fallback] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ignored = frozenset(self.ignore_fields)
        self._exact: dict[Key, _Queue] = {}
        self._loose: dict[Key, _Queue] = {}
        self._by_url: dict[tuple[str, str], _Queue] = {}
        self._used: set[int] = set()
        for exchange in sorted(self.exchanges, key=lambda x: x.timestamp):
            method = exchange.method.upper()
            self._exact.setdefault((method, _url(exchange.url), exchange.request_body), _Queue()).items.append(exchange)
            if self._ignored:
                self._loose.setdefault((method, *without_fields(exchange.url, exchange.request_body, self._ignored)),
                                       _Queue()).items.append(exchange)
            self._by_url.setdefault((method, _url(exchange.url)), _Queue()).items.append(exchange)

    def _take(self, queue: _Queue | None) -> NetworkExchange | None:
        if queue is None:
            return None
        while queue.items:
            exchange = queue.items.popleft()
            queue.last = exchange  # given out here or by another rule: the one to give again
            if id(exchange) not in self._used:
                self._used.add(id(exchange))
                return exchange
        return queue.last

    def match(self, method: str, url: str, body: bytes) -> tuple[NetworkExchange | None, str]:
        """The recorded exchange for this request and how it was found ("" for an exact match), or ``(None, "")``."""
        method = method.upper()
        exchange = self._take(self._exact.get((method, _url(url), body)))
        if exchange is not None:
            return exchange, ""
        if self._ignored:
            exchange = self._take(self._loose.get((method, *without_fields(url, body, self._ignored))))
            if exchange is not None:
                return exchange, "ignoring " + ", ".join(sorted(self._ignored))
        exchange = self._take(self._by_url.get((method, _url(url))))
        if exchange is not None:
            return exchange, "same method and URL, another body"
        return None, ""

    async def answer(self, session: CdpSession, paused: dict[str, Any]) -> None:
        """Answer one ``Fetch.requestPaused`` of ``session`` from the recording."""
        request = paused["request"]
        url = request["url"] + request.get("urlFragment", "")
        exchange, how = self.match(request["method"], url, posted_body(request))
        try:
            if exchange is None:
                await self._unrecorded(session, paused)
                return
            if how:
                self.fallbacks.append(Fallback(request["method"], request["url"], how))
            else:
                self.answered += 1
            if exchange.status == 0:
                reason = _ERRORS.get(exchange.error, "Failed")
                await session.send("Fetch.failRequest", {"requestId": paused["requestId"], "errorReason": reason})
                return
            headers = [{"name": h.name, "value": h.value} for h in exchange.response_headers if h.name.lower() not in _DROPPED_HEADERS]
            params: dict[str, Any] = {"requestId": paused["requestId"], "responseCode": exchange.status, "responseHeaders": headers}
            if exchange.status_text:
                params["responsePhrase"] = exchange.status_text
            if exchange.response_body:
                params["body"] = base64.b64encode(exchange.response_body).decode("ascii")
            await session.send("Fetch.fulfillRequest", params)
        except (ProtocolError, BrowserClosedError):
            pass  # the request was cancelled, or its page went away

    async def _unrecorded(self, session: CdpSession, paused: dict[str, Any]) -> None:
        answer, listed = unrecorded_answer(paused)
        (self.fallbacks if isinstance(listed, Fallback) else self.unmatched).append(listed)  # type: ignore[arg-type]
        await session.send("Fetch.fulfillRequest", answer)


def unrecorded_answer(paused: dict[str, Any]) -> tuple[dict[str, Any], Fallback | Unmatched]:
    """The ``Fetch.fulfillRequest`` for a request the recording has no answer for, and how to list it.

    A CORS preflight is allowed for the origin, method and headers it asks for, a beacon
    taken (204), the browser's own icon request answered 404; anything else is unmatched (404).
    """
    request = paused["request"]
    method, url = str(request.get("method", "")), str(request.get("url", ""))
    headers = _lower(request.get("headers") or {})
    answer: dict[str, Any] = {"requestId": paused["requestId"]}
    if method.upper() == "OPTIONS" and "access-control-request-method" in headers:
        allowed = [
            ("Access-Control-Allow-Origin", headers.get("origin", "*")),
            ("Access-Control-Allow-Methods", headers["access-control-request-method"]),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]
        if "access-control-request-headers" in headers:
            allowed.append(("Access-Control-Allow-Headers", headers["access-control-request-headers"]))
        if "access-control-request-private-network" in headers:
            allowed.append(("Access-Control-Allow-Private-Network", "true"))
        answer.update(responseCode=204, responseHeaders=[{"name": n, "value": v} for n, v in allowed])
        return answer, Fallback(method, url, "CORS preflight, allowed by the mock")
    if paused.get("resourceType") == "Ping":
        answer.update(responseCode=204, responseHeaders=[])
        return answer, Fallback(method, url, "beacon, taken by the mock (204)")
    if method.upper() == "GET" and urlsplit(url).path == "/favicon.ico":
        # The browser's own request, which a recording of the page's traffic does not see.
        answer.update(responseCode=404, responseHeaders=[])
        return answer, Fallback(method, url, "the browser's icon request, not recorded (404)")
    answer.update(responseCode=404, responseHeaders=[{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
                  body=base64.b64encode(_NOT_FOUND).decode("ascii"))
    return answer, Unmatched(method, url)


def _lower(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}
