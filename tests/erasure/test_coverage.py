"""The exact recoverability check agrees with the decoder's rows-and-columns procedure."""

from __future__ import annotations

import random

import pytest

from erasure.coverage import line_counts, recoverable
from erasure.errors import Unrecoverable
from erasure.recovery import recover_square
from erasure.square import ExtendedSquare


def _square_cells(k: int) -> set[tuple[int, int]]:
    return {(r, c) for r in range(2 * k) for c in range(128)}


@pytest.mark.parametrize("k", [1, 2, 4])
def test_withholding_a_k_plus_1_by_65_rectangle_is_unrecoverable_by_one_cell(k: int) -> None:
    rectangle = {(r, c) for r in range(k + 1) for c in range(65)}
    held = _square_cells(k) - rectangle
    assert not recoverable(k, held)
    for cell in sorted(rectangle):  # any one of its cells put back makes it recoverable
        assert recoverable(k, held | {cell}), cell


def test_thresholds_of_rows_and_columns() -> None:
    assert recoverable(1, [(0, c) for c in range(64)])  # a row from 64 cells
    assert not recoverable(1, [(0, c) for c in range(63)])
    assert recoverable(2, [(r, c) for r in (1, 3) for c in range(128)])  # k rows of each column
    assert not recoverable(2, [(r, c) for r in (1,) for c in range(128)] + [(2, 5)])
    assert not recoverable(1, [])


def test_line_counts() -> None:
    counts = line_counts(1, [(0, 0), (0, 5), (1, 5)])
    assert counts.rows == (2, 1)
    assert counts.cols[0] == 1 and counts.cols[5] == 2 and sum(counts.cols) == 3
    with pytest.raises(ValueError):
        line_counts(1, [(2, 0)])


def test_agrees_with_recover_square_on_random_sets(square_k2: ExtendedSquare) -> None:
    square, k = square_k2, square_k2.k
    rng = random.Random(11)
    everything = sorted(_square_cells(k))
    outcomes = set()
    for size in (120, 150, 155, 160, 200):
        held = rng.sample(everything, size)
        cells = {coord: square.cell(*coord) for coord in held}
        proofs = {coord: square.proof(*coord) for coord in held}
        outcomes.add(recoverable(k, held))
        if recoverable(k, held):
            rebuilt = recover_square(k, square.commitments, cells, proofs)
            assert rebuilt.cells == square.cells
        else:
            with pytest.raises(Unrecoverable):
                recover_square(k, square.commitments, cells, proofs)
    assert outcomes == {True, False}  # both sides of the line were exercised
