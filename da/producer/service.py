"""The producer's gRPC servicers: BlobService (SubmitBlob, GetBlobStatus; GetBlobs from the shared
read side) and AttestationService. Each handler is decode -> act -> encode; errors are raised as
`da.errors` leaves and mapped to status codes by the one table (`da.api.errors`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from da.api import convert
from da.errors import DAError, TooLarge, Unavailable, UnknownBlob
from da.metrics import ProducerMetrics
from da.producer.certify import Certifier
from da.producer.errors import MempoolFull
from da.producer.mempool import Mempool, Submission, submission_from_request
from da.serving import BlobReadServicer
from da.store.base import KeyValueStore
from da.store.blobs import BlobRecord
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc
from erasure.errors import ErasureError

Accept = Callable[[Submission], Awaitable[tuple[BlobRecord, bool]]]
"""Takes a checked blob in: (its record, whether it is new); `Mempool.submit` for a single
producer, `GroupReplica.submit` in a group."""


def _submission_result(error: BaseException) -> str:
    """The `da_blob_submissions_total{result}` label of a refused submission."""
    if isinstance(error, TooLarge):
        return "too_large"
    if isinstance(error, MempoolFull):
        return "mempool_full"
    if isinstance(error, Unavailable):
        return "unavailable"
    return "invalid"


class ProducerBlobServicer(BlobReadServicer):
    """BlobService of the producer: accepts blobs, reports their status, serves GetBlobs."""

    def __init__(
        self,
        store: KeyValueStore,
        mempool: Mempool,
        metrics: ProducerMetrics,
        *,
        max_blob_bytes: int,
        accept: Accept | None = None,
    ) -> None:
        super().__init__(store)
        self._mempool = mempool
        self._accept = accept or mempool.submit
        self._metrics = metrics
        self._max_blob_bytes = max_blob_bytes

    async def SubmitBlob(
        self, request: pb.SubmitBlobRequest, context: Any
    ) -> pb.SubmitBlobResponse:
        try:
            blob = submission_from_request(request.namespace, request.data, self._max_blob_bytes)
            record, new = await self._accept(blob)
        except (DAError, ErasureError) as e:
            self._metrics.observe_submission(_submission_result(e))
            raise
        self._metrics.observe_submission("accepted" if new else "duplicate")
        self._metrics.set_pending_blobs(self._mempool.count)
        return pb.SubmitBlobResponse(
            blob_hash=blob.blob_hash, status=convert.blob_status_to_pb(record)
        )

    async def GetBlobStatus(self, request: pb.GetBlobStatusRequest, context: Any) -> pb.BlobStatus:
        blob_hash = convert.blob_hash_from_pb(request.blob_hash)
        record = await self._mempool.record(blob_hash)
        if record is None:
            raise UnknownBlob(blob_hash)
        return convert.blob_status_to_pb(record)


class AttestationServicer(da_pb2_grpc.AttestationServiceServicer):
    """AttestationService: storage nodes' attestations in, DA certificates out."""

    def __init__(self, certifier: Certifier) -> None:
        self._certifier = certifier

    async def Attest(self, request: pb.Attestation, context: Any) -> pb.AttestResponse:
        accepted = await self._certifier.attest(convert.attestation_from_pb(request))
        return pb.AttestResponse(accepted=accepted)

    async def GetCertificate(
        self, request: pb.GetCertificateRequest, context: Any
    ) -> pb.Certificate:
        return convert.certificate_to_pb(await self._certifier.certificate(request.height))
