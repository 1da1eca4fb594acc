"""Encoding mapped over any `concurrent.futures.Executor`, streamed row batch by row batch
(issue 6).

The ckzg work (a commitment per original row, cells and proofs per extended row) is ~99% of an
encode and holds the GIL, so it runs in worker processes that each load the trusted setup once.
Rows travel in contiguous batches of equal size, as one bytes object each way, handed out on
demand so that a worker slowed by a neighbour does not hold the square back. The parent keeps
only the cheap serial parts (layout, the python-flint vertical extension, the commitment MSM)
and overlaps them with the workers: original rows are submitted first, the parity rows are
computed while they run, and the MSM runs as soon as the last original commitment is back.

The same code runs on any Executor (the worker processes or dask.distributed cluster of
`da.encoder_pool.make_encoder_pool`, which this package does not manage: it stays pure maths),
and in-process when no executor is given. Rows are handed to `on_rows` as they
complete, so a producer can write them to storage batch by batch without holding the square.
"""

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass

from erasure import kzg
from erasure.commitments import extend_commitments
from erasure.constants import (
    BYTES_PER_CELL,
    BYTES_PER_COMMITMENT,
    BYTES_PER_FIELD_ELEMENT,
    BYTES_PER_PROOF,
    BYTES_PER_ROW,
    CELLS_PER_EXT_ROW,
    DEFAULT_MAX_ROWS,
)
from erasure.field import extension_matrix, matrix_times_rows
from erasure.layout import BlobEntry, layout_blobs, split_every

MAX_BATCH_ROWS = 8  # 1 MiB of rows out, ~2.1 MiB of cells and proofs back per batch
BATCHES_PER_WORKER = 16  # small batches handed out on demand keep the workers' ends close
IN_FLIGHT_PER_WORKER = 2  # queued batches per worker: enough that none waits, few to hold
VERTICAL_CHUNK_ELEMENTS = 1 << 18  # field elements per flint product (k=64: one chunk)

RowsCallback = Callable[["RowBatch"], None]


@dataclass(frozen=True)
class RowBatch:
    """Consecutive extended rows `first_row..first_row + len(cells) - 1`, with cells and proofs.

    `cells[i][c]` is the 2048-byte cell at (first_row + i, c), `proofs[i][c]` its 48-byte proof.
    """

    first_row: int
    cells: tuple[tuple[bytes, ...], ...]
    proofs: tuple[tuple[bytes, ...], ...]

    @property
    def rows(self) -> range:
        """The extended-row indices in this batch."""
        return range(self.first_row, self.first_row + len(self.cells))


@dataclass(frozen=True)
class SquareSummary:
    """What an encode yields besides its rows: `k`, the 2k row commitments and the blob index."""

    k: int
    commitments: tuple[bytes, ...]
    blob_index: tuple[BlobEntry, ...]


@dataclass(frozen=True)
class RowJob:
    """Work for one batch: `rows` is the concatenation of consecutive rows from `first_row`."""

    first_row: int
    rows: bytes
    commit: bool  # original rows: also compute their KZG commitments


@dataclass(frozen=True)
class RowJobResult:
    """A batch's cells, proofs and (for original rows) commitments, each concatenated."""

    first_row: int
    cells: bytes
    proofs: bytes
    commitments: bytes


def extend_row_batch(job: RowJob) -> RowJobResult:
    """Cells and proofs of every row of a batch, plus commitments if asked (runs in a worker)."""
    ts = kzg.settings()
    cells: list[bytes] = []
    proofs: list[bytes] = []
    commitments: list[bytes] = []
    for start in range(0, len(job.rows), BYTES_PER_ROW):
        row = job.rows[start : start + BYTES_PER_ROW]
        row_cells, row_proofs = kzg.compute_cells_and_proofs(row, ts)
        cells += row_cells
        proofs += row_proofs
        if job.commit:
            commitments.append(kzg.commit(row, ts))
    return RowJobResult(job.first_row, b"".join(cells), b"".join(proofs), b"".join(commitments))


def row_batch_from_result(result: RowJobResult) -> RowBatch:
    """Split a worker's concatenated output into per-row tuples of cells and proofs."""
    cell_row, proof_row = BYTES_PER_CELL * CELLS_PER_EXT_ROW, BYTES_PER_PROOF * CELLS_PER_EXT_ROW
    cells = tuple(
        split_every(result.cells[i : i + cell_row], BYTES_PER_CELL)
        for i in range(0, len(result.cells), cell_row)
    )
    proofs = tuple(
        split_every(result.proofs[i : i + proof_row], BYTES_PER_PROOF)
        for i in range(0, len(result.proofs), proof_row)
    )
    return RowBatch(result.first_row, cells, proofs)


