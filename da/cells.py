"""Cells and rows of the extended square with their KZG proofs, and their one batch check
(PROTOCOL.md §5): every role that believes a served cell or row calls `cells_verify` or
`rows_verify`.

A cell is believed only once its proof verifies against the commitment of its row, at its
column; until then a `ProvenCell` is just what someone sent. Malformed bytes (a proof that is
not a G1 point, a field element >= the modulus) make a check fail like a bad proof: a
`verify_*` returning False is an outcome, not an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from da.sampling import CellRef
from erasure import kzg
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.errors import ErasureError

Row = tuple[Sequence[bytes], Sequence[bytes]]
"""The 128 cells and 128 proofs of one extended row."""


@dataclass(frozen=True)
class ProvenCell:
    """One cell of the extended square at (`row`, `col`) with its KZG proof, as served or held."""

    row: int
    col: int
    data: bytes  # BYTES_PER_CELL
    proof: bytes  # BYTES_PER_PROOF

    @property
    def ref(self) -> CellRef:
        return CellRef(self.row, self.col)


@dataclass(frozen=True)
class BlobCells:
    """A blob with the ODS cells holding it and their proofs: read from a block store (`data`
    decoded from the cells), or as a node served it (`data` as claimed: a client believes only
    the data it rebuilds from cells that verify)."""

    namespace: bytes
    data: bytes
    blob_hash: bytes
    start_cell: int
    cells: tuple[ProvenCell, ...]


def cells_verify(commitments: Sequence[bytes], cells: Sequence[ProvenCell]) -> bool:
    """True iff every cell verifies against `commitments[cell.row]` at its column (one batch);
    True for no cells."""
    if not cells:
        return True
    return _verify(
        [commitments[c.row] for c in cells],
        [c.col for c in cells],
        [c.data for c in cells],
        [c.proof for c in cells],
    )


def rows_verify(commitments: Sequence[bytes], rows: Sequence[tuple[int, Row]]) -> bool:
    """True iff every cell of every `(index, row)` verifies against `commitments[index]`
    (one batch); True for no rows."""
    if not rows:
        return True
    width = range(CELLS_PER_EXT_ROW)
    return _verify(
        [commitments[r] for r, _ in rows for _ in width],
        [c for _ in rows for c in width],
        [cell for _, (cells, _) in rows for cell in cells],
        [proof for _, (_, proofs) in rows for proof in proofs],
    )


def _verify(
    commitments: list[bytes], cols: list[int], cells: list[bytes], proofs: list[bytes]
) -> bool:
    try:
        return kzg.verify_cells(commitments, cols, cells, proofs)
    except ErasureError:  # malformed bytes: not a valid cell, proof or commitment
        return False
