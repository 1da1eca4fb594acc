"""The shared read side (da.serving) over a MemoryStore holding real signed blocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from da import serving
from da.api.config import HEADER_SERVICE, SHARE_SERVICE, ServerConfig
from da.api.errors import status_for
from da.api.server import create_server, stop_server
from da.errors import BadCoordinate, InvalidRequest, ResourceExhausted, UnknownHeight
from da.header import signed_header_from_bytes
from da.store import blocks, schema
from da.store import headers as header_store
from da.store.errors import CorruptValueError
from da.store.memory import MemoryStore
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure import kzg
from erasure.constants import BYTES_PER_CELL, BYTES_PER_PROOF, CELLS_PER_EXT_ROW
from erasure.errors import InvalidNamespace
from tests.da.storage_node.chain import NS_A, NS_B, blobs_for, chain, store_block


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    for block in chain(3, big_at=(3,)):
        store_block(s, block)
    return s


def coords(*pairs: tuple[int, int]) -> list[pb.CellCoord]:
    return [pb.CellCoord(row=r, col=c) for r, c in pairs]


async def test_get_header_by_height_and_latest(store: MemoryStore) -> None:
    headers = serving.HeaderServicer(serving.StoredHeaders(store), serving.HeadNotifier())
    blocks = chain(3, big_at=(3,))
    got = await headers.GetHeader(pb.GetHeaderRequest(height=2), None)
    assert (got.header, got.signature) == (blocks[1].signed.raw, blocks[1].signed.signature)
    latest = await headers.GetHeader(pb.GetHeaderRequest(height=0), None)
    assert signed_header_from_bytes(latest.header, latest.signature).header.height == 3


@pytest.mark.parametrize("height", [4, 10**6])
async def test_get_header_unknown(store: MemoryStore, height: int) -> None:
    with pytest.raises(UnknownHeight):
        headers = serving.HeaderServicer(serving.StoredHeaders(store), serving.HeadNotifier())
        await headers.GetHeader(pb.GetHeaderRequest(height=height), None)


async def test_get_latest_header_of_empty_store() -> None:
    with pytest.raises(UnknownHeight):
        empty = serving.StoredHeaders(MemoryStore())
        headers = serving.HeaderServicer(empty, serving.HeadNotifier())
        await headers.GetHeader(pb.GetHeaderRequest(height=0), None)


async def _take(stream: AsyncIterator[pb.SignedHeader], n: int) -> list[int]:
    heights = []
    async for msg in stream:
        heights.append(signed_header_from_bytes(msg.header, msg.signature).header.height)
        if len(heights) == n:
            break
    return heights


async def test_subscribe_streams_stored_then_new_headers() -> None:
    store, notifier = MemoryStore(), serving.HeadNotifier()
    blocks = chain(3, big_at=(3,))
    store_block(store, blocks[0])
    headers = serving.HeaderServicer(serving.StoredHeaders(store), notifier, poll_seconds=60)
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1), None)
    task = asyncio.create_task(_take(stream, 3))
    await asyncio.sleep(0.05)
    for block in blocks[1:]:
        store_block(store, block)
        notifier.notify(block.height)
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(task, 5) == [1, 2, 3]


class CountingStore(MemoryStore):
    """A MemoryStore that records every key read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return super().get(key)


async def test_subscribe_below_the_lowest_held_height_starts_there() -> None:
    """PROTOCOL.md §11: no work for pruned history. Blocks 1..2 were pruned: a subscription from
    height 1 reads nothing below height 3 (the old stream walked every pruned height)."""
    store = CountingStore()
    for block in chain(3, big_at=(3,)):
        store_block(store, block)
    blocks.prune_below(store, 3)
    headers = serving.HeaderServicer(serving.StoredHeaders(store), serving.HeadNotifier())
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1), None)
    store.reads.clear()
    assert await asyncio.wait_for(_take(stream, 1), 5) == [3]
    assert schema.signed_header_key(1) not in store.reads
    assert schema.signed_header_key(2) not in store.reads


