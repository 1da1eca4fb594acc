"""Which sets of cells can rebuild an extended square: the counting side of recovery (PROTOCOL.md
§8).

`recoverable(k, coords)` answers, without touching a cell, whether `recover_square` would succeed
from cells at `coords`: a row with at least 64 of its 128 cells becomes whole, a column with at
least k of its 2k cells becomes whole, repeated until nothing progresses. That is exactly the
procedure recovery runs, so the answer is exact for our decoder, and cheap (bit masks and
counts): gathering calls it after every answer to stop as soon as the cells suffice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from erasure.constants import CELLS_PER_EXT_ROW, CELLS_PER_ROW
from erasure.layout import check_k

Coord = tuple[int, int]
FULL_ROW = (1 << CELLS_PER_EXT_ROW) - 1


@dataclass(frozen=True)
class LineCounts:
    """How many cells each row (2k entries) and each column (128 entries) holds."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]


def row_masks(k: int, coords: Iterable[Coord]) -> list[int]:
    """Per row of the 2k x 128 square, a bit mask of the columns held; raises ValueError for a
    coordinate outside the square."""
    check_k(k)
    masks = [0] * (2 * k)
    for row, col in coords:
        if not (0 <= row < 2 * k and 0 <= col < CELLS_PER_EXT_ROW):
            raise ValueError(f"no cell ({row}, {col}) in a {2 * k}x128 square")
        masks[row] |= 1 << col
    return masks


def line_counts(k: int, coords: Iterable[Coord]) -> LineCounts:
    """Cells held per row and per column (for a log line saying why a square is unrecoverable)."""
    masks = row_masks(k, coords)
    cols = tuple(sum((mask >> c) & 1 for mask in masks) for c in range(CELLS_PER_EXT_ROW))
    return LineCounts(tuple(mask.bit_count() for mask in masks), cols)


def recoverable(k: int, coords: Iterable[Coord]) -> bool:
    """True iff the cells at `coords` rebuild the whole 2k x 128 square by rows and columns."""
    masks = row_masks(k, coords)
    while True:
        for r, mask in enumerate(masks):
            if mask.bit_count() >= CELLS_PER_ROW:
                masks[r] = FULL_ROW
        if all(mask == FULL_ROW for mask in masks):
            return True
        fill = _columns_to_fill(k, masks)
        if not fill:
            return False
        masks = [mask | fill for mask in masks]


def _columns_to_fill(k: int, masks: list[int]) -> int:
    """Mask of the incomplete columns holding at least k cells (any k determine a column)."""
    fill = 0
    for c in range(CELLS_PER_EXT_ROW):
        held = sum((mask >> c) & 1 for mask in masks)
        if k <= held < 2 * k:
            fill |= 1 << c
    return fill
