"""Scenario 5: an equivocating producer (two validly signed headers at one height). A peer in
front of the producer streams every header, then a re-signed twin (time_ms + 1). The storage node
following it and the light client syncing from it keep the first header, refuse the second, log
it and count it in a metric; the block stays whole and available."""

from __future__ import annotations

from da.v1 import da_pb2
from tests.integration.adversary import start_adversary
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_light_client import wait_status
from tests.reliability.helpers import fed, header_at, holds_whole_block, metric


def test_equivocating_producer_is_refused_and_exposed(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    twins = start_adversary(
        cluster,
        "twins",
        "double-header",
        producer.listen,
        "--key-file",
        str(cluster.producer_key_file),
    )
    node = cluster.storage_node("storage", twins)
    light = cluster.light_client("light", [twins.listen])
    wait_until(
        lambda: metric(node, "da_storage_equivocations_total") >= 2,
        timeout=60,
        what="the storage node counts equivocations",
    )
    wait_until(
        lambda: metric(light, "da_light_equivocations_total") >= 2,
        timeout=60,
        what="the light client counts equivocations",
    )
    for height in (1, 2):
        # the first header stands (the honest one, streamed first), whole and verified
        assert holds_whole_block(node, header_at(producer, height))
        got = wait_status(light, height, da_pb2.AVAILABLE)
        assert got.confidence >= 0.99
    feeder.stop()
    assert metric(node, "da_storage_rejected_total", reason="bad_signature") == 0
    for process in (node, light):
        assert "quivocat" in process.log_path.read_text(), f"{process.name} did not log it"
