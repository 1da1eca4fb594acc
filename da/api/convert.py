"""Conversions between protobuf messages (`da.v1.da_pb2`) and our types, named by direction.

`*_from_pb` functions take untrusted messages and validate every length and coordinate once,
raising our errors (`InvalidCell`, `InvalidProof`, `BadCoordinate`, `InvalidHeader`,
`InvalidRequest`), which the error table maps to INVALID_ARGUMENT. `*_to_pb` trust their input.
Code past this module never sees a protobuf message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from da.cells import BlobCells, ProvenCell
from da.certificate import Attestation, Certificate
from da.errors import InvalidRequest
from da.header import HASH_BYTES, SignedHeader, signed_header_from_bytes
from da.sampling import CellRef, cell_ref_from_coordinate, sample_refs_from_coordinates
from da.signing import PUBLIC_KEY_BYTES, SIGNATURE_BYTES
from da.store.blobs import BlobRecord, BlobState
from da.store.checkpoint import SamplingStatus
from da.v1 import da_pb2 as pb
from erasure.constants import (
    BLOB_HASH_BYTES,
    BYTES_PER_CELL,
    BYTES_PER_PROOF,
    CELLS_PER_EXT_ROW,
)
from erasure.errors import InvalidCell, InvalidProof

# --- cells ----------------------------------------------------------------------------------


def cell_to_pb(row: int, col: int, data: bytes, proof: bytes) -> pb.Cell:
    return pb.Cell(row=row, col=col, data=data, proof=proof)


def proven_cell_to_pb(cell: ProvenCell) -> pb.Cell:
    return pb.Cell(row=cell.row, col=cell.col, data=cell.data, proof=cell.proof)


def cell_from_pb(msg: pb.Cell, k: int | None = None) -> ProvenCell:
    """A checked cell: 2048 data bytes, 48 proof bytes, col < 128 and, given `k`, row < 2k.

    Raises `InvalidCell` (bad length or coordinate) or `InvalidProof` (bad proof length).
    """
    row, col = msg.row, msg.col
    if len(msg.data) != BYTES_PER_CELL:
        message = f"cell ({row}, {col}) data must be {BYTES_PER_CELL} bytes, got {len(msg.data)}"
        raise InvalidCell(message, row, col)
    if len(msg.proof) != BYTES_PER_PROOF:
        raise InvalidProof(f"cell ({row}, {col}) proof must be {BYTES_PER_PROOF} bytes")
    rows = 2 * k if k is not None else None
    if col >= CELLS_PER_EXT_ROW or (rows is not None and row >= rows):
        raise InvalidCell(f"cell ({row}, {col}) is outside the extended square", row, col)
    return ProvenCell(row, col, bytes(msg.data), bytes(msg.proof))


def cells_from_pb(msgs: Iterable[pb.Cell], k: int | None = None) -> list[ProvenCell]:
    return [cell_from_pb(msg, k) for msg in msgs]


def coordinates_from_pb(msgs: Iterable[pb.CellCoord], k: int) -> list[CellRef]:
    """A GetSamples request's coordinates: at most `MAX_SAMPLES_PER_REQUEST`, distinct, inside
    the square (PROTOCOL.md §11); raises `InvalidRequest`/`BadCoordinate` (INVALID_ARGUMENT)."""
    return sample_refs_from_coordinates(k, ((msg.row, msg.col) for msg in msgs))


def coordinates_to_pb(refs: Iterable[CellRef]) -> list[pb.CellCoord]:
    return [pb.CellCoord(row=ref.row, col=ref.col) for ref in refs]


def check_row(row: int, k: int) -> int:
    """`row` if it is a row of the 2k-row extended square; raises `BadCoordinate`."""
    return cell_ref_from_coordinate(k, row, 0).row


# --- headers --------------------------------------------------------------------------------


def signed_header_to_pb(raw: bytes, signature: bytes) -> pb.SignedHeader:
    return pb.SignedHeader(header=raw, signature=signature)


def signed_header_from_pb(msg: pb.SignedHeader) -> SignedHeader:
    """The decoded header; raises `InvalidHeader` (form only: verify it separately)."""
    return signed_header_from_bytes(msg.header, msg.signature)


# --- blobs ----------------------------------------------------------------------------------


_STATE_TO_PB = {state: pb.BlobState.Value(state.name) for state in BlobState}
_STATE_FROM_PB = {value: state for state, value in _STATE_TO_PB.items()}


def blob_state_to_pb(state: BlobState) -> pb.BlobState:
    return _STATE_TO_PB[state]


def blob_state_from_pb(value: int) -> BlobState:
    """Raises `InvalidRequest` for UNSPECIFIED or unknown values."""
    try:
        return _STATE_FROM_PB[value]
    except KeyError:
        raise InvalidRequest(f"unknown blob state {value}") from None


def blob_status_to_pb(record: BlobRecord) -> pb.BlobStatus:
    return pb.BlobStatus(
        state=blob_state_to_pb(record.state),
        height=record.height,
        start_cell=record.start_cell,
        reason=record.reason,
    )


def blob_status_from_pb(msg: pb.BlobStatus) -> BlobRecord:
    return BlobRecord(blob_state_from_pb(msg.state), msg.height, msg.start_cell, msg.reason)


def blob_hash_from_pb(raw: bytes) -> bytes:
    """A 32-byte blob hash; raises `InvalidRequest`."""
    if len(raw) != BLOB_HASH_BYTES:
        raise InvalidRequest(f"blob_hash must be {BLOB_HASH_BYTES} bytes, got {len(raw)}")
    return bytes(raw)


# --- attestations and certificates ----------------------------------------------------------


def attestation_to_pb(att: Attestation) -> pb.Attestation:
    return pb.Attestation(
        height=att.height,
        header_hash=att.header_hash,
        public_key=att.public_key,
        signature=att.signature,
    )


def attestation_from_pb(msg: pb.Attestation) -> Attestation:
    """Lengths checked (signature validity is the producer's job); raises `InvalidRequest`."""
    _check_len("header_hash", msg.header_hash, HASH_BYTES)
    _check_len("public_key", msg.public_key, PUBLIC_KEY_BYTES)
    _check_len("signature", msg.signature, SIGNATURE_BYTES)
    return Attestation(
        msg.height, bytes(msg.header_hash), bytes(msg.public_key), bytes(msg.signature)
    )


def certificate_to_pb(cert: Certificate) -> pb.Certificate:
    return pb.Certificate(
        height=cert.height,
        header_hash=cert.header_hash,
        public_keys=list(cert.public_keys),
        aggregate_signature=cert.aggregate_signature,
    )


def certificate_from_pb(msg: pb.Certificate) -> Certificate:
    """Lengths checked; raises `InvalidRequest`."""
    _check_len("header_hash", msg.header_hash, HASH_BYTES)
    for key in msg.public_keys:
        _check_len("public_key", key, PUBLIC_KEY_BYTES)
    _check_len("aggregate_signature", msg.aggregate_signature, SIGNATURE_BYTES)
    keys = tuple(bytes(key) for key in msg.public_keys)
    return Certificate(msg.height, bytes(msg.header_hash), keys, bytes(msg.aggregate_signature))


def _check_len(name: str, value: bytes, expected: int) -> None:
    if len(value) != expected:
        raise InvalidRequest(f"{name} must be {expected} bytes, got {len(value)}")


# --- availability ---------------------------------------------------------------------------


_AVAILABILITY_TO_PB = {status: pb.Availability.Value(status.name) for status in SamplingStatus}
_AVAILABILITY_FROM_PB = {value: status for status, value in _AVAILABILITY_TO_PB.items()}


def availability_to_pb(status: SamplingStatus) -> pb.Availability:
    return _AVAILABILITY_TO_PB[status]


def availability_from_pb(value: int) -> SamplingStatus:
    """Raises `InvalidRequest` for UNSPECIFIED or unknown values."""
    try:
        return _AVAILABILITY_FROM_PB[value]
    except KeyError:
        raise InvalidRequest(f"unknown availability {value}") from None


def cells_to_pb(cells: Sequence[ProvenCell]) -> list[pb.Cell]:
    return [proven_cell_to_pb(cell) for cell in cells]


def blob_cells_to_pb(blob: BlobCells) -> pb.Blob:
    return pb.Blob(
        namespace=blob.namespace,
        data=blob.data,
        blob_hash=blob.blob_hash,
        start_cell=blob.start_cell,
        cells=cells_to_pb(blob.cells),
    )


def served_cells_from_pb(msgs: Iterable[pb.Cell]) -> list[ProvenCell]:
    """Cells exactly as a peer served them, lengths and coordinates NOT checked: a light client
    checks them against what it asked for and flags a malformed answer as misbehaviour
    (`light_client.sampler`), where `cells_from_pb` would only raise."""
    return [ProvenCell(c.row, c.col, bytes(c.data), bytes(c.proof)) for c in msgs]


# --- blobs as served (GetBlobs) -------------------------------------------------------------


def served_blob_from_pb(msg: pb.Blob, k: int) -> BlobCells:
    """One blob of a `GetBlobs` answer, lengths and coordinates checked, NOT yet verified (the
    client rebuilds the data from the cells once they verify). Raises `InvalidRequest` (bad
    hash length), `InvalidCell` or `InvalidProof`."""
    return BlobCells(
        bytes(msg.namespace),
        bytes(msg.data),
        blob_hash_from_pb(msg.blob_hash),
        msg.start_cell,
        tuple(cells_from_pb(msg.cells, k)),
    )
