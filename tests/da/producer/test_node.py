"""The producer in-process over gRPC (encoding without a worker pool): error codes through the one
table, auth on write methods, status lifecycle, metrics, clean shutdown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from da.api.config import ServerConfig
from da.config import ProducerConfig
from da.header import header_hash
from da.producer import node as producer_node
from da.producer.node import ProducerNode, start
from da.signing import write_key_file
from da.store.rocks import open_store
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.da.producer.conftest import CHAIN_ID, PRODUCER_KEY

TOKEN = "s3cret-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def config(tmp_path: Path, listen: str = "127.0.0.1:0", **kw: object) -> ProducerConfig:
    key_file = tmp_path / "producer.key"
    if not key_file.exists():
        write_key_file(key_file, PRODUCER_KEY)
    return ProducerConfig(
        data_dir=tmp_path / "data",
        key_file=key_file,
        chain_id=CHAIN_ID,
        server=ServerConfig(listen=listen, auth_token=TOKEN),
        max_rows=2,
        workers=1,
        block_time_seconds=0.1,
        **kw,  # type: ignore[arg-type]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[ProducerNode, grpc.aio.Channel]]:
    async with AsyncExitStack() as stack:
        started = await start(stack, config(tmp_path), make_executor=lambda _: None)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{started.port}")
        stack.push_async_callback(channel.close)
        yield started, channel


async def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_submission_errors_map_through_the_table(node) -> None:  # type: ignore[no-untyped-def]
    started, channel = node
    blobs = da_pb2_grpc.BlobServiceStub(channel)

    def submit(namespace: bytes, data: bytes):  # type: ignore[no-untyped-def]
        req = pb.SubmitBlobRequest(namespace=namespace, data=data)
        return blobs.SubmitBlob(req, metadata=AUTH, timeout=5)

    assert await code_of(submit(b"", b"x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(submit(bytes(29), b"x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(submit(b"\x01", b"")) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = b"x" * (2 * 64 * 1984 + 1)  # one byte more than a max_rows=2 square holds
    assert await code_of(submit(b"\x01", too_big)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    unknown = pb.GetBlobStatusRequest(blob_hash=bytes(32))
    assert await code_of(blobs.GetBlobStatus(unknown, timeout=5)) == grpc.StatusCode.NOT_FOUND
    short = pb.GetBlobStatusRequest(blob_hash=b"\x01")
    assert await code_of(blobs.GetBlobStatus(short, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    ok = await submit(b"\x01", b"fine")
    assert ok.status.state == pb.PENDING
    registry = started.registry
    for result, count in (("invalid", 3), ("too_large", 1), ("accepted", 1)):
        value = registry.get_sample_value("da_blob_submissions_total", {"result": result})
        assert value == count, result
    assert registry.get_sample_value("da_producer_pending_blobs") == 1


async def test_only_submit_blob_needs_the_bearer_token(node) -> None:  # type: ignore[no-untyped-def]
    _, channel = node
    blobs = da_pb2_grpc.BlobServiceStub(channel)
    req = pb.SubmitBlobRequest(namespace=b"\x01", data=b"x")
    assert await code_of(blobs.SubmitBlob(req, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    bad = (("authorization", "Bearer nope"),)
    assert await code_of(blobs.SubmitBlob(req, metadata=bad, timeout=5)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    # PROTOCOL.md §11: Attest takes no token (its signature authenticates it): an empty attestation
    # is refused as malformed, not as unauthenticated.
    attest = da_pb2_grpc.AttestationServiceStub(channel).Attest(pb.Attestation(), timeout=5)
    assert await code_of(attest) == grpc.StatusCode.INVALID_ARGUMENT
    # reads need no token
    head = da_pb2_grpc.HeaderServiceStub(channel).GetHeader(pb.GetHeaderRequest(), timeout=5)
    assert await code_of(head) == grpc.StatusCode.NOT_FOUND


async def test_status_follows_the_blob_and_reads_serve_the_block(node) -> None:  # type: ignore[no-untyped-def]
    started, channel = node
    blobs = da_pb2_grpc.BlobServiceStub(channel)
    req = pb.SubmitBlobRequest(namespace=b"\x01", data=b"follow me")
    sent = await blobs.SubmitBlob(req, metadata=AUTH, timeout=5)
    again = await blobs.SubmitBlob(req, metadata=AUTH, timeout=5)
    assert again.blob_hash == sent.blob_hash and again.status.state == pb.PENDING
    headers = da_pb2_grpc.HeaderServiceStub(channel)
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1), timeout=10)
    await started.producer.produce_once()
    published = await stream.read()
    stream.cancel()
    assert header_hash(published.header) == started.producer.tip.hash
    status = await blobs.GetBlobStatus(pb.GetBlobStatusRequest(blob_hash=sent.blob_hash), timeout=5)
    assert (status.state, status.height) == (pb.INCLUDED, 1)
    dup = await blobs.SubmitBlob(req, metadata=AUTH, timeout=5)
    assert dup.status.state == pb.INCLUDED and dup.status.height == 1
    got = await blobs.GetBlobs(pb.GetBlobsRequest(height=1, namespace=b"\x01"), timeout=5)
    assert [b.data for b in got.blobs] == [b"follow me"]
    cert = da_pb2_grpc.AttestationServiceStub(channel).GetCertificate(
        pb.GetCertificateRequest(height=1), timeout=5
    )
    assert await code_of(cert) == grpc.StatusCode.NOT_FOUND


async def test_run_stops_cleanly_when_cancelled(tmp_path: Path) -> None:
    cfg = config(tmp_path, listen=f"127.0.0.1:{free_port()}")
    task = asyncio.create_task(producer_node.run(cfg, make_executor=lambda _: None))
    async with grpc.aio.insecure_channel(cfg.server.listen) as channel:
        blobs = da_pb2_grpc.BlobServiceStub(channel)
        req = pb.SubmitBlobRequest(namespace=b"\x01", data=b"before shutdown")
        sent = await blobs.SubmitBlob(req, metadata=AUTH, timeout=10, wait_for_ready=True)
        for _ in range(100):
            status = await blobs.GetBlobStatus(
                pb.GetBlobStatusRequest(blob_hash=sent.blob_hash), timeout=5
            )
            if status.state == pb.INCLUDED:
                break
            await asyncio.sleep(0.1)
        assert status.state == pb.INCLUDED
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store = open_store(cfg.data_dir / producer_node.STORE_DIR)  # the lock was released
    store.close()
