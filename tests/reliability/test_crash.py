"""Scenarios 1-3: crashes and data loss (real processes, kill -9).

1. The producer is killed twice while concurrent submitters keep going: every acknowledged blob is
   included exactly once and the chain links across the restarts.
2. A storage node is killed repeatedly while it ingests a stream of blocks: after every restart
   each height it shows is whole (every cell verifies against the producer's commitments), the
   ones it does not show are invisible (header and rows NOT_FOUND), and it catches up.
3. A storage node loses its data directory while the producer is down: it rebuilds every block
   from a peer, then follows the producer again once it is back.
"""

from __future__ import annotations

import random
import shutil
import time

import grpc

from da.v1 import da_pb2 as pb
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_producer import Client, count_inclusions
from tests.reliability.helpers import Feeder, head, header_at, holds_whole_block, metric

SUBMITTERS = 4


def test_producer_kill9_under_concurrent_submitters(cluster: Cluster) -> None:
    producer = cluster.producer("producer", "--block-time", "2")
    node = cluster.storage_node("storage", producer)
    feeders = [
        Feeder(producer, namespace=b"sub%d" % i, interval=0.05).start() for i in range(SUBMITTERS)
    ]
    pending_after_restart = 0
    try:
        for _ in range(2):
            time.sleep(3.0)
            acked_before = {h for f in feeders for h in f.acked}
            producer.kill9()
            producer.start()
            client = Client(producer)
            try:
                # Acknowledged before the crash, not in a block yet: still known, as PENDING.
                states = [client.status(h).state for h in list(acked_before)[-40:]]
            finally:
                client.close()
            assert pb.REJECTED not in states
            pending_after_restart += states.count(pb.PENDING)
        time.sleep(2.0)
    finally:
        for f in feeders:
            f.stop()
    acked = [h for f in feeders for h in f.acked]
    assert len(acked) > 50
    client = Client(producer)
    try:
        for h in acked:
            client.included(h, timeout=60)
        assert count_inclusions(client, acked) == dict.fromkeys(acked, 1)
        tip = client.header(0).header.height
        for height in range(2, tip + 1):
            assert client.header(height).header.prev_hash == client.header(height - 1).hash
    finally:
        client.close()
    wait_until(lambda: head(node) >= tip, timeout=60, what="the storage node reaches the tip")
    assert holds_whole_block(node, header_at(producer, tip))
    print(f"acked {len(acked)} blobs; {pending_after_restart} sampled ones PENDING after restarts")


def test_storage_node_kill9_during_ingest(cluster: Cluster) -> None:
    producer = cluster.producer("producer")
    # 130 kB blobs (66 cells, more than one 64-cell row) make every square k >= 2 (at least
    # 4 x 128 cells), so ingest takes a while.
    feeder = Feeder(producer, interval=1.0, size=130_000).start()
    node = cluster.storage_node("storage", producer)
    rng = random.Random(7)
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.2, 1.0))
            # Kill while a published block is not stored yet: it is being fetched or written.
            wait_until(
                lambda: head(producer) > head(node),
                timeout=30,
                interval=0.02,
                what="a block in flight",
            )
            node.kill9()
            node.start()
            shown = head(node)
            assert metric(node, "da_storage_head_height") >= shown
            for height in range(1, shown + 1):
                assert holds_whole_block(node, header_at(producer, height)), height
            # the next height is either whole or invisible, never half-written
            nxt = header_at(producer, shown + 1) if head(producer) > shown else None
            if nxt is not None:
                holds_whole_block(node, nxt)
    finally:
        feeder.stop()
    tip = head(producer)
    wait_until(lambda: head(node) >= tip, timeout=90, what="the storage node catches up")
    for height in range(max(1, tip - 2), tip + 1):
        assert holds_whole_block(node, header_at(producer, height))
    assert header_at(producer, tip).header.k >= 2


def test_storage_node_rebuilds_a_lost_data_dir_from_peers(cluster: Cluster) -> None:
    producer = cluster.producer("producer")
    feeder = Feeder(producer, interval=0.4).start()
    victim = cluster.storage_node("victim", producer)
    peer = cluster.storage_node("peer", producer)
    wait_until(
        lambda: head(victim) >= 3 and head(peer) >= 3, timeout=60, what="both nodes hold 3 blocks"
    )
    feeder.stop()
    # The last blobs sent may still be on their way into a block: the tip is the head once none
    # is pending (the gauge drops only after the block holding them is stored and published).
    wait_until(
        lambda: metric(producer, "da_producer_pending_blobs") == 0,
        timeout=30,
        what="every submitted blob in a block",
    )
    tip = head(producer)
    wait_until(lambda: head(peer) == tip, timeout=60, what="the peer holds the tip")
    truth = [header_at(producer, h) for h in range(1, tip + 1)]
    producer.stop()
    victim.kill9()
    shutil.rmtree(cluster.tmp / "victim")
    (cluster.tmp / "victim").mkdir()
    victim.args += ["--peer", peer.listen]
    victim.start()
    wait_until(lambda: head(victim) >= tip, timeout=90, what="rebuilt from the peer")
    for signed in truth:
        assert holds_whole_block(victim, signed)
    # The producer comes back: the victim follows it again.
    producer.start()
    client = Client(producer)
    try:
        sent = client.submit(b"after", b"after the loss")
        height = client.included(sent.blob_hash).height
    finally:
        client.close()
    wait_until(lambda: head(victim) >= height, timeout=90, what="following the producer again")
    assert holds_whole_block(victim, header_at(producer, height))
    assert metric(victim, "da_storage_head_height") >= height
    try:
        header_at(victim, tip + 100)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
