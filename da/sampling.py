"""Sampling maths (PROTOCOL.md §7): which cells a light client asks for and what confidence it
earns.

An unrecoverable extended square must withhold at least (k+1) x 65 of its 2k x 128 cells, so one
uniformly drawn cell hits a withheld one with probability at least q = (k+1)*65 / (2k*128), and s
verified samples give confidence 1 - (1 - q)^s. The formula counts draws with replacement, which
understates the confidence of s distinct draws: a safe bound.

The RNG is a parameter (`random.Random`-compatible); callers outside tests pass
`secrets.SystemRandom()`, since predictable coordinates let a withholding node answer exactly them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from da.errors import BadCoordinate, InvalidRequest
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.layout import check_k

# The fewest cells of an extended row (k+1 rows x 65 columns) that must be withheld to make the
# square unrecoverable: fewer than 65 missing in a row leaves >= 64 cells to recover it from.
WITHHELD_COLUMNS_PER_ROW = CELLS_PER_EXT_ROW // 2 + 1
# The most coordinates one GetSamples request may name, all distinct (PROTOCOL.md §11): a reply
# stays under ~270 KiB, and a light client's s (16 at k = 64 for 0.99) fits in one request.
MAX_SAMPLES_PER_REQUEST = 128


@dataclass(frozen=True, order=True)
class CellRef:
    """A cell of the extended square: `row` in 0..2k-1, `col` in 0..127."""

    row: int
    col: int

    def __post_init__(self) -> None:
        if self.row < 0 or not 0 <= self.col < CELLS_PER_EXT_ROW:
            raise ValueError(f"cell ({self.row}, {self.col}) is not an extended-square coordinate")


def cell_ref_from_coordinate(k: int, row: int, col: int) -> CellRef:
    """An untrusted (row, col) checked against a 2k x 128 square; raises `BadCoordinate`."""
    if not (0 <= row < 2 * k and 0 <= col < CELLS_PER_EXT_ROW):
        raise BadCoordinate(row, col, k)
    return CellRef(row, col)


def sample_refs_from_coordinates(k: int, coords: Iterable[tuple[int, int]]) -> list[CellRef]:
    """Untrusted requested coordinates, checked: at most `MAX_SAMPLES_PER_REQUEST`, all
    distinct, each inside the 2k x 128 square. Raises `BadCoordinate` or `InvalidRequest`."""
    refs: list[CellRef] = []
    for row, col in coords:
        if len(refs) == MAX_SAMPLES_PER_REQUEST:
            raise InvalidRequest(f"more than {MAX_SAMPLES_PER_REQUEST} coordinates in one request")
        refs.append(cell_ref_from_coordinate(k, row, col))
    if len(set(refs)) != len(refs):
        raise InvalidRequest("a coordinate is asked for more than once")
    return refs


def extended_cell_count(k: int) -> int:
    """Number of cells in the 2k x 128 extended square."""
    check_k(k)
    return 2 * k * CELLS_PER_EXT_ROW


def unrecoverable_fraction(k: int) -> float:
    """q = (k+1)*65 / (2k*128): the least fraction of cells an unrecoverable square withholds."""
    check_k(k)
    return (k + 1) * WITHHELD_COLUMNS_PER_ROW / extended_cell_count(k)


def sample_confidence(k: int, s: int) -> float:
    """Confidence that the square is available after `s` samples all verified: 1 - (1-q)^s."""
    if s < 0:
        raise ValueError(f"sample count must be >= 0, got {s}")
    return 1.0 - (1.0 - unrecoverable_fraction(k)) ** s


def samples_for_confidence(k: int, target: float) -> int:
    """The smallest s with `sample_confidence(k, s) >= target`, for target in (0, 1).

    Capped at the number of cells: sampling every cell of the square is certainty.
    """
    if not (isinstance(target, int | float) and 0.0 < target < 1.0):
        raise ValueError(f"target confidence must be in (0, 1), got {target!r}")
    q = unrecoverable_fraction(k)
    # The closed form is a first guess; step it so the answer agrees with `sample_confidence`
    # exactly, whatever rounding the logarithms did at the boundary.
    s = max(1, math.ceil(math.log1p(-target) / math.log1p(-q)))
    while sample_confidence(k, s) < target:
        s += 1
    while s > 1 and sample_confidence(k, s - 1) >= target:
        s -= 1
    return min(s, extended_cell_count(k))


def draw_coordinates(k: int, s: int, rng: random.Random) -> list[CellRef]:
    """`s` distinct cells drawn uniformly over the 2k x 128 extended square with `rng`."""
    cells = extended_cell_count(k)
    if not 0 <= s <= cells:
        raise ValueError(f"cannot draw {s} distinct cells from {cells}")
    return [CellRef(*divmod(index, CELLS_PER_EXT_ROW)) for index in rng.sample(range(cells), s)]
