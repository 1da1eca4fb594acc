"""Light clients keep their verified samples with the verdict and serve them (PROTOCOL.md §13):
one write per verdict, pruning by heights and bytes, GetHeldSamples only once final, and the
HeaderService over the verified chain."""

from __future__ import annotations

import asyncio
import random

import pytest
from prometheus_client import CollectorRegistry

from da.cells import ProvenCell
from da.errors import NotSampled, UnknownHeight
from da.metrics import LightMetrics
from da.serving import HeaderServicer
from da.signing import KeyPair
from da.store import schema
from da.store.checkpoint import SamplingResult, SamplingStatus, get_result
from da.store.headers import get_signed_header
from da.store.held import BYTES_PER_HELD_CELL, get_held
from da.store.memory import MemoryStore
from da.v1 import da_pb2 as pb
from erasure import kzg
from erasure.square import ExtendedSquare
from light_client.chain import HeaderChain
from light_client.node import LightClient
from light_client.service import (
    ChainHeaders,
    SamplingServicer,
    availability,
    held_samples,
)
from light_client.state import AvailabilityState
from tests.light_client.fakes import FakePeer, signed_chain, trust_root
from tests.light_client.test_node import config, running, verdicts


def _cells(square: ExtendedSquare, n: int) -> list[ProvenCell]:
    return [ProvenCell(0, c, square.cell(0, c), square.proof(0, c)) for c in range(n)]


def _result(height: int, status: SamplingStatus = SamplingStatus.AVAILABLE) -> SamplingResult:
    return SamplingResult(height, status, 0.9, 3)


def test_verdict_header_and_samples_are_one_write(square: ExtendedSquare, key: KeyPair) -> None:
    (signed,) = signed_chain(square, key, 1)
    store = MemoryStore()
    writes: list[int] = []
    original = store.write
    store.write = lambda batch, sync=False: (writes.append(len(batch)), original(batch, sync=sync))  # type: ignore[method-assign]
    state = AvailabilityState(store)
    state.finish(_result(1), signed, _cells(square, 3))
    assert len(writes) == 1  # header, verdict, checkpoint, samples: one batch
    assert get_signed_header(store, 1) == (signed.raw, signed.signature)
    assert get_result(store, 1) == _result(1)
    assert get_held(store, 1) == _cells(square, 3)
    assert state.cells_held == 3


def test_unavailable_heights_keep_what_verified(square: ExtendedSquare, key: KeyPair) -> None:
    (signed,) = signed_chain(square, key, 1)
    store = MemoryStore()
    state = AvailabilityState(store)
    state.finish(_result(1, SamplingStatus.UNAVAILABLE), signed, _cells(square, 2))
    reply = held_samples(store, state, 1)
    assert [(c.row, c.col) for c in reply.cells] == [(0, 0), (0, 1)]


def test_pruned_by_heights_then_by_bytes(square: ExtendedSquare, key: KeyPair) -> None:
    headers = signed_chain(square, key, 6)
    store = MemoryStore()
    state = AvailabilityState(store, keep_heights=4, keep_bytes=3 * (2 + 2 * BYTES_PER_HELD_CELL))
    for signed in headers[:5]:
        state.finish(_result(signed.header.height), signed, _cells(square, 2))
        state.prune(signed.header.height)
    assert [h for h in range(1, 6) if get_held(store, h) is not None] == [3, 4, 5]  # bytes bound
    assert get_signed_header(store, 1) is None and get_result(store, 2) is None
    assert state.concluded(2)  # pruned heights are never sampled again
    state.finish(_result(6), headers[5], [])
    state.prune(6)
    assert get_held(store, 3) is None and get_held(store, 6) == []
    assert all(
        key[:1] != schema.LIGHT_RESULT or key >= schema.light_result_key(3)
        for key, _ in store.iterate(b"")
    )


def test_held_samples_only_once_the_verdict_is_final(square: ExtendedSquare, key: KeyPair) -> None:
    (signed,) = signed_chain(square, key, 1)
    store = MemoryStore()
    state = AvailabilityState(store)
    with pytest.raises(UnknownHeight):
        held_samples(store, state, 1)  # never seen
    state.begin(1)
    with pytest.raises(UnknownHeight):
        held_samples(store, state, 1)  # still sampling: coordinates not revealed
    state.finish(_result(1), signed, _cells(square, 1))
    (cell,) = held_samples(store, state, 1).cells
    assert kzg.verify_cells([square.commitments[0]], [cell.col], [cell.data], [cell.proof])
    with pytest.raises(UnknownHeight):
        held_samples(store, state, 0)


async def test_client_keeps_its_samples_and_serves_headers(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 3)
    peers = [FakePeer("p", square, headers=headers[:2])]
    registry = CollectorRegistry()
    store = MemoryStore()
    client = LightClient(
        config(key, samples=5),
        peers=peers,
        store=store,
        metrics=LightMetrics(registry),
        rng=random.Random(5),
    )
    service = HeaderServicer(ChainHeaders(client.chain, store), client.notifier, poll_seconds=0.05)
    async with running(client):
        await verdicts(client, 2)
        latest = await service.GetHeader(pb.GetHeaderRequest(height=0), None)
        assert latest.header == headers[1].raw
        stream = service.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1), None)
        got = [await anext(stream), await anext(stream)]
        await peers[0].new_headers.put(headers[2])
        async with asyncio.timeout(5):
            got.append(await anext(stream))
        await stream.aclose()
        await verdicts(client, 1)
    assert [g.header for g in got] == [h.raw for h in headers]
    for height in (1, 2, 3):
        cells = held_samples(store, client.state, height).cells
        assert len(cells) == 5
    assert registry.get_sample_value("da_light_samples_held") == 15
    with pytest.raises(UnknownHeight):
        await service.GetHeader(pb.GetHeaderRequest(height=9), None)


def test_a_height_skipped_at_restart_is_not_sampling_forever(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 3)
    store = MemoryStore()
    chain = HeaderChain(trust_root(key), store, max_rows=64, rng=random.Random(1))
    for signed in headers:
        chain.offer(signed, "p")
    state = AvailabilityState(store)
    assert availability(chain, state, 2).status is SamplingStatus.SAMPLING  # queued
    state.skip_to(2)  # a restart far behind: heights up to 2 are below the backlog
    with pytest.raises(NotSampled):
        availability(chain, state, 2)
    assert availability(chain, state, 3).status is SamplingStatus.SAMPLING


async def test_a_verdict_names_its_header_and_is_stored_with_it(
    square: ExtendedSquare, key: KeyPair
) -> None:
    headers = signed_chain(square, key, 1)
    store = MemoryStore()
    client = LightClient(
        config(key, samples=3),
        peers=[FakePeer("p", square, headers=headers)],
        store=store,
        rng=random.Random(5),
    )
    async with running(client):
        (verdict,) = await verdicts(client, 1)
    assert verdict.header_hash == headers[0].hash
    assert get_result(store, 1) == verdict  # survives a restart with its header hash
    servicer = SamplingServicer(client.chain, client.state, store)
    reply = await servicer.GetAvailability(pb.GetAvailabilityRequest(height=1), None)
    assert reply.header_hash == headers[0].hash and reply.status == pb.AVAILABLE
    # a stored verdict about another header is no verdict on the header held
    other = SamplingResult(1, SamplingStatus.AVAILABLE, 0.9, 3, b"\x07" * 32)
    client.state.finish(other)
    with pytest.raises(NotSampled):
        availability(client.chain, client.state, 1)
