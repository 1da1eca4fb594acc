from collections.abc import Iterator

import pytest

from da import encoder_pool
from da.encoder_pool import EncoderPool, make_encoder_pool
from erasure import encode_square, parallel
from erasure.constants import BYTES_PER_ROW
from erasure.field import lagrange_matrix, matrix_times_rows, row_points
from erasure.parallel import RowBatch, batch_rows, encode_square_stream, extend_columns
from erasure.square import ExtendedSquare
from tests.erasure.conftest import sample_blobs

K4_BLOBS = [64 * 1984 * 2 + 10]


@pytest.fixture(scope="module")
def pool() -> Iterator[EncoderPool]:
    """Two long-lived local workers, shared by the tests of this module."""
    encoder_pool = make_encoder_pool(2)
    yield encoder_pool
    encoder_pool.shutdown()


def test_pool_encoding_equals_single_process(pool: EncoderPool, square_k4: ExtendedSquare) -> None:
    assert pool.workers == 2
    assert encode_square(sample_blobs(4, K4_BLOBS), executor=pool) == square_k4


def test_pool_encoding_of_a_one_row_square(pool: EncoderPool, square_k1: ExtendedSquare) -> None:
    assert encode_square(sample_blobs(1, [100, 5_000, 31]), executor=pool) == square_k1


@pytest.mark.parametrize("use_pool", [False, True])
def test_stream_yields_every_row_once_and_matches(
    use_pool: bool, pool: EncoderPool, square_k4: ExtendedSquare
) -> None:
    batches: list[RowBatch] = []
    summary = encode_square_stream(
        sample_blobs(4, K4_BLOBS), executor=pool if use_pool else None, on_rows=batches.append
    )
    rows = [r for batch in batches for r in batch.rows]
    assert sorted(rows) == list(range(8))
    assert (summary.k, summary.commitments) == (4, square_k4.commitments)
    assert summary.blob_index == square_k4.blob_index
    for batch in batches:
        for i, r in enumerate(batch.rows):
            assert batch.cells[i] == square_k4.row_cells(r)
            assert batch.proofs[i] == square_k4.row_proofs(r)


def test_an_error_in_on_rows_propagates(pool: EncoderPool) -> None:
    def fail(batch: RowBatch) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        encode_square_stream(sample_blobs(4, K4_BLOBS), executor=pool, on_rows=fail)
    assert encode_square(sample_blobs(1, [10]), executor=pool).k == 1  # the pool still works


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2", encoder_pool.MAX_WORKERS + 1])
def test_worker_count_is_validated(workers: object) -> None:
    with pytest.raises(ValueError, match="workers"):
        make_encoder_pool(workers)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1, 2, 4, 64, 512])
@pytest.mark.parametrize("workers", [1, 2, 3, 16])
def test_batches_are_powers_of_two_dividing_k(k: int, workers: int) -> None:
    size = batch_rows(k, workers)
    assert 1 <= size <= parallel.MAX_BATCH_ROWS and k % size == 0 and size & (size - 1) == 0


def test_chunked_vertical_extension_equals_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [bytes([0, r + 1]) * (BYTES_PER_ROW // 2) for r in range(4)]  # canonical elements
    xs = row_points(4)
    whole = matrix_times_rows(lagrange_matrix(xs[:4], xs[4:]), rows)
    monkeypatch.setattr(parallel, "VERTICAL_CHUNK_ELEMENTS", 4 * 512)
    assert extend_columns(4, rows) == whole


@pytest.mark.slow
def test_dask_cluster_encodes_the_same_square(pool: EncoderPool) -> None:
    distributed = pytest.importorskip("distributed")
    blobs = sample_blobs(2, [70_000, 50_000])
    local = encode_square(blobs, executor=pool)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        dask_pool = make_encoder_pool(2, dask_scheduler=cluster.scheduler_address)
        try:
            assert dask_pool.workers == 2
            assert encode_square(blobs, executor=dask_pool) == local
        finally:
            dask_pool.shutdown()
