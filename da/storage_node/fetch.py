"""Getting every verified row of a block: whole rows by GetRow from the producer or peers, and,
for rows nobody serves whole, cells gathered with GetSamples and rebuilt (DESIGN 8).

Nothing fetched is trusted before it verifies against the header's row commitment: a row is
checked in one batch (`erasure.kzg.verify_cells`), gathered cells by `recover_square` with their
proofs. CPU work runs in `executor` when one is given (a process pool), else inline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from da.header import Header
from da.sampling import CellRef
from da.serving import MAX_COORDS_PER_REQUEST
from da.storage_node.errors import BlockUnavailable
from da.storage_node.remotes import Remote, RemoteError, describe
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.errors import ErasureError, Unrecoverable
from erasure.recovery import recover_square

log = logging.getLogger(__name__)

ROW_FETCH_CONCURRENCY = 8

Row = tuple[Sequence[bytes], Sequence[bytes]]
T = TypeVar("T")


@dataclass(frozen=True)
class FetchedBlock:
    """Every extended row of a block, verified; `repaired` cells were rebuilt, not fetched."""

    rows: list[Row]
    repaired: int
    source: str


def row_verifies(commitment: bytes, cells: Sequence[bytes], proofs: Sequence[bytes]) -> bool:
    """True iff the 128 cells of a row verify against its commitment (one batch)."""
    return kzg.verify_cells([commitment] * len(cells), range(len(cells)), cells, proofs)


def rows_verify(commitments: Sequence[bytes], rows: Sequence[Row]) -> bool:
    """True iff every cell of every row verifies against its row commitment (one batch)."""
    width = range(CELLS_PER_EXT_ROW)
    return kzg.verify_cells(
        [commitments[r] for r in range(len(rows)) for _ in width],
        [c for _ in rows for c in width],
        [cell for cells, _ in rows for cell in cells],
        [proof for _, proofs in rows for proof in proofs],
    )


async def _fetch_unverified(
    remotes: Sequence[Remote], header: Header, limit: asyncio.Semaphore
) -> tuple[list[Row], str] | None:
    """Every row from the first remote answering GetRow for it, or None if one row failed
    everywhere. The fast path: all rows are then verified in one batch."""

    async def one(row: int) -> tuple[Row, str] | None:
        async with limit:
            for remote in remotes:
                try:
                    return await remote.get_row(header.height, row, header.k), remote.name
                except (*RemoteError, ErasureError) as e:
                    log.info("%s: GetRow(%d, %d): %s", remote.name, header.height, row, describe(e))
            return None

    got = await asyncio.gather(*(one(r) for r in range(2 * header.k)))
    if any(found is None for found in got):
        return None
    sources = sorted({found[1] for found in got if found is not None})
    return [found[0] for found in got if found is not None], ", ".join(sources)


async def _cpu(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    if executor is None:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


async def fetch_row(
    remotes: Sequence[Remote], header: Header, row: int, executor: Executor | None
) -> tuple[Row, str] | None:
    """The verified row `row` from the first remote serving it whole, or None."""
    for remote in remotes:
        try:
            cells, proofs = await remote.get_row(header.height, row, header.k)
        except RemoteError as e:
            log.info("%s: GetRow(%d, %d): %s", remote.name, header.height, row, describe(e))
            continue
        except ErasureError as e:
            log.warning("%s sent a malformed row %d/%d: %s", remote.name, header.height, row, e)
            continue
        if await _cpu(executor, row_verifies, header.commitments[row], cells, proofs):
            return (cells, proofs), remote.name
        log.warning(
            "%s sent row %d of height %d that fails its proofs", remote.name, row, header.height
        )
    return None


async def fetch_block(
    remotes: Sequence[Remote], header: Header, executor: Executor | None = None
) -> FetchedBlock:
    """All 2k verified rows of `header`'s block. Fast path: every row fetched, then verified in
    one batch. Otherwise row by row (a row failing its proofs is fetched elsewhere), and rows
    nobody serves whole are rebuilt from gathered cells. Raises `BlockUnavailable` when that is
    not enough."""
    limit = asyncio.Semaphore(ROW_FETCH_CONCURRENCY)

    async def one(row: int) -> tuple[Row, str] | None:
        async with limit:
            return await fetch_row(remotes, header, row, executor)

    fast = await _fetch_unverified(remotes, header, limit)
    if fast is not None and await _cpu(executor, rows_verify, header.commitments, fast[0]):
        return FetchedBlock(fast[0], 0, fast[1])
    got = await asyncio.gather(*(one(r) for r in range(2 * header.k)))
    whole = {r: found[0] for r, found in enumerate(got) if found is not None}
    sources = sorted({found[1] for found in got if found is not None})
    if len(whole) == 2 * header.k:
        return FetchedBlock([whole[r] for r in range(2 * header.k)], 0, ", ".join(sources))
    missing = [r for r in range(2 * header.k) if r not in whole]
    log.info(
        "height %d: %d rows not served whole; gathering cells from %d nodes",
        header.height,
        len(missing),
        len(remotes),
    )
    return await repair_block(remotes, header, whole, missing, executor)


async def gather_cells(
    remotes: Sequence[Remote], header: Header, missing_rows: Sequence[int]
) -> tuple[dict[tuple[int, int], bytes], dict[tuple[int, int], bytes]]:
    """Cells (and proofs) of `missing_rows` from every remote, each asked only for what is
    still missing, in requests of at most MAX_COORDS_PER_REQUEST cells. Unverified."""
    cells: dict[tuple[int, int], bytes] = {}
    proofs: dict[tuple[int, int], bytes] = {}
    for remote in remotes:
        wanted = [
            CellRef(r, c)
            for r in missing_rows
            for c in range(CELLS_PER_EXT_ROW)
            if (r, c) not in cells
        ]
        for start in range(0, len(wanted), MAX_COORDS_PER_REQUEST):
            chunk = wanted[start : start + MAX_COORDS_PER_REQUEST]
            try:
                found = await remote.get_samples(header.height, chunk, header.k)
            except (*RemoteError, ErasureError) as e:
                log.info("%s: GetSamples at %d: %s", remote.name, header.height, describe(e))
                break
            for ref, cell in found.items():
                cells[(ref.row, ref.col)], proofs[(ref.row, ref.col)] = cell.data, cell.proof
    return cells, proofs


def _rebuild(
    header: Header,
    cells: dict[tuple[int, int], bytes],
    proofs: dict[tuple[int, int], bytes],
) -> list[Row]:
    square = recover_square(header.k, header.commitments, cells, proofs, header.blobs)
    return [(square.row_cells(r), square.row_proofs(r)) for r in range(2 * header.k)]


async def repair_block(
    remotes: Sequence[Remote],
    header: Header,
    whole: dict[int, Row],
    missing: Sequence[int],
    executor: Executor | None,
) -> FetchedBlock:
    """Rebuild the rows in `missing` from cells gathered from `remotes` and the verified `whole`
    rows (their cells determine every column once at least k rows are whole)."""
    gathered, gathered_proofs = await gather_cells(remotes, header, missing)
    cells, proofs = dict(gathered), dict(gathered_proofs)
    for r, (row_cells, row_proofs) in whole.items():
        for c in range(CELLS_PER_EXT_ROW):
            cells[(r, c)], proofs[(r, c)] = row_cells[c], row_proofs[c]
    try:
        rows = await _cpu(executor, _rebuild, header, cells, proofs)
    except Unrecoverable as e:
        raise BlockUnavailable(header.height, len(missing), str(e)) from e
    repaired = len(missing) * CELLS_PER_EXT_ROW - len(gathered)
    return FetchedBlock(rows, repaired, f"repair from {len(remotes)} nodes")
