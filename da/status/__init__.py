"""Status pages (PROTOCOL.md §15): every long-running process serves, on its metrics port,
`/metrics` (Prometheus), `/status.json` and `/` (one small HTML page, no external assets), with
aiohttp in the process's own event loop.

`server.py` serves any `StatusSource` (an object with `status() -> dict`); `producer.py`,
`storage.py` and `light.py` are the per-role sources, fed by the role's `node.py` with plain
values and callables, so this package imports no role package. `page.html` draws every role.
"""

from da.status.server import StatusSource, start_status_server

__all__ = ["StatusSource", "start_status_server"]
