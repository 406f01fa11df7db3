"""The daemon under load: many clients listing sessions, thousands of idle and slow connections.

What it does (see bench/README.md):

1. makes a filesystem store with ``--sessions`` sessions (default 55), each with one
   version (cookies and localStorage of a small state), and starts ``psp daemon`` on it;
2. **closed loop**: ``--clients`` clients (default 200), each on its own keep-alive
   connection over the Unix socket, send ``GET /v1/sessions`` one after the other for
   ``--seconds``; requests per second and latency percentiles;
3. **open loop**: requests are due at a fixed rate (``--rate``, default 200 per second),
   each sent on a free connection of the same pool; a request's latency counts from when
   it was due, so a daemon that falls behind shows it (coordinated omission avoided);
4. **idle and slow connections**: opens ``--idle`` connections (default 3,000) that send
   nothing and ``--slow`` connections (default 1,000) that send a request's head one byte
   a second, then, while they are held, times new clients' ``GET /v1/sessions`` and reads
   the daemon's RSS (``VmRSS``/``VmHWM``); then waits and counts how many of the slow and
   idle connections the daemon has closed by its deadlines;
5. prints a table, then ``json:`` and one JSON line with every figure.

The client is raw HTTP/1.1 over ``trio`` sockets (one process; its own cost is small
next to the daemon's, which runs in another process).

Run: ``.venv/bin/python bench/soak.py [--quick] [--seconds N] [--rate N] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

import trio

from psp_cdp.snapshot.model import BrowserSessionState
from psp_cdp.snapshot.playwright import from_storage_state
from psp_cdp.store import Sessions, open_store
from psp_cdp.store.keys import Keyring

from benchkit import finish_run
from daemon import DaemonProcess

REQUEST = b"GET /v1/sessions HTTP/1.1\r\nhost: psp\r\n\r\n"
READ = 65536
CONNECT_BATCH = 200  # connections opened at once


def small_state(n: int) -> BrowserSessionState:
    """Eight cookies and twenty localStorage items on one origin, as a Playwright state would hold them."""
    host = f"app{n}.test"
    return from_storage_state({
        "cookies": [{"name": f"c{i}", "value": f"v{n}-{i}" * 4, "domain": host, "path": "/", "expires": -1,
                     "httpOnly": False, "secure": False, "sameSite": "Lax"} for i in range(8)],
        "origins": [{"origin": f"http://{host}",
                     "localStorage": [{"name": f"k{i}", "value": f"value {n} {i} " * 20} for i in range(20)]}],
    })


async def make_sessions(store_dir: str, keyring_dir: str, count: int) -> None:
    sessions = Sessions(open_store(store_dir), keyring=Keyring(keyring_dir))
    try:
        for n in range(count):
            await sessions.save(f"soak-{n:03d}", small_state(n), tags={"team": "soak"})
    finally:
        sessions.store.close()


class Connection:
    """One keep-alive HTTP/1.1 connection over the Unix socket, by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, path: str) -> Connection:
        return cls(await trio.open_unix_socket(path))

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(READ)
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        self.buffer += chunk

    async def get(self) -> int:
        """Send the request; the answer's status (the body is read and dropped)."""
        await self.stream.send_all(REQUEST)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = self.buffer[:end].lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
        total = end + 4 + length
        while len(self.buffer) < total:
            await self._fill()
        self.buffer = self.buffer[total:]
        return status

    async def aclose(self) -> None:
        with trio.move_on_after(1):
            await self.stream.aclose()


