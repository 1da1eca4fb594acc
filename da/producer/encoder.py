"""Square encoding for the block loop: off the event loop, on a pool of worker processes that is
replaced when it breaks (a worker killed by the OOM killer or a signal leaves a
`ProcessPoolExecutor` unusable for good; without a replacement no block could ever be built)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor

from erasure.square import ExtendedSquare, encode_square

log = logging.getLogger(__name__)

ExecutorMaker = Callable[[], Executor | None]


class Encoder:
    """Owns the encoding executor (None: encode in a thread of this process, for tests)."""

    def __init__(self, make_executor: ExecutorMaker) -> None:
        self._make = make_executor
        self._executor: Executor | None = None
        self._started = False

    async def start(self) -> None:
        """Create the executor (for a pool: start every worker and load its trusted setup)."""
        self._executor = await asyncio.to_thread(self._make)
        self._started = True

    async def encode(self, blobs: Sequence[tuple[bytes, bytes]], max_rows: int) -> ExtendedSquare:
        """Encode `(namespace, data)` blobs in arrival order (see `erasure.square.encode_square`).

        On a broken pool, replaces it and re-raises: the caller retries on its next tick.
        """
        if not self._started:
            await self.start()
        try:
            return await asyncio.to_thread(
                encode_square, blobs, max_rows=max_rows, executor=self._executor
            )
        except BrokenExecutor:
            log.error("the encoding pool broke (a worker died); starting a new one")
            await self._replace()
            raise

    async def _replace(self) -> None:
        broken, self._executor = self._executor, None
        if broken is not None:
            await asyncio.to_thread(broken.shutdown, wait=False, cancel_futures=True)
        self._executor = await asyncio.to_thread(self._make)

    def shutdown(self) -> None:
        """Stop the workers (running batches finish, queued ones are cancelled)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
