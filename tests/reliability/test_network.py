"""Scenario 9: network faults. A storage node cut off from the producer by a loopback TCP proxy
(every connection dropped, new ones refused) falls behind, then catches up once the partition
heals and holds every block whole; a light client with one of three peers unreachable (a port
that accepts and never answers, or one that refuses) still concludes AVAILABLE."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from da.v1 import da_pb2
from tests.integration.harness import Cluster, free_port, wait_until
from tests.integration.test_light_client import wait_status
from tests.reliability.helpers import (
    TcpProxy,
    blackhole,
    fed,
    head,
    header_at,
    holds_whole_block,
    metric,
)

PARTITION_SECONDS = 6.0


def test_partitioned_storage_node_catches_up(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    link = TcpProxy(producer.listen).heal()
    try:
        # The node knows the producer only through the link (--producer is repeatable: a
        # direct address beside it would be failed over to).
        through_link = SimpleNamespace(listen=link.address)
        node = cluster.storage_node("storage", through_link, "--request-timeout", "2")  # type: ignore[arg-type]
        wait_until(lambda: head(node) >= 2, timeout=60, what="two blocks before the partition")
        link.cut()
        at_cut = head(node)
        time.sleep(PARTITION_SECONDS)
        behind = head(node)
        assert behind <= at_cut + 1  # at most the block it was fetching when cut
        assert head(producer) >= behind + 3  # the chain went on without it
        link.heal()
        target = head(producer)
        wait_until(lambda: head(node) >= target, timeout=60, what="caught up after the heal")
        feeder.stop()
        for height in range(at_cut, target + 1):
            assert holds_whole_block(node, header_at(producer, height))
        assert metric(node, "da_storage_head_height") >= target
    finally:
        link.cut()
        feeder.stop()


@pytest.mark.parametrize("fault", ["silent", "refused"])
def test_light_client_concludes_with_one_peer_of_three_unreachable(
    cluster: Cluster, fault: str
) -> None:
    producer, feeder = fed(cluster)
    node = cluster.storage_node("storage", producer)
    if fault == "silent":
        dead, close = blackhole()
    else:
        dead, close = f"127.0.0.1:{free_port()}", (lambda: None)
    try:
        light = cluster.light_client(
            "light",
            [dead, node.listen, producer.listen],
            "--samples",
            "16",
            "--request-timeout",
            "1",
        )
        for height in (1, 2, 3):
            got = wait_status(light, height, da_pb2.AVAILABLE, timeout=60)
            assert got.samples == 16 and got.confidence > 0.99
        assert metric(light, "da_light_headers_sampled_total", result="unavailable") == 0
    finally:
        feeder.stop()
        close()
