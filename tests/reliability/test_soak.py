"""Scenario 8: a bounded soak. Submitters keep the producer at capacity (a k <= 2 square of
one-cell blobs every second; the mempool's RESOURCE_EXHAUSTED is the back-pressure) while three
storage nodes follow and light clients sample. Reported: blobs/s acknowledged and included,
p50/p99 inclusion latency (acknowledgement to the including header's time), lost blobs (must be 0),
duplicates (must be 0). The short run is part of the normal suite; the 60 s run with five light
clients is marked `soak` (`make soak`)."""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from tests.integration.harness import Cluster, wait_until
from tests.reliability.helpers import Feeder, head, header_at, holds_whole_block, metric

SUBMITTERS = 4
BLOB_BYTES = 1900  # one cell (1984 payload bytes) each: 128 blobs fill a k = 2 square
REPORT_ENV = "DA_SOAK_REPORT"


@dataclass
class SoakReport:
    name: str
    seconds: float
    storage_nodes: int
    light_clients: int
    acked: int
    refused: int
    included: int
    lost: int
    duplicated: int
    blocks: int
    acked_per_second: float  # over the submission window
    included_per_second: float  # from the first acknowledgement to the last including header
    p50_latency_seconds: float
    p99_latency_seconds: float
    max_latency_seconds: float
    light_available: int
    light_unavailable: int


def inclusions(producer_listen: str, tip: int) -> tuple[dict[bytes, list[int]], dict[int, float]]:
    """blob_hash -> heights including it, and height -> header time (seconds)."""
    where: dict[bytes, list[int]] = {}
    times: dict[int, float] = {}
    for height in range(1, tip + 1):
        header = header_at(producer_listen, height).header
        times[height] = header.time_ms / 1000
        for entry in header.blobs:
            where.setdefault(entry.blob_hash, []).append(height)
    return where, times


def run_soak(cluster: Cluster, name: str, seconds: float, light_clients: int) -> SoakReport:
    producer = cluster.producer("producer", "--max-rows", "2")
    nodes = [cluster.storage_node(f"storage-{i}", producer) for i in range(1, 4)]
    peers = [n.listen for n in nodes]
    lights = [cluster.light_client(f"light-{i}", peers) for i in range(1, light_clients + 1)]
    feeders = [
        Feeder(
            producer, namespace=b"soak%d" % i, interval=0.0, size=BLOB_BYTES, backoff=0.2
        ).start()
        for i in range(SUBMITTERS)
    ]
    start = time.time()
    time.sleep(seconds)
    for f in feeders:
        f.stop()
    elapsed = time.time() - start
    acked_at = {h: t for f in feeders for h, t in f.acked_at.items()}

    def drained() -> bool:
        return metric(producer, "da_producer_pending_blobs") == 0

    wait_until(drained, timeout=120, what="the producer's mempool drains")
    tip = head(producer)
    where, times = inclusions(producer.listen, tip)
    for node in nodes:
        wait_until(lambda n=node: head(n) >= tip, timeout=120, what=f"{node.name} at the tip")
        assert holds_whole_block(node, header_at(producer, tip))
    latencies = sorted(max(0.0, times[where[h][0]] - t) for h, t in acked_at.items() if h in where)
    lost = [h for h in acked_at if h not in where]
    duplicated = [h for h in acked_at if len(where.get(h, [])) > 1]
    in_window = [h for h in acked_at if h in where]
    available = sum(metric(x, "da_light_headers_sampled_total", result="available") for x in lights)
    unavailable = sum(
        metric(x, "da_light_headers_sampled_total", result="unavailable") for x in lights
    )
    return SoakReport(
        name=name,
        seconds=round(elapsed, 1),
        storage_nodes=len(nodes),
        light_clients=len(lights),
        acked=len(acked_at),
        refused=sum(len(f.errors) for f in feeders),
        included=len(in_window),
        lost=len(lost),
        duplicated=len(duplicated),
        blocks=tip,
        acked_per_second=round(len(acked_at) / elapsed, 1),
        included_per_second=round(
            len(in_window) / max(1e-3, times[tip] - min(acked_at.values(), default=start)), 1
        ),
        p50_latency_seconds=round(statistics.median(latencies), 3) if latencies else -1,
        p99_latency_seconds=round(latencies[int(0.99 * (len(latencies) - 1))], 3)
        if latencies
        else -1,
        max_latency_seconds=round(latencies[-1], 3) if latencies else -1,
        light_available=int(available),
        light_unavailable=int(unavailable),
    )


def publish(report: SoakReport, tmp_path: Path) -> None:
    text = json.dumps(asdict(report), indent=1)
    print(f"\nSOAK {report.name}: {json.dumps(asdict(report))}")
    (tmp_path / f"soak-{report.name}.json").write_text(text)
    if os.environ.get(REPORT_ENV):
        Path(os.environ[REPORT_ENV]).write_text(text)


def check(report: SoakReport) -> None:
    assert report.acked > 0
    assert report.lost == 0 and report.duplicated == 0, report
    assert report.light_unavailable == 0, report
    assert report.light_available >= report.light_clients, report


def test_soak_short(cluster: Cluster, tmp_path: Path) -> None:
    report = run_soak(cluster, "short", seconds=10.0, light_clients=2)
    publish(report, tmp_path)
    check(report)


@pytest.mark.soak
def test_soak_60s(cluster: Cluster, tmp_path: Path) -> None:
    report = run_soak(cluster, "60s", seconds=60.0, light_clients=5)
    publish(report, tmp_path)
    check(report)
