"""Shared test helpers for the codec: seeded hypothesis settings and a naive Fr interpolation."""

from hypothesis import HealthCheck, settings

from erasure.constants import BLS_MODULUS

# Seeded and small: the machine is shared and every example may cost ckzg work.
CHEAP = settings(max_examples=40, deadline=None, derandomize=True)
COSTLY = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def naive_eval(points: list[int], values: list[int], x: int) -> int:
    """The value at `x` of the polynomial through (points, values), straight from Lagrange."""
    total = 0
    for i, (xi, yi) in enumerate(zip(points, values, strict=True)):
        num, den = 1, 1
        for j, xj in enumerate(points):
            if j != i:
                num = num * (x - xj) % BLS_MODULUS
                den = den * (xi - xj) % BLS_MODULUS
        total = (total + yi * num * pow(den, -1, BLS_MODULUS)) % BLS_MODULUS
    return total


def field_elements(cell: bytes) -> list[int]:
    """The 64 field elements of a cell as integers."""
    return [int.from_bytes(cell[i : i + 32], "big") for i in range(0, len(cell), 32)]
