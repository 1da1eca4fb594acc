"""The producer group (PROTOCOL.md §12) as real processes: three replicas with their own keys beside
a real 3-member etcd on loopback. Everything is asserted from outside: gRPC answers, headers
re-verified, metrics. Blobs stay tiny (k = 1) and the lease short (3 s) to keep this lean."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from da.header import TrustRoot, signed_header_from_bytes, verify_signed_header
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.integration.etcd_cluster import EtcdCluster
from tests.integration.group import ProducerGroup
from tests.integration.harness import (
    Cluster,
    DaProcess,
    free_port,
    metric_value,
    scrape,
    wait_until,
)

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
    wait_until(
        lambda: all(group.head(i) >= height for i in replicas),
        timeout=60,
        what=f"replicas {replicas} at height {height}",
    )


def storage_node_of(group: ProducerGroup) -> int:
    """A storage node given every replica (`--producer` and `--trusted-key` repeated); returns
    its index in the group's process list view (`group.procs`), appended after the replicas."""
    key = group.operator_key_file
    args = ["storage-node", "--chain-id", group.cluster.chain_id, "--key-file", str(key)]
    for address, key in zip(group.addresses, group.keys, strict=True):
        args += ["--producer", address, "--trusted-key", key]
    node = group.cluster.spawn("storage", args)
    group.procs.append(node)
    group.ports.append(int(node.listen.rsplit(":", 1)[1]))
    return len(group.procs) - 1


def test_one_leader_followers_follow_and_a_killed_leader_is_replaced(group: ProducerGroup) -> None:
    leader = group.wait_leader()
    storage = storage_node_of(group)
    followers = [i for i in group.alive() if i != leader]
    assert group.leaders() == [leader]
    first = [submit_to_leader(group, b"before %d" % n) for n in range(3)]
    height = max(wait_included(group, leader, h) for h in first)
    wait_heads(group, followers, height)
    for i in followers:  # followers serve the committed blocks and know the blobs' fate
        assert all(group.status(i, h).state in (pb.INCLUDED, pb.CERTIFIED) for h in first)
    # the storage node attests at one replica; every replica forms the certificate
    for i in group.alive():
        stub = da_pb2_grpc.AttestationServiceStub(group.channel(i))
        wait_until(
            lambda stub=stub: stub.GetCertificate(
                pb.GetCertificateRequest(height=height), timeout=10
            ),
            timeout=60,
            what=f"certificate {height} at replica {i}",
        )

    started = time.monotonic()
    group.proc(leader).kill9()
    new = group.wait_leader(not_in=(leader,))
    took_over = time.monotonic() - started
    assert new in followers
    second = [submit_to_leader(group, b"after %d" % n) for n in range(3)]
    head = max(wait_included(group, new, h) for h in second)
    wait_heads(group, followers, head)

    wait_heads(group, [storage], head)  # the storage node followed through the change
    signers = check_chain(group, [*followers, storage], head)
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


class Submitters:
    """Threads submitting unique blobs at rotating replicas; a blob refused is retried (the same
    bytes) until acknowledged or stopped. `acked` holds the hashes answered OK."""

    def __init__(self, group: ProducerGroup, count: int = 3) -> None:
        self.group = group
        self.acked: set[bytes] = set()
        self.refused = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]
        for t in self._threads:
            t.start()

    def _run(self, n: int) -> None:
        for seq in itertools.count():
            data = b"submitter %d blob %d" % (n, seq)
            for attempt in itertools.count():
                if self._stop.is_set():
                    return
                alive = self.group.alive()
                if not alive:
                    time.sleep(0.1)
                    continue
                i = alive[(n + attempt) % len(alive)]
                try:
                    answer = self.group.submit(i, NS, data)
                except grpc.RpcError:
                    with self._lock:
                        self.refused += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.acked.add(bytes(answer.blob_hash))
                break
            time.sleep(0.05)

    def stop(self) -> set[bytes]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return set(self.acked)


def included_once(group: ProducerGroup, i: int, head: int) -> dict[bytes, int]:
    """Every blob hash in the blocks 1..head served by replica `i`, with its height; fails if a
    blob appears twice."""
    seen: dict[bytes, int] = {}
    for height in range(1, head + 1):
        msg = group.header(i, height)
        for entry in signed_header_from_bytes(msg.header, msg.signature).header.blobs:
            twice = f"blob included at {seen.get(entry.blob_hash)} and {height}"
            assert entry.blob_hash not in seen, twice
            seen[entry.blob_hash] = height
    return seen


def settle(group: ProducerGroup, leader: int, acked: set[bytes]) -> int:
    """Wait until every acknowledged blob is included; returns the height all replicas reach."""
    head = max((wait_included(group, leader, h) for h in acked), default=group.head(leader))
    wait_heads(group, group.alive(), head)
    return head


def test_leader_kills_under_load_lose_nothing_and_include_once(group: ProducerGroup) -> None:
    first = group.wait_leader()
    load = Submitters(group)
    time.sleep(3)
    group.proc(first).kill9()
    second = group.wait_leader(not_in=(first,))
    time.sleep(2)
    acked = load.stop()
    assert len(acked) > 10
    head = settle(group, second, acked)
    alive = group.alive()
    check_chain(group, alive, head)
    for i in alive:
        blocks = included_once(group, i, head)
        assert acked <= blocks.keys()

    # the first leader returns with an empty data directory: it catches up...
    group.start(first, empty=True)
    wait_heads(group, [first], head)
    # ...and is needed for a majority once the second leader dies too
    load = Submitters(group)
    time.sleep(2)
    group.proc(second).kill9()
    third = group.wait_leader(not_in=(second,))
    time.sleep(2)
    more = load.stop()
    head = settle(group, third, acked | more)
    alive = group.alive()
    assert first in alive and len(alive) == 2
    check_chain(group, alive, head)
    for i in alive:
        blocks = included_once(group, i, head)
        assert (acked | more) <= blocks.keys()
        assert all(group.status(i, h).state == pb.INCLUDED for h in acked | more)
    assert group.metric(third, "da_producer_leader") == 1.0


