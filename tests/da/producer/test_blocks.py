"""Block production: selection, the header, the one atomic batch, publication order."""

from __future__ import annotations

import asyncio

import pytest

from da.header import ZERO_HASH, TrustRoot, header_hash, verify_signed_header
from da.producer.blocks import chain_tip
from da.producer.mempool import submission_from_request
from da.store import blobs, blocks, headers
from da.store.base import WriteBatch
from da.store.blobs import BlobState
from da.store.memory import MemoryStore
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW, PAYLOAD_BYTES_PER_CELL
from tests.da.producer.conftest import CHAIN_ID, PRODUCER_KEY, MakeProducer

TRUST = TrustRoot(CHAIN_ID, frozenset({PRODUCER_KEY.public}))
NS_A, NS_B = b"\x0a", b"\x0b"


def test_selection_takes_the_arrival_order_prefix_that_fits() -> None:
    store = MemoryStore()
    for cells in (30, 30, 10, 1):
        blobs.append_pending(store, bytes(28) + b"\x01", b"x" * (cells * PAYLOAD_BYTES_PER_CELL))
    seqs = [b.seq for b in blobs.pending_blobs(store)]
    fitting = blobs.pending_blobs_fitting
    assert [b.seq for b in fitting(store, capacity_cells=64)] == seqs[:2]  # 60 of 64 cells
    assert [b.seq for b in fitting(store, capacity_cells=128)] == seqs
    assert fitting(MemoryStore(), capacity_cells=64) == []


async def submit(mempool, data: bytes, namespace: bytes = NS_A) -> bytes:  # type: ignore[no-untyped-def]
    sub = submission_from_request(namespace, data, 1 << 20)
    await mempool.submit(sub)
    return sub.blob_hash


async def test_no_pending_blobs_no_block(make_producer: MakeProducer) -> None:
    producer, _, _ = make_producer(MemoryStore())
    assert await producer.produce_once() is None
    assert producer.tip.height == 0


async def test_a_block_is_stored_signed_and_settles_its_blobs(
    make_producer: MakeProducer, registry
) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    producer, mempool, notifier = make_producer(store)
    first = await submit(mempool, b"b-blob", NS_B)
    second = await submit(mempool, b"a-blob", NS_A)
    block = await producer.produce_once()
    assert block is not None and block.height == 1
    header = block.signed.header
    assert header.prev_hash == ZERO_HASH and header.k == 1
    verify_signed_header(block.signed, TRUST)
    # namespace order in the square: NS_A first although it arrived second
    assert [e.blob_hash for e in header.blobs] == [second, first]
    assert blocks.head_height(store) == 1 and notifier.head == 1
    assert blobs.pending_blobs(store) == [] and mempool.count == 0
    for entry in header.blobs:
        record = blobs.get_blob_record(store, entry.blob_hash)
        assert record is not None and record.state is BlobState.INCLUDED
        assert (record.height, record.start_cell) == (1, entry.start_cell)
    assert registry.get_sample_value("da_blocks_produced_total") == 1
    assert registry.get_sample_value("da_producer_head_height") == 1


async def test_stored_rows_verify_against_the_header(make_producer: MakeProducer) -> None:
    store = MemoryStore()
    producer, mempool, _ = make_producer(store)
    await submit(mempool, b"z" * 5000)
    block = await producer.produce_once()
    assert block is not None
    for row in range(2 * block.signed.header.k):
        got = blocks.get_row(store, 1, row)
        assert got is not None
        cells, proofs = got
        commitments = [block.signed.header.commitments[row]] * CELLS_PER_EXT_ROW
        assert kzg.verify_cells(commitments, range(CELLS_PER_EXT_ROW), cells, proofs)


async def test_blocks_link_and_a_restart_continues_the_chain(make_producer: MakeProducer) -> None:
    store = MemoryStore()
    producer, mempool, _ = make_producer(store)
    await submit(mempool, b"one")
    first = await producer.produce_once()
    await submit(mempool, b"two")
    second = await producer.produce_once()
    assert first is not None and second is not None
    assert second.signed.header.prev_hash == first.signed.hash
    assert chain_tip(store).hash == second.signed.hash
    restarted, mempool, _ = make_producer(store)
    await submit(mempool, b"three")
    third = await restarted.produce_once()
    assert third is not None and third.height == 3
    assert third.signed.header.prev_hash == second.signed.hash


