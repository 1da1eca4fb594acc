"""Key formats: fixed width, numeric order is byte order, tables do not overlap."""

from __future__ import annotations

import pytest

from da.store import schema


def test_heights_sort_numerically() -> None:
    heights = [0, 1, 255, 256, 65535, 2**32, 2**64 - 1]
    assert sorted(schema.signed_header_key(h) for h in heights) == [
        schema.signed_header_key(h) for h in heights
    ]
    assert sorted(schema.row_key(h, r) for h in [1, 2] for r in [300, 2]) == [
        schema.row_key(1, 2),
        schema.row_key(1, 300),
        schema.row_key(2, 2),
        schema.row_key(2, 300),
    ]


def test_round_trips() -> None:
    assert schema.height_from_block_key(schema.block_key(2**40)) == 2**40
    assert schema.seq_from_pending_key(schema.pending_blob_key(17)) == 17
    assert schema.height_from_light_result_key(schema.light_result_key(3)) == 3
    assert schema.row_key(4, 9).startswith(schema.rows_prefix(4))
    assert schema.attestation_key(4, bytes(48)).startswith(schema.attestations_prefix(4))


def test_table_tags_are_distinct_single_bytes() -> None:
    tags = [
        schema.SIGNED_HEADER,
        schema.BLOCK,
        schema.ROW,
        schema.PENDING_BLOB,
        schema.BLOB_RECORD,
        schema.CERTIFICATE,
        schema.ATTESTATION,
        schema.LIGHT_RESULT,
        schema.META,
    ]
    assert len(set(tags)) == len(tags) and all(len(t) == 1 for t in tags)


def test_stored_row_size() -> None:
    assert schema.BYTES_PER_STORED_ROW == 128 * 2048 + 128 * 48


@pytest.mark.parametrize(
    "call",
    [
        lambda: schema.u64(-1),
        lambda: schema.u64(2**64),
        lambda: schema.row_key(1, 2**16),
        lambda: schema.blob_record_key(b"short"),
        lambda: schema.attestation_key(1, b"short"),
    ],
)
def test_rejects_out_of_range(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
