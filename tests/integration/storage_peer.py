"""A test-only peer written against the .proto: it proxies an upstream node's HeaderService and
ShareService.GetSamples, but never serves whole rows (GetRow -> UNAVAILABLE) and answers only the
cells of the original columns 0..63, like a node keeping only the original data square. A storage
node whose only source is this peer must rebuild every row from cells.

    python -m tests.integration.storage_peer --upstream H:P --listen H:P
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc

from da.api.client import open_channel
from da.api.server import HEADER_SERVICE, SHARE_SERVICE, ServerConfig, create_server, stop_server
from da.v1 import da_pb2, da_pb2_grpc

TIMEOUT_SECONDS = 5.0
ORIGINAL_COLUMNS = 64


class Headers(da_pb2_grpc.HeaderServiceServicer):
    def __init__(self, stub: da_pb2_grpc.HeaderServiceStub) -> None:
        self._stub = stub

    async def GetHeader(self, request: Any, context: Any) -> Any:
        try:
            return await self._stub.GetHeader(request, timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), e.details() or "")

    async def SubscribeHeaders(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for header in self._stub.SubscribeHeaders(request):
            yield header


class OriginalCellsOnly(da_pb2_grpc.ShareServiceServicer):
    def __init__(self, stub: da_pb2_grpc.ShareServiceStub) -> None:
        self._stub = stub

    async def GetSamples(self, request: Any, context: Any) -> Any:
        kept = [c for c in request.coords if c.col < ORIGINAL_COLUMNS]
        upstream = da_pb2.GetSamplesRequest(height=request.height, coords=kept)
        try:
            return await self._stub.GetSamples(upstream, timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as e:
            await context.abort(e.code(), e.details() or "")

    async def GetRow(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "this peer does not serve whole rows")


async def main(upstream: str, listen: str) -> None:
    async with open_channel(upstream) as channel:
        servicers = [
            (
                da_pb2_grpc.add_HeaderServiceServicer_to_server,
                Headers(da_pb2_grpc.HeaderServiceStub(channel)),
            ),
            (
                da_pb2_grpc.add_ShareServiceServicer_to_server,
                OriginalCellsOnly(da_pb2_grpc.ShareServiceStub(channel)),
            ),
        ]
        server, _ = await create_server(
            ServerConfig(listen=listen),
            servicers,
            rpc_metrics=None,
            service_names=(HEADER_SERVICE, SHARE_SERVICE),
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await stop_server(server, grace=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--listen", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.upstream, args.listen))
