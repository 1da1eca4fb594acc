"""GroupIntake alone (pure: an in-memory store, peers as in-process stand-ins): majority
acknowledgement, epoch promises, what a new leader learns and re-replicates."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from da.errors import Unavailable
from da.metrics import GroupMetrics
from da.producer.errors import NotLeader, StaleEpoch
from da.producer.group.intake import GroupIntake
from da.producer.mempool import Mempool, submission_from_request
from da.store.blobs import BlobState
from da.store.memory import MemoryStore

LIMIT = 10_000


@dataclass
class Leading:
    """What GroupIntake reads of `Leadership`."""

    leading: bool = True
    epoch: int = 7


@dataclass
class Peer:
    """A replica reached over the network: keeps what it is sent, or is down."""

    address: str
    up: bool = True
    kept: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    pending_blobs: list[tuple[bytes, bytes]] = field(default_factory=list)
    calls: int = 0
    refuses: bytes = b"\xff"  # blob data this peer finds invalid
    broken: bool = False  # answers with something no ReplicaError covers

    async def replicate(self, epoch: int, blobs: list[tuple[bytes, bytes]]) -> list[int]:
        self.calls += 1
        await asyncio.sleep(0)  # a round trip: blobs submitted meanwhile wait for the next call
        if not self.up:
            raise TimeoutError("down")
        if self.broken:
            raise RuntimeError("a broken answer")
        self.kept += [(epoch, ns, data) for ns, data in blobs if data != self.refuses]
        return [index for index, (_ns, data) in enumerate(blobs) if data == self.refuses]

    async def pending(self, epoch: int) -> list[tuple[bytes, bytes]]:
        if not self.up:
            raise TimeoutError("down")
        return list(self.pending_blobs)


def intake(peers: list[Peer], leading: Leading | None = None) -> tuple[GroupIntake, Mempool]:
    mempool = Mempool(MemoryStore(), max_pending_bytes=LIMIT)
    metrics = GroupMetrics(CollectorRegistry())
    group = GroupIntake(
        mempool,
        leading or Leading(),
        peers,
        metrics,  # type: ignore[arg-type]
        max_blob_bytes=LIMIT,
    )
    return group, mempool


def blob(data: bytes) -> Any:
    return submission_from_request(b"\x01", data, LIMIT)


async def test_acknowledged_once_a_majority_holds_the_blob() -> None:
    peers = [Peer("a"), Peer("b", up=False)]
    group, mempool = intake(peers)
    record, new = await group.submit(blob(b"x"))
    assert record.state is BlobState.PENDING and new
    assert peers[0].kept == [(7, bytes(28) + b"\x01", b"x")]
    assert [b.data for b in await mempool.pending() if group.eligible(b)] == [b"x"]


async def test_concurrent_blobs_share_one_call_per_peer() -> None:
    peers = [Peer("a"), Peer("b")]
    group, mempool = intake(peers)
    first = asyncio.ensure_future(group.submit(blob(b"first")))
    await asyncio.sleep(0)  # its round lingers for more blobs
    rest = await asyncio.gather(*(group.submit(blob(b"%d" % n)) for n in range(5)))
    assert (await first)[1] and all(new for _record, new in rest)
    assert [peer.calls for peer in peers] == [1, 1]  # all six in one round
    assert sorted(data for _e, _ns, data in peers[0].kept) == sorted(
        [b"first", b"0", b"1", b"2", b"3", b"4"]
    )
    assert mempool.count == 6 and all(group.eligible(b) for b in await mempool.pending())


async def test_a_blob_a_peer_refuses_is_not_acknowledged_but_its_round_mates_are() -> None:
    peers = [Peer("a", refuses=b"odd"), Peer("b", up=False)]
    group, mempool = intake(peers)
    answers = await asyncio.gather(
        group.submit(blob(b"fine")), group.submit(blob(b"odd")), return_exceptions=True
    )
    assert peers[0].calls == 1  # one round
    assert answers[0][0].state is BlobState.PENDING  # type: ignore[index]
    assert isinstance(answers[1], Unavailable)
    assert [b.data for b in await mempool.pending() if group.eligible(b)] == [b"fine"]


async def test_a_broken_peer_fails_only_its_own_call() -> None:
    group, mempool = intake([Peer("a", broken=True), Peer("b")])
    record, new = await group.submit(blob(b"x"))
    assert record.state is BlobState.PENDING and new
    assert [b.data for b in await mempool.pending() if group.eligible(b)] == [b"x"]


async def test_an_old_leader_writes_nothing_once_a_newer_one_collected_its_blobs() -> None:
    peers = [Peer("a"), Peer("b")]
    group, mempool = intake(peers)  # leading under epoch 7, as far as it knows
    assert await group.promise(8) == []  # a newer leader collected the pending blobs here
    with pytest.raises(NotLeader, match="epoch 8"):
        await group.submit(blob(b"late"))
    assert await mempool.pending() == [] and peers[0].kept == []


async def test_a_short_blob_is_pushed_again_once_a_peer_is_back() -> None:
    peers = [Peer("a", up=False), Peer("b", up=False)]
    group, mempool = intake(peers)
    with pytest.raises(Unavailable):
        await group.submit(blob(b"x"))
    assert [b for b in await mempool.pending() if group.eligible(b)] == []
    peers[1].up = True
    await group.push_short()
    assert [b.data for b in await mempool.pending() if group.eligible(b)] == [b"x"]
    calls = peers[1].calls
    await group.push_short()  # nothing short any more: no call
    assert peers[1].calls == calls


async def test_below_a_majority_nothing_is_acknowledged_nor_eligible() -> None:
    group, mempool = intake([Peer("a", up=False), Peer("b", up=False)])
    with pytest.raises(Unavailable, match="majority of 2"):
        await group.submit(blob(b"x"))
    # kept here, never included as is
    assert [b for b in await mempool.pending() if group.eligible(b)] == []


async def test_a_follower_without_a_leader_refuses() -> None:
    group, _ = intake([], Leading(leading=False))
    with pytest.raises(NotLeader):
        await group.submit(blob(b"x"))


async def test_older_epochs_are_refused_once_a_newer_one_was_promised() -> None:
    group, mempool = intake([Peer("a"), Peer("b")], Leading(leading=False))
    assert await group.keep(3, [(b"\x01", b"from epoch 3")]) == []
    assert [b.data for b in await group.promise(5)] == [b"from epoch 3"]
    with pytest.raises(StaleEpoch):
        await group.keep(3, [(b"\x01", b"late")])
    with pytest.raises(StaleEpoch):
        await group.promise(4)
    group.saw_epoch(9)
    with pytest.raises(StaleEpoch):
        await group.keep(5, [(b"\x01", b"late")])
    assert [b.data for b in await mempool.pending()] == [b"from epoch 3"]


async def test_a_promise_answers_with_the_blobs_admitted_before_it() -> None:
    group, _ = intake([Peer("a"), Peer("b")], Leading(leading=False))
    keep = asyncio.ensure_future(group.keep(3, [(b"\x01", b"admitted under epoch 3")]))
    await asyncio.sleep(0)  # admitted; its synced write still under way
    assert [b.data for b in await group.promise(4)] == [b"admitted under epoch 3"]
    assert await keep == []


async def test_replicated_blobs_are_validated_again() -> None:
    group, mempool = intake([], Leading(leading=False))
    refused = await group.keep(
        1, [(bytes(29), b"reserved namespace"), (b"\x01", b"fine"), (b"\x01", b"")]
    )
    assert refused == [0, 2]  # each blob checked here; the valid one kept
    assert [b.data for b in await mempool.pending()] == [b"fine"]


async def test_take_over_learns_from_a_majority_and_pushes_what_is_short() -> None:
    learned_only_at_a = (bytes(28) + b"\x01", b"acked by the old leader and a")
    a = Peer("a", pending_blobs=[learned_only_at_a])
    b = Peer("b", up=False)
    group, mempool = intake([a, b])
    await group.take_over(8)
    assert [p.data for p in await mempool.pending()] == [learned_only_at_a[1]]
    # held here and at a: a majority, so no push is needed and it may be included
    assert a.kept == []
    assert [group.eligible(b) for b in await mempool.pending()] == [True]
    assert group.promised == 8


async def test_take_over_without_a_majority_is_unavailable() -> None:
    group, _ = intake([Peer("a", up=False), Peer("b", up=False)])
    with pytest.raises(Unavailable, match="majority"):
        await group.take_over(8)
