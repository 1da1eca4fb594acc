"""The 2D KZG erasure codec: pure maths, no I/O beyond the trusted-setup cache.

Owns the field and constants, the blob layout in the original data square, the vertical
(python-flint) and horizontal (ckzg) Reed-Solomon extensions, row commitments, and recovery.
Imports nothing of ours: `da` and `light_client` build on it, never the other way round.
Only `erasure.kzg` imports ckzg and only `erasure.g1` imports py_arkworks_bls12381; import the
public names below (or the modules listed in docs/MODULES.md), not those native libraries.

Must not import: anything of ours (`da`, `light_client`), multiprocessing or dask (worker pools
live in `da.encoder_pool`; `erasure.parallel` maps its batches over any Executor it is given),
grpc, rocksdict or blspy. Checked by import-linter (pyproject.toml).

Why KZG over Fr rather than Merkle roots over GF(2^8): the code is linear over the same field the
commitments live in, so every verified cell proof also proves that the cell is a correct codeword
symbol. There are no bad-encoding fraud proofs and no waiting period: a verified sample is final.

Why two dimensions: a light client must learn from a few samples that the whole square can be
rebuilt. In 2D a withholder must hide at least (k+1) x 65 of the 2k x 128 cells (about a quarter)
to make it unrecoverable, so each uniform sample catches it with probability about 1/4 whatever
k is, and repair works one row or column at a time (64 cells or k cells), never the whole square.
Rows extend by ckzg (cells and proofs of EIP-7594), columns by a Lagrange matrix over the row
domain, and the row commitments extend by the same matrix (an MSM), so column parity needs no
commitments of its own.

Why 31 payload bytes per 32-byte field element (`0x00 || 31 bytes`): every element must be below
the BLS12-381 scalar modulus (~2^254.9); a leading zero byte makes any 31 bytes canonical, so no
blob is ever rejected or reinterpreted, at a cost of 1/32 of the space.
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
