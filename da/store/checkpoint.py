"""The light client's sampling checkpoint: per-height results and the last sampled height.

Both survive restarts (PROTOCOL.md §14). `put_result(..., checkpoint=True)` records a result and
moves the checkpoint in one atomic write, so a restart resumes after the last height whose result is
durable and never reports a height twice with different outcomes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from da.store import schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError


class SamplingStatus(IntEnum):
    """Outcome of sampling one height; numbers match `da.v1.Availability`."""

    SAMPLING = 1
    AVAILABLE = 2
    UNAVAILABLE = 3


@dataclass(frozen=True, slots=True)
class SamplingResult:
    """What the light client concluded about `height`: `samples` verified, giving `confidence`,
    for the header hashing to `header_hash` (empty while sampling, or in results written before
    verdicts named their header)."""

    height: int
    status: SamplingStatus
    confidence: float
    samples: int
    header_hash: bytes = b""


_RESULT = struct.Struct(">BdI")  # then the 32-byte header hash
HEADER_HASH_BYTES = 32


def add_result_to_batch(batch: WriteBatch, result: SamplingResult, *, checkpoint: bool) -> None:
    """Queue `result`; with `checkpoint`, also set the last sampled height to its height."""
    value = _RESULT.pack(result.status, result.confidence, result.samples) + result.header_hash
    batch.put(schema.light_result_key(result.height), value)
    if checkpoint:
        batch.put(schema.LIGHT_CHECKPOINT_KEY, schema.u64(result.height))


def put_result(
    store: KeyValueStore, result: SamplingResult, *, checkpoint: bool = False, sync: bool = True
) -> None:
    """Store `result` (replacing any earlier one for its height), optionally moving the
    checkpoint to it."""
    batch = WriteBatch()
    add_result_to_batch(batch, result, checkpoint=checkpoint)
    store.write(batch, sync=sync)


def get_result(store: KeyValueStore, height: int) -> SamplingResult | None:
    """The stored result for `height`, or None."""
    key = schema.light_result_key(height)
    raw = store.get(key)
    return None if raw is None else _decode(key, raw)


def last_sampled_height(store: KeyValueStore) -> int:
    """The checkpoint: the height sampling resumes after, 0 if none."""
    raw = store.get(schema.LIGHT_CHECKPOINT_KEY)
    return 0 if raw is None else schema.read_u64(raw)


def set_last_sampled_height(store: KeyValueStore, height: int, *, sync: bool = True) -> None:
    """Move the checkpoint to `height` without recording a result."""
    store.put(schema.LIGHT_CHECKPOINT_KEY, schema.u64(height), sync=sync)


def _decode(key: bytes, raw: bytes) -> SamplingResult:
    try:
        status, confidence, samples = _RESULT.unpack_from(raw)
        header_hash = bytes(raw[_RESULT.size :])
        if len(header_hash) not in (0, HEADER_HASH_BYTES):
            raise ValueError(f"{len(raw)} bytes is not a sampling result")
        return SamplingResult(
            schema.height_from_light_result_key(key),
            SamplingStatus(status),
            confidence,
            samples,
            header_hash,
        )
    except (struct.error, ValueError) as e:
        raise CorruptValueError(key, f"sampling result: {e}") from e
