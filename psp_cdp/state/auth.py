"""Authentication state: the tokens a session holds, when it expires, and sealed credentials.

Token discovery reads what the other components captured (cookies, localStorage,
sessionStorage; other values through :func:`add_value_source`) and recognises:

* JWTs anywhere: three base64url segments whose header is JSON with ``alg``, whether
  bare, inside a JSON value or after ``Bearer``;
* OAuth-style JSON blobs: ``access_token``/``accessToken``, ``id_token``,
  ``refresh_token`` with ``expires_at``/``expiresOn``/``expirationTime``, or
  ``expires_in`` and a timestamp; MSAL cache entries (``credentialType``), Firebase
  ``stsTokenManager``, Auth0 and Okta token storage;
* session cookies by name (``sid``, ``session``, ``PHPSESSID``, ``__Host-`` variants,
  ...), never analytics cookies (``_ga``, ``_gid``, ...);
* a token-named storage key (``token``, ``authToken``, ...) holding an opaque string.

A value that is not what it seems is skipped, never an error. Token types:
``JWT``, ``OAuth`` (an access token from a blob), ``id-token``, ``refresh-token``,
``Bearer`` (from an Authorization header or a "Bearer ..." string),
``session-cookie`` and ``opaque``.

:func:`validity` turns the tokens into the session's expiry. With the
``authorization_headers`` capture option the component also watches each tab's
requests for a few seconds (:func:`observe_authorization`). Credentials are sealed
with AES-256-GCM (:func:`seal_credentials`, :func:`open_credentials`), bound to the
session id; the key comes from the caller (the store layer's keyring).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import trio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..cdp import CdpSession
from ..errors import BrowserClosedError, ProtocolError, StateError, UsageError
from ..snapshot.model import AuthToken, BrowserSessionState, Cookie, EncryptedCredentials, OriginStorage, text
from .pages import gather_limited, origin_of
from .registry import CaptureContext, Component, RestoreContext

__all__ = [
    "Auth",
    "OBSERVE_OPTION",
    "OBSERVE_SECONDS",
    "CREDENTIALS_ALGORITHM",
    "Validity",
    "ValueSource",
    "add_value_source",
    "decode_jwt",
    "discover_tokens",
    "scan_values",
    "is_session_cookie_name",
    "is_analytics_cookie_name",
    "token_from_authorization",
    "observe_authorization",
    "validity",
    "parse_duration",
    "seal_credentials",
    "open_credentials",
]

log = logging.getLogger("psp_cdp.state")

JWT = "JWT"
OAUTH = "OAuth"
ID_TOKEN = "id-token"
REFRESH_TOKEN = "refresh-token"
BEARER = "Bearer"
SESSION_COOKIE = "session-cookie"
OPAQUE = "opaque"

#: Capture option: watch the tabs' requests and keep the tokens of their Authorization headers.
OBSERVE_OPTION = "authorization_headers"
#: Seconds the capture option watches each tab's requests.
OBSERVE_SECONDS = 3.0

CREDENTIALS_ALGORITHM = "AES-256-GCM"

_B64URL = "A-Za-z0-9_\\-"
_JWT_RE = re.compile(f"(?<![{_B64URL}])eyJ[{_B64URL}]*\\.[{_B64URL}]+\\.[{_B64URL}]*")
_JWT_SHAPE = re.compile(f"[{_B64URL}]+\\.[{_B64URL}]+\\.[{_B64URL}]*")
_BEARER_RE = re.compile(r"\bBearer\s+([A-Za-z0-9\-._~+/]+=*)")
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-._~+/=:]{16,4096}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_ACCESS = ("access_token", "accessToken")
_ID = ("id_token", "idToken")
_REFRESH = ("refresh_token", "refreshToken")
_EXPIRES_AT = (
    "expires_at", "expiresAt", "expires_on", "expiresOn", "expirationTime", "expiration_time",
    "expiry", "expiry_date", "expiryDate", "expires",
)
_EXPIRES_IN = ("expires_in", "expiresIn")
_ISSUED = (
    "issued_at", "issuedAt", "iat", "created_at", "createdAt", "obtained_at", "obtainedAt",
    "timestamp", "cachedAt", "cached_at",
)
_REFRESH_EXPIRES_AT = ("refresh_token_expires_at", "refreshTokenExpiresAt", "refresh_expires_at")
_REFRESH_EXPIRES_IN = ("refresh_token_expires_in", "refreshTokenExpiresIn", "refresh_expires_in")
_SCOPES = ("scope", "scopes", "scp", "target")
_MSAL_TYPES = {
    "AccessToken": OAUTH,
    "AccessToken_With_AuthScheme": OAUTH,
    "RefreshToken": REFRESH_TOKEN,
    "IdToken": ID_TOKEN,
}

_ANALYTICS_RE = re.compile(
    r"^(_ga|_gid|_gat|__utm|_gcl|_fbp|_fbc|_hj|_clck|_clsk|_uet|__hs|hubspotutk|_pk_|ajs_|amplitude|"
    r"_dc_gtm|optimizely|_ym_|_tt_|_pin_|_scid|_rdt|_mkto|mp_.*_mixpanel|__cf_bm|_cfuvid)",
    re.IGNORECASE,
)
_SESSION_NAMES = frozenset({
    "session", "sess", "sid", "sessid", "sessionid", "session_id", "connect.sid", "auth", "token", "jwt",
    "access_token", "refresh_token", "id_token", "auth_token", "phpsessid", "jsessionid", "asp.net_sessionid",
    "cfid", "cftoken", "laravel_session", "_session_id", "remember_token", "sso",
})
_SESSION_PREFIXES = ("aspsessionid", "ssess", "wordpress_logged_in")
_SESSION_PARTS = frozenset({"sid", "sess", "sessid", "session", "sessionid", "auth", "token", "jwt", "sso", "logged"})
_NOT_AUTH_PARTS = frozenset({"callback", "url", "redirect", "state", "nonce", "pkce", "verifier", "consent", "lang", "locale", "theme"})
_NOT_AUTH_WORDS = ("csrf", "xsrf")
_NOT_TOKEN_KEYS = ("csrf", "xsrf", "push", "fcm", "device", "captcha", "notification")

_MAX_NODES = 10_000
_MAX_DEPTH = 32
_MAX_JSON = 8 * 1024 * 1024
_MAX_SOURCE = 300


# -- values -----------------------------------------------------------------


def _clean(value: str) -> str:
    """``value`` as protobuf can hold it (lone surrogates replaced by U+FFFD)."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _seconds_ms(value: Any) -> int | None:
    """Seconds since the epoch (a JWT NumericDate) as milliseconds."""
    number = _number(value)
    if number is None or not 0 < number < 1e14:
        return None
    return int(number * 1000)


