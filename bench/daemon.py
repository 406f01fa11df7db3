"""The daemon's cost: control API latency, capture overhead against in-process, memory.

What it does (see bench/README.md):

1. starts ``psp daemon --socket PATH --store DIR`` (a filesystem store and a keyring in a
   temporary directory) and times ``GET /v1/health`` over its Unix socket, each client on
   one keep-alive connection: raw HTTP/1.1 over a ``socket.socket(AF_UNIX)`` (next to no
   client cost: the server's own), ``httpx.Client`` (what ``psp_cdp.client.Client`` uses)
   and ``psp_cdp.client.Client.health()``; p50 / p99 / mean, and the daemon's CPU time per
   request from ``/proc/PID/stat``;
2. reads the daemon's RSS (``VmRSS`` / ``VmHWM`` in ``/proc/PID/status``) idle after its
   start, then launches 20 headless Chromiums in parallel (as many as fit in the memory
   the machine has available), attaches each through ``POST /v1/browsers``, reads the
   RSS with them attached, detaches them (``DELETE /v1/browsers/{id}``) and reads it again;
3. builds the heavy state of ``bench/versions.py`` in one more Chromium (a few MB of
   localStorage, 10,000 IndexedDB records, 50 CacheStorage entries, 30 cookies, 4 tabs
   with history and sessionStorage) and alternates captures of it through the daemon
   (``POST /v1/sessions/{id}/capture``, the browser attached once) with in-process
   captures (``Sessions.capture`` over one ``open_cdp`` connection opened outside the
   timing) into a filesystem store of the same kind with the same keyring and cipher:
   medians and the daemon's overhead;
4. prints markdown tables, then ``json:`` and one JSON line with every figure.

Run: ``.venv/bin/python bench/daemon.py [--quick] [--requests N] [--rounds N] [--browsers N] [--json PATH]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import trio

import psp_cdp
from psp_cdp.cdp import LaunchedBrowser, launch_chromium, open_cdp
from psp_cdp.client import AsyncClient, Client
from psp_cdp.store import Sessions, open_store
from psp_cdp.store.keys import Keyring

from benchkit import finish_run, kib, serve_site
from idb_caches import SiteHandler
from versions import IDB_LABELS, IDB_LABELS_QUICK, LS_BYTES, LS_BYTES_QUICK, ORIGIN_SPECS, build_state, latency

CHROMIUM = "/usr/bin/chromium"
CIPHER = "aes-256-gcm"  # the daemon's default (PSP_CIPHER is not passed to it)
STEP_TIMEOUT = 300.0  # seconds, per capture: a hung step fails the run instead of hanging it
START_TIMEOUT = 20.0  # seconds for the daemon to print "listening on"
LAUNCH_BATCH = 5  # Chromiums started at once
RESERVE_MIB = 3072  # MemAvailable kept free while launching Chromiums
FIRST_GUESS_MIB = 400  # per Chromium, until the first batch shows the real figure
SETTLE = 2.0  # seconds before reading the daemon's RSS after a change
DAEMON_SESSION = "bench-daemon"
INPROC_SESSION = "bench-inprocess"
HEALTH_BODY = b'{"status":"ok"}\n'
BLOCK = 500  # health requests per client in a row; the clients take turns, block by block

# --------------------------------------------------------------------------------------
# The daemon process and /proc
# --------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes), Threads, and open file descriptors of a process."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                out[name] = int(value)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15 of the line


def meminfo() -> dict[str, int]:
    """MemTotal and MemAvailable of the machine, in bytes."""
    out = {}
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                out[name] = int(value.split()[0]) * 1024
    return out


class DaemonProcess:
    """``psp daemon`` in a child process, with its own socket, store and keyring."""

    def __init__(self, root: str, store_dir: str, keyring_dir: str) -> None:
        self.socket = os.path.join(root, "psp.sock")
        self.out_path = os.path.join(root, "daemon.out")
        self.log_path = os.path.join(root, "daemon.log")
        psp = os.path.join(os.path.dirname(sys.executable), "psp")
        if not os.path.exists(psp):
            psp = shutil.which("psp") or psp
        # Nothing of this shell's psp set-up reaches the daemon: its store, keyring and socket are ours.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PSP_", "LISTEN_")) and k not in ("NOTIFY_SOCKET", "XDG_RUNTIME_DIR")}
        env["PSP_KEYRING"] = keyring_dir
        self.command = [psp, "daemon", "--socket", self.socket, "--store", store_dir]
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            t0 = time.perf_counter()
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(self.out_path, encoding="utf-8", errors="replace") as fh:
                if "listening on" in fh.read():
                    break
            if self.process.poll() is not None:
                raise RuntimeError(f"psp daemon exited with status {self.process.returncode} at start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"psp daemon did not print 'listening on' within {START_TIMEOUT:g}s: {self.log_tail()}")
            time.sleep(0.005)
        self.start_seconds = time.perf_counter() - t0
        self.pid = self.process.pid

    def log_tail(self, lines: int = 5) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return " | ".join(fh.read().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """SIGTERM, and how the daemon went (its exit status, seconds to exit)."""
        if self.process.poll() is not None:
            return {"exit_status": self.process.returncode, "seconds": 0.0}
        t0 = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        return {"exit_status": status, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------
# 1. GET /v1/health
# --------------------------------------------------------------------------------------


class RawHttp:
    """HTTP/1.1 by hand over a ``socket.socket(AF_UNIX)``: the smallest client cost there is.

    The daemon (hypercorn's default ``keep_alive_max_requests``) ends a keep-alive connection after 1,000
    requests with ``connection: close``; the client then connects again, within the timed request.
    """

    REQUEST = b"GET /v1/health HTTP/1.1\r\nhost: psp\r\n\r\n"

    def __init__(self, path: str) -> None:
        self.path = path
        self.connections = 0
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)
        self.buffer = b""
        self.connections += 1

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the daemon closed the connection without saying so")
        self.buffer += chunk

    def health(self) -> bytes:
        self.sock.sendall(self.REQUEST)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.buffer[:end].lower()
        if not head.startswith(b"http/1.1 200"):
            raise RuntimeError(f"unexpected answer: {head[:80]!r}")
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError("answer without Content-Length")
        length = int(head[at + 17:].split(b"\r\n", 1)[0])
        total = end + 4 + length
        while len(self.buffer) < total:
            self._fill()
        body, self.buffer = self.buffer[end + 4:total], self.buffer[total:]
        if b"\r\nconnection: close" in head:
            self.sock.close()
            self._connect()
        return body

    def close(self) -> None:
        self.sock.close()


def health_clients(path: str) -> tuple[dict[str, Callable[[], Any]], Callable[[], dict[str, int]], Callable[[], None]]:
    """The three clients (label -> one request), the connections each has opened so far, and a close."""
    raw = RawHttp(path)
    http = httpx.Client(transport=httpx.HTTPTransport(uds=path), base_url="http://psp", timeout=10)
    client = Client(path, timeout=10)
    closes = {"httpx.Client": 0, "psp_cdp Client.health()": 0}

    def httpx_get() -> None:
        response = http.get("/v1/health")
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/health: {response.status_code}")
        if response.headers.get("connection") == "close":
            closes["httpx.Client"] += 1

    def closed(response: httpx.Response) -> None:  # httpx then opens a new connection for the next request
        if response.headers.get("connection") == "close":
            closes["psp_cdp Client.health()"] += 1

    client._http.event_hooks["response"].append(closed)

    def psp_client() -> None:
        if client.health() != {"status": "ok"}:
            raise RuntimeError("Client.health() did not give {'status': 'ok'}")

    def connections() -> dict[str, int]:
        return {"raw socket": raw.connections, **{label: n + 1 for label, n in closes.items()}}

    def close() -> None:
        raw.close()
        http.close()
        client.close()

    if raw.health() != HEALTH_BODY:
        raise RuntimeError("GET /v1/health did not give {\"status\": \"ok\"}")
    return {"raw socket": raw.health, "httpx.Client": httpx_get, "psp_cdp Client.health()": psp_client}, connections, close


def health_latency(daemon: DaemonProcess, requests: int, warmup: int) -> dict[str, Any]:
    """``requests`` GETs of /v1/health per client, the clients taking turns every BLOCK requests."""
    clients, connections, close = health_clients(daemon.socket)
    try:
        for request in clients.values():
            for _ in range(warmup):
                request()
        opened = connections()
        samples: dict[str, list[int]] = {label: [] for label in clients}
        wall = {label: 0.0 for label in clients}
        server_cpu = {label: 0.0 for label in clients}
        labels = list(clients)
        done, turn = 0, 0
        while done < requests:
            n = min(BLOCK, requests - done)
            for label in labels[turn % len(labels):] + labels[:turn % len(labels)]:
                request, out = clients[label], samples[label]
                gc.collect()
                gc.disable()  # the client's garbage collector is not the server's cost
                c0, w0 = daemon.cpu(), time.perf_counter()
                try:
                    for _ in range(n):
                        t0 = time.perf_counter_ns()
                        request()
                        out.append(time.perf_counter_ns() - t0)
                finally:
                    gc.enable()
                wall[label] += time.perf_counter() - w0
                server_cpu[label] += daemon.cpu() - c0
            done += n
            turn += 1
        rows = {}
        for label, values in samples.items():
            row = latency([v / 1e9 for v in values])
            row["requests_per_second"] = len(values) / wall[label]
            row["daemon_cpu_per_request"] = server_cpu[label] / len(values)
            rows[label] = row
        at_end = connections()
        for label, row in rows.items():  # the connection in use when timing began, and every one opened since
            row["connections"] = at_end[label] - opened[label] + 1
        return {"requests": requests, "warmup": warmup, "block": BLOCK, "rows": rows}
    finally:
        close()


# --------------------------------------------------------------------------------------
# 2. Many browsers attached: the daemon's RSS
# --------------------------------------------------------------------------------------


def launch_many(want: int, stack: contextlib.ExitStack) -> tuple[list[LaunchedBrowser], dict[str, Any]]:
    """Up to ``want`` headless Chromiums, LAUNCH_BATCH at a time in parallel, while they fit in memory."""
    before = meminfo()
    out: dict[str, Any] = {"wanted": want, "mem_total": before["MemTotal"], "mem_available_before": before["MemAvailable"],
                           "reserve": RESERVE_MIB * 2**20, "stopped_for_memory": False}
    browsers: list[LaunchedBrowser] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(LAUNCH_BATCH) as pool:
        while len(browsers) < want:
            available = meminfo()["MemAvailable"]
            per = (before["MemAvailable"] - available) / len(browsers) if browsers else FIRST_GUESS_MIB * 2**20
            per = max(per, 64 * 2**20)
            fit = int((available - RESERVE_MIB * 2**20) // per)
            n = min(LAUNCH_BATCH, want - len(browsers), fit)
            if n < 1:
                out["stopped_for_memory"] = True
                break
            futures = [pool.submit(launch_chromium, executable=CHROMIUM, timeout=90) for _ in range(n)]
            failures = []
            for future in futures:
                try:
                    browser = future.result()
                except Exception as exc:  # the others still get closed
                    failures.append(exc)
                    continue
                browsers.append(browser)
                stack.callback(browser.close)
            if failures:
                raise RuntimeError(f"{len(failures)} Chromium(s) did not start: {failures[0]}")
            print(f"  {len(browsers)} Chromiums running; MemAvailable {meminfo()['MemAvailable'] / 2**30:.1f} GiB",
                  file=sys.stderr)
    out["launched"] = len(browsers)
    out["launch_seconds"] = time.perf_counter() - t0
    return browsers, out


async def attach_all(path: str, endpoints: list[str]) -> tuple[list[str], list[float]]:
    """POST /v1/browsers for every endpoint at once; the ids and each request's time."""
    ids: list[str] = [""] * len(endpoints)
    times: list[float] = [0.0] * len(endpoints)
    async with AsyncClient(path, timeout=120) as client:

        async def one(i: int, endpoint: str) -> None:
            t0 = time.perf_counter()
            ids[i] = (await client.attach(endpoint))["id"]
            times[i] = time.perf_counter() - t0

        async with trio.open_nursery() as nursery:
            for i, endpoint in enumerate(endpoints):
                nursery.start_soon(one, i, endpoint)
    return ids, times


async def detach_all(path: str, ids: list[str]) -> list[float]:
    times: list[float] = [0.0] * len(ids)
    async with AsyncClient(path, timeout=120) as client:

        async def one(i: int, browser_id: str) -> None:
            t0 = time.perf_counter()
            await client.detach(browser_id)
            times[i] = time.perf_counter() - t0

        async with trio.open_nursery() as nursery:
            for i, browser_id in enumerate(ids):
                nursery.start_soon(one, i, browser_id)
    return times


def many_browsers(daemon: DaemonProcess, want: int, requests: int) -> dict[str, Any]:
    """RSS with ``want`` browsers attached (as many as fit), and after detaching them; they are closed at the end."""
    with contextlib.ExitStack() as stack:
        browsers, out = launch_many(want, stack)
        out["rss_before"] = daemon.status()
        time.sleep(SETTLE)
        out["mem_available_launched"] = meminfo()["MemAvailable"]
        endpoints = [b.endpoint for b in browsers]
        t0 = time.perf_counter()
        ids, attach_times = trio.run(attach_all, daemon.socket, endpoints)
        out["attach_wall_seconds"] = time.perf_counter() - t0
        out["attach_seconds"] = latency(attach_times)
        with Client(daemon.socket, timeout=30) as client:
            listed = client.browsers()
        out["listed_attached"] = sum(1 for b in listed if b.get("attached"))
        if out["listed_attached"] != len(browsers):
            raise RuntimeError(f"GET /v1/browsers shows {out['listed_attached']} of {len(browsers)} browsers attached")
        time.sleep(SETTLE)
        out["rss_attached"] = daemon.status()
        # the control API with every browser attached (a shorter run: the idle daemon's figure is part 1)
        out["health_attached"] = health_latency(daemon, requests, warmup=100)
        out["rss_attached_after_health"] = daemon.status()
        t0 = time.perf_counter()
        out["detach_seconds"] = latency(trio.run(detach_all, daemon.socket, ids))
        out["detach_wall_seconds"] = time.perf_counter() - t0
        with Client(daemon.socket, timeout=30) as client:
            out["listed_after_detach"] = len(client.browsers())
        out["browsers_alive_after_detach"] = sum(1 for b in browsers if b.alive())
        time.sleep(SETTLE)
        out["rss_detached"] = daemon.status()
    out["mem_available_closed"] = meminfo()["MemAvailable"]  # the ExitStack closed every Chromium
    return out


# --------------------------------------------------------------------------------------
# 3. Capture through the daemon against in-process
# --------------------------------------------------------------------------------------


async def capture_rounds(daemon: DaemonProcess, endpoint: str, store_dir: str, keyring_dir: str,
                         rounds: int) -> dict[str, Any]:
    """One untimed capture per side, then ``rounds`` of one timed capture per side, taking turns going first."""
    sessions = Sessions(open_store(store_dir), keyring=Keyring(keyring_dir, environ={}), cipher=CIPHER)
    out: dict[str, Any] = {"rounds": rounds, "captures": []}
    try:
        async with AsyncClient(daemon.socket) as client:
            t0 = time.perf_counter()
            browser = await client.attach(endpoint)
            out["attach_seconds"] = time.perf_counter() - t0
            await client.create_session(DAEMON_SESSION)
            t0 = time.perf_counter()
            async with open_cdp(endpoint) as conn:
                out["open_cdp_seconds"] = time.perf_counter() - t0

                async def one(side: str) -> dict[str, Any]:
                    gc.collect()
                    d0, p0, t0 = daemon.cpu(), time.process_time(), time.perf_counter()
                    with trio.fail_after(STEP_TIMEOUT):
                        if side == "daemon":
                            answer = await client.capture(DAEMON_SESSION, browser["id"])
                            row = {"version": answer["version"], "kind": answer["kind"],
                                   "stored_bytes": answer["stored_bytes"],
                                   "origins": len(answer["origins_covered"]), "uncovered": len(answer["uncovered"])}
                        else:
                            captured = await sessions.capture(conn, INPROC_SESSION)
                            assert captured.version is not None
                            report = captured.state.report
                            row = {"version": captured.version.version, "kind": captured.version.kind,
                                   "stored_bytes": captured.version.stored_bytes,
                                   "origins": len(report.origins_covered), "uncovered": len(report.uncovered)}
                    row["seconds"] = time.perf_counter() - t0
                    row["cpu_daemon"] = daemon.cpu() - d0
                    row["cpu_bench"] = time.process_time() - p0
                    row["side"] = side
                    return row

                out["first"] = {side: await one(side) for side in ("daemon", "in-process")}  # full versions, untimed
                print("  first captures (untimed) done", file=sys.stderr)
                for i in range(rounds):
                    order = ("daemon", "in-process") if i % 2 == 0 else ("in-process", "daemon")
                    for side in order:
                        row = await one(side)
                        row["round"] = i + 1
                        out["captures"].append(row)
                    print(f"  round {i + 1}/{rounds}: " + ", ".join(
                        f"{r['side']} {r['seconds']:.2f}s" for r in out["captures"][-2:]), file=sys.stderr)
            t0 = time.perf_counter()
            await client.detach(browser["id"])
            out["detach_seconds"] = time.perf_counter() - t0
    finally:
        sessions.store.close()
    for side in ("daemon", "in-process"):
        rows = [r for r in out["captures"] if r["side"] == side]
        out[side] = {"seconds": latency([r["seconds"] for r in rows]),
                     "cpu_daemon": statistics.median(r["cpu_daemon"] for r in rows),
                     "cpu_bench": statistics.median(r["cpu_bench"] for r in rows),
                     "kinds": sorted({r["kind"] for r in rows}),
                     "stored_bytes": statistics.median(r["stored_bytes"] for r in rows)}
    d, p = out["daemon"]["seconds"]["p50"], out["in-process"]["seconds"]["p50"]
    out["overhead"] = (d - p) / p
    # the same, per round (each round's two captures ran one after the other)
    by_round: dict[int, dict[str, float]] = {}
    for r in out["captures"]:
        by_round.setdefault(r["round"], {})[r["side"]] = r["seconds"]
    out["overhead_per_round"] = [(x["daemon"] - x["in-process"]) / x["in-process"] for _, x in sorted(by_round.items())]
    return out


# --------------------------------------------------------------------------------------
# Main and report
# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a shorter run: 5,000 health requests per client, 7 capture rounds of a smaller state "
                             "(1 MB of localStorage, 6,000 records), 5 browsers")
    parser.add_argument("--requests", type=int, help="GET /v1/health per client (default 20,000; 5,000 with --quick)")
    parser.add_argument("--rounds", type=int, help="timed captures per side (default 15; 7 with --quick)")
    parser.add_argument("--browsers", type=int, help="Chromiums to attach at once (default 20; 5 with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args()
    requests = args.requests or (5000 if args.quick else 20000)
    rounds = args.rounds or (7 if args.quick else 15)
    want = args.browsers if args.browsers is not None else (5 if args.quick else 20)
    if requests < 1 or rounds < 1 or want < 0:
        parser.error("--requests and --rounds must be at least 1, --browsers at least 0")
    ls_bytes = LS_BYTES_QUICK if args.quick else LS_BYTES
    idb_labels = IDB_LABELS_QUICK if args.quick else IDB_LABELS

    started = time.perf_counter()
    results: dict[str, Any] = {"psp_cdp_version": psp_cdp.__version__, "quick": args.quick, "cipher": CIPHER,
                               "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                               "python": sys.version.split()[0], "httpx": httpx.__version__, "source": source()}
    root = tempfile.mkdtemp(prefix="psp-bench-daemon-")
    try:
        with contextlib.ExitStack() as stack:
            keyring_dir = os.path.join(root, "keys")
            Keyring(keyring_dir, environ={}).current()  # one key, made before the daemon reads the keyring
            daemon = DaemonProcess(root, os.path.join(root, "daemon-store"), keyring_dir)
            stack.callback(daemon.stop)
            results["daemon"] = {"command": " ".join(daemon.command).replace(root, "$TMP"),
                                 "start_seconds": daemon.start_seconds}
            print(f"daemon {daemon.pid} listening on {daemon.socket} after {daemon.start_seconds:.2f}s", file=sys.stderr)
            time.sleep(SETTLE)
            memory: dict[str, Any] = {"idle": daemon.status()}
            results["memory"] = memory

            print(f"GET /v1/health: {requests:,} requests per client ...", file=sys.stderr)
            t0 = time.perf_counter()
            results["health"] = health_latency(daemon, requests, warmup=500)
            results["health"]["seconds"] = time.perf_counter() - t0
            memory["after_health"] = daemon.status()

            if want:
                print(f"{want} browsers ...", file=sys.stderr)
                results["browsers"] = many_browsers(daemon, want, min(requests, 2000))
                memory["with_browsers"] = results["browsers"]["rss_attached"]
                memory["after_detach"] = results["browsers"]["rss_detached"]

            print("building the state ...", file=sys.stderr)
            with serve_site(ORIGIN_SPECS, SiteHandler) as origins:
                browser = launch_chromium(executable=CHROMIUM)
                stack.callback(browser.close)
                t0 = time.perf_counter()
                results["built"] = trio.run(build_state, browser.endpoint, origins, ls_bytes, idb_labels)
                results["built"]["seconds"] = time.perf_counter() - t0
                print(f"built the state in {results['built']['seconds']:.1f}s; {rounds} capture rounds ...",
                      file=sys.stderr)
                results["capture"] = trio.run(capture_rounds, daemon, browser.endpoint,
                                              os.path.join(root, "inprocess-store"), keyring_dir, rounds)
                memory["after_captures"] = daemon.status()
                browser.close()
            results["daemon"]["stop"] = daemon.stop()
            results["daemon"]["log_tail"] = daemon.log_tail(3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finish_run(results, started, args.json)
    print_report(results)
    print("\njson: " + json.dumps(results, default=str, separators=(",", ":")))
    return 0


def source() -> dict[str, Any]:
    """The commit this runs from, and the files of psp_cdp/ that differ from it (read-only git calls)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(psp_cdp.__file__)))

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "psp_cdp").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or "?", "uncommitted": changed}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_report(results: dict[str, Any]) -> None:
    d = results["daemon"]
    print(f"# The daemon: control API latency, capture overhead, memory: psp_cdp {results['psp_cdp_version']}"
          f"{' (--quick)' if results['quick'] else ''}\n")
    print(f"- Daemon: `{d['command']}` (filesystem store, keyring and socket in a temporary directory); "
          f"`listening on` {d['start_seconds']:.2f}s after the start; SIGTERM at the end: exit status "
          f"{d['stop']['exit_status']} after {d['stop']['seconds']:.2f}s")
    print(f"- Python {results['python']}, httpx {results['httpx']}; {results['cpus']} CPUs, load average "
          f"{results['loadavg_start'][0]:.1f} at the start and {results['loadavg_end'][0]:.1f} at the end; wall time "
          f"{results['wall_seconds']:.0f}s")
    src = results["source"]
    print(f"- Source: commit {src['commit']}" + (f", with uncommitted changes in {len(src['uncommitted'])} files of "
          f"psp_cdp/ ({', '.join(src['uncommitted'])})" if src["uncommitted"] else ", no uncommitted changes in psp_cdp/")
          + "\n")

    h = results["health"]
    print(f"## 1. GET /v1/health over the Unix socket: {h['requests']:,} requests per client, keep-alive\n")
    print(f"Each client sends its requests one after another on a keep-alive connection. The daemon ends a "
          f"connection after 1,000 requests (`connection: close`: hypercorn's default keep_alive_max_requests), "
          f"and the client connects again within the next timed request, so one request in 1,000 includes a new "
          f"connection. The clients take turns every {h['block']} requests, after {h['warmup']} untimed each. The "
          f"client's garbage collector is off while timing. Daemon CPU is its user + system time "
          f"(/proc/PID/stat) over the client's requests, per request.\n")
    print("| client | n | connections | p50 µs | p99 µs | mean µs | min µs | max µs | requests/s "
          "| daemon CPU µs/request |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, x in h["rows"].items():
        print(f"| {label} | {x['n']:,} | {x['connections']} | {us(x['p50'])} | {us(x['p99'])} | {us(x['mean'])} "
              f"| {us(x['min'])} | {us(x['max'])} | {x['requests_per_second']:,.0f} "
              f"| {us(x['daemon_cpu_per_request'])} |")
    raw, hx = h["rows"]["raw socket"], h["rows"]["httpx.Client"]
    print(f"\n- Target p50 < 1 ms: httpx.Client {us(hx['p50'])} µs ({met(hx['p50'] < 0.001)}); raw socket "
          f"{us(raw['p50'])} µs ({met(raw['p50'] < 0.001)})")

    b = results.get("browsers")
    m = results["memory"]
    print("\n## 2. Daemon memory (/proc/PID/status)\n")
    print("| when | VmRSS MiB | VmHWM MiB | threads | open fds |")
    print("|---|---:|---:|---:|---:|")
    rows = [("idle, 2 s after the start", "idle"), (f"after part 1 ({h['requests'] * 3:,} health requests)", "after_health")]
    if b:
        rows += [(f"{b['launched']} browsers attached", "with_browsers"),
                 (f"{b['launched']} browsers attached, after {b['health_attached']['requests'] * 3:,} more "
                  f"health requests", None),
                 (f"after detaching the {b['launched']}", "after_detach")]
    rows.append(("after part 3 (the captures of the heavy state)", "after_captures"))
    for label, key in rows:
        x = m.get(key) if key else (b or {}).get("rss_attached_after_health")
        if x:
            print(f"| {label} | {mib(x['VmRSS'])} | {mib(x['VmHWM'])} | {x['Threads']} | {x['fds']} |")
    if b:
        per = (b["rss_attached"]["VmRSS"] - m["after_health"]["VmRSS"]) / max(1, b["launched"])
        print(f"\n- {b['launched']} of {b['wanted']} headless Chromiums launched, {LAUNCH_BATCH} at a time in parallel, "
              f"in {b['launch_seconds']:.1f}s"
              + (" (stopped: the next ones would not fit in the memory available)" if b["stopped_for_memory"] else "")
              + f"; machine MemAvailable {mib(b['mem_available_before'])} MiB before, "
              f"{mib(b['mem_available_launched'])} MiB with them running "
              f"(about {mib((b['mem_available_before'] - b['mem_available_launched']) / max(1, b['launched']))} MiB "
              f"each), {mib(b['mem_available_closed'])} MiB after closing them; MemTotal {mib(b['mem_total'])} MiB")
        print(f"- Attached all at once with POST /v1/browsers: {b['attach_wall_seconds']:.2f}s in all, "
              f"{b['attach_seconds']['p50'] * 1000:,.0f} ms median per request; GET /v1/browsers listed "
              f"{b['listed_attached']} attached. Daemon RSS per attached browser: about {per / 1024:,.0f} KiB")
        ha = b["health_attached"]["rows"]
        print(f"- GET /v1/health with the {b['launched']} attached ({b['health_attached']['requests']:,} per client): "
              + "; ".join(f"{k} p50 {us(x['p50'])} µs, p99 {us(x['p99'])} µs" for k, x in ha.items()))
        print(f"- Detached all at once with DELETE /v1/browsers/{{id}}: {b['detach_wall_seconds']:.2f}s; "
              f"GET /v1/browsers then listed {b['listed_after_detach']}; "
              f"{b['browsers_alive_after_detach']} of {b['launched']} Chromiums still running (detach leaves them "
              f"as they were; the benchmark closes them)")

    c, built = results["capture"], results["built"]
    print(f"\n## 3. Capture through the daemon against in-process capture, {c['rounds']} rounds\n")
    print(f"- State ({built['seconds']:.0f}s to build, bench/versions.py's builder): {built['ls_items']:,} localStorage "
          f"items, {kib(built['ls_bytes'])} over {len(built['local_storage'])} origins; {built['idb_records']:,} IndexedDB "
          f"records; {built['cache_entries']} CacheStorage entries; {built['cookies']} cookies; {len(built['tabs'])} tabs "
          f"with history and sessionStorage ({built['chromium']})")
    print(f"- daemon: POST /v1/sessions/{{id}}/capture with psp_cdp.client.AsyncClient, the browser attached once "
          f"(POST /v1/browsers: {c['attach_seconds'] * 1000:,.0f} ms, untimed); in-process: Sessions.capture(conn, ...) "
          f"over one open_cdp connection opened before the rounds ({c['open_cdp_seconds'] * 1000:,.0f} ms, untimed). "
          f"Each side writes its own session to its own filesystem store, same keyring, sealed with {results['cipher']}")
    first = c["first"]
    print(f"- First capture of each side, untimed: daemon {first['daemon']['seconds']:.2f}s "
          f"(version {first['daemon']['version']}, {first['daemon']['kind']}, {first['daemon']['stored_bytes']:,} B), "
          f"in-process {first['in-process']['seconds']:.2f}s (version {first['in-process']['version']}, "
          f"{first['in-process']['kind']}, {first['in-process']['stored_bytes']:,} B); the timed ones that follow "
          f"are the session's next versions\n")
    print("| side | n | median s | min s | max s | mean s | version kinds | median stored_bytes "
          "| daemon CPU s (median) | benchmark process CPU s (median) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for side in ("daemon", "in-process"):
        x = c[side]
        s = x["seconds"]
        print(f"| {side} | {s['n']} | {s['p50']:.3f} | {s['min']:.3f} | {s['max']:.3f} | {s['mean']:.3f} "
              f"| {', '.join(x['kinds'])} | {x['stored_bytes']:,.0f} | {x['cpu_daemon']:.2f} | {x['cpu_bench']:.2f} |")
    per_round = c["overhead_per_round"]
    print(f"\n- Overhead of the daemon (median against median): **{100 * c['overhead']:+.1f} %** "
          f"(target < 10 %: {met(c['overhead'] < 0.10)}); per round (the two captures one after the other, "
          f"taking turns going first): median {100 * statistics.median(per_round):+.1f} %, "
          f"from {100 * min(per_round):+.1f} % to {100 * max(per_round):+.1f} %")
    print("- Each round: " + "; ".join(
        f"{r['round']}: {r['side']} {r['seconds']:.2f}s" for r in c["captures"]))

    print("\n## Caveats\n")
    print("- The in-process capture runs in this benchmark's own process, the daemon's in its own; both run "
          "the same Sessions.capture (capture_state, diff against the parent version, encode, seal, write). The "
          "daemon's figure adds the HTTP request over the socket, JSON, and the hop from its request task to the "
          "store thread. CPU time of Chromium's own processes is in neither CPU column.")
    print("- After the first (full) version, every capture is a delta of an unchanged state, on both sides.")
    print("- p99 is nearest-rank. Latency figures below a millisecond depend on the scheduler: with "
          f"{results['cpus']} CPUs, the client and the daemon share them with whatever else runs; the load "
          "average is printed above.")
    print("- RSS of a Python process seldom shrinks: memory freed after the captures or the detach stays mapped "
          "for reuse, so the later rows include what earlier parts left.")
    print("- Open fds count the daemon's sockets: one per attached browser, plus HTTP connections. A keep-alive "
          "connection the client closed while it was idle was seen to keep its socket in the daemon until the "
          "keep-alive timeout (30 s), so the rows after the parallel attach and detach requests include up to "
          "one socket per request of the last 30 s.")
    print("- Absolute figures depend on the machine and its load; compare the rows side by side.")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the daemon, the browsers, the site and the temp dir are gone by then
        print("interrupted", file=sys.stderr)
        sys.exit(130)
