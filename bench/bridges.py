"""The Playwright bridge against Playwright's own storageState, on one browser Playwright launched.

One Chromium, launched by Playwright over its pipe (no debugging port), holds a
realistic state on one origin: a session cookie, 200 localStorage keys (about 1 MB),
2,000 IndexedDB records and 20 cache entries. Measured, median of ``--rounds``:

* capture: ``PlaywrightAdapter`` session ``capture()`` (relay over Playwright's CDP
  session, then psp_cdp's capture, diff, seal and write) against
  ``context.storage_state(indexed_db=True)`` written to a JSON file;
* restore: ``load_session(id).restore(page)`` into a fresh context against
  ``browser.new_context(storage_state=...)`` plus loading the page;
* what each one carries: psp_cdp takes sessionStorage, CacheStorage and tabs, which
  storageState cannot hold.

Run: ``.venv/bin/python bench/bridges.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler

from benchkit import json_blob, ms, serve_site, stats

from psp_cdp.playwright import PlaywrightAdapter

CHROMIUM = os.environ.get("PSP_CHROMIUM", "/usr/bin/chromium")

FILL = """async ([values, records]) => {
    document.cookie = 'sid=bench-session; path=/';
    values.forEach((v, i) => localStorage.setItem('key' + i, v));
    sessionStorage.setItem('draft', 'unsent');
    await new Promise((resolve, reject) => {
        const open = indexedDB.open('bench', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('records', {keyPath: 'id'});
        open.onsuccess = () => {
            const tx = open.result.transaction('records', 'readwrite');
            for (let i = 0; i < records; i++)
                tx.objectStore('records').put({id: i, name: 'record ' + i, when: new Date(i * 1000), tags: ['a', 'b']});
            tx.oncomplete = () => { open.result.close(); resolve(); };
            tx.onerror = () => reject(tx.error);
        };
    });
    const cache = await caches.open('assets');
    for (let i = 0; i < 20; i++) await cache.put('/asset' + i, new Response('x'.repeat(10000)));
    return localStorage.length;
}"""


class Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<title>bench</title><p>bench</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    os.environ.setdefault("PSP_STORE", tempfile.mkdtemp(prefix="psp-bench-"))
    os.environ.setdefault("PSP_NO_DAEMON", "1")
    from playwright.sync_api import sync_playwright

    rng = random.Random(7)
    values = [json_blob(rng, 5000) for _ in range(200)]
    with serve_site([("site", "127.0.0.1", "127.0.0.1")], Page) as origins, sync_playwright() as p:
        url = origins[0].url + "/"
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        source = browser.new_context()
        page = source.new_page()
        page.goto(url)
        page.evaluate(FILL, [values, 2000])
        adapter = PlaywrightAdapter()
        session = adapter.create_session(page, name="bench")
        psp_capture, pw_capture, psp_restore, pw_restore = [], [], [], []
        mismatches = {"psp_cdp": 0, "Playwright": 0}
        first = None
        state_file = os.path.join(tempfile.mkdtemp(), "state.json")
        for _ in range(rounds):
            started = time.perf_counter()
            captured = session.capture()
            first = first or captured
            psp_capture.append(time.perf_counter() - started)
            started = time.perf_counter()
            with open(state_file, "w") as fh:
                json.dump(source.storage_state(indexed_db=True), fh)
            pw_capture.append(time.perf_counter() - started)

            target = browser.new_context()
            new_page = target.new_page()
            started = time.perf_counter()
            adapter.load_session(session.id).restore(new_page)
            psp_restore.append(time.perf_counter() - started)
            mismatches["psp_cdp"] += new_page.evaluate("localStorage.length") != 200
            target.close()

            started = time.perf_counter()
            target = browser.new_context(storage_state=state_file)
            new_page = target.new_page()
            new_page.goto(url)
            pw_restore.append(time.perf_counter() - started)
            mismatches["Playwright"] += new_page.evaluate("localStorage.length") != 200
            target.close()
        browser.close()

    components = captured.info.components
    assert first is not None
    print(f"state: {components['local_storage']} localStorage keys, {components['indexed_db']:,} IndexedDB records, "
          f"{components['cache_storage']} cache entries, 1 cookie, sessionStorage, 1 tab")
    print(f"stored per capture: Playwright storageState JSON {os.path.getsize(state_file):,} B every time; "
          f"psp_cdp version 1 {first.version.stored_bytes:,} B ({first.version.kind}), "
          f"later versions {captured.version.stored_bytes:,} B ({captured.version.kind})")
    print(f"\n{'median of ' + str(rounds):<44} {'median ms':>10} {'min ms':>10}")
    for label, samples in [
        ("capture: PlaywrightAdapter session.capture()", psp_capture),
        ("capture: context.storage_state(indexed_db)", pw_capture),
        ("restore: load_session(id).restore(page)", psp_restore),
        ("restore: new_context(storage_state) + goto", pw_restore),
    ]:
        figures = stats(samples)
        print(f"{label:<44} {ms(figures['median']):>10} {ms(min(samples)):>10}")
    print("\nrounds where the restored page did not show all 200 localStorage keys at once: "
          + ", ".join(f"{side} {n}" for side, n in mismatches.items()))
    print("storageState leaves out sessionStorage, CacheStorage and tabs; the psp_cdp figures include them.")


if __name__ == "__main__":
    sys.exit(main())
