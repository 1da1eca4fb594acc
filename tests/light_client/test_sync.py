"""Header sync: catch-up below the head, reconnect with backoff after failures."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Callable

import pytest

from da.header import SignedHeader
from da.signing import KeyPair
from da.store.memory import MemoryStore
from erasure.square import ExtendedSquare
from light_client.chain import HeaderChain
from light_client.errors import PeerCallFailed
from light_client.peers import PeerPool, RawHeader
from light_client.sync import INITIAL_BACKOFF_SECONDS, HeaderSync
from tests.light_client.fakes import (
    FakePeer,
    producer_key,
    raw,
    resign,
    signed_chain,
    trust_root,
)


class FlakyPeer(FakePeer):
    """Fails its first `failures` subscriptions with UNAVAILABLE."""

    failures: int = 2
    subscriptions: int = 0

    async def subscribe_headers(self, from_height: int) -> AsyncGenerator[RawHeader, None]:
        self.subscriptions += 1
        if self.subscriptions <= self.failures:
            raise PeerCallFailed(self.name, "UNAVAILABLE", "connection refused")
        async for header in super().subscribe_headers(from_height):
            yield header


async def test_catch_up_then_reconnect_with_backoff(square: ExtendedSquare, key: KeyPair) -> None:
    headers = signed_chain(square, key, 5)
    peer = FlakyPeer("flaky", square, headers=headers[:3])
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    seen: list[tuple[int, bool]] = []
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    sync = HeaderSync(
        [peer],
        chain,
        lambda s, live: seen.append((s.header.height, live)),
        request_timeout_seconds=1.0,
        rng=random.Random(2),
        sleep=sleep,
    )
    task = asyncio.create_task(sync.run())
    try:
        await until(lambda: peer.subscriptions > peer.failures)
        for signed in headers[3:]:
            await peer.new_headers.put(signed)
        await until(lambda: chain.head == 5)
    finally:
        task.cancel()
    assert seen[:3] == [(3, False), (2, False), (1, False)]  # latest first, then the gap below
    assert seen[3:] == [(4, True), (5, True)]
    assert len(sleeps) == 2 and INITIAL_BACKOFF_SECONDS / 2 <= sleeps[0] <= INITIAL_BACKOFF_SECONDS
    assert INITIAL_BACKOFF_SECONDS <= sleeps[1] <= 2 * INITIAL_BACKOFF_SECONDS  # it grew


async def test_a_peer_answering_the_wrong_height_is_not_believed(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers: list[SignedHeader] = signed_chain(square, key, 3)

    class Liar(FakePeer):
        async def get_header(self, height: int, timeout: float) -> RawHeader:
            return await super().get_header(0, timeout)  # always the latest

    peer = Liar("liar", square, headers=headers)
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    sync = HeaderSync(
        [peer], chain, lambda s, live: None, request_timeout_seconds=1.0, rng=random.Random(2)
    )
    await sync.receive(peer, await peer.get_header(3, 1.0), live=True)
    assert chain.head == 3 and chain.get(2) is None


async def test_gaps_are_filled_with_the_linked_headers_past_a_peer_on_an_equivocating_fork(
    square: ExtendedSquare, key: KeyPair
) -> None:
    """The fork peer's header at 3 is accepted first (first seen wins); below it the fork
    peer's own headers do not match the links, so the honest peer's are fetched instead."""
    honest_headers = signed_chain(square, key, 3)
    fork_headers = [resign(h, key, time_ms=h.header.time_ms + 1) for h in honest_headers]
    fork = FakePeer("fork", square, headers=fork_headers)
    honest = FakePeer("honest", square, headers=honest_headers)
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    sync = HeaderSync(
        [fork, honest],
        chain,
        lambda s, live: None,
        request_timeout_seconds=1.0,
        rng=random.Random(2),
    )
    await sync.receive(fork, await fork.get_header(3, 1.0), live=True)
    assert [chain.get(h) for h in (1, 2, 3)] == [*honest_headers[:2], fork_headers[2]]
    assert sync.holders(2) == {"honest"}


async def test_a_gap_an_interrupted_fill_left_is_filled_at_the_next_catch_up(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 4)
    peer = FakePeer("peer", square, headers=headers[2:])  # has only heights 3 and 4 at first
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    sync = HeaderSync(
        [peer], chain, lambda s, live: None, request_timeout_seconds=1.0, rng=random.Random(2)
    )
    await sync.receive(peer, await peer.get_header(4, 1.0), live=True)
    assert chain.head == 4 and chain.get(3) is not None and chain.get(2) is None
    peer.headers[:0] = headers[:2]
    await sync.fill_gaps(peer)
    assert [chain.get(h) for h in (1, 2, 3, 4)] == headers


async def until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_waiting_for_holders_ends_when_enough_announced_or_at_the_timeout(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 1)
    peers = [FakePeer(f"p{i}", square, headers=headers) for i in range(3)]
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    sync = HeaderSync(
        peers, chain, lambda s, live: None, request_timeout_seconds=1.0, rng=random.Random(2)
    )
    await sync.receive(peers[0], raw(headers[0]), live=True)
    waiting = asyncio.create_task(sync.wait_for_holders(1, 2, timeout=5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await sync.receive(peers[1], raw(headers[0]), live=True)  # the same bytes: a second holder
    assert await asyncio.wait_for(waiting, 1.0) == {"p0", "p1"}
    assert await sync.wait_for_holders(1, 3, timeout=0.05) == {"p0", "p1"}  # timed out


# --- issue 12: holders are peers that served a valid signature; forgers are shunned ----------


def _sync_with_pool(
    peers: list[FakePeer], key: KeyPair, on_shun: Callable[[], None] = lambda: None
) -> tuple[HeaderSync, HeaderChain, PeerPool]:
    chain = HeaderChain(trust_root(key), MemoryStore(), max_rows=64, rng=random.Random(1))
    pool = PeerPool(peers, requests_per_second=1000.0, on_shun=on_shun)
    sync = HeaderSync(
        peers,
        chain,
        lambda s, live: None,
        request_timeout_seconds=1.0,
        rng=random.Random(2),
        pool=pool,
    )
    return sync, chain, pool


async def test_a_holder_served_the_header_with_its_valid_signature(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 2)
    good, copycat = FakePeer("good", square), FakePeer("copycat", square)
    sync, chain, pool = _sync_with_pool([good, copycat], key)
    await sync.receive(good, raw(headers[0]), live=True)
    # the accepted header's bytes with another (valid-looking) signature: not a holder
    await sync.receive(copycat, RawHeader(headers[0].raw, headers[1].signature), live=True)
    assert sync.holders(1) == {"good"}
    assert pool.is_shunned(copycat) and not pool.is_shunned(good)


async def test_a_forger_is_shunned_once_and_then_ignored(
    square: ExtendedSquare, key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    headers = signed_chain(square, key, 3)
    stranger = producer_key(9)
    forger, honest = FakePeer("forger", square), FakePeer("honest", square)
    shunned: list[int] = []  # what da_light_peers_shunned_total counts
    sync, chain, pool = _sync_with_pool([forger, honest], key, lambda: shunned.append(1))
    with caplog.at_level(logging.WARNING):
        for signed in headers:
            forged = resign(signed, stranger, producer=stranger.public)
            await sync.receive(forger, raw(forged), live=True)
        await sync.receive(forger, RawHeader(b"DAH1 junk", bytes(96)), live=True)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # the rejection and the shunning, not one per forgery
    assert pool.is_shunned(forger) and [p.name for p in pool.usable()] == ["honest"]
    assert shunned == [1]
    await sync.receive(honest, raw(headers[0]), live=True)
    assert chain.head == 1 and sync.holders(1) == {"honest"}


async def test_a_header_from_another_fork_does_not_shun_the_peer(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 2)
    peer = FakePeer("peer", square)
    sync, chain, pool = _sync_with_pool([peer], key)
    await sync.receive(peer, raw(headers[0]), live=True)
    unlinked = resign(headers[1], key, prev_hash=b"\x01" * 32)  # validly signed, other fork
    await sync.receive(peer, raw(unlinked), live=True)
    assert not pool.is_shunned(peer)
