"""Collective reconstruction with real processes (PROTOCOL.md §13): light clients sample a chain,
the producer and its storage node die, and a fresh storage node that knows only the light clients
rebuilds, byte for byte, every height whose held cells are recoverable, then serves it to a new
light client; with too few light clients it fails cleanly. k = 1, tiny blobs."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.coverage import recoverable
from tests.integration.harness import Cluster, DaProcess, keygen, metric_value, scrape, wait_until
from tests.integration.test_light_client import wait_status
from tests.integration.test_storage_node import (
    check_served,
    included_height,
    stored,
    submit,
    wait_stored,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LIGHT_CLIENTS = 4
SAMPLES = 32  # 4 x 32 at k = 1: no failure in 20,000 simulated draws (bench/reconstruct.py)
TIMEOUT = 10.0


def held(light: DaProcess, height: int) -> set[tuple[int, int]]:
    with grpc.insecure_channel(light.listen) as ch:
        reply = da_pb2_grpc.SamplingServiceStub(ch).GetHeldSamples(
            pb.GetHeldSamplesRequest(height=height), timeout=TIMEOUT
        )
    return {(c.row, c.col) for c in reply.cells}


def rows(node: DaProcess, height: int) -> list[bytes]:
    with grpc.insecure_channel(node.listen) as ch:
        stub = da_pb2_grpc.ShareServiceStub(ch)
        replies = [
            stub.GetRow(pb.GetRowRequest(height=height, row=r), timeout=TIMEOUT) for r in range(2)
        ]
    return [c.data + c.proof for reply in replies for c in reply.cells]


def test_light_clients_rebuild_a_lost_chain(cluster: Cluster, tmp_path: Path) -> None:
    producer = cluster.producer()
    origin = cluster.storage_node("origin", producer)
    lights = [
        cluster.light_client(f"light-{i}", [origin.listen], "--samples", str(SAMPLES))
        for i in range(LIGHT_CLIENTS)
    ]
    blobs = {}
    for n in range(2):
        data = f"collective reconstruction {n} ".encode() * 20
        blobs[included_height(producer, submit(producer, data))] = data
    heights = sorted(blobs)
    for light in lights:
        for height in heights:
            wait_status(light, height, pb.AVAILABLE)
    originals = {}
    for height in heights:
        wait_stored(origin, height)
        originals[height] = rows(origin, height)
    with grpc.insecure_channel(lights[0].listen) as ch:  # light clients serve their headers
        latest = da_pb2_grpc.HeaderServiceStub(ch).GetHeader(pb.GetHeaderRequest(), timeout=TIMEOUT)
    assert latest.header
    producer.stop()
    origin.stop()
    listed = origin.log_path.read_text()  # every light client announced where it serves
    assert all(f"light client {light.listen} listed as a sampler" in listed for light in lights)

    union = {h: set().union(*(held(light, h) for light in lights)) for h in heights}
    assert all(len(held(light, h)) == SAMPLES for light in lights for h in heights)
    sampler_args = [a for light in lights for a in ("--sampler", light.listen)]
    rebuilt = cluster.storage_node("rebuilt", lights[0], *sampler_args)
    for height in heights:  # rebuilt iff the union of held cells is recoverable
        if recoverable(1, union[height]):
            wait_stored(rebuilt, height, timeout=120)
            assert rows(rebuilt, height) == originals[height]
            check_served(cluster, rebuilt, height, blobs[height])
        else:
            assert not stored(rebuilt, height)
    text = scrape(rebuilt.metrics_port)
    recovered = sum(recoverable(1, union[h]) for h in heights)
    assert metric_value(text, "da_storage_recoveries_total", {"result": "recovered"}) == recovered
    assert (metric_value(text, "da_storage_cells_collected_total", {"source": "light"}) or 0) > 0

    fresh = cluster.light_client("fresh", [rebuilt.listen], "--samples", str(SAMPLES))
    for height in heights:
        if recoverable(1, union[height]):
            wait_status(fresh, height, pb.AVAILABLE)

    # Too few light clients: one holds 32 cells, at most 32 of the 64 columns needed.
    assert not recoverable(1, held(lights[0], heights[0]))
    key = tmp_path / "starved.key"
    keygen(key)
    starved = cluster.storage_node(
        "starved", lights[0], "--sampler", lights[0].listen, "--key-file", str(key)
    )
    wait_until(
        lambda: "cells per row" in starved.log_path.read_text(),
        timeout=60,
        what="the starved node's unrecoverable log line",
    )
    log = starved.log_path.read_text()
    assert "cannot be rebuilt" in log and "cells per column [" in log
    assert not stored(starved, heights[0])
    assert "attested height" not in log and "attesting height" not in log
    text = scrape(starved.metrics_port)
    assert (metric_value(text, "da_storage_head_height") or 0) == 0
    failed = metric_value(text, "da_storage_recoveries_total", {"result": "unrecoverable"})
    assert (failed or 0) >= 1
