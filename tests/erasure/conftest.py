"""Session-scoped squares shared by the codec tests (encoding is the expensive part)."""

import random

import pytest

from erasure import encode_square
from erasure.square import ExtendedSquare


def sample_blobs(seed: int, sizes: list[int]) -> list[tuple[bytes, bytes]]:
    """Blobs of the given sizes with seeded random namespaces and data."""
    rng = random.Random(seed)
    return [(rng.randbytes(rng.randint(1, 29)) or b"\x01", rng.randbytes(n)) for n in sizes]


@pytest.fixture(scope="session")
def blobs_k2() -> list[tuple[bytes, bytes]]:
    """Blobs that need a k = 2 square (more than 64 cells, at most 128)."""
    return sample_blobs(2, [50_000, 1, 1984, 1985, 60_000, 3_000]) + [(b"\x07", b"same ns")] * 2


@pytest.fixture(scope="session")
def square_k2(blobs_k2: list[tuple[bytes, bytes]]) -> ExtendedSquare:
    """The encoded k = 2 square of `blobs_k2`."""
    return encode_square(blobs_k2)


@pytest.fixture(scope="session")
def square_k1() -> ExtendedSquare:
    """A k = 1 square with a few small blobs."""
    return encode_square(sample_blobs(1, [100, 5_000, 31]))


@pytest.fixture(scope="session")
def square_k4() -> ExtendedSquare:
    """A k = 4 square (just over two rows of data)."""
    return encode_square(sample_blobs(4, [64 * 1984 * 2 + 10]))


@pytest.fixture(scope="session")
def square_k8() -> ExtendedSquare:
    """A k = 8 square (just over four rows of data)."""
    return encode_square(sample_blobs(8, [64 * 1984 * 4 + 10]))
