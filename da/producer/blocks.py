"""Block production: choose pending blobs, encode them off the event loop, sign the header, store
the block and settle its blobs in ONE synced batch, and only then publish the new head.

Crash safety (DESIGN 10): the batch holds the signed header, all 2k extended rows, the block
marker, the removal of the included blobs from the mempool and their INCLUDED records. After
kill -9 either all of it is durable or none is, so every acknowledged blob is still pending or
included, exactly once; a header is never served before its block is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from da.header import (
    ZERO_HASH,
    Header,
    SignedHeader,
    header_from_bytes,
    header_hash,
    sign_header,
)
from da.metrics import ProducerMetrics
from da.producer.encoder import Encoder
from da.producer.mempool import Mempool
from da.serving import HeadNotifier
from da.signing import KeyPair
from da.store import blobs as blob_store
from da.store import blocks as block_store
from da.store.base import KeyValueStore, WriteBatch
from da.store.blobs import PendingBlob, Placement
from erasure.constants import CELLS_PER_ROW
from erasure.layout import cells_for_length
from erasure.square import ExtendedSquare

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Tip:
    """The last stored block: its height (0 before the first) and header hash (zeros then)."""

    height: int
    hash: bytes
    time_ms: int = 0


@dataclass(frozen=True)
class BuiltBlock:
    """A signed block ready to store, with the pending blobs it includes and where they sit."""

    signed: SignedHeader
    square: ExtendedSquare
    included: tuple[PendingBlob, ...]
    placements: tuple[Placement, ...]

    @property
    def height(self) -> int:
        return self.signed.header.height

    @property
    def payload_bytes(self) -> int:
        return sum(len(blob.data) for blob in self.included)


def chain_tip(store: KeyValueStore) -> Tip:
    """The tip the next block builds on, read back from the store."""
    height = block_store.head_height(store)
    stored = block_store.get_signed_header(store, height) if height else None
    if stored is None:
        return Tip(0, ZERO_HASH)
    raw, _signature = stored
    return Tip(height, header_hash(raw), header_from_bytes(raw).time_ms)


def select_blobs(pending: Sequence[PendingBlob], max_rows: int) -> list[PendingBlob]:
    """The longest arrival-order prefix of `pending` that fits a `max_rows` square.

    Stopping at the first blob that does not fit (rather than skipping it) keeps arrival order:
    a large blob is never starved by a stream of small ones behind it.
    """
    capacity = max_rows * CELLS_PER_ROW
    chosen: list[PendingBlob] = []
    used = 0
    for blob in pending:
        cells = cells_for_length(len(blob.data))
        if used + cells > capacity:
            break
        chosen.append(blob)
        used += cells
    return chosen


def placements_for(square: ExtendedSquare, included: Sequence[PendingBlob]) -> list[Placement]:
    """Each included blob's sequence number, hash and start cell, from the square's blob index."""
    seq_by_hash = {
        blob_store.compute_blob_hash(blob.namespace, blob.data): blob.seq for blob in included
    }
    placed = [
        Placement(seq_by_hash[entry.blob_hash], entry.blob_hash, entry.start_cell)
        for entry in square.blob_index
    ]
    if len(placed) != len(included):
        raise RuntimeError("the square's blob index does not match the blobs encoded")
    return placed


def make_block(
    square: ExtendedSquare,
    included: Sequence[PendingBlob],
    *,
    chain_id: str,
    tip: Tip,
    time_ms: int,
    key: KeyPair,
) -> BuiltBlock:
    """Sign the header of the block after `tip` holding `square` (pure: nothing is stored)."""
    header = Header(
        chain_id=chain_id,
        height=tip.height + 1,
        time_ms=max(time_ms, tip.time_ms),  # never before the parent, even if the clock steps
        prev_hash=tip.hash,
        k=square.k,
        commitments=square.commitments,
        blobs=square.blob_index,
        producer=key.public,
    )
    signed = sign_header(header, key.secret)
    return BuiltBlock(signed, square, tuple(included), tuple(placements_for(square, included)))


def block_batch(block: BuiltBlock) -> WriteBatch:
    """ONE batch: the whole block and the settlement of every blob it includes."""
    square = block.square
    rows = [(square.row_cells(r), square.row_proofs(r)) for r in range(2 * square.k)]
    batch = WriteBatch()
    signed = block.signed
    block_store.add_block_to_batch(batch, block.height, signed.raw, signed.signature, rows)
    blob_store.include_blobs(batch, block.height, block.placements)
    return batch


class BlockProducer:
    """Produces a block every `block_time` seconds when blobs are pending (no empty blocks)."""

    def __init__(
        self,
        store: KeyValueStore,
        mempool: Mempool,
        notifier: HeadNotifier,
        metrics: ProducerMetrics,
        *,
        key: KeyPair,
        chain_id: str,
        max_rows: int,
        encoder: Encoder,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._store = store
        self._mempool = mempool
        self._notifier = notifier
        self._metrics = metrics
        self._key = key
        self._chain_id = chain_id
        self._max_rows = max_rows
        self._encoder = encoder
        self._clock = clock
        self._timer = timer
        self.tip = chain_tip(store)

    async def run(self, block_time_seconds: float) -> None:
        """Produce blocks until cancelled; a failed attempt is logged and retried next tick."""
        while True:
            started = self._timer()
            try:
                await self.produce_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep producing; the blobs stay pending
                log.exception("block %d failed; its blobs stay pending", self.tip.height + 1)
                await self._resync()
            await asyncio.sleep(max(0.0, block_time_seconds - (self._timer() - started)))

    async def produce_once(self) -> BuiltBlock | None:
        """Build, store and publish one block from the pending blobs; None if there are none."""
        chosen = select_blobs(await self._mempool.pending(), self._max_rows)
        if not chosen:
            return None
        started = self._timer()
        square = await self._encoder.encode(
            [(blob.namespace, blob.data) for blob in chosen], self._max_rows
        )
        encode_seconds = self._timer() - started
        block = make_block(
            square,
            chosen,
            chain_id=self._chain_id,
            tip=self.tip,
            time_ms=int(self._clock() * 1000),
            key=self._key,
        )
        await _finish(asyncio.to_thread(self._write, block))
        self._published(block, encode_seconds)
        return block

    def _write(self, block: BuiltBlock) -> None:
        """Store `block` unless its height is taken: never sign over a stored block (that
        would be two headers for one height), whatever state a failed write left behind."""
        if block_store.has_block(self._store, block.height):
            raise RuntimeError(f"a block is already stored at height {block.height}")
        self._store.write(block_batch(block), sync=True)

    async def _resync(self) -> None:
        """After a failure, trust the store again: its tip and its mempool."""
        self.tip = await asyncio.to_thread(chain_tip, self._store)
        await self._mempool.recount()
        self._metrics.set_pending_blobs(self._mempool.count)

    def _published(self, block: BuiltBlock, encode_seconds: float) -> None:
        """The block is durable: move the tip, wake subscribers, count and log it."""
        header = block.signed.header
        self.tip = Tip(block.height, block.signed.hash, header.time_ms)
        self._mempool.removed(block.included)
        self._notifier.notify(block.height)
        self._metrics.observe_block(block.height, encode_seconds)
        self._metrics.set_pending_blobs(self._mempool.count)
        log.info(
            "block %d: k=%d, %d blobs, %d bytes, encoded in %.3f s, hash %s",
            block.height,
            header.k,
            len(block.included),
            block.payload_bytes,
            encode_seconds,
            block.signed.hash.hex()[:16],
        )


async def _finish(write: Coroutine[Any, Any, T]) -> T:
    """Await a store write to its end even if cancelled meanwhile, then re-raise the cancel, so
    that a shutdown never closes the store under a block being written (the block is then
    simply found on restart)."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise
