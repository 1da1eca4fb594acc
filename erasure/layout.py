"""Placing blobs in the original data square (PROTOCOL.md §3) and reading them back.

Blobs are stably sorted by their 29-byte namespace and placed one after another from cell 0
(row-major, `cell = row * 64 + col`), each starting at a new cell. Each cell carries 1984 payload
bytes as 64 field elements `0x00 || 31 bytes`; the last cell of a blob is zero padded.
"""

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

from erasure.constants import (
    BYTES_PER_CELL,
    BYTES_PER_FIELD_ELEMENT,
    CELLS_PER_ROW,
    MAX_ROWS_LIMIT,
    NAMESPACE_BYTES,
    PAYLOAD_BYTES_PER_CELL,
    PAYLOAD_BYTES_PER_FIELD_ELEMENT,
)
from erasure.errors import InvalidBlob, InvalidCell, InvalidNamespace, SquareTooLarge
from erasure.field import is_power_of_two

_FE = BYTES_PER_FIELD_ELEMENT
_PAYLOAD = PAYLOAD_BYTES_PER_FIELD_ELEMENT


class BlobEntry(NamedTuple):
    """Where one blob lives in the ODS: `length` payload bytes from cell `start_cell` on."""

    namespace: bytes  # 29 bytes
    start_cell: int
    length: int
    blob_hash: bytes  # sha256(namespace || data)


class Layout(NamedTuple):
    """The packed original data square: `k` rows of 64 cells, and where each blob sits."""

    k: int
    ods: bytes  # k * 64 * 2048 bytes, row-major
    blob_index: tuple[BlobEntry, ...]


def normalize_namespace(namespace: bytes) -> bytes:
    """The 29-byte form of a 1..29-byte namespace (left zero-padded); raises InvalidNamespace."""
    if not isinstance(namespace, bytes | bytearray):
        raise InvalidNamespace(f"namespace must be bytes, got {type(namespace).__name__}")
    if not 1 <= len(namespace) <= NAMESPACE_BYTES:
        raise InvalidNamespace(
            f"namespace must be 1..{NAMESPACE_BYTES} bytes, got {len(namespace)}"
        )
    padded = bytes(namespace).rjust(NAMESPACE_BYTES, b"\x00")
    if padded in (bytes(NAMESPACE_BYTES), b"\xff" * NAMESPACE_BYTES):
        raise InvalidNamespace("the all-zero and all-0xFF namespaces are reserved")
    return padded


def blob_hash(namespace: bytes, data: bytes) -> bytes:
    """sha256(29-byte namespace || data), computable by a submitter before submitting."""
    return hashlib.sha256(normalize_namespace(namespace) + bytes(data)).digest()


def cells_for_length(length: int) -> int:
    """Number of cells a blob of `length` payload bytes occupies."""
    return -(-length // PAYLOAD_BYTES_PER_CELL)


def rows_for_cells(cells: int) -> int:
    """The smallest power of two `k >= 1` whose ODS (`k x 64` cells) holds `cells` cells."""
    rows = max(1, -(-cells // CELLS_PER_ROW))
    return 1 << (rows - 1).bit_length()


def max_blob_bytes(max_rows: int) -> int:
    """The largest blob payload that fits in a square of at most `max_rows` rows."""
    return max_rows * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL


def is_square_size(k: int) -> bool:
    """True when `k` can be a square's number of original rows: a power of two in
    1..MAX_ROWS_LIMIT. The one home of this check; every role and codec uses it."""
    return isinstance(k, int) and is_power_of_two(k) and k <= MAX_ROWS_LIMIT


def check_k(k: int, name: str = "k") -> None:
    """Raise ValueError unless `k` is a square size (`is_square_size`); `name` names it."""
    if not is_square_size(k):
        raise ValueError(f"{name} must be a power of two in 1..{MAX_ROWS_LIMIT}, got {k!r}")


def check_max_rows(max_rows: int) -> None:
    """Raise ValueError unless `max_rows` is a power of two in 1..MAX_ROWS_LIMIT."""
    check_k(max_rows, "max_rows")


def split_every(data: bytes, size: int) -> tuple[bytes, ...]:
    """`data` cut into consecutive pieces of `size` bytes (the last one shorter if it must be)."""
    return tuple(data[i : i + size] for i in range(0, len(data), size))


def pack_payload(data: bytes) -> bytes:
    """`data` as whole cells of field elements `0x00 || 31 bytes`, the last cell zero padded."""
    cells = cells_for_length(len(data))
    padded = bytes(data).ljust(cells * PAYLOAD_BYTES_PER_CELL, b"\x00")
    out = bytearray(cells * BYTES_PER_CELL)
    for j in range(_PAYLOAD):  # strided copies: byte j of every chunk at once
        out[1 + j :: _FE] = padded[j::_PAYLOAD]
    return bytes(out)


def unpack_payload(packed: bytes) -> bytes:
    """The payload bytes of whole field elements; raises InvalidCell on a non-zero top byte."""
    if any(packed[0::_FE]):
        raise InvalidCell("a field element of a data cell has a non-zero top byte")
    out = bytearray(len(packed) // _FE * _PAYLOAD)
    for j in range(_PAYLOAD):
        out[j::_PAYLOAD] = packed[1 + j :: _FE]
    return bytes(out)


def blob_data_from_cells(cells: Sequence[bytes], length: int) -> bytes:
    """The first `length` payload bytes of `cells` (the ODS cells from a blob's start_cell on)."""
    needed = cells_for_length(length)
    if len(cells) < needed:
        raise InvalidCell(f"a blob of {length} bytes needs {needed} cells, got {len(cells)}")
    for cell in cells[:needed]:
        if len(cell) != BYTES_PER_CELL:
            raise InvalidCell(f"a cell must be {BYTES_PER_CELL} bytes, got {len(cell)}")
    return unpack_payload(b"".join(cells[:needed]))[:length]


def _checked_blobs(blobs: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The blobs with normalised namespaces; raises on a bad namespace or an empty blob."""
    checked = []
    for position, (namespace, data) in enumerate(blobs):
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidBlob(f"blob {position}: data must be bytes, got {type(data).__name__}")
        if len(data) == 0:
            raise InvalidBlob(f"blob {position} is empty")
        checked.append((normalize_namespace(namespace), bytes(data)))
    return checked


def layout_blobs(blobs: Sequence[tuple[bytes, bytes]], max_rows: int) -> Layout:
    """Pack blobs (namespace, data) given in arrival order into the smallest ODS that holds them.

    Raises InvalidNamespace, InvalidBlob (empty, or alone too large for `max_rows`),
    SquareTooLarge (together too large).
    """
    check_max_rows(max_rows)
    ordered = sorted(_checked_blobs(blobs), key=lambda blob: blob[0])  # stable: arrival order
    capacity = max_blob_bytes(max_rows)
    parts, index, cell = [], [], 0
    for namespace, data in ordered:
        if len(data) > capacity:
            raise InvalidBlob(f"a blob of {len(data)} bytes exceeds the {capacity}-byte square")
        index.append(
            BlobEntry(namespace, cell, len(data), hashlib.sha256(namespace + data).digest())
        )
        parts.append(pack_payload(data))
        cell += cells_for_length(len(data))
    k = rows_for_cells(cell)
    if k > max_rows:
        raise SquareTooLarge(k, max_rows)
    ods = b"".join(parts).ljust(k * CELLS_PER_ROW * BYTES_PER_CELL, b"\x00")
    return Layout(k, ods, tuple(index))