def extend_columns(k: int, original_rows: Sequence[bytes]) -> list[bytes]:
    """Rows k..2k-1: at every position, the degree < k column polynomial at `x_k..x_{2k-1}`.

    Done in column chunks so the flint matrices and Python ints stay small at k = 512.
    """
    matrix = extension_matrix(k)
    width = max(1, VERTICAL_CHUNK_ELEMENTS // k) * BYTES_PER_FIELD_ELEMENT
    chunks = [
        matrix_times_rows(matrix, [row[start : start + width] for row in original_rows])
        for start in range(0, BYTES_PER_ROW, width)
    ]
    return [b"".join(parts) for parts in zip(*chunks, strict=True)]


def batch_rows(k: int, workers: int) -> int:
    """Rows per batch: a power of two dividing k, about BATCHES_PER_WORKER batches per worker."""
    wanted = max(1, 2 * k // (BATCHES_PER_WORKER * workers))
    size = 1 << (wanted.bit_length() - 1)  # round down to a power of two
    return min(size, k, MAX_BATCH_ROWS)


def _jobs(first_row: int, rows: Sequence[bytes], size: int, commit: bool) -> Iterator[RowJob]:
    for i in range(0, len(rows), size):
        yield RowJob(first_row + i, b"".join(rows[i : i + size]), commit)


def _submit(executor: Executor | None, job: RowJob) -> "Future[RowJobResult]":
    if executor is not None:
        return executor.submit(extend_row_batch, job)
    done: Future[RowJobResult] = Future()  # in-process: run now, hand back a finished future
    try:
        done.set_result(extend_row_batch(job))
    except Exception as e:  # re-raised by .result(), as from a pool
        done.set_exception(e)
    return done


class _Collector:
    """Bounded in-flight batches; hands finished rows on and gathers original commitments."""

    def __init__(self, k: int, executor: Executor | None, workers: int, on_rows: RowsCallback):
        self.k, self.executor, self.on_rows = k, executor, on_rows
        self.limit = IN_FLIGHT_PER_WORKER * workers
        self.pending: set[Future[RowJobResult]] = set()
        self.original: dict[int, bytes] = {}
        self.extended: tuple[bytes, ...] | None = None

    def submit(self, jobs: Iterator[RowJob]) -> None:
        for job in jobs:
            while len(self.pending) >= self.limit:
                self._collect(FIRST_COMPLETED)
            self.pending.add(_submit(self.executor, job))

    def finish(self) -> tuple[bytes, ...]:
        while self.pending:
            self._collect(FIRST_COMPLETED)
        if self.extended is None:
            raise RuntimeError("an encode finished without all of its original commitments")
        return self.extended

    def cancel(self) -> None:
        for future in self.pending:
            future.cancel()

    def _collect(self, when: str) -> None:
        done, self.pending = wait(self.pending, return_when=when)
        for result in sorted((f.result() for f in done), key=lambda r: r.first_row):
            commitments = split_every(result.commitments, BYTES_PER_COMMITMENT)
            self.original.update(enumerate(commitments, start=result.first_row))
            self.on_rows(row_batch_from_result(result))
        if self.extended is None and len(self.original) == self.k:
            # The MSM runs here, while the workers are still busy with parity rows.
            ordered = [self.original[r] for r in range(self.k)]
            self.extended = extend_commitments(self.k, ordered)


def encode_square_stream(
    blobs: Sequence[tuple[bytes, bytes]],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    executor: Executor | None = None,
    on_rows: RowsCallback,
) -> SquareSummary:
    """Encode blobs `(namespace, data)` in arrival order, handing rows to `on_rows` as they finish.

    `on_rows` runs in the calling thread, once per RowBatch, in completion order; every extended
    row `0..2k-1` comes exactly once. Returns the commitments and blob index once all rows are
    out. Raises InvalidNamespace, InvalidBlob, SquareTooLarge (see `layout.layout_blobs`);
    an exception from `on_rows` or a worker cancels the batches not yet started and propagates.
    """
    layout = layout_blobs(blobs, max_rows)
    k = layout.k
    workers = executor_workers(executor)
    size = batch_rows(k, workers)
    original = [layout.ods[r * BYTES_PER_ROW : (r + 1) * BYTES_PER_ROW] for r in range(k)]
    collector = _Collector(k, executor, workers, on_rows)
    try:
        collector.submit(_jobs(0, original, size, commit=True))
        parity = extend_columns(k, original)  # overlaps with the workers' original rows
        del original
        collector.submit(_jobs(k, parity, size, commit=False))
        del parity
        commitments = collector.finish()
    except BaseException:
        collector.cancel()
        raise
    return SquareSummary(k, commitments, layout.blob_index)


def executor_workers(executor: Executor | None) -> int:
    """How many batches `executor` runs at once: 1 in-process; its `workers` attribute when it
    has one (`da.encoder_pool.EncoderPool`); a `concurrent.futures` pool's own size; else the
    core count."""
    if executor is None:
        return 1
    workers = getattr(executor, "workers", None)
    if isinstance(workers, int):
        return max(1, workers)
    # concurrent.futures pools expose no public size; fall back to the core count.
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1
