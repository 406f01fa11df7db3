"""Cookies: every attribute CDP reports, set back exactly as captured."""

from __future__ import annotations

import time
from typing import Any

from ..errors import ProtocolError
from ..snapshot.model import BrowserSessionState, Cookie
from .pages import BrowserContext
from .registry import CaptureContext, Component, RestoreContext

__all__ = ["Cookies", "cookie_from_cdp", "cookie_to_cdp", "cookie_origins", "read_cookies"]

_SAME_SITE = {"Strict": Cookie.SAME_SITE_STRICT, "Lax": Cookie.SAME_SITE_LAX, "None": Cookie.SAME_SITE_NONE}
_PRIORITY = {"Low": Cookie.PRIORITY_LOW, "Medium": Cookie.PRIORITY_MEDIUM, "High": Cookie.PRIORITY_HIGH}
_SCHEME = {
    "Unset": Cookie.SOURCE_SCHEME_UNSET,
    "NonSecure": Cookie.SOURCE_SCHEME_NON_SECURE,
    "Secure": Cookie.SOURCE_SCHEME_SECURE,
}
_SAME_SITE_NAME = {v: k for k, v in _SAME_SITE.items()}
_PRIORITY_NAME = {v: k for k, v in _PRIORITY.items()}
_SCHEME_NAME = {v: k for k, v in _SCHEME.items()}


def cookie_from_cdp(raw: dict[str, Any]) -> Cookie:
    """A model cookie from a ``Network.Cookie`` as JSON."""
    cookie = Cookie(
        name=raw["name"],
        value=raw["value"],
        domain=raw["domain"],
        path=raw.get("path", "/"),
        http_only=bool(raw.get("httpOnly")),
        secure=bool(raw.get("secure")),
        same_site=_SAME_SITE.get(raw.get("sameSite", ""), Cookie.SAME_SITE_UNSPECIFIED),
        priority=_PRIORITY.get(raw.get("priority", ""), Cookie.PRIORITY_UNSPECIFIED),
        source_scheme=_SCHEME.get(raw.get("sourceScheme", ""), Cookie.SOURCE_SCHEME_UNSPECIFIED),
        source_port=int(raw.get("sourcePort", -1)),
        partition_key_opaque=bool(raw.get("partitionKeyOpaque")),
        size=int(raw.get("size", 0)),
    )
    if not raw.get("session", False) and raw.get("expires", -1) not in (-1, None):
        cookie.expires = float(raw["expires"])
    key = raw.get("partitionKey")
    if isinstance(key, dict):
        cookie.partitioned = True
        cookie.partition_key.top_level_site = key.get("topLevelSite", "")
        cookie.partition_key.has_cross_site_ancestor = bool(key.get("hasCrossSiteAncestor"))
    elif isinstance(key, str) and key:  # older browsers report the top-level site alone
        cookie.partitioned = True
        cookie.partition_key.top_level_site = key
    return cookie


def cookie_to_cdp(cookie: Cookie) -> dict[str, Any]:
    """A ``Network.CookieParam`` as JSON that recreates ``cookie``."""
    param: dict[str, Any] = {
        "name": cookie.name,
        "value": cookie.value,
        "domain": cookie.domain,
        "path": cookie.path,
        "secure": cookie.secure,
        "httpOnly": cookie.http_only,
    }
    if cookie.HasField("expires"):
        param["expires"] = cookie.expires
    if cookie.same_site in _SAME_SITE_NAME:
        param["sameSite"] = _SAME_SITE_NAME[cookie.same_site]
    if cookie.priority in _PRIORITY_NAME:
        param["priority"] = _PRIORITY_NAME[cookie.priority]
    if cookie.source_scheme in _SCHEME_NAME:
        param["sourceScheme"] = _SCHEME_NAME[cookie.source_scheme]
    if cookie.source_port >= 0:
        param["sourcePort"] = cookie.source_port
    if cookie.partitioned:
        param["partitionKey"] = {
            "topLevelSite": cookie.partition_key.top_level_site,
            "hasCrossSiteAncestor": cookie.partition_key.has_cross_site_ancestor,
        }
    return param


def cookie_origins(cookie: Cookie) -> list[str]:
    """The origins a cookie points to (its host with the scheme and port it was set from)."""
    host = cookie.domain.lstrip(".")
    if not host:
        return []
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if cookie.source_scheme == Cookie.SOURCE_SCHEME_SECURE:
        schemes = ["https"]
    elif cookie.source_scheme == Cookie.SOURCE_SCHEME_NON_SECURE:
        schemes = ["http"]  # a Secure cookie set over http on a trustworthy host (localhost) stays http
    elif cookie.secure:
        schemes = ["https"]
    else:
        schemes = ["https", "http"]
    origins = []
    for scheme in schemes:
        default = 443 if scheme == "https" else 80
        port = cookie.source_port
        origins.append(f"{scheme}://{host}" + (f":{port}" if port > 0 and port != default else ""))
    return origins


async def read_cookies(context: BrowserContext) -> list[Cookie]:
    """Every cookie of a browser context, as model cookies."""
    result = await context.connection.send("Storage.getCookies", context.context_params())
    return [cookie_from_cdp(raw) for raw in result.get("cookies", [])]


class Cookies(Component):
    name = "cookies"
    order = 10
    description = "every cookie of the context, with every attribute"

    async def capture(self, ctx: CaptureContext) -> None:
        ctx.state.storage.cookies.extend(await read_cookies(ctx.context))

    async def restore(self, ctx: RestoreContext) -> None:
        now = time.time()
        live, expired = [], 0
        for cookie in ctx.state.storage.cookies:
            if cookie.HasField("expires") and cookie.expires <= now:
                expired += 1
            else:
                live.append(cookie)
        if expired:
            ctx.report.note(f"{expired} cookie(s) had expired and were not set")
        params = ctx.context.context_params()
        try:
            await ctx.connection.send("Storage.setCookies", {"cookies": [cookie_to_cdp(c) for c in live], **params})
            ctx.report.count(self.name, len(live))
        except ProtocolError:
            # One cookie the browser refuses fails the whole batch: set them one by one to name it.
            for cookie in live:
                try:
                    await ctx.connection.send("Storage.setCookies", {"cookies": [cookie_to_cdp(cookie)], **params})
                    ctx.report.count(self.name)
                except ProtocolError as exc:
                    ctx.report.not_restored(f"cookie {cookie.name} ({cookie.domain}{cookie.path}) refused: {exc.browser_message}")

    def count(self, state: BrowserSessionState) -> int:
        return len(state.storage.cookies)
