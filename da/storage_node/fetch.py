"""Getting every verified row of a block: whole rows by GetRow from the producer or peers, and,
for rows nobody serves whole, cells gathered with GetSamples and rebuilt (PROTOCOL.md §8).

Nothing fetched is trusted before it verifies against the header's row commitment: rows are
checked in batches (`erasure.kzg.verify_cells`), gathered cells by `recover_square` with their
proofs. CPU work runs in `executor` when one is given (a process pool), else inline.

Rows are fetched, verified and handed to a `RowSink` a window of `WINDOW_ROWS` at a time, so a
block is never held whole (a k = 512 block is ~270 MB): only a repair, which rebuilds the
square, reads the whole rows back from the sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from da.cells import Row, cells_verify, rows_verify
from da.header import Header
from da.sampling import MAX_SAMPLES_PER_REQUEST, CellRef
from da.storage_node.errors import BlockUnavailable
from da.storage_node.remotes import Remote, RemoteError, describe
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.coverage import line_counts, recoverable
from erasure.errors import ErasureError, Unrecoverable
from erasure.recovery import recover_square

log = logging.getLogger(__name__)

ROW_FETCH_CONCURRENCY = 8
WINDOW_ROWS = 16  # rows fetched, verified and handed on together (~4.3 MB of cells and proofs)

T = TypeVar("T")


Coord = tuple[int, int]


class RepairObserver(Protocol):
    """What a repair reports (`da.metrics.StorageMetrics` provides it)."""

    def observe_recovery(self, recovered: bool) -> None: ...

    def observe_cells_collected(self, source: str, count: int) -> None: ...


class Gatherer(Protocol):
    """Where cells come from when storage nodes do not have enough: light clients
    (`da.storage_node.gather.LightGatherer`)."""

    async def gather(
        self,
        header: Header,
        cells: dict[Coord, bytes],
        proofs: dict[Coord, bytes],
        executor: Executor | None = None,
    ) -> int:
        """Add verified cells to `cells`/`proofs` until recoverable; returns how many."""
        ...


class RowSink(Protocol):
    """Where `fetch_block` puts verified rows as they come (a storage node: its store)."""

    async def put(self, rows: Sequence[tuple[int, Row]]) -> None:
        """Keep `(index, row)` pairs, each verified against its row commitment."""

    async def get(self, index: int) -> Row:
        """A row put earlier (a repair reads the whole rows back)."""


class MemorySink:
    """A `RowSink` holding the rows in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self.puts: list[list[int]] = []  # the row indexes of each `put`, in order
        self._rows: dict[int, Row] = {}

    async def put(self, rows: Sequence[tuple[int, Row]]) -> None:
        self.puts.append([index for index, _ in rows])
        self._rows.update(rows)

    async def get(self, index: int) -> Row:
        return self._rows[index]

    def rows(self) -> list[Row]:
        """Every row put, in index order."""
        return [self._rows[index] for index in sorted(self._rows)]


@dataclass(frozen=True)
class FetchedBlock:
    """What `fetch_block` put into its sink: every extended row of a block, verified;
    `repaired` cells were rebuilt, not fetched; `source` names where the rows came from."""

    repaired: int
    source: str


async def _fetch_unverified(
    remotes: Sequence[Remote], header: Header, window: range, limit: asyncio.Semaphore
) -> list[tuple[Row, str]] | None:
    """Every row of `window` from the first remote answering GetRow for it, or None if one row
    failed everywhere. The fast path: the window's rows are then verified in one batch."""

    async def one(row: int) -> tuple[Row, str] | None:
        async with limit:
            for remote in remotes:
                try:
                    return await remote.get_row(header.height, row, header.k), remote.name
                except (*RemoteError, ErasureError) as e:
                    log.info("%s: GetRow(%d, %d): %s", remote.name, header.height, row, describe(e))
            return None

    got = await asyncio.gather(*(one(r) for r in window))
    if any(found is None for found in got):
        return None
    return [found for found in got if found is not None]


