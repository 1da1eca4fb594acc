"""BlobService as a storage node serves it: GetBlobs from the store; blobs are submitted to and
tracked by the producer, so the write and status methods say so."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from da.serving import BlobReadServicer
from da.v1 import da_pb2 as pb

NOT_A_PRODUCER = "this is a storage node: submit blobs to, and ask their status of, the producer"


class StorageBlobServicer(BlobReadServicer):
    """GetBlobs only; SubmitBlob and GetBlobStatus answer UNIMPLEMENTED with a message."""

    async def SubmitBlob(self, request: pb.SubmitBlobRequest, context: Any) -> NoReturn:
        await _refuse(context)

    async def GetBlobStatus(self, request: pb.GetBlobStatusRequest, context: Any) -> NoReturn:
        await _refuse(context)


async def _refuse(context: Any) -> NoReturn:
    # UNIMPLEMENTED is not an error of ours (the error table has no entry for it): the method
    # exists in the service but not in this role, so the status is set here directly.
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, NOT_A_PRODUCER)
    raise AssertionError("abort returned")  # pragma: no cover - context.abort always raises
