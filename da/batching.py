"""Group commit, shared by every place where one slow step (a synced write, a round trip) can
serve many callers at once: the mempool's durable appends and the leader's replication calls.

Callers `submit` items; while a batch is being handled, the items that arrive wait and are then
handled together, in arrival order, as the next batch (up to `max_batch_weight`). So under load a
single fsync or round trip covers every caller that queued meanwhile, and alone a caller pays
exactly one, as without batching. By default one batch at a time (what a handler does is then
ordered); `in_flight` > 1 lets that many batches be handled at once (round trips to another
process, which may overlap: an item then waits for a free slot, not for a whole batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Handler = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]
"""Handles one batch: one outcome (a result, or the exception for that item) per item, in order."""


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """Handles submitted items in batches, one batch at a time (see the module docstring)."""

    def __init__(
        self,
        handle: Handler[T, R],
        *,
        weight: Callable[[T], int] = lambda _item: 1,
        max_batch_weight: int = 1 << 62,
        in_flight: int = 1,
    ) -> None:
        self._handle = handle
        self._weight = weight
        self._max_weight = max_batch_weight
        self._in_flight = in_flight
        self._waiting: list[_Waiting[T, R]] = []
        self._workers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """`item`'s outcome once its batch was handled (its exception is raised). A cancelled
        caller does not withdraw the item: a batch being handled is finished."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, future))
        # a finished worker leaves the set only in a later loop turn: count the running ones
        if sum(not worker.done() for worker in self._workers) < self._in_flight:
            worker = asyncio.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return await asyncio.shield(future)

    async def submit_many(self, items: Sequence[T]) -> list[R | BaseException]:
        """Every item's outcome (results or exceptions), the items queued together."""
        return await asyncio.gather(*(self.submit(item) for item in items), return_exceptions=True)

    async def _work(self) -> None:
        batch: list[_Waiting[T, R]] = []
        try:
            while self._waiting:
                batch = self._take()
                try:
                    outcomes = await self._handle([waiting.item for waiting in batch])
                except Exception as e:  # noqa: BLE001 - the batch's callers get it
                    outcomes = [e] * len(batch)
                if len(outcomes) != len(batch):
                    raise RuntimeError("a batch handler answered for a different number of items")
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        waiting.future.set_exception(outcome)
                    else:
                        waiting.future.set_result(outcome)
                batch = []
        except BaseException:  # cancelled (shutting down) or broken: nobody waits forever
            for waiting in [*batch, *self._waiting]:
                if not waiting.future.done():
                    waiting.future.cancel()
            raise

    def _take(self) -> list[_Waiting[T, R]]:
        """The next batch: the oldest waiting items up to the weight limit (at least one)."""
        total = 0
        count = 0
        for waiting in self._waiting:
            total += self._weight(waiting.item)
            if count and total > self._max_weight:
                break
            count += 1
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch
