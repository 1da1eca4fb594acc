"""Errors raised by the storage layer, under `StoreError` (itself a `DAError`).

None of them maps to a client-facing status of its own: the API edge reports them as internal
failures. Like every `DAError`, each passes its typed fields to `Exception.__init__` so it pickles
across process pools, and `__str__` gives the message.
"""

from __future__ import annotations

from da.errors import DAError


class StoreError(DAError):
    """Base of every storage failure (an I/O error from RocksDB included)."""


class StoreLockedError(StoreError):
    """The database directory is held by another process (or another open handle in this one).

    Happens when two nodes are pointed at the same `--data-dir`; retrying cannot help until the
    other holder exits.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, detail)
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return f"store at {self.path} is locked by another process or handle ({self.detail})"


class StoreClosedError(StoreError):
    """An operation was attempted on a store after `close()` (a shutdown-ordering bug)."""


class CorruptValueError(StoreError):
    """A stored value does not decode under the schema (disk corruption or a schema mismatch).

    Retrying cannot help; the node's data directory needs repair or a resync.
    """

    def __init__(self, key: bytes, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"corrupt value at key {self.key.hex()}: {self.reason}"
