"""Scenario 6: floods. Submitters far beyond the per-connection rate limit get RESOURCE_EXHAUSTED
(and nothing worse), while every blob that was acknowledged is included exactly once; a sampling
flood over one connection is throttled without starving another client or a light client."""

from __future__ import annotations

import statistics
import threading
import time

import grpc

from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.integration.harness import Cluster, metric_value, scrape, wait_until
from tests.integration.test_light_client import wait_status
from tests.reliability.helpers import (
    Feeder,
    fed,
    head,
    header_at,
    metric,
    own_channel,
    patiently,
)

SUBMITTERS = 8
FLOOD_SECONDS = 4.0
FLOOD_THREADS = 6


def code_total(port: int, code: str, method_part: str) -> float:
    """Sum of da_grpc_requests_total over methods containing `method_part`, for `code`.

    A refusal is counted when its handler unwinds, just after the status went out, so a client
    can see its last refusal a moment before the server's counter does: poll, do not read once.
    """
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(scrape(port)):
        for s in family.samples:
            if (
                s.name == "da_grpc_requests_total"
                and s.labels.get("code") == code
                and method_part in s.labels.get("method", "")
            ):
                total += s.value
    return total


def test_submission_flood_gets_resource_exhausted_and_loses_nothing(cluster: Cluster) -> None:
    producer = cluster.producer("producer", "--rate-limit", "10", "--rate-burst", "5")
    feeders = [
        Feeder(producer, namespace=b"flood%d" % i, interval=0.0, size=100).start()
        for i in range(SUBMITTERS)
    ]
    time.sleep(FLOOD_SECONDS)
    for f in feeders:
        f.stop()
    codes = {c for f in feeders for c in f.errors}
    refused = sum(len(f.errors) for f in feeders)
    acked = [h for f in feeders for h in f.acked]
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    # Both outcomes happen; their ratio depends on how fast this machine lets clients hammer.
    assert refused > 0 and len(acked) > 0, (refused, len(acked))
    # per connection: at most burst + rate x time (with slack for timing), never starved to zero
    per_submitter = [len(f.acked) for f in feeders]
    assert min(per_submitter) > 0
    assert max(per_submitter) <= 5 + 10 * (FLOOD_SECONDS + 2), per_submitter
    # Read back under the same rate limit: retry the reads it refuses.
    wait_until(
        lambda: patiently(lambda: metric(producer, "da_producer_pending_blobs")) == 0,
        timeout=60,
        what="every pending blob in a block",
    )
    tip = patiently(lambda: head(producer))
    counts = dict.fromkeys(acked, 0)
    for height in range(1, tip + 1):
        for entry in patiently(lambda h=height: header_at(producer, h)).header.blobs:
            if entry.blob_hash in counts:
                counts[entry.blob_hash] += 1
    assert counts == dict.fromkeys(acked, 1)
    wait_until(
        lambda: code_total(producer.metrics_port, "RESOURCE_EXHAUSTED", "SubmitBlob") >= refused,
        timeout=10,
        what="every refusal counted",
    )
    assert metric_value(
        scrape(producer.metrics_port), "da_blob_submissions_total", {"result": "accepted"}
    ) == len(set(acked))


def test_sampling_flood_from_one_peer_does_not_starve_others(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    node = cluster.storage_node("storage", producer, "--rate-limit", "40", "--rate-burst", "20")
    wait_until(lambda: head(node) >= 1, timeout=60, what="a first block")
    coords = [pb.CellCoord(row=r, col=c) for r in (0, 1) for c in (0, 64, 127)]
    request = pb.GetSamplesRequest(height=1, coords=coords)
    stop = threading.Event()
    flood_codes: list[grpc.StatusCode] = []
    flood_ok = [0]

    def flood(stub: da_pb2_grpc.ShareServiceStub) -> None:
        while not stop.is_set():
            try:
                stub.GetSamples(request, timeout=5)
                flood_ok[0] += 1
            except grpc.RpcError as e:
                flood_codes.append(e.code())

    flood_channel = own_channel(node.listen)  # one connection: one peer
    flood_stub = da_pb2_grpc.ShareServiceStub(flood_channel)
    threads = [
        threading.Thread(target=flood, args=(flood_stub,), daemon=True)
        for _ in range(FLOOD_THREADS)
    ]
    for t in threads:
        t.start()
    light = cluster.light_client("light", [node.listen])  # starts while the flood goes on
    latencies: list[float] = []
    try:
        with own_channel(node.listen) as ch:
            polite = da_pb2_grpc.ShareServiceStub(ch)
            for _ in range(25):  # 5/s, well within the limit
                start = time.monotonic()
                reply = polite.GetSamples(request, timeout=5)
                latencies.append(time.monotonic() - start)
                assert len(reply.cells) == len(coords)
                time.sleep(0.2)
        target = head(producer)
        got = wait_status(light, target, pb.AVAILABLE, timeout=60)
        assert got.confidence >= 0.99
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        flood_channel.close()
        feeder.stop()
    assert flood_codes and set(flood_codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert flood_ok[0] > 0
    assert statistics.quantiles(latencies, n=20)[-1] < 1.0, latencies  # p95 under a second
    wait_until(
        lambda: (
            code_total(node.metrics_port, "RESOURCE_EXHAUSTED", "GetSamples") >= len(flood_codes)
        ),
        timeout=10,
        what="every refusal counted",
    )
