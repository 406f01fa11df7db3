"""For agent frameworks that live in a Python environment of their own: psp_cdp from the outside.

browser-use 0.13 and Skyvern's local extra pin protobuf below 7, so they cannot share a
virtualenv with psp_cdp. They do not need to: `persistent_browser()` starts Chromium with
a DevTools port, runs `psp restore` on it before the agent starts and `psp capture` after
the agent is done, through psp_cdp's own command (``$PSP``, else ``.venv/bin/psp`` of this
repository). The agent only sees the CDP URL. This module imports nothing of psp_cdp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
PSP = os.environ.get("PSP") or os.path.join(HERE, "..", ".venv", "bin", "psp")
CHROMIUM = os.environ.get("PSP_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0"]


def psp(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PSP, *args], capture_output=True, text=True)
    print(f"$ psp {' '.join(args)}\n  " + (result.stdout + result.stderr).strip().replace("\n", "\n  "))
    return result


@contextmanager
def persistent_browser(name: str) -> Iterator[str]:
    """Chromium with session ``name`` restored (when it exists); captured again on a clean exit. Yields its CDP URL."""
    profile = tempfile.mkdtemp(prefix="psp-profile-")
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("Chromium did not start")
            time.sleep(0.05)
        cdp_url = f"http://127.0.0.1:{open(port_file).read().split()[0]}"
        restored = psp("restore", name, "--cdp", cdp_url)
        if restored.returncode and "no session" not in restored.stderr:
            raise SystemExit("psp restore failed")
        yield cdp_url
        if psp("capture", "--cdp", cdp_url, "--name", name).returncode:
            raise SystemExit("psp capture failed")
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
