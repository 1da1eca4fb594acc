"""The canonical v1 block header (PROTOCOL.md §5) and its verification (PROTOCOL.md §6).

Wire layout, all integers big-endian:

    magic b"DAH1" | chain_id u8 length || UTF-8 (1..64 bytes) | height u64 (first block is 1)
    | time_ms u64 | prev_hash 32 (zeros at height 1) | rows u16 (k) | commitments 2k x 48
    | blob_count u32 | blob_count x (namespace 29 || start_cell u32 || length u32 || blob_hash 32)
    | producer 48-byte BLS public key

`header_hash = sha256(header bytes)`, and the producer signs that hash. Headers travel as these
exact bytes plus the signature, so every node hashes what the producer signed; a `SignedHeader`
keeps the raw bytes next to the decoded `Header` for that reason.

A `Header` is valid by construction (`__post_init__` checks every structural rule), so
`encode_header` never emits a header `header_from_bytes` would refuse.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from da import signing
from da.errors import (
    BadNamespace,
    BadSignature,
    BrokenLink,
    InconsistentCommitments,
    InvalidHeader,
    TooManyRows,
    UntrustedProducer,
    WrongChain,
)
from da.sampling import CellRef
from erasure.commitments import commitments_consistent
from erasure.constants import (
    BLOB_HASH_BYTES,
    BYTES_PER_COMMITMENT,
    CELLS_PER_ROW,
    MAX_ROWS_LIMIT,
    NAMESPACE_BYTES,
)
from erasure.errors import ErasureError
from erasure.layout import BlobEntry, cells_for_length, is_square_size, split_every

MAGIC = b"DAH1"
MAX_CHAIN_ID_BYTES = 64
HASH_BYTES = 32  # sha256 digest: header_hash and prev_hash (blob hashes: BLOB_HASH_BYTES)
ZERO_HASH = bytes(HASH_BYTES)
MAX_U64 = 2**64 - 1

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# namespace 29 || start_cell u32 || length u32 || blob_hash 32 = 69 bytes
_BLOB_ENTRY = struct.Struct(f">{NAMESPACE_BYTES}sII{BLOB_HASH_BYTES}s")
_RESERVED_NAMESPACES = (bytes(NAMESPACE_BYTES), b"\xff" * NAMESPACE_BYTES)


@dataclass(frozen=True)
class Header:
    """A decoded v1 header; constructing one checks every rule of PROTOCOL.md §5 and §6's first
    item."""

    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes
    k: int
    commitments: tuple[bytes, ...]
    blobs: tuple[BlobEntry, ...]
    producer: bytes

    def __post_init__(self) -> None:
        _check_chain_id(self.chain_id)
        _check_position(self.height, self.time_ms, self.prev_hash)
        _check_rows(self.k, self.commitments)
        _check_blob_index(self.k, self.blobs)
        if len(self.producer) != signing.PUBLIC_KEY_BYTES:
            raise InvalidHeader(f"producer key must be {signing.PUBLIC_KEY_BYTES} bytes")


def _check_chain_id(chain_id: str) -> None:
    try:
        size = len(chain_id.encode("utf-8"))
    except UnicodeEncodeError as e:  # lone surrogates
        raise InvalidHeader("chain id is not encodable as UTF-8") from e
    if not 1 <= size <= MAX_CHAIN_ID_BYTES:
        raise InvalidHeader(f"chain id must be 1..{MAX_CHAIN_ID_BYTES} UTF-8 bytes, got {size}")


def _check_position(height: int, time_ms: int, prev_hash: bytes) -> None:
    if not 1 <= height <= MAX_U64:
        raise InvalidHeader(f"height must be in 1..2^64-1, got {height}")
    if not 0 <= time_ms <= MAX_U64:
        raise InvalidHeader(f"time_ms must be in 0..2^64-1, got {time_ms}")
    if len(prev_hash) != HASH_BYTES:
        raise InvalidHeader(f"prev_hash must be {HASH_BYTES} bytes")
    if height == 1 and prev_hash != ZERO_HASH:
        raise InvalidHeader("prev_hash must be zeros at height 1")


def _check_k(k: int) -> None:
    if not is_square_size(k):
        raise InvalidHeader(f"rows must be a power of two in 1..{MAX_ROWS_LIMIT}, got {k}")


def _check_rows(k: int, commitments: tuple[bytes, ...]) -> None:
    _check_k(k)
    if len(commitments) != 2 * k:
        raise InvalidHeader(f"expected {2 * k} commitments, got {len(commitments)}")
    if any(len(commitment) != BYTES_PER_COMMITMENT for commitment in commitments):
        raise InvalidHeader(f"every commitment must be {BYTES_PER_COMMITMENT} bytes")


def _check_blob_index(k: int, blobs: tuple[BlobEntry, ...]) -> None:
    """Sorted by start cell with non-decreasing namespaces, in the k x 64 ODS, no overlaps."""
    next_free_cell = 0
    previous_namespace = b""
    for index, entry in enumerate(blobs):
        where = f"blob {index}"
        if len(entry.namespace) != NAMESPACE_BYTES or len(entry.blob_hash) != BLOB_HASH_BYTES:
            raise InvalidHeader(f"{where}: namespace must be 29 bytes and blob_hash 32")
        if entry.namespace in _RESERVED_NAMESPACES:
            raise InvalidHeader(f"{where}: reserved namespace")
        if entry.namespace < previous_namespace:
            raise InvalidHeader(f"{where}: namespaces must be non-decreasing")
        if entry.length < 1:
            raise InvalidHeader(f"{where}: length must be >= 1")
        if entry.start_cell < next_free_cell:
            raise InvalidHeader(f"{where}: not sorted by start cell, or overlaps the previous blob")
        next_free_cell = entry.start_cell + cells_for_length(entry.length)
        if next_free_cell > k * CELLS_PER_ROW:
            raise InvalidHeader(f"{where}: ends at cell {next_free_cell}, past the {k} x 64 square")
        previous_namespace = entry.namespace


# --- encoding ---------------------------------------------------------------------------------


def max_header_bytes(k: int) -> int:
    """The largest canonical header of a k-row square: the longest chain id, and a blob starting
    at every one of the k x 64 cells (what `header_from_bytes` admits), signature excluded."""
    fixed = len(MAGIC) + 1 + MAX_CHAIN_ID_BYTES + 2 * _U64.size + HASH_BYTES + _U16.size
    commitments = 2 * k * BYTES_PER_COMMITMENT
    blobs = _U32.size + k * CELLS_PER_ROW * _BLOB_ENTRY.size
    return fixed + commitments + blobs + signing.PUBLIC_KEY_BYTES


def encode_header(header: Header) -> bytes:
    """The canonical v1 bytes of `header` (PROTOCOL.md §5)."""
    chain_id = header.chain_id.encode("utf-8")
    parts = [
        MAGIC,
        bytes([len(chain_id)]),
        chain_id,
        _U64.pack(header.height),
        _U64.pack(header.time_ms),
        header.prev_hash,
        _U16.pack(header.k),
        *header.commitments,
        _U32.pack(len(header.blobs)),
        *(_BLOB_ENTRY.pack(*entry) for entry in header.blobs),
        header.producer,
    ]
    return b"".join(parts)


def header_hash(raw: bytes) -> bytes:
    """sha256 of the header bytes: what the producer signs and what links headers."""
    return hashlib.sha256(raw).digest()


class _Reader:
    """Consumes header bytes front to back; running short is an `InvalidHeader`."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.raw):
            raise InvalidHeader(f"truncated in {what} (need {end} bytes, have {len(self.raw)})")
        chunk = self.raw[self.offset : end]
        self.offset = end
        return chunk

    def integer(self, layout: struct.Struct, what: str) -> int:
        value: int = layout.unpack(self.take(layout.size, what))[0]
        return value


