"""`DAClient`: `AsyncDAClient`'s methods, blocking, on a private event loop.

Not for use inside a running event loop (there, use `AsyncDAClient`), and one client per thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from da.certificate import Certificate
from da.client.aio import AsyncDAClient
from da.client.results import Availability, Blob, BlobStatus, Receipt
from da.header import SignedHeader

T = TypeVar("T")


class DAClient:
    """Blocking client; same arguments as `AsyncDAClient`. Use `with`, or call `close()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._client = AsyncDAClient(*args, **kwargs)
        self._runner = asyncio.Runner()

    def __enter__(self) -> DAClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def submit(
        self, namespace: bytes, data: bytes, *, wait: str | None = None, timeout: float = 60.0
    ) -> Receipt:
        return self._run(self._client.submit(namespace, data, wait=wait, timeout=timeout))

    def status(self, blob_hash: bytes) -> BlobStatus:
        return self._run(self._client.status(blob_hash))

    def get_blobs(self, height: int, namespace: bytes) -> list[Blob]:
        return self._run(self._client.get_blobs(height, namespace))

    def header(self, height: int = 0) -> SignedHeader:
        return self._run(self._client.header(height))

    def certificate(
        self, height: int, operators: Iterable[str | bytes] | None = None, *, quorum: int = 1
    ) -> Certificate:
        return self._run(self._client.certificate(height, operators, quorum=quorum))

    def availability(self, height: int, *, node: str | None = None) -> Availability:
        return self._run(self._client.availability(height, node=node))

    def health(self, node: str, service: str = "") -> str:
        return self._run(self._client.health(node, service))