class Tally:
    """Latencies and errors of a run's requests."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def get(self, conn: Connection, since: float) -> bool:
        """One request on ``conn``, its latency counted from ``since`` (trio's clock); whether ``conn`` is still usable."""
        try:
            status = await conn.get()
        except (OSError, ConnectionError, trio.BrokenResourceError) as exc:
            self.error(type(exc).__name__)
            return False
        self.latencies.append(trio.current_time() - since)
        if status != 200:
            self.error(str(status))
        return True


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]

    return {"n": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


async def open_pool(path: str, count: int) -> list[Connection]:
    pool: list[Connection] = []
    for start in range(0, count, CONNECT_BATCH):
        async with trio.open_nursery() as nursery:
            async def one() -> None:
                pool.append(await Connection.open(path))

            for _ in range(min(CONNECT_BATCH, count - start)):
                nursery.start_soon(one)
    return pool


async def closed_loop(path: str, clients: int, seconds: float) -> dict[str, Any]:
    pool = await open_pool(path, clients)
    tally = Tally()
    end = trio.current_time() + seconds

    async def client(conn: Connection) -> None:
        while trio.current_time() < end and await tally.get(conn, trio.current_time()):
            pass

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for conn in pool:
            nursery.start_soon(client, conn)
    wall = time.perf_counter() - t0
    for conn in pool:
        await conn.aclose()
    return {"clients": clients, "seconds": wall, "requests": len(tally.latencies), "per_second": len(tally.latencies) / wall,
            "latency": percentiles(tally.latencies), "errors": tally.errors}


async def open_loop(path: str, clients: int, rate: float, seconds: float) -> dict[str, Any]:
    pool = await open_pool(path, clients)
    free_send, free_receive = trio.open_memory_channel[Connection](clients)
    for conn in pool:
        free_send.send_nowait(conn)
    tally = Tally()
    total = int(rate * seconds)

    async def one(due: float, conn: Connection) -> None:
        if await tally.get(conn, due):
            free_send.send_nowait(conn)

    start = trio.current_time() + 0.1
    async with trio.open_nursery() as nursery:
        for i in range(total):
            due = start + i / rate
            await trio.sleep_until(due)
            conn = await free_receive.receive()  # waiting for a free connection counts in the latency
            nursery.start_soon(one, due, conn)
    wall = trio.current_time() - start
    for conn in pool:
        await conn.aclose()
    return {"rate": rate, "clients": clients, "seconds": wall, "requests": len(tally.latencies),
            "per_second": len(tally.latencies) / wall, "latency": percentiles(tally.latencies), "errors": tally.errors}


async def held_connections(daemon: DaemonProcess, idle: int, slow: int, seconds: float, wait_closed: float) -> dict[str, Any]:
    """Hold ``idle`` silent and ``slow`` trickling connections while new clients are timed."""
    path = daemon.socket
    before = daemon.status()
    refused = 0
    held: list[trio.SocketStream] = []
    trickling: list[trio.SocketStream] = []

    async def connect(into: list[trio.SocketStream]) -> None:
        nonlocal refused
        try:
            into.append(await trio.open_unix_socket(path))
        except OSError:
            refused += 1

    for kind, count in ((held, idle), (trickling, slow)):
        for start in range(0, count, CONNECT_BATCH):
            async with trio.open_nursery() as nursery:
                for _ in range(min(CONNECT_BATCH, count - start)):
                    nursery.start_soon(connect, kind)
    closed_by_daemon = {"idle": 0, "slow": 0}

    async def trickle(stream: trio.SocketStream) -> None:
        try:
            for byte in REQUEST[:-2]:  # never the blank line that ends the head
                await stream.send_all(bytes([byte]))
                await trio.sleep(1)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            closed_by_daemon["slow"] += 1

    async def watch_idle(stream: trio.SocketStream) -> None:
        try:
            if await stream.receive_some(READ) == b"":
                closed_by_daemon["idle"] += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            closed_by_daemon["idle"] += 1

    tally = Tally()
    async with trio.open_nursery() as nursery:
        for stream in trickling:
            nursery.start_soon(trickle, stream)
        for stream in held:
            nursery.start_soon(watch_idle, stream)
        await trio.sleep(1)
        during = daemon.status()
        end = trio.current_time() + seconds
        while trio.current_time() < end:  # one new client after another, each on a new connection
            since = trio.current_time()
            try:
                conn = await Connection.open(path)
            except OSError as exc:
                tally.error(type(exc).__name__)
                continue
            await tally.get(conn, since)
            await conn.aclose()
            await trio.sleep(0.05)
        after = daemon.status()
        await trio.sleep(wait_closed)
        nursery.cancel_scope.cancel()
    for stream in held + trickling:
        with trio.move_on_after(0.1):
            await stream.aclose()
    return {
        "idle": idle, "slow": slow, "refused_at_connect": refused,
        "new_clients": {"latency": percentiles(tally.latencies), "errors": tally.errors},
        "rss_before": before["VmRSS"], "rss_held": max(during["VmRSS"], after["VmRSS"]), "rss_peak": after["VmHWM"],
        "fds_held": max(during.get("fds", 0), after.get("fds", 0)),
        "closed_by_daemon_after": {"seconds": seconds + 1 + wait_closed, **closed_by_daemon},
    }


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def mib(n: int) -> str:
    return f"{n / 1048576:.0f} MiB"


def print_report(results: dict[str, Any]) -> None:
    print(f"\n## psp daemon under load ({results['sessions']} sessions, GET /v1/sessions over the Unix socket)\n")
    print("| run | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, key in (("closed loop", "closed_loop"), ("open loop", "open_loop")):
        run = results.get(key)
        if not run:
            continue
        lat = run["latency"]
        name = f"{label}, {run['clients']} clients" + (f", {run['rate']:g}/s due" if "rate" in run else "")
        print(f"| {name} | {run['per_second']:.0f} | {ms(lat.get('p50'))} | {ms(lat.get('p90'))} | {ms(lat.get('p99'))} "
              f"| {ms(lat.get('max'))} | {run['errors'] or '-'} |")
    held = results.get("held")
    if held:
        lat = held["new_clients"]["latency"]
        print(f"\n{held['idle']} idle + {held['slow']} slow connections held ({held['refused_at_connect']} refused at connect): "
              f"daemon RSS {mib(held['rss_before'])} before, {mib(held['rss_held'])} while held (peak {mib(held['rss_peak'])}), "
              f"{held['fds_held']} descriptors; new clients meanwhile p50 {ms(lat.get('p50'))} ms, p99 {ms(lat.get('p99'))} ms, "
              f"errors {held['new_clients']['errors'] or '-'}; closed by the daemon within "
              f"{held['closed_by_daemon_after']['seconds']:.0f} s: {held['closed_by_daemon_after']['idle']} idle, "
              f"{held['closed_by_daemon_after']['slow']} slow")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=55)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: requests due per second")
    parser.add_argument("--idle", type=int, default=3000)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--wait-closed", type=float, default=40.0,
                        help="seconds to wait, after timing, for the daemon to close the idle and slow connections")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer held connections")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.idle, args.slow, args.wait_closed = 3.0, 500, 200, 0.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.clients + args.idle + args.slow + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    started = time.perf_counter()
    results: dict[str, Any] = {"sessions": args.sessions, "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory(prefix="psp-soak-") as root:
        store_dir, keyring_dir = os.path.join(root, "store"), os.path.join(root, "keys")
        trio.run(make_sessions, store_dir, keyring_dir, args.sessions)
        daemon = DaemonProcess(root, store_dir, keyring_dir)
        time.sleep(2.5)  # sessions are not listed the moment they are written: see bench/README.md
        try:
            results["closed_loop"] = trio.run(closed_loop, daemon.socket, args.clients, args.seconds)
            results["open_loop"] = trio.run(open_loop, daemon.socket, args.clients, args.rate, args.seconds)
            results["held"] = trio.run(held_connections, daemon, args.idle, args.slow, args.seconds, args.wait_closed)
            results["daemon_alive"] = daemon.process.poll() is None
            results["daemon_log_lines"] = sum(1 for _ in open(daemon.log_path, encoding="utf-8", errors="replace"))
        finally:
            results["daemon_stop"] = daemon.stop()
    finish_run(results, started, args.json)
    print_report(results)
    print(f"\ndaemon log: {results.get('daemon_log_lines', '-')} lines; stopped with status {results['daemon_stop']['exit_status']}")
    print("json: " + json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
