"""Block data builders shared by the store tests."""

from __future__ import annotations

from da.signing import SIGNATURE_BYTES
from da.store import blocks
from da.store.base import KeyValueStore, WriteBatch
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF, CELLS_PER_EXT_ROW

SIGNATURE = b"\x07" * SIGNATURE_BYTES


def cell(height: int, row: int, col: int) -> bytes:
    return bytes([height % 256, row % 256, col]) * (BYTES_PER_CELL // 4) + bytes(
        BYTES_PER_CELL // 4
    )


def proof(height: int, row: int, col: int) -> bytes:
    return bytes([height % 256, row % 256, col]) * (BYTES_PER_PROOF // 3)


def make_rows(height: int, ext_rows: int) -> list[blocks.Row]:
    cols = range(CELLS_PER_EXT_ROW)
    return [
        ([cell(height, r, c) for c in cols], [proof(height, r, c) for c in cols])
        for r in range(ext_rows)
    ]


def put_whole_block(
    store: KeyValueStore, height: int, header_raw: bytes, signature: bytes, rows: list[blocks.Row]
) -> None:
    """Store a whole block in one synced batch, as the producer's seal leaves it."""
    batch = WriteBatch()
    blocks.add_block_to_batch(batch, height, header_raw, signature, rows)
    store.write(batch, sync=True)
