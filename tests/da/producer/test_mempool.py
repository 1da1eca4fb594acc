"""Checking submissions at the edge, and the durable, deduplicating mempool."""

from __future__ import annotations

import asyncio

import pytest

from da.errors import BadNamespace, InvalidRequest, TooLarge
from da.producer.errors import MempoolFull
from da.producer.mempool import Mempool, Submission, submission_from_request
from da.store import blobs
from da.store.blobs import BlobState
from da.store.memory import MemoryStore
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
