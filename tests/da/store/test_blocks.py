"""Block accessors over both store implementations."""

from __future__ import annotations

import pytest

from da.sampling import CellRef
from da.store import blocks, headers, schema
from da.store.base import KeyValueStore, WriteBatch
from da.store.errors import CorruptValueError
from erasure.constants import CELLS_PER_EXT_ROW
from tests.da.store.helpers import SIGNATURE, cell, make_rows, proof, put_whole_block


def store_block(store: KeyValueStore, height: int, ext_rows: int = 2) -> None:
    put_whole_block(store, height, b"header-%d" % height, SIGNATURE, make_rows(height, ext_rows))


def test_block_round_trip(store: KeyValueStore) -> None:
    store_block(store, 5, ext_rows=4)
    assert headers.get_signed_header(store, 5) == (b"header-5", SIGNATURE)
    assert blocks.has_block(store, 5) and blocks.block_row_count(store, 5) == 4
    cells, proofs = blocks.get_row(store, 5, 3)  # type: ignore[misc]
    assert cells == [cell(5, 3, c) for c in range(CELLS_PER_EXT_ROW)]
    assert proofs == [proof(5, 3, c) for c in range(CELLS_PER_EXT_ROW)]


def test_missing_block(store: KeyValueStore) -> None:
    store_block(store, 1)
    assert headers.get_signed_header(store, 2) is None
    assert blocks.get_row(store, 2, 0) is None
    assert blocks.get_row(store, 1, 2) is None  # beyond 2k
    assert not blocks.has_block(store, 2)
    assert blocks.block_row_count(store, 2) is None


def test_get_cells_in_request_order(store: KeyValueStore) -> None:
    store_block(store, 9, ext_rows=4)
    coords = [CellRef(3, 127), CellRef(0, 0), CellRef(3, 1), CellRef(0, 0)]
    got = blocks.get_cells(store, 9, coords)
    assert got == [(cell(9, c.row, c.col), proof(9, c.row, c.col)) for c in coords]


def test_get_cells_missing_row_or_bad_column(store: KeyValueStore) -> None:
    store_block(store, 9)
    assert blocks.get_cells(store, 9, [CellRef(0, 1), CellRef(2, 1)]) is None
    assert blocks.get_cells(store, 8, [CellRef(0, 1)]) is None
    assert blocks.get_cells(store, 9, []) == []


def test_head_and_lowest_height(store: KeyValueStore) -> None:
    assert blocks.head_height(store) == 0 and blocks.lowest_height(store) == 0
    for h in [3, 1, 300, 2]:
        store_block(store, h)
    headers.put_signed_header(store, 500, b"header-only", SIGNATURE)  # not a whole block
    assert blocks.head_height(store) == 300
    assert blocks.lowest_height(store) == 1
    assert list(blocks.stored_heights(store, start=2)) == [2, 3, 300]


def test_prune_below_deletes_whole_blocks(store: KeyValueStore) -> None:
    for h in range(1, 6):
        store_block(store, h)
    assert blocks.prune_below(store, 4) == 3
    assert list(blocks.stored_heights(store)) == [4, 5]
    for h in range(1, 4):
        assert headers.get_signed_header(store, h) is None
        assert list(store.iterate(schema.rows_prefix(h))) == []
    assert blocks.get_row(store, 4, 1) is not None
    assert blocks.prune_below(store, 4) == 0


def test_prune_can_keep_headers(store: KeyValueStore) -> None:
    store_block(store, 1)
    store_block(store, 2)
    assert blocks.prune_below(store, 2, keep_headers=True) == 1
    assert headers.get_signed_header(store, 1) == (b"header-1", SIGNATURE)
    assert not blocks.has_block(store, 1) and blocks.get_row(store, 1, 0) is None


def test_block_is_one_batch() -> None:
    batch = WriteBatch()
    blocks.add_block_to_batch(batch, 1, b"h", SIGNATURE, make_rows(1, 2))
    assert len(batch) == 1 + 2 + 1  # header, 2k rows, block marker


@pytest.mark.parametrize("ext_rows", [0, 1, 3, 6])
def test_rejects_bad_row_count(store: KeyValueStore, ext_rows: int) -> None:
    with pytest.raises(ValueError):
        put_whole_block(store, 1, b"h", SIGNATURE, make_rows(1, ext_rows))
    assert not blocks.has_block(store, 1)


def test_rejects_bad_sizes() -> None:
    cells, proofs = make_rows(1, 1)[0]
    with pytest.raises(ValueError):
        blocks.encode_row(list(cells)[:-1], proofs)
    with pytest.raises(ValueError):
        blocks.encode_row([*list(cells)[:-1], b"short"], proofs)
    with pytest.raises(ValueError):
        blocks.encode_row(cells, [*list(proofs)[:-1], b"short"])
    with pytest.raises(ValueError):
        headers.add_signed_header_to_batch(WriteBatch(), 1, b"h", b"short")


def test_corrupt_row_is_reported(store: KeyValueStore) -> None:
    store.put(schema.row_key(1, 0), b"garbage")
    with pytest.raises(CorruptValueError):
        blocks.get_row(store, 1, 0)
