import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.constants import BLS_MODULUS
from erasure.field import (
    BoundedCache,
    barycentric_weights,
    batch_inverse,
    bytes_from_ints,
    evaluate_on_rows,
    extension_matrix,
    first_noncanonical,
    ints_from_bytes,
    is_power_of_two,
    lagrange_matrix,
    matrix_times_rows,
    reverse_bits,
    root_of_unity,
    row_matrix,
    row_points,
)
from tests.erasure.helpers import CHEAP, naive_eval


def test_reverse_bits() -> None:
    assert [reverse_bits(r, 1) for r in range(2)] == [0, 1]
    assert [reverse_bits(r, 2) for r in range(4)] == [0, 2, 1, 3]
    assert [reverse_bits(r, 3) for r in range(8)] == [0, 4, 2, 6, 1, 5, 3, 7]


def test_is_power_of_two() -> None:
    assert [n for n in range(-2, 20) if is_power_of_two(n)] == [1, 2, 4, 8, 16]


def test_roots_of_unity_are_primitive() -> None:
    for order in (2, 4, 8, 128, 1024):
        w = root_of_unity(order)
        assert pow(w, order, BLS_MODULUS) == 1
        assert pow(w, order // 2, BLS_MODULUS) == BLS_MODULUS - 1


def test_row_points_match_design() -> None:
    for k in (1, 2, 4, 8):
        xs = row_points(k)
        w = root_of_unity(2 * k)
        bits = (2 * k).bit_length() - 1
        assert xs == tuple(pow(w, reverse_bits(r, bits), BLS_MODULUS) for r in range(2 * k))
        assert len(set(xs)) == 2 * k
        assert all(pow(x, k, BLS_MODULUS) == 1 for x in xs[:k])  # originals: k-th roots
    assert row_points(1) == (1, BLS_MODULUS - 1)


@CHEAP
@given(st.lists(st.integers(0, BLS_MODULUS - 1), min_size=1, max_size=6), st.randoms())
def test_lagrange_matrix_evaluates_the_interpolant(values: list[int], rnd: random.Random) -> None:
    n = len(values)
    points = rnd.sample(range(1, 10_000), n + 3)
    sources, targets = tuple(points[:n]), tuple(points[n:]) + (points[0],)
    matrix = lagrange_matrix(sources, targets)
    for t, row in zip(targets, matrix, strict=True):
        got = sum(a * v for a, v in zip(row, values, strict=True)) % BLS_MODULUS
        assert got == naive_eval(list(sources), values, t)


def test_barycentric_weights() -> None:
    points = [3, 5, 11]
    for i, w in enumerate(barycentric_weights(points)):
        prod = 1
        for j, x in enumerate(points):
            if j != i:
                prod = prod * (points[i] - x) % BLS_MODULUS
        assert w * prod % BLS_MODULUS == 1


@CHEAP
@given(st.lists(st.integers(0, BLS_MODULUS - 1), min_size=1, max_size=8))
def test_bytes_ints_round_trip(values: list[int]) -> None:
    assert ints_from_bytes(bytes_from_ints(values)) == values


def test_first_noncanonical() -> None:
    ok = bytes_from_ints([0, BLS_MODULUS - 1])
    assert first_noncanonical(ok) is None
    assert first_noncanonical(ok + BLS_MODULUS.to_bytes(32, "big")) == 2
    assert first_noncanonical(b"\xff" * 32) == 0


def test_matrix_times_rows_is_a_product_over_fr() -> None:
    rows = [bytes_from_ints([1, 2, BLS_MODULUS - 1]), bytes_from_ints([3, 4, 5])]
    out = matrix_times_rows([[1, 1], [2, BLS_MODULUS - 1]], rows)
    assert [ints_from_bytes(r) for r in out] == [[4, 6, 4], [BLS_MODULUS - 1, 0, BLS_MODULUS - 7]]


@CHEAP
@given(st.sampled_from([1, 2, 4, 8, 16]), st.randoms(use_true_random=False))
def test_row_matrix_is_the_lagrange_matrix_of_the_row_points(k: int, rnd: random.Random) -> None:
    xs = row_points(k)
    sources = rnd.sample(range(2 * k), rnd.randint(1, 2 * k))
    targets = rnd.sample(range(2 * k), rnd.randint(1, 2 * k))
    expected = lagrange_matrix([xs[s] for s in sources], [xs[t] for t in targets])
    assert row_matrix(k, sources, targets) == expected


def test_extension_matrix_is_the_lagrange_matrix_of_the_halves() -> None:
    for k in (1, 2, 8, 32):
        xs = row_points(k)
        assert extension_matrix(k) == lagrange_matrix(xs[:k], xs[k:])


def test_row_matrix_rejects_repeated_or_outside_rows() -> None:
    with pytest.raises(ValueError):
        row_matrix(2, (0, 0), (1,))
    with pytest.raises(ValueError):
        row_matrix(2, (0, 1), (4,))


@CHEAP
@given(st.lists(st.integers(1, BLS_MODULUS - 1), min_size=1, max_size=8))
def test_batch_inverse(values: list[int]) -> None:
    assert batch_inverse(values) == [pow(v, -1, BLS_MODULUS) for v in values]


@CHEAP
@given(st.sampled_from([1, 2, 4, 8]), st.lists(st.integers(0, BLS_MODULUS - 1), max_size=8))
def test_evaluate_on_rows_is_horner(k: int, coefficients: list[int]) -> None:
    def horner(x: int) -> int:
        value = 0
        for c in reversed(coefficients):
            value = (value * x + c) % BLS_MODULUS
        return value

    assert evaluate_on_rows(k, coefficients) == [horner(x) for x in row_points(k)]


def test_bounded_cache_keeps_within_its_bytes() -> None:
    cache: BoundedCache[int, bytes] = BoundedCache(10, len)
    computed: list[int] = []

    def value(n: int) -> bytes:
        computed.append(n)
        return bytes(4)

    for n in (1, 2, 1, 3, 4):  # 1 is used again before 3 and 4 push the oldest out
        assert cache.get(n, lambda n=n: value(n)) == bytes(4)  # type: ignore[misc]
    assert computed == [1, 2, 3, 4] and cache.bytes <= 10
    cache.get(2, lambda: value(2))  # 2 was the least recently used: dropped, computed again
    assert computed[-1] == 2
    assert cache.get(9, lambda: bytes(11)) == bytes(11) and cache.bytes <= 10  # too big to keep


@CHEAP
@given(st.integers(1, 12), st.integers(1, 6), st.randoms(use_true_random=False))
def test_matrix_times_rows_both_ways_match_the_naive_product(
    m: int, n: int, rnd: random.Random
) -> None:
    # m <= SLOT_TARGETS_MAX goes through big-integer slots, more through one flint product.
    top = BLS_MODULUS - 1
    matrix = [
        [rnd.choice([0, 1, top, rnd.randrange(BLS_MODULUS)]) for _ in range(n)] for _ in range(m)
    ]
    rows_ints = [
        [rnd.choice([0, top, rnd.randrange(BLS_MODULUS)]) for _ in range(5)] for _ in range(n)
    ]
    got = matrix_times_rows(matrix, [bytes_from_ints(r) for r in rows_ints])
    expected = [
        [sum(a * r[j] for a, r in zip(row, rows_ints, strict=True)) % BLS_MODULUS for j in range(5)]
        for row in matrix
    ]
    assert [ints_from_bytes(g) for g in got] == expected
