"""Encode and recovery benchmark: our codec against the bare ckzg work it cannot avoid.

    python bench/encode.py [--quick] [--json]

Bounds are measured in the same run on the same rows with a ckzg setup loaded without
precomputation: encoding against k x blob_to_kzg_commitment + 2k x compute_cells_and_kzg_proofs,
recovery (from every other cell of every row) against 2k x recover_cells_and_kzg_proofs.
`--quick` skips k = 64 (recovery runs at k = 8 instead) and the peak-RSS child. `--json` prints
the rows in bench/run.py's convention.
"""

import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# A plain script: make the repository importable however the venv's editable install resolves it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import BenchRow, emit, log, parse_args, row  # noqa: E402  (bench/run.py: the table convention)

from erasure import encode_square, kzg, recover_square  # noqa: E402
from erasure.constants import CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL  # noqa: E402
from erasure.square import ExtendedSquare  # noqa: E402

ENCODE_TARGET = 0.80
RECOVER_TARGET = 1.2
RSS_TARGET_MB = 800


class Figure(NamedTuple):
    name: str
    value: float
    bound: float | None
    target: str
    met: bool | None


def full_square_blobs(k: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """Four random blobs that fill a k-row ODS (one blob when k = 1 would do; four is closer)."""
    rng = random.Random(seed)
    cells_each = max(1, k * CELLS_PER_ROW // 4)
    return [(bytes([i + 1]), rng.randbytes(cells_each * PAYLOAD_BYTES_PER_CELL)) for i in range(4)]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def encode_bound(sq: ExtendedSquare, ts: object) -> float:
    """Seconds of the bare ckzg work for this square: k commitments, 2k row extensions."""
    rows = [b"".join(sq.row_cells(r)[:CELLS_PER_ROW]) for r in range(2 * sq.k)]
    seconds, _ = timed(lambda: [kzg.commit(row, ts) for row in rows[: sq.k]])
    more, _ = timed(lambda: [kzg.compute_cells_and_proofs(row, ts) for row in rows])
    return seconds + more


def half_of_every_row(sq: ExtendedSquare) -> dict[tuple[int, int], bytes]:
    return {(r, c): sq.cell(r, c) for r in range(2 * sq.k) for c in range(0, 128, 2)}


def recover_bound(sq: ExtendedSquare, ts: object) -> float:
    cols = list(range(0, 128, 2))
    rows = [[sq.cell(r, c) for c in cols] for r in range(2 * sq.k)]
    seconds, _ = timed(lambda: [kzg.recover_row(cols, cells, ts) for cells in rows])
    return seconds


def encode_figure(k: int, ts: object) -> tuple[Figure, ExtendedSquare]:
    blobs = full_square_blobs(k)
    seconds, sq = timed(lambda: encode_square(blobs, max_rows=max(k, 64)))
    assert isinstance(sq, ExtendedSquare) and sq.k == k  # bench sanity, not input validation
    bound = encode_bound(sq, ts)
    target = f"<= {ENCODE_TARGET}" if k == 64 else "-"
    met = seconds / bound <= ENCODE_TARGET if k == 64 else None
    return Figure(f"encode k={k} (s)", seconds, bound, target, met), sq


def recover_figure(sq: ExtendedSquare, ts: object) -> Figure:
    cells = half_of_every_row(sq)
    seconds, out = timed(lambda: recover_square(sq.k, sq.commitments, cells))
    assert out == ExtendedSquare(sq.k, sq.commitments, sq.cells, sq.proofs)  # bench sanity
    bound = recover_bound(sq, ts)
    met = seconds / bound <= RECOVER_TARGET if sq.k == 64 else None
    return Figure(f"recover k={sq.k} (s)", seconds, bound, f"<= {RECOVER_TARGET}", met)


def rss_figure() -> Figure:
    """Peak RSS of a k = 64 encode (setup load included) in a fresh child process."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import encode as b; "
        "from erasure import "
        "encode_square, kzg; kzg.settings(); encode_square(b.full_square_blobs(64), max_rows=64)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return Figure("peak RSS k=64 encode (MB)", peak_mb, None, f"< {RSS_TARGET_MB}", peak_mb < 800)


def bench_row(f: Figure) -> BenchRow:
    return row(f.name, f.value, f.bound, f.target, f.met)


def main() -> None:
    args = parse_args(__doc__, "skip k = 64 and the RSS child")
    kzg.settings()  # our precomputed setup, loaded before any timing
    bare = kzg.load_settings(precompute=0)
    figures, squares = [], {}
    for k in (1, 8) if args.quick else (1, 8, 64):
        figure, squares[k] = encode_figure(k, bare)
        figures.append(figure)
        log(f"measured {figure.name}: {figure.value:.2f}", as_json=args.json)
    figures.append(recover_figure(squares[8 if args.quick else 64], bare))
    log(f"measured {figures[-1].name}: {figures[-1].value:.2f}", as_json=args.json)
    if not args.quick:
        figures.append(rss_figure())
    emit([bench_row(f) for f in figures], as_json=args.json)


if __name__ == "__main__":
    main()
