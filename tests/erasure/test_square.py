from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from erasure import (
    InvalidBlob,
    InvalidCell,
    InvalidNamespace,
    SquareTooLarge,
    encode_square,
    kzg,
)
from erasure.constants import BLS_MODULUS, PAYLOAD_BYTES_PER_CELL
from erasure.field import row_points
from erasure.layout import blob_data_from_cells, blob_hash, cells_for_length
from erasure.square import ExtendedSquare
from tests.erasure.conftest import sample_blobs
from tests.erasure.helpers import field_elements, naive_eval


def blob_bytes(sq: ExtendedSquare, start: int, length: int) -> bytes:
    cells = [sq.cell(*divmod(i, 64)) for i in range(start, start + cells_for_length(length))]
    return blob_data_from_cells(cells, length)


def test_blobs_round_trip_through_cells(blobs_k2: list, square_k2: ExtendedSquare) -> None:
    sq = square_k2
    assert sq.k == 2 and len(sq.commitments) == 4 and len(sq.blob_index) == len(blobs_k2)
    expected = sorted(((ns.rjust(29, b"\x00"), d) for ns, d in blobs_k2), key=lambda b: b[0])
    for entry, (ns, data) in zip(sq.blob_index, expected, strict=True):
        assert (entry.namespace, entry.length) == (ns, len(data))
        assert entry.blob_hash == blob_hash(ns, data)
        assert blob_bytes(sq, entry.start_cell, entry.length) == data


def test_every_column_is_a_low_degree_codeword(square_k2: ExtendedSquare) -> None:
    sq, xs = square_k2, row_points(2)
    for col in range(0, 128, 5):
        columns = [field_elements(sq.cell(r, col)) for r in range(4)]
        for j in range(64):
            values = [columns[r][j] for r in range(2)]
            for r in (2, 3):
                assert columns[r][j] == naive_eval(list(xs[:2]), values, xs[r])


def test_k1_columns_are_constant(square_k1: ExtendedSquare) -> None:
    assert square_k1.row_cells(0) == square_k1.row_cells(1)


def test_rows_and_proofs(square_k2: ExtendedSquare) -> None:
    sq = square_k2
    for r in range(4):
        cells = sq.row_cells(r)
        assert len(cells) == 128 and all(len(c) == 2048 for c in cells)
        assert all(len(p) == 48 for p in sq.row_proofs(r))
        assert kzg.verify_cells([sq.commitments[r]] * 128, range(128), cells, sq.row_proofs(r))
    assert all(x < BLS_MODULUS for c in sq.row_cells(3) for x in field_elements(c))


def test_parity_half_of_an_original_row_is_ckzgs_extension(square_k1: ExtendedSquare) -> None:
    cells, proofs = kzg.compute_cells_and_proofs(b"".join(square_k1.row_cells(0)[:64]))
    assert cells == square_k1.row_cells(0) and proofs == square_k1.row_proofs(0)


def test_cell_coordinates_checked(square_k1: ExtendedSquare) -> None:
    for row, col in [(2, 0), (-1, 0), (0, 128)]:
        with pytest.raises(InvalidCell):
            square_k1.cell(row, col)


def test_empty_block_is_a_zero_square() -> None:
    sq = encode_square([])
    assert sq.k == 1 and sq.blob_index == () and not any(sq.cell(1, 127))


@pytest.mark.parametrize(
    ("blobs", "error"),
    [
        ([(b"", b"x")], InvalidNamespace),
        ([(bytes(3), b"x")], InvalidNamespace),
        ([(b"n", b"")], InvalidBlob),
        ([(b"n", b"x" * (PAYLOAD_BYTES_PER_CELL * 64 + 1))], InvalidBlob),
        ([(b"n", b"x" * PAYLOAD_BYTES_PER_CELL)] * 65, SquareTooLarge),
    ],
)
def test_input_validation(blobs: list, error: type) -> None:
    with pytest.raises(error):
        encode_square(blobs, max_rows=1)


def test_thread_executor_gives_the_same_square(square_k4: ExtendedSquare) -> None:
    blobs = sample_blobs(4, [64 * 1984 * 2 + 10])
    with ThreadPoolExecutor(3) as pool:
        assert encode_square(blobs, executor=pool) == square_k4


def test_process_executor_gives_the_same_square(square_k1: ExtendedSquare) -> None:
    with ProcessPoolExecutor(2) as pool:
        assert encode_square(sample_blobs(1, [100, 5_000, 31]), executor=pool) == square_k1
