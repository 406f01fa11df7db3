"""Answering a replay's requests from a recording's network exchanges.

A request is matched by method, URL (without its fragment) and body, exactly. The
exchanges recorded for the same request are given out in recorded order; once they run
out, the last one is given again (a page that polls asks more often when replayed faster).
Exchanges that failed without a response are answered with the same network error. An
unmatched request is answered 404 and kept in :attr:`MockNetwork.unmatched`.

The recorded body is the decoded one, so ``Content-Encoding``, ``Content-Length`` and
``Transfer-Encoding`` are left out of the answer's headers; the browser computes them.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cdp import CdpSession
from ..errors import BrowserClosedError, ProtocolError
from ..snapshot.model import NetworkExchange
from .events import posted_body

__all__ = ["MockNetwork", "Unmatched"]

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


@dataclass(frozen=True)
class Unmatched:
    method: str
    url: str


def _key(method: str, url: str, body: bytes) -> tuple[str, str, bytes]:
    return method.upper(), url.split("#", 1)[0], body


@dataclass
class MockNetwork:
    """The recorded answers, ready to be given out."""

    exchanges: Iterable[NetworkExchange]
    answered: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queues: dict[tuple[str, str, bytes], deque[NetworkExchange]] = {}
        self._last: dict[tuple[str, str, bytes], NetworkExchange] = {}
        for exchange in sorted(self.exchanges, key=lambda x: x.timestamp):
            key = _key(exchange.method, exchange.url, exchange.request_body)
            self._queues.setdefault(key, deque()).append(exchange)

    def match(self, method: str, url: str, body: bytes) -> NetworkExchange | None:
        """The recorded exchange for this request, or ``None``."""
        key = _key(method, url, body)
        queue = self._queues.get(key)
        if queue:
            self._last[key] = queue.popleft()
        return self._last.get(key)

    async def answer(self, session: CdpSession, paused: dict[str, Any]) -> None:
        """Answer one ``Fetch.requestPaused`` of ``session`` from the recording."""
        request = paused["request"]
        exchange = self.match(request["method"], request["url"] + request.get("urlFragment", ""), posted_body(request))
        try:
            if exchange is None:
                self.unmatched.append(Unmatched(request["method"], request["url"]))
                await session.send("Fetch.fulfillRequest", {
                    "requestId": paused["requestId"], "responseCode": 404,
                    "responseHeaders": [{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
                    "body": base64.b64encode(_NOT_FOUND).decode("ascii"),
                })
                return
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

