"""A schemathesis run against the daemon's own OpenAPI document: no 5xx, answers as documented.

The daemon (``psp daemon``, a subprocess, as in :mod:`tests.test_daemon`) listens on a
Unix socket; schemathesis speaks HTTP to a URL, and its engine makes its own
``requests`` sessions. A small forwarder thread bridges the two: it listens on
127.0.0.1 (port 0) and pipes each TCP connection, byte for byte, to a connection of its
own on the daemon's socket.

The run is what ``st run`` does, from Python, with a fixed seed: for every operation of
``/v1/openapi.json``, the coverage phase (valid and invalid values at the boundaries of
every parameter and body schema, missing and unknown fields, wrong types, unexpected
methods), the fuzzing phase (Hypothesis; positive and negative data), then the stateful
phase (sequences joined by links schemathesis infers from ``Location`` headers and ids).
Checks: all of schemathesis's but two: ``not_a_server_error``,
``response_schema_conformance``, ``status_code_conformance``,
``content_type_conformance``, ``response_headers_conformance``,
``negative_data_rejection``, ``use_after_free``, ``unsupported_method`` and the rest.
Left out: ``positive_data_acceptance`` (schema-valid is not always acceptable: a browser
context id that does not exist, ``skip: [tabs]`` with ``dom``, are 422 by design) and
``ensure_resource_availability`` (the hooks below send some requests elsewhere, which it
would take for a resource that vanished). On top of the checks, the test looks at every
answer itself and requires an answer to every request.

Browser-dependent operations get a browser of the test's own (restores write into it,
watches poll it), attached before the run, and two sessions: every other capture and
watch is pointed at :data:`SINK`, every other restore at :data:`SOURCE` (one version,
never written during the run), and, when the generated body holds a string
``browser``, at that browser, so many succeed; the others keep their generated ids
(mostly 404). Schemathesis learns ids and endpoints from answers, so it also attaches
that browser again, and detaches what it attached; the hooks keep the run's own browser
and sessions from being detached, deleted or patched away, and bound the detaches
(each takes 2 s, see :data:`DETACHES`).

``POST /v1/browsers`` may answer 502: an endpoint that is not a reachable browser is
documented as 502, so that status is expected there, and no 5xx anywhere else.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from psp_cdp.cdp import launch_chromium

from .site import Site
from .test_daemon import RunningDaemon, stop_cleanly

schemathesis = pytest.importorskip("schemathesis", minversion="4.32")

from schemathesis.engine import StopReason, events, from_schema  # noqa: E402
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER  # noqa: E402

#: Restores are pointed at SOURCE (one version, never written by the run); captures and watches at SINK.
SOURCE = "schemathesis-source"
SINK = "schemathesis-sink"
#: Operations whose cases are pointed, every other call, at SOURCE or SINK and the test's browser.
CAPTURES = ("POST /v1/sessions/{id}/capture", "POST /v1/sessions/{id}/watch")
RESTORE = "POST /v1/sessions/{id}/restore"
BROWSER_OPERATIONS = (*CAPTURES, RESTORE)
#: The only 5xx the run may see: an endpoint that is not a reachable browser (documented).
EXPECTED_5XX = {("POST", "/v1/browsers", 502)}
#: Detaches of browsers schemathesis attached itself that are let through (the rest are sent to an unknown
#: id): a detach takes 2 s, as leaving ``open_cdp`` by cancellation waits out CdpConnection.aclose's timeout.
DETACHES = 1
#: Seed of the run (deterministic generation, so a failure is reproducible).
SEED = 20240601
#: Hypothesis examples per operation in the fuzzing phase, and scenarios of the stateful phase.
MAX_EXAMPLES = 40
STATEFUL_EXAMPLES = 20
#: Seconds after which the run is stopped (a backstop: it takes far less). Not schemathesis's own max-time, which
#: is a budget: with it, the engine runs its phases again and again until the time is up.
DEADLINE = 45


class _Pair:
    """A TCP connection and the Unix one it is piped to; closed once both directions have ended."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.ended = 0


