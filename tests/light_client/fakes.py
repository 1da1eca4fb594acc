"""In-process fakes for light-client unit tests: a signed chain over one real k=1 square, and
peers that serve it honestly or misbehave in the ways PROTOCOL.md §7 guards against."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace

from da.cells import ProvenCell
from da.header import Header, SignedHeader, TrustRoot, header_hash, sign_header
from da.sampling import CellRef
from da.signing import KeyPair, generate_keypair
from erasure.square import ExtendedSquare, encode_square
from light_client.errors import PeerCallFailed
from light_client.peers import RawHeader

CHAIN_ID = "unit-chain"
NAMESPACE = b"\x00" * 28 + b"\x07"


def producer_key(seed: int = 1) -> KeyPair:
    return generate_keypair(bytes([seed]) * 32)


def make_square(payload: bytes = b"hello light client") -> ExtendedSquare:
    return encode_square([(NAMESPACE, payload)])


def trust_root(key: KeyPair) -> TrustRoot:
    return TrustRoot(CHAIN_ID, frozenset({key.public}))


def signed_chain(square: ExtendedSquare, key: KeyPair, count: int) -> list[SignedHeader]:
    """Headers 1..count over `square`, each linked to the previous one."""
    chain: list[SignedHeader] = []
    prev = bytes(32)
    for height in range(1, count + 1):
        header = Header(
            chain_id=CHAIN_ID,
            height=height,
            time_ms=1_000 * height,
            prev_hash=prev,
            k=square.k,
            commitments=square.commitments,
            blobs=square.blob_index,
            producer=key.public,
        )
        signed = sign_header(header, key.secret)
        chain.append(signed)
        prev = header_hash(signed.raw)
    return chain


def resign(signed: SignedHeader, key: KeyPair, **changes: object) -> SignedHeader:
    """`signed` with fields changed and signed again by `key` (e.g. an equivocating header)."""
    return sign_header(replace(signed.header, **changes), key.secret)  # type: ignore[arg-type]


def raw(signed: SignedHeader) -> RawHeader:
    return RawHeader(signed.raw, signed.signature)


@dataclass
class FakePeer:
    """A peer serving `square` for every height in `heights` (all if None).

    mode: "honest"; "withhold" (NOT_FOUND for `withheld` cells, or all if None); "corrupt" (a
    flipped byte); "other_cell" (another cell, its valid proof, claiming its own coordinate);
    "other_cell_same_coord" (another cell and its proof, claiming the asked coordinate);
    "slow" (answers after `delay` seconds); "lagging" (NOT_FOUND for the first `lag_calls` calls).
    """

    name: str
    square: ExtendedSquare
    mode: str = "honest"
    withheld: set[CellRef] | None = None
    delay: float = 0.0
    lag_calls: int = 0
    headers: list[SignedHeader] = field(default_factory=list)
    asked: list[CellRef] = field(default_factory=list)
    asked_heights: list[int] = field(default_factory=list)  # one entry per get_samples call
    calls: int = 0
    new_headers: asyncio.Queue[SignedHeader] = field(default_factory=asyncio.Queue)

    async def get_samples(
        self, height: int, coords: Sequence[CellRef], timeout: float
    ) -> list[ProvenCell]:
        self.calls += 1
        self.asked_heights.append(height)
        self.asked.extend(coords)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "lagging" and self.calls <= self.lag_calls:
            raise PeerCallFailed(self.name, "NOT_FOUND", "not yet")
        if self.mode == "withhold" and self.withheld is None:
            raise PeerCallFailed(self.name, "NOT_FOUND", "withheld")
        return [cell for c in coords if (cell := self._answer(c)) is not None]

    def _answer(self, c: CellRef) -> ProvenCell | None:
        sq = self.square
        if self.mode == "withhold" and self.withheld is not None and c in self.withheld:
            return None
        if self.mode == "corrupt":
            data = bytearray(sq.cell(c.row, c.col))
            data[-1] ^= 1
            return ProvenCell(c.row, c.col, bytes(data), sq.proof(c.row, c.col))
        if self.mode.startswith("other_cell"):
            other = CellRef(c.row, (c.col + 1) % 128)
            claimed = c if self.mode == "other_cell_same_coord" else other
            data, proof = sq.cell(other.row, other.col), sq.proof(other.row, other.col)
            return ProvenCell(claimed.row, claimed.col, data, proof)
        return ProvenCell(c.row, c.col, sq.cell(c.row, c.col), sq.proof(c.row, c.col))

    async def get_header(self, height: int, timeout: float) -> RawHeader:
        if not self.headers:
            raise PeerCallFailed(self.name, "NOT_FOUND", "no headers")
        if height == 0:
            return raw(self.headers[-1])
        for signed in self.headers:
            if signed.header.height == height:
                return raw(signed)
        raise PeerCallFailed(self.name, "NOT_FOUND", f"no header {height}")

    async def subscribe_headers(self, from_height: int) -> AsyncGenerator[RawHeader, None]:
        for signed in list(self.headers):
            if signed.header.height >= from_height:
                yield raw(signed)
        while True:
            signed = await self.new_headers.get()
            self.headers.append(signed)
            yield raw(signed)

    async def close(self) -> None:
        pass
