"""The light client's gRPC services (PROTOCOL.md §9 and §13).

- `SamplingServicer`: GetAvailability(height) -> status, confidence, samples; and
  GetHeldSamples(height) -> every sample kept for that height, only once its verdict is final
  (revealing coordinates earlier would help an adversary aim).
- `ChainHeaders`: the headers this client verified, served by `da.serving.HeaderServicer`
  (GetHeader, 0 = latest; SubscribeHeaders), so a storage node can follow the chain from light
  clients.

Decode -> look up -> encode. Heights never seen (or pruned) are NOT_FOUND (raised as
`UnknownHeight`, mapped by the one error table in `da.api.errors`); height 0 asks about the head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from da.api.convert import availability_to_pb, proven_cell_to_pb
from da.errors import NotSampled, UnknownHeight
from da.store.base import KeyValueStore
from da.store.checkpoint import SamplingResult, SamplingStatus
from da.store.headers import lowest_header_height
from da.store.held import get_held
from da.v1 import da_pb2, da_pb2_grpc
from light_client.chain import HeaderChain
from light_client.state import AvailabilityState

ServedCounter = Callable[[int], None]
# At most this many cells per GetHeldSamples reply (~17 MB, under the 32 MiB message limit): a
# client configured to sample more keeps them all but serves the first this many.
MAX_HELD_CELLS_PER_REPLY = 8192


def availability(chain: HeaderChain, state: AvailabilityState, height: int) -> SamplingResult:
    """What the client knows about `height` (0 = head): its verdict on the header it holds
    there, SAMPLING while one is coming; raises `UnknownHeight` if never seen, `NotSampled`
    if skipped. A verdict naming another header than the one held is no verdict on it."""
    if height == 0:
        height = chain.head
    result = state.lookup(height)
    signed = chain.get(height) if height >= 1 else None
    if result is not None and (signed is None or result.header_hash in (b"", signed.hash)):
        return result
    if signed is not None:
        if height <= state.checkpoint:  # skipped: below the backlog, no verdict will come
            raise NotSampled(height)
        return SamplingResult(height, SamplingStatus.SAMPLING, 0.0, 0)  # queued for sampling
    raise UnknownHeight(height)


def held_samples(
    store: KeyValueStore, state: AvailabilityState, height: int
) -> da_pb2.GetSamplesResponse:
    """The kept samples of `height` once its verdict is final; else `UnknownHeight`."""
    result = state.lookup(height) if height >= 1 else None
    if result is None or result.status is SamplingStatus.SAMPLING:
        raise UnknownHeight(height)
    cells = get_held(store, height)
    if cells is None:
        raise UnknownHeight(height)
    return da_pb2.GetSamplesResponse(
        cells=[proven_cell_to_pb(c) for c in cells[:MAX_HELD_CELLS_PER_REPLY]]
    )


def _ignore(_count: int) -> None:
    return None


class SamplingServicer(da_pb2_grpc.SamplingServiceServicer):
    def __init__(
        self,
        chain: HeaderChain,
        state: AvailabilityState,
        store: KeyValueStore | None = None,
        *,
        on_served: ServedCounter = _ignore,
    ) -> None:
        self._chain = chain
        self._state = state
        self._store = store
        self._on_served = on_served

    async def GetAvailability(  # noqa: N802 - generated name
        self, request: da_pb2.GetAvailabilityRequest, context: Any
    ) -> da_pb2.AvailabilityResponse:
        result = availability(self._chain, self._state, request.height)
        return da_pb2.AvailabilityResponse(
            height=result.height,
            status=availability_to_pb(result.status),
            confidence=result.confidence,
            samples=result.samples,
            header_hash=result.header_hash,
        )

    async def GetHeldSamples(  # noqa: N802 - generated name
        self, request: da_pb2.GetHeldSamplesRequest, context: Any
    ) -> da_pb2.GetSamplesResponse:
        if self._store is None:
            raise UnknownHeight(request.height)
        reply = held_samples(self._store, self._state, request.height)
        self._on_served(len(reply.cells))
        return reply


class ChainHeaders:
    """The headers this client verified, as a `da.serving.HeaderSource`: from the lowest height
    whose samples are still kept (older ones are pruned with them) to the head."""

    def __init__(self, chain: HeaderChain, store: KeyValueStore) -> None:
        self._chain = chain
        self._store = store

    def head(self) -> int:
        return self._chain.head

    def lowest(self) -> int:
        return lowest_header_height(self._store)

    def signed_header(self, height: int) -> tuple[bytes, bytes] | None:
        signed = self._chain.get(height) if height >= max(1, self.lowest()) else None
        return None if signed is None else (signed.raw, signed.signature)