def test_row_cache_is_bounded_in_bytes(store: MemoryStore) -> None:
    row_bytes = CELLS_PER_EXT_ROW * (BYTES_PER_CELL + BYTES_PER_PROOF)
    cache = serving.RowCache(max_bytes=3 * row_bytes)
    for row in range(4):  # height 3: k = 2, four extended rows
        cache.row(store, 3, row)
        assert cache.size_bytes <= 3 * row_bytes
    assert cache.size_bytes == 3 * row_bytes


async def test_a_corrupt_stored_header_is_data_loss_not_the_callers_fault(
    store: MemoryStore,
) -> None:
    raw, signature = header_store.get_signed_header(store, 2)  # type: ignore[misc]
    store.put(schema.signed_header_key(2), signature + b"garbage" + raw[7:])
    with pytest.raises(CorruptValueError):
        await serving.BlobReadServicer(store).GetBlobs(
            pb.GetBlobsRequest(height=2, namespace=NS_A), None
        )
    assert status_for(CorruptValueError(b"k", "x"))[0] is grpc.StatusCode.DATA_LOSS


async def test_subscribe_from_zero_starts_at_head(store: MemoryStore) -> None:
    headers = serving.HeaderServicer(serving.StoredHeaders(store), serving.HeadNotifier())
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=0), None)
    assert await asyncio.wait_for(_take(stream, 1), 5) == [3]


async def test_subscribe_polls_without_notification() -> None:
    store = MemoryStore()
    headers = serving.HeaderServicer(
        serving.StoredHeaders(store), serving.HeadNotifier(), poll_seconds=0.05
    )
    stream = headers.SubscribeHeaders(pb.SubscribeHeadersRequest(from_height=1), None)
    task = asyncio.create_task(_take(stream, 1))
    await asyncio.sleep(0.02)
    store_block(store, chain(1)[0])
    assert await asyncio.wait_for(task, 5) == [1]


async def test_subscriber_cap() -> None:
    headers = serving.HeaderServicer(
        serving.StoredHeaders(MemoryStore()), serving.HeadNotifier(), max_subscribers=0
    )
    with pytest.raises(ResourceExhausted):
        await anext(headers.SubscribeHeaders(pb.SubscribeHeadersRequest(), None))


async def test_get_samples_in_order_and_verifying(store: MemoryStore) -> None:
    served: list[int] = []
    shares = serving.ShareServicer(store, on_served=served.append)
    asked = [(3, 127), (0, 0), (2, 64), (0, 1), (1, 5)]
    response = await shares.GetSamples(pb.GetSamplesRequest(height=3, coords=coords(*asked)), None)
    assert [(c.row, c.col) for c in response.cells] == asked
    commitments = chain(3, big_at=(3,))[2].signed.header.commitments
    assert kzg.verify_cells(
        [commitments[c.row] for c in response.cells],
        [c.col for c in response.cells],
        [c.data for c in response.cells],
        [c.proof for c in response.cells],
    )
    assert served == [5]


@pytest.mark.parametrize("bad", [(2, 0), (0, 128), (5, 200)])
async def test_get_samples_rejects_coordinates_outside_the_square(
    store: MemoryStore, bad: tuple[int, int]
) -> None:
    shares = serving.ShareServicer(store)
    with pytest.raises(BadCoordinate):  # height 1 has k = 1: rows 0..1
        await shares.GetSamples(pb.GetSamplesRequest(height=1, coords=coords(bad)), None)


async def test_get_samples_takes_at_most_128_distinct_coordinates(store: MemoryStore) -> None:
    """PROTOCOL.md §11: more than 128 coordinates, or one asked twice, is INVALID_ARGUMENT; 128
    distinct ones are served (the reply stays bounded: ~270 KiB)."""
    shares = serving.ShareServicer(store)
    every = [(row, col) for row in range(2) for col in range(CELLS_PER_EXT_ROW)]  # k = 1: 256
    request = pb.GetSamplesRequest(height=1, coords=coords(*every[:128]))
    reply = await shares.GetSamples(request, None)
    assert len(reply.cells) == 128 and reply.ByteSize() < 300 * 1024
    for asked in (every[:129], [(0, 0), (1, 1), (0, 0)]):
        with pytest.raises(InvalidRequest):
            await shares.GetSamples(pb.GetSamplesRequest(height=1, coords=coords(*asked)), None)


