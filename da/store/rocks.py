"""The RocksDB `KeyValueStore`: the only module that imports `rocksdict`.

The database is opened in raw mode (bytes keys and values, no pickling, readable by any RocksDB
tool). `rocksdict` raises bare `Exception`s; they are translated into `StoreError`s here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rocksdict

from da.store.base import Delete, KeyValueStore, WriteBatch, _check_bytes, prefix_upper_bound
from da.store.errors import StoreClosedError, StoreError, StoreLockedError
from da.store.memory import MemoryStore


class RocksStore:
    """A RocksDB database at `path` (created if missing). Safe to share between threads.

    Raises `StoreLockedError` if another process or handle holds the directory.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._sync_opts = rocksdict.WriteOptions()
        self._sync_opts.sync = True
        self._async_opts = rocksdict.WriteOptions()
        self._close_lock = threading.Lock()
        self._closed = False
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = _open(self.path)

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        key = _check_bytes(key)
        with _translated():
            value = self._db.get(key)
        return None if value is None else bytes(value)

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        self._check_open()
        key, value = _check_bytes(key), _check_bytes(value)
        with _translated():
            self._db.put(key, value, self._opts(sync))

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        self._check_open()
        key = _check_bytes(key)
        with _translated():
            self._db.delete(key, self._opts(sync))

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        self._check_open()
        native = rocksdict.WriteBatch(raw_mode=True)
        for op in batch.ops:
            if isinstance(op, Delete):
                native.delete(op.key)
            else:
                native.put(op.key, op.value)
        with _translated():
            self._db.write(native, self._opts(sync))

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        prefix = _check_bytes(prefix)
        with _translated():
            it = self._db.iter()  # the iterator pins a snapshot of the database
        return _walk(it, prefix, start, reverse)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            with _translated():
                self._db.flush_wal(True)
                self._db.close()

    def _opts(self, sync: bool) -> rocksdict.WriteOptions:
        return self._sync_opts if sync else self._async_opts

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store at {self.path} is closed")


def open_store(path: Path | None) -> KeyValueStore:
    """A RocksDB store at `path`, or a fresh `MemoryStore` when `path` is None."""
    if path is None:
        return MemoryStore()
    return RocksStore(path)


def _open(path: Path) -> rocksdict.Rdict:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    try:
        return rocksdict.Rdict(str(path), options)
    except Exception as e:  # rocksdict raises bare Exception for every RocksDB status
        if "lock" in str(e).lower():
            raise StoreLockedError(str(path), str(e)) from e
        raise StoreError(f"cannot open store at {path}: {e}") from e


def _walk(
    it: rocksdict.RdictIter, prefix: bytes, start: bytes | None, reverse: bool
) -> Iterator[tuple[bytes, bytes]]:
    """Yield the prefix range from a positioned native iterator, then release it."""
    try:
        _position(it, prefix, start, reverse)
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(prefix):
                return
            yield key, bytes(it.value())
            if reverse:
                it.prev()
            else:
                it.next()
    finally:
        del it  # drop the native iterator promptly so close() can release the database


def _position(it: rocksdict.RdictIter, prefix: bytes, start: bytes | None, reverse: bool) -> None:
    """Place `it` on the first key to yield; a key outside the prefix means an empty range."""
    if not reverse:
        it.seek(prefix if start is None or start < prefix else start)
    elif start is not None and start.startswith(prefix):
        it.seek_for_prev(start)
    elif start is not None and start < prefix:
        _seek_before(it, prefix)  # the range is empty: land outside the prefix
    else:
        _seek_before(it, prefix_upper_bound(prefix))


def _seek_before(it: rocksdict.RdictIter, bound: bytes | None) -> None:
    """Place `it` on the last key strictly below `bound` (None: the last key)."""
    if bound is None:
        it.seek_to_last()
        return
    it.seek_for_prev(bound)
    if it.valid() and bytes(it.key()) == bound:
        it.prev()


@contextmanager
def _translated() -> Iterator[None]:
    """Turn rocksdict's bare exceptions into `StoreError` (a closed database included)."""
    try:
        yield
    except StoreError:
        raise
    except rocksdict.DbClosedError as e:
        raise StoreClosedError(str(e)) from e
    except Exception as e:  # rocksdict raises bare Exception for every RocksDB status
        raise StoreError(f"rocksdb: {e}") from e
