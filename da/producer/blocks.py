"""Block production: choose pending blobs, encode them off the event loop while their rows are
stored batch by batch, sign the header, then seal the block and settle its blobs in ONE synced
batch, and only then publish the new head.

Memory stays bounded (k up to 512, issue 6): rows go from the encoding workers to the store as
they finish (`RowWriter`), so the square is never held whole.

Crash safety (PROTOCOL.md §14): readers see a block only through its marker (`da.store.blocks`), and
the final batch holds the signed header, the block marker, the removal of the included blobs
from the mempool and their INCLUDED records. After kill -9 either all of it is durable or none
is, so every acknowledged blob is still pending or included, exactly once, and a header is never
served before its block is stored. The rows written before (not synced) are durable once the
synced final batch is: RocksDB's write-ahead log syncs and replays in write order. Rows of a
block that never got its final batch are orphans: invisible, and deleted when the producer
starts, before every attempt, and after a failed one (`block_store.delete_orphan_rows`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

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
from da.store import headers
from da.store.base import KeyValueStore, WriteBatch
from da.store.blobs import PendingBlob, Placement
from erasure.layout import BlobEntry
from erasure.parallel import RowBatch, SquareSummary

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Tip:
    """The last stored block: its height (0 before the first) and header hash (zeros then)."""

    height: int
    hash: bytes
    time_ms: int = 0


class EncodedSquare(Protocol):
    """What a header needs of an encoded square: a `SquareSummary` or an `ExtendedSquare`."""

    @property
    def k(self) -> int: ...

    @property
    def commitments(self) -> Sequence[bytes]: ...

    @property
    def blob_index(self) -> Sequence[BlobEntry]: ...


@dataclass(frozen=True)
class BuiltBlock:
    """A signed block whose rows are stored (or are being stored), with the pending blobs it
    includes and where they sit. `summary` is the square's k, commitments and blob index."""

    signed: SignedHeader
    summary: SquareSummary
    included: tuple[PendingBlob, ...]
    placements: tuple[Placement, ...]

    @property
    def height(self) -> int:
        return self.signed.header.height

    @property
    def payload_bytes(self) -> int:
        return sum(len(blob.data) for blob in self.included)


Commit = Callable[[BuiltBlock], Awaitable[None]]
"""Group mode: commits a signed block's header (in etcd) before it is stored and published;
raises when the header may not be published (the block is then discarded)."""


Eligible = Callable[[PendingBlob], bool]
"""Group mode: whether a block may include a pending blob (a majority of replicas holds it).
Called in a worker thread while the pending blobs are read."""


def chain_tip(store: KeyValueStore) -> Tip:
    """The tip the next block builds on, read back from the store."""
    height = block_store.head_height(store)
    stored = headers.get_signed_header(store, height) if height else None
    if stored is None:
        return Tip(0, ZERO_HASH)
    raw, _signature = stored
    return Tip(height, header_hash(raw), header_from_bytes(raw).time_ms)


def placements_for(square: EncodedSquare, included: Sequence[PendingBlob]) -> list[Placement]:
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
    summary: SquareSummary,
    included: Sequence[PendingBlob],
    *,
    chain_id: str,
    tip: Tip,
    time_ms: int,
    key: KeyPair,
) -> BuiltBlock:
    """Sign the header of the block after `tip` whose square `summary` describes (pure: nothing
    is stored)."""
    header = Header(
        chain_id=chain_id,
        height=tip.height + 1,
        time_ms=max(time_ms, tip.time_ms),  # never before the parent, even if the clock steps
        prev_hash=tip.hash,
        k=summary.k,
        commitments=summary.commitments,
        blobs=summary.blob_index,
        producer=key.public,
    )
    signed = sign_header(header, key.secret)
    return BuiltBlock(signed, summary, tuple(included), tuple(placements_for(summary, included)))


def seal_batch(block: BuiltBlock) -> WriteBatch:
    """ONE batch, written once all 2k rows are stored: the signed header and block marker (which
    make the block visible) and the settlement of every blob it includes."""
    batch = WriteBatch()
    signed = block.signed
    ext_rows = 2 * block.summary.k
    block_store.add_block_seal_to_batch(batch, block.height, signed.raw, signed.signature, ext_rows)
    blob_store.include_blobs(batch, block.height, block.placements)
    return batch


class RowWriter(block_store.BlockRows):
    """`on_rows` for an encode: stores each `RowBatch` of the block at `height` as it arrives
    (one unsynced write per batch: the final synced batch makes them durable, see above)."""

    def __call__(self, rows: RowBatch) -> None:
        self.write(enumerate(zip(rows.cells, rows.proofs, strict=True), start=rows.first_row))


