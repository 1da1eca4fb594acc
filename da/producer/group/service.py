"""ReplicaService: the group's internal RPCs (DESIGN 11), served by every replica. Handlers are
decode -> act -> encode; the blobs in them are validated again here (`GroupIntake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from da.api import convert
from da.producer.errors import NotLeader
from da.producer.group.intake import GroupIntake
from da.producer.mempool import submission_from_request
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

REPLICA_SERVICE = "da.v1.ReplicaService"
REPLICA_METHODS = (
    "/da.v1.ReplicaService/ReplicateBlob",
    "/da.v1.ReplicaService/GetPendingBlobs",
    "/da.v1.ReplicaService/ForwardBlob",
)


class ReplicaServicer(da_pb2_grpc.ReplicaServiceServicer):
    """The other replicas' way in: blobs to keep, pending blobs to hand over, forwarded blobs."""

    def __init__(self, intake: GroupIntake, *, max_blob_bytes: int) -> None:
        self._intake = intake
        self._max_blob_bytes = max_blob_bytes

    async def ReplicateBlob(
        self, request: pb.ReplicateBlobRequest, context: Any
    ) -> pb.ReplicateBlobResponse:
        await self._intake.keep(request.epoch, request.namespace, request.data)
        return pb.ReplicateBlobResponse()

    async def GetPendingBlobs(
        self, request: pb.GetPendingBlobsRequest, context: Any
    ) -> AsyncIterator[pb.PendingBlob]:
        for blob in await self._intake.promise(request.epoch):
            yield pb.PendingBlob(namespace=blob.namespace, data=blob.data)

    async def ForwardBlob(
        self, request: pb.SubmitBlobRequest, context: Any
    ) -> pb.SubmitBlobResponse:
        blob = submission_from_request(request.namespace, request.data, self._max_blob_bytes)
        if not self._intake.leading:
            raise NotLeader("this producer replica does not lead the group")
        record, _new = await self._intake.accept_as_leader(blob)
        return pb.SubmitBlobResponse(
            blob_hash=blob.blob_hash, status=convert.blob_status_to_pb(record)
        )
