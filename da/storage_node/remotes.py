"""The producer and peers as seen by a storage node: one channel each, and every call it makes
with a timeout, converting answers at the edge (`da.api.convert`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from da.api import convert
from da.api.client import describe_rpc_error, open_channel
from da.cells import ProvenCell
from da.certificate import Attestation
from da.header import SignedHeader
from da.sampling import CellRef
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.constants import CELLS_PER_EXT_ROW
from erasure.errors import InvalidCell

RemoteError = (grpc.aio.AioRpcError, TimeoutError)
"""What a call to another node raises when that node fails us (retry elsewhere or later)."""


def describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return describe_rpc_error(error)
    return f"{type(error).__name__}: {error}"


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.NOT_FOUND


@dataclass
class Remote:
    """One node we read from (the producer or a peer storage node)."""

    address: str
    timeout: float
    is_producer: bool = False
    channel: grpc.aio.Channel = field(init=False, repr=False)

    def open(self, tls_ca: Path | None = None) -> Remote:
        self.channel = open_channel(self.address, tls_ca=tls_ca)
        return self

    async def close(self) -> None:
        await self.channel.close()

    @property
    def name(self) -> str:
        return f"{'producer' if self.is_producer else 'peer'} {self.address}"

    async def get_header(self, height: int) -> SignedHeader:
        """The header at `height` (0: latest), form-checked only."""
        stub = da_pb2_grpc.HeaderServiceStub(self.channel)
        msg = await stub.GetHeader(pb.GetHeaderRequest(height=height), timeout=self.timeout)
        return convert.signed_header_from_pb(msg)

    async def subscribe(self, from_height: int) -> AsyncGenerator[SignedHeader, None]:
        """Headers from `from_height` on, as the remote stores them (no overall timeout: the
        caller bounds the wait for each one)."""
        stub = da_pb2_grpc.HeaderServiceStub(self.channel)
        call = stub.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=from_height))
        try:
            async for msg in call:
                yield convert.signed_header_from_pb(msg)
        finally:
            call.cancel()

    async def get_row(self, height: int, row: int, k: int) -> tuple[list[bytes], list[bytes]]:
        """The 128 cells and proofs of a row, unverified; lengths and coordinates checked
        (InvalidCell/InvalidProof for a malformed answer)."""
        stub = da_pb2_grpc.ShareServiceStub(self.channel)
        msg = await stub.GetRow(pb.GetRowRequest(height=height, row=row), timeout=self.timeout)
        cells = convert.cells_from_pb(msg.cells, k)
        if [(c.row, c.col) for c in cells] != [(row, col) for col in range(CELLS_PER_EXT_ROW)]:
            raise InvalidCell(f"GetRow({height}, {row}) answered other cells", row)
        return [c.data for c in cells], [c.proof for c in cells]

    async def get_samples(
        self, height: int, refs: Sequence[CellRef], k: int
    ) -> dict[CellRef, ProvenCell]:
        """The cells served of those asked for (a node may serve only some), keyed by
        coordinate; a cell claiming a coordinate not asked for is dropped, so each is verified
        against a coordinate we chose. Unverified here; lengths checked."""
        stub = da_pb2_grpc.ShareServiceStub(self.channel)
        request = pb.GetSamplesRequest(height=height, coords=convert.coordinates_to_pb(refs))
        msg = await stub.GetSamples(request, timeout=self.timeout)
        asked = set(refs)
        return {c.ref: c for c in convert.cells_from_pb(msg.cells, k) if c.ref in asked}

    async def attest(self, attestation: Attestation) -> bool:
        """Send one attestation (authenticated by its signature: no token, PROTOCOL.md §11)."""
        stub = da_pb2_grpc.AttestationServiceStub(self.channel)
        msg = await stub.Attest(convert.attestation_to_pb(attestation), timeout=self.timeout)
        return bool(msg.accepted)


def ordered(remotes: Sequence[Remote], first: Remote | None) -> list[Remote]:
    """`remotes` with `first` moved to the front (where the header came from)."""
    rest = [r for r in remotes if r is not first]
    return [first, *rest] if first is not None else rest
