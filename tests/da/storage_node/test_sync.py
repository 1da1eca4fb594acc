"""Following, fetching, repairing and attesting against in-process servers over MemoryStores."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from da import serving, signing
from da.backoff import Backoff
from da.errors import Unavailable
from da.storage_node import fetch
from da.storage_node.attest import Attester
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import MemorySink, fetch_block
from da.storage_node.follow import Follower
from da.storage_node.ingest import Ingestor, Stored
from da.storage_node.service import StorageBlobServicer
from da.store import blocks
from da.store.memory import MemoryStore
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from tests.da.storage_node.chain import chain, make_block, store_block
from tests.da.storage_node.conftest import Serve


class NoRows(serving.ShareServicer):
    """Serves sampled cells but never whole rows."""

    async def GetRow(self, request: pb.GetRowRequest, context: Any) -> pb.GetRowResponse:
        raise Unavailable("rows are not served here")


class OriginalHalfOnly(NoRows):
    """Serves only cells of the original columns 0..63 (an ODS-only archive)."""

    async def GetSamples(self, request: pb.GetSamplesRequest, context: Any) -> Any:
        kept = [c for c in request.coords if c.col < 64]
        del request.coords[:]
        request.coords.extend(kept)
        return await super().GetSamples(request, context)


class CorruptRows(serving.ShareServicer):
    async def GetRow(self, request: pb.GetRowRequest, context: Any) -> pb.GetRowResponse:
        response = await super().GetRow(request, context)
        response.cells[5].data = bytes(2048)
        return response


FORGED_HEAD = make_block(1000, bytes(32), key=signing.generate_keypair(b"\x66" * 32)).signed


class LyingHead(serving.HeaderServicer):
    """Streams the real chain, but claims a forged, far-away head (signed by an untrusted key):
    believed, it would set the sync floor past every real block."""

    async def GetHeader(self, request: pb.GetHeaderRequest, context: Any) -> pb.SignedHeader:
        if request.height == 0:
            return pb.SignedHeader(header=FORGED_HEAD.raw, signature=FORGED_HEAD.signature)
        return await super().GetHeader(request, context)


async def _follow_until(follower: Follower, height: int, timeout: float = 20) -> None:
    task = asyncio.create_task(follower.run())
    try:
        async with asyncio.timeout(timeout):
            while follower.head < height:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _plain(rows: Any) -> list[tuple[list[bytes], list[bytes]]]:
    return [(list(cells), list(proofs)) for cells, proofs in rows]


async def _nothing(stored: Stored) -> None:
    return None


async def test_follows_stored_then_new_blocks(serve: Serve, ingestor: Ingestor) -> None:
    remote, store, notifier = await serve(chain(4)[:2])
    follower = Follower(ingestor, [remote], on_stored=_nothing, backoff=Backoff(0.01, 0.05))
    task = asyncio.create_task(_follow_until(follower, 4))
    await asyncio.sleep(0.3)
    for block in chain(4)[2:]:
        store_block(store, block)
        notifier.notify(block.height)
    await task
    for block in chain(4):
        assert blocks.get_row(ingestor.store, block.height, 1) == blocks.get_row(
            store, block.height, 1
        )


async def test_fails_over_to_a_peer_when_the_producer_is_down(
    serve: Serve, ingestor: Ingestor
) -> None:
    peer, _, _ = await serve(chain(3), producer=False)
    down = type(peer)("127.0.0.1:1", 0.5, is_producer=True).open()
    try:
        follower = Follower(ingestor, [down, peer], on_stored=_nothing, backoff=Backoff(0.01, 0.05))
        await _follow_until(follower, 3)
    finally:
        await down.close()


async def test_retention_starts_inside_the_window(serve: Serve, ingestor: Ingestor) -> None:
    remote, _, _ = await serve(chain(4))
    follower = Follower(ingestor, [remote], on_stored=_nothing, retention_blocks=2)
    await _follow_until(follower, 4)
    assert list(blocks.stored_heights(ingestor.store)) == [3, 4]


async def test_an_unverified_head_never_sets_the_floor_and_its_source_is_shunned(
    serve: Serve, ingestor: Ingestor
) -> None:
    liar, _, _ = await serve(chain(4), header=LyingHead)
    honest, _, _ = await serve(chain(4), producer=False)
    shunned: list[int] = []
    follower = Follower(
        ingestor,
        [liar, honest],
        on_stored=_nothing,
        retention_blocks=2,
        backoff=Backoff(0.01, 0.05),
        idle_timeout=1.0,
        on_shun=lambda: shunned.append(1),
    )
    await _follow_until(follower, 4)
    assert list(blocks.stored_heights(ingestor.store)) == [3, 4]
    assert follower.is_shunned(liar) and not follower.is_shunned(honest)
    assert shunned == [1]


async def test_gap_in_the_stream_is_filled_with_get_header(
    serve: Serve, ingestor: Ingestor
) -> None:
    remote, _, _ = await serve(chain(3))
    follower = Follower(ingestor, [remote], on_stored=_nothing)
    await follower.take(chain(3)[2].signed, remote)  # height 3 first: 1 and 2 fetched before
    assert list(blocks.stored_heights(ingestor.store)) == [1, 2, 3]


async def test_bad_row_from_one_source_is_fetched_from_another(serve: Serve) -> None:
    block = chain(3, big_at=(3,))[2]
    bad, _, _ = await serve([block], share=CorruptRows)
    good, _, _ = await serve([block], producer=False)
    sink = MemorySink()
    got = await fetch_block([bad, good], block.signed.header, sink)
    assert _plain(sink.rows()) == _plain(block.rows()) and got.repaired == 0


async def test_rows_are_put_a_window_at_a_time(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "WINDOW_ROWS", 3)
    block = chain(3, big_at=(3,))[2]  # k = 2: 4 extended rows
    remote, _, _ = await serve([block])
    sink = MemorySink()
    await fetch_block([remote], block.signed.header, sink)
    assert sink.puts == [[0, 1, 2], [3]]
    assert _plain(sink.rows()) == _plain(block.rows())


async def test_rows_rebuilt_from_cells_when_no_one_serves_rows(serve: Serve) -> None:
    block = chain(3, big_at=(3,))[2]  # k = 2
    half, _, _ = await serve([block], share=OriginalHalfOnly)
    sink = MemorySink()
    got = await fetch_block([half], block.signed.header, sink)
    assert _plain(sink.rows()) == _plain(block.rows())
    assert got.repaired == 4 * 64


async def test_missing_rows_rebuilt_from_the_whole_rows_already_put(serve: Serve) -> None:
    class FirstTwoRowsOnly(serving.ShareServicer):
        async def GetRow(self, request: pb.GetRowRequest, context: Any) -> pb.GetRowResponse:
            if request.row >= 2:
                raise Unavailable("withheld")
            return await super().GetRow(request, context)

        async def GetSamples(self, request: pb.GetSamplesRequest, context: Any) -> Any:
            raise Unavailable("withheld")

    block = chain(3, big_at=(3,))[2]  # k = 2: rows 0 and 1 give every column 2 of its 4 cells
    remote, _, _ = await serve([block], share=FirstTwoRowsOnly)
    sink = MemorySink()
    got = await fetch_block([remote], block.signed.header, sink)
    assert sink.puts == [[0, 1], [2, 3]]  # the window's whole rows, then the rebuilt ones
    assert _plain(sink.rows()) == _plain(block.rows())
    assert got.repaired == 2 * 128


async def test_unavailable_when_too_few_cells(serve: Serve) -> None:
    class Nothing(NoRows):
        async def GetSamples(self, request: Any, context: Any) -> Any:
            raise Unavailable("withheld")

    block = chain(1)[0]
    withholding, _, _ = await serve([block], share=Nothing)
    with pytest.raises(BlockUnavailable):
        await fetch_block([withholding], block.signed.header, MemorySink())


async def test_repair_counted_by_follower(
    serve: Serve, ingestor: Ingestor, registry: CollectorRegistry
) -> None:
    half, _, _ = await serve(chain(1), share=OriginalHalfOnly)
    await Follower(ingestor, [half], on_stored=_nothing).take(chain(1)[0].signed, half)
    assert registry.get_sample_value("da_storage_cells_repaired_total") == 2 * 64


class Collector(da_pb2_grpc.AttestationServiceServicer):
    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[pb.Attestation, str | None]] = []
        self.fail_first = fail_first

    async def Attest(self, request: pb.Attestation, context: Any) -> pb.AttestResponse:
        if self.fail_first:
            self.fail_first -= 1
            raise Unavailable("restarting")
        token = dict(context.invocation_metadata()).get("authorization")
        self.got.append((request, token))
        return pb.AttestResponse(accepted=True)


async def test_attester_signs_sends_no_token_and_retries(serve: Serve) -> None:
    collector = Collector(fail_first=2)
    producer, _, _ = await serve(
        extra=[(da_pb2_grpc.add_AttestationServiceServicer_to_server, collector)]
    )
    key = signing.generate_keypair(b"\x05" * 32)
    attester = Attester(key, producer, backoff_cap_seconds=0.05)
    block = chain(1)[0]
    task = asyncio.create_task(attester.run())
    attester.submit(1, block.signed.hash)
    async with asyncio.timeout(10):
        while not collector.got:
            await asyncio.sleep(0.02)
    task.cancel()
    ((attestation, token),) = collector.got
    assert token is None  # Attest is authenticated by its signature (PROTOCOL.md §11)
    assert attestation.public_key == key.public and attestation.height == 1
    assert signing.verify(key.public, block.signed.hash, attestation.signature)


async def test_restarted_attester_re_attests_the_most_recent_stored_blocks(serve: Serve) -> None:
    # A previous run stored blocks 1..4 but its in-memory queue died with it.
    collector = Collector()
    producer, _, _ = await serve(
        extra=[(da_pb2_grpc.add_AttestationServiceServicer_to_server, collector)]
    )
    store = MemoryStore()
    for block in chain(4):
        store_block(store, block)
    key = signing.generate_keypair(b"\x06" * 32)
    attester = Attester(key, producer, backoff_cap_seconds=0.05)
    assert await attester.submit_recent(store, count=3) == 3
    task = asyncio.create_task(attester.run())
    try:
        async with asyncio.timeout(10):
            while len(collector.got) < 3:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    sent = [attestation for attestation, _ in collector.got]
    assert [a.height for a in sent] == [2, 3, 4]
    for attestation, block in zip(sent, chain(4)[1:], strict=True):
        assert attestation.header_hash == block.signed.hash
        assert signing.verify(key.public, block.signed.hash, attestation.signature)


async def test_nothing_to_re_attest_in_an_empty_store(serve: Serve) -> None:
    producer, _, _ = await serve()
    attester = Attester(signing.generate_keypair(b"\x06" * 32), producer)
    assert await attester.submit_recent(MemoryStore()) == 0


async def test_storage_node_refuses_blob_writes(serve: Serve) -> None:
    store = MemoryStore()
    remote, _, _ = await serve(
        extra=[(da_pb2_grpc.add_BlobServiceServicer_to_server, StorageBlobServicer(store))]
    )
    stub = da_pb2_grpc.BlobServiceStub(remote.channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitBlob(pb.SubmitBlobRequest(namespace=b"\x01", data=b"x"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "storage node" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetBlobStatus(pb.GetBlobStatusRequest(blob_hash=bytes(32)), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetBlobStatus" in (info.value.details() or "")
