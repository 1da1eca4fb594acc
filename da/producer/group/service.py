"""ReplicaService: the group's internal RPCs (PROTOCOL.md §12), served by every replica. Handlers
are decode -> act -> encode; the blobs in them are validated again here (`GroupIntake`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from da.api import convert
from da.producer.certify import Certifier
from da.producer.errors import NotLeader, WrongGroup
from da.producer.group.intake import GroupIntake
from da.producer.group.peers import ReplicaPeer
from da.producer.mempool import submission_from_request
from da.producer.service import AttestationServicer
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

log = logging.getLogger(__name__)

REPLICA_SERVICE = "da.v1.ReplicaService"
REPLICA_METHODS = (
    "/da.v1.ReplicaService/ReplicateBlobs",
    "/da.v1.ReplicaService/GetPendingBlobs",
    "/da.v1.ReplicaService/ForwardBlob",
    "/da.v1.ReplicaService/ShareAttestation",
)
SHARE_CONCURRENCY = 64  # attestations being handed on at once; beyond, later ones are dropped


class ReplicaServicer(da_pb2_grpc.ReplicaServiceServicer):
    """The other replicas' way in: blobs to keep, pending blobs to hand over, forwarded blobs."""

    def __init__(
        self, intake: GroupIntake, certifier: Certifier, *, chain_id: str, max_blob_bytes: int
    ) -> None:
        self._intake = intake
        self._certifier = certifier
        self._chain_id = chain_id
        self._max_blob_bytes = max_blob_bytes

    def _check_chain(self, chain_id: str) -> None:
        if chain_id != self._chain_id:
            raise WrongGroup(chain_id, self._chain_id)

    async def ReplicateBlobs(
        self, request: pb.ReplicateBlobsRequest, context: Any
    ) -> pb.ReplicateBlobsResponse:
        self._check_chain(request.chain_id)
        blobs = [(blob.namespace, blob.data) for blob in request.blobs]
        refused = await self._intake.keep(request.epoch, blobs)
        return pb.ReplicateBlobsResponse(refused=refused)

    async def GetPendingBlobs(
        self, request: pb.GetPendingBlobsRequest, context: Any
    ) -> AsyncIterator[pb.PendingBlob]:
        self._check_chain(request.chain_id)
        for blob in await self._intake.promise(request.epoch):
            yield pb.PendingBlob(namespace=blob.namespace, data=blob.data)

    async def ForwardBlob(
        self, request: pb.ForwardBlobRequest, context: Any
    ) -> pb.SubmitBlobResponse:
        self._check_chain(request.chain_id)
        blob = submission_from_request(request.namespace, request.data, self._max_blob_bytes)
        if not self._intake.leading:
            raise NotLeader("this producer replica does not lead the group")
        record, _new = await self._intake.accept_as_leader(blob)
        return pb.SubmitBlobResponse(
            blob_hash=blob.blob_hash, status=convert.blob_status_to_pb(record)
        )

    async def ShareAttestation(self, request: pb.Attestation, context: Any) -> pb.AttestResponse:
        accepted = await self._certifier.attest(convert.attestation_from_pb(request))
        return pb.AttestResponse(accepted=accepted)


class GroupAttestationServicer(AttestationServicer):
    """AttestationService of a replica: an attestation accepted here is handed on to every
    other replica in the background, so each forms the certificate and `GetCertificate` answers
    at any of them. Best effort: a replica down or without the block yet misses it."""

    def __init__(self, certifier: Certifier, peers: Sequence[ReplicaPeer]) -> None:
        super().__init__(certifier)
        self._peers = list(peers)
        self._sharing: set[asyncio.Task[None]] = set()

    async def Attest(self, request: pb.Attestation, context: Any) -> pb.AttestResponse:
        answer = await super().Attest(request, context)
        if answer.accepted and len(self._sharing) < SHARE_CONCURRENCY:
            task = asyncio.create_task(self._share(request))
            self._sharing.add(task)
            task.add_done_callback(self._sharing.discard)
        return answer

    async def _share(self, request: pb.Attestation) -> None:
        results = await asyncio.gather(
            *(peer.share_attestation(request) for peer in self._peers), return_exceptions=True
        )
        for peer, result in zip(self._peers, results, strict=True):
            if isinstance(result, BaseException):
                log.info(
                    "attestation for height %d not shared with %s: %s",
                    request.height,
                    peer.address,
                    result,
                )
