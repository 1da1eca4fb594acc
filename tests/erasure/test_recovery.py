import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import (
    InvalidCell,
    InvalidCommitment,
    InvalidProof,
    Unrecoverable,
    kzg,
    recover_square,
)
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


def with_proofs(sq: ExtendedSquare, coords: set[tuple[int, int]]) -> tuple[dict, dict]:
    cells = keep(sq, coords)
    return cells, {rc: sq.proof(*rc) for rc in cells}


class Calls:
    """Counts the ckzg work recovery asks for (the real functions still run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[str] = []
        self.commits = 0
        for name in ("compute_cells_and_proofs", "recover_row"):
            monkeypatch.setattr(kzg, name, self._counting(name, getattr(kzg, name)))
        commit = kzg.commit

        def counted_commit(row: bytes, ts: object = None) -> bytes:
            self.commits += 1
            return commit(row, ts)

        monkeypatch.setattr(kzg, "commit", counted_commit)

    def _counting(self, name: str, fn: Callable) -> Callable:
        def counted(*args: object) -> object:
            self.rows.append(name)
            return fn(*args)

        return counted


@pytest.mark.parametrize("withheld", [(2,), (0, 5), (1, 3, 4, 6)])
def test_withheld_rows_rebuilt_exactly_the_rest_kept(
    square_k4: ExtendedSquare, withheld: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    sq = square_k4
    coords = {(r, c) for r in range(8) for c in range(128) if r not in withheld}
    cells, proofs = with_proofs(sq, coords)
    calls = Calls(monkeypatch)
    out = recovered(sq, cells, proofs=proofs)
    # One computation and one commitment per withheld row; rows given whole are kept.
    assert calls.rows == ["compute_cells_and_proofs"] * len(withheld)
    assert calls.commits == len(withheld)
    for r in range(8):
        if r not in withheld:
            assert all(a is b for a, b in zip(out.row_proofs(r), proofs_of(proofs, r), strict=True))


def proofs_of(proofs: dict, r: int) -> list[bytes]:
    return [proofs[(r, c)] for c in range(128)]


def test_rows_with_half_their_cells_are_recovered_by_row(
    square_k2: ExtendedSquare, monkeypatch: pytest.MonkeyPatch
) -> None:
    sq = square_k2
    coords = {(r, c) for r in range(4) for c in range(128) if r != 1 or c % 2}
    cells, proofs = with_proofs(sq, coords)
    calls = Calls(monkeypatch)
    recovered(sq, cells, proofs=proofs)
    assert calls.rows == ["recover_row"] and calls.commits == 1


def test_a_quarter_of_the_columns_missing(square_k2: ExtendedSquare) -> None:
    lost = set(random.Random(5).sample(range(128), 32))
    cells, proofs = with_proofs(
        square_k2, {(r, c) for r in range(4) for c in range(128) if c not in lost}
    )
    recovered(square_k2, cells, proofs=proofs)


def test_a_whole_row_with_a_wrong_proof_is_not_kept(square_k2: ExtendedSquare) -> None:
    sq = square_k2
    cells, proofs = with_proofs(sq, {(r, c) for r in range(4) for c in range(128)})
    proofs[(1, 9)] = sq.proof(1, 10)  # a valid proof, of another cell
    cells[(3, 100)] = flipped(cells[(3, 100)])
    out = recovered(sq, cells, proofs=proofs)
    assert out.proof(1, 9) == sq.proof(1, 9) and out.cell(3, 100) == sq.cell(3, 100)


def test_bad_proofs_everywhere_still_recover_from_the_good_cells(square_k4: ExtendedSquare) -> None:
    sq = square_k4
    cells, proofs = with_proofs(sq, {(r, c) for r in range(8) for c in range(128)})
    rnd = random.Random(11)
    for r in range(8):  # 64 bad proofs in every row: every row still has 64 good cells
        for c in rnd.sample(range(128), 64):
            proofs[(r, c)] = sq.proof(r, (c + 1) % 128)
    recovered(sq, cells, proofs=proofs)


def test_bad_proofs_on_a_withheld_rows_only_source(square_k2: ExtendedSquare) -> None:
    # Rows 2 and 3 withheld; a bad cell in row 0 leaves too few good cells in its column.
    sq = square_k2
    cells, proofs = with_proofs(sq, {(r, c) for r in (0, 1) for c in range(128)})
    cells[(0, 0)] = flipped(cells[(0, 0)])
    recovered(sq, cells, proofs=proofs)  # row 0 is rebuilt from its other cells first


@COSTLY
@given(st.randoms(use_true_random=False), st.sampled_from([1, 2, 4, 8]))
def test_random_loss_patterns_with_proofs(
    request: pytest.FixtureRequest, rnd: random.Random, k: int
) -> None:
    sq = request.getfixturevalue(f"square_k{k}")
    rows = rnd.sample(range(2 * k), rnd.randint(k, 2 * k))  # rows that keep some cells
    coords = set()
    for r in rows:  # each at least 64 cells: recoverable by rows, then columns
        coords |= {(r, c) for c in rnd.sample(range(128), rnd.randint(64, 128))}
    extra = rnd.sample(range(2 * k), rnd.randint(0, 2 * k))  # some cells of any row
    coords |= {(r, rnd.randrange(128)) for r in extra}
    cells, proofs = with_proofs(sq, coords)
    for rc in rnd.sample(sorted(cells), min(3, len(cells))):
        if rc[0] not in rows:  # a bad proof where it cannot cost a needed cell
            proofs[rc] = bytes(48)
    recovered(sq, cells, proofs=proofs)


def test_verified_rows_are_not_verified_again(
    square_k2: ExtendedSquare, monkeypatch: pytest.MonkeyPatch
) -> None:
    sq = square_k2
    cells, proofs = with_proofs(sq, {(r, c) for r in (0, 1, 3) for c in range(128)})
    cells.update(keep(sq, {(2, c) for c in range(10)}))  # a few gathered cells of row 2
    proofs.update({(2, c): sq.proof(2, c) for c in range(10)})
    proofs[(2, 3)] = sq.proof(2, 4)  # a bad gathered proof is still caught
    batches: list[int] = []
    verify = kzg.verify_cells

    def counted(commitments: list, *args: object) -> bool:
        batches.append(len(commitments))
        return verify(commitments, *args)

    monkeypatch.setattr(kzg, "verify_cells", counted)
    recovered(sq, cells, proofs=proofs, verified_rows=[0, 1, 3])
    assert batches and max(batches) == 10  # only row 2's cells were verified


def test_verified_rows_must_be_whole_to_be_spared(square_k2: ExtendedSquare) -> None:
    sq = square_k2
    cells, proofs = with_proofs(sq, {(r, c) for r in (0, 1, 3) for c in range(128)})
    del proofs[(1, 5)]  # not whole with proofs: its cells are verified as usual
    cells[(1, 6)] = flipped(cells[(1, 6)])
    recovered(sq, cells, proofs=proofs, verified_rows=[0, 1, 3])


def _old_patterns(k: int, rnd: random.Random) -> list[set[tuple[int, int]]]:
    """The loss patterns of the tests above (half of each row, k of each column, k whole rows,
    rows then columns then rows), for a square of k original rows."""
    rows_then_columns = {(0, c) for c in range(64, 128)} | {(1, c) for c in range(64)}
    rows_then_columns |= {(r, c) for r in range(2, 2 * k) for c in range(64, 128)}
    return [
        {(r, c) for r in range(2 * k) for c in rnd.sample(range(128), 64)},
        {(r, c) for c in range(128) for r in rnd.sample(range(2 * k), k)},
        {(r, c) for r in rnd.sample(range(2 * k), k) for c in range(128)},
        rows_then_columns,
    ]


@pytest.mark.parametrize("fixture", ["square_k1", "square_k2"])
def test_old_loss_patterns_with_proofs(fixture: str, request: pytest.FixtureRequest) -> None:
    sq: ExtendedSquare = request.getfixturevalue(fixture)
    for coords in _old_patterns(sq.k, random.Random(sq.k)):
        cells, proofs = with_proofs(sq, coords)
        recovered(sq, cells, proofs=proofs)
