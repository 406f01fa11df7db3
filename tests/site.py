"""A small web site for the tests, served from threads on loopback addresses only.

One :class:`Site` runs an HTTP server and an HTTPS server (self-signed certificate made
at start, with SANs for ``localhost``, ``127.0.0.1``, ``127.0.0.2`` and ``::1``). Each
listens on ``127.0.0.1`` and ``127.0.0.2`` with the same port number (and on ``::1`` too
when the host has IPv6 loopback), so ``site.url("127.0.0.1")``, ``site.url("127.0.0.2")``
and ``site.url("localhost")`` are three origins served by one handler and one state.

Routes (every response carries ``Cache-Control: no-store``)::

    GET  /                      an index page
    GET  /page?title=T&body=B   an HTML page titled T
    GET  /long                  a 5000 px tall page, for scrolling
    GET  /login                 a login form (fields user, password)
    POST /login                 password "secret": new server session, cookie
                                ``sid`` (HttpOnly; SameSite=Lax; Path=/; Max-Age=3600),
                                303 to /account; any other password: 401 and the form
    POST /logout, GET /logout   ends the server session, expires ``sid``, 303 to /account
    GET  /account               200 always; body "Logged in as <user>" or "Not logged in"
    GET  /api/me                200 {"user": ...} or 401 {"error": "not logged in"}
    GET  /set-cookie?c=RAW&c=RAW[&next=URL]
                                one ``Set-Cookie: RAW`` header per ``c``; 303 to ``next``
                                if given, else a page listing the headers
    GET  /cookies               200 JSON: the Cookie header as received and its pairs
    GET  /storage?local.K=V&session.K=V
                                a page whose inline script sets localStorage and
                                sessionStorage, then sets its title to "stored"
    GET  /frames[?src=URL]      a page with one iframe of another origin (by default
                                /page?title=child on 127.0.0.2, or on 127.0.0.1 when
                                the page itself is on 127.0.0.2; same scheme)
    GET  /slow?seconds=S        answers after S seconds (at most 30)
    GET  /form                  a form: text input, textarea, single and multiple
                                select, checkbox, radio group, range, password,
                                a contenteditable div, a scrollable div, an input
                                with neither id nor name, and an iframe of
                                /form-frame; text fields carry a React-style value
                                tracker, and ``window.changes`` lists the fields
                                whose ``input`` events it saw as changes
    GET  /form-frame            a page with one text input (id ``inner``)
    GET  /sw.js                 a service worker script (text/javascript) that claims
                                its clients once active and handles no fetches
    anything else               404

:meth:`Site.stop` closes the listening sockets and every open connection (the site is
"down": connections are refused); :meth:`Site.start` opens them again on the same ports.
"""

from __future__ import annotations

import datetime
import html
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Site", "RequestRecord", "PASSWORD", "make_certificate"]

#: The one password ``POST /login`` accepts, for any user name.
PASSWORD = "secret"
SESSION_COOKIE = "sid"
SESSION_MAX_AGE = 3600

