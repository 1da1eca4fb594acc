import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import InvalidBlob, InvalidCell, InvalidNamespace, SquareTooLarge
from erasure.constants import BYTES_PER_CELL, CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL
from erasure.layout import (
    BlobEntry,
    blob_data_from_cells,
    blob_hash,
    cells_for_length,
    layout_blobs,
    max_blob_bytes,
    normalize_namespace,
    pack_payload,
    rows_for_cells,
    unpack_payload,
)
from tests.erasure.helpers import CHEAP


def cells_of(ods: bytes, start: int, count: int) -> list[bytes]:
    return [ods[i * BYTES_PER_CELL : (i + 1) * BYTES_PER_CELL] for i in range(start, start + count)]


def test_normalize_namespace_pads_left() -> None:
    assert normalize_namespace(b"\x01") == bytes(28) + b"\x01"
    assert normalize_namespace(b"a" * 29) == b"a" * 29


@pytest.mark.parametrize("bad", [b"", b"x" * 30, b"\x00", bytes(29), b"\xff" * 29, "text"])
def test_normalize_namespace_rejects(bad: bytes) -> None:
    with pytest.raises(InvalidNamespace):
        normalize_namespace(bad)


def test_short_all_ff_namespace_is_not_reserved_after_padding() -> None:
    assert normalize_namespace(b"\xff") == bytes(28) + b"\xff"


def test_blob_hash_is_sha256_of_padded_namespace_and_data() -> None:
    assert blob_hash(b"ab", b"data") == hashlib.sha256(bytes(27) + b"ab" + b"data").digest()


def test_cells_and_rows_for_sizes() -> None:
    assert [cells_for_length(n) for n in (1, 1984, 1985, 3968)] == [1, 1, 2, 2]
    assert [rows_for_cells(n) for n in (0, 1, 64, 65, 128, 129, 257)] == [1, 1, 1, 2, 2, 4, 8]
    assert max_blob_bytes(64) == 64 * 64 * 1984


@CHEAP
@given(st.binary(min_size=1, max_size=3 * PAYLOAD_BYTES_PER_CELL))
def test_pack_round_trip(data: bytes) -> None:
    packed = pack_payload(data)
    assert len(packed) == cells_for_length(len(data)) * BYTES_PER_CELL
    assert all(b == 0 for b in packed[0::32])
    assert unpack_payload(packed)[: len(data)] == data
    assert not any(unpack_payload(packed)[len(data) :])


def test_pack_puts_31_bytes_after_a_zero_byte() -> None:
    packed = pack_payload(bytes(range(1, 63)))
    assert packed[:32] == b"\x00" + bytes(range(1, 32))
    assert packed[32:64] == b"\x00" + bytes(range(32, 63))


def test_blobs_sorted_by_namespace_stably_each_at_a_new_cell() -> None:
    blobs = [(b"\x02", b"b" * 2000), (b"\x01", b"a1"), (b"\x02", b"c"), (b"\x01", b"a2")]
    layout = layout_blobs(blobs, 64)
    assert [(e.namespace[-1:], e.start_cell, e.length) for e in layout.blob_index] == [
        (b"\x01", 0, 2),
        (b"\x01", 1, 2),
        (b"\x02", 2, 2000),
        (b"\x02", 4, 1),
    ]
    assert layout.k == 1 and len(layout.ods) == CELLS_PER_ROW * BYTES_PER_CELL
    datas = [
        blob_data_from_cells(cells_of(layout.ods, e.start_cell, 2), e.length)
        for e in layout.blob_index
    ]
    assert datas == [b"a1", b"a2", b"b" * 2000, b"c"]
    assert not any(layout.ods[5 * BYTES_PER_CELL :])  # unused cells are zero


def test_index_hashes_and_types() -> None:
    entry = layout_blobs([(b"ns", b"x")], 64).blob_index[0]
    assert entry == BlobEntry(bytes(27) + b"ns", 0, 1, blob_hash(b"ns", b"x"))


def test_k_is_smallest_power_of_two() -> None:
    full_row = [(b"n", b"x" * PAYLOAD_BYTES_PER_CELL)] * 64
    assert layout_blobs(full_row, 64).k == 1
    assert layout_blobs(full_row + [(b"n", b"y")], 64).k == 2
    assert layout_blobs(full_row * 2 + [(b"n", b"y")], 64).k == 4
    assert layout_blobs([], 64).k == 1


def test_too_many_rows() -> None:
    with pytest.raises(SquareTooLarge) as info:
        layout_blobs([(b"n", b"x" * PAYLOAD_BYTES_PER_CELL)] * 65, 1)
    assert (info.value.rows_needed, info.value.max_rows) == (2, 1)


def test_blob_over_capacity_and_empty_blob() -> None:
    with pytest.raises(InvalidBlob):
        layout_blobs([(b"n", b"x" * (max_blob_bytes(1) + 1))], 1)
    with pytest.raises(InvalidBlob):
        layout_blobs([(b"n", b"")], 64)
    with pytest.raises(InvalidNamespace):
        layout_blobs([(b"", b"x")], 64)
    with pytest.raises(ValueError):
        layout_blobs([(b"n", b"x")], 3)


def test_blob_data_from_cells_rejects_bad_cells() -> None:
    with pytest.raises(InvalidCell):
        blob_data_from_cells([bytes(BYTES_PER_CELL)], 2000)
    with pytest.raises(InvalidCell):
        blob_data_from_cells([bytes(10)], 1)
    with pytest.raises(InvalidCell):
        blob_data_from_cells([b"\x01" + bytes(BYTES_PER_CELL - 1)], 1)
