"""The only importer of py_arkworks_bls12381: G1 point decoding and multi-scalar multiplication."""

from collections.abc import Sequence

from py_arkworks_bls12381 import G1Point, Scalar

from erasure.constants import BYTES_PER_COMMITMENT
from erasure.errors import InvalidCommitment

IDENTITY = G1Point.identity().to_compressed_bytes()


def decode_points(encoded: Sequence[bytes]) -> list[G1Point]:
    """Canonical compressed G1 points (48 bytes, in the subgroup); raises InvalidCommitment."""
    points = []
    for i, raw in enumerate(encoded):
        if len(raw) != BYTES_PER_COMMITMENT:
            raise InvalidCommitment(f"point {i} is {len(raw)} bytes, not {BYTES_PER_COMMITMENT}")
        try:
            point = G1Point.from_compressed_bytes(bytes(raw))
        except ValueError as e:
            raise InvalidCommitment(f"point {i} is not a compressed G1 point") from e
        # arkworks accepts some non-canonical encodings (e.g. infinity with junk bits set);
        # ckzg does not, so only the canonical encoding of a point is a valid commitment.
        if point.to_compressed_bytes() != bytes(raw):
            raise InvalidCommitment(f"point {i} is not canonically encoded")
        points.append(point)
    return points


def msm(points: Sequence[G1Point], scalars: Sequence[int]) -> bytes:
    """`sum_i scalars[i] * points[i]`, compressed; scalars are integers reduced mod BLS_MODULUS."""
    if not points:
        return IDENTITY
    # Through bytes: Scalar(int) costs ~4 us, Scalar.from_le_bytes ~0.2 us with the to_bytes.
    prepared = [Scalar.from_le_bytes(s.to_bytes(32, "little")) for s in scalars]
    result = G1Point.multiexp_unchecked(list(points), prepared)
    return result.to_compressed_bytes()


def is_identity(encoded: bytes) -> bool:
    """True when a compressed point is the identity (point at infinity) of G1."""
    return encoded == IDENTITY
