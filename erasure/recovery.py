"""Rebuilding an extended data square from some of its cells (PROTOCOL.md §8).

Repair costs what is missing: given cells are verified against their proofs in one batch
(narrowed down by halves when it fails; a cell that fails is dropped, never trusted), rows given
whole with verified proofs are kept as they are (a caller that verified rows itself, like the
storage node reading back rows from its store, names them and spares the batch), and only the
other rows are rebuilt: by ckzg from at least 64 of their cells, or from the k known cells of
each column (a python-flint product per group of columns sharing the same known rows), then
their cells and proofs computed once. Only rebuilt rows are committed, each checked against its
header commitment.

Without proofs, every given cell is trusted only once its row checks against its commitment, and
every row is rebuilt (the cells are still checked, but proofs must be computed for all rows).
"""

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

from erasure import kzg
from erasure.constants import (
    BYTES_PER_CELL,
    BYTES_PER_COMMITMENT,
    BYTES_PER_PROOF,
    CELLS_PER_EXT_ROW,
    CELLS_PER_ROW,
)
from erasure.errors import (
    InvalidCell,
    InvalidCommitment,
    InvalidFieldElement,
    InvalidProof,
    Unrecoverable,
)
from erasure.field import first_noncanonical, matrix_times_rows, row_matrix
from erasure.layout import BlobEntry, check_k
from erasure.square import ExtendedSquare

Coord = tuple[int, int]
Grid = list[dict[int, bytes]]  # per row: column -> cell
WholeRow = tuple[tuple[bytes, ...], tuple[bytes, ...]]
Entry = tuple[int, int, bytes, bytes]  # row, column, cell, proof
ORIGINAL_COLUMNS = range(CELLS_PER_ROW)  # a row's cells 0..63 are its 4096 field elements


def _check_commitments(k: int, commitments: Sequence[bytes]) -> None:
    if len(commitments) != 2 * k:
        raise InvalidCommitment(f"expected {2 * k} commitments, got {len(commitments)}")
    for r, c in enumerate(commitments):
        if len(c) != BYTES_PER_COMMITMENT:
            raise InvalidCommitment(f"commitment {r} is {len(c)} bytes, not {BYTES_PER_COMMITMENT}")


def _check_coord(k: int, coord: Coord) -> None:
    row, col = coord
    if not (isinstance(row, int) and isinstance(col, int)):
        raise InvalidCell(f"coordinates must be integers, got {coord!r}")
    if not (0 <= row < 2 * k and 0 <= col < CELLS_PER_EXT_ROW):
        raise InvalidCell(f"no cell ({row}, {col}) in a {2 * k}x128 square", row, col)


def grid_from_cells(k: int, cells: Mapping[Coord, bytes]) -> Grid:
    """The given cells arranged by row; raises InvalidCell on bad coordinates or lengths."""
    grid: Grid = [{} for _ in range(2 * k)]
    for coord, cell in cells.items():
        _check_coord(k, coord)
        if len(cell) != BYTES_PER_CELL:
            raise InvalidCell(f"cell {coord} is {len(cell)} bytes, not {BYTES_PER_CELL}", *coord)
        grid[coord[0]][coord[1]] = bytes(cell)
    return grid


def check_canonical(grid: Grid) -> None:
    """Raise InvalidCell for a cell holding a field element not below BLS_MODULUS."""
    for r, row in enumerate(grid):
        for c, cell in row.items():
            if first_noncanonical(cell) is not None:
                raise InvalidCell(f"cell ({r}, {c}) holds a field element >= BLS_MODULUS", r, c)


def _passing(commitments: Sequence[bytes], entries: Sequence[Entry]) -> list[Entry]:
    """The entries whose cell verifies against its proof: one batch, and only when it fails,
    each half again (a few bad cells cost a few batches of halving sizes)."""
    if not entries:
        return []
    if kzg.verify_cells(
        [commitments[r] for r, _, _, _ in entries],
        [c for _, c, _, _ in entries],
        [cell for _, _, cell, _ in entries],
        [proof for _, _, _, proof in entries],
    ):
        return list(entries)
    if len(entries) == 1:
        return []
    half = len(entries) // 2
    return _passing(commitments, entries[:half]) + _passing(commitments, entries[half:])


