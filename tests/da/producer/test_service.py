"""The producer's BlobService handler: each SubmitBlob outcome counted under its own label."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from da.metrics import SUBMISSION_RESULTS, ProducerMetrics
from da.producer.errors import MempoolFull
from da.producer.mempool import Mempool
from da.producer.service import ProducerBlobServicer
from da.store.memory import MemoryStore
from da.v1 import da_pb2 as pb


async def test_a_full_mempool_is_counted_as_mempool_full_not_as_rate_limited() -> None:
    registry = CollectorRegistry()
    store = MemoryStore()
    servicer = ProducerBlobServicer(
        store, Mempool(store, max_pending_bytes=10), ProducerMetrics(registry), max_blob_bytes=100
    )
    await servicer.SubmitBlob(pb.SubmitBlobRequest(namespace=b"\x01", data=b"x" * 8), None)
    with pytest.raises(MempoolFull):
        await servicer.SubmitBlob(pb.SubmitBlobRequest(namespace=b"\x01", data=b"yyy"), None)
    counts = {
        result: registry.get_sample_value("da_blob_submissions_total", {"result": result})
        for result in SUBMISSION_RESULTS
    }
    assert counts == {result: 0.0 for result in SUBMISSION_RESULTS} | {
        "accepted": 1.0,
        "mempool_full": 1.0,
    }