@pytest.mark.parametrize("height", [0, 9])
async def test_get_samples_unknown_height(store: MemoryStore, height: int) -> None:
    with pytest.raises(UnknownHeight):
        await serving.ShareServicer(store).GetSamples(
            pb.GetSamplesRequest(height=height, coords=coords((0, 0))), None
        )


async def test_get_row(store: MemoryStore) -> None:
    served: list[int] = []
    shares = serving.ShareServicer(store, on_served=served.append)
    response = await shares.GetRow(pb.GetRowRequest(height=2, row=1), None)
    block = chain(3, big_at=(3,))[1]
    assert [c.col for c in response.cells] == list(range(128))
    assert [c.data for c in response.cells] == list(block.square.row_cells(1))
    assert [c.proof for c in response.cells] == list(block.square.row_proofs(1))
    assert served == [128]
    with pytest.raises(BadCoordinate):
        await shares.GetRow(pb.GetRowRequest(height=2, row=2), None)
    with pytest.raises(UnknownHeight):
        await shares.GetRow(pb.GetRowRequest(height=7, row=0), None)


def test_get_blobs_returns_data_and_verifying_cells(store: MemoryStore) -> None:
    header = chain(3, big_at=(3,))[2].signed.header
    found = serving.get_blobs(store, 3, NS_A)
    assert [b.data for b in found] == [data for ns, data in blobs_for(3, True) if ns == NS_A]
    (big,) = serving.get_blobs(store, 3, NS_B)
    assert big.data == blobs_for(3, True)[1][1]
    assert len(big.cells) == 66  # 130000 bytes in 1984-byte cells
    for blob in (*found, big):
        assert blob.namespace == bytes(28) + blob.namespace[-1:]
        assert blob.cells[0].row * 64 + blob.cells[0].col == blob.start_cell
        assert kzg.verify_cells(
            [header.commitments[c.row] for c in blob.cells],
            [c.col for c in blob.cells],
            [c.data for c in blob.cells],
            [c.proof for c in blob.cells],
        )


def test_get_blobs_empty_namespace_unknown_height_bad_namespace(store: MemoryStore) -> None:
    assert serving.get_blobs(store, 1, b"\x0c") == []
    with pytest.raises(UnknownHeight):
        serving.get_blobs(store, 4, NS_A)
    with pytest.raises(InvalidNamespace):
        serving.get_blobs(store, 1, bytes(29))


async def test_blob_read_servicer(store: MemoryStore) -> None:
    served: list[int] = []
    blobs = serving.BlobReadServicer(store, on_served=served.append)
    response = await blobs.GetBlobs(pb.GetBlobsRequest(height=2, namespace=NS_A), None)
    assert [b.data for b in response.blobs] == [b"a2-first", b"a2-second"]
    assert served == [2]


async def test_status_codes_over_grpc(store: MemoryStore) -> None:
    """The error table maps every refusal: NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED."""
    server, port = await create_server(
        ServerConfig(),
        serving.read_servicers(store, serving.HeadNotifier()),
        rpc_metrics=None,
        service_names=(HEADER_SERVICE, SHARE_SERVICE),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            shares = da_pb2_grpc.ShareServiceStub(channel)
            headers = da_pb2_grpc.HeaderServiceStub(channel)
            ok = await shares.GetSamples(pb.GetSamplesRequest(height=1, coords=coords((1, 3))))
            assert len(ok.cells) == 1
            cases = [
                (headers.GetHeader(pb.GetHeaderRequest(height=99)), grpc.StatusCode.NOT_FOUND),
                (
                    shares.GetSamples(pb.GetSamplesRequest(height=1, coords=coords((2, 0)))),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
                (
                    shares.GetSamples(
                        pb.GetSamplesRequest(height=1, coords=coords(*[(0, 0)] * 4097))
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                ),
            ]
            for call, code in cases:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() == code
    finally:
        await stop_server(server, grace=0)