_V4_HOSTS = ("127.0.0.1", "127.0.0.2")
_V6_HOST = "::1"
_HOST_NAMES = ("127.0.0.1", "127.0.0.2", "localhost")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the site answered."""

    scheme: str
    host: str
    method: str
    path: str
    cookie: str | None


def make_certificate(directory: str) -> tuple[str, str]:
    """A self-signed certificate and key for the loopback names; their file paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "psp test site")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("127.0.0.2")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, site: Site, scheme: str, tls: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.site = site
        self.scheme = scheme
        self.tls = tls
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ------------------------------------------------------------

    def _respond(
        self,
        status: int,
        body: str | bytes = b"",
        *,
        content_type: str = "text/html; charset=utf-8",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, value: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._respond(status, json.dumps(value), content_type="application/json", headers=headers)

    def _redirect(self, location: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._respond(303, b"", headers=[("Location", location), *headers])

    def _cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def _user(self) -> str | None:
        sid = self._cookies().get(SESSION_COOKIE)
        return self.server.site.session_user(sid) if sid else None

    def _origin(self, host: str) -> str:
        port = self.server.site.https_port if self.server.scheme == "https" else self.server.site.port
        return f"{self.server.scheme}://{host}:{port}"

    def _host(self) -> str:
        return (self.headers.get("Host") or "").rsplit(":", 1)[0]

    def _record(self) -> None:
        self.server.site._record(
            RequestRecord(self.server.scheme, self._host(), self.command, self.path, self.headers.get("Cookie"))
        )

    # -- verbs -----------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._record()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        route = {
            "/": self._index,
            "/page": self._page,
            "/long": self._long,
            "/login": self._login_form,
            "/logout": self._logout,
            "/account": self._account,
            "/api/me": self._api_me,
            "/set-cookie": self._set_cookie,
            "/cookies": self._echo_cookies,
            "/storage": self._storage,
            "/frames": self._frames,
            "/slow": self._slow,
            "/form": self._form,
            "/form-frame": self._form_frame,
            "/flow": self._flow,
            "/flow/done": self._flow_done,
            "/popup": self._popup,
            "/sw.js": self._service_worker,
            "/linked": self._linked,
            "/requests": self._requests,
            "/requests-sw.js": self._requests_worker,
            "/redirect": self._redirect_to,
            "/api/echo": self._echo,
        }.get(parts.path)
        if route is None:
            self._respond(404, _html("Not found", "<p>Not found</p>"))
        else:
            route(query)

    def do_POST(self) -> None:
        self._record()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        path = urlsplit(self.path).path
        if path == "/api/flow":
            self._flow_answer(body)
        elif path == "/api/cors":
            self._json(200, {"cors": json.loads(body or b"null"), "n": self._count()}, self._cors())
        elif path == "/api/beacon":
            self.server.site.beacons.append(body)
            self._respond(204)
        elif path == "/login":
            self._login(form)
        elif path == "/logout":
            self._logout(form)
        else:
            self._respond(404, _html("Not found", "<p>Not found</p>"))

    def do_OPTIONS(self) -> None:
        self._record()
        if urlsplit(self.path).path == "/api/cors":
            self._respond(204, headers=self._cors())
        else:
            self._respond(405)

    def _cors(self) -> list[tuple[str, str]]:
        return [("Access-Control-Allow-Origin", self.headers.get("Origin", "*")),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Methods", "POST"),
                ("Access-Control-Allow-Headers", "content-type, x-token")]

    def _count(self) -> int:
        site = self.server.site
        with site._lock:
            site.answers += 1
            return site.answers

    # -- routes ------------------------------------------------------------------

    def _index(self, query: dict[str, list[str]]) -> None:
        links = "".join(
            f'<li><a href="{p}">{p}</a></li>'
            for p in ("/page?title=Hello", "/long", "/login", "/account", "/frames", "/cookies")
        )
        self._respond(200, _html("psp test site", f"<ul>{links}</ul>"))

    def _page(self, query: dict[str, list[str]]) -> None:
        title = _first(query, "title", "Page")
        body = _first(query, "body", title)
        self._respond(200, _html(title, f"<p id=body>{html.escape(body)}</p>"))

    def _long(self, query: dict[str, list[str]]) -> None:
        body = '<div id=top>top</div><div style="height:5000px"></div><div id=bottom>bottom</div>'
        self._respond(200, _html("Long page", body))

    def _login_form(self, query: dict[str, list[str]], message: str = "", status: int = 200) -> None:
        form = (
            f"<p id=message>{html.escape(message)}</p>"
            '<form method=post action="/login">'
            '<input name=user id=user value="">'
            '<input name=password id=password type=password value="">'
            "<button type=submit id=login>Log in</button>"
            "</form>"
        )
        self._respond(status, _html("Log in", form))

    def _login(self, form: dict[str, list[str]]) -> None:
        user = _first(form, "user", "")
        if not user or _first(form, "password", "") != PASSWORD:
            self._login_form({}, "Wrong user name or password", 401)
            return
        sid = self.server.site.create_session(user)
        cookie = f"{SESSION_COOKIE}={sid}; Path=/; Max-Age={SESSION_MAX_AGE}; HttpOnly; SameSite=Lax"
        self._redirect("/account", [("Set-Cookie", cookie)])

    def _logout(self, query: dict[str, list[str]]) -> None:
        sid = self._cookies().get(SESSION_COOKIE)
        if sid:
            self.server.site.end_session(sid)
        cookie = f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        self._redirect("/account", [("Set-Cookie", cookie)])

    def _account(self, query: dict[str, list[str]]) -> None:
        user = self._user()
        if user is None:
            self._respond(200, _html("Account", "<p id=status>Not logged in</p>"))
        else:
            self._respond(200, _html("Account", f"<p id=status>Logged in as {html.escape(user)}</p>"))

    def _api_me(self, query: dict[str, list[str]]) -> None:
        user = self._user()
        if user is None:
            self._json(401, {"error": "not logged in"})
        else:
            self._json(200, {"user": user})

    def _set_cookie(self, query: dict[str, list[str]]) -> None:
        values = query.get("c", [])
        headers = [("Set-Cookie", value) for value in values]
        target = _first(query, "next", "")
        if target:
            self._redirect(target, headers)
        else:
            items = "".join(f"<li>{html.escape(v)}</li>" for v in values)
            self._respond(200, _html("Cookies set", f"<ul id=set>{items}</ul>"), headers=headers)

    def _echo_cookies(self, query: dict[str, list[str]]) -> None:
        self._json(200, {"header": self.headers.get("Cookie"), "cookies": self._cookies()})

    def _storage(self, query: dict[str, list[str]]) -> None:
        local = {k[len("local.") :]: v[0] for k, v in query.items() if k.startswith("local.")}
        session = {k[len("session.") :]: v[0] for k, v in query.items() if k.startswith("session.")}
        script = (
            f"for (const [k, v] of Object.entries({_script_json(local)})) localStorage.setItem(k, v);"
            f"for (const [k, v] of Object.entries({_script_json(session)})) sessionStorage.setItem(k, v);"
            'document.title = "stored";'
        )
        self._respond(200, _html("storing", f"<script>{script}</script>"))

    def _frames(self, query: dict[str, list[str]]) -> None:
        other = "127.0.0.1" if self._host() == "127.0.0.2" else "127.0.0.2"
        src = _first(query, "src", self._origin(other) + "/page?title=child")
        self._respond(
            200,
            _html("Frames", f'<p>parent</p><iframe id=child src="{html.escape(src)}" width=400 height=200></iframe>'),
        )

    def _slow(self, query: dict[str, list[str]]) -> None:
        try:
            seconds = min(float(_first(query, "seconds", "1")), 30.0)
        except ValueError:
            seconds = 1.0
        time.sleep(max(seconds, 0.0))
        self._respond(200, _html("Slow", "<p>done</p>"))

    def _form(self, query: dict[str, list[str]]) -> None:
        body = (
            '<form id=profile onsubmit="return false">'
            '<label for=name>Full name</label><input id=name name=name value="">'
            "<label>Bio <textarea name=bio>default bio</textarea></label>"
            "<select id=color name=color><option>red</option><option selected>green</option><option>blue</option></select>"
            "<select id=tags name=tags multiple><option selected>a</option><option>b</option><option>c</option></select>"
            '<input type=checkbox id=agree name=agree aria-label="I agree">'
            "<input type=radio name=size value=s checked><input type=radio name=size value=m><input type=radio name=size value=l>"
            "<input type=range name=level>"
            "<input type=password id=secret name=secret>"
            "</form>"
            '<div class=box><input class=plain></div>'
            '<div id=editor contenteditable=true aria-label="Notes"></div>'
            '<div id=scroller style="height:100px;width:200px;overflow:auto">'
            '<div style="height:2000px;width:1000px">tall</div></div>'
            '<iframe id=inner-frame src="/form-frame" width=300 height=100></iframe>'
            "<script>"
            "window.changes = [];"
            "for (const el of document.querySelectorAll('input, textarea')) {"
            "  const native = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value');"
            "  let tracked = native.get.call(el);"
            "  Object.defineProperty(el, 'value', {configurable: true,"
            "    get() { return native.get.call(this); },"
            "    set(v) { tracked = String(v); native.set.call(this, v); }});"
            "  el.tracker = {get: () => tracked, set: (v) => { tracked = v; }};"
            "}"
            "document.addEventListener('input', (e) => {"
            "  const t = e.target.tracker;"
            "  if (t && t.get() !== e.target.value) { t.set(e.target.value); changes.push(e.target.name || e.target.id || e.target.className); }"
            "});"
            "</script>"
        )
        self._respond(200, _html("Form", body))

    def _flow(self, query: dict[str, list[str]]) -> None:
        """Page one of a two-page flow: a form sent with fetch(), whose answer changes the page."""
        body = (
            '<label for=name>Name</label><input id=name name=name>'
            '<select id=plan name=plan><option value=free>Free</option><option value=pro>Pro</option>'
            "<option value=team>Team</option></select>"
            '<label><input type=checkbox id=terms name=terms> Accept the terms</label>'
            '<textarea id=notes name=notes aria-label="Notes"></textarea>'
            '<label for=avatar>Picture</label><input type=file id=avatar name=avatar>'
            '<button id=send type=button>Send</button>'
            '<p id=answer></p><a id=next href="/flow/done" hidden>Continue</a>'
            "<script>"
            "document.querySelector('#send').addEventListener('click', async () => {"
            "  const picked = document.querySelector('#avatar').files[0];"
            "  const form = {name: document.querySelector('#name').value, plan: document.querySelector('#plan').value,"
            "    terms: document.querySelector('#terms').checked, notes: document.querySelector('#notes').value,"
            "    file: picked ? {name: picked.name, type: picked.type, text: await picked.text()} : null};"
            "  const response = await fetch('/api/flow', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            "    body: JSON.stringify(form)});"
            "  const answer = await response.json();"
            "  document.querySelector('#answer').textContent = answer.greeting;"
            "  localStorage.setItem('answer', JSON.stringify(answer));"
            "  document.querySelector('#next').hidden = false;"
            "});"
            "</script>"
        )
        self._respond(200, _html("Flow", body))

    def _flow_done(self, query: dict[str, list[str]]) -> None:
        """Page two: shows what page one's answer stored; takes a comment."""
        body = (
            '<p id=summary></p><input id=comment aria-label="Comment">'
            "<script>"
            "const answer = JSON.parse(localStorage.getItem('answer') || '{}');"
            "document.querySelector('#summary').textContent = `${answer.greeting} (${answer.plan}, order ${answer.order})`;"
            "document.querySelector('#comment').addEventListener('change', (e) => sessionStorage.setItem('comment', e.target.value));"
            "</script>"
        )
        self._respond(200, _html("Flow done", body))

    def _popup(self, query: dict[str, list[str]]) -> None:
        """A link that opens a new tab, and a list to double-click."""
        body = (
            '<a id=open href="/form" target=_blank>Open the form</a>'
            '<ul id=items><li>one</li><li>two</li></ul>'
            "<script>document.querySelector('#items').addEventListener('dblclick', (e) => {"
            "  e.target.textContent += ' (picked)'; localStorage.setItem('picked', e.target.textContent); });</script>"
        )
        self._respond(200, _html("Popup", body))

    def _flow_answer(self, body: bytes) -> None:
        try:
            form = json.loads(body)
        except ValueError:
            self._json(400, {"error": "not JSON"})
            return
        site = self.server.site
        with site._lock:
            site.orders += 1
            order = site.orders
        answer = {
            "greeting": f"Hello {form.get('name', '')}",
            "plan": form.get("plan"),
            "terms": form.get("terms"),
            "notes": form.get("notes"),
            "file": form.get("file"),
            "order": order,
        }
        self._json(200, answer, [("Set-Cookie", f"order={order}; Path=/")])

    def _linked(self, query: dict[str, list[str]]) -> None:
        """Fields a page fills itself: typing a country sets the city (with a change event, while the
        input is being dispatched); Send posts both with fetch() and shows the answer."""
        body = (
            '<input id=country aria-label="Country"><input id=city aria-label="City">'
            '<input id=code aria-label="Code"><button id=send type=button>Send</button><p id=answer></p>'
            "<script>"
            "const city = document.querySelector('#city');"
            "city.addEventListener('change', () => { window.cityChanges = (window.cityChanges || 0) + 1; });"
            "document.querySelector('#country').addEventListener('input', (e) => {"
            "  city.value = e.target.value === 'FR' ? 'Paris' : ''; city.dispatchEvent(new Event('change', {bubbles: true})); });"
            "document.querySelector('#send').addEventListener('click', async () => {"
            "  const form = {country: document.querySelector('#country').value, city: city.value,"
            "    code: document.querySelector('#code').value};"
            "  const answer = await (await fetch('/api/flow', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            "    body: JSON.stringify({name: JSON.stringify(form)})})).json();"
            "  document.querySelector('#answer').textContent = answer.greeting;"
            "  localStorage.setItem('linked', answer.greeting);"
            "});"
            "</script>"
        )
        self._respond(200, _html("Linked", body))

    def _requests(self, query: dict[str, list[str]]) -> None:
        """A page whose button sends the requests a mocked replay must answer: a redirect chain, a
        cross-origin POST with a preflight (its body holds a timestamp), a beacon, and a request its
        service worker makes; what came back goes to #out and localStorage."""
        other = self._origin("127.0.0.2")
        body = (
            "<button id=go>Go</button><pre id=out></pre>"
            "<script>"
            "const ready = navigator.serviceWorker.register('/requests-sw.js').then(() => navigator.serviceWorker.ready)"
            "  .then(() => navigator.serviceWorker.controller || new Promise((resolve) =>"
            "    navigator.serviceWorker.addEventListener('controllerchange', resolve, {once: true})));"
            "let step = 'start';"
            "document.querySelector('#go').addEventListener('click', () => go().catch((e) => {"
            "  document.querySelector('#out').textContent = 'error at ' + step + ': ' + e; }));"
            "async function go() {"
            "  step = 'redirect';"
            "  const redirected = await (await fetch('/redirect?to=' + encodeURIComponent('/redirect?to=/api/echo%3Fn%3Dhop'))).json();"
            "  step = 'cors';"
            f"  const cors = await (await fetch('{other}/api/cors', {{method: 'POST', credentials: 'include',"
            "    headers: {'Content-Type': 'application/json', 'X-Token': 'abc'}, body: JSON.stringify({ts: Date.now(), v: 1})})).json();"
            "  step = 'beacon';"
            "  const beacon = navigator.sendBeacon('/api/beacon', JSON.stringify({ts: Date.now()}));"
            "  step = 'ready';"
            "  await ready;"
            "  step = 'worker';"
            "  const worker = await (await fetch('/sw/data')).json();"
            "  const out = JSON.stringify({redirected, cors, beacon, worker});"
            "  document.querySelector('#out').textContent = out;"
            "  localStorage.setItem('requests', out);"
            "}"
            "</script>"
        )
        self._respond(200, _html("Requests", body))

    def _requests_worker(self, query: dict[str, list[str]]) -> None:
        script = (
            "self.addEventListener('install', () => self.skipWaiting());"
            "self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));"
            "self.addEventListener('fetch', (event) => {"
            "  if (new URL(event.request.url).pathname === '/sw/data') event.respondWith(fetch('/api/echo?n=worker'));"
            "});"
        )
        self._respond(200, script, content_type="text/javascript")

    def _redirect_to(self, query: dict[str, list[str]]) -> None:
        self._respond(302, b"", headers=[("Location", _first(query, "to", "/"))])

    def _echo(self, query: dict[str, list[str]]) -> None:
        self._json(200, {"echo": _first(query, "n", ""), "n": self._count()})

    def _form_frame(self, query: dict[str, list[str]]) -> None:
        self._respond(200, _html("Inner form", "<input id=inner name=inner>"))

    def _service_worker(self, query: dict[str, list[str]]) -> None:
        script = (
            "self.addEventListener('install', () => self.skipWaiting());"
            "self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));"
        )
        self._respond(200, script, content_type="text/javascript")


