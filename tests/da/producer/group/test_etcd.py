"""The etcd wrapper against a real 3-member cluster: leases, the epoch, the fenced commit."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from da.header import ZERO_HASH
from da.producer.group.etcd import CommittedTip, Coordinator, CoordinatorUnavailable
from tests.integration.etcd_cluster import EtcdCluster

pytestmark = pytest.mark.integration
_chains = itertools.count()


@pytest.fixture
def chain_id() -> str:
    return f"etcd-test-{next(_chains)}"


async def test_campaign_gives_one_leader_and_a_growing_epoch(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    a = Coordinator(shared_etcd.endpoints, chain_id)
    b = Coordinator(list(reversed(shared_etcd.endpoints)), chain_id)
    try:
        lease_a, lease_b = await a.grant_lease(5), await b.grant_lease(5)
        won = await a.campaign("a", lease_a)
        lost = await b.campaign("b", lease_b)
        assert won.name == "a" and won.lease_id == lease_a
        assert lost == won  # b sees a's key, not its own
        await a.revoke(lease_a)  # a graceful stop releases the key at once
        assert await b.leader() is None
        second = await b.campaign("b", lease_b)
        assert second.name == "b" and second.epoch > won.epoch
        assert await b.keep_alive(lease_b)
        assert not await a.keep_alive(lease_a)  # revoked: expired for good
    finally:
        await a.close()
        await b.close()


async def test_commit_is_fenced_by_epoch_height_and_tip(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    c = Coordinator(shared_etcd.endpoints, chain_id)
    try:
        genesis = CommittedTip(0, ZERO_HASH)
        assert await c.tip() == genesis
        old = await c.campaign("old", await c.grant_lease(5))
        assert await c.commit_header(old.epoch, genesis, b"h1" * 16, b"raw1", b"sig1")
        assert await c.header(1) == (b"raw1", b"sig1")
        tip1 = CommittedTip(1, b"h1" * 16)
        assert await c.tip() == tip1
        # the height is taken and the parent is no longer the tip: refused
        assert not await c.commit_header(old.epoch, genesis, b"x" * 32, b"raw", b"sig")
        await c.revoke(old.lease_id)
        new = await c.campaign("new", await c.grant_lease(5))
        # the old epoch is fenced off even with the right parent
        assert not await c.commit_header(old.epoch, tip1, b"h2" * 16, b"late", b"sig")
        assert await c.commit_header(new.epoch, tip1, b"h2" * 16, b"raw2", b"sig2")
        assert await c.tip() == CommittedTip(2, b"h2" * 16)
        assert await c.header(3) is None
    finally:
        await c.close()


async def test_a_lease_not_kept_alive_expires_and_frees_the_key(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    c = Coordinator(shared_etcd.endpoints, chain_id)
    try:
        held = await c.campaign("a", await c.grant_lease(1))
        await asyncio.sleep(2.5)
        assert not await c.keep_alive(held.lease_id)
        assert await c.leader() is None
    finally:
        await c.close()


async def test_unreachable_etcd_is_unavailable(chain_id: str) -> None:
    from tests.integration.harness import free_port

    c = Coordinator([f"127.0.0.1:{free_port()}"], chain_id, timeout_seconds=0.5, retry_seconds=1.0)
    try:
        with pytest.raises(CoordinatorUnavailable, match="no etcd member"):
            await c.tip()
    finally:
        await c.close()


async def test_a_killed_raft_leader_member_is_skipped(etcd_clusters, chain_id: str) -> None:  # type: ignore[no-untyped-def]
    cluster = etcd_clusters()
    c = Coordinator(cluster.endpoints, chain_id, timeout_seconds=1.0)
    try:
        assert (await c.tip()).height == 0
        cluster.kill9(cluster.leader())  # the others elect a new raft leader meanwhile
        lease = await c.grant_lease(5)
        held = await c.campaign("a", lease)
        assert held.name == "a"
    finally:
        await c.close()
        cluster.close()
