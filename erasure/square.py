"""The extended data square: encoding blobs into `2k x 128` cells with proofs and commitments.

Pipeline (DESIGN 4): lay the blobs out in the `k x 64`-cell ODS, extend every column of field
elements to `2k` rows with one python-flint matrix product, extend every row to 128 cells with
ckzg (cells and proofs), commit to the `k` original rows and extend the commitments by MSM.
"""

import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from erasure import kzg
from erasure.commitments import extend_commitments
from erasure.constants import BYTES_PER_ROW, CELLS_PER_EXT_ROW, DEFAULT_MAX_ROWS
from erasure.errors import InvalidCell
from erasure.field import lagrange_matrix, matrix_times_rows, row_points
from erasure.layout import BlobEntry, layout_blobs


@dataclass(frozen=True)
class ExtendedSquare:
    """A whole EDS: `2k` rows of 128 cells, a proof per cell, a commitment per row.

    `cells[r][c]` is 2048 bytes, `proofs[r][c]` 48 bytes, both against `commitments[r]`.
    """

    k: int
    commitments: tuple[bytes, ...]
    cells: tuple[tuple[bytes, ...], ...]
    proofs: tuple[tuple[bytes, ...], ...]
    blob_index: tuple[BlobEntry, ...] = ()

    @property
    def width(self) -> int:
        """Cells per extended row (128)."""
        return CELLS_PER_EXT_ROW

    def _check(self, row: int, col: int) -> None:
        if not (0 <= row < 2 * self.k and 0 <= col < CELLS_PER_EXT_ROW):
            raise InvalidCell(f"no cell ({row}, {col}) in a {2 * self.k}x128 square", row, col)

    def cell(self, row: int, col: int) -> bytes:
        """The 2048-byte cell at (row, col); raises InvalidCell outside the square."""
        self._check(row, col)
        return self.cells[row][col]

    def proof(self, row: int, col: int) -> bytes:
        """The 48-byte KZG proof of cell (row, col) against `commitments[row]`."""
        self._check(row, col)
        return self.proofs[row][col]

    def row_cells(self, row: int) -> tuple[bytes, ...]:
        """The 128 cells of extended row `row`."""
        self._check(row, 0)
        return self.cells[row]

    def row_proofs(self, row: int) -> tuple[bytes, ...]:
        """The 128 proofs of extended row `row`."""
        self._check(row, 0)
        return self.proofs[row]


RowResult = tuple[tuple[bytes, ...], tuple[bytes, ...], bytes | None]


def extend_rows(rows: Sequence[bytes], commit_flags: Sequence[bool]) -> list[RowResult]:
    """Cells and proofs of each row, plus its commitment where the flag is set.

    A module-level function so an Executor's worker processes can run it (the trusted setup is
    loaded there once per process, on first use).
    """
    results = []
    for row, flag in zip(rows, commit_flags, strict=True):
        cells, proofs = kzg.compute_cells_and_proofs(row)
        results.append((cells, proofs, kzg.commit(row) if flag else None))
    return results


def extend_columns(k: int, original_rows: Sequence[bytes]) -> list[bytes]:
    """Rows k..2k-1: at every position, the degree < k column polynomial at `x_k..x_{2k-1}`."""
    xs = row_points(k)
    return matrix_times_rows(lagrange_matrix(xs[:k], xs[k:]), original_rows)


def _worker_count(executor: Executor) -> int:
    # concurrent.futures pools expose no public size; fall back to the core count.
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1


def _run_rows(rows: Sequence[bytes], k: int, executor: Executor | None) -> list[RowResult]:
    """extend_rows over all 2k rows (commitments for r < k), in round-robin batches if asked."""
    flags = [r < k for r in range(len(rows))]
    if executor is None:
        return extend_rows(rows, flags)
    batches = min(len(rows), _worker_count(executor))
    # Round-robin keeps batches balanced: each gets the same share of original rows.
    parts = [(rows[b::batches], flags[b::batches]) for b in range(batches)]
    outputs = list(executor.map(extend_rows, *zip(*parts, strict=True)))
    results: list[RowResult] = [None] * len(rows)  # type: ignore[list-item]
    for b, output in enumerate(outputs):
        results[b::batches] = output
    return results


def encode_square(
    blobs: Sequence[tuple[bytes, bytes]],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    executor: Executor | None = None,
) -> ExtendedSquare:
    """Encode blobs `(namespace, data)`, given in arrival order, into an extended data square.

    Raises InvalidNamespace, InvalidBlob, SquareTooLarge (see `layout.layout_blobs`). With an
    `executor`, the per-row ckzg work is mapped over it in balanced batches.
    """
    layout = layout_blobs(blobs, max_rows)
    k = layout.k
    original = [layout.ods[r * BYTES_PER_ROW : (r + 1) * BYTES_PER_ROW] for r in range(k)]
    rows = original + extend_columns(k, original)
    results = _run_rows(rows, k, executor)
    commitments = extend_commitments(k, [c for _, _, c in results[:k] if c is not None])
    return ExtendedSquare(
        k=k,
        commitments=commitments,
        cells=tuple(cells for cells, _, _ in results),
        proofs=tuple(proofs for _, proofs, _ in results),
        blob_index=layout.blob_index,
    )
