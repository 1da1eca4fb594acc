"""Square encoding for the block loop: off the event loop, on a pool of worker processes that is
replaced when it breaks (a worker killed by the OOM killer or a signal leaves a
`ProcessPoolExecutor` unusable for good; without a replacement no block could ever be built).

`encode_stream` hands rows on as the workers finish them, so the block loop stores them batch by
batch and never holds a whole square (k up to 512, issue 6).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor

from erasure.parallel import RowBatch, RowsCallback, SquareSummary, encode_square_stream

log = logging.getLogger(__name__)

ExecutorMaker = Callable[[], Executor | None]


class _EncodeStopped(Exception):
    """Raised inside an encode's thread to stop it once its caller was cancelled (never escapes
    `Encoder.encode_stream`: the caller sees its CancelledError)."""


class Encoder:
    """Owns the encoding executor (None: encode in a thread of this process, for tests)."""

    def __init__(self, make_executor: ExecutorMaker) -> None:
        self._make = make_executor
        self._executor: Executor | None = None
        self._started = False

    @property
    def executor(self) -> Executor | None:
        """The pool the trusted setup is loaded in (also for verifying fetched rows)."""
        return self._executor

    async def start(self) -> None:
        """Create the executor (for a pool: start every worker and load its trusted setup)."""
        self._executor = await asyncio.to_thread(self._make)
        self._started = True

    async def encode_stream(
        self, blobs: Sequence[tuple[bytes, bytes]], max_rows: int, on_rows: RowsCallback
    ) -> SquareSummary:
        """Encode `(namespace, data)` blobs in arrival order (see `erasure.square.encode_square`),
        handing each `RowBatch` to `on_rows` as it is done (called in a worker thread, see
        `erasure.parallel.encode_square_stream`); returns k, commitments and blob index once
        every row was handed on.

        If cancelled, the encode stops at its next batch and this waits for its thread to end
        before re-raising: once this returns or raises, `on_rows` is never called again.
        On a broken pool, replaces it and re-raises.
        """
        if not self._started:
            await self.start()
        stop = threading.Event()

        def guarded(batch: RowBatch) -> None:
            if stop.is_set():
                raise _EncodeStopped("the block loop was cancelled")
            on_rows(batch)

        task = asyncio.ensure_future(
            asyncio.to_thread(
                encode_square_stream,
                blobs,
                max_rows=max_rows,
                executor=self._executor,
                on_rows=guarded,
            )
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: _EncodeStopped, or whatever ended it first
            raise
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
