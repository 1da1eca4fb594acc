"""Arithmetic over Fr: the row evaluation domain, Lagrange matrices, and flint matrix products.

Row `r` of a square with `k` original rows sits at `x_r = w^brp(r)`, `w` a primitive `2k`-th
root of unity (DESIGN 4.2). Bytes of field elements are 32-byte big-endian.
"""

from collections.abc import Sequence
from functools import lru_cache

import flint

from erasure.constants import BLS_MODULUS, BYTES_PER_FIELD_ELEMENT, PRIMITIVE_ROOT_OF_UNITY

_CTX = flint.fmpz_mod_ctx(BLS_MODULUS)
_FE = BYTES_PER_FIELD_ELEMENT
_MODULUS_TOP_BYTE = BLS_MODULUS >> (8 * (BYTES_PER_FIELD_ELEMENT - 1))


def is_power_of_two(n: int) -> bool:
    """True when `n` is a positive power of two."""
    return n > 0 and n & (n - 1) == 0


def reverse_bits(n: int, bits: int) -> int:
    """`n` with its lowest `bits` bits in reverse order."""
    return int(format(n, f"0{bits}b")[::-1], 2) if bits else 0


def root_of_unity(order: int) -> int:
    """A primitive `order`-th root of unity of Fr; `order` is a power of two."""
    return pow(PRIMITIVE_ROOT_OF_UNITY, (BLS_MODULUS - 1) // order, BLS_MODULUS)


@lru_cache(maxsize=16)
def row_points(k: int) -> tuple[int, ...]:
    """The evaluation points `x_0..x_{2k-1}` of the rows of a square with `k` original rows."""
    n = 2 * k
    bits = n.bit_length() - 1
    w = root_of_unity(n)
    return tuple(pow(w, reverse_bits(r, bits), BLS_MODULUS) for r in range(n))


def inverse(x: int) -> int:
    """The inverse of a non-zero `x` in Fr."""
    return pow(x, -1, BLS_MODULUS)


def barycentric_weights(points: Sequence[int]) -> list[int]:
    """`1 / prod_{j != i}(x_i - x_j)` for every point (points distinct)."""
    weights = []
    for i, xi in enumerate(points):
        prod = 1
        for j, xj in enumerate(points):
            if j != i:
                prod = prod * (xi - xj) % BLS_MODULUS
        weights.append(inverse(prod))
    return weights


@lru_cache(maxsize=256)
def lagrange_matrix(
    sources: tuple[int, ...], targets: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    """Row `t`, column `i`: `L_i(targets[t])`, `L_i` the Lagrange basis over `sources`.

    Multiplying it by the values of a degree `< len(sources)` polynomial at `sources` gives its
    values at `targets`.
    """
    weights = barycentric_weights(sources)
    rows = []
    for x in targets:
        if x in sources:
            rows.append(tuple(int(s == x) for s in sources))
            continue
        diffs = [(x - s) % BLS_MODULUS for s in sources]
        vanishing = 1
        for d in diffs:
            vanishing = vanishing * d % BLS_MODULUS
        rows.append(
            tuple(
                vanishing * w * inverse(d) % BLS_MODULUS
                for w, d in zip(weights, diffs, strict=True)
            )
        )
    return tuple(rows)


def ints_from_bytes(data: bytes) -> list[int]:
    """The field elements of `data` (a multiple of 32 bytes), without a range check."""
    return [int.from_bytes(data[i : i + _FE], "big") for i in range(0, len(data), _FE)]


def bytes_from_ints(values: Sequence[int]) -> bytes:
    """The 32-byte big-endian serialisation of field elements already reduced mod BLS_MODULUS."""
    return b"".join([v.to_bytes(_FE, "big") for v in values])


def first_noncanonical(data: bytes) -> int | None:
    """Index of the first 32-byte element of `data` not below BLS_MODULUS, or None."""
    if not data or max(data[0::_FE]) < _MODULUS_TOP_BYTE:
        return None  # fast path: every top byte is below the modulus's
    for i in range(0, len(data), _FE):
        # The top byte decides for all but a sliver of values; compare fully only then.
        if data[i] >= _MODULUS_TOP_BYTE and int.from_bytes(data[i : i + _FE], "big") >= BLS_MODULUS:
            return i // _FE
    return None


def matrix_times_rows(matrix: Sequence[Sequence[int]], rows: Sequence[bytes]) -> list[bytes]:
    """`matrix @ rows` over Fr, each of `rows` a byte string of field elements of one length.

    One python-flint product: `(m x n) @ (n x width)`; returns `m` byte strings.
    """
    n = len(rows)
    width = len(rows[0]) // _FE
    flat_matrix = [v for row in matrix for v in row]
    left = flint.fmpz_mod_mat(len(matrix), n, flat_matrix, _CTX)
    right = flint.fmpz_mod_mat(n, width, ints_from_bytes(b"".join(rows)), _CTX)
    values = [int(v) for v in (left * right).entries()]
    return [bytes_from_ints(values[i : i + width]) for i in range(0, len(values), width)]
