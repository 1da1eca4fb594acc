"""Block data of the producer and the storage node: extended rows and block markers (the signed
headers they seal with live in `da.store.headers`, shared with the light client).

A block becomes visible (`has_block`, `head_height`, `block_row_count`, and so serving) only
through its block marker, written in one atomic batch with its signed header. The producer and
the storage node stream a block's rows in earlier batches (`BlockRows`) and then seal it
(`add_block_seal_to_batch`); `add_block_to_batch` queues everything at once. Rows without a marker
are invisible orphans until `delete_unsealed_rows` (one height) or `delete_orphan_rows` (every
height above the head) removes them; `get_row` and `get_cells` read rows only, so callers check
the marker first (as `da.serving` does).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from da.cells import Row
from da.header import MAX_U64
from da.store import headers, schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF, CELLS_PER_EXT_ROW, MAX_ROWS_LIMIT
from erasure.layout import is_square_size


class Coordinate(Protocol):
    """Anything naming a cell, such as `da.sampling.CellRef`."""

    @property
    def row(self) -> int: ...

    @property
    def col(self) -> int: ...


_PROOFS_OFFSET = CELLS_PER_EXT_ROW * BYTES_PER_CELL


def add_block_to_batch(
    batch: WriteBatch, height: int, header_raw: bytes, signature: bytes, rows: Sequence[Row]
) -> None:
    """Queue a whole block: signed header, all 2k extended rows, and the block marker.

    Raises ValueError unless there are 2k rows (k a power of two within limits), each of 128
    cells of 2048 bytes and 128 proofs of 48 bytes.
    """
    _check_ext_rows(len(rows))
    add_rows_to_batch(batch, height, 0, rows)
    add_block_seal_to_batch(batch, height, header_raw, signature, len(rows))


def add_rows_to_batch(batch: WriteBatch, height: int, first_row: int, rows: Iterable[Row]) -> int:
    """Queue extended rows `first_row, first_row + 1, ...` of the block at `height`; returns how
    many. They stay invisible until the block is sealed (`add_block_seal_to_batch`).

    Raises ValueError for a row outside 0..2 * MAX_ROWS_LIMIT - 1 or of the wrong size.
    """
    count = 0
    for index, (cells, proofs) in enumerate(rows, start=first_row):
        if not 0 <= index < 2 * MAX_ROWS_LIMIT:
            raise ValueError(f"extended row {index} is outside 0..{2 * MAX_ROWS_LIMIT - 1}")
        batch.put(schema.row_key(height, index), encode_row(cells, proofs))
        count += 1
    return count


class BlockRows:
    """The rows of the not yet sealed block at `height`, written as they come: each `write` is
    one unsynced batch (the seal's synced write makes them durable: RocksDB's write-ahead log
    syncs in write order) and stays invisible until the block is sealed. Remembers which rows
    were written, so the seal can be refused for an incomplete block (`check_complete`)."""

    def __init__(self, store: KeyValueStore, height: int) -> None:
        self.store = store
        self.height = height
        self.written: set[int] = set()

    def write(self, rows: Iterable[tuple[int, Row]]) -> None:
        """Store `(index, row)` pairs (see `add_rows_to_batch` for what is refused)."""
        batch = WriteBatch()
        indexes = []
        for index, row in rows:
            add_rows_to_batch(batch, self.height, index, [row])
            indexes.append(index)
        self.store.write(batch)
        self.written.update(indexes)

    def check_complete(self, ext_rows: int) -> None:
        """Raise RuntimeError unless exactly rows 0..ext_rows-1 were written."""
        if self.written != set(range(ext_rows)):
            raise RuntimeError(
                f"block {self.height}: {len(self.written)} of the {ext_rows} rows written"
                f" (rows 0..{ext_rows - 1} expected)"
            )


def add_block_seal_to_batch(
    batch: WriteBatch, height: int, header_raw: bytes, signature: bytes, ext_rows: int
) -> None:
    """Queue what makes the block at `height` visible: its signed header and its marker.

    Write it only once all `ext_rows` rows are stored (by earlier batches or this one): from then
    on `has_block` and `head_height` cover the block. Raises ValueError for a bad `ext_rows`.
    """
    _check_ext_rows(ext_rows)
    headers.add_signed_header_to_batch(batch, height, header_raw, signature)
    batch.put(schema.block_key(height), ext_rows.to_bytes(2, "big"))


def _check_ext_rows(ext_rows: int) -> None:
    if ext_rows % 2 or not is_square_size(ext_rows // 2):
        raise ValueError(f"a block has 2k extended rows with k a power of two, got {ext_rows}")


def encode_row(cells: Sequence[bytes], proofs: Sequence[bytes]) -> bytes:
    """One extended row as stored: 128 cells then 128 proofs, concatenated."""
    if len(cells) != CELLS_PER_EXT_ROW or len(proofs) != CELLS_PER_EXT_ROW:
        raise ValueError(f"a row has {CELLS_PER_EXT_ROW} cells and {CELLS_PER_EXT_ROW} proofs")
    if any(len(c) != BYTES_PER_CELL for c in cells):
        raise ValueError(f"every cell must be {BYTES_PER_CELL} bytes")
    if any(len(p) != BYTES_PER_PROOF for p in proofs):
        raise ValueError(f"every proof must be {BYTES_PER_PROOF} bytes")
    return b"".join(cells) + b"".join(proofs)


def get_row(store: KeyValueStore, height: int, row: int) -> tuple[list[bytes], list[bytes]] | None:
    """(128 cells, 128 proofs) of one extended row, or None if the row is not stored (it reads
    the row alone: whether the block is sealed is `has_block`'s answer)."""
    raw = _read_row(store, height, row)
    if raw is None:
        return None
    cols = range(CELLS_PER_EXT_ROW)
    return [_cell_at(raw, c) for c in cols], [_proof_at(raw, c) for c in cols]


def get_cells(
    store: KeyValueStore, height: int, coords: Iterable[Coordinate]
) -> list[tuple[bytes, bytes]] | None:
    """(cell, proof) for each coordinate (`.row`, `.col`), in the order asked, reading each row
    once. Returns None if any requested row is not stored (unknown height, or row >= 2k); raises
    ValueError for a column outside 0..127. Coordinates are not deduplicated.
    """
    wanted = [(c.row, c.col) for c in coords]
    if any(not 0 <= col < CELLS_PER_EXT_ROW for _, col in wanted):
        raise ValueError(f"columns are 0..{CELLS_PER_EXT_ROW - 1}")
    rows: dict[int, memoryview] = {}
    for row in {r for r, _ in wanted}:
        raw = _read_row(store, height, row) if row >= 0 else None
        if raw is None:
            return None
        rows[row] = raw
    return [(_cell_at(rows[r], c), _proof_at(rows[r], c)) for r, c in wanted]


def has_block(store: KeyValueStore, height: int) -> bool:
    """True iff the whole block at `height` is stored."""
    return store.get(schema.block_key(height)) is not None


def block_row_count(store: KeyValueStore, height: int) -> int | None:
    """2k for a stored block, None if the block is not stored."""
    raw = store.get(schema.block_key(height))
    return None if raw is None else int.from_bytes(raw, "big")


def head_height(store: KeyValueStore) -> int:
    """Highest height with a whole block stored, 0 if none."""
    for key, _ in store.iterate(schema.BLOCK, reverse=True):
        return schema.height_from_block_key(key)
    return 0


def lowest_height(store: KeyValueStore) -> int:
    """Lowest height with a whole block stored, 0 if none."""
    for key, _ in store.iterate(schema.BLOCK):
        return schema.height_from_block_key(key)
    return 0


def stored_heights(store: KeyValueStore, *, start: int = 0) -> Iterator[int]:
    """Heights of whole stored blocks, ascending, from `start` on."""
    for key, _ in store.iterate(schema.BLOCK, start=schema.block_key(start)):
        yield schema.height_from_block_key(key)


def add_block_deletion_to_batch(
    batch: WriteBatch, height: int, ext_rows: int, *, keep_header: bool = False
) -> None:
    """Queue the removal of a stored block of `ext_rows` extended rows (see `block_row_count`)."""
    batch.delete(schema.block_key(height))
    for row in range(ext_rows):
        batch.delete(schema.row_key(height, row))
    if not keep_header:
        batch.delete(schema.signed_header_key(height))


def prune_below(
    store: KeyValueStore, height: int, *, keep_headers: bool = False, sync: bool = False
) -> int:
    """Delete every whole block below `height`, one atomic batch per block; returns how many.

    With `keep_headers` the signed headers stay (cheap, and they let peers verify the chain).
    """
    doomed = list(itertools.takewhile(lambda h: h < height, stored_heights(store)))
    for h in doomed:
        batch = WriteBatch()
        add_block_deletion_to_batch(
            batch, h, block_row_count(store, h) or 0, keep_header=keep_headers
        )
        store.write(batch, sync=sync)
    return len(doomed)


def prune_outside_retention(store: KeyValueStore, retention_blocks: int) -> int:
    """Delete whole blocks older than the newest `retention_blocks` (0 keeps everything);
    returns how many (producer replicas and storage nodes alike, PROTOCOL.md §11)."""
    head = head_height(store)
    if retention_blocks <= 0 or head <= retention_blocks:
        return 0
    return prune_below(store, head - retention_blocks + 1)


def delete_orphan_rows(store: KeyValueStore, *, sync: bool = False) -> list[int]:
    """Delete the rows of every height above `head_height`: rows streamed for a block that was
    never sealed (a crash or a failure mid-block). Returns those heights, ascending.

    Call only while no block is being written: that block's own rows would go too. Not synced by
    default: if the deletion is lost in a crash, the next call repeats it.
    """
    cleaned: list[int] = []
    height = _next_row_height(store, head_height(store) + 1)
    while height is not None:
        delete_unsealed_rows(store, height, sync=sync)
        cleaned.append(height)
        height = _next_row_height(store, height + 1) if height < MAX_U64 else None
    return cleaned


def delete_unsealed_rows(store: KeyValueStore, height: int, *, sync: bool = False) -> int:
    """Delete the rows stored at `height` unless its block is sealed (then nothing is deleted);
    returns how many row slots were cleared. For a block whose writing failed half-way."""
    if has_block(store, height):
        return 0
    last = _last_row_index(store, height)
    batch = WriteBatch()
    for row in range(last + 1):  # rows may arrive out of order
        batch.delete(schema.row_key(height, row))
    store.write(batch, sync=sync)
    return last + 1


def _next_row_height(store: KeyValueStore, start: int) -> int | None:
    """The lowest height >= `start` with any row stored, or None."""
    for key, _ in store.iterate(schema.ROW, start=schema.rows_prefix(start)):
        return schema.read_u64(key, len(schema.ROW))
    return None


def _last_row_index(store: KeyValueStore, height: int) -> int:
    """The highest row index stored at `height` (-1 if none)."""
    prefix = schema.rows_prefix(height)
    for key, _ in store.iterate(prefix, reverse=True):
        return int.from_bytes(key[len(prefix) :], "big")
    return -1


def _read_row(store: KeyValueStore, height: int, row: int) -> memoryview | None:
    key = schema.row_key(height, row)
    raw = store.get(key)
    if raw is None:
        return None
    if len(raw) != schema.BYTES_PER_STORED_ROW:
        raise CorruptValueError(key, f"row is {len(raw)} bytes")
    return memoryview(raw)


def _cell_at(raw: memoryview | bytes, col: int) -> bytes:
    return bytes(raw[col * BYTES_PER_CELL : (col + 1) * BYTES_PER_CELL])


def _proof_at(raw: memoryview | bytes, col: int) -> bytes:
    start = _PROOFS_OFFSET + col * BYTES_PER_PROOF
    return bytes(raw[start : start + BYTES_PER_PROOF])
