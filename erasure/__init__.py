"""The 2D KZG erasure codec: pure maths, no I/O beyond the trusted-setup cache.

Owns the field and constants, the blob layout in the original data square, the vertical
(python-flint) and horizontal (ckzg) Reed-Solomon extensions, row commitments, and recovery.
Imports nothing of ours: `da` and `light_client` build on it, never the other way round.
Only `erasure.kzg` imports ckzg and only `erasure.g1` imports py_arkworks_bls12381; import the
public names below (or the modules listed in docs/MODULES.md), not those native libraries.

Why KZG over Fr rather than Merkle roots over GF(2^8): the code is linear over the same field the
commitments live in, so every verified cell proof also proves that the cell is a correct codeword
symbol. There are no bad-encoding fraud proofs and no waiting period: a verified sample is final.
"""

from erasure.errors import (
    ErasureError,
    InvalidBlob,
    InvalidCell,
    InvalidCommitment,
    InvalidFieldElement,
    InvalidNamespace,
    InvalidProof,
    SquareTooLarge,
    Unrecoverable,
)
from erasure.layout import BlobEntry
from erasure.recovery import recover_square
from erasure.square import ExtendedSquare, encode_square

__all__ = [
    "BlobEntry",
    "ErasureError",
    "ExtendedSquare",
    "InvalidBlob",
    "InvalidCell",
    "InvalidCommitment",
    "InvalidFieldElement",
    "InvalidNamespace",
    "InvalidProof",
    "SquareTooLarge",
    "Unrecoverable",
    "encode_square",
    "recover_square",
]
