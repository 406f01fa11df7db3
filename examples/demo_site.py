"""The small site the examples log in to: a sign-in form and an account page, on 127.0.0.1.

    GET  /login     a form (user, password); POST /login with password "secret" sets an
                    HttpOnly session cookie ``sid`` and answers 303 to /account
    GET  /account   "Logged in as USER" (401 "Not logged in" without a session); its script
                    keeps preferences in localStorage and a draft in sessionStorage

``serve()`` starts it on a free port and returns its base URL.
"""

from __future__ import annotations

import html
import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ACCOUNT_SCRIPT = """
localStorage.setItem("theme", localStorage.getItem("theme") || "dark");
localStorage.setItem("visits", String(Number(localStorage.getItem("visits") || 0) + 1));
if (!sessionStorage.getItem("draft")) sessionStorage.setItem("draft", "Dear Bob, ...");
document.getElementById("prefs").textContent =
  "theme=" + localStorage.getItem("theme") + " draft=" + sessionStorage.getItem("draft");
"""


class DemoSite(BaseHTTPRequestHandler):
    sessions: dict[str, str] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _user(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        return self.sessions.get(cookie["sid"].value) if "sid" in cookie else None

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/login":
            self._send(200, "<title>Sign in</title><form method=post action=/login>"
                       "<input name=user><input name=password type=password><button>Sign in</button></form>")
        elif path == "/account":
            user = self._user()
            if user is None:
                self._send(401, "<title>Sign in first</title><p id=who>Not logged in</p>")
            else:
                self._send(200, f"<title>Account</title><p id=who>Logged in as {html.escape(user)}</p>"
                           f"<p id=prefs></p><script>{ACCOUNT_SCRIPT}</script>")
        else:
            self._send(200, f"<title>Page {html.escape(path)}</title><p>{html.escape(path)}</p>")

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        user = form.get("user", [""])[0]
        if form.get("password", [""])[0] != "secret" or not user:
            self._send(403, "<p>Wrong password</p>")
            return
        sid = secrets.token_hex(16)
        self.sessions[sid] = user
        self._send(303, "", {"Location": "/account", "Set-Cookie": f"sid={sid}; HttpOnly; SameSite=Lax; Path=/; Max-Age=86400"})


def serve() -> str:
    """Start the site in a background thread; its base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), DemoSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"
