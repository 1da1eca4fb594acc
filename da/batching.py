"""Group commit, shared by every place where one slow step (a synced write, a round trip) can
serve many callers at once: the mempool's durable appends and the leader's replication calls.

Callers `submit` items; while a batch is being handled, the items that arrive wait and are then
handled together, in arrival order, as the next batch (up to `max_batch_weight`). So under load a
single fsync or round trip covers every caller that queued meanwhile, and alone a caller pays
exactly one, as without batching. By default one batch at a time (what a handler does is then
ordered); `in_flight` > 1 lets that many batches be handled at once (round trips to another
process, which may overlap: an item then waits for a free slot, not for a whole batch).
`linger` > 0 makes a batch wait for more items before it starts: as long as they keep arriving
(a gap of `quiet` seconds ends the wait; by default `quiet` is `linger`, a fixed wait), at most
`linger`, and not once it is full. Where each batch has a fixed cost much larger than an item's
(a call to another process), batches of many items are worth a few milliseconds of latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

# The linger of intake batches (the mempool's synced writes, a group's replication rounds):
# while submissions keep arriving (a gap of QUIET_SECONDS ends the wait), at most
# LINGER_SECONDS. Small beside a block time; under load, many submissions per fsync and per call.
LINGER_SECONDS = 0.02
QUIET_SECONDS = 0.002

T = TypeVar("T")
R = TypeVar("R")

Handler = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]
"""Handles one batch: one outcome (a result, or the exception for that item) per item, in order."""


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    arrived: float  # loop time


class Batcher(Generic[T, R]):
    """Handles submitted items in batches, one batch at a time (see the module docstring)."""

    def __init__(
        self,
        handle: Handler[T, R],
        *,
        weight: Callable[[T], int] = lambda _item: 1,
        max_batch_weight: int = 1 << 62,
        in_flight: int = 1,
        linger: float = 0.0,
        quiet: float = 0.0,
    ) -> None:
        self._handle = handle
        self._weight = weight
        self._max_weight = max_batch_weight
        self._in_flight = in_flight
        self._linger = linger
        self._quiet = quiet or linger
        self._last_arrival = 0.0
        self._waiting: list[_Waiting[T, R]] = []
        self._workers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """`item`'s outcome once its batch was handled (its exception is raised). A cancelled
        caller does not withdraw the item: a batch being handled is finished."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._last_arrival = loop.time()
        self._waiting.append(_Waiting(item, future, self._last_arrival))
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
                if self._linger:
                    await self._gather_more()
                    if not self._waiting:  # another worker took them meanwhile
                        break
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

    async def _gather_more(self) -> None:
        """Linger: wait while items keep arriving (a gap of `quiet` ends it), at most `linger`
        after the oldest waiting item arrived, and not once the batch is full. (Counted from the
        oldest item, not from when this worker started: a second worker started by an item that
        the first one then took waits for the items after it.)"""
        loop = asyncio.get_running_loop()
        while self._waiting and not self._full():
            deadline = self._waiting[0].arrived + self._linger
            wait = min(deadline, self._last_arrival + self._quiet) - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _full(self) -> bool:
        return sum(self._weight(waiting.item) for waiting in self._waiting) >= self._max_weight

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
