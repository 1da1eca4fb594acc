"""Light client against adversarial peers (real processes; tests/integration/adversary.py):
withholding makes a height UNAVAILABLE, lying peers are never believed, forged headers are
rejected and equivocation is refused."""

from __future__ import annotations

import time

import pytest

from da.v1 import da_pb2
from tests.integration.adversary import start_adversary
from tests.integration.harness import Cluster, metric_value, scrape, wait_until
from tests.integration.test_light_client import availability, fed_producer, wait_status

SHORT_WINDOW = ("--sample-window", "3", "--request-timeout", "1")


def metric(light, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return metric_value(scrape(light.metrics_port), name, labels or None) or 0.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "extra"),
    [("withhold", ()), ("withhold-parity", ("--samples", "40"))],
)
def test_withholding_peer_makes_heights_unavailable(
    cluster: Cluster, mode: str, extra: tuple[str, ...]
) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    adversary = start_adversary(cluster, "adversary", mode, node.listen)
    light = cluster.light_client("light", [adversary.listen], *SHORT_WINDOW, *extra)
    got = wait_status(light, 1, da_pb2.UNAVAILABLE)
    assert got.confidence == 0.0
    wait_status(light, 2, da_pb2.UNAVAILABLE)
    assert metric(light, "da_light_headers_sampled_total", result="available") == 0
    assert metric(light, "da_light_last_confidence") == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["corrupt", "other-cell", "other-cell-same-coord"])
def test_a_lying_peer_alone_is_never_believed(cluster: Cluster, mode: str) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    adversary = start_adversary(cluster, "adversary", mode, node.listen)
    light = cluster.light_client("light", [adversary.listen], *SHORT_WINDOW)
    wait_status(light, 1, da_pb2.UNAVAILABLE)
    if mode != "other-cell":
        assert metric(light, "da_light_samples_total", result="ok") == 0
    # other-cell answers (r, c) with the genuine cell (r, c+1): when (r, c+1) was asked in the
    # same request, that one cell is a correct answer to a question asked, and counts as such.
    assert metric(light, "da_light_samples_total", result="bad_proof") > 0
    assert metric(light, "da_light_headers_sampled_total", result="available") == 0


@pytest.mark.slow
def test_an_honest_peer_beside_a_corrupting_one_gives_availability(cluster: Cluster) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    adversary = start_adversary(cluster, "adversary", "corrupt", node.listen)
    light = cluster.light_client("light", [adversary.listen, node.listen], "--samples", "24")
    for height in (1, 2):
        got = wait_status(light, height, da_pb2.AVAILABLE)
        assert got.samples == 24 and got.confidence > 0.99
    # With 24 samples over two peers at random the corrupting one was asked (P miss = 2^-24).
    assert metric(light, "da_light_samples_total", result="bad_proof") > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "reason"),
    [("forge-signature", "bad_signature"), ("forge-commitments", "inconsistent_commitments")],
)
def test_forged_headers_are_rejected(cluster: Cluster, mode: str, reason: str) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    adversary = start_adversary(
        cluster, "adversary", mode, node.listen, "--key-file", str(cluster.producer_key_file)
    )
    light = cluster.light_client("light", [adversary.listen])
    wait_until(
        lambda: metric(light, "da_light_rejected_headers_total", reason=reason) >= 1,
        timeout=60,
        what=f"{reason} rejections",
    )
    wait_until(
        lambda: "sent a forged or invalid header: shunned" in light.log_path.read_text(),
        timeout=10,
        what="the forger shunned",
    )
    time.sleep(3)  # more forged headers arrive meanwhile: ignored, not decoded, not logged
    assert metric(light, "da_light_rejected_headers_total", reason=reason) == 1
    assert metric(light, "da_light_head_height") == 0
    assert availability(light, 1) is None  # a rejected header is never seen


@pytest.mark.slow
def test_equivocation_is_refused(cluster: Cluster) -> None:
    producer = fed_producer(cluster)
    node = cluster.storage_node("storage-1", producer)
    adversary = start_adversary(
        cluster,
        "adversary",
        "equivocate",
        node.listen,
        "--key-file",
        str(cluster.producer_key_file),
    )
    light = cluster.light_client("light", [node.listen, adversary.listen])
    wait_until(
        lambda: metric(light, "da_light_equivocations_total") >= 1,
        timeout=60,
        what="an equivocation",
    )
    assert "EQUIVOCATION" in light.log_path.read_text()
    # Which of the two headers stands at a height depends on arrival order (the first seen is
    # kept). Whichever it is, catch-up fetches the headers it links to, whoever serves them, so
    # the heights below are known and sampled: the fork does not stall the backlog.
    got = wait_status(light, 1, da_pb2.AVAILABLE)
    assert got.samples > 0
