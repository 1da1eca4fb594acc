"""`light_client.node.run` end to end in one process: a fake storage node served over real gRPC
(HeaderService, ShareService), the light client's SamplingService, health and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from da.api.config import HEADER_SERVICE, SHARE_SERVICE, ServerConfig
from da.api.server import create_server, stop_server
from da.header import SignedHeader
from da.sampling import sample_confidence
from da.signing import KeyPair
from da.v1 import da_pb2, da_pb2_grpc
from erasure.square import ExtendedSquare
from light_client.config import LightClientConfig
from light_client.errors import PeerCallFailed
from light_client.node import run
from light_client.peers import GrpcPeer, max_reply_bytes
from tests.integration.harness import free_port
from tests.light_client.fakes import CHAIN_ID, signed_chain


class FakeStorageNode(da_pb2_grpc.HeaderServiceServicer, da_pb2_grpc.ShareServiceServicer):
    def __init__(self, square: ExtendedSquare, headers: list[SignedHeader]) -> None:
        self.square = square
        self.headers = headers

    async def GetHeader(self, request: Any, context: Any) -> Any:  # noqa: N802
        height = request.height or len(self.headers)
        if not 1 <= height <= len(self.headers):
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such height")
        signed = self.headers[height - 1]
        return da_pb2.SignedHeader(header=signed.raw, signature=signed.signature)

    async def SubscribeHeaders(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        for signed in self.headers[max(0, request.from_height - 1) :]:
            yield da_pb2.SignedHeader(header=signed.raw, signature=signed.signature)
        await asyncio.Event().wait()

    async def GetSamples(self, request: Any, context: Any) -> Any:  # noqa: N802
        cells = [
            da_pb2.Cell(
                row=c.row,
                col=c.col,
                data=self.square.cell(c.row, c.col),
                proof=self.square.proof(c.row, c.col),
            )
            for c in request.coords
        ]
        return da_pb2.GetSamplesResponse(cells=cells)


async def test_run_serves_availability_health_and_metrics(
    tmp_path: Path, square: ExtendedSquare, key: KeyPair
) -> None:
    fake = FakeStorageNode(square, signed_chain(square, key, 3))
    node_server, node_port = await create_server(
        ServerConfig(),
        [
            (da_pb2_grpc.add_HeaderServiceServicer_to_server, fake),
            (da_pb2_grpc.add_ShareServiceServicer_to_server, fake),
        ],
        rpc_metrics=None,
        service_names=[HEADER_SERVICE, SHARE_SERVICE],
    )
    port, metrics_port = free_port(), free_port()
    config = LightClientConfig(
        data_dir=tmp_path,
        peers=(f"127.0.0.1:{node_port}",),
        chain_id=CHAIN_ID,
        trusted_keys=(key.public.hex(),),
        server=ServerConfig(listen=f"127.0.0.1:{port}"),
        metrics_port=metrics_port,
    )
    task = asyncio.create_task(run(config))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_available(channel, 3)
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = da_pb2_grpc.SamplingServiceStub(channel)
            got = await stub.GetAvailability(da_pb2.GetAvailabilityRequest(height=2), timeout=2)
            assert got.status == da_pb2.AVAILABLE and got.samples == 7
            assert got.confidence == sample_confidence(1, 7)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetAvailability(da_pb2.GetAvailabilityRequest(height=9), timeout=2)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        text = await asyncio.to_thread(scrape, metrics_port)
        assert 'da_light_headers_sampled_total{result="available"} 3.0' in text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stop_server(node_server, grace=0)


async def wait_available(channel: grpc.aio.Channel, heights: int) -> None:
    stub = da_pb2_grpc.SamplingServiceStub(channel)
    async with asyncio.timeout(20):
        for height in range(1, heights + 1):
            while True:
                try:
                    got = await stub.GetAvailability(
                        da_pb2.GetAvailabilityRequest(height=height), timeout=2
                    )
                    if got.status == da_pb2.AVAILABLE:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)


def scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


class OversizedHeaders(da_pb2_grpc.HeaderServiceServicer):
    """A peer answering GetHeader with `size` bytes (a hostile or broken storage node)."""

    def __init__(self, size: int) -> None:
        self.size = size

    async def GetHeader(self, request: Any, context: Any) -> Any:  # noqa: N802
        return da_pb2.SignedHeader(header=b"\x00" * self.size, signature=b"")


async def test_a_peer_answer_above_max_reply_bytes_is_refused() -> None:
    limit = max_reply_bytes(64)
    servers = []
    try:
        results = []
        for size in (limit - 4096, limit + 1):  # within (framing included), and above
            server, port = await create_server(
                ServerConfig(),
                [(da_pb2_grpc.add_HeaderServiceServicer_to_server, OversizedHeaders(size))],
                rpc_metrics=None,
                service_names=[HEADER_SERVICE],
            )
            servers.append(server)
            peer = GrpcPeer(f"127.0.0.1:{port}", max_message_bytes=limit)
            try:
                results.append(len((await peer.get_header(1, timeout=5)).header))
            except PeerCallFailed as e:
                results.append(e.args[1])
            finally:
                await peer.close()
        assert results == [limit - 4096, "RESOURCE_EXHAUSTED"]
    finally:
        for server in servers:
            await stop_server(server, grace=0)
