"""Starting a local Chromium with a DevTools endpoint (for demos, tests and benchmarks).

psp_cdp attaches to browsers it did not start; this module is the small convenience
for the cases where it starts one itself::

    with launch_chromium() as browser:
        print(browser.endpoint)          # http://127.0.0.1:<port>
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import EndpointError

__all__ = ["DEFAULT_ARGS", "LaunchedBrowser", "find_chromium", "launch_chromium"]

#: Flags for a quiet, self-contained headless browser with no traffic of its own.
DEFAULT_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str:
    """Path of a Chromium binary: ``$PSP_CHROMIUM``, else the first one on ``PATH``."""
    configured = os.environ.get("PSP_CHROMIUM")
    if configured:
        return configured
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise EndpointError("chromium", "no Chromium found; install it (apt-get install chromium) or set PSP_CHROMIUM")


@dataclass
class LaunchedBrowser:
    """A Chromium process psp_cdp started; :meth:`close` stops it and removes a temporary profile."""

    process: subprocess.Popen[bytes]
    user_data_dir: str
    port: int
    ws_url: str
    _own_profile: bool = field(default=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the browser at once (as a crash would)."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def close(self, timeout: float = 5.0) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_profile:
            shutil.rmtree(self.user_data_dir, ignore_errors=True)

    def __enter__(self) -> LaunchedBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def launch_chromium(
    *,
    user_data_dir: str | None = None,
    args: Sequence[str] = (),
    executable: str | None = None,
    timeout: float = 30.0,
    url: str = "about:blank",
    headless: bool = True,
) -> LaunchedBrowser:
    """Start Chromium with ``--remote-debugging-port=0`` and wait until its endpoint is up.

    ``headless=False`` shows its window (it needs a display).
    """
    own = user_data_dir is None
    profile = user_data_dir or tempfile.mkdtemp(prefix="psp-chromium-")
    port_file = os.path.join(profile, "DevToolsActivePort")
    try:
        os.unlink(port_file)
    except FileNotFoundError:
        pass
    command = [
        executable or find_chromium(),
        *(arg for arg in DEFAULT_ARGS if headless or arg != "--headless"),
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        *args,
        url,
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if own:
                shutil.rmtree(profile, ignore_errors=True)
            raise EndpointError(command[0], f"Chromium exited with status {process.returncode} at start")
        try:
            with open(port_file, encoding="utf-8") as fh:
                lines = fh.read().split()
        except FileNotFoundError:
            lines = []
        if len(lines) >= 2:
            port = int(lines[0])
            return LaunchedBrowser(process, profile, port, f"ws://127.0.0.1:{port}{lines[1]}", own)
        time.sleep(0.02)
    process.kill()
    process.wait()
    if own:
        shutil.rmtree(profile, ignore_errors=True)
    raise EndpointError(command[0], f"Chromium did not open its DevTools endpoint within {timeout:g}s")
