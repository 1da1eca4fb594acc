"""The producer group (DESIGN 11) as real processes: three replicas with their own keys beside a
real 3-member etcd on loopback. Everything is asserted from outside: gRPC answers, headers
re-verified, metrics. Blobs stay tiny (k = 1) and the lease short (3 s) to keep this lean."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from da.header import TrustRoot, signed_header_from_bytes, verify_signed_header
from da.v1 import da_pb2 as pb
from tests.integration.etcd_cluster import EtcdCluster
from tests.integration.group import ProducerGroup
from tests.integration.harness import Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NS = b"\x0c"
_chains = itertools.count()


@pytest.fixture
def group_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Processes of one test under a chain id of its own (the etcd cluster is shared)."""
    c = Cluster(tmp_path, chain_id=f"group-{os.getpid()}-{next(_chains)}")
    yield c
    c.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(c.logs())


@pytest.fixture
def group(group_cluster: Cluster, shared_etcd: EtcdCluster) -> Iterator[ProducerGroup]:
    g = ProducerGroup(group_cluster, shared_etcd)
    yield g
    g.close()


def submit_to_leader(group: ProducerGroup, data: bytes, timeout: float = 30.0) -> bytes:
    """Submit at whichever replica accepts (the leader); returns the blob hash."""

    def attempt() -> bytes | None:
        for i in group.alive():
            try:
                return bytes(group.submit(i, NS, data).blob_hash)
            except grpc.RpcError:
                continue
        return None

    return wait_until(attempt, timeout=timeout, what="a replica accepting the blob")  # type: ignore[no-any-return]


def wait_included(group: ProducerGroup, i: int, blob_hash: bytes, timeout: float = 60) -> int:
    def check() -> int | None:
        s = group.status(i, blob_hash)
        return s.height if s.state in (pb.INCLUDED, pb.CERTIFIED) else None

    return wait_until(check, timeout=timeout, what=f"blob included at replica {i}")  # type: ignore[no-any-return]


def check_chain(group: ProducerGroup, replicas: list[int], head: int) -> list[bytes]:
    """Every replica serves the same header at every height up to `head`, each verifying under
    the group's keys and linking to its parent; returns the signing key per height."""
    trust = TrustRoot(group.cluster.chain_id, frozenset(bytes.fromhex(k) for k in group.keys))
    signers = []
    parent = None
    for height in range(1, head + 1):
        served = {bytes(group.header(i, height).SerializeToString()) for i in replicas}
        assert len(served) == 1, f"replicas disagree at height {height}"
        msg = group.header(replicas[0], height)
        signed = signed_header_from_bytes(msg.header, msg.signature)
        verify_signed_header(signed, trust, parent=parent)
        signers.append(signed.header.producer)
        parent = signed
    return signers


def wait_heads(group: ProducerGroup, replicas: list[int], height: int) -> None:
    wait_until(lambda: all(group.head(i) >= height for i in replicas), timeout=60,
               what=f"replicas {replicas} at height {height}")


def test_one_leader_followers_follow_and_a_killed_leader_is_replaced(group: ProducerGroup) -> None:
    leader = group.wait_leader()
    followers = [i for i in group.alive() if i != leader]
    assert group.leaders() == [leader]
    first = [submit_to_leader(group, b"before %d" % n) for n in range(3)]
    height = max(wait_included(group, leader, h) for h in first)
    wait_heads(group, followers, height)
    for i in followers:  # followers serve the committed blocks and know the blobs' fate
        assert all(group.status(i, h).state == pb.INCLUDED for h in first)

    started = time.monotonic()
    group.proc(leader).kill9()
    new = group.wait_leader(not_in=(leader,))
    took_over = time.monotonic() - started
    assert new in followers
    second = [submit_to_leader(group, b"after %d" % n) for n in range(3)]
    head = max(wait_included(group, new, h) for h in second)
    wait_heads(group, followers, head)

    signers = check_chain(group, followers, head)
    assert signers[height - 1] == bytes.fromhex(group.keys[leader])
    assert signers[-1] == bytes.fromhex(group.keys[new])
    assert group.metric(new, "da_producer_leader_changes_total") == 1.0
    assert took_over < group.lease_seconds + 15, took_over


def test_a_paused_leader_never_publishes_its_late_header(group: ProducerGroup) -> None:
    old = group.wait_leader()
    wait_included(group, old, submit_to_leader(group, b"first"))
    late = group.submit(old, NS, b"submitted just before the pause")  # acked: on a majority
    os.kill(group.proc(old).proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        new = group.wait_leader(not_in=(old,))
        head = wait_included(group, new, submit_to_leader(group, b"under the new leader"))
    finally:
        os.kill(group.proc(old).proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
    # the old leader wakes with a block to build under a dead epoch: it must follow instead
    wait_until(lambda: group.leaders() == [new], timeout=30, what="the old leader stepped down")
    time.sleep(2 * group.block_time)
    wait_heads(group, group.alive(), head)
    top = min(group.head(i) for i in group.alive())
    check_chain(group, group.alive(), top)
    # acknowledged by the old leader, so the new one learned it and includes it, once
    included = wait_included(group, new, late.blob_hash)
    assert all(group.status(i, late.blob_hash).height == included for i in group.alive())
