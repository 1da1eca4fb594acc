"""The producer's durable mempool and blob records.

Durability contract (PROTOCOL.md §14) and how to keep it:
- `append_pending` (`append_pending_many`: several blobs, one fsync) writes the blob, its PENDING
  record and the next sequence number in one synced batch: answer SubmitBlob only after it
  returns.
- To produce a block, store its rows (invisible until sealed), then fill ONE `WriteBatch` with
  `blocks.add_block_seal_to_batch(...)` (or `add_block_to_batch(...)` with every row) and
  `include_blobs(...)` (and `settle_pending(...)` for blobs dropped as REJECTED), write it with
  `sync=True`, and only then publish the header. Either the block and the removal of its blobs
  from the mempool are both durable, or neither is: after a crash every acknowledged blob is
  still pending or included, exactly once.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from da.store import schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError
from erasure.constants import NAMESPACE_BYTES
from erasure.layout import blob_hash as compute_blob_hash
from erasure.layout import cells_for_length


class BlobState(IntEnum):
    """Lifecycle of a submitted blob; numbers match `da.v1.BlobState`."""

    PENDING = 1
    INCLUDED = 2
    CERTIFIED = 3
    REJECTED = 4


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """Status of one blob by hash: `height` and `start_cell` are meaningful once INCLUDED or
    CERTIFIED, `reason` once REJECTED."""

    state: BlobState
    height: int = 0
    start_cell: int = 0
    reason: str = ""


class PendingBlob(NamedTuple):
    """An acknowledged blob not yet in a stored block; `seq` is its arrival order."""

    seq: int
    namespace: bytes
    data: bytes


class Placement(NamedTuple):
    """Where a pending blob landed in a block being stored."""

    seq: int
    blob_hash: bytes
    start_cell: int


_RECORD = struct.Struct(">BQI")
_append_lock = threading.Lock()  # sequence numbers are read-modify-write


def append_pending(store: KeyValueStore, namespace: bytes, data: bytes) -> int:
    """Durably (synced) add a blob to the mempool with a PENDING record; returns its sequence
    number. `namespace` is the normalised 29 bytes. Duplicate checks are the caller's."""
    return append_pending_many(store, [(namespace, data)])[0]


def append_pending_many(store: KeyValueStore, blobs: Sequence[tuple[bytes, bytes]]) -> list[int]:
    """`append_pending` of several (namespace, data) blobs, in order, in ONE synced batch (a
    group commit: one fsync for all); returns their sequence numbers."""
    for namespace, _data in blobs:
        if len(namespace) != NAMESPACE_BYTES:
            raise ValueError(f"namespace must be normalised to {NAMESPACE_BYTES} bytes")
    with _append_lock:
        first = next_sequence(store)
        batch = WriteBatch()
        for seq, (namespace, data) in enumerate(blobs, start=first):
            batch.put(schema.pending_blob_key(seq), bytes(namespace) + bytes(data))
            add_blob_record_to_batch(
                batch, compute_blob_hash(namespace, data), BlobRecord(BlobState.PENDING)
            )
        batch.put(schema.NEXT_BLOB_SEQ_KEY, schema.u64(first + len(blobs)))
        store.write(batch, sync=True)
    return list(range(first, first + len(blobs)))


def next_sequence(store: KeyValueStore) -> int:
    """The sequence number the next appended blob gets (starts at 0, never reused)."""
    raw = store.get(schema.NEXT_BLOB_SEQ_KEY)
    return 0 if raw is None else schema.read_u64(raw)


def pending_blobs(store: KeyValueStore) -> list[PendingBlob]:
    """Every pending blob, in arrival order."""
    return [_pending_blob(key, raw) for key, raw in store.iterate(schema.PENDING_BLOB)]


def find_pending(store: KeyValueStore, blob_hashes: Iterable[bytes]) -> dict[bytes, PendingBlob]:
    """The pending blobs among `blob_hashes`, by hash, read in arrival order only until every one
    was found: a block's blobs sit near the front of the mempool, which may hold several squares
    behind them (a group follower settles each committed block this way)."""
    wanted = set(blob_hashes)
    found: dict[bytes, PendingBlob] = {}
    if not wanted:
        return found
    for key, raw in store.iterate(schema.PENDING_BLOB):
        blob = _pending_blob(key, raw)
        blob_hash = compute_blob_hash(blob.namespace, blob.data)
        if blob_hash in wanted:
            found[blob_hash] = blob
            if len(found) == len(wanted):
                break
    return found


