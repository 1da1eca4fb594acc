"""Checking submissions at the edge, and the durable, deduplicating mempool."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import pytest

from da.errors import BadNamespace, InvalidRequest, TooLarge
from da.producer.errors import MempoolFull
from da.producer.mempool import Mempool, Submission, submission_from_request
from da.store import blobs
from da.store.base import WriteBatch
from da.store.blobs import BlobState
from da.store.memory import MemoryStore
from da.store.rocks import RocksStore
from erasure.constants import CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL
from erasure.layout import blob_hash

LIMIT = 1000


def blob(data: bytes = b"payload", namespace: bytes = b"\x01") -> Submission:
    return submission_from_request(namespace, data, LIMIT)


def test_submission_pads_the_namespace_and_hashes_like_a_submitter() -> None:
    sub = blob(b"hello", b"\x01\x02")
    assert sub.namespace == bytes(27) + b"\x01\x02"
    assert sub.blob_hash == blob_hash(b"\x01\x02", b"hello")


@pytest.mark.parametrize("namespace", [b"", b"\x01" * 30, bytes(29), b"\x00", b"\xff" * 29])
def test_bad_or_reserved_namespaces_are_refused(namespace: bytes) -> None:
    with pytest.raises(BadNamespace):
        submission_from_request(namespace, b"data", LIMIT)


def test_empty_data_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        submission_from_request(b"\x01", b"", LIMIT)


def test_size_limit_is_inclusive() -> None:
    assert len(submission_from_request(b"\x01", b"x" * LIMIT, LIMIT).data) == LIMIT
    with pytest.raises(TooLarge) as caught:
        submission_from_request(b"\x01", b"x" * (LIMIT + 1), LIMIT)
    assert (caught.value.size, caught.value.limit) == (LIMIT + 1, LIMIT)


async def test_a_new_blob_is_durable_and_pending() -> None:
    store = MemoryStore()
    mempool = Mempool(store, max_pending_bytes=LIMIT)
    record, new = await mempool.submit(blob(b"one"))
    assert new and record.state is BlobState.PENDING
    assert [p.data for p in blobs.pending_blobs(store)] == [b"one"]
    assert (mempool.count, mempool.bytes) == (1, 3)
    assert (await mempool.record(blob(b"one").blob_hash)) == record


async def test_the_same_blob_twice_is_one_blob() -> None:
    store = MemoryStore()
    mempool = Mempool(store, max_pending_bytes=LIMIT)
    await mempool.submit(blob(b"same"))
    record, new = await mempool.submit(blob(b"same"))
    assert not new and record.state is BlobState.PENDING
    assert len(blobs.pending_blobs(store)) == 1


async def test_concurrent_duplicates_are_appended_once() -> None:
    store = MemoryStore()
    mempool = Mempool(store, max_pending_bytes=LIMIT)
    results = await asyncio.gather(*(mempool.submit(blob(b"race")) for _ in range(8)))
    assert sum(new for _, new in results) == 1
    assert len(blobs.pending_blobs(store)) == 1


async def test_a_full_mempool_refuses_new_blobs_but_answers_known_ones() -> None:
    mempool = Mempool(MemoryStore(), max_pending_bytes=10)
    await mempool.submit(blob(b"x" * 8))
    with pytest.raises(MempoolFull):
        await mempool.submit(blob(b"yyy"))
    _, new = await mempool.submit(blob(b"x" * 8))
    assert not new


async def test_counters_are_rebuilt_from_the_store() -> None:
    store = MemoryStore()
    first = Mempool(store, max_pending_bytes=LIMIT)
    await first.submit(blob(b"a"))
    await first.submit(blob(b"bb"))
    again = Mempool(store, max_pending_bytes=LIMIT)
    assert (again.count, again.bytes) == (2, 3)
    assert [p.data for p in await again.pending()] == [b"a", b"bb"]


class CountingStore(MemoryStore):
    """Counts synced writes (each an fsync on disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.synced = 0

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        self.synced += sync
        super().write(batch, sync=sync)


async def test_concurrent_submissions_share_one_synced_write() -> None:
    store = CountingStore()
    mempool = Mempool(store, max_pending_bytes=LIMIT)
    first = asyncio.ensure_future(mempool.submit(blob(b"first")))
    await asyncio.sleep(0)  # its write is under way: the next ones wait for it, then go together
    rest = await asyncio.gather(*(mempool.submit(blob(b"%d" % n)) for n in range(10)))
    assert (await first)[1] and all(new for _, new in rest)
    assert store.synced == 2
    expected = [b"first"] + [b"%d" % n for n in range(10)]
    assert [p.data for p in blobs.pending_blobs(store)] == expected
    assert (mempool.count, mempool.bytes) == (11, 15)


async def test_one_batch_refuses_only_what_overflows_the_limit() -> None:
    mempool = Mempool(MemoryStore(), max_pending_bytes=10)
    outcomes = await mempool.submit_many([blob(b"x" * 6), blob(b"y" * 6), blob(b"z" * 4)])
    assert isinstance(outcomes[1], MempoolFull)
    assert [o[1] for o in (outcomes[0], outcomes[2])] == [True, True]  # type: ignore[index]
    assert (mempool.count, mempool.bytes) == (2, 10)


async def test_memory_does_not_grow_with_the_pending_blobs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Opening a mempool and choosing the next square hold about one square of blobs however
    many squares are pending (at k = 512 the mempool may hold 8 x 64 MB): the counts are read
    one blob at a time and the blobs behind the chosen prefix are never loaded."""
    k, blob_bytes = 2, 32 * PAYLOAD_BYTES_PER_CELL  # 4 blobs fill a k = 2 square
    square_bytes = 4 * blob_bytes
    peaks = {}
    for squares in (2, 16):
        store = RocksStore(tmp_path / f"db{squares}")
        try:
            for i in range(4 * squares):
                data = i.to_bytes(4, "big") * (blob_bytes // 4)
                blobs.append_pending(store, bytes(28) + b"\x01", data)
            tracemalloc.start()
            mempool = Mempool(store, max_pending_bytes=1 << 30)
            chosen = await mempool.next_square(k)
            peaks[squares] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert (mempool.count, mempool.bytes) == (4 * squares, 4 * squares * blob_bytes)
            assert len(chosen) == 4  # exactly one square
            assert sum(len(b.data) for b in chosen) <= k * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL
            await mempool.recount()
            assert mempool.count == 4 * squares
        finally:
            store.close()
    assert peaks[16] < 2 * square_bytes, peaks  # 16 squares pending, about one held
    assert peaks[16] < 1.25 * peaks[2], peaks  # and no more than with 2 pending


class GatedStore(MemoryStore):
    """A store whose writes wait for `gate` (a synced write still under way)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        assert self.gate.wait(10)
        super().write(batch, sync=sync)


async def test_blobs_leaving_during_an_append_are_not_counted_back() -> None:
    store = GatedStore()
    mempool = Mempool(store, max_pending_bytes=LIMIT)
    await mempool.submit(blob(b"a" * 5))
    first = await mempool.pending()
    store.gate.clear()
    second = asyncio.ensure_future(mempool.submit(blob(b"b" * 7)))
    await asyncio.sleep(0.05)  # its synced write waits in a worker thread
    mempool.removed(first)  # meanwhile a block took the first blob
    store.gate.set()
    await second
    assert (mempool.count, mempool.bytes) == (1, 7)