def header_from_bytes(raw: bytes) -> Header:
    """Decode untrusted header bytes, strictly; raises `InvalidHeader` saying what is wrong."""
    raw = bytes(raw)
    reader = _Reader(raw)
    if reader.take(len(MAGIC), "magic") != MAGIC:
        raise InvalidHeader(f"magic must be {MAGIC!r}")
    chain_id = _decode_chain_id(reader.take(reader.take(1, "chain id length")[0], "chain id"))
    height = reader.integer(_U64, "height")
    time_ms = reader.integer(_U64, "time_ms")
    prev_hash = reader.take(HASH_BYTES, "prev_hash")
    k = reader.integer(_U16, "rows")
    _check_k(k)  # before sizing the commitments by it
    raw_commitments = reader.take(2 * k * BYTES_PER_COMMITMENT, "commitments")
    commitments = split_every(raw_commitments, BYTES_PER_COMMITMENT)
    blob_count = reader.integer(_U32, "blob_count")
    if blob_count > k * CELLS_PER_ROW:  # each blob starts at a new cell of the k x 64 ODS
        cells = k * CELLS_PER_ROW
        raise InvalidHeader(f"blob_count {blob_count} exceeds the {cells} cells of k = {k}")
    blob_bytes = reader.take(blob_count * _BLOB_ENTRY.size, "blob index")
    blobs = tuple(BlobEntry(*fields) for fields in _BLOB_ENTRY.iter_unpack(blob_bytes))
    producer = reader.take(signing.PUBLIC_KEY_BYTES, "producer")
    if reader.offset != len(raw):
        raise InvalidHeader(f"{len(raw) - reader.offset} trailing bytes")
    return Header(chain_id, height, time_ms, prev_hash, k, commitments, blobs, producer)


def _decode_chain_id(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidHeader("chain id is not valid UTF-8") from e


# --- signed headers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedHeader:
    """A header with the exact bytes the producer signed and its 96-byte signature.

    Build it with `signed_header_from_bytes` (untrusted input) or `sign_header`.
    """

    header: Header
    raw: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.signature) != signing.SIGNATURE_BYTES:
            raise InvalidHeader(f"signature must be {signing.SIGNATURE_BYTES} bytes")
        if encode_header(self.header) != self.raw:
            raise InvalidHeader("raw bytes are not the canonical encoding of the header")

    @cached_property
    def hash(self) -> bytes:
        """header_hash of the raw bytes."""
        return header_hash(self.raw)