class UnixForwarder:
    """127.0.0.1:PORT -> a Unix socket: one Unix connection per TCP connection, bytes piped both ways."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._open: set[_Pair] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="unix-forwarder", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            # Else a request written in two pieces (headers, then body) waits for a delayed ACK: ~40 ms each.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.path)
            except OSError:
                client.close()
                upstream.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self.connections += 1
                self._open.add(pair)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(pair, source, target), daemon=True).start()

    def _pipe(self, pair: _Pair, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        try:
            target.shutdown(socket.SHUT_WR)  # pass the end of one direction on; the other may go on
        except OSError:
            pass
        with self._lock:
            pair.ended += 1
            if pair.ended < 2:
                return
            self._open.discard(pair)
        pair.client.close()
        pair.upstream.close()

    def close(self) -> None:
        self.listener.close()
        self._thread.join(5)
        with self._lock:
            for pair in self._open:
                for sock in (pair.client, pair.upstream):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # ends both pipe threads, which close the sockets
                    except OSError:
                        pass


class Steering:
    """The ``before_call`` and ``after_call`` hooks of the run (see the module docstring)."""

    def __init__(self, schema: Any, browser_id: str, sessions: dict[str, str]) -> None:
        self.schema = schema
        self.browser_id = browser_id
        #: names and ids of SOURCE and SINK -> the name
        self.sessions = {**{name: name for name in sessions}, **{ident: name for name, ident in sessions.items()}}
        self.attached: set[str] = set()  # browsers schemathesis attached
        self.detaches = DETACHES
        self.calls: collections.Counter[str] = collections.Counter()

    def before_call(self, context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        if case.operation.schema is not self.schema:
            return
        label = case.operation.label
        self.calls[label] += 1
        ident = (case.path_parameters or {}).get("id")
        steer = label in BROWSER_OPERATIONS and self.calls[label] % 2 == 0
        if steer or (label in BROWSER_OPERATIONS and ident in self.sessions):
            # A restore reads SOURCE, captures and watches write SINK: restoring what was captured from the same
            # context would double its tabs each round (restore adds the tabs it restores to those open).
            self._set_id(case, SOURCE if label == RESTORE else SINK)
            if steer and isinstance(case.body, dict) and isinstance(case.body.get("browser"), str):
                case.body = {**case.body, "browser": self.browser_id}
                if label == RESTORE:
                    case.body.setdefault("clean", True)
        elif label in ("DELETE /v1/sessions/{id}", "PATCH /v1/sessions/{id}") and ident in self.sessions:
            self._set_id(case, f"{ident}-not-this-one")  # neither deleted nor given a ttl that forgets it
        elif label == "DELETE /v1/browsers/{id}" and (ident == self.browser_id or ident in self.attached):
            if ident in self.attached and self.detaches > 0:
                self.detaches -= 1
                self.attached.discard(ident)
            else:
                self._set_id(case, f"{ident}-not-this-one")

    @staticmethod
    def _set_id(case: Any, ident: str) -> None:
        case.path_parameters = {**(case.path_parameters or {}), "id": ident}

    def after_call(self, context: Any, case: Any, response: Any) -> None:
        if case.operation.schema is not self.schema:
            return
        if case.operation.label == "POST /v1/browsers" and response.status_code == 201:
            self.attached.add(response.json()["id"])

    def __enter__(self) -> Steering:
        # Global hooks (schemathesis has no schema-scoped before_call), as plain functions: unregister() compares
        # by identity, and a bound method is a new object each time.
        def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
            self.before_call(context, case, kwargs)

        def after_call(context: Any, case: Any, response: Any) -> None:
            self.after_call(context, case, response)

        self._hooks = (before_call, after_call)
        for hook in self._hooks:
            schemathesis.hook(hook)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for hook in self._hooks:
            GLOBAL_HOOK_DISPATCHER.unregister(hook)


class Report:
    """What the run did and found."""

    def __init__(self) -> None:
        self.cases = 0
        self.per_phase: collections.Counter[str] = collections.Counter()
        self.modes: collections.Counter[str] = collections.Counter()  # positive, negative
        #: "METHOD /path/template" -> status -> answers
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        self.failures: list[str] = []
        self.errors: list[str] = []
        self.unexpected_5xx: list[tuple[str, str, int, str]] = []
        self.no_answer: list[str] = []
        #: phase -> seconds
        self.phases: dict[str, float] = {}
        self.stop_reason: StopReason | None = None
        self.running_time = 0.0

    @property
    def requests(self) -> int:
        return sum(sum(statuses.values()) for statuses in self.statuses.values())

    def scenario(self, event: events.ScenarioFinished) -> None:
        recorder = event.recorder
        self.cases += len(recorder.cases)
        self.per_phase[event.phase.value] += len(recorder.cases)
        for case_id, node in recorder.cases.items():
            meta = node.value.meta
            self.modes[meta.generation.mode.value if meta is not None else "unknown"] += 1
            interaction = recorder.interactions.get(case_id)
            if interaction is None:
                continue
            request = interaction.request
            if interaction.response is None:  # the connection failed: no answer at all
                self.no_answer.append(f"{request.method} {request.uri}")
                continue
            label = node.value.operation.label
            status = interaction.response.status_code
            self.statuses[label][status] += 1
            if status >= 500 and (request.method, label.split(" ", 1)[1], status) not in EXPECTED_5XX:
                body = (interaction.response.content or b"")[:300].decode("utf-8", "replace")
                self.unexpected_5xx.append((request.method, urlsplit(request.uri).path, status, body))
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    response = interaction.response if interaction is not None else None
                    answer = "" if response is None else f"{response.status_code} {response.content[:300]!r}\n"
                    self.failures.append(
                        f"{recorder.label} [{event.phase.value}] {check.name}: {failure.title}\n{failure.message}\n"
                        f"{answer}{check.failure_info.code_sample[:2000]}"
                    )


def run(schema: Any) -> Report:
    """Run schemathesis over ``schema`` (stopped after :data:`DEADLINE` seconds at the latest)."""
    report = Report()
    stream = from_schema(schema).execute()
    backstop = threading.Timer(DEADLINE, stream.stop)
    backstop.start()
    phase_started = time.time()
    try:
        for event in stream:
            if isinstance(event, events.ScenarioFinished):
                report.scenario(event)
            elif isinstance(event, events.PhaseStarted):
                phase_started = event.timestamp
            elif isinstance(event, events.PhaseFinished):
                report.phases[event.phase.name.value] = round(event.timestamp - phase_started, 1)
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"{event.label}: {event.info.format()}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                report.stop_reason = event.stop_reason
                report.running_time = event.running_time
    finally:
        backstop.cancel()
    return report


def _wait_for_page(endpoint: str, path: str, timeout: float = 15.0) -> None:
    """Wait until the browser's page has arrived at ``path`` (after the site's set-cookie redirect)."""
    deadline = time.monotonic() + timeout
    while True:
        pages = httpx.get(f"{endpoint}/json/list", timeout=5).json()
        if any(p["type"] == "page" and urlsplit(p["url"]).path == path for p in pages):
            return
        assert time.monotonic() < deadline, pages
        time.sleep(0.05)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path / "daemon")
    try:
        yield running
    finally:
        stop_cleanly(running)


def test_schemathesis_finds_no_server_error(daemon: RunningDaemon, site: Site, tmp_path: Path) -> None:
    started = time.monotonic()
    page = f"{site.url()}/set-cookie?c=token%3Dsecret-value%3B%20Max-Age%3D3600&next=/storage%3Flocal.k%3Dv"
    with launch_chromium(user_data_dir=str(tmp_path / "profile"), url=page) as browser, daemon.client() as http:
        attached = http.post("/v1/browsers", json={"cdp": browser.endpoint})
        assert attached.status_code == 201, attached.text
        browser_id = attached.json()["id"]
        sessions = {}
        for name in (SOURCE, SINK):
            created = http.post("/v1/sessions", json={"name": name})
            assert created.status_code == 201, created.text
            sessions[name] = created.json()["id"]
        _wait_for_page(browser.endpoint, "/storage")
        first = http.post(f"/v1/sessions/{SOURCE}/capture", json={"browser": browser_id})
        assert first.status_code == 200, first.text
        assert first.json()["session"]["components"].get("cookies") == 1, first.text
        document = http.get("/v1/openapi.json").json()

        config = schemathesis.Config.from_dict(
            {
                "seed": SEED,
                "cache": {"enabled": False},  # else it writes .schemathesis/ in the working directory
                "base-url": "http://127.0.0.1:1",  # replaced below, once the forwarder has its port
                "phases": {
                    "examples": {"enabled": False},  # the document has no examples
                    "stateful": {"generation": {"max-examples": STATEFUL_EXAMPLES}},
                },
                "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
                "checks": {
                    "enabled": True,
                    "positive_data_acceptance": {"enabled": False},
                    "ensure_resource_availability": {"enabled": False},
                },
                "operations": [
                    *(
                        {
                            "include-path": path,
                            "include-method": method,
                            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", str(status)]}},
                        }
                        for method, path, status in EXPECTED_5XX
                    ),
                    {
                        # A GET without an upgrade is 426 before its query is looked at.
                        "include-path": "/v1/events",
                        "include-method": "GET",
                        "checks": {
                            "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "422", "426"]}
                        },
                    },
                ],
            }
        )
        schema = schemathesis.openapi.from_dict(document, config=config)
        forwarder = UnixForwarder(daemon.socket)
        try:
            schema.config.update(base_url=forwarder.url)
            with Steering(schema, browser_id, sessions):
                report = run(schema)
        finally:
            forwarder.close()

        # The daemon still serves; the run's browser and sessions are still there.
        assert http.get("/v1/health").json() == {"status": "ok"}
        assert http.get(f"/v1/browsers/{browser_id}").json()["attached"] is True
        assert http.get(f"/v1/sessions/{SOURCE}").json()["head"] == 1
        # Detaching the browser stops the watches the run started on it (those schemathesis attached go with SIGTERM).
        assert http.delete(f"/v1/browsers/{browser_id}").status_code == 204
        assert [w for w in http.get("/v1/watches").json() if w["browser"] == browser_id] == []
        assert browser.alive()
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {report.cases} cases ({dict(report.modes)}), {report.requests} answers over "
        f"{forwarder.connections} connections in {report.running_time:.1f} s (the test: {elapsed:.1f} s)"
        f"\n  cases per phase: {dict(report.per_phase)}; seconds per phase: {report.phases}"
    )
    for label in sorted(report.statuses):
        print(f"  {label}: {dict(sorted(report.statuses[label].items()))}")

    assert not report.errors, "\n".join(report.errors)
    assert not report.failures, "\n\n".join(report.failures)
    assert not report.unexpected_5xx, report.unexpected_5xx
    assert not report.no_answer, report.no_answer
    stopped = f"the run stopped early ({report.stop_reason}; the backstop is {DEADLINE} s)"
    assert report.stop_reason == StopReason.COMPLETED, stopped
    # Every documented operation was exercised, and the browser-dependent ones got through to the browser.
    documented = {f"{method.upper()} {path}" for path, operations in document["paths"].items() for method in operations}
    assert documented <= set(report.statuses), documented - set(report.statuses)
    for label in BROWSER_OPERATIONS:
        assert any(200 <= status < 300 for status in report.statuses[label]), (label, report.statuses[label])
    assert daemon.process.poll() is None