def _first(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


def _script_json(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/")


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((_V6_HOST, 0))
    except OSError:
        return False
    return True


class Site:
    """The test web site: HTTP and HTTPS, each on 127.0.0.1, 127.0.0.2 (and ::1) with one port."""

    def __init__(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="psp-site-")
        self.cert_file, self.key_file = make_certificate(self._tmp)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(self.cert_file, self.key_file)
        self._ipv6 = _has_ipv6_loopback()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}
        self.orders = 0
        self.answers = 0
        self.beacons: list[bytes] = []
        self.requests: list[RequestRecord] = []
        self.port = 0
        self.https_port = 0

    # -- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self) -> Site:
        """Listen (again); the first start picks free ports, later starts reuse them."""
        if self.running:
            return self
        for attempt in range(20):
            try:
                http = self._bind_all("http", self.port, None)
            except OSError:
                if self.port or attempt == 19:
                    raise
                continue
            try:
                https = self._bind_all("https", self.https_port, self._tls)
            except OSError:
                for server in http:
                    server.server_close()
                if self.https_port or attempt == 19:
                    raise
                continue
            break
        self.port = http[0].server_address[1]
        self.https_port = https[0].server_address[1]
        for server in (*http, *https):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"site {server.scheme} {server.server_address[0]}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def _bind_all(self, scheme: str, port: int, tls: ssl.SSLContext | None) -> list[_Server]:
        servers: list[_Server] = []
        hosts = [*_V4_HOSTS, *([_V6_HOST] if self._ipv6 else [])]
        try:
            for host in hosts:
                server = _Server(host, port, self, scheme, tls)
                port = server.server_address[1]
                servers.append(server)
        except OSError:
            for server in servers:
                server.server_close()
            raise
        return servers

    def stop(self) -> None:
        """Stop listening and cut every open connection; :meth:`start` brings the site back."""
        servers, threads = self._servers, self._threads
        self._servers, self._threads = [], []
        for server in servers:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        for thread in threads:
            thread.join(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Site:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses -------------------------------------------------------------------

    def url(self, host: str = "127.0.0.1", path: str = "", *, secure: bool = False) -> str:
        """``http://host:port`` + ``path`` (``https://`` and the HTTPS port when ``secure``)."""
        if host not in _HOST_NAMES:
            raise ValueError(f"the site answers on {', '.join(_HOST_NAMES)}, not {host!r}")
        if not self.port:
            raise RuntimeError("the site has not been started")
        scheme, port = ("https", self.https_port) if secure else ("http", self.port)
        return f"{scheme}://{host}:{port}{path}"

    def https_url(self, host: str = "localhost", path: str = "") -> str:
        return self.url(host, path, secure=True)

    # -- server-side state ---------------------------------------------------------------

    def create_session(self, user: str) -> str:
        """A new server session for ``user``; its ``sid`` cookie value."""
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = user
        return sid

    def session_user(self, sid: str) -> str | None:
        with self._lock:
            return self._sessions.get(sid)

    def end_session(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def end_all_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def requests_to(self, path_prefix: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]
