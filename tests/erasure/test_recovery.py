import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import InvalidCell, InvalidCommitment, InvalidProof, Unrecoverable, recover_square
from erasure.square import ExtendedSquare
from tests.erasure.helpers import COSTLY


def all_cells(sq: ExtendedSquare) -> dict[tuple[int, int], bytes]:
    return {(r, c): sq.cell(r, c) for r in range(2 * sq.k) for c in range(128)}


def all_proofs(sq: ExtendedSquare) -> dict[tuple[int, int], bytes]:
    return {(r, c): sq.proof(r, c) for r in range(2 * sq.k) for c in range(128)}


def keep(sq: ExtendedSquare, coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    return {rc: cell for rc, cell in all_cells(sq).items() if rc in coords}


def flipped(cell: bytes) -> bytes:
    """The cell with its last bit flipped (still canonical field elements)."""
    return cell[:-1] + bytes([cell[-1] ^ 1])


def recovered(sq: ExtendedSquare, cells: dict, **kwargs: object) -> ExtendedSquare:
    out = recover_square(sq.k, sq.commitments, cells, **kwargs)
    assert out.cells == sq.cells and out.proofs == sq.proofs
    return out


@COSTLY
@given(st.randoms(use_true_random=False))
def test_any_half_of_each_row_rebuilds(square_k1: ExtendedSquare, rnd: random.Random) -> None:
    coords = {(r, c) for r in range(2) for c in rnd.sample(range(128), 64)}
    recovered(square_k1, keep(square_k1, coords))


@COSTLY
@given(st.randoms(use_true_random=False))
def test_any_k_of_each_column_rebuilds(square_k2: ExtendedSquare, rnd: random.Random) -> None:
    coords = {(r, c) for c in range(128) for r in rnd.sample(range(4), 2)}
    recovered(square_k2, keep(square_k2, coords))


@pytest.mark.parametrize("rows", [(0, 1, 2, 3), (4, 5, 6, 7), (0, 3, 5, 6)])
def test_k_whole_rows_rebuild_everything(square_k4: ExtendedSquare, rows: tuple) -> None:
    coords = {(r, c) for r in rows for c in range(128)}
    out = recovered(square_k4, keep(square_k4, coords), blob_index=square_k4.blob_index)
    assert out == square_k4


def test_rows_then_columns_then_rows(square_k2: ExtendedSquare) -> None:
    # Row 0 whole-able from 64 cells; columns 0..63 then have rows 0 and 1 (k = 2) known.
    coords = {(0, c) for c in range(64, 128)} | {(1, c) for c in range(64)}
    coords |= {(2, c) for c in range(64, 128)}
    recovered(square_k2, keep(square_k2, coords))


def test_withheld_block_is_unrecoverable(square_k2: ExtendedSquare) -> None:
    k = square_k2.k
    withheld = {(r, c) for r in range(k + 1) for c in range(65)}
    cells = {rc: v for rc, v in all_cells(square_k2).items() if rc not in withheld}
    with pytest.raises(Unrecoverable, match="cannot rebuild"):
        recover_square(k, square_k2.commitments, cells)


def test_nothing_given_is_unrecoverable(square_k1: ExtendedSquare) -> None:
    with pytest.raises(Unrecoverable):
        recover_square(1, square_k1.commitments, {})


def test_corrupted_cell_without_proofs_raises(square_k1: ExtendedSquare) -> None:
    for coord in [(0, 5), (1, 100)]:
        cells = all_cells(square_k1)
        cells[coord] = flipped(cells[coord])
        with pytest.raises(InvalidCell):
            recover_square(1, square_k1.commitments, cells)


def test_noncanonical_cell_without_proofs_raises(square_k1: ExtendedSquare) -> None:
    cells = all_cells(square_k1)
    cells[(1, 2)] = b"\xff" * 2048
    with pytest.raises(InvalidCell, match="BLS_MODULUS"):
        recover_square(1, square_k1.commitments, cells)


def test_corrupted_cell_used_in_a_column_raises(square_k2: ExtendedSquare) -> None:
    cells = keep(square_k2, {(r, c) for r in (1, 2) for c in range(128)})
    cells[(1, 7)] = flipped(cells[(1, 7)])
    with pytest.raises(InvalidCell):
        recover_square(2, square_k2.commitments, cells)


def test_corrupted_cells_and_proofs_are_dropped_with_proofs(square_k1: ExtendedSquare) -> None:
    cells, proofs = all_cells(square_k1), all_proofs(square_k1)
    cells[(0, 5)] = flipped(cells[(0, 5)])
    cells[(1, 6)] = b"\xff" * 2048  # not canonical: cannot verify
    proofs[(1, 9)] = proofs[(1, 10)]
    del proofs[(0, 11)]
    recovered(square_k1, cells, proofs=proofs)


def test_too_many_bad_cells_with_proofs_is_unrecoverable(square_k1: ExtendedSquare) -> None:
    cells = keep(square_k1, {(0, c) for c in range(64)})
    proofs = {(0, c): square_k1.proof(0, c) for c in range(64)}
    proofs[(0, 3)] = proofs[(0, 4)]
    with pytest.raises(Unrecoverable):
        recover_square(1, square_k1.commitments, cells, proofs=proofs)


def test_input_validation(square_k1: ExtendedSquare) -> None:
    c = square_k1.commitments
    with pytest.raises(InvalidCell):
        recover_square(1, c, {(2, 0): bytes(2048)})
    with pytest.raises(InvalidCell):
        recover_square(1, c, {(0, 0): bytes(2047)})
    with pytest.raises(InvalidCommitment):
        recover_square(1, c[:1], {})
    with pytest.raises(InvalidProof):
        recover_square(1, c, {(0, 0): bytes(2048)}, proofs={(0, 0): bytes(47)})
    with pytest.raises(ValueError):
        recover_square(3, c, {})