async def test_blobs_that_do_not_fit_wait_for_the_next_block(make_producer: MakeProducer) -> None:
    store = MemoryStore()
    producer, mempool, _ = make_producer(store, max_rows=1)
    big = b"y" * (40 * PAYLOAD_BYTES_PER_CELL)
    await submit(mempool, big, b"\x01")
    late = await submit(mempool, big, b"\x02")
    first = await producer.produce_once()
    assert first is not None and len(first.included) == 1
    assert [b.data for b in blobs.pending_blobs(store)] == [big]
    second = await producer.produce_once()
    assert second is not None and second.signed.header.blobs[0].blob_hash == late


class FailingStore(MemoryStore):
    """A store whose batch writes fail, as a disk error or a crash before the write would."""

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        if any(op.key.startswith(b"B") for op in batch.ops):
            raise OSError("disk on fire")
        super().write(batch, sync=sync)


async def test_a_failed_write_leaves_no_block_and_the_blobs_pending(
    make_producer: MakeProducer,
) -> None:
    store = FailingStore()
    producer, mempool, notifier = make_producer(store)
    blob = await submit(mempool, b"keep me")
    with pytest.raises(OSError):
        await producer.produce_once()
    assert blocks.head_height(store) == 0 and notifier.head == 0
    assert producer.tip.height == 0
    record = blobs.get_blob_record(store, blob)
    assert record is not None and record.state is BlobState.PENDING
    assert len(blobs.pending_blobs(store)) == 1


async def test_header_time_never_goes_back(make_producer: MakeProducer) -> None:
    times = iter([2_000_000_000.0, 1_000_000_000.0])
    producer, mempool, _ = make_producer(MemoryStore(), clock=lambda: next(times))
    await submit(mempool, b"first")
    first = await producer.produce_once()
    await submit(mempool, b"second")
    second = await producer.produce_once()
    assert first is not None and second is not None
    assert second.signed.header.time_ms == first.signed.header.time_ms


class FlakyStore(MemoryStore):
    """Fails the first block write only."""

    failed = False

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        if not self.failed and any(op.key.startswith(b"B") for op in batch.ops):
            self.failed = True
            raise OSError("transient")
        super().write(batch, sync=sync)


async def test_the_loop_retries_after_a_failed_block(make_producer: MakeProducer) -> None:
    store = FlakyStore()
    producer, mempool, notifier = make_producer(store)
    blob = await submit(mempool, b"eventually")
    task = asyncio.create_task(producer.run(0.05))
    try:
        for _ in range(200):
            if notifier.head == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert store.failed and notifier.head == 1
    record = blobs.get_blob_record(store, blob)
    assert record is not None and record.state is BlobState.INCLUDED


class WriteThenFail(MemoryStore):
    """The first block write lands but reports failure (a sync error after the WAL write)."""

    failed = False

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        super().write(batch, sync=sync)
        if not self.failed and any(op.key.startswith(b"B") for op in batch.ops):
            self.failed = True
            raise OSError("fsync failed")


async def test_a_block_that_landed_despite_an_error_is_never_overwritten(
    make_producer: MakeProducer,
) -> None:
    store = WriteThenFail()
    producer, mempool, _ = make_producer(store)
    await submit(mempool, b"landed")
    with pytest.raises(OSError):
        await producer.produce_once()
    stored = headers.get_signed_header(store, 1)
    await producer.resync()  # what the loop does after a failure
    assert producer.tip.height == 1 and mempool.count == 0
    await submit(mempool, b"next")
    block = await producer.produce_once()
    assert block is not None and block.height == 2
    assert stored is not None and headers.get_signed_header(store, 1) == stored
    assert block.signed.header.prev_hash == header_hash(stored[0])


async def test_blocks_outside_the_retention_window_are_pruned(
    make_producer: MakeProducer,
) -> None:
    """PROTOCOL.md §11: a producer keeps `retention_blocks` blocks, like a storage node; its chain
    still grows from the newest (the tip is never pruned)."""
    store = MemoryStore()
    producer, mempool, _ = make_producer(store, retention_blocks=2)
    for i in range(4):
        await submit(mempool, b"blob %d" % i)
        assert (await producer.produce_once()) is not None
    assert list(blocks.stored_heights(store)) == [3, 4]
    assert producer.tip.height == 4
