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


async def test_the_first_replica_records_the_group_size_and_later_ones_read_it(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    a = Coordinator(shared_etcd.endpoints, chain_id)
    b = Coordinator(list(reversed(shared_etcd.endpoints)), chain_id)
    try:
        assert await a.group_size(3) == 3
        assert await b.group_size(3) == 3
        assert await b.group_size(2) == 3  # a replica that counts another group is told
    finally:
        await a.close()
        await b.close()


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


class LossyProxy:
    """A TCP proxy in front of one etcd member that, once `drop_answers` is set, still passes
    requests on but drops everything the member sends back: a request applied, its answer lost."""

    def __init__(self, target: str) -> None:
        self._host, self._port = target.rsplit(":", 1)
        self.drop_answers = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, int(self._port))
        for source, sink, answers in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pipe(source, sink, answers))
            self._tasks.add(task)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool
    ) -> None:
        try:
            while chunk := await source.read(65536):
                if not (answers and self.drop_answers):
                    sink.write(chunk)
                    await sink.drain()
        finally:
            sink.close()


async def test_a_commit_whose_answer_was_lost_is_resolved_by_reading_the_height(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    proxy = LossyProxy(shared_etcd.endpoints[0])
    through = await proxy.start()
    # the first member only through the proxy; the others direct (tried after a timeout)
    c = Coordinator([through, *shared_etcd.endpoints[1:]], chain_id, timeout_seconds=1.0)
    rival = Coordinator(shared_etcd.endpoints, chain_id)
    try:
        genesis = CommittedTip(0, ZERO_HASH)
        held = await c.campaign("a", await c.grant_lease(30))  # connected through the proxy
        proxy.drop_answers = True
        # applied through the proxy, answer lost; retried on the next member, which refuses it
        # (the height is taken), and reads our header there: committed
        assert await c.commit_header(held.epoch, genesis, b"h1" * 16, b"raw1", b"sig1")
        assert await rival.header(1) == (b"raw1", b"sig1")
        assert await rival.tip() == CommittedTip(1, b"h1" * 16)
        # a refused commit is still refused: another header holds the height
        assert not await c.commit_header(held.epoch, genesis, b"x" * 32, b"raw", b"sig")
    finally:
        await c.close()
        await rival.close()
        await proxy.close()


async def test_a_commit_in_doubt_while_etcd_is_silent_raises_then_reads_back(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    proxy = LossyProxy(shared_etcd.endpoints[0])
    through = await proxy.start()
    c = Coordinator([through], chain_id, timeout_seconds=0.5, retry_seconds=1.5)
    try:
        genesis = CommittedTip(0, ZERO_HASH)
        held = await c.campaign("a", await c.grant_lease(30))
        proxy.drop_answers = True
        with pytest.raises(CoordinatorUnavailable):  # in doubt: never reported as refused
            await c.commit_header(held.epoch, genesis, b"h1" * 16, b"raw1", b"sig1")
        proxy.drop_answers = False
        # etcd applied it: reading the height back says so (and a different header says not)
        assert await c.committed(1, b"raw1", b"sig1")
        assert not await c.committed(1, b"raw1", b"other signature")
    finally:
        await c.close()
        await proxy.close()


async def test_a_watch_reports_commits_and_leader_changes(
    shared_etcd: EtcdCluster, chain_id: str
) -> None:
    c = Coordinator(shared_etcd.endpoints, chain_id)
    changed = asyncio.Event()
    watch = asyncio.create_task(c.watch(changed.set))
    try:
        await asyncio.wait_for(changed.wait(), 5)  # watching (it reports its start)
        changed.clear()
        held = await c.campaign("a", await c.grant_lease(30))
        await asyncio.wait_for(changed.wait(), 5)
        changed.clear()
        assert await c.commit_header(held.epoch, CommittedTip(0, ZERO_HASH), b"h" * 32, b"r", b"s")
        await asyncio.wait_for(changed.wait(), 5)
        changed.clear()
        await c.revoke(held.lease_id)  # the leader key goes with its lease
        await asyncio.wait_for(changed.wait(), 5)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await c.close()
