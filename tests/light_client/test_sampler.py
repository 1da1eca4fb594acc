"""The sampler against in-process fake peers (seeded RNG, real short deadlines)."""

from __future__ import annotations

import random
import time

import pytest
from prometheus_client import CollectorRegistry

from da.header import Header
from da.metrics import LightMetrics
from da.sampling import CellRef, draw_coordinates
from erasure.square import ExtendedSquare
from light_client.peers import PeerPool
from light_client.sampler import Sampler, SamplingOutcome
from tests.light_client.fakes import FakePeer, producer_key, signed_chain

SAMPLES = 12


@pytest.fixture(scope="module")
def header(square: ExtendedSquare) -> Header:
    return signed_chain(square, producer_key(), 1)[0].header


async def run_sampler(
    header: Header,
    peers: list[FakePeer],
    rng: random.Random,
    metrics: LightMetrics | None = None,
    window: float = 1.0,
    timeout: float = 0.3,
) -> tuple[SamplingOutcome, list[CellRef], PeerPool]:
    pool = PeerPool(peers, requests_per_second=1000.0)
    sampler = Sampler(pool, request_timeout_seconds=timeout, rng=rng, metrics=metrics)
    coords = draw_coordinates(header.k, SAMPLES, rng)
    outcome = await sampler.sample(header, coords, time.monotonic() + window)
    return outcome, coords, pool


