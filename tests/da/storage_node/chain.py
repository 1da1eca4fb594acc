"""Real signed blocks for storage-node and serving tests: tiny squares (k = 1 or 2), one producer
key derived from a fixed seed, so every run builds the same chain."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from da.header import Header, SignedHeader, TrustRoot, sign_header
from da.signing import KeyPair, generate_keypair
from da.store import blocks
from da.store.base import KeyValueStore
from erasure.square import ExtendedSquare, encode_square
from tests.da.store.helpers import put_whole_block

CHAIN_ID = "unit-chain"
NS_A = b"\x0a"
NS_B = b"\x0b"
PRODUCER = generate_keypair(b"\x42" * 32)
TRUST = TrustRoot(CHAIN_ID, frozenset({PRODUCER.public}))


@dataclass(frozen=True)
class Block:
    signed: SignedHeader
    square: ExtendedSquare

    @property
    def height(self) -> int:
        return self.signed.header.height

    def rows(self) -> list[blocks.Row]:
        return [
            (self.square.row_cells(r), self.square.row_proofs(r)) for r in range(2 * self.square.k)
        ]


def blobs_for(height: int, big: bool = False) -> list[tuple[bytes, bytes]]:
    """Two blobs of NS_A and one of NS_B; `big` makes the square k = 2."""
    size = 130_000 if big else 3000
    return [
        (NS_A, b"a%d-first" % height),
        (NS_B, bytes([height % 251]) * size),
        (NS_A, b"a%d-second" % height),
    ]


def make_block(
    height: int,
    prev_hash: bytes,
    *,
    big: bool = False,
    time_ms: int | None = None,
    key: KeyPair = PRODUCER,
) -> Block:
    square = encode_square(blobs_for(height, big), max_rows=4)
    header = Header(
        chain_id=CHAIN_ID,
        height=height,
        time_ms=time_ms if time_ms is not None else 1_700_000_000_000 + height,
        prev_hash=prev_hash,
        k=square.k,
        commitments=square.commitments,
        blobs=square.blob_index,
        producer=key.public,
    )
    return Block(sign_header(header, key.secret), square)


@functools.cache
def chain(length: int, big_at: tuple[int, ...] = ()) -> tuple[Block, ...]:
    """Blocks 1..length linked by prev_hash (built once per process)."""
    built: list[Block] = []
    prev = bytes(32)
    for height in range(1, length + 1):
        block = make_block(height, prev, big=height in big_at)
        built.append(block)
        prev = block.signed.hash
    return tuple(built)


def store_block(store: KeyValueStore, block: Block) -> None:
    put_whole_block(store, block.height, block.signed.raw, block.signed.signature, block.rows())