def verified_cells(
    commitments: Sequence[bytes],
    grid: Grid,
    proofs: Mapping[Coord, bytes],
    verified_rows: Collection[int] = (),
) -> tuple[Grid, list[dict[int, bytes]]]:
    """The cells of `grid` whose proof verifies, and those proofs; cells without one are dropped.
    Rows of `verified_rows` given whole with proofs are taken as the caller verified them.

    Raises InvalidProof for a proof of the wrong length.
    """
    for coord, proof in proofs.items():
        if len(proof) != BYTES_PER_PROOF:
            raise InvalidProof(f"proof {coord} is {len(proof)} bytes, not {BYTES_PER_PROOF}")
    entries = [
        (r, c, row[c], bytes(proofs[(r, c)]))
        for r, row in enumerate(grid)
        for c in sorted(row)
        if (r, c) in proofs
    ]
    done = {
        r
        for r in verified_rows
        if 0 <= r < len(grid)
        and all((r, c) in proofs for c in range(CELLS_PER_EXT_ROW))
        and len(grid[r]) == CELLS_PER_EXT_ROW
    }
    trusted = [e for e in entries if e[0] in done]
    checked = _passing(commitments, [e for e in entries if e[0] not in done])
    kept: Grid = [{} for _ in grid]
    kept_proofs: list[dict[int, bytes]] = [{} for _ in grid]
    for r, c, cell, proof in trusted + checked:
        kept[r][c], kept_proofs[r][c] = cell, proof
    return kept, kept_proofs


def whole_rows_given(grid: Grid, proofs: list[dict[int, bytes]]) -> dict[int, WholeRow]:
    """The rows given whole with verified proofs: kept as they are, nothing recomputed."""
    return {
        r: (
            tuple(row[c] for c in range(CELLS_PER_EXT_ROW)),
            tuple(proofs[r][c] for c in range(CELLS_PER_EXT_ROW)),
        )
        for r, row in enumerate(grid)
        if len(row) == CELLS_PER_EXT_ROW
    }


def _whole_row(r: int, row: dict[int, bytes]) -> WholeRow:
    """All cells and proofs of a row from at least 64 of its cells (not yet checked): computed
    from cells 0..63 when known (cheaper than ckzg's recovery), else recovered."""
    try:
        if all(c in row for c in ORIGINAL_COLUMNS):
            return kzg.compute_cells_and_proofs(b"".join(row[c] for c in ORIGINAL_COLUMNS))
        cols = sorted(row)
        return kzg.recover_row(cols, [row[c] for c in cols])
    except (InvalidFieldElement, InvalidCell) as e:
        raise InvalidCell(f"row {r}: a given cell is not canonical field elements", r) from e


def _checked_row(r: int, commitment: bytes, row: dict[int, bytes]) -> WholeRow:
    """The whole row, checked against its commitment and the cells known for it."""
    cells, proofs = _whole_row(r, row)
    if kzg.commit(b"".join(cells[:CELLS_PER_ROW])) != commitment:
        raise InvalidCell(f"row {r}: the cells given for it disagree with its commitment", r)
    for c, cell in row.items():
        if cells[c] != cell:
            raise InvalidCell(f"cell ({r}, {c}) disagrees with its row's commitment", r, c)
    return cells, proofs


def complete_rows(commitments: Sequence[bytes], grid: Grid, whole: dict[int, WholeRow]) -> bool:
    """Rebuild every row not yet whole that has at least 64 known cells; True if any was."""
    progressed = False
    for r, row in enumerate(grid):
        if r not in whole and len(row) >= CELLS_PER_ROW:
            whole[r] = _checked_row(r, commitments[r], row)
            grid[r] = dict(enumerate(whole[r][0]))
            progressed = True
    return progressed


