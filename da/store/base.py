"""The key-value contract every store implements, and the batch type that makes writes atomic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Put:
    """Set `key` to `value`."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove `key` (a no-op if absent)."""

    key: bytes


@dataclass(slots=True)
class WriteBatch:
    """An ordered list of puts and deletes applied all-or-nothing by `KeyValueStore.write`.

    Later operations on the same key win. A batch may be filled by several accessors (a block, the
    blob records it includes) and written once, which is how cross-record invariants stay atomic.
    """

    ops: list[Put | Delete] = field(default_factory=list)

    def put(self, key: bytes, value: bytes) -> None:
        """Queue `key = value`."""
        self.ops.append(Put(_check_bytes(key), _check_bytes(value)))

    def delete(self, key: bytes) -> None:
        """Queue the removal of `key`."""
        self.ops.append(Delete(_check_bytes(key)))

    def __len__(self) -> int:
        return len(self.ops)


@runtime_checkable
class KeyValueStore(Protocol):
    """Bytes-to-bytes store with atomic batches and ordered prefix iteration.

    `sync=True` returns only once the write is durable (fsynced); use it for anything a peer or a
    client is told about. Every method raises `StoreClosedError` after `close()`.
    """

    def get(self, key: bytes) -> bytes | None:
        """The value at `key`, or None if absent."""
        ...

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        """Set one key."""
        ...

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        """Remove one key (a no-op if absent)."""
        ...

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        """Apply every op in `batch`, in order, atomically: after a crash all or none show."""
        ...

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in byte order (descending if
        `reverse`). `start`, if given, is a full key: forward yields keys >= start, reverse keys
        <= start. Iteration sees a consistent snapshot taken when it begins."""
        ...

    def close(self) -> None:
        """Flush and release the store; idempotent."""
        ...


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix`, or None if there is none
    (empty prefix or all 0xFF bytes)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _check_bytes(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"store keys and values are bytes, got {type(value).__name__}")
    return bytes(value)
