"""Checks of what nodes serve, against a trust root: headers, blobs and their cells, certificates.

Every function raises `VerificationError` with a message naming what failed (height, blob hash,
cell coordinate), or returns the verified values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from da import signing
from da.cells import BlobCells, ProvenCell, cells_verify
from da.certificate import Certificate
from da.client.errors import VerificationError
from da.client.results import Blob
from da.errors import HeaderRejected
from da.header import (
    Header,
    SignedHeader,
    TrustRoot,
    blob_cells,
    blob_entries_for_namespace,
    verify_signed_header,
)
from erasure.errors import ErasureError
from erasure.layout import BlobEntry, blob_data_from_cells, blob_hash


def verify_header(signed: SignedHeader, trust: TrustRoot, height: int, source: str) -> None:
    """`signed` is the header at `height` (0: any), signed by a trusted producer of the chain."""
    got = signed.header.height
    if height and got != height:
        raise VerificationError(f"{source} answered the header of height {got} for height {height}")
    try:
        verify_signed_header(signed, trust)
    except HeaderRejected as e:
        raise VerificationError(f"header {got} from {source}: {e}") from e


def verify_blobs(
    header: Header, namespace: bytes, served: Sequence[BlobCells], source: str
) -> list[Blob]:
    """The blobs `header` lists under `namespace`, in square order, rebuilt from served cells
    that each verified against their row commitment. Every listed blob must be served, and
    nothing else."""
    listed = blob_entries_for_namespace(header, namespace)
    by_hash = {blob.blob_hash: blob for blob in served}
    where = f"height {header.height}, namespace {namespace.hex()}, from {source}"
    extra = set(by_hash) - {entry.blob_hash for entry in listed}
    if extra:
        raise VerificationError(f"{where}: blob {min(extra).hex()} is not listed in the header")
    if len(by_hash) != len(served):
        raise VerificationError(f"{where}: a blob was served twice")
    for entry in listed:
        if entry.blob_hash not in by_hash:
            raise VerificationError(
                f"{where}: blob {entry.blob_hash.hex()} (start_cell {entry.start_cell}, "
                f"{entry.length} bytes) is listed in the header but was not served"
            )
    cells = {entry: _blob_cells(entry, by_hash[entry.blob_hash], where) for entry in listed}
    _verify_cells(header, [cell for blob in cells.values() for cell in blob], where)
    return [_rebuild(entry, blob, where) for entry, blob in cells.items()]


def _blob_cells(entry: BlobEntry, blob: BlobCells, where: str) -> list[ProvenCell]:
    """The cells of `entry` in order, taken from `blob` by coordinate; all must be there."""
    served = {cell.ref: cell for cell in blob.cells}
    wanted = blob_cells(entry)
    missing = [ref for ref in wanted if ref not in served]
    if missing:
        first = missing[0]
        raise VerificationError(
            f"{where}: blob {entry.blob_hash.hex()} lacks {len(missing)} of its {len(wanted)} "
            f"cells (first: row {first.row}, col {first.col})"
        )
    return [served[ref] for ref in wanted]


def _verify_cells(header: Header, cells: Sequence[ProvenCell], where: str) -> None:
    """One batch check; on failure, find the first bad cell to name it."""
    if cells_verify(header.commitments, cells):
        return
    bad = next((c for c in cells if not cells_verify(header.commitments, [c])), cells[0])
    raise VerificationError(
        f"{where}: the proof of cell (row {bad.row}, col {bad.col}) does not verify against "
        "its row commitment"
    )


def _rebuild(entry: BlobEntry, cells: Sequence[ProvenCell], where: str) -> Blob:
    try:
        data = blob_data_from_cells([cell.data for cell in cells], entry.length)
    except ErasureError as e:
        raise VerificationError(f"{where}: blob {entry.blob_hash.hex()}: {e}") from e
    if blob_hash(entry.namespace, data) != entry.blob_hash:
        raise VerificationError(
            f"{where}: blob {entry.blob_hash.hex()}: its cells do not hash to the blob hash"
        )
    return Blob(entry.namespace, data, entry.blob_hash, entry.start_cell)


def verify_certificate(
    cert: Certificate,
    operators: Iterable[bytes],
    *,
    quorum: int = 1,
    header_hash: bytes | None = None,
) -> None:
    """`cert` is signed (aggregate) by at least `quorum` distinct `operators` over the header hash
    (and that hash is `header_hash` when given)."""
    allowed = frozenset(operators)
    where = f"certificate {cert.height}"
    if header_hash is not None and cert.header_hash != header_hash:
        raise VerificationError(
            f"{where} is for header {cert.header_hash.hex()}, not the trusted header "
            f"{header_hash.hex()}"
        )
    strangers = [key for key in cert.public_keys if key not in allowed]
    if strangers:
        raise VerificationError(f"{where}: signer {strangers[0].hex()} is not a given operator")
    if len(set(cert.public_keys)) < quorum:
        raise VerificationError(
            f"{where}: {len(set(cert.public_keys))} signers, fewer than the quorum of {quorum}"
        )
    if not signing.verify_aggregate(cert.public_keys, cert.header_hash, cert.aggregate_signature):
        raise VerificationError(f"{where}: the aggregate signature does not verify")