def signed_header_from_bytes(raw: bytes, signature: bytes) -> SignedHeader:
    """Decode an untrusted (header bytes, signature) pair; raises `InvalidHeader`.

    Only the form is checked here; `verify_signed_header` decides whether to trust it.
    """
    if len(signature) != signing.SIGNATURE_BYTES:
        expected = signing.SIGNATURE_BYTES
        raise InvalidHeader(f"signature must be {expected} bytes, got {len(signature)}")
    raw = bytes(raw)
    return SignedHeader(header_from_bytes(raw), raw, bytes(signature))


def sign_header(header: Header, secret_key: bytes) -> SignedHeader:
    """Encode and sign `header`; `secret_key` must belong to `header.producer` (else ValueError)."""
    if signing.public_key(secret_key) != header.producer:
        raise ValueError("the secret key does not belong to the header's producer key")
    raw = encode_header(header)
    return SignedHeader(header, raw, signing.sign(secret_key, header_hash(raw)))


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustRoot:
    """Configuration a node trusts headers by: the chain id and the producer public keys."""

    chain_id: str
    producer_keys: frozenset[bytes]

    def __post_init__(self) -> None:
        if not self.producer_keys:
            raise ValueError("a trust root needs at least one producer key")
        if any(len(key) != signing.PUBLIC_KEY_BYTES for key in self.producer_keys):
            raise ValueError(f"producer keys must be {signing.PUBLIC_KEY_BYTES} bytes")


def trust_root_from_hex(chain_id: str, producer_keys_hex: Iterable[str]) -> TrustRoot:
    """A trust root from configuration (`--chain-id`, `--trusted-key HEX`); ValueError if bad."""
    keys = frozenset(bytes.fromhex(key.removeprefix("0x")) for key in producer_keys_hex)
    return TrustRoot(chain_id, keys)


def verify_signed_header(
    signed: SignedHeader,
    trust: TrustRoot,
    *,
    parent: Header | SignedHeader | None = None,
    max_rows: int = MAX_ROWS_LIMIT,
    rng: random.Random | None = None,
) -> None:
    """Accept `signed` or raise a `HeaderRejected` leaf (PROTOCOL.md §6), cheapest checks first.

    `parent`, when it is the header at height - 1, must be what `prev_hash` links to; a parent at
    another height is not a link and is ignored. The commitment consistency check (one MSM)
    runs last.
    """
    header = signed.header
    if header.chain_id != trust.chain_id:
        raise WrongChain(trust.chain_id, header.chain_id)
    if header.producer not in trust.producer_keys:
        raise UntrustedProducer(header.producer)
    if header.k > max_rows:
        raise TooManyRows(header.k, max_rows)
    if not signing.verify(header.producer, signed.hash, signed.signature):
        raise BadSignature(header.height, signed.hash)
    _check_link(header, parent)
    _check_commitments(header, rng)


def _check_link(header: Header, parent: Header | SignedHeader | None) -> None:
    if parent is None:
        return
    if isinstance(parent, SignedHeader):
        parent_height, parent_hash = parent.header.height, parent.hash
    else:
        parent_height, parent_hash = parent.height, header_hash(encode_header(parent))
    if parent_height == header.height - 1 and header.prev_hash != parent_hash:
        raise BrokenLink(header.height, parent_hash, header.prev_hash)


def _check_commitments(header: Header, rng: random.Random | None) -> None:
    try:
        consistent = commitments_consistent(header.k, header.commitments, rng=rng)
    except ErasureError as e:  # a commitment that is not a G1 point
        raise InconsistentCommitments(header.height, str(e)) from e
    if not consistent:
        raise InconsistentCommitments(header.height)


# --- blob index helpers -----------------------------------------------------------------------


def blob_entries_for_namespace(header: Header, namespace: bytes) -> tuple[BlobEntry, ...]:
    """The header's blobs in `namespace` (29 bytes, already normalised), in square order."""
    if len(namespace) != NAMESPACE_BYTES:
        raise BadNamespace(namespace, f"must be {NAMESPACE_BYTES} bytes once normalised")
    return tuple(entry for entry in header.blobs if entry.namespace == namespace)


def find_blob_entry(header: Header, blob_hash: bytes) -> BlobEntry | None:
    """The header's blob with `blob_hash`, or None."""
    return next((entry for entry in header.blobs if entry.blob_hash == blob_hash), None)


def blob_cells(entry: BlobEntry) -> tuple[CellRef, ...]:
    """The ODS cells holding `entry`'s data, in order (row = cell // 64, col = cell % 64)."""
    cells = range(entry.start_cell, entry.start_cell + cells_for_length(entry.length))
    return tuple(CellRef(*divmod(cell, CELLS_PER_ROW)) for cell in cells)