async def run_cpu(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in `executor` (a process pool) when one is given, else inline."""
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
        if await run_cpu(executor, rows_verify, header.commitments, [(row, (cells, proofs))]):
            return (cells, proofs), remote.name
        log.warning(
            "%s sent row %d of height %d that fails its proofs", remote.name, row, header.height
        )
    return None


async def _fetch_window(
    remotes: Sequence[Remote],
    header: Header,
    window: range,
    limit: asyncio.Semaphore,
    executor: Executor | None,
) -> dict[int, tuple[Row, str]]:
    """The verified rows of `window` that someone serves whole, with who served each. Fast
    path: every row fetched, then verified in one batch. Otherwise row by row (a row failing
    its proofs is fetched elsewhere)."""
    fast = await _fetch_unverified(remotes, header, window, limit)
    indexed = [(r, row) for r, (row, _) in zip(window, fast or (), strict=False)]
    if fast is not None and await run_cpu(executor, rows_verify, header.commitments, indexed):
        return dict(zip(window, fast, strict=True))

    async def one(row: int) -> tuple[Row, str] | None:
        async with limit:
            return await fetch_row(remotes, header, row, executor)

    got = await asyncio.gather(*(one(r) for r in window))
    return {r: found for r, found in zip(window, got, strict=True) if found is not None}


async def fetch_block(
    remotes: Sequence[Remote],
    header: Header,
    sink: RowSink,
    executor: Executor | None = None,
    *,
    samplers: Gatherer | None = None,
    observer: RepairObserver | None = None,
) -> FetchedBlock:
    """Put all 2k verified rows of `header`'s block into `sink`, `WINDOW_ROWS` at a time (see
    `_fetch_window`); rows nobody serves whole are then rebuilt from cells gathered from the
    remotes and, if those are not enough, from `samplers`, and put last. Raises
    `BlockUnavailable` when that is not enough (some rows may have been put)."""
    limit = asyncio.Semaphore(ROW_FETCH_CONCURRENCY)
    ext_rows = 2 * header.k
    sources: set[str] = set()
    missing: list[int] = []
    for start in range(0, ext_rows, WINDOW_ROWS):
        window = range(start, min(start + WINDOW_ROWS, ext_rows))
        got = await _fetch_window(remotes, header, window, limit, executor)
        missing.extend(r for r in window if r not in got)
        sources.update(source for _, source in got.values())
        if got:
            await sink.put([(r, row) for r, (row, _) in sorted(got.items())])
    if not missing:
        return FetchedBlock(0, ", ".join(sorted(sources)))
    log.info(
        "height %d: %d rows not served whole; gathering cells from %d nodes",
        header.height,
        len(missing),
        len(remotes),
    )
    lost = set(missing)
    whole = {r: await sink.get(r) for r in range(ext_rows) if r not in lost}
    return await repair_block(
        remotes, header, whole, missing, sink, executor, samplers=samplers, observer=observer
    )


async def gather_cells(
    remotes: Sequence[Remote],
    header: Header,
    missing_rows: Sequence[int],
    executor: Executor | None = None,
) -> tuple[dict[tuple[int, int], bytes], dict[tuple[int, int], bytes]]:
    """Verified cells (and proofs) of `missing_rows` from the remotes in turn, each asked only
    for what is still missing, in requests of at most MAX_SAMPLES_PER_REQUEST cells. An answer
    counts only once every cell in it verifies against the coordinate asked and its row
    commitment; a remote answering with a bad cell is not asked again for this block, and what
    it was asked goes to the next remote (so one lying node cannot make a block unrecoverable)."""
    cells: dict[tuple[int, int], bytes] = {}
    proofs: dict[tuple[int, int], bytes] = {}
    for remote in remotes:
        wanted = [
            CellRef(r, c)
            for r in missing_rows
            for c in range(CELLS_PER_EXT_ROW)
            if (r, c) not in cells
        ]
        for start in range(0, len(wanted), MAX_SAMPLES_PER_REQUEST):
            chunk = wanted[start : start + MAX_SAMPLES_PER_REQUEST]
            try:
                found = await remote.get_samples(header.height, chunk, header.k)
            except (*RemoteError, ErasureError) as e:
                log.info("%s: GetSamples at %d: %s", remote.name, header.height, describe(e))
                break
            served = list(found.values())
            if not await run_cpu(executor, cells_verify, header.commitments, served):
                log.warning(
                    "%s served cells of height %d that fail their proofs: asking the other nodes",
                    remote.name,
                    header.height,
                )
                break
            for cell in served:
                cells[(cell.row, cell.col)], proofs[(cell.row, cell.col)] = cell.data, cell.proof
    return cells, proofs


def _rebuild(
    header: Header,
    cells: dict[tuple[int, int], bytes],
    proofs: dict[tuple[int, int], bytes],
    wanted: Sequence[int],
    verified: Sequence[int],
) -> list[tuple[int, Row]]:
    square = recover_square(
        header.k, header.commitments, cells, proofs, header.blobs, verified_rows=verified
    )
    return [(r, (square.row_cells(r), square.row_proofs(r))) for r in wanted]


def describe_coverage(k: int, cells: dict[Coord, bytes]) -> str:
    """How many cells each row and each column holds (why a square is unrecoverable)."""
    counts = line_counts(k, cells)
    return f"cells per row {list(counts.rows)}; cells per column {list(counts.cols)}"


async def repair_block(
    remotes: Sequence[Remote],
    header: Header,
    whole: dict[int, Row],
    missing: Sequence[int],
    sink: RowSink,
    executor: Executor | None,
    *,
    samplers: Gatherer | None = None,
    observer: RepairObserver | None = None,
) -> FetchedBlock:
    """Rebuild the rows in `missing` from the verified `whole` rows (their cells determine every
    column once at least k rows are whole) and verified cells gathered from `remotes`, then, if
    still not enough, from `samplers`; verify every rebuilt cell and put the rows into `sink`.
    The `whole` rows, verified when fetched, are kept as they are, not verified or proved again
    (`verified_rows`). The one step that holds a whole square in memory."""
    gathered, gathered_proofs = await gather_cells(remotes, header, missing, executor)
    cells, proofs = dict(gathered), dict(gathered_proofs)
    for r, (row_cells, row_proofs) in whole.items():
        for c in range(CELLS_PER_EXT_ROW):
            cells[(r, c)], proofs[(r, c)] = row_cells[c], row_proofs[c]
    from_light = 0
    if samplers is not None and not recoverable(header.k, cells):
        from_light = await samplers.gather(header, cells, proofs, executor)
    if observer is not None:
        observer.observe_cells_collected("storage", len(gathered))
        observer.observe_cells_collected("light", from_light)
    rebuilt = await _recover(header, cells, proofs, missing, sorted(whole), executor, observer)
    await sink.put(rebuilt)
    repaired = len(missing) * CELLS_PER_EXT_ROW - len(gathered)
    source = f"repair from {len(remotes)} nodes"
    if from_light:
        source += f" and {from_light} cells held by light clients"
    return FetchedBlock(repaired, source)


async def _recover(
    header: Header,
    cells: dict[Coord, bytes],
    proofs: dict[Coord, bytes],
    missing: Sequence[int],
    verified: Sequence[int],
    executor: Executor | None,
    observer: RepairObserver | None,
) -> list[tuple[int, Row]]:
    """The rebuilt rows of `missing`, every cell verified; `BlockUnavailable` (logged with the
    cells each row and column had) when the cells cannot rebuild them."""
    try:
        if not recoverable(header.k, cells):  # the exact check: spare a doomed recovery
            raise Unrecoverable(f"{len(cells)} verified cells do not determine the square")
        rebuilt = await run_cpu(executor, _rebuild, header, cells, proofs, missing, verified)
        if not await run_cpu(executor, rows_verify, header.commitments, rebuilt):
            raise Unrecoverable("rebuilt rows fail their proofs")
    except Unrecoverable as e:
        if observer is not None:
            observer.observe_recovery(False)
        log.warning(
            "height %d cannot be rebuilt from %d verified cells (%s): %s",
            header.height,
            len(cells),
            e,
            describe_coverage(header.k, cells),
        )
        raise BlockUnavailable(header.height, len(missing), str(e)) from e
    if observer is not None:
        observer.observe_recovery(True)
    return rebuilt
