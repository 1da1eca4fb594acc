"""The status HTTP server: `/` (page.html), `/status.json` (the source's `status()`) and
`/metrics` (prometheus-client's aiohttp exposition), on the caller's event loop."""

from __future__ import annotations

import json
import logging
from contextlib import AsyncExitStack
from importlib import resources
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

log = logging.getLogger(__name__)

PAGE = "page.html"


class StatusSource(Protocol):
    """A role's state as a JSON-able dict with at least `role`, `chain_id` and `height`."""

    def status(self) -> dict[str, Any]: ...


def make_app(source: StatusSource, registry: CollectorRegistry) -> web.Application:
    page = resources.files(__package__).joinpath(PAGE).read_text(encoding="utf-8")

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        text = json.dumps(source.status(), separators=(",", ":"))
        return web.Response(
            text=text, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/status.json", status)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app


async def start_status_server(
    stack: AsyncExitStack,
    source: StatusSource,
    registry: CollectorRegistry,
    *,
    port: int,
    address: str = "127.0.0.1",
) -> int:
    """Serve `source` and `registry` on address:port (0: any free port) until `stack` closes;
    returns the bound port."""
    runner = web.AppRunner(make_app(source, registry), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, address, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    log.info("status page on http://%s:%d/ (metrics at /metrics)", address, bound)
    return bound
