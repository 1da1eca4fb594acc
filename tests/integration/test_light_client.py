"""Light client against honest storage nodes (real processes): every height becomes AVAILABLE
with the formula's confidence, and a restart resumes without resampling concluded heights."""

from __future__ import annotations

import itertools
import re
import threading
import time

import grpc
import pytest

from da.header import signed_header_from_bytes
from da.sampling import sample_confidence, samples_for_confidence
from da.v1 import da_pb2, da_pb2_grpc
from tests.integration.harness import Cluster, DaProcess, metric_value, scrape, wait_until

VERDICT = re.compile(r"height (\d+) (AVAILABLE|UNAVAILABLE): k=(\d+) samples=(\d+)/(\d+)")
BLOB_INTERVAL_SECONDS = 1.2  # the producer makes a block only when blobs are pending


def fed_producer(cluster: Cluster) -> DaProcess:
    """Start the producer, and a thread submitting a small distinct blob every
    BLOB_INTERVAL_SECONDS (about one block each) for as long as the producer lives."""
    producer = cluster.producer()

    def feed() -> None:
        with grpc.insecure_channel(producer.listen) as channel:
            stub = da_pb2_grpc.BlobServiceStub(channel)
            for n in itertools.count():
                if not producer.alive():
                    return
                request = da_pb2.SubmitBlobRequest(namespace=b"light", data=f"blob {n}".encode())
                try:
                    stub.SubmitBlob(request, timeout=5)
                except grpc.RpcError:
                    pass  # busy or stopping; the next one will do
                time.sleep(BLOB_INTERVAL_SECONDS)

    threading.Thread(target=feed, daemon=True).start()
    return producer


def availability(light: DaProcess, height: int) -> da_pb2.AvailabilityResponse | None:
    """The light client's answer for `height`, or None if it has not seen it (NOT_FOUND)."""
    with grpc.insecure_channel(light.listen) as channel:
        stub = da_pb2_grpc.SamplingServiceStub(channel)
        try:
            return stub.GetAvailability(da_pb2.GetAvailabilityRequest(height=height), timeout=5)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise


def header_k(node: DaProcess, height: int) -> int:
    with grpc.insecure_channel(node.listen) as channel:
        stub = da_pb2_grpc.HeaderServiceStub(channel)
        reply = stub.GetHeader(da_pb2.GetHeaderRequest(height=height), timeout=5)
    return signed_header_from_bytes(reply.header, reply.signature).header.k


def verdicts(text: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in VERDICT.finditer(text)}


def wait_status(light: DaProcess, height: int, status: int, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    def done():  # type: ignore[no-untyped-def]
        got = availability(light, height)
        return got if got is not None and got.status == status else None

    return wait_until(done, timeout=timeout, what=f"height {height} status {status}")


@pytest.mark.slow
def test_honest_nodes_give_availability_and_restart_resumes(cluster: Cluster) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    light = cluster.light_client("light", [node.listen])
    for height in (1, 2, 3):
        got = wait_status(light, height, da_pb2.AVAILABLE)
        k = header_k(node, height)
        s = samples_for_confidence(k, 0.99)
        assert got.samples == s
        assert got.confidence == pytest.approx(sample_confidence(k, s), abs=0)
    text = scrape(light.metrics_port)
    assert metric_value(text, "da_light_headers_sampled_total", {"result": "available"}) >= 3
    assert (metric_value(text, "da_light_head_height") or 0) >= 3
    assert metric_value(text, "da_light_samples_total", {"result": "bad_proof"}) == 0

    assert light.stop() == 0
    before = verdicts(light.log_path.read_text())
    assert before and set(before.values()) == {"AVAILABLE"}
    offset = len(light.log_path.read_text())
    again = cluster.light_client("light", [node.listen])
    for height in before:  # answered from the persisted results at once
        got = availability(again, height)
        assert got is not None and got.status == da_pb2.AVAILABLE
    wait_status(again, max(before) + 2, da_pb2.AVAILABLE)
    after = verdicts(again.log_path.read_text()[offset:])
    assert after and not set(after) & set(before)  # nothing concluded before was resampled
    assert availability(again, 10_000) is None  # never seen: NOT_FOUND
