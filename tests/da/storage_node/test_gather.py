"""Rebuilding blocks from cells held by light clients, and repair that one lying node cannot
spoil (PROTOCOL.md §13; issue 12): gathering verifies every cell against its own coordinate, shuns
liars, and stops as soon as the cells suffice."""

from __future__ import annotations

import logging
import random
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from da.api.config import ServerConfig
from da.api.server import create_server, stop_server
from da.cells import ProvenCell
from da.errors import Unavailable
from da.header import Header
from da.metrics import StorageMetrics
from da.sampling import draw_coordinates
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import MemorySink, fetch_block
from da.storage_node.gather import gather_held
from da.storage_node.samplers import SamplerDirectory, SamplerRegistryServicer, caller_host
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.coverage import recoverable
from light_client.errors import PeerCallFailed
from light_client.peers import GrpcPeer
from tests.da.storage_node.chain import Block, chain
from tests.da.storage_node.conftest import Serve
from tests.da.storage_node.test_sync import NoRows


class Withholding(NoRows):
    async def GetSamples(self, request: Any, context: Any) -> Any:
        raise Unavailable("withheld")


class LyingCells(NoRows):
    """Answers every GetSamples with cells that fail their proofs (zeroed data)."""

    async def GetSamples(self, request: pb.GetSamplesRequest, context: Any) -> Any:
        response = await super().GetSamples(request, context)
        for cell in response.cells:
            cell.data = bytes(len(cell.data))
        return response


@dataclass
class HeldBy:
    """A light client holding some cells of `block` (in-process stand-in for GetHeldSamples)."""

    name: str
    block: Block
    coords: list[tuple[int, int]]
    lie: bool = False
    asked: list[int] = field(default_factory=list)

    async def get_held(self, height: int, k: int) -> list[ProvenCell]:
        self.asked.append(height)
        square = self.block.square
        cells = [ProvenCell(r, c, square.cell(r, c), square.proof(r, c)) for r, c in self.coords]
        if self.lie:  # a valid proof of another cell: must not count for this coordinate
            cells = [ProvenCell(c.row, (c.col + 1) % 128, c.data, c.proof) for c in cells]
        return cells


def samplers(block: Block, count: int, samples: int, seed: int) -> list[HeldBy]:
    rng = random.Random(seed)
    k = block.signed.header.k
    return [
        HeldBy(f"lc{i}", block, [(c.row, c.col) for c in draw_coordinates(k, samples, rng)])
        for i in range(count)
    ]


@dataclass
class Gatherer:
    """`fetch_block`'s samplers: these sources, shunned through a real directory."""

    sources: list[HeldBy]
    directory: SamplerDirectory = field(default_factory=SamplerDirectory)

    async def gather(
        self, header: Header, cells: dict, proofs: dict, executor: Executor | None = None
    ) -> int:
        return await gather_held(
            self.sources, header, cells, proofs, on_bad=self.directory.shun, concurrency=1
        )


def _union(sources: list[HeldBy]) -> set[tuple[int, int]]:
    return {coord for s in sources for coord in s.coords}


async def test_gathering_stops_as_soon_as_the_cells_suffice() -> None:
    block = chain(1)[0]
    header = block.signed.header
    sources = samplers(block, 40, 7, seed=1)
    needed = next(n for n in range(1, 41) if recoverable(header.k, _union(sources[:n])))
    assert needed < 40
    cells: dict = {}
    proofs: dict = {}
    added = await gather_held(sources, header, cells, proofs, on_bad=lambda _: None, concurrency=1)
    assert [bool(s.asked) for s in sources] == [i < needed for i in range(40)]
    assert set(cells) == _union(sources[:needed]) and added == len(cells)
    assert recoverable(header.k, cells)


