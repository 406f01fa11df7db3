"""Which origins a capture reads, and how it reads origins that have no open page.

The candidates are the origins of every frame of every tab, the origins the
context's cookies and the tabs' history entries point to, and any origin the caller
adds. ``Storage.getUsageAndQuota`` tells, without opening a page, whether an origin
holds IndexedDB, CacheStorage or service workers, so stub pages are opened only
for origins that hold something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from ..errors import BrowserClosedError, ProtocolError, StateError
from .cookies import cookie_origins, read_cookies
from .pages import Frame, StubPage, gather_limited, origin_of
from .registry import CaptureContext

__all__ = [
    "STUB_CONCURRENCY",
    "first_party_key",
    "known_origins",
    "read_storage_keys",
    "storage_usage",
    "with_stub_pages",
]

#: How many stub pages read or write origins at once.
STUB_CONCURRENCY = 4

T = TypeVar("T")


async def known_origins(ctx: CaptureContext) -> set[str]:
    """Every http(s) origin the capture knows of (computed once per capture)."""
    cached = ctx.memo.get("known_origins")
    if cached is not None:
        return set(cached)
    origins = set(ctx.extra_origins)
    cookies = ctx.state.storage.cookies if "cookies" in ctx.selected else await read_cookies(ctx.context)
    for cookie in cookies:
        origins.update(cookie_origins(cookie))
    for tab in ctx.tabs:
        for frame in tab.frames:
            if frame.origin:
                origins.add(frame.origin)
        for entry in await tab.history():
            origin = origin_of(entry.get("url", ""))
            if origin:
                origins.add(origin)
    ctx.memo["known_origins"] = frozenset(origins)
    return origins


async def storage_usage(ctx: CaptureContext, origins: set[str]) -> dict[str, dict[str, int]]:
    """Bytes each origin holds per storage type ("indexeddb", "cache_storage", "service_workers"...).

    Asked once per origin and capture; an origin the browser will not answer for is left out.
    """
    memo: dict[str, dict[str, int]] = ctx.memo.setdefault("storage_usage", {})
    missing = sorted(origins - memo.keys())
    if missing:
        session = ctx.tabs[0].session if ctx.tabs else None
        if session is None:
            async with ctx.context.stub_page() as stub:
                await _ask_usage(stub.session, missing, memo)
        else:
            await _ask_usage(session, missing, memo)
    return {o: memo[o] for o in origins if o in memo}


async def _ask_usage(session: Any, origins: list[str], into: dict[str, dict[str, int]]) -> None:
    for origin in origins:
        try:
            result = await session.send("Storage.getUsageAndQuota", {"origin": origin})
        except ProtocolError:
            continue
        into[origin] = {b["storageType"]: int(b["usage"]) for b in result.get("usageBreakdown", [])}


async def with_stub_pages(
    ctx: CaptureContext,
    origins: list[str],
    read: Callable[[StubPage, str], Awaitable[T]],
    what: str,
) -> dict[str, T]:
    """Call ``read(stub, origin)`` on a stub page of each origin, a few at once.

    An origin that cannot be read is reported as uncovered (``what`` names the part
    of its state) and left out of the result.
    """

    async def one(origin: str) -> tuple[str, T | Exception]:
        try:
            async with ctx.context.stub_page() as stub:
                await stub.navigate(origin + "/")
                return origin, await read(stub, origin)
        except (StateError, ProtocolError, trio.TooSlowError) as exc:
            return origin, exc

    results: dict[str, T] = {}
    for origin, result in await gather_limited([lambda o=o: one(o) for o in origins], STUB_CONCURRENCY):
        if isinstance(result, Exception):
            ctx.uncovered(f"{what} of {origin}", str(result) or type(result).__name__)
        else:
            results[origin] = result
    return results


def first_party_key(origin: str) -> str:
    """The storage key of an origin's own (unpartitioned) storage."""
    return origin + "/"


async def read_storage_keys(
    ctx: CaptureContext,
    usage_type: str,
    read: Callable[[Frame | StubPage, str, str], Awaitable[T]],
    what: str,
) -> dict[str, tuple[str, T]]:
    """``read(target, origin, storage key)`` once per storage key: ``{storage key: (origin, result)}``.

    Every storage key of the tabs' open frames is read in one of its frames; every
    other known origin whose ``usage_type`` usage (see :func:`storage_usage`) is not
    zero is read on a stub page. A frame or origin that cannot be read is reported as
    uncovered (``what`` names the part of its state); a frame that went away is passed over.
    """
    found: dict[str, tuple[str, T]] = {}
    for tab in ctx.tabs:
        for frame in tab.frames:
            origin = frame.origin
            if origin is None:
                continue
            try:
                key = await frame.storage_key() or first_party_key(origin)
                if key not in found:
                    found[key] = (origin, await read(frame, origin, key))
            except (StateError, ProtocolError) as exc:
                ctx.uncovered(f"{what} of {origin} (frame {frame.url})", str(exc))
            except BrowserClosedError:
                continue
    covered = {origin for key, (origin, _) in found.items() if key == first_party_key(origin)}
    rest = (await known_origins(ctx)) - covered
    usage = await storage_usage(ctx, rest)
    probes = sorted(origin for origin in rest if usage.get(origin, {}).get(usage_type, 0) > 0)

    async def read_stub(stub: StubPage, origin: str) -> T:
        return await read(stub, origin, first_party_key(origin))

    for origin, result in (await with_stub_pages(ctx, probes, read_stub, what)).items():
        found[first_party_key(origin)] = (origin, result)
    return found
