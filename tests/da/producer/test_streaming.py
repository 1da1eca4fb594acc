"""The block loop streams rows to the store as they are encoded (issue 6): the block it stores is
byte for byte the one-batch block, and a failure, a cancellation or a crash mid-block leaves no
visible block, no rows behind (after cleanup) and the blobs pending."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest

from da import serving
from da.errors import UnknownHeight
from da.metrics import ProducerMetrics
from da.producer.blocks import BlockProducer, RowWriter, placements_for
from da.producer.encoder import Encoder
from da.producer.mempool import Mempool, submission_from_request
from da.serving import HeadNotifier
from da.store import blobs, blocks, headers, schema
from da.store.base import KeyValueStore, Put, WriteBatch
from da.store.blobs import BlobState
from da.store.memory import MemoryStore
from da.v1 import da_pb2 as pb
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW, PAYLOAD_BYTES_PER_CELL
from erasure.parallel import RowBatch, SquareSummary
from erasure.square import encode_square
from tests.da.producer.conftest import MEMPOOL_BYTES, ExecutorMaker, build_producer

Make = Callable[..., tuple[BlockProducer, Mempool, HeadNotifier, Encoder]]
# Blob sizes in cells per square size k (max_rows 4): k = 1, 2 and 4.
SIZES = {1: [1, 3], 2: [40, 30], 4: [100, 40]}


def thread_pool() -> Executor:
    return ThreadPoolExecutor(2)


@pytest.fixture
def make(metrics: ProducerMetrics) -> Iterator[Make]:
    """`make(store, executor=thread_pool, max_rows=4)` -> (producer, mempool, notifier, encoder);
    every encoder made is shut down at the end."""
    encoders: list[Encoder] = []

    def build(
        store: KeyValueStore, *, executor: ExecutorMaker = thread_pool, max_rows: int = 4
    ) -> tuple[BlockProducer, Mempool, HeadNotifier, Encoder]:
        parts = build_producer(metrics, store, executor=executor, max_rows=max_rows)
        encoders.append(parts[3])
        return parts

    yield build
    for encoder in encoders:
        encoder.shutdown()


async def submit_square(mempool: Mempool, k: int) -> list[bytes]:
    """Pending blobs that need a k-row square (arrival order differs from namespace order)."""
    rng = random.Random(k)
    hashes = []
    for i, cells in enumerate(SIZES[k]):
        data = rng.randbytes(cells * PAYLOAD_BYTES_PER_CELL - 7)
        sub = submission_from_request(bytes([9 - i]), data, MEMPOOL_BYTES)
        await mempool.submit(sub)
        hashes.append(sub.blob_hash)
    return hashes


def contents(store: KeyValueStore, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
    return list(store.iterate(prefix))


def copy_of(store: KeyValueStore) -> MemoryStore:
    """What a restarted process finds: every key that was written."""
    copy = MemoryStore()
    for key, value in contents(store):
        copy.put(key, value)
    return copy


def assert_nothing_visible(store: KeyValueStore, pending: list[bytes]) -> None:
    assert blocks.head_height(store) == 0 and not blocks.has_block(store, 1)
    assert blocks.block_row_count(store, 1) is None and headers.get_signed_header(store, 1) is None
    for blob_hash in pending:
        record = blobs.get_blob_record(store, blob_hash)
        assert record is not None and record.state is BlobState.PENDING
    assert len(blobs.pending_blobs(store)) == len(pending)


@pytest.mark.parametrize("k", [1, 2, 4])
async def test_streamed_block_equals_the_one_batch_block(make: Make, k: int) -> None:
    store = MemoryStore()
    producer, mempool, notifier, _ = make(store)
    await submit_square(mempool, k)
    reference = copy_of(store)
    block = await producer.produce_once()
    assert block is not None and block.signed.header.k == k and notifier.head == 1
    # What the one-batch producer stored: the whole square, header, marker, settled blobs.
    square = encode_square([(b.namespace, b.data) for b in block.included], max_rows=4)
    assert block.summary == SquareSummary(square.k, square.commitments, square.blob_index)
    rows = [(square.row_cells(r), square.row_proofs(r)) for r in range(2 * k)]
    batch = WriteBatch()
    signed = block.signed
    blocks.add_block_to_batch(batch, 1, signed.raw, signed.signature, rows)
    blobs.include_blobs(batch, 1, placements_for(square, block.included))
    reference.write(batch, sync=True)
    assert contents(store) == contents(reference)


class CountingStore(MemoryStore):
    """Counts row writes; `fail_at` (1-based) raises OSError on that row write, `crash` makes it
    and every later write fail, as a process that died there."""

    def __init__(self, fail_at: int = 0, *, crash: bool = False) -> None:
        super().__init__()
        self.row_writes, self.fail_at, self.crash, self.dead = 0, fail_at, crash, False
        self.first_row = threading.Event()

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        if self.dead:
            raise OSError("the process is gone")
        if any(isinstance(op, Put) and op.key.startswith(schema.ROW) for op in batch.ops):
            self.row_writes += 1
            self.first_row.set()
            if self.row_writes == self.fail_at:
                self.dead = self.crash
                raise OSError("disk full")
        super().write(batch, sync=sync)


async def test_a_failed_row_write_leaves_no_block_and_no_rows(make: Make) -> None:
    store = CountingStore(fail_at=3)
    producer, mempool, notifier, _ = make(store)
    pending = await submit_square(mempool, 2)
    with pytest.raises(OSError, match="disk full"):
        await producer.produce_once()
    assert store.row_writes == 3  # two row batches had landed
    assert_nothing_visible(store, pending)
    assert contents(store, schema.ROW) == [] and notifier.head == 0 and producer.tip.height == 0
    block = await producer.produce_once()  # the next attempt succeeds
    assert block is not None and block.height == 1 and blocks.head_height(store) == 1


class FailingSeal(MemoryStore):
    """Rows land, the final batch (the one with the block marker) fails."""

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        if any(isinstance(op, Put) and op.key.startswith(schema.BLOCK) for op in batch.ops):
            raise OSError("fsync failed")
        super().write(batch, sync=sync)


async def test_a_failed_seal_deletes_the_streamed_rows(make: Make) -> None:
    store = FailingSeal()
    producer, mempool, _, _ = make(store)
    pending = await submit_square(mempool, 1)
    with pytest.raises(OSError, match="fsync"):
        await producer.produce_once()
    assert_nothing_visible(store, pending)
    assert contents(store, schema.ROW) == []


async def test_a_crash_mid_block_hides_the_rows_until_a_restart_deletes_them(make: Make) -> None:
    store = CountingStore(fail_at=3, crash=True)
    producer, mempool, _, _ = make(store)
    pending = await submit_square(mempool, 2)
    with pytest.raises(OSError):
        await producer.produce_once()  # its cleanup failed too: the process is gone
    survived = copy_of(store)
    assert len(contents(survived, schema.ROW)) == 2  # orphans...
    assert_nothing_visible(survived, pending)  # ...that make no block appear
    with pytest.raises(UnknownHeight):
        await serving.ShareServicer(survived).GetRow(pb.GetRowRequest(height=1, row=0), None)
    with pytest.raises(UnknownHeight):
        await serving.ShareServicer(survived).GetSamples(
            pb.GetSamplesRequest(height=1, coords=[pb.CellCoord(row=0, col=0)]), None
        )
    for height in (0, 1):
        with pytest.raises(UnknownHeight):
            await serving.HeaderServicer(serving.StoredHeaders(survived), HeadNotifier()).GetHeader(
                pb.GetHeaderRequest(height=height), None
            )
    # Restart with a smaller square: the orphans go at start, the retry has k = 1.
    restarted, _, _, _ = make(survived, max_rows=1)
    assert contents(survived, schema.ROW) == []
    block = await restarted.produce_once()
    assert block is not None and block.height == 1 and block.signed.header.k == 1
    assert [key for key, _ in contents(survived, schema.ROW)] == [
        schema.row_key(1, 0),
        schema.row_key(1, 1),
    ]
    check_rows_verify(survived, block.signed.header.commitments)


def check_rows_verify(store: KeyValueStore, commitments: tuple[bytes, ...]) -> None:
    for row, commitment in enumerate(commitments):
        got = blocks.get_row(store, 1, row)
        assert got is not None
        cols = range(CELLS_PER_EXT_ROW)
        assert kzg.verify_cells([commitment] * CELLS_PER_EXT_ROW, cols, got[0], got[1])


def fake_rows(first_row: int, count: int) -> RowBatch:
    cells = tuple(tuple(bytes([r]) * 2048 for _ in range(128)) for r in range(count))
    proofs = tuple(tuple(bytes([r]) * 48 for _ in range(128)) for r in range(count))
    return RowBatch(first_row, cells, proofs)


async def test_a_retry_at_the_same_height_first_deletes_a_larger_attempt(make: Make) -> None:
    store = MemoryStore()
    producer, mempool, _, _ = make(store)
    RowWriter(store, 1)(fake_rows(0, 8))  # what an attempt with k = 4 left behind
    await submit_square(mempool, 1)
    block = await producer.produce_once()
    assert block is not None and block.signed.header.k == 1
    assert len(contents(store, schema.ROW)) == 2
    check_rows_verify(store, block.signed.header.commitments)


async def test_a_stale_tip_never_writes_rows_into_a_stored_block(make: Make) -> None:
    store = MemoryStore()
    first, mempool, _, _ = make(store)
    stale, stale_mempool, _, _ = make(store)  # built before block 1: believes the head is 0
    await submit_square(mempool, 1)
    assert await first.produce_once() is not None
    await submit_square(stale_mempool, 2)
    stored = contents(store)
    with pytest.raises(RuntimeError, match="already stored"):
        await stale.produce_once()
    assert contents(store) == stored


class HeldRows(CountingStore):
    """Every row write after the first waits until `release` is set, so a cancellation lands in
    the middle of the stream (no timing involved)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        rows = any(isinstance(op, Put) and op.key.startswith(schema.ROW) for op in batch.ops)
        if rows and self.first_row.is_set() and not self.release.wait(60):
            raise TimeoutError("the test never released the row writes")
        super().write(batch, sync=sync)


