"""Availability state: which heights are being sampled and what each concluded, persisted.

Results and the checkpoint (the highest height below which every height is concluded) live in
the store via `da.store.checkpoint`, so a restart never resamples a concluded height.
"""

from __future__ import annotations

from da.store.base import KeyValueStore
from da.store.checkpoint import (
    SamplingResult,
    SamplingStatus,
    get_result,
    last_sampled_height,
    put_result,
    set_last_sampled_height,
)


class AvailabilityState:
    """In-progress heights in memory, concluded ones in `store`."""

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self._sampling: set[int] = set()
        self.checkpoint = last_sampled_height(store)

    def begin(self, height: int) -> None:
        self._sampling.add(height)

    def concluded(self, height: int) -> bool:
        return height <= self.checkpoint or get_result(self._store, height) is not None

    def lookup(self, height: int) -> SamplingResult | None:
        """SAMPLING while in progress, the stored result once concluded, else None."""
        if height in self._sampling:
            return SamplingResult(height, SamplingStatus.SAMPLING, 0.0, 0)
        return get_result(self._store, height)

    def finish(self, result: SamplingResult) -> None:
        """Persist `result` (synced); move the checkpoint over every contiguous concluded height."""
        height = result.height
        next_gap = self._next_gap(height)
        if height == self.checkpoint + 1 and next_gap == height + 1:
            put_result(self._store, result, checkpoint=True)  # result and checkpoint atomically
        else:
            put_result(self._store, result)
            if height == self.checkpoint + 1:
                set_last_sampled_height(self._store, next_gap - 1)
        if height == self.checkpoint + 1:
            self.checkpoint = next_gap - 1
        self._sampling.discard(height)

    def _next_gap(self, height: int) -> int:
        """The first height above `height` without a stored result."""
        gap = height + 1
        while get_result(self._store, gap) is not None:
            gap += 1
        return gap

    def skip_to(self, height: int) -> None:
        """Give up on heights up to `height` that were never sampled (older than the backlog)."""
        if height > self.checkpoint:
            set_last_sampled_height(self._store, height)
            self.checkpoint = height
