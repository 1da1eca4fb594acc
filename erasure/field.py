"""Arithmetic over Fr: the row evaluation domain, Lagrange matrices, and flint matrix products.

Row `r` of a square with `k` original rows sits at `x_r = w^brp(r)`, `w` a primitive `2k`-th
root of unity (PROTOCOL.md §4.1). Bytes of field elements are 32-byte big-endian.

Interpolation between rows uses the closed forms of that domain D (`N = 2k` points, the N-th
roots of unity): `prod_{j != i}(x_i - x_j) = N / x_i`, and `1 / (x_t - x_i)` is `1 / x_i` times
`1 / (w^(e_t - e_i) - 1)`, one of only N - 1 values (`e_r = brp(r)`). So a Lagrange matrix
between rows costs a few multiplications per entry and no inversion beyond one batch per k.
"""

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from threading import Lock
from typing import Generic, TypeVar

import flint

from erasure.constants import BLS_MODULUS, BYTES_PER_FIELD_ELEMENT, PRIMITIVE_ROOT_OF_UNITY

_CTX = flint.fmpz_mod_ctx(BLS_MODULUS)
_POLY = flint.fmpz_mod_poly_ctx(_CTX)
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


K = TypeVar("K")
V = TypeVar("V")

# A Python int below the modulus takes 60 bytes, plus 8 for its slot in a tuple.
BYTES_PER_CACHED_INT = 68
MATRIX_CACHE_BYTES = 48 << 20  # the k = 512 extension matrix alone is ~18 MB


class BoundedCache(Generic[K, V]):
    """A least-recently-used cache holding at most `max_bytes` (as `size_of` estimates them);
    a value larger than the bound is computed but not kept. Thread-safe."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()

    @property
    def bytes(self) -> int:
        """The estimated size of what is held now."""
        return self._bytes

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value for `key`, computed by `compute` (outside the lock) when not held."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()
        size = self._size_of(value)
        with self._lock:
            if size <= self.max_bytes and key not in self._items:
                self._items[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._bytes -= dropped
        return value


def _matrix_bytes(matrix: tuple[tuple[int, ...], ...]) -> int:
    return sum(len(row) + 1 for row in matrix) * BYTES_PER_CACHED_INT


_matrices: BoundedCache[tuple[int, tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], ...]]
_matrices = BoundedCache(MATRIX_CACHE_BYTES, _matrix_bytes)


def _check_domain_size(n: int) -> None:
    if not is_power_of_two(n):
        raise ValueError(f"a domain size must be a power of two, got {n}")


@lru_cache(maxsize=12)  # k = 1..512 (10 sizes) of 2k ints: under 1.5 MB in all
def row_exponents(k: int) -> tuple[int, ...]:
    """`e_r = brp(r)` for every row: `x_r = w^(e_r)`."""
    _check_domain_size(k)
    bits = (2 * k).bit_length() - 1
    return tuple(reverse_bits(r, bits) for r in range(2 * k))


@lru_cache(maxsize=12)
def domain_powers(k: int) -> tuple[int, ...]:
    """`w^e` for `e` in 0..2k-1, `w` the primitive 2k-th root of unity of the rows."""
    _check_domain_size(k)
    w, powers, x = root_of_unity(2 * k), [], 1
    for _ in range(2 * k):
        powers.append(x)
        x = x * w % BLS_MODULUS
    return tuple(powers)


@lru_cache(maxsize=12)
def row_points(k: int) -> tuple[int, ...]:
    """The evaluation points `x_0..x_{2k-1}` of the rows of a square with `k` original rows."""
    powers = domain_powers(k)
    return tuple(powers[e] for e in row_exponents(k))


@lru_cache(maxsize=12)
def _inverse_steps(k: int) -> tuple[int, ...]:
    """`1 / (w^e - 1)` for `e` in 1..2k-1 (index 0 unused, 0): one batch inversion."""
    return (0, *batch_inverse([(p - 1) % BLS_MODULUS for p in domain_powers(k)[1:]]))


def inverse(x: int) -> int:
    """The inverse of a non-zero `x` in Fr."""
    return pow(x, -1, BLS_MODULUS)


def batch_inverse(values: Sequence[int]) -> list[int]:
    """The inverses of non-zero `values` with one field inversion (Montgomery's trick)."""
    prefix, acc = [], 1
    for v in values:
        prefix.append(acc)
        acc = acc * v % BLS_MODULUS
    acc = inverse(acc)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = acc * prefix[i] % BLS_MODULUS
        acc = acc * values[i] % BLS_MODULUS
    return out


def barycentric_weights(points: Sequence[int]) -> list[int]:
    """`1 / prod_{j != i}(x_i - x_j)` for every point (points distinct)."""
    products = []
    for i, xi in enumerate(points):
        prod = 1
        for j, xj in enumerate(points):
            if j != i:
                prod = prod * (xi - xj) % BLS_MODULUS
        products.append(prod)
    return batch_inverse(products)


def lagrange_matrix(sources: Sequence[int], targets: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Row `t`, column `i`: `L_i(targets[t])`, `L_i` the Lagrange basis over `sources`.

    Multiplying it by the values of a degree `< len(sources)` polynomial at `sources` gives its
    values at `targets`. Any distinct points; between rows of a square use `row_matrix`.
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
                vanishing * w * d_inv % BLS_MODULUS
                for w, d_inv in zip(weights, batch_inverse(diffs), strict=True)
            )
        )
    return tuple(rows)


