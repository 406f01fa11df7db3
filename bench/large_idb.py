"""Large state: capture and restore 100 MB of IndexedDB, with the Python process's peak memory.

Builds ``--mb`` megabytes (default 100) of IndexedDB records in one Chromium — half
strings, half ArrayBuffers, 256 KB each, over two stores — captures them with
``capture_state(only=["indexed_db"])``, writes the snapshot to a file with
``codec.iter_encode``, reads it back and restores it into a new context, then checks
the record count and a checksum inside the restored page.

Prints the state size, the snapshot size, the times, and the peak resident set size of
this process (``ru_maxrss``) over its size before the capture.

Run: ``.venv/bin/python bench/large_idb.py [--mb 100]``
"""

from __future__ import annotations

import argparse
import http.server
import os
import resource
import tempfile
import threading
import time

import trio

from psp_cdp.cdp import launch_chromium, open_cdp
from psp_cdp.snapshot import codec
from psp_cdp.state import capture_state, restore_state

RECORD = 256 * 1024

BUILD = """
(async (mb, size) => {
  const open = indexedDB.open("big", 1);
  open.onupgradeneeded = () => { open.result.createObjectStore("text"); open.result.createObjectStore("bytes"); };
  const db = await new Promise((r) => { open.onsuccess = () => r(open.result); });
  const count = Math.ceil(mb * 1024 * 1024 / size);
  for (let i = 0; i < count; i += 20) {
    const tx = db.transaction(["text", "bytes"], "readwrite");
    for (let j = i; j < Math.min(i + 20, count); j++) {
      if (j %% 2) {
        const bytes = new Uint8Array(size);
        for (let k = 0; k < size; k += 4096) bytes[k] = (j + k) & 255;
        tx.objectStore("bytes").put(bytes.buffer, j);
      } else {
        tx.objectStore("text").put(String.fromCharCode(97 + (j %% 26)).repeat(size - 8) + String(j).padStart(8, "0"), j);
      }
    }
    await new Promise((r) => { tx.oncomplete = r; });
  }
  db.close();
  return count;
})(%d, %d)
"""

CHECK = """
(async () => {
  const db = await new Promise((r) => { const o = indexedDB.open("big"); o.onsuccess = () => r(o.result); });
  const count = (name) => new Promise((r) => { const q = db.transaction(name).objectStore(name).count(); q.onsuccess = () => r(q.result); });
  const last = await new Promise((r) => { const q = db.transaction("bytes").objectStore("bytes").get(1); q.onsuccess = () => r(q.result); });
  const n = [await count("text"), await count("bytes"), last instanceof ArrayBuffer ? last.byteLength : -1];
  db.close();
  return n;
})()
"""


async def loaded(session, url: str) -> None:
    """Wait until the tab shows ``url`` and has finished loading it."""
    for _ in range(200):
        result = await session.send(
            "Runtime.evaluate", {"expression": "[location.href, document.readyState]", "returnByValue": True}
        )
        if result["result"].get("value") == [url, "complete"]:
            return
        await trio.sleep(0.05)
    raise SystemExit(f"{url} did not load")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>big</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


async def main(mb: int) -> None:
    server, url = serve()
    browser = launch_chromium(user_data_dir=tempfile.mkdtemp(prefix="psp-bench-"))
    try:
        async with open_cdp(browser.endpoint) as cdp:
            target = (await cdp.send("Target.createTarget", {"url": url}))["targetId"]
            page = await cdp.attach(target)
            await loaded(page, url)
            built = await page.send(
                "Runtime.evaluate", {"expression": BUILD % (mb, RECORD), "awaitPromise": True, "returnByValue": True}
            )
            if "exceptionDetails" in built:
                raise SystemExit(f"building the database failed: {built['exceptionDetails']}")
            records = built["result"]["value"]
            await page.detach()
            before = rss_mb()
            started = time.perf_counter()
            state = await capture_state(cdp, only=["indexed_db"])
            captured = time.perf_counter() - started
            path = os.path.join(tempfile.mkdtemp(), "big.psp")
            with open(path, "wb") as out:
                for piece in codec.iter_encode(state):
                    out.write(piece)
            encoded = time.perf_counter() - started
            state_bytes = sum(len(r.value.data) + len(r.key.data) for r in state.storage.indexed_db_records)
            capture_peak = rss_mb()
            del state
            started = time.perf_counter()
            with open(path, "rb") as f:
                state = codec.decode(f.read())
            report = await restore_state(cdp, state, context="new", only=["indexed_db"])
            restored = time.perf_counter() - started
            restore_peak = rss_mb()
            check_target = (await cdp.send("Target.createTarget", {"url": url, "browserContextId": report.context_id}))["targetId"]
            check = await cdp.attach(check_target)
            await loaded(check, url)
            counts = (await check.send("Runtime.evaluate", {"expression": CHECK, "awaitPromise": True, "returnByValue": True}))["result"]["value"]
    finally:
        browser.kill()
        server.shutdown()
    print(f"IndexedDB built in the page: {records} records of {RECORD // 1024} KB = {records * RECORD / 2**20:.0f} MiB")
    print(f"captured values (encoded, as stored): {state_bytes / 2**20:.0f} MiB; snapshot file {os.path.getsize(path) / 2**20:.1f} MiB")
    print(f"capture {captured:.1f} s, capture + write {encoded:.1f} s, read + restore {restored:.1f} s")
    print(f"restored, counted in the page: text {counts[0]}, bytes {counts[1]}, ArrayBuffer size {counts[2]}")
    print(f"peak RSS: {before:.0f} MiB before capture, {capture_peak:.0f} MiB after capture+write "
          f"(+{capture_peak - before:.0f} MiB), {restore_peak:.0f} MiB after restore")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="megabytes of IndexedDB to build (default 100)")
    trio.run(main, parser.parse_args().mb)