def _wanted_columns(k: int, grid: Grid, whole: Mapping[int, WholeRow]) -> dict[int, list[int]]:
    """For each column, the rows still to rebuild that need its cell from the column code.

    A row whose cells 0..63 can all be had needs only those (its other cells come with its
    proofs); any other row takes every cell the columns can give."""
    fillable = {c for c in range(CELLS_PER_EXT_ROW) if sum(c in row for row in grid) >= k}
    wanted: dict[int, list[int]] = defaultdict(list)
    for r, row in enumerate(grid):
        if r in whole:
            continue
        if all(c in row or c in fillable for c in ORIGINAL_COLUMNS):
            columns = [c for c in ORIGINAL_COLUMNS if c not in row]
        else:
            columns = [c for c in sorted(fillable) if c not in row]
        for c in columns:
            wanted[c].append(r)
    return wanted


def fill_columns(k: int, grid: Grid, whole: Mapping[int, WholeRow]) -> bool:
    """Interpolate the cells rows still need from columns with k known cells; True if any."""
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = defaultdict(list)
    for c, wanted_by in _wanted_columns(k, grid, whole).items():
        known = tuple(r for r, row in enumerate(grid) if c in row)[:k]
        groups[(known, tuple(wanted_by))].append(c)
    for (sources, targets), cols in groups.items():
        data = [b"".join(grid[s][c] for c in cols) for s in sources]
        filled = matrix_times_rows(row_matrix(k, sources, targets), data)
        for t, values in zip(targets, filled, strict=True):
            for i, c in enumerate(cols):
                grid[t][c] = values[i * BYTES_PER_CELL : (i + 1) * BYTES_PER_CELL]
    return bool(groups)


def _missing_message(k: int, grid: Grid) -> str:
    rows = [r for r in range(2 * k) if len(grid[r]) < CELLS_PER_EXT_ROW]
    counts = ", ".join(f"row {r}: {len(grid[r])}/128" for r in rows[:8])
    have = sum(len(row) for row in grid)
    return (
        f"cannot rebuild the {2 * k}x128 square from {have} cells: {len(rows)} rows have fewer "
        f"than {CELLS_PER_ROW} cells and no incomplete column has {k} of {2 * k} ({counts}"
        f"{', ...' if len(rows) > 8 else ''})"
    )


def recover_square(
    k: int,
    commitments: Sequence[bytes],
    cells: Mapping[Coord, bytes],
    proofs: Mapping[Coord, bytes] | None = None,
    blob_index: Sequence[BlobEntry] = (),
    *,
    verified_rows: Collection[int] = (),
) -> ExtendedSquare:
    """Rebuild the whole EDS of `k` original rows from `cells` {(row, col): 2048 bytes}.

    With `proofs` (same coordinates, 48 bytes each), cells lacking a proof or whose proof fails
    are dropped, rows given whole are kept with their proofs, and only the other rows are
    rebuilt, proved and committed (PROTOCOL.md §8.2). `verified_rows`: rows the caller has already
    verified against these commitments (e.g. read back from its store) and gives whole with
    their proofs; they are kept without verifying them again. Without proofs, given cells
    inconsistent with their row commitment raise InvalidCell and every row's proofs are
    computed. Raises Unrecoverable when what remains cannot rebuild the square,
    InvalidCommitment/InvalidCell/InvalidProof on malformed input. Every row returned matches
    its commitment.
    """
    check_k(k)
    _check_commitments(k, commitments)
    grid = grid_from_cells(k, cells)
    whole: dict[int, WholeRow] = {}
    if proofs is not None:
        grid, grid_proofs = verified_cells(commitments, grid, proofs, verified_rows)
        whole.update(whole_rows_given(grid, grid_proofs))
    else:
        check_canonical(grid)  # with proofs, such cells fail verification and are dropped
    while True:
        complete_rows(commitments, grid, whole)
        if len(whole) == 2 * k:
            break
        if not fill_columns(k, grid, whole):
            raise Unrecoverable(_missing_message(k, grid))
    return ExtendedSquare(
        k=k,
        commitments=tuple(bytes(c) for c in commitments),
        cells=tuple(whole[r][0] for r in range(2 * k)),
        proofs=tuple(whole[r][1] for r in range(2 * k)),
        blob_index=tuple(BlobEntry(*entry) for entry in blob_index),
    )
