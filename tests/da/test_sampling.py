import random

import pytest

from da.errors import BadCoordinate
from da.sampling import (
    CellRef,
    cell_ref_from_coordinate,
    draw_coordinates,
    extended_cell_count,
    sample_confidence,
    samples_for_confidence,
    unrecoverable_fraction,
)

POWERS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def test_unrecoverable_fraction_formula() -> None:
    assert unrecoverable_fraction(64) == 65 * 65 / 16384
    assert unrecoverable_fraction(1) == 2 * 65 / 256
    for k in POWERS:
        assert unrecoverable_fraction(k) == (k + 1) * 65 / (2 * k * 128)


def test_confidence_of_the_design_default() -> None:
    assert sample_confidence(64, 16) == 1 - (1 - 65 * 65 / 16384) ** 16
    assert sample_confidence(64, 0) == 0.0
    assert samples_for_confidence(64, 0.99) == 16


@pytest.mark.parametrize("k", POWERS)
@pytest.mark.parametrize("target", [0.5, 0.9, 0.99, 0.999, 0.999999, 1e-9, 1 - 1e-12])
def test_samples_for_confidence_is_the_smallest_reaching_target(k: int, target: float) -> None:
    s = samples_for_confidence(k, target)
    assert s >= 1
    assert sample_confidence(k, s) >= target
    assert s == 1 or sample_confidence(k, s - 1) < target


@pytest.mark.parametrize("k", POWERS)
def test_samples_at_the_exact_boundary(k: int) -> None:
    # A target equal to some s's confidence must give that s, whatever the logarithms round to.
    for s in (1, 2, 7, 16, 40):
        assert samples_for_confidence(k, sample_confidence(k, s)) <= s
        assert samples_for_confidence(k, sample_confidence(k, s)) == min(
            t for t in range(1, s + 1) if sample_confidence(k, t) >= sample_confidence(k, s)
        )


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5, float("nan"), "0.9"])
def test_target_must_be_in_open_unit_interval(target: object) -> None:
    with pytest.raises(ValueError):
        samples_for_confidence(64, target)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, 3, 1024, -2])
def test_k_is_validated(k: int) -> None:
    with pytest.raises(ValueError):
        unrecoverable_fraction(k)
    with pytest.raises(ValueError):
        draw_coordinates(k, 1, random.Random(0))


def test_negative_sample_count_rejected() -> None:
    with pytest.raises(ValueError):
        sample_confidence(64, -1)


@pytest.mark.parametrize("k", [1, 4, 64])
def test_draw_coordinates_distinct_and_in_range(k: int) -> None:
    rng = random.Random(1234)
    cells = draw_coordinates(k, 50, rng)
    assert len(cells) == 50 == len(set(cells))
    assert all(isinstance(c, CellRef) and 0 <= c.row < 2 * k and 0 <= c.col < 128 for c in cells)


def test_draw_all_cells_and_reproducible() -> None:
    assert sorted(draw_coordinates(1, 256, random.Random(0))) == [
        CellRef(r, c) for r in range(2) for c in range(128)
    ]
    assert draw_coordinates(64, 16, random.Random(7)) == draw_coordinates(64, 16, random.Random(7))
    assert draw_coordinates(64, 0, random.Random(7)) == []


def test_draw_covers_the_whole_square() -> None:
    rng = random.Random(99)
    seen = {cell for _ in range(40) for cell in draw_coordinates(2, 64, rng)}
    rows = {c.row for c in seen}
    cols = {c.col for c in seen}
    assert rows == {0, 1, 2, 3}
    assert cols == set(range(128))


def test_draw_more_than_the_square_rejected() -> None:
    with pytest.raises(ValueError):
        draw_coordinates(1, extended_cell_count(1) + 1, random.Random(0))
    with pytest.raises(ValueError):
        draw_coordinates(1, -1, random.Random(0))


def test_cell_ref_from_untrusted_coordinate() -> None:
    assert cell_ref_from_coordinate(64, 127, 127) == CellRef(127, 127)
    for row, col in [(128, 0), (0, 128), (-1, 0), (0, -1)]:
        with pytest.raises(BadCoordinate):
            cell_ref_from_coordinate(64, row, col)
    with pytest.raises(ValueError):
        CellRef(0, 128)