def pending_totals(store: KeyValueStore) -> tuple[int, int]:
    """(count, data bytes) of the pending blobs, read one at a time: none is kept, so counting
    a mempool of several squares (k = 512: up to 8 x 64 MB) holds one blob at most."""
    count = size = 0
    for _key, raw in store.iterate(schema.PENDING_BLOB):
        count += 1
        size += len(raw) - NAMESPACE_BYTES
    return count, size


def _pending_blob(key: bytes, raw: bytes) -> PendingBlob:
    seq = schema.seq_from_pending_key(key)
    return PendingBlob(seq, raw[:NAMESPACE_BYTES], raw[NAMESPACE_BYTES:])


def pending_blobs_fitting(
    store: KeyValueStore,
    capacity_cells: int,
    keep: Callable[[PendingBlob], bool] | None = None,
) -> list[PendingBlob]:
    """`fitting_prefix` of the pending blobs (only those `keep` accepts, if given), read lazily:
    the blobs behind the prefix are not loaded (the mempool may hold several squares)."""
    pending: Iterable[PendingBlob] = (
        _pending_blob(key, raw) for key, raw in store.iterate(schema.PENDING_BLOB)
    )
    if keep is not None:
        pending = filter(keep, pending)
    return fitting_prefix(pending, capacity_cells)


def fitting_prefix(blobs: Iterable[PendingBlob], capacity_cells: int) -> list[PendingBlob]:
    """The longest arrival-order prefix of `blobs` whose cells (each blob from a new cell) fit
    `capacity_cells`. Stopping at the first blob that does not fit (rather than skipping it)
    keeps arrival order: a large blob is never starved by a stream of small ones behind it."""
    chosen: list[PendingBlob] = []
    used = 0
    for blob in blobs:
        cells = cells_for_length(len(blob.data))
        if used + cells > capacity_cells:
            break
        chosen.append(blob)
        used += cells
    return chosen


def settle_pending(batch: WriteBatch, seq: int, blob_hash: bytes, record: BlobRecord) -> None:
    """Queue: pending blob `seq` leaves the mempool and `blob_hash` gets `record`."""
    batch.delete(schema.pending_blob_key(seq))
    add_blob_record_to_batch(batch, blob_hash, record)


def include_blobs(batch: WriteBatch, height: int, placements: Iterable[Placement]) -> None:
    """Queue INCLUDED records at `height` for blobs leaving the mempool; write it in the same
    batch as that block's `add_block_to_batch` ops."""
    for seq, blob_hash, start_cell in placements:
        settle_pending(batch, seq, blob_hash, BlobRecord(BlobState.INCLUDED, height, start_cell))


def add_blob_record_to_batch(batch: WriteBatch, blob_hash: bytes, record: BlobRecord) -> None:
    """Queue `record` as the status of `blob_hash` (replacing any previous one)."""
    batch.put(schema.blob_record_key(blob_hash), encode_blob_record(record))


def get_blob_record(store: KeyValueStore, blob_hash: bytes) -> BlobRecord | None:
    """The status of `blob_hash`, or None if never acknowledged."""
    key = schema.blob_record_key(blob_hash)
    raw = store.get(key)
    return None if raw is None else decode_blob_record(key, raw)


def get_blob_records(store: KeyValueStore, blob_hashes: Iterable[bytes]) -> list[BlobRecord | None]:
    """`get_blob_record` of each hash, in order (one worker-thread hop for a batch)."""
    return [get_blob_record(store, blob_hash) for blob_hash in blob_hashes]


def encode_blob_record(record: BlobRecord) -> bytes:
    """state:u8 height:u64 start_cell:u32 reason (UTF-8)."""
    return _RECORD.pack(record.state, record.height, record.start_cell) + record.reason.encode()


def decode_blob_record(key: bytes, raw: bytes) -> BlobRecord:
    """Inverse of `encode_blob_record`; raises CorruptValueError on malformed bytes."""
    try:
        state, height, start_cell = _RECORD.unpack_from(raw)
        return BlobRecord(BlobState(state), height, start_cell, raw[_RECORD.size :].decode())
    except (struct.error, ValueError) as e:
        raise CorruptValueError(key, f"blob record: {e}") from e
