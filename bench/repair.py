"""Repair benchmark: `recover_square` against the ckzg work the loss really needs (PROTOCOL.md
§8.2).

    python bench/repair.py [--quick] [--json]

Cases: one missing row (seeded choice) at k = 32 and k = 64, rebuilt from every other row's cells
and proofs (what a storage node's repair passes); a quarter of the columns (seeded choice)
missing from every row at k = 32. The bound is measured in the same run, with the same ckzg
setup, on the same data: one batch verification of every given cell and proof, plus one
`compute_cells_and_kzg_proofs` and one `blob_to_kzg_commitment` for each row that lost cells.
Times are CPU seconds of this process (the work is single-threaded; the machine may be shared),
the best of a few runs. Target: at most 1.5x. A last case is the storage node's own repair at
k = 64: the rows it fetched and verified are named in `verified_rows`, so neither it nor its
bound verifies them again. `--quick`: k = 4 and 8, targets not judged.
"""

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# A plain script: make the repository importable however the venv's editable install resolves it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encode import full_square_blobs  # noqa: E402  (bench/encode.py: the same square contents)
from run import BenchRow, emit, log, parse_args, row  # noqa: E402  (bench/run.py: the table convention)

from erasure import encode_square, kzg, recover_square  # noqa: E402
from erasure.constants import CELLS_PER_EXT_ROW, CELLS_PER_ROW  # noqa: E402
from erasure.square import ExtendedSquare  # noqa: E402

REPAIR_TARGET = 1.5
REPEATS = 3

Coord = tuple[int, int]


class Loss(NamedTuple):
    """A repair case: its name, the coordinates withheld from `recover_square`, and whether the
    caller names the whole rows as verified already (a storage node's repair: `verified_rows`)."""

    name: str
    lost: frozenset[Coord]
    rows_verified: bool = False


def best_cpu(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """The least CPU time of `repeats` calls of `fn`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def one_row(k: int, seed: int) -> Loss:
    r = random.Random(seed).randrange(2 * k)
    return Loss("1 row lost", frozenset((r, c) for c in range(CELLS_PER_EXT_ROW)))


def quarter_of_columns(k: int, seed: int) -> Loss:
    cols = random.Random(seed).sample(range(CELLS_PER_EXT_ROW), CELLS_PER_EXT_ROW // 4)
    lost = frozenset((r, c) for r in range(2 * k) for c in cols)
    return Loss("1/4 of columns lost", lost)


def bound_seconds(sq: ExtendedSquare, loss: Loss) -> float:
    """One batch verify of the given cells (none when the caller verified them) + compute and
    commit of every row that lost cells."""
    given = (
        [
            (r, c)
            for r in range(2 * sq.k)
            for c in range(CELLS_PER_EXT_ROW)
            if (r, c) not in loss.lost
        ]
        if not loss.rows_verified
        else []
    )
    args = (
        [sq.commitments[r] for r, _ in given],
        [c for _, c in given],
        [sq.cell(r, c) for r, c in given],
        [sq.proof(r, c) for r, c in given],
    )
    rows = [b"".join(sq.row_cells(r)[:CELLS_PER_ROW]) for r in sorted({r for r, _ in loss.lost})]

    def work() -> None:
        if given and not kzg.verify_cells(*args):
            raise RuntimeError("honest cells did not verify")
        for data in rows:
            kzg.compute_cells_and_proofs(data)
            kzg.commit(data)

    return best_cpu(work)


def repair_seconds(sq: ExtendedSquare, loss: Loss) -> float:
    """CPU seconds of `recover_square` given every cell and proof but the lost ones."""
    cells = {
        (r, c): sq.cell(r, c)
        for r in range(2 * sq.k)
        for c in range(CELLS_PER_EXT_ROW)
        if (r, c) not in loss.lost
    }
    proofs = {coord: sq.proof(*coord) for coord in cells}
    lost_rows = {r for r, _ in loss.lost}
    verified = [r for r in range(2 * sq.k) if r not in lost_rows] if loss.rows_verified else []

    def repair() -> ExtendedSquare:
        return recover_square(sq.k, sq.commitments, cells, proofs, verified_rows=verified)

    out = repair()
    if out.cells != sq.cells or out.proofs != sq.proofs:  # bench sanity: the repair is exact
        raise RuntimeError(f"k={sq.k} {loss.name}: the repaired square differs")
    return best_cpu(repair)


def figures(
    cases: list[tuple[int, str]], judged: bool, say: Callable[[str], None]
) -> list[BenchRow]:
    squares: dict[int, ExtendedSquare] = {}
    rows = []
    for k, kind in cases:
        if k not in squares:
            say(f"encoding a k={k} square")
            squares[k] = encode_square(full_square_blobs(k), max_rows=max(k, 64))
        loss = quarter_of_columns(k, seed=k) if kind == "columns" else one_row(k, seed=k)
        if kind == "row, rows verified":
            loss = Loss("1 row, rest verified", loss.lost, rows_verified=True)
        value = repair_seconds(squares[k], loss)
        bound = bound_seconds(squares[k], loss)
        lost_rows = sorted({r for r, _ in loss.lost})
        say(f"k={k} {loss.name} (rows {lost_rows[:3]}...): {value:.2f} s CPU against {bound:.2f} s")
        met = value / bound <= REPAIR_TARGET if judged else None
        rows.append(row(f"repair k={k}: {loss.name} (s)", value, bound, f"<= {REPAIR_TARGET}", met))
    return rows


def main() -> int:
    args = parse_args(__doc__, "k = 4 and 8 only, targets not judged")
    kzg.settings()  # loaded before any timing
    cases = (
        [(4, "row"), (8, "row"), (8, "columns"), (8, "row, rows verified")]
        if args.quick
        else [(32, "row"), (64, "row"), (32, "columns"), (64, "row, rows verified")]
    )
    say = lambda message: log(message, as_json=args.json)  # noqa: E731
    rows = figures(cases, not args.quick, say)
    emit(rows, as_json=args.json)
    return 0  # the rows say which targets were met (bench/run.py)


if __name__ == "__main__":
    sys.exit(main())
