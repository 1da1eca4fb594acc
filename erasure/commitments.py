"""Row commitments: extending the k original ones (PROTOCOL.md §4.4) and checking consistency
(PROTOCOL.md §6).

Because commitments are linear in the row, the commitment of extended row `r` is
`sum_i L_i(x_r) * C_i`: one multi-scalar multiplication instead of committing 4096 elements.
The Fr side is per-k constants (the extension matrix, the dual weights) computed once and cached
(bounded: see `erasure.field`), and one flint multipoint evaluation per consistency check.
"""

import random
import secrets
from collections.abc import Sequence
from functools import lru_cache

from erasure.constants import BLS_MODULUS, BYTES_PER_COMMITMENT
from erasure.errors import InvalidCommitment
from erasure.field import (
    evaluate_on_rows,
    extension_matrix,
    inverse,
    row_points,
)
from erasure.g1 import decode_points, is_identity, msm
from erasure.layout import check_k


def extend_commitments(k: int, original: Sequence[bytes]) -> tuple[bytes, ...]:
    """The 2k row commitments from the k original ones; raises InvalidCommitment on bad points."""
    check_k(k)
    if len(original) != k:
        raise InvalidCommitment(f"expected {k} original commitments, got {len(original)}")
    points = decode_points(original)
    matrix = extension_matrix(k)
    return tuple(bytes(c) for c in original) + tuple(msm(points, row) for row in matrix)


@lru_cache(maxsize=12)  # one tuple of 2k ints per k = 1..512: under 1.5 MB in all
def dual_weights(k: int) -> tuple[int, ...]:
    """`v_r = 1 / prod_{s != r}(x_r - x_s)` over the 2k row points (equal to `x_r / 2k`)."""
    inv_n = inverse(2 * k)
    return tuple(x * inv_n % BLS_MODULUS for x in row_points(k))


def commitments_consistent(
    k: int, commitments: Sequence[bytes], rng: random.Random | None = None
) -> bool:
    """True when the 2k commitments lie on a polynomial of degree < k (random dual codeword).

    Returns False when a commitment does not decode to a G1 point (a bad header is an outcome).
    Raises InvalidCommitment when the count is not 2k or a commitment is not 48 bytes, ValueError
    for a bad `k`. `rng` defaults to the system's CSPRNG; pass a seeded one only in tests.
    """
    check_k(k)
    if len(commitments) != 2 * k:
        raise InvalidCommitment(f"expected {2 * k} commitments, got {len(commitments)}")
    if any(len(c) != BYTES_PER_COMMITMENT for c in commitments):
        raise InvalidCommitment(f"a commitment must be {BYTES_PER_COMMITMENT} bytes")
    try:
        points = decode_points(commitments)
    except InvalidCommitment:
        return False
    draw = rng or secrets.SystemRandom()
    f = [draw.randrange(BLS_MODULUS) for _ in range(k)]
    values = evaluate_on_rows(k, f)
    scalars = [v * y % BLS_MODULUS for v, y in zip(dual_weights(k), values, strict=True)]
    return is_identity(msm(points, scalars))
