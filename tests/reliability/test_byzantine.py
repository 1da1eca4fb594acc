"""Scenario 4: Byzantine storage peers (real processes; the adversaries of
tests/integration/adversary.py). Withholding above the recoverability threshold is detected by
light clients and storage nodes; below it a storage node rebuilds the block; corrupted cells,
cells of another height, forged headers and slow-loris answers are never accepted, and honest
peers beside them still give the right verdict. Every stored block is checked cell by cell against
the producer's header commitments. The producer itself (it serves HeaderService and ShareService)
is the honest upstream and peer, to keep the number of processes down."""

from __future__ import annotations

import pytest

from da.v1 import da_pb2
from tests.integration.adversary import start_adversary
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_light_client import wait_status
from tests.reliability.helpers import fed, head, header_at, holds_whole_block, metric

SHORT_WINDOW = ("--sample-window", "4", "--request-timeout", "1")
SN_TIMEOUT = ("--request-timeout", "2")


def test_withholding_beyond_the_threshold_is_never_accepted(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    honest = producer  # serves HeaderService and ShareService like a storage node
    withholder = start_adversary(cluster, "withholder", "withhold-unrecoverable", honest.listen)
    follower = cluster.storage_node("follower", withholder, *SN_TIMEOUT)
    # 20 samples: a sample misses the withheld half with p = 126/256, so 20 all miss with ~1e-6.
    light = cluster.light_client("light", [withholder.listen], *SHORT_WINDOW, "--samples", "20")
    got = wait_status(light, 1, da_pb2.UNAVAILABLE)
    assert got.confidence == 0.0
    wait_until(
        lambda: metric(follower, "da_storage_rejected_total", reason="unrecoverable") >= 1,
        timeout=60,
        what="the follower gives the block up as unrecoverable",
    )
    feeder.stop()
    assert head(follower) == 0
    assert not holds_whole_block(follower, header_at(producer, 1))
    assert metric(follower, "da_storage_blocks_ingested_total") == 0
    assert metric(light, "da_light_headers_sampled_total", result="available") == 0


def test_withholding_below_the_threshold_is_rebuilt(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    honest = producer  # serves HeaderService and ShareService like a storage node
    withholder = start_adversary(cluster, "withholder", "withhold-recoverable", honest.listen)
    rebuilt = cluster.storage_node("rebuilt", withholder, *SN_TIMEOUT)
    # A light client whose peers are the withholder and the node that rebuilt the block:
    # failed samples are retried at the other peer, so the verdict is AVAILABLE.
    light = cluster.light_client(
        "light", [withholder.listen, rebuilt.listen], "--samples", "16", "--request-timeout", "1"
    )
    for height in (1, 2):
        wait_until(
            lambda h=height: holds_whole_block(rebuilt, header_at(producer, h)),
            timeout=90,
            what=f"height {height} rebuilt",
        )
        wait_status(light, height, da_pb2.AVAILABLE)
    feeder.stop()
    # k = 1: 64 of 256 cells were served; the other 192 per block were reconstructed.
    assert metric(rebuilt, "da_storage_cells_repaired_total") >= 2 * 192
    assert metric(light, "da_light_samples_total", result="ok") >= 32


@pytest.mark.parametrize("mode", ["corrupt-rows", "other-height"])
def test_lying_source_beside_an_honest_peer(cluster: Cluster, mode: str) -> None:
    producer, feeder = fed(cluster)
    honest = producer  # serves HeaderService and ShareService like a storage node
    liar = start_adversary(cluster, "liar", mode, honest.listen)
    # Headers and rows come from the liar first; only verified data may be stored.
    node = cluster.storage_node("node", liar, "--peer", honest.listen, *SN_TIMEOUT)
    light = cluster.light_client("light", [liar.listen], *SHORT_WINDOW)
    wait_status(light, 2, da_pb2.UNAVAILABLE)
    for height in (1, 2):
        wait_until(
            lambda h=height: holds_whole_block(node, header_at(producer, h)),
            timeout=90,
            what=f"height {height} stored from the honest peer",
        )
    feeder.stop()
    assert metric(light, "da_light_samples_total", result="ok") == 0
    assert metric(light, "da_light_samples_total", result="bad_proof") > 0
    assert metric(light, "da_light_headers_sampled_total", result="available") == 0


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("forge-signature", "bad_signature"), ("forge-commitments", "inconsistent_commitments")],
)
def test_forged_headers_are_refused_by_storage_nodes(
    cluster: Cluster, mode: str, reason: str
) -> None:
    producer, feeder = fed(cluster)
    honest = producer  # serves HeaderService and ShareService like a storage node
    forger = start_adversary(
        cluster, "forger", mode, honest.listen, "--key-file", str(cluster.producer_key_file)
    )
    node = cluster.storage_node("node", forger, *SN_TIMEOUT)
    wait_until(
        lambda: metric(node, "da_storage_rejected_total", reason=reason) >= 2,
        timeout=60,
        what=f"{reason} rejections",
    )
    feeder.stop()
    assert head(node) == 0
    assert metric(node, "da_storage_blocks_ingested_total") == 0
    assert not holds_whole_block(node, header_at(producer, 1))


def test_slow_loris_peer_cannot_stall_sampling_or_sync(cluster: Cluster) -> None:
    producer, feeder = fed(cluster)
    honest = producer  # serves HeaderService and ShareService like a storage node
    sloth = start_adversary(cluster, "sloth", "slow-loris", honest.listen)
    mixed = cluster.light_client(
        "mixed",
        [sloth.listen, honest.listen],
        "--samples",
        "16",
        "--request-timeout",
        "1",
        "--sample-window",
        "20",
    )
    alone = cluster.light_client("alone", [sloth.listen], *SHORT_WINDOW)
    node = cluster.storage_node("node", sloth, "--peer", honest.listen, *SN_TIMEOUT)
    for height in (1, 2):
        got = wait_status(mixed, height, da_pb2.AVAILABLE, timeout=60)
        assert got.samples == 16
    # Alone with the sloth: UNAVAILABLE once the window closes, not a hang.
    wait_status(alone, 1, da_pb2.UNAVAILABLE, timeout=30)
    wait_until(
        lambda: holds_whole_block(node, header_at(producer, 1)),
        timeout=60,
        what="the node stores height 1 from the honest peer",
    )
    feeder.stop()
    assert metric(mixed, "da_light_samples_total", result="timeout") > 0  # P(no sloth) = 2^-32
    assert metric(alone, "da_light_samples_total", result="ok") == 0