def discard_unfinished_blocks(store: KeyValueStore) -> list[int]:
    """Delete the rows of blocks that were never sealed (above the head); returns their heights."""
    heights = block_store.delete_orphan_rows(store)
    if heights:
        log.warning("deleted the rows of unfinished blocks at heights %s", heights)
    return heights


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
        retention_blocks: int = 0,
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
        self._retention = retention_blocks
        self._clock = clock
        self._timer = timer
        discard_unfinished_blocks(store)  # a crash may have left a block's rows without it
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
                await self.resync()
            await asyncio.sleep(max(0.0, block_time_seconds - (self._timer() - started)))

    async def produce_once(
        self, commit: Commit | None = None, eligible: Eligible | None = None
    ) -> BuiltBlock | None:
        """Build, store and publish one block from the pending blobs; None if there are none.
        Group mode: only the `eligible` pending blobs are chosen, and `commit` is awaited between
        signing and sealing, so only a committed header is ever stored, hence served.

        On any failure (cancellation included) the rows stored so far are deleted and the blobs
        stay pending; the exception propagates.
        """
        chosen = await self._mempool.next_square(self._max_rows, eligible)
        if not chosen:
            return None
        height = self.tip.height + 1
        try:
            await _finish(asyncio.to_thread(self._prepare, height))
            started = self._timer()
            writer = RowWriter(self._store, height)
            summary = await self._encoder.encode_stream(
                [(blob.namespace, blob.data) for blob in chosen], self._max_rows, writer
            )
            writer.check_complete(2 * summary.k)
            encode_seconds = self._timer() - started  # producing AND storing every row
            block = make_block(
                summary,
                chosen,
                chain_id=self._chain_id,
                tip=self.tip,
                time_ms=int(self._clock() * 1000),
                key=self._key,
            )
            if commit is not None:
                await commit(block)
            await _finish(asyncio.to_thread(self._write, block))
        except BaseException:
            await self._discard(height)
            raise
        self._published(block, encode_seconds)
        await self._prune()
        return block

    async def _prune(self) -> None:
        """Keep the newest `retention_blocks` blocks (0: all); a failure only delays it."""
        try:
            pruned = await _finish(
                asyncio.to_thread(block_store.prune_outside_retention, self._store, self._retention)
            )
        except Exception:  # noqa: BLE001 - the block is published; pruning retries next time
            log.exception("pruning old blocks failed")
            return
        if pruned:
            log.info("pruned %d blocks outside the newest %d", pruned, self._retention)

    async def rebuild(self, signed: SignedHeader, blobs: Sequence[tuple[bytes, bytes]]) -> bool:
        """Re-encode the committed block of `signed` from its blobs (namespace, data) in square
        order, writing its rows; True when that reproduces the header's square (the caller then
        seals it), False when not (the caller deletes the rows)."""
        header = signed.header
        await _finish(asyncio.to_thread(self._prepare, header.height))
        writer = RowWriter(self._store, header.height)
        summary = await self._encoder.encode_stream(list(blobs), self._max_rows, writer)
        same = (
            summary.k == header.k
            and tuple(summary.commitments) == tuple(header.commitments)
            and tuple(summary.blob_index) == tuple(header.blobs)
        )
        if same:
            writer.check_complete(2 * summary.k)
        return same

    @property
    def encoder(self) -> Encoder:
        return self._encoder

    def _prepare(self, height: int) -> None:
        """Before streaming rows for `height`: refuse a taken height (its rows would be
        overwritten), and delete rows a failed attempt left (it may have had a larger k)."""
        if block_store.has_block(self._store, height):
            raise RuntimeError(f"a block is already stored at height {height}")
        discard_unfinished_blocks(self._store)

    def _write(self, block: BuiltBlock) -> None:
        """Seal `block` unless its height is taken: never sign over a stored block (that
        would be two headers for one height), whatever state a failed write left behind."""
        if block_store.has_block(self._store, block.height):
            raise RuntimeError(f"a block is already stored at height {block.height}")
        self._store.write(seal_batch(block), sync=True)

    async def _discard(self, height: int) -> None:
        """After a failed attempt at `height`: delete its rows unless the block got sealed after
        all (a write reported failed yet landed). Best effort: the next attempt retries it."""
        try:
            await _finish(asyncio.to_thread(discard_unfinished_blocks, self._store))
        except Exception:  # noqa: BLE001 - the original failure is the one to report
            log.exception("could not delete the rows of unfinished block %d", height)

    def followed(self, tip: Tip) -> None:
        """A group follower stored the committed block of `tip` (its blobs settled)."""
        self.tip = tip
        self._metrics.set_pending_blobs(self._mempool.count)

    async def resync(self) -> None:
        """After a failure (or blocks stored by someone else), trust the store again: its tip
        and its mempool."""
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