def _epoch_ms(value: Any) -> int | None:
    """An absolute time in milliseconds: seconds or milliseconds since the epoch, or ISO 8601."""
    number = _number(value)
    if number is None:
        if not isinstance(value, str) or not value[:1].isdigit():
            return None
        try:
            moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp() * 1000)
    if not 1e9 <= number < 1e17:  # before 2001 in seconds: a duration or a flag, not a time
        return None
    return int(number) if number >= 1e11 else int(number * 1000)


def _earliest(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _scopes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [_clean(s) for s in value.split()][:100]
    if isinstance(value, list):
        return [_clean(s) for s in value if isinstance(s, str)][:100]
    return []


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_jwt(value: str) -> dict[str, Any] | None:
    """The claims of a JWT (``{}`` when its payload is not a JSON object); ``None`` if ``value`` is not one."""
    if not _JWT_SHAPE.fullmatch(value):
        return None
    header_part, payload_part, _ = value.split(".")
    try:
        header = json.loads(_b64url(header_part))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str) or "enc" in header:
        return None
    try:
        claims = json.loads(_b64url(payload_part))
    except (ValueError, binascii.Error, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _make_token(
    kind: str,
    value: str,
    *,
    source: str,
    domain: str,
    expires_at: int | None = None,
    scope: Iterable[str] = (),
    refresh_token: str = "",
) -> AuthToken | None:
    """A token with its JWT claims filled in; ``None`` for a value protobuf cannot hold."""
    value = value.strip()
    if not value:
        return None
    try:
        value.encode("utf-8")
        refresh_token.encode("utf-8")
    except UnicodeEncodeError:
        return None
    token = AuthToken(type=kind, value=value, source=source, domain=domain, refresh_token=refresh_token)
    token.scope.extend(scope)
    claims = decode_jwt(value)
    if claims:
        expires_at = _earliest(expires_at, _seconds_ms(claims.get("exp")))
        issued = _seconds_ms(claims.get("iat"))
        if issued is not None:
            token.issued_at = issued
        if isinstance(claims.get("iss"), str):
            token.issuer = _clean(claims["iss"])
        if isinstance(claims.get("sub"), str):
            token.subject = _clean(claims["sub"])
        if not token.scope:
            token.scope.extend(_scopes(claims.get("scope")) or _scopes(claims.get("scp")))
    if expires_at is not None:
        token.expires_at = expires_at
    return token


# -- discovery --------------------------------------------------------------


class _Found:
    """Tokens found so far, each value once per source and domain."""

    def __init__(self) -> None:
        self.tokens: list[AuthToken] = []
        self._seen: set[tuple[str, str, str]] = set()

    def seen(self, source: str, domain: str, value: str) -> bool:
        return (source, domain, value.strip()) in self._seen

    def add(self, token: AuthToken | None) -> bool:
        if token is None:
            return False
        key = (token.source, token.domain, token.value)
        if key in self._seen:
            return False
        self._seen.add(key)
        self.tokens.append(token)
        return True


def _first_string(blob: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = blob.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _blob_expiry(blob: dict[str, Any], at_keys: tuple[str, ...], in_keys: tuple[str, ...]) -> int | None:
    for key in at_keys:
        if key in blob:
            moment = _epoch_ms(blob[key])
            if moment is not None:
                return moment
    for key in in_keys:
        seconds = _number(blob.get(key))
        if seconds is not None and 0 <= seconds < 1e10:
            for issued_key in _ISSUED:
                issued = _epoch_ms(blob.get(issued_key))
                if issued is not None:
                    return issued + int(seconds * 1000)
    return None


def _blob_scopes(blob: dict[str, Any]) -> list[str]:
    for key in _SCOPES:
        scopes = _scopes(blob.get(key))
        if scopes:
            return scopes
    return []


def _from_blob(found: _Found, source: str, domain: str, blob: dict[str, Any], inherited: int | None) -> None:
    """The tokens of one JSON object, when it is an OAuth-style token blob."""
    credential_type = blob.get("credentialType")
    secret = blob.get("secret")
    if isinstance(credential_type, str) and credential_type in _MSAL_TYPES and isinstance(secret, str):
        expiry = _blob_expiry(blob, ("expiresOn", "expires_on"), ())
        found.add(_make_token(_MSAL_TYPES[credential_type], secret, source=source, domain=domain,
                              expires_at=expiry, scope=_blob_scopes(blob)))
        return
    access = _first_string(blob, _ACCESS)
    id_token = _first_string(blob, _ID)
    refresh = _first_string(blob, _REFRESH)
    if not (access or id_token or refresh):
        return
    expiry = _blob_expiry(blob, _EXPIRES_AT, _EXPIRES_IN) or inherited
    scope = _blob_scopes(blob)
    if access:
        found.add(_make_token(OAUTH, access, source=source, domain=domain, expires_at=expiry, scope=scope,
                              refresh_token=(refresh or "").strip()))
    if id_token:
        found.add(_make_token(ID_TOKEN, id_token, source=source, domain=domain,
                              expires_at=None if access else expiry))
    if refresh:
        own = _blob_expiry(blob, _REFRESH_EXPIRES_AT, _REFRESH_EXPIRES_IN)
        found.add(_make_token(REFRESH_TOKEN, refresh, source=source, domain=domain,
                              expires_at=own if access or id_token else (own or expiry)))


def _walk_json(found: _Found, source: str, domain: str, root: Any) -> None:
    queue: deque[tuple[Any, int | None, int]] = deque([(root, None, 0)])
    visited = 0
    while queue and visited < _MAX_NODES:
        node, inherited, depth = queue.popleft()
        visited += 1
        if isinstance(node, dict):
            _from_blob(found, source, domain, node, inherited)
            inherited = _blob_expiry(node, _EXPIRES_AT, ()) or inherited
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth < _MAX_DEPTH:
            queue.extend((child, inherited, depth + 1) for child in children if isinstance(child, (dict, list)))


def _token_key_type(key: str) -> str | None:
    """The token type a storage key's name suggests for an opaque value, if any."""
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    if not flat or any(word in flat for word in _NOT_TOKEN_KEYS):
        return None
    if flat.endswith("refreshtoken"):
        return REFRESH_TOKEN
    if flat.endswith("token") or flat in ("jwt", "authorization", "bearer", "sessionid", "sid"):
        return OPAQUE
    return None


def _scan_string(found: _Found, source: str, key: str, value: str, domain: str, *, by_key: bool = True) -> int:
    """Add the tokens one stored string holds; how many were new."""
    before = len(found.tokens)
    stripped = value.strip()
    if stripped[:1] in ("{", "[", '"') and len(stripped) <= _MAX_JSON:
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, (dict, list)):
            _walk_json(found, source, domain, parsed)
        elif isinstance(parsed, str):
            value = stripped = parsed
    for match in _BEARER_RE.finditer(value):
        found.add(_make_token(BEARER, match.group(1), source=source, domain=domain))
    for match in _JWT_RE.finditer(value):
        candidate = match.group()
        if not found.seen(source, domain, candidate) and decode_jwt(candidate) is not None:
            found.add(_make_token(JWT, candidate, source=source, domain=domain))
    if by_key and len(found.tokens) == before:
        kind = _token_key_type(key)
        bare = stripped[7:].strip() if stripped.startswith("Bearer ") else stripped
        if kind and _OPAQUE_RE.fullmatch(bare):
            found.add(_make_token(kind, bare, source=source, domain=domain))
    return len(found.tokens) - before


def _source(*parts: str) -> str:
    joined = _clean(" ".join(parts))
    return joined if len(joined) <= _MAX_SOURCE else joined[: _MAX_SOURCE - 1] + "…"


def scan_values(source: str, strings: Iterable[tuple[str, str]], *, domain: str = "") -> list[AuthToken]:
    """The tokens in (key, string) pairs of one place, e.g. ``scan_values("indexedDB ORIGIN DB/STORE", pairs)``.

    Each token's source is ``source`` followed by the key. A value it cannot make
    sense of is skipped.
    """
    found = _Found()
    _scan_pairs(found, source, strings, domain)
    return found.tokens


def _scan_pairs(found: _Found, source: str, strings: Iterable[tuple[str, str]], domain: str) -> None:
    for key, value in strings:
        try:
            _scan_string(found, _source(source, key), key, value, domain)
        except Exception:  # a strange value never fails a capture
            log.debug("cannot scan %s %r for tokens", source, key, exc_info=True)


def is_analytics_cookie_name(name: str) -> bool:
    """Whether a cookie name is an analytics or bot-management cookie's (``_ga``, ``_gid``, ...)."""
    return bool(_ANALYTICS_RE.match(name))


def is_session_cookie_name(name: str) -> bool:
    """Whether a cookie's name says it holds a session or an authentication token."""
    lower = name.lower()
    for prefix in ("__secure-", "__host-"):
        if lower.startswith(prefix):
            lower = lower[len(prefix):]
    if not lower or is_analytics_cookie_name(lower) or any(word in lower for word in _NOT_AUTH_WORDS):
        return False
    if lower in _SESSION_NAMES or lower.startswith(_SESSION_PREFIXES):
        return True
    parts = [p for p in re.split(r"[^a-z0-9]+", lower) if p]
    if any(p in _NOT_AUTH_PARTS for p in parts):
        return False
    return any(p in _SESSION_PARTS or p.endswith(("session", "sessionid", "token")) for p in parts)


def _cookie_tokens(found: _Found, cookie: Cookie) -> None:
    if is_analytics_cookie_name(cookie.name):
        return
    source = _source("cookie", cookie.name)
    domain = cookie.domain.lstrip(".")
    expires = int(cookie.expires * 1000) if cookie.HasField("expires") and math.isfinite(cookie.expires) else None
    value = cookie.value
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    value = unquote(value)
    inner = _Found()
    if _scan_string(inner, source, cookie.name, value, domain, by_key=False):
        for token in inner.tokens:
            token.is_http_only = cookie.http_only
            limit = _earliest(token.expires_at if token.HasField("expires_at") else None, expires)
            if limit is not None:
                token.expires_at = limit
            found.add(token)
        return
    if value and is_session_cookie_name(cookie.name):
        kind = REFRESH_TOKEN if "refresh" in cookie.name.lower() else SESSION_COOKIE
        token = _make_token(kind, cookie.value, source=source, domain=domain, expires_at=expires)
        if token is not None:
            token.is_http_only = cookie.http_only
            found.add(token)


def _host(origin: str) -> str:
    try:
        return urlsplit(origin).hostname or ""
    except ValueError:
        return ""


def _storage_pairs(storage: OriginStorage) -> list[tuple[str, str]]:
    return [(text(item.key), text(item.value)) for item in storage.items]


#: Yields (source, domain, (key, string) pairs) for values other components captured.
ValueSource = Callable[[BrowserSessionState], Iterable[tuple[str, str, Iterable[tuple[str, str]]]]]
_value_sources: list[ValueSource] = []


def add_value_source(source: ValueSource) -> ValueSource:
    """Have :func:`discover_tokens` scan more values of a state (IndexedDB records, say)."""
    _value_sources.append(source)
    return source


def discover_tokens(state: BrowserSessionState) -> list[AuthToken]:
    """Every token the captured cookies, localStorage, sessionStorage and added value sources hold."""
    found = _Found()
    for cookie in state.storage.cookies:
        try:
            _cookie_tokens(found, cookie)
        except Exception:  # a strange value never fails a capture
            log.debug("cannot scan cookie %r for tokens", cookie.name, exc_info=True)
    for storage in state.storage.local_storage:
        _scan_pairs(found, _source("localStorage", storage.origin), _storage_pairs(storage), _host(storage.origin))
    for tab in state.history.tabs:
        for storage in tab.session_storage:
            _scan_pairs(found, _source("sessionStorage", storage.origin), _storage_pairs(storage), _host(storage.origin))
    for value_source in _value_sources:
        try:
            for source, domain, pairs in value_source(state):
                _scan_pairs(found, source, pairs, domain)
        except Exception:
            log.debug("value source %r failed", value_source, exc_info=True)
    return found.tokens


# -- Authorization headers --------------------------------------------------

_TOKEN_SCHEMES = {"bearer", "token", "jwt"}


def token_from_authorization(value: str, url: str) -> AuthToken | None:
    """The token an HTTP Authorization header value carries ("Bearer ..."); ``None`` for Basic and others."""
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() not in _TOKEN_SCHEMES or not credentials.strip():
        return None
    origin = origin_of(url) or ""
    return _make_token(BEARER, credentials, source=_source("header Authorization", origin).rstrip(),
                       domain=_host(url))


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if key.lower() == name and isinstance(value, str):
            return value
    return None


async def observe_authorization(
    session: CdpSession, seconds: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> list[AuthToken]:
    """The tokens of the Authorization headers a tab's requests carry during ``seconds``.

    Reports ready (``task_status.started()``) once the tab's requests are watched.
    """
    urls: dict[str, str] = {}
    headers: list[tuple[str, str | None, str]] = []  # (request id, url if known, header value)
    with session.listen("Network.requestWillBeSent", "Network.requestWillBeSentExtraInfo") as events:
        await session.send("Network.enable", {})
        try:
            task_status.started()
            with trio.move_on_after(seconds):
                async for event in events:
                    params = event.params
                    request_id = params.get("requestId", "")
                    if event.method == "Network.requestWillBeSent":
                        request = params.get("request") or {}
                        urls[request_id] = request.get("url", "")
                        value = _header(request.get("headers"), "authorization")
                        if value:
                            headers.append((request_id, urls[request_id], value))
                    else:
                        value = _header(params.get("headers"), "authorization")
                        if value:
                            headers.append((request_id, None, value))
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await session.send("Network.disable", {})
                except (ProtocolError, BrowserClosedError):
                    pass
    found = _Found()
    for request_id, url, value in headers:
        found.add(token_from_authorization(value, url or urls.get(request_id, "")))
    return found.tokens


# -- validity ---------------------------------------------------------------


@dataclass(frozen=True)
class Validity:
    """Whether a session is still logged in, as far as its tokens tell."""

    #: "valid", "expiring" (within the window asked for) or "expired".
    status: str
    #: When the session expires, milliseconds since the epoch; ``None`` when no token says.
    expires_at: int | None
    #: The token that decides the expiry.
    token: AuthToken | None
    #: The domain whose session expires first.
    domain: str | None
    #: How many tokens the state holds.
    tokens: int

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def _domain_key(domain: str) -> str:
    host = domain.strip().lstrip(".").lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _domain_expiry(tokens: list[AuthToken]) -> tuple[int, AuthToken] | None:
    """When one domain's session ends and the token that says so; ``None`` if no known end."""
    refreshers = [t for t in tokens if t.type == REFRESH_TOKEN]
    known = {t.value for t in refreshers}
    if any(t.refresh_token and t.refresh_token not in known for t in tokens):
        return None  # a refresh token of unknown expiry keeps the session alive
    timed = [t for t in tokens if t.HasField("expires_at")]
    if refreshers:
        if any(not t.HasField("expires_at") for t in refreshers):
            return None
        last = max(refreshers, key=lambda t: t.expires_at)
        others = [t for t in timed if t.type != REFRESH_TOKEN]
        first_other = min(others, key=lambda t: t.expires_at) if others else None
        if first_other is not None and first_other.expires_at > last.expires_at:
            return first_other.expires_at, first_other
        return last.expires_at, last
    if not timed:
        return None
    first = min(timed, key=lambda t: t.expires_at)
    return first.expires_at, first


def validity(state: BrowserSessionState, now: float, within: float = 0) -> Validity:
    """The session's expiry and status at ``now`` (ms since the epoch), ``within`` ms counting as expiring.

    Per domain, a refresh token keeps the session alive past its other tokens'
    expiry, until the refresh token's own (none known: no expiry); otherwise the
    domain's session ends with the first of its tokens to expire. The session
    expires with its first domain.
    """
    by_domain: dict[str, list[AuthToken]] = {}
    for token in state.auth.tokens:
        by_domain.setdefault(_domain_key(token.domain), []).append(token)
    first: tuple[int, AuthToken, str] | None = None
    for domain, tokens in sorted(by_domain.items()):
        decided = _domain_expiry(tokens)
        if decided is not None and (first is None or decided[0] < first[0]):
            first = (decided[0], decided[1], domain)
    count = len(state.auth.tokens)
    if first is None:
        return Validity("valid", None, None, None, count)
    expires_at, token, domain = first
    if expires_at <= now:
        status = "expired"
    elif expires_at <= now + within:
        status = "expiring"
    else:
        status = "valid"
    return Validity(status, expires_at, token, domain, count)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> float:
    """Seconds in a duration such as ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` (a bare number: seconds)."""
    spec = value.strip().lower().replace(" ", "")
    number = _number(spec)
    if number is not None and number >= 0:
        return number
    position, total = 0, 0.0
    for match in _DURATION_RE.finditer(spec):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not spec or position != len(spec):
        raise UsageError(f"invalid duration {value!r}: use a number with a unit, e.g. 90s, 30m, 2h, 1d, 1h30m")
    return total


# -- sealed credentials -----------------------------------------------------


def _associated_data(session_id: str, origin: str, key_id: str) -> bytes:
    bound = {"psp": "credentials/1", "session": session_id, "origin": origin, "key_id": key_id,
             "algorithm": CREDENTIALS_ALGORITHM}
    return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _aead(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise StateError(f"an {CREDENTIALS_ALGORITHM} key is 32 bytes, not {len(key)}")
    return AESGCM(key)


def seal_credentials(
    *, session_id: str, origin: str, username: str, password: str, key_id: str, key: bytes
) -> EncryptedCredentials:
    """A username and password sealed with ``key`` for the session ``session_id`` and ``origin``."""
    nonce = os.urandom(12)
    plaintext = json.dumps({"username": username, "password": password}).encode("utf-8")
    ciphertext = _aead(key).encrypt(nonce, plaintext, _associated_data(session_id, origin, key_id))
    return EncryptedCredentials(
        key_id=key_id, algorithm=CREDENTIALS_ALGORITHM, nonce=nonce, ciphertext=ciphertext, origin=origin
    )


def open_credentials(credentials: EncryptedCredentials, *, session_id: str, key: bytes) -> tuple[str, str]:
    """The (username, password) sealed in ``credentials``; :class:`StateError` for a wrong key or session."""
    if credentials.algorithm != CREDENTIALS_ALGORITHM:
        raise StateError(f"the credentials are sealed with {credentials.algorithm or 'no algorithm'!r}, not {CREDENTIALS_ALGORITHM}")
    associated = _associated_data(session_id, credentials.origin, credentials.key_id)
    try:
        plaintext = _aead(key).decrypt(credentials.nonce, credentials.ciphertext, associated)
    except InvalidTag:
        raise StateError(
            f"cannot open the credentials for {credentials.origin}: wrong key for key id {credentials.key_id}, "
            "or they were sealed for another session"
        ) from None
    except ValueError as exc:  # a nonce of the wrong size
        raise StateError(f"cannot open the credentials for {credentials.origin}: {exc}") from None
    data = json.loads(plaintext)
    return str(data["username"]), str(data["password"])


# -- the component ----------------------------------------------------------


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


class Auth(Component):
    name = "auth"
    order = 90
    description = "authentication tokens found in cookies, storage and (on request) Authorization headers; informative"

    async def capture(self, ctx: CaptureContext) -> None:
        found = _Found()
        for token in ctx.state.auth.tokens:  # added by earlier components
            found.add(token)
        for token in discover_tokens(ctx.state):
            found.add(token)
        if OBSERVE_OPTION in ctx.options and not ctx.tabs:
            ctx.uncovered("Authorization headers", "no tab was attached to watch")
        if OBSERVE_OPTION in ctx.options and ctx.tabs:
            async def watch(session: CdpSession) -> list[AuthToken]:
                try:
                    return await observe_authorization(session, OBSERVE_SECONDS)
                except (ProtocolError, BrowserClosedError):
                    return []  # the tab closed meanwhile

            results = await gather_limited([lambda s=tab.session: watch(s) for tab in ctx.tabs], len(ctx.tabs))
            for tokens in results:
                for token in tokens:
                    found.add(token)
        del ctx.state.auth.tokens[:]
        ctx.state.auth.tokens.extend(found.tokens)

    async def restore(self, ctx: RestoreContext) -> None:
        status = validity(ctx.state, time.time() * 1000)
        if status.status == "expired" and status.token is not None and status.expires_at is not None:
            ctx.report.note(
                f"the session expired at {_when(status.expires_at)} ({status.token.type} from {status.token.source}); "
                "the site will likely ask to log in again"
            )

    def count(self, state: BrowserSessionState) -> int:
        return len(state.auth.tokens)
