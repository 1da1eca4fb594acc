"""create_server around a fake servicer on port 0: auth, rate limit, errors, metrics, health,
reflection, and the refusal to listen beyond loopback without a token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from da.api.client import bearer_metadata, open_channel
from da.api.server import (
    BLOB_SERVICE,
    HEADER_SERVICE,
    ConfigError,
    ServerConfig,
    create_server,
    server_health,
    stop_server,
)
from da.errors import UnknownHeight
from da.metrics import RpcMetrics
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

TOKEN = "s3cret-token"
HEADER = b"h" * 10
SIGNATURE = b"s" * 96


class FakeBlobService(da_pb2_grpc.BlobServiceServicer):
    async def SubmitBlob(self, request: pb.SubmitBlobRequest, context: Any) -> Any:
        return pb.SubmitBlobResponse(blob_hash=b"\x01" * 32, status=pb.BlobStatus(state=pb.PENDING))

    async def GetBlobStatus(self, request: pb.GetBlobStatusRequest, context: Any) -> Any:
        raise RuntimeError("boom: secret internals")


class FakeHeaderService(da_pb2_grpc.HeaderServiceServicer):
    async def GetHeader(self, request: pb.GetHeaderRequest, context: Any) -> Any:
        if request.height > 5:
            raise UnknownHeight(request.height)
        return pb.SignedHeader(header=HEADER, signature=SIGNATURE)

    async def SubscribeHeaders(
        self, request: pb.SubscribeHeadersRequest, context: Any
    ) -> AsyncIterator[pb.SignedHeader]:
        for height in range(request.from_height, 4):
            yield pb.SignedHeader(header=height.to_bytes(8, "big"), signature=SIGNATURE)
        raise UnknownHeight(4)


SERVICERS = [
    (da_pb2_grpc.add_BlobServiceServicer_to_server, FakeBlobService()),
    (da_pb2_grpc.add_HeaderServiceServicer_to_server, FakeHeaderService()),
]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def serve(registry: CollectorRegistry) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[grpc.aio.Server, grpc.aio.Channel]]:
        config = replace(ServerConfig(listen="127.0.0.1:0"), **overrides)
        server, port = await create_server(
            config,
            SERVICERS,
            rpc_metrics=RpcMetrics(registry),
            service_names=[BLOB_SERVICE, HEADER_SERVICE],
        )
        assert port > 0
        channel = open_channel(f"127.0.0.1:{port}")
        try:
            yield server, channel
        finally:
            await channel.close()
            await stop_server(server, grace=None)

    return start


def submit(channel: grpc.aio.Channel) -> Any:
    return da_pb2_grpc.BlobServiceStub(channel).SubmitBlob


async def test_write_method_open_without_configured_token(serve: Any) -> None:
    async with serve() as (_, channel):
        reply = await submit(channel)(pb.SubmitBlobRequest(namespace=b"n", data=b"d"), timeout=5)
    assert reply.status.state == pb.PENDING


@pytest.mark.parametrize(
    "metadata",
    [(), bearer_metadata("wrong"), (("authorization", TOKEN),)],
    ids=["missing", "bad", "no-bearer-prefix"],
)
async def test_write_method_rejects_missing_or_bad_token(serve: Any, metadata: Any) -> None:
    async with serve(auth_token=TOKEN) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await submit(channel)(pb.SubmitBlobRequest(), metadata=metadata, timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_write_method_accepts_good_token_and_reads_need_none(serve: Any) -> None:
    async with serve(auth_token=TOKEN) as (_, channel):
        request = pb.SubmitBlobRequest(namespace=b"n", data=b"d")
        reply = await submit(channel)(request, metadata=bearer_metadata(TOKEN), timeout=5)
        header = await da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
            pb.GetHeaderRequest(height=1), timeout=5
        )
    assert reply.blob_hash == b"\x01" * 32
    assert header.signature == SIGNATURE


async def test_rate_limit_answers_resource_exhausted(serve: Any) -> None:
    async with serve(rate_limit_per_second=1.0, rate_limit_burst=2) as (_, channel):
        stub = da_pb2_grpc.HeaderServiceStub(channel)
        for _ in range(2):
            await stub.GetHeader(pb.GetHeaderRequest(height=1), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetHeader(pb.GetHeaderRequest(height=1), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit" in (info.value.details() or "")


async def test_errors_map_through_the_table_and_metrics_see_codes(
    serve: Any, registry: CollectorRegistry
) -> None:
    async with serve() as (_, channel):
        headers = da_pb2_grpc.HeaderServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await headers.GetHeader(pb.GetHeaderRequest(height=9), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as internal:
            await da_pb2_grpc.BlobServiceStub(channel).GetBlobStatus(
                pb.GetBlobStatusRequest(), timeout=5
            )
        await headers.GetHeader(pb.GetHeaderRequest(height=1), timeout=5)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "no block at height 9"
    assert internal.value.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in (internal.value.details() or "")

    def count(method: str, code: str) -> float | None:
        labels = {"method": f"/da.v1.{method}", "code": code}
        return registry.get_sample_value("da_grpc_requests_total", labels)

    assert count("HeaderService/GetHeader", "NOT_FOUND") == 1
    assert count("HeaderService/GetHeader", "OK") == 1
    assert count("BlobService/GetBlobStatus", "INTERNAL") == 1


async def test_streaming_errors_map_after_items(serve: Any) -> None:
    async with serve() as (_, channel):
        call = da_pb2_grpc.HeaderServiceStub(channel).SubscribeHeaders(
            pb.SubscribeHeadersRequest(from_height=1), timeout=5
        )
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for signed in call:
                received.append(int.from_bytes(signed.header, "big"))
    assert received == [1, 2, 3]
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "streaming"),
    [("/da.v1.HeaderService/GetHeader", False), ("/da.v1.HeaderService/SubscribeHeaders", True)],
)
async def test_malformed_request_bytes_are_invalid_argument(
    serve: Any, method: str, streaming: bool
) -> None:
    # b"\x0a\xff\x01": field 1 with a truncated length, not a protobuf of any request type.
    async with serve() as (_, channel):
        make = channel.unary_stream if streaming else channel.unary_unary
        call = make(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            if streaming:
                async for _ in call(b"\x0a\xff\x01", timeout=5):
                    pass
            else:
                await call(b"\x0a\xff\x01", timeout=5)
        header = await da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
            pb.GetHeaderRequest(height=1), timeout=5
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert header.signature == SIGNATURE  # still serving


async def test_health_serving_then_not_serving(serve: Any) -> None:
    async with serve() as (server, channel):
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", BLOB_SERVICE, HEADER_SERVICE):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await server_health(server).enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=BLOB_SERVICE), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_stop_server_flips_health_before_stopping(serve: Any) -> None:
    async with serve() as (server, _):
        health = server_health(server)
        await stop_server(server, grace=None)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_services(serve: Any) -> None:
    async with serve() as (_, channel):
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        call = stub.ServerReflectionInfo(iter([request]), timeout=5)
        names = {s.name async for reply in call for s in reply.list_services_response.service}
    assert {BLOB_SERVICE, HEADER_SERVICE, "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "10.1.2.3:7000", "example.org:7000"])
async def test_refuses_beyond_loopback_without_token(listen: str) -> None:
    with pytest.raises(ConfigError, match="beyond loopback"):
        await create_server(
            ServerConfig(listen=listen), SERVICERS, rpc_metrics=None, service_names=[BLOB_SERVICE]
        )


@pytest.mark.parametrize(
    "config",
    [
        ServerConfig(listen="0.0.0.0:0", auth_token=TOKEN),
        ServerConfig(listen="0.0.0.0:0", insecure=True),
        ServerConfig(listen="localhost:0"),
        ServerConfig(listen="[::1]:0"),
    ],
)
def test_accepted_listen_settings(config: ServerConfig) -> None:
    config.validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen": "127.0.0.1"}, "host:port"),
        ({"listen": "127.0.0.1:99999"}, "0..65535"),
        ({"auth_token": "  "}, "empty"),
        ({"tls_cert": "cert.pem"}, "together"),
        ({"rate_limit_burst": 0}, "burst"),
        ({"rate_limit_per_second": -1.0}, "rate_limit_per_second"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
    ],
)
def test_server_config_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(ServerConfig(), **overrides).validate()


def test_auth_token_never_in_repr() -> None:
    assert TOKEN not in repr(ServerConfig(auth_token=TOKEN))
