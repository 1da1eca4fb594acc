"""Rebuilding a block from the samples light clients hold (PROTOCOL.md §13).

When a block cannot be had whole from producers or peers, the storage node asks light clients
(samplers) for the cells they verified and kept (`SamplingService.GetHeldSamples`): a bounded
number at a time, in random order. Every answer is verified, each cell against its own coordinate
and its row's commitment, before any of it counts; a sampler serving one bad cell is shunned and
all its cells dropped. Gathering stops as soon as the cells held suffice
(`erasure.coverage.recoverable`, a counting check), so a block costs as few requests as possible.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

from da.api import convert
from da.api.client import open_channel
from da.cells import ProvenCell, cells_verify
from da.header import Header
from da.storage_node.fetch import run_cpu
from da.storage_node.remotes import RemoteError, describe
from da.storage_node.samplers import SamplerDirectory
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.coverage import recoverable
from erasure.errors import ErasureError

log = logging.getLogger(__name__)

GATHER_CONCURRENCY = 8  # GetHeldSamples calls in flight at once
Coord = tuple[int, int]


class HeldSource(Protocol):
    """A light client serving its kept samples."""

    @property
    def name(self) -> str: ...

    async def get_held(self, height: int, k: int) -> list[ProvenCell]:
        """Every cell it keeps for `height` (form-checked, unverified); raises a `RemoteError`
        or an `ErasureError` for a malformed answer."""
        ...


class GrpcSampler:
    """A light client reached over gRPC, for one gathering (then `close`d)."""

    def __init__(self, address: str, timeout: float, tls_ca: Path | None = None) -> None:
        self.name = address
        self._timeout = timeout
        self._channel = open_channel(address, tls_ca=tls_ca)

    async def close(self) -> None:
        await self._channel.close()

    async def get_held(self, height: int, k: int) -> list[ProvenCell]:
        stub = da_pb2_grpc.SamplingServiceStub(self._channel)
        request = pb.GetHeldSamplesRequest(height=height)
        msg = await stub.GetHeldSamples(request, timeout=self._timeout)
        return convert.cells_from_pb(msg.cells, k)


async def gather_held(
    sources: Sequence[HeldSource],
    header: Header,
    cells: dict[Coord, bytes],
    proofs: dict[Coord, bytes],
    *,
    on_bad: Callable[[str], None],
    concurrency: int = GATHER_CONCURRENCY,
    executor: Executor | None = None,
) -> int:
    """Add the verified held cells of `sources` (asked in the order given, `concurrency` at a
    time) to `cells`/`proofs` until they make the square recoverable or every source was asked.
    `on_bad(name)` is called for a source that served a cell failing its proof. Returns how many
    cells were added."""
    k = header.k
    if recoverable(k, cells):
        return 0
    queue = list(reversed(sources))
    added = 0
    done = asyncio.Event()

    async def worker() -> None:
        nonlocal added
        while queue and not done.is_set():
            source = queue.pop()
            served = await _ask(source, header)
            if not served:
                continue
            if not await run_cpu(executor, cells_verify, header.commitments, served):
                log.warning(
                    "sampler %s served cells of height %d that fail their proofs: shunned",
                    source.name,
                    header.height,
                )
                on_bad(source.name)
                continue
            if done.is_set():
                return
            for cell in served:
                coord = (cell.row, cell.col)
                if coord not in cells:
                    cells[coord], proofs[coord] = cell.data, cell.proof
                    added += 1
            if recoverable(k, cells):
                done.set()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    stopper = asyncio.create_task(done.wait())
    ends: list[asyncio.Future[Any]] = [stopper, asyncio.gather(*workers)]
    try:  # until the cells suffice or every source was asked
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*workers, stopper):
            task.cancel()
        await asyncio.gather(*workers, stopper, return_exceptions=True)
    return added


async def _ask(source: HeldSource, header: Header) -> list[ProvenCell]:
    try:
        return await source.get_held(header.height, header.k)
    except (*RemoteError, ErasureError) as e:
        log.info("sampler %s: GetHeldSamples(%d): %s", source.name, header.height, describe(e))
        return []


class LightGatherer:
    """Gathers from the samplers of a `SamplerDirectory` over gRPC."""

    def __init__(
        self,
        directory: SamplerDirectory,
        *,
        timeout: float,
        tls_ca: Path | None = None,
        concurrency: int = GATHER_CONCURRENCY,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self._timeout = timeout
        self._tls_ca = tls_ca
        self._concurrency = concurrency
        self._rng = rng if rng is not None else secrets.SystemRandom()

    async def gather(
        self,
        header: Header,
        cells: dict[Coord, bytes],
        proofs: dict[Coord, bytes],
        executor: Executor | None = None,
    ) -> int:
        """`gather_held` over every usable sampler, in random order."""
        addresses = self.directory.candidates(self._rng)
        if not addresses:
            return 0
        log.info(
            "height %d: gathering held samples from %d light clients", header.height, len(addresses)
        )
        samplers = [GrpcSampler(address, self._timeout, self._tls_ca) for address in addresses]
        try:
            return await gather_held(
                samplers,
                header,
                cells,
                proofs,
                on_bad=self.directory.shun,
                concurrency=self._concurrency,
                executor=executor,
            )
        finally:
            for sampler in samplers:
                await sampler.close()
