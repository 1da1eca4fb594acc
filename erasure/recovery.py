"""Rebuilding an extended data square from some of its cells (DESIGN 8).

Rows with at least 64 of 128 cells are recovered by ckzg; columns with at least `k` of `2k`
cells are interpolated over Fr (one python-flint product per group of columns sharing the same
known rows). Rows and columns alternate until the square is whole or nothing progresses.
Every whole row is checked against its commitment, and must agree with every cell given for it,
so wrong data is never returned: given cells are not trusted until their row checks out.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence

from erasure import kzg
from erasure.commitments import check_k
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
from erasure.field import first_noncanonical, lagrange_matrix, matrix_times_rows, row_points
from erasure.layout import BlobEntry
from erasure.square import ExtendedSquare

Coord = tuple[int, int]
Grid = list[dict[int, bytes]]  # per row: column -> cell
WholeRow = tuple[tuple[bytes, ...], tuple[bytes, ...]]


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


def _verified_in_row(commitment: bytes, row: dict[int, bytes], proofs: Mapping) -> set[int]:
    """Columns of `row` whose cell verifies against its proof (one batch, then one by one)."""
    cols = sorted(row)
    batch = ([commitment] * len(cols), cols, [row[c] for c in cols], [proofs[c] for c in cols])
    if kzg.verify_cells(*batch):
        return set(cols)
    return {c for c in cols if kzg.verify_cells([commitment], [c], [row[c]], [proofs[c]])}


def drop_unverified(
    commitments: Sequence[bytes], grid: Grid, proofs: Mapping[Coord, bytes]
) -> Grid:
    """The grid without cells lacking a proof or whose proof does not verify.

    Raises InvalidProof for a proof of the wrong length.
    """
    by_row: list[dict[int, bytes]] = [{} for _ in grid]
    for (r, c), proof in proofs.items():
        if len(proof) != BYTES_PER_PROOF:
            raise InvalidProof(f"proof ({r}, {c}) is {len(proof)} bytes, not {BYTES_PER_PROOF}")
        if 0 <= r < len(grid) and c in grid[r]:
            by_row[r][c] = bytes(proof)
    kept: Grid = [{c: row[c] for c in row if c in by_row[r]} for r, row in enumerate(grid)]
    everything = [(r, c) for r, row in enumerate(kept) for c in sorted(row)]
    if everything and kzg.verify_cells(
        [commitments[r] for r, _ in everything],
        [c for _, c in everything],
        [kept[r][c] for r, c in everything],
        [by_row[r][c] for r, c in everything],
    ):
        return kept
    for r, row in enumerate(kept):
        good = _verified_in_row(commitments[r], row, by_row[r]) if row else set()
        kept[r] = {c: row[c] for c in good}
    return kept


def _whole_row(r: int, row: dict[int, bytes]) -> WholeRow:
    """All cells and proofs of a row from at least 64 of its cells (not yet checked)."""
    try:
        if len(row) == CELLS_PER_EXT_ROW:
            return kzg.compute_cells_and_proofs(b"".join(row[c] for c in range(CELLS_PER_ROW)))
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
    """Make every row with at least 64 known cells whole; True if any row became whole."""
    progressed = False
    for r, row in enumerate(grid):
        if r not in whole and len(row) >= CELLS_PER_ROW:
            whole[r] = _checked_row(r, commitments[r], row)
            grid[r] = dict(enumerate(whole[r][0]))
            progressed = True
    return progressed


def _column_groups(k: int, grid: Grid) -> dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]]:
    """Incomplete columns with at least k cells, keyed by (k source rows, missing rows)."""
    groups = defaultdict(list)
    for c in range(CELLS_PER_EXT_ROW):
        known = [r for r in range(2 * k) if c in grid[r]]
        if k <= len(known) < 2 * k:
            missing = tuple(r for r in range(2 * k) if c not in grid[r])
            groups[(tuple(known[:k]), missing)].append(c)
    return groups


def fill_columns(k: int, grid: Grid) -> bool:
    """Interpolate every column with at least k known cells; True if any cell was filled."""
    xs = row_points(k)
    groups = _column_groups(k, grid)
    for (sources, targets), cols in groups.items():
        matrix = lagrange_matrix(tuple(xs[s] for s in sources), tuple(xs[t] for t in targets))
        data = [b"".join(grid[s][c] for c in cols) for s in sources]
        for t, values in zip(targets, matrix_times_rows(matrix, data), strict=True):
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
) -> ExtendedSquare:
    """Rebuild the whole EDS of `k` original rows from `cells` {(row, col): 2048 bytes}.

    With `proofs`, cells lacking a proof or whose proof fails are dropped first. Without them,
    given cells inconsistent with their row commitment raise InvalidCell. Raises Unrecoverable
    when what remains cannot rebuild the square, InvalidCommitment/InvalidCell/InvalidProof on
    malformed input. Every row returned matches its commitment; proofs are recomputed.
    """
    check_k(k)
    _check_commitments(k, commitments)
    grid = grid_from_cells(k, cells)
    if proofs is not None:
        grid = drop_unverified(commitments, grid, proofs)
    else:
        check_canonical(grid)  # with proofs, such cells fail verification and are dropped
    whole: dict[int, WholeRow] = {}
    while True:
        complete_rows(commitments, grid, whole)
        if len(whole) == 2 * k:
            break
        if not fill_columns(k, grid):
            raise Unrecoverable(_missing_message(k, grid))
    return ExtendedSquare(
        k=k,
        commitments=tuple(bytes(c) for c in commitments),
        cells=tuple(whole[r][0] for r in range(2 * k)),
        proofs=tuple(whole[r][1] for r in range(2 * k)),
        blob_index=tuple(BlobEntry(*entry) for entry in blob_index),
    )
