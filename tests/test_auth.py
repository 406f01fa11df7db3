"""Authentication state: token discovery, session validity, `psp status`, sealed credentials.

Rules: discovery, validity and sealing are tested as pure functions on hand-made
states; the CLI runs as a subprocess on a temporary store and a temporary keyring
(never the user's); the browser tests use the shared Chromium, a fresh context each,
and pages of the test site on loopback.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from typing import Any
from urllib.parse import quote

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from psp_cdp.cdp import CdpConnection
from psp_cdp.errors import StateError, StoreError, UsageError
from psp_cdp.snapshot import codec
from psp_cdp.snapshot.model import AuthToken, BrowserSessionState, Cookie, storage_items
from psp_cdp.state import auth as auth_module
from psp_cdp.state import capture_state, restore_state
from psp_cdp.state.auth import (
    OBSERVE_OPTION,
    add_value_source,
    decode_jwt,
    discover_tokens,
    is_session_cookie_name,
    observe_authorization,
    open_credentials,
    parse_duration,
    scan_values,
    seal_credentials,
    token_from_authorization,
    validity,
)
from psp_cdp.store import FilesystemStore, Sessions
from psp_cdp.store.keys import Keyring, key_id_of

from .helpers import BrowserContext, evaluate
from .site import Site

PSP = os.path.join(os.path.dirname(sys.executable), "psp")
NOW = 1_800_000_000  # seconds since the epoch


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(**claims: Any) -> str:
    return f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"


def state_with(cookies: list[Cookie] = (), local: dict[str, dict[str, str]] | None = None) -> BrowserSessionState:  # type: ignore[assignment]
    state = BrowserSessionState(version="1.0.0", timestamp=NOW * 1000)
    state.storage.cookies.extend(cookies)
    for origin, items in (local or {}).items():
        storage_items(state.storage.local_storage.add(origin=origin), items)
    return state


def by_source(tokens: list[AuthToken]) -> dict[tuple[str, str], AuthToken]:
    return {(t.source, t.type): t for t in tokens}


def expiry(token: AuthToken) -> int | None:
    return token.expires_at if token.HasField("expires_at") else None


# -- discovery ----------------------------------------------------------------


def test_jwt_cookie_gives_expiry_claims_and_cookie_attributes() -> None:
    value = jwt(exp=NOW + 3600, iat=NOW, iss="https://issuer.test", sub="alice", scope="read write")
    cookie = Cookie(name="token", value=value, domain=".example.test", path="/", http_only=True, expires=NOW + 7200)
    [token] = discover_tokens(state_with([cookie]))
    assert (token.type, token.value, token.domain, token.source) == ("JWT", value, "example.test", "cookie token")
    assert token.expires_at == (NOW + 3600) * 1000 and token.issued_at == NOW * 1000
    assert (token.issuer, token.subject, list(token.scope)) == ("https://issuer.test", "alice", ["read", "write"])
    assert token.is_http_only
    # The cookie goes away before the JWT expires: the token ends with the cookie.
    short = Cookie(name="jwt", value=quote(f'"{value}"'), domain="example.test", expires=NOW + 60)
    [token] = discover_tokens(state_with([short]))
    assert token.type == "JWT" and token.expires_at == (NOW + 60) * 1000 and token.value == value


def test_session_cookies_by_name_and_analytics_cookies_ignored() -> None:
    cookies = [
        Cookie(name="sid", value="s1", domain="a.test"),
        Cookie(name="__Host-session", value="s2", domain="a.test", expires=NOW + 100),
        Cookie(name="_ga", value="GA1.2.1234.5678", domain=".a.test", expires=NOW + 10**7),
        Cookie(name="_gid", value="GA1.2.99.88", domain=".a.test", expires=NOW + 86400),
        Cookie(name="_gat_UA-1", value=jwt(exp=NOW), domain=".a.test"),
        Cookie(name="theme", value="dark", domain="a.test"),
    ]
    tokens = discover_tokens(state_with(cookies))
    assert [(t.source, t.type, expiry(t)) for t in tokens] == [
        ("cookie sid", "session-cookie", None),
        ("cookie __Host-session", "session-cookie", (NOW + 100) * 1000),
    ]


@pytest.mark.parametrize(
    "name",
    ["session", "SID", "sessionid", "connect.sid", "PHPSESSID", "JSESSIONID", "ASP.NET_SessionId", "auth", "jwt",
     "access_token", "__Secure-next-auth.session-token", "laravel_session", "_myapp_session", "wordpress_logged_in_abc"],
)
def test_session_cookie_names(name: str) -> None:
    assert is_session_cookie_name(name)


@pytest.mark.parametrize(
    "name", ["_ga", "_gid", "_ga_ABC123", "_gat", "__utma", "_fbp", "theme", "csrftoken", "next-auth.callback-url",
             "next-auth.csrf-token", "oauth_state", "lang"],
)
def test_not_session_cookie_names(name: str) -> None:
    assert not is_session_cookie_name(name)


def test_firebase_and_msal_blobs_in_local_storage() -> None:
    access = jwt(exp=NOW + 3600, iss="https://securetoken.google.com/p", sub="uid1")
    firebase = {"uid": "uid1", "stsTokenManager": {"accessToken": access, "refreshToken": "AMf-rt", "expirationTime": (NOW + 3000) * 1000}}
    msal_at = {"credentialType": "AccessToken", "secret": "msal-access", "expiresOn": str(NOW + 4000), "target": "User.Read openid"}
    msal_rt = {"credentialType": "RefreshToken", "secret": "msal-refresh"}
    msal_id = {"credentialType": "IdToken", "secret": jwt(exp=NOW + 5000, sub="bob")}
    origin = "https://app.test"
    state = state_with(local={origin: {
        "firebase:authUser:KEY:[DEFAULT]": json.dumps(firebase),
        "home-accesstoken-x": json.dumps(msal_at),
        "home-refreshtoken-x": json.dumps(msal_rt),
        "home-idtoken-x": json.dumps(msal_id),
    }})
    found = by_source(discover_tokens(state))
    fb = found[(f"localStorage {origin} firebase:authUser:KEY:[DEFAULT]", "OAuth")]
    assert fb.value == access and fb.expires_at == (NOW + 3000) * 1000 and fb.refresh_token == "AMf-rt"
    assert fb.subject == "uid1" and fb.domain == "app.test"
    fb_refresh = found[(f"localStorage {origin} firebase:authUser:KEY:[DEFAULT]", "refresh-token")]
    assert fb_refresh.value == "AMf-rt" and not fb_refresh.HasField("expires_at")
    at = found[(f"localStorage {origin} home-accesstoken-x", "OAuth")]
    assert at.value == "msal-access" and at.expires_at == (NOW + 4000) * 1000 and list(at.scope) == ["User.Read", "openid"]
    assert found[(f"localStorage {origin} home-refreshtoken-x", "refresh-token")].value == "msal-refresh"
    assert expiry(found[(f"localStorage {origin} home-idtoken-x", "id-token")]) == (NOW + 5000) * 1000


def test_oauth_blobs_auth0_okta_and_expires_in() -> None:
    auth0 = {"body": {"access_token": "a0", "id_token": jwt(exp=NOW + 90), "expires_in": 86400, "token_type": "Bearer"},
             "expiresAt": NOW + 86400}
    okta = {"accessToken": {"accessToken": "okta-at", "expiresAt": NOW + 3600, "scopes": ["openid"]},
            "refreshToken": {"refreshToken": "okta-rt", "expiresAt": NOW + 7 * 86400}}
    plain = {"access_token": "p-at", "refresh_token": "p-rt", "expires_in": 600, "obtained_at": NOW * 1000, "scope": "a b"}
    origin = "http://127.0.0.1:8080"
    found = by_source(discover_tokens(state_with(local={origin: {
        "@@auth0spajs@@::c::a::openid": json.dumps(auth0), "okta-token-storage": json.dumps(okta), "oauth": json.dumps(plain),
    }})))
    src = f"localStorage {origin} "
    assert expiry(found[(src + "@@auth0spajs@@::c::a::openid", "OAuth")]) == (NOW + 86400) * 1000
    assert expiry(found[(src + "@@auth0spajs@@::c::a::openid", "id-token")]) == (NOW + 90) * 1000
    assert expiry(found[(src + "okta-token-storage", "OAuth")]) == (NOW + 3600) * 1000
    assert expiry(found[(src + "okta-token-storage", "refresh-token")]) == (NOW + 7 * 86400) * 1000
    oauth = found[(src + "oauth", "OAuth")]
    assert oauth.expires_at == (NOW + 600) * 1000 and oauth.refresh_token == "p-rt" and list(oauth.scope) == ["a", "b"]
    assert found[(src + "oauth", "refresh-token")].value == "p-rt"
    assert all(t.domain == "127.0.0.1" for t in found.values())


def test_jwts_inside_values_bearer_strings_and_token_keys() -> None:
    inner = jwt(exp=NOW + 10)
    state = state_with(local={"https://x.test": {
        "config": json.dumps({"nested": {"deep": [f"prefix {inner} suffix"]}}),
        "headers": json.dumps({"Authorization": "Bearer opaque-abc-123"}),
        "authToken": "0123456789abcdef0123",
        "refreshToken": '"rt-0123456789abcdef"',
        "theme": "dark",
        "notes": "eyJhbGciOi.broken.value",
    }})
    storage_items(state.history.tabs.add().session_storage.add(origin="https://x.test"), {"jwt": jwt(exp=NOW + 20)})
    found = by_source(discover_tokens(state))
    assert found[("localStorage https://x.test config", "JWT")].value == inner
    assert found[("localStorage https://x.test headers", "Bearer")].value == "opaque-abc-123"
    assert found[("localStorage https://x.test authToken", "opaque")].value == "0123456789abcdef0123"
    assert found[("localStorage https://x.test refreshToken", "refresh-token")].value == "rt-0123456789abcdef"
    assert expiry(found[("sessionStorage https://x.test jwt", "JWT")]) == (NOW + 20) * 1000
    assert len(found) == 5


def test_strange_values_never_fail() -> None:
    lone = "x\ud800y"
    state = state_with(
        [Cookie(name="session", value="%E0%A4%A", domain="a.test"), Cookie(name="token", value="eyJ.eyJ.", domain="a.test")],
        local={"https://a.test": {
            lone: lone + " " + jwt(exp=NOW, iss=lone),
            "deep": "[" * 100_000,
            "big": "eyJ" + "a" * 1_000_000,
            "nan": json.dumps({"access_token": "t", "expires_at": float("nan")}).replace("NaN", "1e999"),
            "weird": json.dumps({"access_token": ["not", "a", "string"], "expires_in": "soon"}),
            "alg-less": f"{_b64({'typ': 'JWT'})}.{_b64({'exp': NOW})}.sig",
        }},
    )
    tokens = discover_tokens(state)
    codec.decode(codec.encode(tokens_state(*tokens)))  # everything found is storable
    found = by_source(tokens)
    assert not found[("localStorage https://a.test nan", "OAuth")].HasField("expires_at")
    assert not any(t.source.endswith(("weird", "deep", "big", "alg-less")) for t in tokens)
    assert found[("cookie token", "session-cookie")].value == "eyJ.eyJ."
    assert found[("localStorage https://a.test x\ufffdy", "JWT")].issuer == "x\ufffdy"
    assert decode_jwt(f"{_b64({'typ': 'JWT'})}.{_b64({'exp': NOW})}.sig") is None
    assert decode_jwt(jwt(exp=NOW)) == {"exp": NOW}


def test_value_sources_feed_discovery() -> None:
    pairs = [("1", json.dumps({"accessToken": "idb-at", "expiresAt": NOW + 5}))]
    [token] = scan_values("indexedDB https://a.test db/store", pairs, domain="a.test")
    assert (token.source, token.type, token.expires_at) == ("indexedDB https://a.test db/store 1", "OAuth", (NOW + 5) * 1000)

    def records(state: BrowserSessionState) -> list[tuple[str, str, list[tuple[str, str]]]]:
        return [("indexedDB https://b.test auth/tokens", "b.test", [("k", jwt(exp=NOW + 6))])] if state.origin == "https://b.test" else []

    add_value_source(records)
    try:
        state = state_with()
        state.origin = "https://b.test"
        [token] = discover_tokens(state)
    finally:
        auth_module._value_sources.remove(records)
    assert token.source == "indexedDB https://b.test auth/tokens k" and token.expires_at == (NOW + 6) * 1000


def test_token_from_authorization() -> None:
    token = token_from_authorization(f"Bearer {jwt(exp=NOW + 30, sub='u')}", "http://127.0.0.1:8080/api/x?y=1")
    assert token is not None
    assert (token.type, token.domain, token.source, token.subject) == ("Bearer", "127.0.0.1", "header Authorization http://127.0.0.1:8080", "u")
    assert token.expires_at == (NOW + 30) * 1000
    assert token_from_authorization("Basic dXNlcjpwYXNz", "http://a.test/") is None
    assert token_from_authorization("Bearer ", "http://a.test/") is None
    assert token_from_authorization("bearer opaque", "http://a.test/").value == "opaque"  # type: ignore[union-attr]


# -- validity -----------------------------------------------------------------


def tokens_state(*tokens: AuthToken) -> BrowserSessionState:
    state = BrowserSessionState()
    state.auth.tokens.extend(tokens)
    return state


def tok(kind: str, domain: str, expires: int | None = None, refresh: str = "", value: str = "v") -> AuthToken:
    token = AuthToken(type=kind, domain=domain, value=value, source=f"test {kind}", refresh_token=refresh)
    if expires is not None:
        token.expires_at = expires
    return token


def test_validity_rules() -> None:
    ms = 1000
    assert validity(tokens_state(), NOW * ms).status == "valid"
    assert validity(tokens_state(tok("session-cookie", "a")), NOW * ms).expires_at is None
    access = tok("JWT", "a", (NOW + 100) * ms)
    state = tokens_state(access, tok("session-cookie", "a", (NOW + 500) * ms))
    result = validity(state, NOW * ms)
    assert (result.status, result.expires_at, result.token.type, result.domain) == ("valid", (NOW + 100) * ms, "JWT", "a")
    assert validity(state, NOW * ms, within=200 * ms).status == "expiring"
    assert validity(state, (NOW + 100) * ms).status == "expired"
    # A refresh token keeps the domain alive past its access token, until it expires itself.
    refreshed = tokens_state(access, tok("refresh-token", "a", (NOW + 9000) * ms, value="rt"))
    assert validity(refreshed, (NOW + 200) * ms).expires_at == (NOW + 9000) * ms
    assert validity(refreshed, (NOW + 200) * ms).token.type == "refresh-token"
    # One with no known expiry keeps it alive for good; so does a linked refresh token with no entry of its own.
    assert validity(tokens_state(access, tok("refresh-token", "a")), (NOW + 200) * ms).expires_at is None
    assert validity(tokens_state(tok("OAuth", "a", (NOW + 100) * ms, refresh="rt")), (NOW + 200) * ms).status == "valid"
    # The session expires with its first domain; a refresh token helps its own domain only.
    two = tokens_state(access, tok("refresh-token", "a", value="rt"), tok("JWT", ".b", (NOW + 300) * ms))
    result = validity(two, NOW * ms)
    assert (result.expires_at, result.domain) == ((NOW + 300) * ms, "b")


token_strategy = st.builds(
    tok,
    kind=st.sampled_from(["JWT", "OAuth", "refresh-token", "session-cookie", "id-token"]),
    domain=st.sampled_from(["a", "b", ".a"]),
    expires=st.none() | st.integers(0, 10**13),
    refresh=st.sampled_from(["", "", "rt"]),
    value=st.sampled_from(["v", "rt", "w"]),
)
RANK = {"valid": 0, "expiring": 1, "expired": 2}


@given(st.lists(token_strategy, max_size=6), st.integers(0, 10**13), st.integers(0, 10**13), st.integers(0, 10**10))
def test_status_is_monotonic_in_now(tokens: list[AuthToken], now: int, later_by: int, within: int) -> None:
    state = tokens_state(*tokens)
    earlier = validity(state, now, within)
    later = validity(state, now + later_by, within)
    assert RANK[earlier.status] <= RANK[later.status]
    assert earlier.expires_at == later.expires_at
    assert RANK[validity(state, now, 0).status] <= RANK[earlier.status]


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45), ("1.5h", 5400), ("1w", 604800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5x", "1h-30m", "-5", "30m1", "soon"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


# -- sealed credentials and the keyring ---------------------------------------------


def test_credentials_round_trip_wrong_key_and_wrong_session() -> None:
    key, other = os.urandom(32), os.urandom(32)
    sealed = seal_credentials(session_id="s1", origin="https://a.test", username="alice", password="hunter2-pässword",
                              key_id=key_id_of(key), key=key)
    assert sealed.algorithm == "AES-256-GCM" and len(sealed.nonce) == 12 and sealed.origin == "https://a.test"
    assert b"hunter2" not in sealed.ciphertext and "pässword".encode() not in sealed.ciphertext
    assert open_credentials(sealed, session_id="s1", key=key) == ("alice", "hunter2-pässword")
    with pytest.raises(StateError, match="wrong key"):
        open_credentials(sealed, session_id="s1", key=other)
    with pytest.raises(StateError, match="another session"):
        open_credentials(sealed, session_id="s2", key=key)
    moved = type(sealed)()
    moved.CopyFrom(sealed)
    moved.origin = "https://evil.test"
    with pytest.raises(StateError):
        open_credentials(moved, session_id="s1", key=key)


def test_keyring_files_modes_and_psp_key(tmp_path) -> None:
    directory = tmp_path / "config" / "keys"
    keyring = Keyring(str(directory), environ={})
    key_id, key = keyring.current()
    assert keyring.current() == (key_id, key) and keyring.get(key_id) == key and keyring.ids() == [key_id]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / key_id).stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "current").stat().st_mode) == 0o600
    new_id, new_key = keyring.create()
    assert keyring.current() == (new_id, new_key) and keyring.get(key_id) == key
    with pytest.raises(StoreError, match="no key 0123456789abcdef"):
        keyring.get("0123456789abcdef")
    with pytest.raises(StoreError, match="invalid key id"):
        keyring.get("../../etc/passwd")
    (directory / key_id).chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        keyring.get(key_id)

    env_key = os.urandom(32)
    from_env = Keyring(str(tmp_path / "elsewhere"), environ={"PSP_KEY": base64.b64encode(env_key).decode()})
    assert from_env.current() == (key_id_of(env_key), env_key)
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(UsageError, match="PSP_KEY"):
        Keyring(str(tmp_path), environ={"PSP_KEY": "c2hvcnQ="}).current()


# -- the CLI ------------------------------------------------------------------------


def psp(*args: str, store: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PSP_KEY", "PSP_PASSWORD")}
    environ.update(env or {})
    return subprocess.run([PSP, *args, "--store", store], capture_output=True, text=True, timeout=60,
                          env=environ, input=stdin if stdin is not None else "")


async def save_state(store: str, name: str, state: BrowserSessionState, keyring: Keyring | None = None) -> None:
    await Sessions(FilesystemStore(store), keyring=keyring).save(name, state)


async def test_status_exit_codes(tmp_path) -> None:
    store = str(tmp_path / "store")
    now = int(time.time())
    cookie = Cookie(name="token", value=jwt(exp=now + 3600, sub="alice"), domain="127.0.0.1", path="/")
    state = state_with([cookie, Cookie(name="sid", value="s", domain="127.0.0.1")])
    state.auth.tokens.extend(discover_tokens(state))
    await save_state(store, "live", state)
    expired = BrowserSessionState()
    expired.auth.tokens.append(tok("JWT", "a.test", (now - 60) * 1000))
    await save_state(store, "old", expired)
    await save_state(store, "none", BrowserSessionState())

    ok = psp("status", "live", store=store)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("live: valid; expires ") and "(in 59m" in ok.stdout and "JWT from cookie token" in ok.stdout
    assert cookie.value not in ok.stdout
    soon = psp("status", "live", "--within", "2h", store=store)
    assert soon.returncode == 1 and "expiring within 2h" in soon.stdout
    assert psp("status", "live", "--within", "30m", store=store).returncode == 0
    data = json.loads(psp("status", "live", "--within", "1h30m", "--json", store=store).stdout)
    assert data["status"] == "expiring" and not data["valid"] and data["expires_at"] == now + 3600
    assert data["decided_by"] == {"type": "JWT", "domain": "127.0.0.1", "source": "cookie token"}
    old = psp("status", "old", store=store)
    assert old.returncode == 1 and old.stdout.startswith("old: expired; expired ") and " ago)" in old.stdout, old.stderr
    none = psp("status", "none", store=store)
    assert none.returncode == 0 and "no authentication tokens found" in none.stdout

    for args in (("status", "missing"), ("status", "live", "--within", "soon")):
        failed = psp(*args, store=store)
        assert failed.returncode == 2 and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
    assert "no session named 'missing'" in psp("status", "missing", store=store).stderr
    assert psp("show", "missing", store=store).returncode == 1  # other commands keep exit code 1

    shown = psp("show", "live", store=store).stdout
    assert "tokens:" in shown and "JWT  127.0.0.1  cookie token  expires" in shown and "session-cookie" in shown
    assert cookie.value not in shown
    described = json.loads(psp("show", "live", "--json", store=store).stdout)
    assert described["tokens"][0] == {"type": "JWT", "domain": "127.0.0.1", "source": "cookie token",
                                      "expires_at": now + 3600, "http_only": False}
    assert cookie.value not in json.dumps(described["tokens"])


async def test_cli_credentials(tmp_path) -> None:
    store = str(tmp_path / "store")
    keys = tmp_path / "config" / "keys"
    env = {"PSP_KEYRING": str(keys)}
    password = "correct horse battery staple"
    await save_state(store, "s", BrowserSessionState(version="1.0.0"), Keyring(str(keys)))

    assert psp("credentials", "show", "s", store=store, env=env).returncode == 1
    made = psp("credentials", "set", "s", "--origin", "https://login.test/path", "--username", "alice",
               store=store, env=env, stdin=password + "\n")
    assert made.returncode == 0, made.stderr
    assert "credentials for https://login.test stored in s" in made.stdout and password not in made.stdout
    [key_id] = [name for name in os.listdir(keys) if name != "current"]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700 and stat.S_IMODE((keys / key_id).stat().st_mode) == 0o600

    shown = psp("credentials", "show", "s", store=store, env=env)
    assert shown.returncode == 0 and "origin: https://login.test" in shown.stdout and "username: alice" in shown.stdout
    assert password not in shown.stdout
    revealed = json.loads(psp("credentials", "show", "s", "--reveal", "--json", store=store, env=env).stdout)
    assert revealed == {"origin": "https://login.test", "username": "alice", "key_id": key_id, "password": password}
    assert "credentials: for https://login.test" in psp("show", "s", store=store, env=env).stdout

    exported = psp("export", "s", "--format", "json", "-o", "-", store=store, env=env).stdout
    assert json.loads(exported)["auth"]["credentials"]["keyId"] == key_id
    assert password not in exported and "alice" not in exported
    _, stored = await Sessions(FilesystemStore(store), keyring=Keyring(str(keys))).load("s")
    assert password.encode() not in stored.SerializeToString()
    assert all(password.encode() not in p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())

    wrong = psp("credentials", "show", "s", store=store, env={"PSP_KEYRING": str(tmp_path / "other"), "PSP_KEY": base64.b64encode(os.urandom(32)).decode()})
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr and f"no key {key_id}" in wrong.stderr
    os.rename(keys / key_id, tmp_path / "moved")
    env_key = (tmp_path / "moved").read_text().strip()
    (keys / key_id).write_text(base64.b64encode(os.urandom(32)).decode())
    (keys / key_id).chmod(0o600)
    tampered = psp("credentials", "show", "s", store=store, env=env)
    assert tampered.returncode == 1 and "different key" in tampered.stderr
    assert json.loads(psp("credentials", "show", "s", "--reveal", "--json", store=store, env={"PSP_KEY": env_key}).stdout)["password"] == password

    again = psp("credentials", "set", "s", "--origin", "http://127.0.0.1:8080", "--username", "bob",
                store=store, env={"PSP_KEY": env_key, "PSP_PASSWORD": "from-env"})
    assert again.returncode == 0, again.stderr
    assert json.loads(psp("credentials", "show", "s", "--reveal", "--json", store=store, env={"PSP_KEY": env_key}).stdout)["password"] == "from-env"
    by_env = {"PSP_KEY": env_key}
    assert psp("credentials", "clear", "s", store=store, env=by_env).returncode == 0
    cleared = psp("credentials", "show", "s", store=store, env=by_env)
    assert cleared.returncode == 1 and "has no credentials" in cleared.stderr
    assert json.loads(psp("show", "s", "--json", store=store, env=by_env).stdout)["credentials"] is None
    bad = psp("credentials", "set", "s", "--origin", "ftp://x", "--username", "u", store=store, env={"PSP_PASSWORD": "p"})
    assert bad.returncode == 1 and "origin" in bad.stderr


# -- real Chromium ---------------------------------------------------------------------


async def test_capture_finds_jwt_cookie_and_local_storage_token(site: Site, cdp: CdpConnection, context: BrowserContext) -> None:
    now = int(time.time())
    cookie_jwt = jwt(exp=now + 3600, iat=now, iss="psp-test", sub="alice")
    stored = json.dumps({"access_token": "opaque-access", "refresh_token": "opaque-refresh", "expires_at": now + 1800})
    storage = f"/storage?local.auth={quote(stored)}&local.id={jwt(exp=now + 600)}"
    await context.new_page(site.url("127.0.0.1", f"/set-cookie?c={quote(f'token={cookie_jwt}; Path=/; Max-Age=7200')}"
                                                  f"&c=_ga%3DGA1.2.3.4&next={quote(storage)}"))
    state = await capture_state(cdp, context=context.id, only=["cookies", "local_storage", "tabs", "auth"])
    assert "auth" in state.report.components
    origin = site.url("127.0.0.1")
    found = by_source(list(state.auth.tokens))
    cookie_token = found[("cookie token", "JWT")]
    assert cookie_token.value == cookie_jwt and cookie_token.expires_at == (now + 3600) * 1000
    assert (cookie_token.issuer, cookie_token.subject, cookie_token.domain) == ("psp-test", "alice", "127.0.0.1")
    access = found[(f"localStorage {origin} auth", "OAuth")]
    assert access.expires_at == (now + 1800) * 1000 and access.refresh_token == "opaque-refresh"
    assert found[(f"localStorage {origin} auth", "refresh-token")].value == "opaque-refresh"
    assert found[(f"localStorage {origin} id", "JWT")].expires_at == (now + 600) * 1000
    assert not any("_ga" in t.source for t in state.auth.tokens)
    result = validity(state, now * 1000)
    assert result.status == "valid" and result.expires_at is None  # the refresh token has no known expiry


async def test_observe_authorization_headers(site: Site, context: BrowserContext) -> None:
    page = await context.new_page(site.url("127.0.0.1", "/page"))
    bearer = jwt(exp=int(time.time()) + 300, sub="api-user")
    tokens: list[AuthToken] = []

    async def observe(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        tokens.extend(await observe_authorization(page, 1.5, task_status=task_status))

    async with trio.open_nursery() as nursery:
        await nursery.start(observe)
        script = (f"Promise.all([fetch('/cookies', {{headers: {{Authorization: 'Bearer {bearer}'}}}}),"
                  " fetch('/cookies?b', {headers: {Authorization: 'Basic dXNlcjpwYXNz'}})]).then(r => r.length)")
        assert await evaluate(page, script, await_promise=True) == 2
    [token] = tokens
    assert (token.type, token.value, token.domain, token.subject) == ("Bearer", bearer, "127.0.0.1", "api-user")
    assert token.source == f"header Authorization {site.url('127.0.0.1')}"


@pytest.mark.time_limit(90)
async def test_capture_option_watches_authorization_and_capture_keeps_credentials(
    tmp_path, site: Site, cdp: CdpConnection, context: BrowserContext
) -> None:
    page = await context.new_page(site.url("127.0.0.1", "/page"))
    await evaluate(page, "setInterval(() => fetch('/cookies', {headers: {Authorization: 'Bearer polled-token-1234'}}), 200)")
    sessions = Sessions(FilesystemStore(str(tmp_path)))
    captured = await sessions.capture(cdp, "polling", context=context.id, only=["cookies", "tabs", "auth"],
                                      options=[OBSERVE_OPTION])
    [token] = [t for t in captured.state.auth.tokens if t.source.startswith("header Authorization")]
    assert (token.type, token.value, token.domain) == ("Bearer", "polled-token-1234", "127.0.0.1")

    key = os.urandom(32)
    info, state = await sessions.load("polling")
    state.auth.credentials.CopyFrom(seal_credentials(session_id=info.id, origin=site.url(), username="alice",
                                                     password="pw", key_id=key_id_of(key), key=key))
    await sessions.save("polling", state)
    again = await sessions.capture(cdp, "polling", context=context.id, only=["cookies", "auth"])
    assert again.info.id == info.id
    _, reloaded = await sessions.load("polling")
    assert open_credentials(reloaded.auth.credentials, session_id=info.id, key=key) == ("alice", "pw")


async def test_restore_notes_an_expired_session(cdp: CdpConnection, context: BrowserContext) -> None:
    state = tokens_state(tok("JWT", "127.0.0.1", (int(time.time()) - 60) * 1000))
    report = await restore_state(cdp, state, context=context.id, only=["auth"])
    [note] = report.notes
    assert "the session expired at" in note and "JWT from test JWT" in note
    assert not (await restore_state(cdp, tokens_state(), context=context.id, only=["auth"])).notes
