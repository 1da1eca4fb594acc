"""Errors of the storage node. Each says whether retrying elsewhere or later can help."""

from __future__ import annotations

from da.errors import DAError


class StorageNodeError(DAError):
    """Base of the storage node's own errors."""


class BlockUnavailable(StorageNodeError):
    """No source served (or let us rebuild) every row of a block. Retrying later, or with more
    peers, can help; the block is not stored meanwhile and later heights wait for it."""

    def __init__(self, height: int, missing_rows: int, reason: str) -> None:
        super().__init__(height, missing_rows, reason)
        self.height = height
        self.missing_rows = missing_rows
        self.reason = reason

    def __str__(self) -> str:
        return f"block {self.height}: {self.missing_rows} rows unavailable ({self.reason})"


class NoSource(StorageNodeError):
    """No producer or peer answered for a header. Retrying later can help."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(height, reason)
        self.height = height
        self.reason = reason

    def __str__(self) -> str:
        return f"no source has the header of height {self.height}: {self.reason}"