def test_two_of_three_down_is_unavailable_then_resumes(group: ProducerGroup) -> None:
    leader = group.wait_leader()
    followers = [i for i in group.alive() if i != leader]
    for i in followers:
        group.proc(i).kill9()
    with pytest.raises(grpc.RpcError) as refused:
        group.submit(leader, NS, b"no majority")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "majority" in refused.value.details()  # type: ignore[attr-defined]
    time.sleep(2 * group.block_time)
    assert group.head(leader) == 0  # nothing acknowledged, nothing built
    group.start(followers[0])
    blob_hash = submit_to_leader(group, b"no majority")  # the same blob, now acknowledged
    now = group.wait_leader()
    top = settle(group, now, {blob_hash})
    assert top >= 1 and blob_hash in included_once(group, now, top)


def test_killing_the_etcd_leader_member_does_not_stop_production(
    group_cluster: Cluster, etcd_clusters: Callable[[], EtcdCluster]
) -> None:
    etcd = etcd_clusters()  # its own: a member dies
    group = ProducerGroup(group_cluster, etcd)
    try:
        leader = group.wait_leader()
        before = submit_to_leader(group, b"before the etcd leader dies")
        wait_included(group, leader, before)
        etcd.kill9(etcd.leader())
        after = [submit_to_leader(group, b"after %d" % n, timeout=60) for n in range(3)]
        now = group.wait_leader()
        head = settle(group, now, {before, *after})
        check_chain(group, group.alive(), head)
        assert {before, *after} <= included_once(group, now, head).keys()
    finally:
        group.close()
        etcd.close()


def blocked(group: ProducerGroup, i: int, reason: str) -> float | None:
    text = scrape(group.proc(i).metrics_port)
    return metric_value(text, "da_producer_group_blocked", {"reason": reason})


def misconfigured(cluster: Cluster, name: str, group_args: list[str]) -> DaProcess:
    """A producer replica of `cluster`'s chain with the group flags `group_args`."""
    args = ["producer", "--key-file", str(cluster.producer_key_file), "--chain-id"]
    return cluster.spawn(name, [*args, cluster.chain_id, "--workers", "1", *group_args])


def test_bad_setups_stay_follower_and_never_sign(
    group_cluster: Cluster, shared_etcd: EtcdCluster
) -> None:
    # replica 2's data directory holds a chain of another chain id (a lone producer's)
    other = group_cluster.spawn(
        "replica2",
        [
            "producer",
            "--key-file",
            str(group_cluster.producer_key_file),
            "--chain-id",
            "another",
            "--block-time",
            "0.5",
            "--workers",
            "1",
        ],
    )
    stub = da_pb2_grpc.BlobServiceStub(grpc.insecure_channel(other.listen))
    stub.SubmitBlob(pb.SubmitBlobRequest(namespace=NS, data=b"other chain"), timeout=10)
    wait_until(lambda: "block 1:" in other.log(), timeout=60, what="the other chain's block")
    other.stop()
    group = ProducerGroup(group_cluster, shared_etcd)
    try:
        wait_until(
            lambda: blocked(group, 2, "diverged") == 1.0,
            timeout=60,
            what="replica 2 reports its diverged store",
        )
        leader = group.wait_leader()
        assert leader != 2
        head = wait_included(group, leader, submit_to_leader(group, b"the group's own blob"))
        assert group.metric(2, "da_producer_leader") == 0.0
        assert "NOT following or campaigning" in group.proc(2).log()
        wait_heads(group, [0, 1], head)
        check_chain(group, [0, 1], head)

        # a replica whose etcd is unreachable serves, follows nothing, and refuses blobs
        lone = misconfigured(
            group_cluster,
            "lonely",
            ["--etcd", f"127.0.0.1:{free_port()}", "--replica", f"127.0.0.1:{free_port()}"],
        )
        metrics = lone.metrics_port
        wait_until(
            lambda: (
                metric_value(
                    scrape(metrics), "da_producer_group_blocked", {"reason": "etcd_unreachable"}
                )
                == 1.0
            ),
            timeout=60,
            what="the lone replica reports etcd unreachable",
        )
        lone_stub = da_pb2_grpc.BlobServiceStub(grpc.insecure_channel(lone.listen))
        with pytest.raises(grpc.RpcError) as refused:
            lone_stub.SubmitBlob(pb.SubmitBlobRequest(namespace=NS, data=b"x"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert metric_value(scrape(metrics), "da_producer_leader") == 0.0

        # a replica whose --replica list makes a group of 2 (the group recorded 3 in etcd):
        # it follows the chain but never campaigns, so it never acknowledges on its own count
        short = misconfigured(
            group_cluster,
            "short-list",
            [*shared_etcd.etcd_args(), "--replica", group.address(leader)],
        )
        wait_until(
            lambda: (
                metric_value(
                    scrape(short.metrics_port),
                    "da_producer_group_blocked",
                    {"reason": "wrong_group_size"},
                )
                == 1.0
            ),
            timeout=60,
            what="the replica with a short --replica list reports the wrong group size",
        )
        assert "a group of 2) but the group in etcd has 3" in short.log()
        group.proc(leader).stop()  # even with nobody leading, it does not campaign
        new = group.wait_leader(not_in=(leader,))
        assert new in (0, 1)
        assert metric_value(scrape(short.metrics_port), "da_producer_leader") == 0.0
    finally:
        group.close()
