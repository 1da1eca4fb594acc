"""The samples a light client verified, kept per height with its verdict (PROTOCOL.md §13).

`add_verdict_to_batch` queues, in one batch, the signed header, the verdict and every verified
cell with its proof, so a restart never finds samples without their verdict or the reverse.
`prune_light_below` deletes all of it (and the headers) below a height in one batch.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from da.cells import ProvenCell
from da.store import schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.checkpoint import SamplingResult, add_result_to_batch
from da.store.errors import CorruptValueError
from da.store.headers import add_signed_header_to_batch
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF

_COUNT = struct.Struct(">H")
_COORD = struct.Struct(">HB")
BYTES_PER_HELD_CELL = _COORD.size + BYTES_PER_CELL + BYTES_PER_PROOF
MAX_HELD_CELLS = 0xFFFF


@dataclass(frozen=True, slots=True)
class Verdict:
    """Everything a light client writes when it concludes a height."""

    result: SamplingResult
    header_raw: bytes
    signature: bytes
    cells: tuple[ProvenCell, ...]


def encode_held(cells: Sequence[ProvenCell]) -> bytes:
    if len(cells) > MAX_HELD_CELLS:
        raise ValueError(f"at most {MAX_HELD_CELLS} held cells per height, got {len(cells)}")
    parts = [_COUNT.pack(len(cells))]
    for cell in cells:
        if len(cell.data) != BYTES_PER_CELL or len(cell.proof) != BYTES_PER_PROOF:
            raise ValueError(f"cell ({cell.row}, {cell.col}) has a bad length")
        parts += [_COORD.pack(cell.row, cell.col), cell.data, cell.proof]
    return b"".join(parts)


def add_verdict_to_batch(batch: WriteBatch, verdict: Verdict, *, checkpoint: bool) -> None:
    """Queue the header, the verdict (optionally moving the checkpoint) and the samples."""
    height = verdict.result.height
    add_signed_header_to_batch(batch, height, verdict.header_raw, verdict.signature)
    add_result_to_batch(batch, verdict.result, checkpoint=checkpoint)
    batch.put(schema.held_samples_key(height), encode_held(verdict.cells))


def get_held(store: KeyValueStore, height: int) -> list[ProvenCell] | None:
    """The samples kept for `height`, or None if none were written (or they were pruned)."""
    key = schema.held_samples_key(height)
    raw = store.get(key)
    return None if raw is None else _decode(key, raw)


def held_sizes(store: KeyValueStore) -> Iterator[tuple[int, int]]:
    """(height, stored bytes) of every height with kept samples, ascending."""
    for key, raw in store.iterate(schema.HELD_SAMPLES):
        yield schema.height_from_held_samples_key(key), len(raw)


def prune_light_below(store: KeyValueStore, height: int, *, sync: bool = False) -> int:
    """Delete headers, verdicts and samples of every height below `height`, in one batch;
    returns how many keys were deleted."""
    batch = WriteBatch()
    for prefix in (schema.SIGNED_HEADER, schema.LIGHT_RESULT, schema.HELD_SAMPLES):
        for key, _ in store.iterate(prefix):
            if schema.read_u64(key, len(prefix)) >= height:
                break
            batch.delete(key)
    if len(batch):
        store.write(batch, sync=sync)
    return len(batch)


def _decode(key: bytes, raw: bytes) -> list[ProvenCell]:
    try:
        (count,) = _COUNT.unpack_from(raw)
        if len(raw) != _COUNT.size + count * BYTES_PER_HELD_CELL:
            raise ValueError(f"{len(raw)} bytes do not hold {count} cells")
        cells = []
        offset = _COUNT.size
        for _ in range(count):
            row, col = _COORD.unpack_from(raw, offset)
            data_at = offset + _COORD.size
            proof_at = data_at + BYTES_PER_CELL
            cells.append(
                ProvenCell(
                    row, col, raw[data_at:proof_at], raw[proof_at : proof_at + BYTES_PER_PROOF]
                )
            )
            offset += BYTES_PER_HELD_CELL
        return cells
    except (struct.error, ValueError) as e:
        raise CorruptValueError(key, f"held samples: {e}") from e
