"""The client's results: frozen dataclasses of plain values (bytes, ints, strings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Receipt:
    """A submitted blob: its hash (computed locally and checked against the node's answer) and
    the state when `submit` returned ("PENDING", "INCLUDED" or "CERTIFIED")."""

    blob_hash: bytes
    state: str
    height: int  # 0 while PENDING
    start_cell: int


@dataclass(frozen=True)
class BlobStatus:
    """`GetBlobStatus`: "PENDING", "INCLUDED", "CERTIFIED" or "REJECTED" (with `reason`)."""

    blob_hash: bytes
    state: str
    height: int
    start_cell: int
    reason: str


@dataclass(frozen=True)
class Blob:
    """A blob read back and verified: every cell against its row commitment of a trusted header."""

    namespace: bytes  # 29 bytes
    data: bytes
    blob_hash: bytes
    start_cell: int


@dataclass(frozen=True)
class Availability:
    """A light client's verdict on a height: "SAMPLING", "AVAILABLE" or "UNAVAILABLE"."""

    height: int
    status: str
    confidence: float
    samples: int
