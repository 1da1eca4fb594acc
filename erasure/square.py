"""The extended data square: encoding blobs into `2k x 128` cells with proofs and commitments.

Pipeline (PROTOCOL.md §3-4): lay the blobs out in the `k x 64`-cell ODS, extend every column of
field elements to `2k` rows with one python-flint matrix product, extend every row to 128 cells with
ckzg (cells and proofs), commit to the `k` original rows and extend the commitments by MSM.
The pipeline itself, streamed and spread over worker processes, lives in `erasure.parallel`.
"""

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from erasure.constants import CELLS_PER_EXT_ROW, DEFAULT_MAX_ROWS
from erasure.errors import InvalidCell
from erasure.layout import BlobEntry
from erasure.parallel import RowBatch, encode_square_stream


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


def encode_square(
    blobs: Sequence[tuple[bytes, bytes]],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    executor: Executor | None = None,
) -> ExtendedSquare:
    """Encode blobs `(namespace, data)`, given in arrival order, into an extended data square.

    Raises InvalidNamespace, InvalidBlob, SquareTooLarge (see `layout.layout_blobs`). With an
    `executor` (best: `da.encoder_pool.make_encoder_pool`), the per-row ckzg work is mapped over
    it in balanced batches. The all-in-memory form of `erasure.parallel.encode_square_stream`.
    """
    batches: list[RowBatch] = []
    summary = encode_square_stream(
        blobs, max_rows=max_rows, executor=executor, on_rows=batches.append
    )
    cells: list[tuple[bytes, ...]] = [()] * (2 * summary.k)
    proofs: list[tuple[bytes, ...]] = [()] * (2 * summary.k)
    for batch in batches:
        cells[batch.first_row : batch.first_row + len(batch.cells)] = batch.cells
        proofs[batch.first_row : batch.first_row + len(batch.proofs)] = batch.proofs
    return ExtendedSquare(
        k=summary.k,
        commitments=summary.commitments,
        cells=tuple(cells),
        proofs=tuple(proofs),
        blob_index=summary.blob_index,
    )
