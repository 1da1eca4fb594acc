"""Blob intake: checking a submission at the edge and the durable mempool it lands in.

A blob is acknowledged only after `blobs.append_pending` (one synced RocksDB batch: the data, its
PENDING record, the next sequence number) returned, so an acknowledged blob survives kill -9.
The same blob (same `blob_hash`) submitted again is the same blob: the answer is its current
record and nothing is stored twice. The check and the append run under one lock, so two
concurrent submissions of one blob cannot both append it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from da.errors import BadNamespace, InvalidRequest, TooLarge
from da.producer.errors import MempoolFull
from da.store import blobs
from da.store.base import KeyValueStore
from da.store.blobs import BlobRecord, BlobState, PendingBlob
from erasure.constants import CELLS_PER_ROW
from erasure.errors import InvalidNamespace
from erasure.layout import normalize_namespace

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

    Only the event loop thread calls these methods; store I/O runs in worker threads.
    """

    def __init__(self, store: KeyValueStore, *, max_pending_bytes: int) -> None:
        self._store = store
        self._max_pending_bytes = max_pending_bytes
        self._lock = asyncio.Lock()
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
        async with self._lock:
            known = await asyncio.to_thread(blobs.get_blob_record, self._store, blob.blob_hash)
            if known is not None:
                return known, False
            if limit and self.bytes + len(blob.data) > self._max_pending_bytes:
                raise MempoolFull(self.bytes, self._max_pending_bytes)
            await asyncio.to_thread(blobs.append_pending, self._store, blob.namespace, blob.data)
            self.count += 1
            self.bytes += len(blob.data)
        return BlobRecord(BlobState.PENDING), True

    async def pending(self) -> list[PendingBlob]:
        """Every pending blob in arrival order (read from the store, the source of truth)."""
        if self.count == 0:
            return []
        return await asyncio.to_thread(blobs.pending_blobs, self._store)

    async def next_square(
        self,
        max_rows: int,
        eligible: Callable[[list[PendingBlob]], list[PendingBlob]] | None = None,
    ) -> list[PendingBlob]:
        """The longest arrival-order prefix of the pending blobs that fits a `max_rows` square,
        read from the store without loading the blobs behind it (the mempool may hold several
        squares; the block loop asks every tick). With `eligible` (a producer group: only blobs
        a majority holds) the pending blobs are filtered first, so all of them are read."""
        if self.count == 0:
            return []
        capacity = max_rows * CELLS_PER_ROW
        if eligible is None:
            return await asyncio.to_thread(blobs.pending_blobs_fitting, self._store, capacity)
        pending = await asyncio.to_thread(blobs.pending_blobs, self._store)
        return blobs.fitting_prefix(eligible(pending), capacity)

    def removed(self, gone: Sequence[PendingBlob]) -> None:
        """`gone` left the mempool in a stored block."""
        self.count -= len(gone)
        self.bytes -= sum(len(blob.data) for blob in gone)

    async def record(self, blob_hash: bytes) -> BlobRecord | None:
        """The current record of `blob_hash`, or None if it was never acknowledged here."""
        return await asyncio.to_thread(blobs.get_blob_record, self._store, blob_hash)
