"""Signed headers by height, exactly as signed (header bytes and 96-byte signature): written by
the producer and storage node with each block's seal (`da.store.blocks`) and by the light client
alone (`put_signed_header`), as each accepted header. Every stored header was verified before it
was written.
"""

from __future__ import annotations

from da.errors import InvalidHeader
from da.header import SignedHeader, signed_header_from_bytes
from da.signing import SIGNATURE_BYTES
from da.store import schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError


def add_signed_header_to_batch(
    batch: WriteBatch, height: int, header_raw: bytes, signature: bytes
) -> None:
    """Queue the signed header of `height` (header bytes exactly as signed, 96-byte signature)."""
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"signature must be {SIGNATURE_BYTES} bytes")
    batch.put(schema.signed_header_key(height), bytes(signature) + bytes(header_raw))


def put_signed_header(
    store: KeyValueStore, height: int, header_raw: bytes, signature: bytes, *, sync: bool = True
) -> None:
    """Store a signed header alone (light client); does not mark a block as held."""
    batch = WriteBatch()
    add_signed_header_to_batch(batch, height, header_raw, signature)
    store.write(batch, sync=sync)


def get_signed_header(store: KeyValueStore, height: int) -> tuple[bytes, bytes] | None:
    """(header bytes, signature) of `height`, or None if not stored."""
    key = schema.signed_header_key(height)
    raw = store.get(key)
    if raw is None:
        return None
    if len(raw) <= SIGNATURE_BYTES:
        raise CorruptValueError(key, "signed header shorter than its signature")
    return raw[SIGNATURE_BYTES:], raw[:SIGNATURE_BYTES]


def get_decoded_header(store: KeyValueStore, height: int) -> SignedHeader | None:
    """The signed header stored at `height`, decoded, or None. Stored headers were verified
    before they were written, so bytes that no longer decode are corruption of our own data
    (`CorruptValueError`, DATA_LOSS at the edge), never the caller's bad input."""
    stored = get_signed_header(store, height)
    if stored is None:
        return None
    try:
        return signed_header_from_bytes(*stored)
    except InvalidHeader as e:
        raise CorruptValueError(schema.signed_header_key(height), str(e)) from e


def highest_header_height(store: KeyValueStore) -> int:
    """The highest height with a stored header (0 if none)."""
    for key, _ in store.iterate(schema.SIGNED_HEADER, reverse=True):
        return schema.read_u64(key, len(schema.SIGNED_HEADER))
    return 0


def lowest_header_height(store: KeyValueStore) -> int:
    """The lowest height with a stored header (0 if none)."""
    for key, _ in store.iterate(schema.SIGNED_HEADER):
        return schema.read_u64(key, len(schema.SIGNED_HEADER))
    return 0
