"""Service worker registrations: scope, script URL and state of the newest worker, updateViaCache.

They are read with ``navigator.serviceWorker.getRegistrations()`` in the tabs' open
frames and, for origins with no open frame whose storage holds service workers, on
stub pages. Registering a worker again fetches its script from the network, so a
restore does it only when asked for the ``service_workers`` option; otherwise the
report says how many registrations were left out.
"""

from __future__ import annotations

from typing import Any

import trio

from ..errors import ProtocolError, StateError
from ..snapshot.model import BrowserSessionState, ServiceWorkerRegistration
from .origins import STUB_CONCURRENCY, first_party_key, read_storage_keys
from .pages import Frame, StubPage, gather_limited
from .registry import CaptureContext, Component, RestoreContext

__all__ = ["ServiceWorkers"]

_READ = """async function () {
  if (!navigator.serviceWorker) return [];
  return (await navigator.serviceWorker.getRegistrations()).map((registration) => {
    const worker = registration.installing || registration.waiting || registration.active;
    return {
      scope: registration.scope,
      script: worker ? worker.scriptURL : "",
      state: worker ? worker.state : "",
      updateViaCache: registration.updateViaCache,
    };
  });
}"""

_REGISTER = """async function (script, scope, updateViaCache) {
  const options = {scope};
  if (updateViaCache) options.updateViaCache = updateViaCache;
  return (await navigator.serviceWorker.register(script, options)).scope;
}"""


async def _read(target: Frame | StubPage, origin: str, key: str) -> list[dict[str, Any]]:
    return list(await target.call(_READ))


class ServiceWorkers(Component):
    name = "service_workers"
    uses_tabs = True
    order = 35
    description = "service worker registrations (registered again only with the service_workers option)"

    async def capture(self, ctx: CaptureContext) -> None:
        found = await read_storage_keys(ctx, "service_workers", _read, "service workers")
        for key in sorted(found):
            origin, registrations = found[key]
            for registration in registrations:
                message = ctx.state.network.service_workers.add(
                    origin=origin,
                    scope=registration["scope"],
                    script_url=registration["script"],
                    state=registration["state"],
                    update_via_cache=registration["updateViaCache"],
                )
                if key != first_party_key(origin):
                    message.storage_key = key

    async def restore(self, ctx: RestoreContext) -> None:
        registrations = list(ctx.state.network.service_workers)
        if not registrations:
            return
        if "service_workers" not in ctx.options:
            ctx.report.note(
                f"{len(registrations)} service worker registration(s) were captured and not registered again "
                "(ask for the service_workers option, psp restore --service-workers, to register them)"
            )
            return
        by_origin: dict[str, list[ServiceWorkerRegistration]] = {}
        for registration in registrations:
            if registration.storage_key and registration.storage_key != first_party_key(registration.origin):
                ctx.report.not_restored(
                    f"service worker {registration.scope} of {registration.storage_key} (partitioned) is not registered by this version"
                )
            elif not registration.script_url:
                ctx.report.note(f"service worker {registration.scope} of {registration.origin} had no worker left to register")
            else:
                by_origin.setdefault(registration.origin, []).append(registration)

        async def register(origin: str, registrations: list[ServiceWorkerRegistration]) -> None:
            try:
                async with ctx.context.stub_page() as stub:
                    await stub.navigate(origin + "/", timeout=ctx.timeout)
                    for registration in registrations:
                        try:
                            await stub.call(
                                _REGISTER, registration.script_url, registration.scope, registration.update_via_cache
                            )
                        except StateError as exc:
                            ctx.report.not_restored(f"service worker {registration.scope} not registered: {exc}")
                        else:
                            ctx.report.count(self.name)
            except (StateError, ProtocolError, trio.TooSlowError) as exc:
                ctx.report.not_restored(f"service workers of {origin}: {exc or 'timed out'}")

        await gather_limited([lambda o=o, r=r: register(o, r) for o, r in by_origin.items()], STUB_CONCURRENCY)

    def count(self, state: BrowserSessionState) -> int:
        return len(state.network.service_workers)