def count(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("da_light_samples_total", {"result": result})
    return value or 0.0


async def test_honest_peers_make_every_sample_verify(
    header: Header,
    square: ExtendedSquare,
    rng: random.Random,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    peers = [FakePeer(f"p{i}", square) for i in range(3)]
    outcome, coords, _ = await run_sampler(header, peers, rng, metrics)
    assert outcome.available and outcome.verified == set(coords)
    assert outcome.retried == set()  # each verified at the first peer asked
    assert count(registry, "ok") == SAMPLES
    assert sorted(c for p in peers for c in p.asked) == sorted(coords)  # each asked once
    assert sum(1 for p in peers if p.asked) >= 2  # spread over peers at random


async def test_withholding_everywhere_is_unavailable(
    header: Header, square: ExtendedSquare, rng: random.Random
) -> None:
    peers = [FakePeer("w", square, mode="withhold")]
    outcome, coords, _ = await run_sampler(header, peers, rng, window=0.5)
    assert not outcome.available and outcome.missing == set(coords)


async def test_withheld_cell_is_retried_same_coordinate_elsewhere(
    header: Header,
    square: ExtendedSquare,
    rng: random.Random,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    coords = draw_coordinates(header.k, SAMPLES, random.Random(1234))
    withholder = FakePeer("w", square, mode="withhold", withheld=set(coords))
    honest = FakePeer("h", square)
    outcome, drawn, _ = await run_sampler(header, [withholder, honest], rng, metrics)
    assert drawn == coords and outcome.available
    assert set(withholder.asked) | set(honest.asked) == set(coords)  # never a fresh coordinate
    assert set(honest.asked) == set(coords)  # what the withholder refused went to the other peer
    assert count(registry, "error") == len(withholder.asked)
    assert outcome.retried == set(withholder.asked)  # shown as "retried elsewhere" on the page


async def test_selective_withholding_alone_makes_the_height_unavailable(
    header: Header, square: ExtendedSquare, rng: random.Random
) -> None:
    coords = draw_coordinates(header.k, SAMPLES, random.Random(1234))
    peer = FakePeer("w", square, mode="withhold", withheld={coords[0]})
    outcome, _, _ = await run_sampler(header, [peer], rng, window=0.6)
    assert outcome.missing == {coords[0]}
    assert peer.asked.count(coords[0]) >= 2  # retried, never replaced


@pytest.mark.parametrize("mode", ["corrupt", "other_cell", "other_cell_same_coord"])
async def test_a_lying_peer_is_never_believed(
    mode: str,
    header: Header,
    square: ExtendedSquare,
    rng: random.Random,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    liar = FakePeer("liar", square, mode=mode)
    outcome, coords, pool = await run_sampler(header, [liar], rng, metrics, window=0.5)
    assert not outcome.verified and outcome.missing == set(coords)
    assert pool.is_shunned(liar) and liar.calls == 1  # shunned after the first bad answer
    assert count(registry, "bad_proof") == SAMPLES


@pytest.mark.parametrize("mode", ["corrupt", "other_cell", "other_cell_same_coord"])
async def test_an_honest_peer_beside_a_liar_still_gives_availability(
    mode: str, header: Header, square: ExtendedSquare, rng: random.Random
) -> None:
    liar, honest = FakePeer("liar", square, mode=mode), FakePeer("honest", square)
    outcome, coords, pool = await run_sampler(header, [liar, honest], rng)
    assert outcome.available and outcome.verified == set(coords)
    assert pool.is_shunned(liar) and not pool.is_shunned(honest)


async def test_a_slow_peer_times_out_and_its_cells_go_elsewhere(
    header: Header,
    square: ExtendedSquare,
    rng: random.Random,
    metrics: LightMetrics,
    registry: CollectorRegistry,
) -> None:
    slow, honest = FakePeer("slow", square, mode="slow", delay=5.0), FakePeer("h", square)
    outcome, coords, _ = await run_sampler(header, [slow, honest], rng, metrics, timeout=0.2)
    assert outcome.available
    assert count(registry, "timeout") == len(slow.asked) > 0


async def test_a_lagging_peer_is_asked_again_after_a_backoff(
    header: Header, square: ExtendedSquare, rng: random.Random
) -> None:
    peer = FakePeer("lag", square, mode="lagging", lag_calls=2)
    outcome, _, _ = await run_sampler(header, [peer], rng, window=3.0)
    assert outcome.available and peer.calls >= 3


async def test_the_same_seed_draws_the_same_coordinates_and_peers(
    header: Header, square: ExtendedSquare
) -> None:
    runs = []
    for _ in range(2):
        peers = [FakePeer(f"p{i}", square) for i in range(3)]
        await run_sampler(header, peers, random.Random(7))
        runs.append([p.asked for p in peers])
    assert runs[0] == runs[1]


async def test_requests_go_to_holders_and_one_batch_verifies_the_height(
    header: Header,
    square: ExtendedSquare,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import light_client.sampler as sampler_module

    batches: list[int] = []
    real = sampler_module.cells_verify

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler_module, "cells_verify", counting)
    lagging = FakePeer("lagging", square, mode="lagging", lag_calls=100)
    holders = [FakePeer("holder-1", square), FakePeer("holder-2", square)]
    pool = PeerPool([lagging, *holders], requests_per_second=1000.0)
    sampler = Sampler(pool, request_timeout_seconds=0.3, rng=rng)
    coords = draw_coordinates(header.k, SAMPLES, rng)
    deadline = time.monotonic() + 2.0
    outcome = await sampler.sample(header, coords, deadline, {"holder-1", "holder-2"})
    assert outcome.available
    assert lagging.calls == 0  # a peer not known to hold the block is not asked while one is
    assert all(h.asked for h in holders)  # spread over the holders at random
    assert batches == [SAMPLES]


async def test_when_the_holders_fail_the_other_peers_are_asked(
    header: Header, square: ExtendedSquare, rng: random.Random
) -> None:
    holder = FakePeer("holder", square, mode="withhold")
    other = FakePeer("other", square)
    pool = PeerPool([holder, other], requests_per_second=1000.0)
    sampler = Sampler(pool, request_timeout_seconds=0.3, rng=rng)
    coords = draw_coordinates(header.k, SAMPLES, rng)
    outcome = await sampler.sample(header, coords, time.monotonic() + 2.0, {"holder"})
    assert outcome.available
    assert set(holder.asked) == set(other.asked) == set(coords)  # same coordinates, retried