def row_matrix(
    k: int, sources: Iterable[int], targets: Iterable[int]
) -> tuple[tuple[int, ...], ...]:
    """`lagrange_matrix` between rows of a square: from the points of rows `sources` to those
    of rows `targets` (row numbers in 0..2k-1), by the domain's closed forms; cached in bytes."""
    key = (k, tuple(sources), tuple(targets))
    return _matrices.get(key, lambda: _row_matrix(*key))


def extension_matrix(k: int) -> tuple[tuple[int, ...], ...]:
    """The matrix extending the k original rows to rows k..2k-1 (a per-k constant)."""
    return row_matrix(k, range(k), range(k, 2 * k))


def _row_matrix(
    k: int, sources: tuple[int, ...], targets: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    n = 2 * k
    if len(set(sources)) != len(sources) or not all(0 <= r < n for r in (*sources, *targets)):
        raise ValueError(f"sources must be distinct rows and all rows in 0..{n - 1}")
    e, powers, steps = row_exponents(k), domain_powers(k), _inverse_steps(k)
    source_set = set(sources)
    others = [r for r in range(n) if r not in source_set]  # M = D \ S
    inv_n = inverse(n)

    def prod_to_others(r: int) -> int:  # prod_{m in M, m != r} (x_r - x_m)
        prod, x = 1, powers[e[r]]
        for m in others:
            if m != r:
                prod = prod * (x - powers[e[m]]) % BLS_MODULUS
        return prod

    # u_i = w_i / x_i = prod_{m in M}(x_i - x_m) / N, with w_i the barycentric weight over S.
    u = [prod_to_others(i) * inv_n % BLS_MODULUS for i in sources]
    rows = []
    for t in targets:
        if t in source_set:
            rows.append(tuple(int(s == t) for s in sources))
            continue
        # Z_S(x_t) = prod_{s in S}(x_t - x_s) = (N / x_t) / prod_{m in M, m != t}(x_t - x_m)
        z = n * powers[-e[t] % n] * inverse(prod_to_others(t)) % BLS_MODULUS
        rows.append(
            tuple(
                z * ui % BLS_MODULUS * steps[(e[t] - e[i]) % n] % BLS_MODULUS
                for i, ui in zip(sources, u, strict=True)
            )
        )
    return tuple(rows)


def evaluate_on_rows(k: int, coefficients: Sequence[int]) -> list[int]:
    """The polynomial with `coefficients` (lowest first, reduced) at every row point x_0..x_{2k-1}
    (one flint multipoint evaluation)."""
    values = _POLY(list(coefficients)).multipoint_evaluate(list(row_points(k)))
    return [int(v) for v in values]


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


# Few target rows (a repair): a row of field elements becomes one big integer with each element in
# its own 72-byte slot, so `sum_i c_i * row_i` is k big-integer products (GMP, through flint) and
# no slot carries into the next: a slot holds a sum of at most MAX_ROWS_LIMIT products of two
# numbers below 2^255, under 2^519 < 2^576. Many target rows (encoding): one flint matrix product.
_SLOT_BYTES = 72
SLOT_TARGETS_MAX = 8  # measured at k = 64: slots ~25 ms per target row, flint ~500 ms for one


def matrix_times_rows(matrix: Sequence[Sequence[int]], rows: Sequence[bytes]) -> list[bytes]:
    """`matrix @ rows` over Fr, each of `rows` a byte string of field elements of one length.

    `(m x n) @ (n x width)`, entries of `matrix` reduced; returns `m` byte strings.
    """
    if len(matrix) <= SLOT_TARGETS_MAX:
        return _combine_in_slots(matrix, rows)
    n = len(rows)
    width = len(rows[0]) // _FE
    flat_matrix = [v for row in matrix for v in row]
    left = flint.fmpz_mod_mat(len(matrix), n, flat_matrix, _CTX)
    right = flint.fmpz_mod_mat(n, width, ints_from_bytes(b"".join(rows)), _CTX)
    values = [int(v) for v in (left * right).entries()]
    return [bytes_from_ints(values[i : i + width]) for i in range(0, len(values), width)]


def _in_slots(row: bytes) -> flint.fmpz:
    """The elements of `row`, each at the end of its own slot, as one big integer."""
    spread = bytearray(_SLOT_BYTES * (len(row) // _FE))
    for b in range(_FE):  # one strided copy per byte position instead of one per element
        spread[_SLOT_BYTES - _FE + b :: _SLOT_BYTES] = row[b::_FE]
    return flint.fmpz(int.from_bytes(spread, "big"))


def _combine_in_slots(matrix: Sequence[Sequence[int]], rows: Sequence[bytes]) -> list[bytes]:
    size = _SLOT_BYTES * (len(rows[0]) // _FE)
    spread = [_in_slots(row) for row in rows]
    out = []
    for coefficients in matrix:
        total = flint.fmpz(0)
        for c, value in zip(coefficients, spread, strict=True):
            if c:
                total += c * value
        raw = int(total).to_bytes(size, "big")
        out.append(
            b"".join(
                [
                    (int.from_bytes(raw[i : i + _SLOT_BYTES], "big") % BLS_MODULUS).to_bytes(
                        _FE, "big"
                    )
                    for i in range(0, size, _SLOT_BYTES)
                ]
            )
        )
    return out
