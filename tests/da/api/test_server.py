"""create_server around a fake servicer on port 0: auth, rate limit, errors, metrics, health,
reflection, and the refusal to listen beyond loopback without a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from da.api.client import bearer_metadata, open_channel
from da.api.config import BLOB_SERVICE, HEADER_SERVICE, ConfigError, ServerConfig
from da.api.server import create_server, server_health, stop_server
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


SLOW = 100  # a GetHeader or SubscribeHeaders at this height hangs until cancelled


class FakeHeaderService(da_pb2_grpc.HeaderServiceServicer):
    def __init__(self) -> None:
        self.slow_calls = 0  # calls now hanging at SLOW (the limits let them in)

    async def _hang(self) -> None:
        self.slow_calls += 1
        try:
            await asyncio.sleep(3600)
        finally:
            self.slow_calls -= 1

    async def GetHeader(self, request: pb.GetHeaderRequest, context: Any) -> Any:
        if request.height == SLOW:
            await self._hang()
        if request.height > 5:
            raise UnknownHeight(request.height)
        return pb.SignedHeader(header=HEADER, signature=SIGNATURE)

    async def SubscribeHeaders(
        self, request: pb.SubscribeHeadersRequest, context: Any
    ) -> AsyncIterator[pb.SignedHeader]:
        if request.from_height == SLOW:
            await self._hang()
        for height in range(request.from_height, 4):
            yield pb.SignedHeader(header=height.to_bytes(8, "big"), signature=SIGNATURE)
        raise UnknownHeight(4)


HEADERS = FakeHeaderService()
SERVICERS = [
    (da_pb2_grpc.add_BlobServiceServicer_to_server, FakeBlobService()),
    (da_pb2_grpc.add_HeaderServiceServicer_to_server, HEADERS),
]


async def hanging(count: int) -> None:
    """Wait until exactly `count` calls are inside the server, hanging (admitted by the
    limits); calls of an earlier test are gone once their server stopped."""
    async with asyncio.timeout(30):
        while HEADERS.slow_calls != count:
            await asyncio.sleep(0.01)


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
        server.port = port  # type: ignore[attr-defined]  # for tests opening more connections
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


def connections(server: grpc.aio.Server, count: int) -> list[grpc.aio.Channel]:
    """`count` separate client connections (own subchannels) from this host to `server`."""
    return [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{server.port}",  # type: ignore[attr-defined]
            options=[("grpc.use_local_subchannel_pool", 1)],
        )
        for _ in range(count)
    ]


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_open_streams_are_limited_per_host_not_per_connection(serve: Any) -> None:
    """One connection could take every subscription slot; several could too, so the limit is per
    host: with host_streams=2, a third connection's stream is refused, and health still
    answers."""
    async with serve(host_streams=2) as (server, _):
        channels = connections(server, 3)
        stubs = [da_pb2_grpc.HeaderServiceStub(ch) for ch in channels]
        request = pb.SubscribeHeadersRequest(from_height=SLOW)
        # The third stream is started only once the first two hold their slots: calls started
        # together reach the server in any order.
        streams = [s.SubscribeHeaders(request) for s in stubs[:2]]
        open_ = [asyncio.ensure_future(stream.read()) for stream in streams]
        try:
            await hanging(2)
            streams.append(stubs[2].SubscribeHeaders(request))
            error = await refused(asyncio.wait_for(streams[2].read(), 30))
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "open streams" in (error.details() or "")
            health = health_pb2_grpc.HealthStub(channels[2])
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            for stream in streams:
                stream.cancel()
            await asyncio.gather(*open_, return_exceptions=True)
            for ch in channels:
                await ch.close()


async def test_concurrent_calls_are_limited_per_host(serve: Any) -> None:
    async with serve(host_concurrent_calls=2) as (server, channel):
        channels = connections(server, 3)
        stubs = [da_pb2_grpc.HeaderServiceStub(ch) for ch in channels]
        slow = [
            asyncio.ensure_future(s.GetHeader(pb.GetHeaderRequest(height=SLOW), timeout=30))
            for s in stubs[:2]
        ]
        try:
            await hanging(2)
            error = await refused(stubs[2].GetHeader(pb.GetHeaderRequest(height=1), timeout=5))
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "concurrent calls" in (error.details() or "")
        finally:
            for call in slow:
                call.cancel()
            await asyncio.gather(*slow, return_exceptions=True)
            for ch in channels:
                await ch.close()
        # the slots are given back once the calls end
        reply = await da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
            pb.GetHeaderRequest(height=1), timeout=5
        )
        assert reply.signature == SIGNATURE


async def test_call_rate_is_limited_per_host_across_connections(serve: Any) -> None:
    # Each connection may send 1000/s; the host as a whole 0.5/s with a burst of 2.
    async with serve(
        rate_limit_per_second=1000.0, rate_limit_burst=1, host_rate_limit_per_second=0.5
    ) as (server, _):
        channels = connections(server, 3)
        try:
            stubs = [da_pb2_grpc.HeaderServiceStub(ch) for ch in channels]
            for stub in stubs[:2]:
                await stub.GetHeader(pb.GetHeaderRequest(height=1), timeout=5)
            error = await refused(stubs[2].GetHeader(pb.GetHeaderRequest(height=1), timeout=5))
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            for ch in channels:
                await ch.close()


async def test_streams_count_calls_but_stay_out_of_the_latency_histogram(
    serve: Any, registry: CollectorRegistry
) -> None:
    method = "/da.v1.HeaderService/SubscribeHeaders"
    async with serve() as (_, channel):
        stream = da_pb2_grpc.HeaderServiceStub(channel).SubscribeHeaders(
            pb.SubscribeHeadersRequest(from_height=1)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            async for _msg in stream:
                pass
        await da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
            pb.GetHeaderRequest(height=1), timeout=5
        )
    assert (
        registry.get_sample_value("da_grpc_requests_total", {"method": method, "code": "NOT_FOUND"})
        == 1
    )
    assert not registry.get_sample_value("da_grpc_request_seconds_count", {"method": method})
    unary = {"method": "/da.v1.HeaderService/GetHeader"}
    assert registry.get_sample_value("da_grpc_request_seconds_count", unary) == 1


async def test_tls_with_a_ca_option(tmp_path: Path) -> None:
    """A TLS server is reached by a channel that trusts its CA (`tls_ca`), and not by one
    that does not."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other.pem"))
    config = ServerConfig(
        listen="127.0.0.1:0", tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem"
    )
    server, port = await create_server(
        config, SERVICERS, rpc_metrics=None, service_names=[HEADER_SERVICE]
    )
    try:
        async with open_channel(f"localhost:{port}", tls_ca=tmp_path / "ca.pem") as channel:
            reply = await da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
                pb.GetHeaderRequest(height=1), timeout=5
            )
            assert reply.signature == SIGNATURE
        async with open_channel(f"localhost:{port}", tls_ca=tmp_path / "other.pem") as channel:
            error = await refused(
                da_pb2_grpc.HeaderServiceStub(channel).GetHeader(
                    pb.GetHeaderRequest(height=1), timeout=5
                )
            )
            assert error.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await stop_server(server, grace=None)


def test_read_only_servers_listen_anywhere_without_a_token() -> None:
    """PROTOCOL.md §11: only a server with a write method (the producer's SubmitBlob) needs a token
    or --insecure beyond loopback."""
    ServerConfig(listen="0.0.0.0:0", write_methods=frozenset()).validate()
    with pytest.raises(ConfigError, match="beyond loopback"):
        ServerConfig(listen="0.0.0.0:0").validate()


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
