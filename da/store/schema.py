"""Every key format of the store, in one place.

Keys are a one-byte table tag followed by fixed-width big-endian fields, so byte order is numeric
order and a table (or one height within it) is a contiguous prefix range.

tag  key                         value
---  --------------------------  -----------------------------------------------------------------
H    H height:u64                signature (96) || header bytes (exactly as signed)
B    B height:u64                extended row count 2k:u16; present iff the whole block is stored
R    R height:u64 row:u16        128 cells x 2048 || 128 proofs x 48 (one extended row)
P    P seq:u64                   namespace (29) || data   (producer mempool, arrival order)
S    S blob_hash (32)            state:u8 || height:u64 || start_cell:u32 || reason (UTF-8)
C    C height:u64                header_hash (32) || n:u16 || n x public key (48) || agg sig (96)
A    A height:u64 public_key(48) header_hash (32) || signature (96)
L    L height:u64                status:u8 || confidence:f64 || samples:u32 || header_hash (32)
                                 (light client; the hash is absent in results of older versions)
K    K height:u64                n:u16 || n x (row:u16 || col:u8 || cell 2048 || proof 48)  (light
                                 client: the samples it verified, kept with its verdict)
M    M name                      singletons: next blob sequence, light checkpoint (u64 each)

Why one value per extended row rather than per cell: GetRow, GetSamples and ingest all work row by
row, so one read serves a whole row and a 128x128 block is 256 values instead of 16384 keys.
The head height is not a separate key: it is the last `B` key, written in the same batch as the
block, so it can never disagree with what is stored.
"""

from __future__ import annotations

import struct

from da.header import MAX_U64
from da.signing import PUBLIC_KEY_BYTES
from erasure.constants import (
    BLOB_HASH_BYTES,
    BYTES_PER_CELL,
    BYTES_PER_PROOF,
    CELLS_PER_EXT_ROW,
)

BYTES_PER_STORED_ROW = CELLS_PER_EXT_ROW * (BYTES_PER_CELL + BYTES_PER_PROOF)

SIGNED_HEADER = b"H"
BLOCK = b"B"
ROW = b"R"
PENDING_BLOB = b"P"
BLOB_RECORD = b"S"
CERTIFICATE = b"C"
ATTESTATION = b"A"
LIGHT_RESULT = b"L"
HELD_SAMPLES = b"K"
META = b"M"

NEXT_BLOB_SEQ_KEY = META + b"next_blob_seq"
LIGHT_CHECKPOINT_KEY = META + b"light_last_sampled_height"

_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


def u64(value: int) -> bytes:
    """`value` as 8 bytes big-endian; raises ValueError outside 0..2**64-1."""
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"{value} does not fit in u64")
    return _U64.pack(value)


def read_u64(raw: bytes, offset: int = 0) -> int:
    """The big-endian u64 at `offset` of `raw`."""
    return int(_U64.unpack_from(raw, offset)[0])


def signed_header_key(height: int) -> bytes:
    return SIGNED_HEADER + u64(height)


def block_key(height: int) -> bytes:
    return BLOCK + u64(height)


def height_from_block_key(key: bytes) -> int:
    return read_u64(key, len(BLOCK))


def row_key(height: int, row: int) -> bytes:
    if not 0 <= row <= 0xFFFF:
        raise ValueError(f"row {row} does not fit in u16")
    return ROW + u64(height) + _U16.pack(row)


def rows_prefix(height: int) -> bytes:
    """Prefix of every stored row of one block."""
    return ROW + u64(height)


def pending_blob_key(seq: int) -> bytes:
    return PENDING_BLOB + u64(seq)


def seq_from_pending_key(key: bytes) -> int:
    return read_u64(key, len(PENDING_BLOB))


def blob_record_key(blob_hash: bytes) -> bytes:
    if len(blob_hash) != BLOB_HASH_BYTES:
        raise ValueError(f"blob hash must be {BLOB_HASH_BYTES} bytes, got {len(blob_hash)}")
    return BLOB_RECORD + bytes(blob_hash)


def certificate_key(height: int) -> bytes:
    return CERTIFICATE + u64(height)


def attestations_prefix(height: int) -> bytes:
    return ATTESTATION + u64(height)


def attestation_key(height: int, public_key: bytes) -> bytes:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return attestations_prefix(height) + bytes(public_key)


def light_result_key(height: int) -> bytes:
    return LIGHT_RESULT + u64(height)


def height_from_light_result_key(key: bytes) -> int:
    return read_u64(key, len(LIGHT_RESULT))


def held_samples_key(height: int) -> bytes:
    return HELD_SAMPLES + u64(height)


def height_from_held_samples_key(key: bytes) -> int:
    return read_u64(key, len(HELD_SAMPLES))
