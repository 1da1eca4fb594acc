"""An in-memory, sorted `KeyValueStore` for tests and for runs without a data directory."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

from da.store.base import Delete, WriteBatch, _check_bytes, prefix_upper_bound
from da.store.errors import StoreClosedError


class MemoryStore:
    """Same contract as `RocksStore`, nothing survives the process. `sync` is accepted and ignored.

    Thread-safe: every operation holds one lock, so a batch is applied atomically with respect to
    readers.
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted, mirrors self._data
        self._lock = threading.Lock()
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            self._check_open()
            return self._data.get(bytes(key))

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        batch = WriteBatch()
        batch.put(key, value)
        self.write(batch, sync=sync)

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        batch = WriteBatch()
        batch.delete(key)
        self.write(batch, sync=sync)

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        with self._lock:
            self._check_open()
            for op in batch.ops:
                if isinstance(op, Delete):
                    self._remove(op.key)
                else:
                    self._insert(op.key, op.value)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        prefix = _check_bytes(prefix)
        with self._lock:
            self._check_open()
            lo = bisect.bisect_left(self._keys, prefix)
            upper = prefix_upper_bound(prefix)
            hi = len(self._keys) if upper is None else bisect.bisect_left(self._keys, upper)
            if start is not None and not reverse:
                lo = max(lo, bisect.bisect_left(self._keys, start))
            elif start is not None:
                hi = min(hi, bisect.bisect_right(self._keys, start))
            keys = self._keys[lo:hi]
            snapshot = [(k, self._data[k]) for k in (reversed(keys) if reverse else keys)]
        return iter(snapshot)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _insert(self, key: bytes, value: bytes) -> None:
        if key not in self._data:
            bisect.insort(self._keys, key)
        self._data[key] = value

    def _remove(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("memory store is closed")
