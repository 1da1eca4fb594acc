"""Storage nodes as real processes: follow, store, serve verified data, attest, catch up, sync
from a peer, rebuild rows from cells, survive kill -9. Blobs stay tiny (k = 1)."""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest

from da.header import (
    SignedHeader,
    signed_header_from_bytes,
    trust_root_from_hex,
    verify_signed_header,
)
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure import kzg
from erasure.layout import normalize_namespace
from tests.integration.adversary import start_adversary
from tests.integration.harness import (
    Cluster,
    DaProcess,
    keygen,
    metric_value,
    scrape,
    wait_until,
)

pytestmark = pytest.mark.slow

NS = b"\x01\x02"
TIMEOUT = 10.0


def channel(node: DaProcess) -> grpc.Channel:
    return grpc.insecure_channel(node.listen)


def submit(producer: DaProcess, data: bytes, namespace: bytes = NS) -> bytes:
    with channel(producer) as ch:
        stub = da_pb2_grpc.BlobServiceStub(ch)
        response = stub.SubmitBlob(
            pb.SubmitBlobRequest(namespace=namespace, data=data), timeout=TIMEOUT
        )
    return bytes(response.blob_hash)


def status(producer: DaProcess, blob_hash: bytes) -> pb.BlobStatus:
    with channel(producer) as ch:
        return da_pb2_grpc.BlobServiceStub(ch).GetBlobStatus(
            pb.GetBlobStatusRequest(blob_hash=blob_hash), timeout=TIMEOUT
        )


def included_height(producer: DaProcess, blob_hash: bytes) -> int:
    def check() -> int:
        s = status(producer, blob_hash)
        return s.height if s.state in (pb.INCLUDED, pb.CERTIFIED) else 0

    return int(wait_until(check, timeout=60, what="blob included"))


def header_at(node: DaProcess, height: int) -> SignedHeader:
    with channel(node) as ch:
        msg = da_pb2_grpc.HeaderServiceStub(ch).GetHeader(
            pb.GetHeaderRequest(height=height), timeout=TIMEOUT
        )
    return signed_header_from_bytes(msg.header, msg.signature)


def stored(node: DaProcess, height: int) -> bool:
    try:
        header_at(node, height)
        return True
    except grpc.RpcError:
        return False


def wait_stored(node: DaProcess, height: int, timeout: float = 90) -> None:
    wait_until(lambda: stored(node, height), timeout=timeout, what=f"{node.name} stores {height}")


def _verify(header: SignedHeader, cells: list[pb.Cell], asked: list[tuple[int, int]]) -> None:
    assert [(c.row, c.col) for c in cells] == asked
    commitments = header.header.commitments
    assert kzg.verify_cells(
        [commitments[r] for r, _ in asked],
        [c for _, c in asked],
        [c.data for c in cells],
        [c.proof for c in cells],
    )


def check_served(cluster: Cluster, node: DaProcess, height: int, data: bytes) -> None:
    """Header trusted, every row, random samples and the blob verify against the commitments."""
    header = header_at(node, height)
    verify_signed_header(header, trust_root_from_hex(cluster.chain_id, [cluster.producer_pub]))
    k = header.header.k
    with channel(node) as ch:
        shares = da_pb2_grpc.ShareServiceStub(ch)
        for row in range(2 * k):
            got = shares.GetRow(pb.GetRowRequest(height=height, row=row), timeout=TIMEOUT)
            _verify(header, list(got.cells), [(row, col) for col in range(128)])
        rng = random.Random(height)
        asked = rng.sample([(r, c) for r in range(2 * k) for c in range(128)], 16)  # distinct
        coords = [pb.CellCoord(row=r, col=c) for r, c in asked]
        got = shares.GetSamples(pb.GetSamplesRequest(height=height, coords=coords), timeout=TIMEOUT)
        _verify(header, list(got.cells), asked)
        blobs = da_pb2_grpc.BlobServiceStub(ch).GetBlobs(
            pb.GetBlobsRequest(height=height, namespace=NS), timeout=TIMEOUT
        )
    (blob,) = [b for b in blobs.blobs if b.data == data]
    assert blob.namespace == normalize_namespace(NS)
    _verify(header, list(blob.cells), [(c.row, c.col) for c in blob.cells])