async def test_bad_proofs_shun_the_sampler_and_the_rebuild_still_succeeds(
    serve: Serve, registry: CollectorRegistry
) -> None:
    block = chain(3, big_at=(3,))[2]  # k = 2
    header = block.signed.header
    liar = HeldBy("liar", block, [(r, c) for r in range(4) for c in range(128)], lie=True)
    honest = samplers(block, 60, 10, seed=2)
    gatherer = Gatherer([liar, *honest])
    withholding, _, _ = await serve([block], share=Withholding)
    sink = MemorySink()
    await fetch_block(
        [withholding], header, sink, samplers=gatherer, observer=StorageMetrics(registry)
    )
    assert [(list(c), list(p)) for c, p in sink.rows()] == [
        (list(c), list(p)) for c, p in block.rows()
    ]
    assert gatherer.directory.is_shunned("liar")
    assert registry.get_sample_value("da_storage_recoveries_total", {"result": "recovered"}) == 1
    light = registry.get_sample_value("da_storage_cells_collected_total", {"source": "light"})
    assert light is not None and light >= 1
    assert not any(h.asked for h in honest[-5:])  # stopped early


async def test_too_few_cells_fail_cleanly_naming_the_counts(
    serve: Serve, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    block = chain(1)[0]
    sources = samplers(block, 2, 7, seed=3)
    withholding, _, _ = await serve([block], share=Withholding)
    sink = MemorySink()
    with caplog.at_level(logging.WARNING), pytest.raises(BlockUnavailable):
        await fetch_block(
            [withholding],
            block.signed.header,
            sink,
            samplers=Gatherer(sources),
            observer=StorageMetrics(registry),
        )
    assert sink.rows() == []
    rows = [sum(1 for r, _ in _union(sources) if r == row) for row in (0, 1)]
    assert f"cells per row {rows}" in caplog.text and "cells per column [" in caplog.text
    assert (
        registry.get_sample_value("da_storage_recoveries_total", {"result": "unrecoverable"}) == 1
    )


async def test_one_lying_peer_cannot_make_a_recoverable_block_unrecoverable(
    serve: Serve,
) -> None:
    """Issue 12: the first remote's cells used to win unverified; its bad cells then left the
    rows without enough good cells although an honest peer served every one of them."""
    block = chain(3, big_at=(3,))[2]  # k = 2, no row served whole anywhere
    liar, _, _ = await serve([block], share=LyingCells)
    honest, _, _ = await serve([block], share=NoRows)
    sink = MemorySink()
    got = await fetch_block([liar, honest], block.signed.header, sink)
    assert [list(c) for c, _ in sink.rows()] == [list(c) for c, _ in block.rows()]
    assert got.repaired == 0


async def test_a_light_client_announcement_lists_its_port_on_the_callers_host() -> None:
    directory = SamplerDirectory(ttl_seconds=30)
    server, port = await create_server(
        ServerConfig(rate_limit_per_second=0),
        [(da_pb2_grpc.add_SamplerRegistryServicer_to_server, SamplerRegistryServicer(directory))],
        rpc_metrics=None,
        service_names=(),
    )
    peer = GrpcPeer(f"127.0.0.1:{port}")
    try:
        assert await peer.announce(4321, timeout=5) == 30
        with pytest.raises(PeerCallFailed):
            await peer.announce(0, timeout=5)  # INVALID_ARGUMENT
    finally:
        await peer.close()
        await stop_server(server, grace=0)
    assert directory.candidates(random.Random(1)) == ["127.0.0.1:4321"]


def test_directory_bounds_announcements() -> None:
    now = [0.0]
    directory = SamplerDirectory(
        ("10.0.0.9:1",), ttl_seconds=10, max_announced=5, per_host=2, clock=lambda: now[0]
    )
    for port in (1, 2, 3):
        directory.announce("10.0.0.1", port)
    for host in range(2, 6):
        directory.announce(f"10.0.0.{host}", 7)
    listed = set(directory.candidates(random.Random(1)))
    assert "10.0.0.1:1" not in listed and "10.0.0.9:1" in listed  # per-host cap, oldest out
    assert len(listed - {"10.0.0.9:1"}) == 5  # overall bound
    directory.shun("10.0.0.5:7")
    assert "10.0.0.5:7" not in directory.candidates(random.Random(1))
    now[0] = 11.0
    assert directory.candidates(random.Random(1)) == ["10.0.0.9:1"]  # expired, configured stay
    assert caller_host("ipv4:127.0.0.1:5555") == "127.0.0.1"
    assert caller_host("ipv6:[::1]:5555") == "::1"
