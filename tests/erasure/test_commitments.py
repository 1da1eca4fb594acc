import random

import pytest

from erasure import InvalidCommitment, kzg
from erasure.commitments import commitments_consistent, extend_commitments
from erasure.constants import BLS_MODULUS
from erasure.field import barycentric_weights, row_points
from erasure.g1 import decode_points, msm
from erasure.square import ExtendedSquare
from tests.erasure.helpers import naive_eval


def test_extended_commitments_equal_committing_extended_rows(square_k2: ExtendedSquare) -> None:
    sq = square_k2
    for r in range(2 * sq.k):
        assert kzg.commit(b"".join(sq.row_cells(r)[:64])) == sq.commitments[r]
    assert extend_commitments(sq.k, sq.commitments[: sq.k]) == sq.commitments


def test_dual_weights_formula() -> None:
    from erasure.commitments import dual_weights

    for k in (1, 2, 4, 8):
        assert list(dual_weights(k)) == barycentric_weights(row_points(k))


@pytest.mark.parametrize("fixture", ["square_k1", "square_k2", "square_k4"])
def test_consistent_and_tampered(fixture: str, request: pytest.FixtureRequest) -> None:
    sq: ExtendedSquare = request.getfixturevalue(fixture)
    rng = random.Random(7)
    assert commitments_consistent(sq.k, sq.commitments, rng)
    # A valid G1 point off the polynomial: the commitment of another row. (Swapping in a
    # neighbour's commitment proves nothing at k = 1, where both rows are the same.)
    stranger = kzg.commit(bytes(31) + b"\x01" + bytes(32 * 4095))
    for r in (0, 2 * sq.k - 1):
        tampered = list(sq.commitments)
        assert tampered[r] != stranger
        tampered[r] = stranger
        assert not commitments_consistent(sq.k, tampered, rng)


def test_swapped_extended_commitments_fail(square_k4: ExtendedSquare) -> None:
    c = list(square_k4.commitments)
    c[4], c[5] = c[5], c[4]
    assert not commitments_consistent(4, c, random.Random(1))


def test_invalid_bytes_are_false_wrong_count_raises(square_k1: ExtendedSquare) -> None:
    assert not commitments_consistent(1, [square_k1.commitments[0], b"\x01" * 48])
    assert not commitments_consistent(1, [square_k1.commitments[0], b"\xff" * 48])
    with pytest.raises(InvalidCommitment):
        commitments_consistent(1, square_k1.commitments[:1])
    with pytest.raises(InvalidCommitment):
        commitments_consistent(1, [b"\x00" * 47, b"\x00" * 48])
    with pytest.raises(ValueError):
        commitments_consistent(3, square_k1.commitments)


def test_extension_and_check_at_k16_against_naive_interpolation(square_k1: ExtendedSquare) -> None:
    # Rows that are multiples a_i of one row: commitments a_i * C, extended ones b_t * C with b_t
    # the degree < k interpolant of a at x_t, computed here straight from Lagrange's formula.
    k, rng = 16, random.Random(3)
    base = decode_points([square_k1.commitments[0]])
    a = [rng.randrange(BLS_MODULUS) for _ in range(k)]
    xs = list(row_points(k))
    b = a + [naive_eval(xs[:k], a, x) for x in xs[k:]]
    expected = tuple(msm(base, [s]) for s in b)
    assert extend_commitments(k, expected[:k]) == expected
    assert commitments_consistent(k, expected, random.Random(1))
    assert not commitments_consistent(k, expected[:-1] + (expected[0],), random.Random(1))
