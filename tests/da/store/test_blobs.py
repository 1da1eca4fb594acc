"""Producer mempool and blob records, including the exactly-once inclusion batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from da.store import blobs, blocks
from da.store.base import KeyValueStore, WriteBatch
from da.store.rocks import RocksStore
from erasure.layout import blob_hash
from tests.da.store.helpers import SIGNATURE, make_rows

NS_A = bytes(28) + b"\x01"
NS_B = bytes(28) + b"\x02"


def test_pending_blobs_keep_arrival_order(store: KeyValueStore) -> None:
    seqs = [blobs.append_pending(store, ns, data) for ns, data in [(NS_B, b"1"), (NS_A, b"2")]]
    seqs.append(blobs.append_pending(store, NS_B, b"3"))
    assert seqs == [0, 1, 2]
    assert blobs.pending_blobs(store) == [(0, NS_B, b"1"), (1, NS_A, b"2"), (2, NS_B, b"3")]
    assert blobs.next_sequence(store) == 3


class CountingReads:
    """A store that counts the pending blobs read through `iterate`."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.read = 0

    def iterate(self, prefix: bytes):  # type: ignore[no-untyped-def]
        for item in self.store.iterate(prefix):
            self.read += 1
            yield item


def test_find_pending_reads_only_until_every_wanted_blob_was_found(store: KeyValueStore) -> None:
    for n in range(10):
        blobs.append_pending(store, NS_A, b"%d" % n)
    counting = CountingReads(store)
    wanted = [blob_hash(NS_A, b"1"), blob_hash(NS_A, b"0")]
    found = blobs.find_pending(counting, wanted)  # type: ignore[arg-type]
    assert {h: (b.seq, b.data) for h, b in found.items()} == {
        wanted[0]: (1, b"1"),
        wanted[1]: (0, b"0"),
    }
    assert counting.read == 2  # the eight behind them were never read
    missing = blobs.find_pending(store, [blob_hash(NS_A, b"3"), blob_hash(NS_B, b"absent")])
    assert [b.data for b in missing.values()] == [b"3"]


def test_append_records_pending_status(store: KeyValueStore) -> None:
    blobs.append_pending(store, NS_A, b"data")
    record = blobs.get_blob_record(store, blob_hash(NS_A, b"data"))
    assert record == blobs.BlobRecord(blobs.BlobState.PENDING)
    assert blobs.get_blob_record(store, bytes(32)) is None


def test_append_rejects_unnormalised_namespace(store: KeyValueStore) -> None:
    with pytest.raises(ValueError):
        blobs.append_pending(store, b"\x01", b"data")


def test_blob_record_round_trip(store: KeyValueStore) -> None:
    h = blob_hash(NS_A, b"x")
    for record in [
        blobs.BlobRecord(blobs.BlobState.INCLUDED, 7, 129),
        blobs.BlobRecord(blobs.BlobState.CERTIFIED, 2**64 - 1, 2**32 - 1),
        blobs.BlobRecord(blobs.BlobState.REJECTED, reason="too large: é"),
    ]:
        batch = WriteBatch()
        blobs.add_blob_record_to_batch(batch, h, record)
        store.write(batch)
        assert blobs.get_blob_record(store, h) == record


def test_inclusion_batch_is_exactly_once(store: KeyValueStore) -> None:
    for data in [b"a", b"b", b"c"]:
        blobs.append_pending(store, NS_A, data)
    batch = WriteBatch()
    blocks.add_block_to_batch(batch, 1, b"header", SIGNATURE, make_rows(1, 2))
    placed = [
        blobs.Placement(0, blob_hash(NS_A, b"a"), 0),
        blobs.Placement(2, blob_hash(NS_A, b"c"), 1),
    ]
    blobs.include_blobs(batch, 1, placed)
    store.write(batch, sync=True)
    assert [p.seq for p in blobs.pending_blobs(store)] == [1]
    assert blocks.has_block(store, 1)
    assert blobs.get_blob_record(store, blob_hash(NS_A, b"c")) == blobs.BlobRecord(
        blobs.BlobState.INCLUDED, 1, 1
    )
    assert blobs.append_pending(store, NS_A, b"d") == 3  # sequence numbers are never reused


def test_unwritten_inclusion_leaves_blobs_pending(store: KeyValueStore) -> None:
    """A crash before the block batch is written: nothing was included, nothing was lost."""
    blobs.append_pending(store, NS_A, b"a")
    batch = WriteBatch()
    blocks.add_block_to_batch(batch, 1, b"header", SIGNATURE, make_rows(1, 2))
    blobs.include_blobs(batch, 1, [blobs.Placement(0, blob_hash(NS_A, b"a"), 0)])
    del batch  # never written
    assert [p.data for p in blobs.pending_blobs(store)] == [b"a"]
    assert not blocks.has_block(store, 1)


def test_settle_pending_as_rejected(store: KeyValueStore) -> None:
    seq = blobs.append_pending(store, NS_A, b"a")
    batch = WriteBatch()
    rejected = blobs.BlobRecord(blobs.BlobState.REJECTED, reason="does not fit")
    blobs.settle_pending(batch, seq, blob_hash(NS_A, b"a"), rejected)
    store.write(batch, sync=True)
    assert blobs.pending_blobs(store) == []
    assert blobs.get_blob_record(store, blob_hash(NS_A, b"a")) == rejected


def test_mempool_survives_restart(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    blobs.append_pending(store, NS_A, b"first")
    blobs.append_pending(store, NS_B, b"second")
    store.close()
    store = RocksStore(tmp_path / "db")
    assert blobs.pending_blobs(store) == [(0, NS_A, b"first"), (1, NS_B, b"second")]
    assert blobs.append_pending(store, NS_A, b"third") == 2
    store.close()
