"""Protobuf <-> our types: untrusted lengths and coordinates are checked once."""

from __future__ import annotations

import pytest

from da.api import convert
from da.api.client import bearer_metadata
from da.cells import ProvenCell
from da.certificate import Attestation, Certificate
from da.errors import BadCoordinate, InvalidHeader, InvalidRequest
from da.sampling import CellRef
from da.store.blobs import BlobRecord, BlobState
from da.store.checkpoint import SamplingStatus
from da.v1 import da_pb2 as pb
from erasure.errors import InvalidCell, InvalidProof

DATA = bytes(range(256)) * 8
PROOF = b"\xc0" + bytes(47)


def test_cell_round_trip() -> None:
    cell = convert.cell_from_pb(convert.cell_to_pb(3, 127, DATA, PROOF), k=2)
    assert cell == ProvenCell(3, 127, DATA, PROOF)
    assert cell.ref == CellRef(3, 127)
    assert convert.proven_cell_to_pb(cell) == convert.cell_to_pb(3, 127, DATA, PROOF)


@pytest.mark.parametrize(
    ("row", "col", "data", "proof", "error"),
    [
        (0, 0, DATA[:-1], PROOF, InvalidCell),
        (0, 0, DATA + b"\x00", PROOF, InvalidCell),
        (0, 0, DATA, PROOF[:-1], InvalidProof),
        (0, 128, DATA, PROOF, InvalidCell),
        (4, 0, DATA, PROOF, InvalidCell),  # k=2: rows 0..3
    ],
)
def test_cell_from_pb_rejects(row: int, col: int, data: bytes, proof: bytes, error: type) -> None:
    with pytest.raises(error):
        convert.cell_from_pb(pb.Cell(row=row, col=col, data=data, proof=proof), k=2)


def test_coordinates_checked_against_k() -> None:
    coords = convert.coordinates_to_pb([CellRef(0, 0), CellRef(7, 127)])
    assert convert.coordinates_from_pb(coords, k=4) == [CellRef(0, 0), CellRef(7, 127)]
    with pytest.raises(BadCoordinate):
        convert.coordinates_from_pb([pb.CellCoord(row=8, col=0)], k=4)
    with pytest.raises(BadCoordinate):
        convert.coordinates_from_pb([pb.CellCoord(row=0, col=128)], k=4)
    assert convert.check_row(7, 4) == 7
    with pytest.raises(InvalidRequest):
        convert.check_row(8, 4)


def test_signed_header_from_pb_rejects_garbage() -> None:
    msg = convert.signed_header_to_pb(b"not a header", b"\x00" * 96)
    assert msg.header == b"not a header"
    with pytest.raises(InvalidHeader):
        convert.signed_header_from_pb(msg)


@pytest.mark.parametrize("state", list(BlobState))
def test_blob_status_round_trip(state: BlobState) -> None:
    record = BlobRecord(state, height=5, start_cell=9, reason="r")
    msg = convert.blob_status_to_pb(record)
    assert msg.state == int(state)  # the stored numbers are the wire numbers
    assert convert.blob_status_from_pb(msg) == record


def test_unspecified_enums_are_invalid() -> None:
    with pytest.raises(InvalidRequest):
        convert.blob_state_from_pb(pb.BLOB_STATE_UNSPECIFIED)
    with pytest.raises(InvalidRequest):
        convert.availability_from_pb(pb.AVAILABILITY_UNSPECIFIED)
    for status in SamplingStatus:
        assert convert.availability_to_pb(status) == int(status)  # stored numbers are wire numbers
        assert convert.availability_from_pb(convert.availability_to_pb(status)) is status


def test_blob_hash_length() -> None:
    assert convert.blob_hash_from_pb(b"\x01" * 32) == b"\x01" * 32
    with pytest.raises(InvalidRequest):
        convert.blob_hash_from_pb(b"\x01" * 31)


def test_attestation_and_certificate_round_trip_and_lengths() -> None:
    att = Attestation(3, b"\x02" * 32, b"\x03" * 48, b"\x04" * 96)
    assert convert.attestation_from_pb(convert.attestation_to_pb(att)) == att
    with pytest.raises(InvalidRequest, match="signature"):
        convert.attestation_from_pb(
            pb.Attestation(header_hash=b"\x02" * 32, public_key=b"\x03" * 48, signature=b"x")
        )
    cert = Certificate(3, b"\x02" * 32, (b"\x03" * 48, b"\x05" * 48), b"\x04" * 96)
    assert convert.certificate_from_pb(convert.certificate_to_pb(cert)) == cert
    with pytest.raises(InvalidRequest, match="public_key"):
        convert.certificate_from_pb(
            pb.Certificate(header_hash=b"\x02" * 32, public_keys=[b"k"], aggregate_signature=b"")
        )


def test_bearer_metadata() -> None:
    assert bearer_metadata(None) == ()
    assert bearer_metadata("t") == (("authorization", "Bearer t"),)
