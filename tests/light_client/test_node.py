"""The whole light client (sync, scheduler, sampler, state) against in-process fake peers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from da.errors import UnknownHeight
from da.metrics import LightMetrics
from da.sampling import sample_confidence
from da.signing import KeyPair
from da.store.checkpoint import SamplingResult, SamplingStatus
from da.store.memory import MemoryStore
from erasure.square import ExtendedSquare
from light_client.config import LightClientConfig
from light_client.node import LightClient, sample_count
from light_client.service import availability
from tests.light_client.fakes import CHAIN_ID, FakePeer, resign, signed_chain

SAMPLES_AT_K1 = 7  # smallest s with 1 - (1 - 130/256)^s >= 0.99


def config(key: KeyPair, **overrides: object) -> LightClientConfig:
    settings: dict[str, object] = dict(
        data_dir=Path("unused"),
        peers=("fake:1",),
        chain_id=CHAIN_ID,
        trusted_keys=(key.public.hex(),),
        sample_window_seconds=1.5,
        request_timeout_seconds=0.3,
        peer_requests_per_second=1000.0,
    )
    settings.update(overrides)
    return LightClientConfig(**settings)  # type: ignore[arg-type]


@asynccontextmanager
async def running(client: LightClient) -> AsyncIterator[LightClient]:
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def verdicts(client: LightClient, n: int, timeout: float = 10.0) -> list[SamplingResult]:
    async with asyncio.timeout(timeout):
        return [await client.verdicts.get() for _ in range(n)]


def test_sample_count() -> None:
    assert sample_count(1, None, 0.99) == SAMPLES_AT_K1
    assert sample_count(64, None, 0.99) == 16
    assert sample_count(1, 5, None) == 5 and sample_count(1, 10_000, None) == 256


async def test_every_height_becomes_available_and_a_restart_does_not_resample(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 5)
    store = MemoryStore()
    peers: Sequence[FakePeer] = [FakePeer(f"p{i}", square, headers=headers[:3]) for i in range(2)]
    registry = CollectorRegistry()
    client = LightClient(
        config(key), peers=peers, store=store, metrics=LightMetrics(registry), rng=random.Random(3)
    )
    async with running(client):
        first = await verdicts(client, 3)
        assert first[0].height == 3  # the head first, then the backlog newest first
        await peers[0].new_headers.put(headers[3])
        (live,) = await verdicts(client, 1)
    assert live.height == 4
    for height in range(1, 5):
        got = availability(client.chain, client.state, height)
        assert got.status is SamplingStatus.AVAILABLE
        assert got.confidence == sample_confidence(1, SAMPLES_AT_K1)
        assert got.samples == SAMPLES_AT_K1
    assert registry.get_sample_value("da_light_headers_sampled_total", {"result": "available"}) == 4
    assert registry.get_sample_value("da_light_head_height") == 4
    assert client.state.checkpoint == 4
    with pytest.raises(UnknownHeight):
        availability(client.chain, client.state, 5)

    asked_before = [len(p.asked_heights) for p in peers]
    again = LightClient(config(key), peers=peers, store=store, rng=random.Random(4))
    async with running(again):
        # A new height after the restart: the headers before it were offered first, so once it
        # is concluded, whatever the restart would resample is already queued or asked for.
        await peers[0].new_headers.put(headers[4])
        (fresh,) = await verdicts(again, 1)
        assert fresh.height == 5
        assert not again._backlog and again._queued <= {5}  # nothing left to resample
    asked_after = [h for p, n in zip(peers, asked_before, strict=True) for h in p.asked_heights[n:]]
    assert set(asked_after) == {5}  # ... and nothing of 1..4 was asked again
    assert availability(again.chain, again.state, 0).height == 5


async def test_a_restart_resumes_unfinished_heights(square: ExtendedSquare, key: KeyPair) -> None:
    headers = signed_chain(square, key, 3)
    store = MemoryStore()
    withholder = FakePeer("w", square, mode="withhold", headers=headers)
    client = LightClient(
        config(key, sample_window_seconds=60.0),
        peers=[withholder],
        store=store,
        rng=random.Random(3),
    )
    async with running(client):
        await asyncio.sleep(1.0)
        assert availability(client.chain, client.state, 3).status is SamplingStatus.SAMPLING
    honest = FakePeer("h", square, headers=headers)
    again = LightClient(config(key), peers=[honest], store=store, rng=random.Random(4))
    async with running(again):
        done = await verdicts(again, 3)
    assert sorted(r.height for r in done) == [1, 2, 3]
    assert all(r.status is SamplingStatus.AVAILABLE for r in done)


async def test_withholding_makes_a_height_unavailable(square: ExtendedSquare, key: KeyPair) -> None:
    headers = signed_chain(square, key, 1)
    peer = FakePeer("w", square, mode="withhold", headers=headers)
    registry = CollectorRegistry()
    client = LightClient(
        config(key, sample_window_seconds=0.5),
        peers=[peer],
        store=MemoryStore(),
        metrics=LightMetrics(registry),
        rng=random.Random(3),
    )
    async with running(client):
        (verdict,) = await verdicts(client, 1)
    assert verdict == SamplingResult(1, SamplingStatus.UNAVAILABLE, 0.0, 0, headers[0].hash)
    assert (
        registry.get_sample_value("da_light_headers_sampled_total", {"result": "unavailable"}) == 1
    )


async def test_an_equivocating_peer_is_refused(square: ExtendedSquare, key: KeyPair) -> None:
    headers = signed_chain(square, key, 2)
    twin = resign(headers[1], key, time_ms=99)
    honest = FakePeer("h", square, headers=headers)
    registry = CollectorRegistry()
    client = LightClient(
        config(key),
        peers=[honest],
        store=MemoryStore(),
        metrics=LightMetrics(registry),
        rng=random.Random(3),
    )
    evil = FakePeer("evil", square, headers=[headers[0], twin])
    async with running(client):
        await verdicts(client, 2)
        await client.sync.receive(evil, await evil.get_header(2, 1.0), live=True)
    assert client.chain.get(2) == headers[1]
    assert registry.get_sample_value("da_light_equivocations_total") == 1