async def test_cancelling_mid_block_stops_the_stream_and_deletes_its_rows(make: Make) -> None:
    store = HeldRows()
    producer, mempool, _, encoder = make(store)
    pending = await submit_square(mempool, 2)
    task = asyncio.create_task(producer.produce_once())
    assert await asyncio.to_thread(store.first_row.wait, 60)
    task.cancel()
    await asyncio.sleep(0)  # the cancellation is delivered before any further row is written
    store.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    written = store.row_writes
    assert 1 <= written < 4
    assert_nothing_visible(store, pending)
    assert contents(store, schema.ROW) == []
    # Drain every worker: whatever was still computing is done, and wrote nothing.
    await asyncio.to_thread(encoder.shutdown)
    assert store.row_writes == written  # the encode really stopped
    block = await producer.produce_once()
    assert block is not None and block.height == 1


class BreaksAfter(Executor):
    """A pool that runs `ok` batches, then refuses work as a pool whose worker died."""

    def __init__(self, ok: int) -> None:
        self._inner = ThreadPoolExecutor(1)
        self._left = ok
        self.shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._left <= 0:
            raise BrokenExecutor("a worker died")
        self._left -= 1
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shut_down = True
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


async def test_a_pool_breaking_mid_block_is_replaced_and_leaves_no_rows(make: Make) -> None:
    broken = BreaksAfter(ok=5)  # k = 4, one row per batch: 4 in flight, so rows land first
    made: list[Executor] = []

    def maker() -> Executor:
        made.append(broken if not made else thread_pool())
        return made[-1]

    store = CountingStore()
    producer, mempool, _, _ = make(store, executor=maker)
    pending = await submit_square(mempool, 4)
    with pytest.raises(BrokenExecutor):
        await producer.produce_once()
    assert store.row_writes >= 1 and broken.shut_down and len(made) == 2
    assert_nothing_visible(store, pending)
    assert contents(store, schema.ROW) == []
    block = await producer.produce_once()
    assert block is not None and block.signed.header.k == 4