def test_two_nodes_store_serve_and_certify(cluster: Cluster, tmp_path: Path) -> None:
    keys = {name: tmp_path / f"{name}.key" for name in ("sn1", "sn2")}
    operators = [a for key in keys.values() for a in ("--operator", keygen(key))]
    producer = cluster.producer("producer", "--quorum", "2", *operators)
    nodes = []
    for name, key in keys.items():
        nodes.append(cluster.storage_node(name, producer, "--key-file", str(key)))
    data = b"certify me " * 10
    blob_hash = submit(producer, data)
    height = included_height(producer, blob_hash)
    for node in nodes:
        wait_stored(node, height)
        check_served(cluster, node, height, data)
    wait_until(
        lambda: status(producer, blob_hash).state == pb.CERTIFIED,
        timeout=60,
        what="blob certified by two storage nodes",
    )
    text = scrape(nodes[0].metrics_port)
    assert (metric_value(text, "da_storage_head_height") or 0) >= height
    assert (metric_value(text, "da_storage_samples_served_total") or 0) > 0
    assert "attested height" in nodes[0].log()


def test_late_node_catches_up(cluster: Cluster) -> None:
    producer = cluster.producer()
    first = cluster.storage_node("early", producer)
    blobs = [b"early blob %d" % i for i in range(2)]
    heights = []
    for data in blobs:
        heights.append(included_height(producer, submit(producer, data)))
    wait_stored(first, heights[-1])
    late = cluster.storage_node("late", producer)
    for data, height in zip(blobs, heights, strict=True):
        wait_stored(late, height)
        check_served(cluster, late, height, data)
    data = b"after the late start"
    height = included_height(producer, submit(producer, data))
    wait_stored(late, height)
    check_served(cluster, late, height, data)


def test_syncs_from_a_peer_with_the_producer_stopped(cluster: Cluster) -> None:
    producer = cluster.producer()
    peer = cluster.storage_node("peer", producer)
    data = b"held by the peer"
    height = included_height(producer, submit(producer, data))
    wait_stored(peer, height)
    producer.stop()
    fresh = cluster.storage_node("fresh", producer, "--peer", peer.listen)
    wait_stored(fresh, height)
    check_served(cluster, fresh, height, data)


def test_rebuilds_rows_from_cells_when_no_one_serves_rows(cluster: Cluster) -> None:
    producer = cluster.producer()
    honest = cluster.storage_node("honest", producer)
    data = b"rebuild me" * 50
    height = included_height(producer, submit(producer, data))
    wait_stored(honest, height)
    # Its only source serves cells of columns 0..63 and refuses GetRow.
    only_cells = start_adversary(cluster, "only-cells", "original-cells", honest.listen)
    rebuilt = cluster.storage_node("rebuilt", only_cells)
    wait_stored(rebuilt, height)
    check_served(cluster, rebuilt, height, data)
    repaired = metric_value(scrape(rebuilt.metrics_port), "da_storage_cells_repaired_total")
    assert repaired is not None and repaired >= 2 * 64  # k = 1: 2 rows x 64 parity cells


def test_restarts_whole_after_kill9(cluster: Cluster) -> None:
    producer = cluster.producer()
    node = cluster.storage_node("crashy", producer)
    data = b"before the crash"
    height = included_height(producer, submit(producer, data))
    wait_stored(node, height)
    node.kill9()
    later = b"while it was down"
    later_height = included_height(producer, submit(producer, later))
    node.start()
    check_served(cluster, node, height, data)
    wait_stored(node, later_height)
    check_served(cluster, node, later_height, later)
    assert "following producer" in node.log()
