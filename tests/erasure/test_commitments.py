import random

import pytest

from erasure import InvalidCommitment, kzg
from erasure.commitments import commitments_consistent, extend_commitments
from erasure.field import barycentric_weights, row_points
from erasure.square import ExtendedSquare


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
    for r in (0, 2 * sq.k - 1):
        tampered = list(sq.commitments)
        tampered[r] = sq.commitments[(r + 1) % (2 * sq.k)]
        if tampered[r] != sq.commitments[r]:
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
