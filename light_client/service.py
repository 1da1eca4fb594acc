"""`SamplingService` (DESIGN 9): GetAvailability(height) -> status, confidence, samples.

Decode -> look up -> encode. Heights never seen are NOT_FOUND (raised as `UnknownHeight`, mapped
by the one error table in `da.api.errors`); height 0 asks about the head.
"""

from __future__ import annotations

from typing import Any

from da.api.convert import availability_to_pb
from da.errors import UnknownHeight
from da.store.checkpoint import SamplingResult, SamplingStatus
from da.v1 import da_pb2, da_pb2_grpc
from light_client.chain import HeaderChain
from light_client.state import AvailabilityState


def availability(chain: HeaderChain, state: AvailabilityState, height: int) -> SamplingResult:
    """What the client knows about `height` (0 = head); raises `UnknownHeight` if never seen."""
    if height == 0:
        height = chain.head
    result = state.lookup(height)
    if result is not None:
        return result
    if height >= 1 and chain.get(height) is not None:  # accepted, queued for sampling
        return SamplingResult(height, SamplingStatus.SAMPLING, 0.0, 0)
    raise UnknownHeight(height)


class SamplingServicer(da_pb2_grpc.SamplingServiceServicer):
    def __init__(self, chain: HeaderChain, state: AvailabilityState) -> None:
        self._chain = chain
        self._state = state

    async def GetAvailability(  # noqa: N802 - generated name
        self, request: da_pb2.GetAvailabilityRequest, context: Any
    ) -> da_pb2.AvailabilityResponse:
        result = availability(self._chain, self._state, request.height)
        return da_pb2.AvailabilityResponse(
            height=result.height,
            status=availability_to_pb(result.status),
            confidence=result.confidence,
            samples=result.samples,
        )
