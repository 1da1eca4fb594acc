"""Header benchmark: the commitment consistency check and the commitment extension against the
bare multi-scalar multiplications they need (DESIGN 4.4, 6).

    python bench/header.py [--quick] [--json]

At k = 64, 256 and 512 (k = 8 and 64 with `--quick`, targets not judged): k original
commitments (random multiples of a real row commitment) are extended to 2k, then checked.
Bounds, measured in the same run on the same points: for the check, one MSM of the 2k decoded
points (`erasure.g1.msm`) and, in a second row, that MSM plus decoding the 2k points (the
subgroup-checked decompression any verifier of untrusted bytes must do); for the extension, k
MSMs of the k decoded original points. Times are CPU seconds, the median of a few runs.
Target: the check at most 2x its MSM.
"""

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# A plain script: make the repository importable however the venv's editable install resolves it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import BenchRow, emit, log, parse_args, row  # noqa: E402  (bench/run.py: the table convention)

from erasure import kzg  # noqa: E402
from erasure.commitments import commitments_consistent, extend_commitments  # noqa: E402
from erasure.constants import BLS_MODULUS, BYTES_PER_ROW  # noqa: E402
from erasure.g1 import decode_points, msm  # noqa: E402

CHECK_TARGET = 2.0
CHECK_REPEATS = 15


def cpu_median(fn: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def original_commitments(k: int, rng: random.Random) -> list[bytes]:
    """k distinct valid commitments: random multiples of one real row commitment."""
    base = decode_points([kzg.commit(bytes(BYTES_PER_ROW - 1) + b"\x01")])
    return [msm(base, [rng.randrange(1, BLS_MODULUS)]) for _ in range(k)]


def figures_for(k: int, judged: bool, say: Callable[[str], None]) -> list[BenchRow]:
    rng = random.Random(k)
    original = original_commitments(k, rng)
    repeats = 1 if k >= 256 else 3
    extend = cpu_median(lambda: extend_commitments(k, original), repeats)
    commitments = extend_commitments(k, original)
    if not commitments_consistent(k, commitments):
        raise RuntimeError("extended commitments are not consistent")  # bench sanity
    points = decode_points(commitments)
    k_points = points[:k]
    scalar_rows = [[rng.randrange(BLS_MODULUS) for _ in range(k)] for _ in range(k)]
    extend_bound = cpu_median(lambda: [msm(k_points, s) for s in scalar_rows], repeats)
    check = cpu_median(lambda: commitments_consistent(k, commitments), CHECK_REPEATS)
    scalars = [rng.randrange(BLS_MODULUS) for _ in points]
    msm_bound = cpu_median(lambda: msm(points, scalars), CHECK_REPEATS)
    decode = cpu_median(lambda: decode_points(commitments), CHECK_REPEATS)
    say(f"k={k}: check {check * 1000:.1f} ms, MSM {msm_bound * 1000:.1f} ms, decode "
        f"{decode * 1000:.1f} ms; extension {extend:.2f} s, {k} MSMs {extend_bound:.2f} s")
    met = check / msm_bound <= CHECK_TARGET if judged else None
    return [
        row(f"check k={k} vs MSM (ms)", check * 1000, msm_bound * 1000, f"<= {CHECK_TARGET}", met),
        row(f"check k={k} vs decode+MSM (ms)", check * 1000, (msm_bound + decode) * 1000, "-",
            None),
        row(f"extend commitments k={k} (s)", extend, extend_bound, "-", None),
    ]


def main() -> int:
    args = parse_args(__doc__, "k = 8 and 64 only, targets not judged")
    kzg.settings()
    say = lambda message: log(message, as_json=args.json)  # noqa: E731
    rows = [r for k in ((8, 64) if args.quick else (64, 256, 512))
            for r in figures_for(k, not args.quick, say)]
    emit(rows, as_json=args.json)
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
