"""Header checks before anything else, equivocation, atomic storage, pruning."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry

from da.errors import BadSignature, BrokenLink, Equivocation, UntrustedProducer
from da.header import SignedHeader, sign_header
from da.signing import generate_keypair
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import FetchedBlock, RowSink
from da.storage_node.ingest import Fetch, Ingestor
from da.store import blocks, headers
from tests.da.storage_node.chain import PRODUCER, Block, chain, make_block, store_block


def fetcher(block: Block, rows: int | None = None, error: Exception | None = None) -> Fetch:
    """A fetch putting the first `rows` rows of `block` (all by default), one per put, then
    raising `error` if given."""

    async def fetch(signed: SignedHeader, sink: RowSink) -> FetchedBlock:
        for index, row in list(enumerate(block.rows()))[:rows]:
            await sink.put([(index, row)])
        if error is not None:
            raise error
        return FetchedBlock(0, "test")

    return fetch


async def test_ingest_stores_whole_block_and_counts(
    ingestor: Ingestor, registry: CollectorRegistry
) -> None:
    block = chain(2)[0]
    fetch = fetcher(block)

    stored = await ingestor.ingest(block.signed, fetch)
    assert stored is not None and (stored.height, stored.k) == (1, 1)
    assert blocks.head_height(ingestor.store) == 1
    assert blocks.get_row(ingestor.store, 1, 1) == (
        list(block.square.row_cells(1)),
        list(block.square.row_proofs(1)),
    )
    assert registry.get_sample_value("da_storage_head_height") == 1
    assert registry.get_sample_value("da_storage_blocks_ingested_total") == 1
    assert await ingestor.ingest(block.signed, fetch) is None  # already held


async def test_a_failed_fetch_leaves_no_rows_and_no_block(
    ingestor: Ingestor, registry: CollectorRegistry
) -> None:
    block = chain(1)[0]
    unavailable = fetcher(block, rows=1, error=BlockUnavailable(1, 1, "withheld"))
    with pytest.raises(BlockUnavailable):
        await ingestor.ingest(block.signed, unavailable)
    assert registry.get_sample_value("da_storage_rejected_total", {"reason": "unrecoverable"}) == 1
    assert blocks.get_row(ingestor.store, 1, 0) is None and not blocks.has_block(ingestor.store, 1)
    with pytest.raises(RuntimeError, match="1 of the 2 rows"):  # a fetch that forgot a row
        await ingestor.ingest(block.signed, fetcher(block, rows=1))
    assert blocks.get_row(ingestor.store, 1, 0) is None and blocks.head_height(ingestor.store) == 0
    assert await ingestor.ingest(block.signed, fetcher(block)) is not None  # a retry succeeds
    assert blocks.has_block(ingestor.store, 1)


async def _never(signed, sink):  # type: ignore[no-untyped-def]
    raise AssertionError("fetched a block whose header should have been refused")


async def test_equivocation_refused_logged_counted(
    ingestor: Ingestor, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    first = chain(1)[0]
    store_block(ingestor.store, first)
    second = make_block(1, bytes(32), time_ms=first.signed.header.time_ms + 1)
    with pytest.raises(Equivocation):
        await ingestor.ingest(second.signed, _never)
    assert registry.get_sample_value("da_storage_equivocations_total") == 1
    assert "equivocated at height 1" in caplog.text
    assert ingestor.stored_header(1) == first.signed


async def test_untrusted_producer_refused_before_fetch(
    ingestor: Ingestor, registry: CollectorRegistry
) -> None:
    rogue = make_block(1, bytes(32), key=generate_keypair(b"\x01" * 32))
    with pytest.raises(UntrustedProducer):
        await ingestor.ingest(rogue.signed, _never)
    assert (
        registry.get_sample_value("da_storage_rejected_total", {"reason": "untrusted_producer"})
        == 1
    )


async def test_bad_signature_refused(ingestor: Ingestor) -> None:
    signed = chain(1)[0].signed
    forged = dataclasses.replace(signed, signature=bytes(reversed(signed.signature)))
    with pytest.raises(BadSignature):
        await ingestor.ingest(forged, _never)


async def test_broken_link_to_stored_parent_refused(ingestor: Ingestor) -> None:
    store_block(ingestor.store, chain(1)[0])
    orphan = make_block(2, b"\x01" * 32)
    with pytest.raises(BrokenLink):
        await ingestor.ingest(orphan.signed, _never)
    relinked = sign_header(
        dataclasses.replace(orphan.signed.header, prev_hash=chain(1)[0].signed.hash),
        PRODUCER.secret,
    )
    assert ingestor.accept_header(relinked)


def test_prune_keeps_the_retention_window(ingestor: Ingestor) -> None:
    for block in chain(4):
        store_block(ingestor.store, block)
    assert ingestor.prune(0) == 0
    assert ingestor.prune(2) == 2
    assert list(blocks.stored_heights(ingestor.store)) == [3, 4]
    assert headers.get_signed_header(ingestor.store, 1) is None
