"""In-process headers and peers at real square sizes for bench/light.py (no network, no producer).

A square whose rows are multiples of one row R is a valid square of any size at the cost of one
row: original row i is `a_i * R`, so extended row t is `b_t * R` with `b = E a` (E the extension
matrix), its cells are `b_t` times R's cells and its proofs `b_t` times R's proofs, and its
commitment is `b_t * C_R`. Headers over such squares are real, consistent, signed v1 headers; the
peers compute each asked cell and proof when asked and count that CPU (`serve_seconds`), which is
the storage node's work, not the light client's, and is subtracted from the client's CPU.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from da.cells import ProvenCell as ServedCell
from da.header import Header, SignedHeader, header_hash, sign_header
from da.sampling import CellRef
from da.signing import KeyPair
from erasure import kzg
from erasure.constants import BLS_MODULUS, BYTES_PER_ROW
from erasure.field import bytes_from_ints, extension_matrix, ints_from_bytes
from erasure.g1 import decode_points, msm
from light_client.errors import PeerCallFailed
from light_client.peers import RawHeader


@dataclass(frozen=True)
class BaseRow:
    """One row R: its cells and proofs (as field elements and decoded points) and commitment."""

    cells: tuple[list[int], ...]
    proofs: tuple[object, ...]
    commitment: object


def base_row(seed: int = 1) -> BaseRow:
    rng = random.Random(seed)
    data = b"".join(b"\x00" + rng.randbytes(31) for _ in range(BYTES_PER_ROW // 32))
    cells, proofs = kzg.compute_cells_and_proofs(data)
    return BaseRow(
        tuple(ints_from_bytes(c) for c in cells),
        tuple(decode_points(proofs)),
        decode_points([kzg.commit(data)])[0],
    )


@dataclass(frozen=True)
class ScaledBlock:
    """A signed header over the square whose row t is `scales[t] * R`."""

    signed: SignedHeader
    scales: tuple[int, ...]


def make_chain(
    base: BaseRow, k: int, count: int, key: KeyPair, chain_id: str, seed: int = 7
) -> list[ScaledBlock]:
    """Signed, linked headers 1..count over scaled squares of k original rows."""
    rng = random.Random(seed)
    matrix = extension_matrix(k)
    blocks, prev = [], bytes(32)
    for height in range(1, count + 1):
        a = [rng.randrange(1, BLS_MODULUS) for _ in range(k)]
        b = a + [sum(m * x for m, x in zip(row, a, strict=True)) % BLS_MODULUS for row in matrix]
        commitments = tuple(msm([base.commitment], [s]) for s in b)
        header = Header(
            chain_id=chain_id,
            height=height,
            time_ms=1_000 * height,
            prev_hash=prev,
            k=k,
            commitments=commitments,
            blobs=(),
            producer=key.public,
        )
        signed = sign_header(header, key.secret)
        blocks.append(ScaledBlock(signed, tuple(b)))
        prev = header_hash(signed.raw)
    return blocks


@dataclass
class ScaledPeer:
    """A `light_client.peers.Peer` serving `blocks` honestly; headers published with `publish`."""

    name: str
    base: BaseRow
    blocks: dict[int, ScaledBlock] = field(default_factory=dict)
    serve_seconds: float = 0.0
    _new: asyncio.Queue[ScaledBlock] = field(default_factory=asyncio.Queue)

    def publish(self, block: ScaledBlock) -> None:
        self._new.put_nowait(block)

    async def get_samples(
        self, height: int, coords: Sequence[CellRef], timeout: float
    ) -> list[ServedCell]:
        start = time.process_time()
        block = self.blocks.get(height)
        if block is None:
            raise PeerCallFailed(self.name, "NOT_FOUND", f"no block {height}")
        served = [self._cell(block, c) for c in coords]
        self.serve_seconds += time.process_time() - start
        return served

    def _cell(self, block: ScaledBlock, c: CellRef) -> ServedCell:
        s = block.scales[c.row]
        data = bytes_from_ints([v * s % BLS_MODULUS for v in self.base.cells[c.col]])
        return ServedCell(c.row, c.col, data, msm([self.base.proofs[c.col]], [s]))

    async def get_header(self, height: int, timeout: float) -> RawHeader:
        if not self.blocks:
            raise PeerCallFailed(self.name, "NOT_FOUND", "no headers")
        block = self.blocks[max(self.blocks)] if height == 0 else self.blocks.get(height)
        if block is None:
            raise PeerCallFailed(self.name, "NOT_FOUND", f"no header {height}")
        return RawHeader(block.signed.raw, block.signed.signature)

    async def subscribe_headers(self, from_height: int) -> AsyncGenerator[RawHeader, None]:
        while True:
            block = await self._new.get()
            self.blocks[block.signed.header.height] = block
            if block.signed.header.height >= from_height:
                yield RawHeader(block.signed.raw, block.signed.signature)

    async def close(self) -> None:
        pass
