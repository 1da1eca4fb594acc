"""Availability state: which heights are being sampled and what each concluded, persisted.

Results and the checkpoint (the highest height below which every height is concluded) live in
the store via `da.store.checkpoint`, so a restart never resamples a concluded height. A verdict is
written in one batch with the signed header and the samples that earned it (`da.store.held`),
which are kept for the newest `keep_heights` heights and at most `keep_bytes` bytes (PROTOCOL.md
§13).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from da.cells import ProvenCell
from da.header import SignedHeader
from da.store.base import KeyValueStore, WriteBatch
from da.store.checkpoint import (
    SamplingResult,
    SamplingStatus,
    add_result_to_batch,
    get_result,
    last_sampled_height,
    set_last_sampled_height,
)
from da.store.held import (
    BYTES_PER_HELD_CELL,
    Verdict,
    add_verdict_to_batch,
    held_sizes,
    prune_light_below,
)

UNLIMITED = 2**63


class AvailabilityState:
    """In-progress heights in memory, concluded ones in `store`."""

    def __init__(
        self, store: KeyValueStore, *, keep_heights: int = UNLIMITED, keep_bytes: int = UNLIMITED
    ) -> None:
        self._store = store
        self._sampling: set[int] = set()
        self.checkpoint = last_sampled_height(store)
        self._keep_heights = keep_heights
        self._keep_bytes = keep_bytes
        self._held: OrderedDict[int, int] = OrderedDict(held_sizes(store))  # height -> bytes
        self._held_bytes = sum(self._held.values())

    @property
    def cells_held(self) -> int:
        """How many samples are kept, over every height."""
        return sum(size // BYTES_PER_HELD_CELL for size in self._held.values())

    def begin(self, height: int) -> None:
        self._sampling.add(height)

    def concluded(self, height: int) -> bool:
        return height <= self.checkpoint or get_result(self._store, height) is not None

    def lookup(self, height: int) -> SamplingResult | None:
        """SAMPLING while in progress, the stored result once concluded, else None."""
        if height in self._sampling:
            return SamplingResult(height, SamplingStatus.SAMPLING, 0.0, 0)
        return get_result(self._store, height)

    def finish(
        self,
        result: SamplingResult,
        signed: SignedHeader | None = None,
        cells: Sequence[ProvenCell] = (),
    ) -> None:
        """Persist `result` (synced), with `signed` and its verified `cells` in the same batch
        when given; move the checkpoint over every contiguous concluded height."""
        height = result.height
        next_gap = self._next_gap(height)
        at_checkpoint = height == self.checkpoint + 1 and next_gap == height + 1
        batch = WriteBatch()
        if signed is None:
            add_result_to_batch(batch, result, checkpoint=at_checkpoint)
        else:
            verdict = Verdict(result, signed.raw, signed.signature, tuple(cells))
            add_verdict_to_batch(batch, verdict, checkpoint=at_checkpoint)
            self._held[height] = 2 + len(cells) * BYTES_PER_HELD_CELL
            self._held.move_to_end(height)
            self._held_bytes = sum(self._held.values())
        self._store.write(batch, sync=True)  # result (and checkpoint) atomically
        if height == self.checkpoint + 1 and not at_checkpoint:
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

    def prune(self, head: int) -> int:
        """Drop headers, verdicts and samples of heights below the newest `keep_heights` (up
        to `head`), and the oldest kept samples beyond `keep_bytes`; returns the lowest height
        kept. Dropped heights count as concluded (never sampled again)."""
        floor = head - self._keep_heights + 1
        total = self._held_bytes
        for height in sorted(self._held):
            if total <= self._keep_bytes:
                break
            total -= self._held[height]
            floor = max(floor, height + 1)
        if floor <= 1:
            return 1
        prune_light_below(self._store, floor)
        for height in [h for h in self._held if h < floor]:
            del self._held[height]
        self._held_bytes = sum(self._held.values())
        self.skip_to(floor - 1)
        return floor
