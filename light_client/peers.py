"""The light client's view of a storage node: headers and cells over gRPC, and a pool of peers
with per-peer rate limits and shunning.

`Peer` is a Protocol so the sampler and the header sync can be tested with in-process fakes;
`GrpcPeer` is the real one and the only place here that touches protobuf messages. Every call
has a timeout; every failure becomes `PeerCallFailed` (retry elsewhere). Answers are only shaped
here (`RawHeader`, `da.cells.ProvenCell`): whether to believe them is for `chain` and `sampler`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from asyncio_throttle import Throttler

from da.api.client import open_channel
from da.api.config import DEFAULT_MAX_MESSAGE_BYTES
from da.api.convert import coordinates_to_pb, served_cells_from_pb
from da.cells import ProvenCell
from da.header import max_header_bytes
from da.sampling import MAX_SAMPLES_PER_REQUEST, CellRef
from da.signing import SIGNATURE_BYTES
from da.v1 import da_pb2, da_pb2_grpc
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF
from light_client.errors import PeerCallFailed

DEFAULT_SHUN_SECONDS = 60.0  # how long a peer that served a bad proof is not asked again


@dataclass(frozen=True)
class RawHeader:
    """Header bytes and signature exactly as a peer sent them (not yet decoded or trusted)."""

    header: bytes
    signature: bytes


class Peer(Protocol):
    """A storage node (or anything serving HeaderService and ShareService)."""

    @property
    def name(self) -> str: ...

    async def get_header(self, height: int, timeout: float) -> RawHeader:
        """The signed header at `height` (0 = latest); raises `PeerCallFailed`."""
        ...

    def subscribe_headers(self, from_height: int) -> AsyncGenerator[RawHeader, None]:
        """Headers from `from_height` on, then new ones as they come; raises `PeerCallFailed`."""
        ...

    async def get_samples(
        self, height: int, coords: Sequence[CellRef], timeout: float
    ) -> list[ProvenCell]:
        """The peer's answer for `coords` at `height`; raises `PeerCallFailed`."""
        ...

    async def close(self) -> None: ...


def max_reply_bytes(max_rows: int) -> int:
    """The largest answer a light client accepts from a peer: a header of a `max_rows` square
    or a full GetSamples reply, whichever is larger, with room for framing (a few hundred KiB
    at the default k = 64, not the storage node's 32 MiB)."""
    samples = MAX_SAMPLES_PER_REQUEST * (BYTES_PER_CELL + BYTES_PER_PROOF + 16)
    return max(max_header_bytes(max_rows) + SIGNATURE_BYTES, samples) + 64 * 1024


class GrpcPeer:
    """A peer reached over gRPC: TLS verified against `tls_ca` (PEM) if given, else plaintext
    (loopback or a private network); answers larger than `max_message_bytes` are refused."""

    def __init__(
        self,
        address: str,
        *,
        tls_ca: Path | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._address = address
        self._channel = open_channel(address, tls_ca=tls_ca, max_message_bytes=max_message_bytes)
        self._headers = da_pb2_grpc.HeaderServiceStub(self._channel)
        self._shares = da_pb2_grpc.ShareServiceStub(self._channel)

    @property
    def name(self) -> str:
        return self._address

    async def get_header(self, height: int, timeout: float) -> RawHeader:
        request = da_pb2.GetHeaderRequest(height=height)
        try:
            reply = await self._headers.GetHeader(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise self._failed(e) from e
        return RawHeader(bytes(reply.header), bytes(reply.signature))

    async def subscribe_headers(self, from_height: int) -> AsyncGenerator[RawHeader, None]:
        call = self._headers.SubscribeHeaders(
            da_pb2.SubscribeHeadersRequest(from_height=from_height)
        )
        try:
            async for reply in call:
                yield RawHeader(bytes(reply.header), bytes(reply.signature))
        except grpc.aio.AioRpcError as e:
            raise self._failed(e) from e
        finally:
            call.cancel()

    async def get_samples(
        self, height: int, coords: Sequence[CellRef], timeout: float
    ) -> list[ProvenCell]:
        served = []
        for start in range(0, len(coords), MAX_SAMPLES_PER_REQUEST):  # the protocol's limit
            chunk = coords[start : start + MAX_SAMPLES_PER_REQUEST]
            request = da_pb2.GetSamplesRequest(height=height, coords=coordinates_to_pb(chunk))
            try:
                reply = await self._shares.GetSamples(request, timeout=timeout)
            except grpc.aio.AioRpcError as e:
                raise self._failed(e) from e
            served += served_cells_from_pb(reply.cells)
        return served

    async def announce(self, port: int, timeout: float) -> int:
        """Tell the peer we serve our samples on `port` (PROTOCOL.md §13); returns for how many
        seconds it keeps us listed (0: refused)."""
        stub = da_pb2_grpc.SamplerRegistryStub(self._channel)
        try:
            reply = await stub.AnnounceSampler(
                da_pb2.AnnounceSamplerRequest(port=port), timeout=timeout
            )
        except grpc.aio.AioRpcError as e:
            raise self._failed(e) from e
        return int(reply.ttl_seconds) if reply.accepted else 0

    async def close(self) -> None:
        await self._channel.close()

    def _failed(self, error: grpc.aio.AioRpcError) -> PeerCallFailed:
        return PeerCallFailed(self._address, error.code().name, error.details() or "")


class PeerPool:
    """The peers to sample from: who may be asked now, and each peer's outgoing rate limit.

    A peer that served a bad proof is shunned for `shun_seconds` (it is provably lying or broken);
    a peer that merely failed is not, since lagging behind is honest.
    """

    def __init__(
        self,
        peers: Sequence[Peer],
        *,
        requests_per_second: float,
        shun_seconds: float = DEFAULT_SHUN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_shun: Callable[[], None] = lambda: None,
    ) -> None:
        if not peers:
            raise ValueError("a peer pool needs at least one peer")
        self.peers = tuple(peers)
        self._shun_seconds = shun_seconds
        self._clock = clock
        self._on_shun = on_shun  # a peer newly set aside (`da_light_peers_shunned_total`)
        self._shunned_until: dict[str, float] = {}
        burst = max(1, round(requests_per_second))
        self._throttles = {
            p.name: Throttler(rate_limit=burst, period=burst / requests_per_second)
            for p in self.peers
        }

    def usable(self) -> list[Peer]:
        """Peers not currently shunned."""
        now = self._clock()
        return [p for p in self.peers if self._shunned_until.get(p.name, 0.0) <= now]

    def next_unshun_time(self) -> float | None:
        """When the earliest shunned peer becomes usable again (None if none is shunned)."""
        now = self._clock()
        times = [t for t in self._shunned_until.values() if t > now]
        return min(times) if times else None

    def shun(self, peer: Peer) -> None:
        if not self.is_shunned(peer):
            self._on_shun()
        self._shunned_until[peer.name] = self._clock() + self._shun_seconds

    def is_shunned(self, peer: Peer) -> bool:
        return self._shunned_until.get(peer.name, 0.0) > self._clock()

    def throttle(self, peer: Peer) -> Throttler:
        """`async with pool.throttle(peer):` waits for a slot in the peer's rate limit."""
        return self._throttles[peer.name]

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
