"""Blob intake: checking a submission at the edge and the durable mempool it lands in.

A blob is acknowledged only after `blobs.append_pending_many` (one synced RocksDB batch: the data,
its PENDING record, the next sequence number; blobs submitted meanwhile share it) returned, so an
acknowledged blob survives kill -9.
The same blob (same `blob_hash`) submitted again is the same blob: the answer is its current
record and nothing is stored twice. The check and the append are one step of one batch at a
time, so two concurrent submissions of one blob cannot both append it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from da.batching import LINGER_SECONDS, QUIET_SECONDS, Batcher
from da.errors import BadNamespace, InvalidRequest, TooLarge
from da.producer.errors import MempoolFull
from da.store import blobs
from da.store.base import KeyValueStore
from da.store.blobs import BlobRecord, BlobState, PendingBlob
from erasure.constants import CELLS_PER_ROW
from erasure.errors import InvalidNamespace
from erasure.layout import normalize_namespace

# Most blob bytes one synced append covers (more waiting submissions: the next append).
APPEND_BATCH_BYTES = 8 << 20
# Pending bytes the mempool may hold, in full squares: a backlog of several blocks is fine; an
# unbounded one would only grow the producer's memory and the time to read it back.
MEMPOOL_SQUARES = 8


@dataclass(frozen=True)
class Submission:
    """A checked blob: 29-byte namespace, non-empty data within the limit, its blob_hash."""

    namespace: bytes
    data: bytes
    blob_hash: bytes


def submission_from_request(namespace: bytes, data: bytes, max_blob_bytes: int) -> Submission:
    """Check an untrusted (namespace, data) pair once, at the edge.

    Raises `BadNamespace` (not 1..29 bytes, or reserved) and `InvalidRequest` (empty data), both
    INVALID_ARGUMENT, or `TooLarge` (over `max_blob_bytes`, RESOURCE_EXHAUSTED).
    """
    try:
        padded = normalize_namespace(bytes(namespace))
    except InvalidNamespace as e:
        raise BadNamespace(bytes(namespace), str(e)) from None
    if not data:
        raise InvalidRequest("blob data must not be empty")
    if len(data) > max_blob_bytes:
        raise TooLarge("blob", len(data), max_blob_bytes)
    data = bytes(data)
    return Submission(padded, data, hashlib.sha256(padded + data).digest())


class Mempool:
    """The producer's pending blobs: durable in the store, counted here for limits and metrics.

    Concurrent submissions share one synced write (`Batcher`: a group commit), so under load one
    fsync acknowledges every blob that arrived while the previous one ran. With `linger` (a lone
    producer), a write also waits for more submissions while they keep arriving (2 ms gap, 20 ms
    at most): a write costs ~0.5 ms of the event loop's and the disk's time whatever it carries,
    and without the wait, 32 closed-loop submitters got a producer ~0.8 ms of CPU per blob, with
    it ~0.4 (and 1.8x the blobs per second). A group's replicas do not linger here: the leader's
    replication rounds already do, and a follower syncs what a round brought. Only the event
    loop thread calls these methods; store I/O runs in worker threads.
    """

    def __init__(
        self, store: KeyValueStore, *, max_pending_bytes: int, linger: bool = False
    ) -> None:
        self._store = store
        self._max_pending_bytes = max_pending_bytes
        self._lock = asyncio.Lock()  # a batch's write and a recount, one at a time
        self._appends: Batcher[tuple[Submission, bool], tuple[BlobRecord, bool]] = Batcher(
            self._append,
            weight=lambda entry: len(entry[0].data),
            max_batch_weight=APPEND_BATCH_BYTES,
            linger=LINGER_SECONDS if linger else 0.0,
            quiet=QUIET_SECONDS,
        )
        self.count, self.bytes = blobs.pending_totals(store)

    async def recount(self) -> None:
        """Recount the pending blobs from the store (after a failed block write), one blob in
        memory at a time."""
        async with self._lock:
            self.count, self.bytes = await asyncio.to_thread(blobs.pending_totals, self._store)

    async def submit(self, blob: Submission, *, limit: bool = True) -> tuple[BlobRecord, bool]:
        """(the blob's record, whether it is new). A new blob is durable when this returns.

        Raises `MempoolFull` when the pending bytes would exceed the limit (unless `limit` is
        False: a group's new leader must keep every blob acknowledged before).
        """
        return await self._appends.submit((blob, limit))

    async def submit_many(
        self, submissions: Sequence[Submission], *, limit: bool = True
    ) -> list[tuple[BlobRecord, bool] | BaseException]:
        """`submit` of a batch formed elsewhere (a replication round): one synced write for all
        of them, without waiting for other submissions; each one's outcome, a result or the
        exception for it."""
        if not submissions:
            return []
        return await self._append([(blob, limit) for blob in submissions])

    async def _append(
        self, entries: list[tuple[Submission, bool]]
    ) -> list[tuple[BlobRecord, bool] | BaseException]:
        """One batch, one trip to a worker thread (`_write_new`). The check and the append are
        one step (no other batch runs meanwhile), so two submissions of one blob cannot both
        append it. The counts change here, on the event loop's thread, by what the batch added
        (blocks sealed meanwhile subtract theirs)."""
        async with self._lock:
            outcomes, added = await asyncio.to_thread(self._write_new, entries, self.bytes)
            self.count += sum(1 for outcome in outcomes if _is_new(outcome))
            self.bytes += added
        return outcomes

    def _write_new(
        self, entries: list[tuple[Submission, bool]], pending_bytes: int
    ) -> tuple[list[tuple[BlobRecord, bool] | BaseException], int]:
        """Blobs already known answer their record; the new ones within the limit are appended
        in one synced write. Returns each entry's outcome and the bytes appended."""
        known = blobs.get_blob_records(self._store, [blob.blob_hash for blob, _ in entries])
        outcomes: list[tuple[BlobRecord, bool] | BaseException] = []
        new: list[Submission] = []
        fresh: set[bytes] = set()
        added = 0
        for (blob, limited), record in zip(entries, known, strict=True):
            if record is not None or blob.blob_hash in fresh:
                outcomes.append((record or BlobRecord(BlobState.PENDING), False))
            elif limited and pending_bytes + added + len(blob.data) > self._max_pending_bytes:
                outcomes.append(MempoolFull(pending_bytes + added, self._max_pending_bytes))
            else:
                fresh.add(blob.blob_hash)
                new.append(blob)
                added += len(blob.data)
                outcomes.append((BlobRecord(BlobState.PENDING), True))
        if new:
            blobs.append_pending_many(self._store, [(blob.namespace, blob.data) for blob in new])
        return outcomes, added

    async def pending(self) -> list[PendingBlob]:
        """Every pending blob in arrival order (read from the store, the source of truth)."""
        if self.count == 0:
            return []
        return await asyncio.to_thread(blobs.pending_blobs, self._store)

    async def next_square(
        self,
        max_rows: int,
        eligible: Callable[[PendingBlob], bool] | None = None,
    ) -> list[PendingBlob]:
        """The longest arrival-order prefix of the pending blobs (only the `eligible` ones, if
        given: in a producer group, those a majority holds) that fits a `max_rows` square, read
        from the store without loading the blobs behind it (the mempool may hold several
        squares; the block loop asks every tick)."""
        if self.count == 0:
            return []
        capacity = max_rows * CELLS_PER_ROW
        return await asyncio.to_thread(blobs.pending_blobs_fitting, self._store, capacity, eligible)

    @asynccontextmanager
    async def settling(self) -> AsyncIterator[None]:
        """Hold appends off while pending blobs leave the mempool other than through the block
        loop (a group's followed block): none is appended between reading the pending blobs
        and settling them, so a blob of that block never stays pending."""
        async with self._lock:
            yield

    def removed(self, gone: Sequence[PendingBlob]) -> None:
        """`gone` left the mempool in a stored block."""
        self.count -= len(gone)
        self.bytes -= sum(len(blob.data) for blob in gone)

    async def record(self, blob_hash: bytes) -> BlobRecord | None:
        """The current record of `blob_hash`, or None if it was never acknowledged here."""
        return await asyncio.to_thread(blobs.get_blob_record, self._store, blob_hash)


def _is_new(outcome: tuple[BlobRecord, bool] | BaseException) -> bool:
    return not isinstance(outcome, BaseException) and outcome[1]
