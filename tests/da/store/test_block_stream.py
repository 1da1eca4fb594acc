"""Streamed blocks over both stores: rows first, then the seal; orphan rows stay invisible and are
deleted by `delete_orphan_rows`."""

from __future__ import annotations

import pytest

from da.store import blocks, headers, schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.memory import MemoryStore
from erasure.constants import MAX_ROWS_LIMIT
from tests.da.store.helpers import SIGNATURE, make_rows, put_whole_block


def write_rows(store: KeyValueStore, height: int, rows: list[blocks.Row], first: int = 0) -> None:
    batch = WriteBatch()
    assert blocks.add_rows_to_batch(batch, height, first, rows) == len(rows)
    store.write(batch)


def seal(store: KeyValueStore, height: int, ext_rows: int) -> None:
    batch = WriteBatch()
    blocks.add_block_seal_to_batch(batch, height, b"header-%d" % height, SIGNATURE, ext_rows)
    store.write(batch, sync=True)


def contents(store: KeyValueStore) -> list[tuple[bytes, bytes]]:
    return list(store.iterate(b""))


def test_rows_then_seal_equals_one_batch(store: KeyValueStore) -> None:
    rows = make_rows(3, 8)
    whole = MemoryStore()
    put_whole_block(whole, 3, b"header-3", SIGNATURE, rows)
    for first in (4, 0, 6, 2):  # out of order, as workers finish
        write_rows(store, 3, rows[first : first + 2], first)
    seal(store, 3, 8)
    assert contents(store) == contents(whole)


def test_rows_without_a_seal_are_invisible(store: KeyValueStore) -> None:
    put_whole_block(store, 1, b"header-1", SIGNATURE, make_rows(1, 2))
    write_rows(store, 2, make_rows(2, 4))
    assert not blocks.has_block(store, 2) and blocks.block_row_count(store, 2) is None
    assert blocks.head_height(store) == 1 and list(blocks.stored_heights(store)) == [1]
    assert headers.get_signed_header(store, 2) is None
    seal(store, 2, 4)
    assert blocks.head_height(store) == 2 and blocks.block_row_count(store, 2) == 4


def test_delete_orphan_rows_keeps_stored_blocks(store: KeyValueStore) -> None:
    for height in (1, 2):
        put_whole_block(store, height, b"header-%d" % height, SIGNATURE, make_rows(height, 2))
    kept = contents(store)
    orphans = make_rows(3, 8)
    write_rows(store, 3, [orphans[0]])
    write_rows(store, 3, orphans[5:7], 5)  # sparse: rows 1..4 never arrived
    write_rows(store, 9, make_rows(9, 2))
    assert blocks.delete_orphan_rows(store, sync=True) == [3, 9]
    assert contents(store) == kept
    assert blocks.delete_orphan_rows(store) == []


def test_delete_orphan_rows_of_an_empty_chain(store: KeyValueStore) -> None:
    write_rows(store, 1, make_rows(1, 4))
    assert blocks.delete_orphan_rows(store) == [1]
    assert contents(store) == []


def test_a_smaller_retry_at_the_same_height_leaves_no_stale_rows(store: KeyValueStore) -> None:
    write_rows(store, 1, make_rows(1, 8))  # a failed attempt with k = 4
    blocks.delete_orphan_rows(store)
    write_rows(store, 1, make_rows(1, 2))  # the retry has k = 1
    seal(store, 1, 2)
    assert [key for key, _ in store.iterate(schema.rows_prefix(1))] == [
        schema.row_key(1, 0),
        schema.row_key(1, 1),
    ]


@pytest.mark.parametrize("first", [-1, 2 * MAX_ROWS_LIMIT - 1])
def test_rows_outside_the_largest_square_are_refused(first: int) -> None:
    with pytest.raises(ValueError):
        blocks.add_rows_to_batch(WriteBatch(), 1, first, make_rows(1, 2))


@pytest.mark.parametrize("ext_rows", [0, 1, 6, 4 * MAX_ROWS_LIMIT])
def test_seal_refuses_a_bad_row_count(ext_rows: int) -> None:
    with pytest.raises(ValueError):
        blocks.add_block_seal_to_batch(WriteBatch(), 1, b"h", SIGNATURE, ext_rows)


def test_delete_unsealed_rows_of_one_height_only(store: KeyValueStore) -> None:
    put_whole_block(store, 1, b"header-1", SIGNATURE, make_rows(1, 2))
    kept = contents(store)
    write_rows(store, 2, make_rows(2, 4)[2:], 2)  # a failed ingest wrote rows 2 and 3 only
    assert blocks.delete_unsealed_rows(store, 1) == 0  # a sealed block is left alone
    assert blocks.delete_unsealed_rows(store, 2) == 4
    assert contents(store) == kept
    assert blocks.delete_unsealed_rows(store, 5) == 0
