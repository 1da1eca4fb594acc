"""Header benchmark: the commitment consistency check and the commitment extension against the
bare multi-scalar multiplications they need (PROTOCOL.md §4.4, §6).

    python bench/header.py [--quick] [--json]

At k = 64, 256 and 512 (k = 8 and 64 with `--quick`, targets not judged): k original
commitments (random multiples of a real row commitment) are extended to 2k, then checked.
Bounds, measured in the same run on the same points, CPU seconds, the median of a few runs:
- the check against the issue's bound, one MSM of the 2k decoded points (`erasure.g1.msm`),
  shown without a target: no sound check reaches it (below);
- the check against decode + MSM: that MSM plus the cheapest sound decoding of the 2k
  compressed points among our libraries (arkworks `from_compressed_bytes`, or blst through
  blspy `G1Element.from_bytes` followed by arkworks' unchecked decompression to get a point the
  MSM takes; both check the subgroup). Target: at most 2x.
- the extension against k MSMs of the k decoded original points (no target).

Why the target is on decode + MSM: a header's commitments are untrusted bytes, and a point
outside G1 must be refused, which needs a subgroup check per point (a random-linear-combination
batch check is unsound here: the cofactor has the factor 3). Decompressing and checking one point
costs ~3x what it adds to a 2k-point MSM, so at every k the decoding alone exceeds 2x the MSM.
"""

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# A plain script: make the repository importable however the venv's editable install resolves it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import blspy  # noqa: E402  (only for the decode bound: the cheapest sound decoding we have)
from py_arkworks_bls12381 import G1Point  # noqa: E402
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


def sound_decode_seconds(commitments: list[bytes]) -> tuple[float, float, float]:
    """CPU seconds to decode the points with a subgroup check, by the cheaper of the two routes
    our libraries offer; also each route's own time (arkworks, blspy then arkworks unchecked)."""

    def arkworks() -> None:
        for c in commitments:
            G1Point.from_compressed_bytes(c)

    def blst_then_arkworks() -> None:
        for c in commitments:
            blspy.G1Element.from_bytes(c)
            G1Point.from_compressed_bytes_unchecked(c)

    ark = cpu_median(arkworks, CHECK_REPEATS)
    blst = cpu_median(blst_then_arkworks, CHECK_REPEATS)
    return min(ark, blst), ark, blst


def figures_for(k: int, judged: bool, say: Callable[[str], None]) -> list[BenchRow]:
    rng = random.Random(k)
    original = original_commitments(k, rng)
    repeats = 1 if k >= 256 else 3
    extend = cpu_median(lambda: extend_commitments(k, original), repeats)
    commitments = list(extend_commitments(k, original))
    if not commitments_consistent(k, commitments):
        raise RuntimeError("extended commitments are not consistent")  # bench sanity
    points = decode_points(commitments)
    k_points = points[:k]
    scalar_rows = [[rng.randrange(BLS_MODULUS) for _ in range(k)] for _ in range(k)]
    extend_bound = cpu_median(lambda: [msm(k_points, s) for s in scalar_rows], repeats)
    check = cpu_median(lambda: commitments_consistent(k, commitments), CHECK_REPEATS)
    scalars = [rng.randrange(BLS_MODULUS) for _ in points]
    msm_bound = cpu_median(lambda: msm(points, scalars), CHECK_REPEATS)
    decode, ark, blst = sound_decode_seconds(commitments)
    per_point = 1e6 / len(points)
    say(
        f"k={k}: check {check * 1000:.1f} ms; MSM {msm_bound * 1000:.1f} ms "
        f"({msm_bound * per_point:.1f} us/point); sound decode {decode * 1000:.1f} ms "
        f"(arkworks {ark * per_point:.1f} us/point, blst+arkworks {blst * per_point:.1f}); "
        f"extension {extend:.2f} s, {k} MSMs {extend_bound:.2f} s"
    )
    both = msm_bound + decode
    met = check / both <= CHECK_TARGET if judged else None
    return [
        row(f"check k={k} vs MSM alone (ms)", check * 1000, msm_bound * 1000, "n/a, decode", None),
        row(
            f"check k={k} vs decode+MSM (ms)", check * 1000, both * 1000, f"<= {CHECK_TARGET}", met
        ),
        row(f"extend commitments k={k} (s)", extend, extend_bound, "-", None),
    ]


def main() -> int:
    args = parse_args(__doc__, "k = 8 and 64 only, targets not judged")
    kzg.settings()
    say = lambda message: log(message, as_json=args.json)  # noqa: E731
    rows = [
        r
        for k in ((8, 64) if args.quick else (64, 256, 512))
        for r in figures_for(k, not args.quick, say)
    ]
    emit(rows, as_json=args.json)
    return 0  # the rows say which targets were met (bench/run.py)


if __name__ == "__main__":
    sys.exit(main())
