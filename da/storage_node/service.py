"""BlobService as a storage node serves it: GetBlobs from the store; blobs are submitted to and
tracked by the producer, so the write and status methods say so."""

from __future__ import annotations

from typing import Any, NoReturn

from da.errors import Unimplemented
from da.serving import BlobReadServicer
from da.v1 import da_pb2 as pb

NOT_A_PRODUCER = "this is a storage node: submit blobs to, and ask their status of, the producer"


class StorageBlobServicer(BlobReadServicer):
    """GetBlobs only; SubmitBlob and GetBlobStatus raise `Unimplemented` (-> UNIMPLEMENTED)."""

    async def SubmitBlob(self, request: pb.SubmitBlobRequest, context: Any) -> NoReturn:
        raise Unimplemented("SubmitBlob", NOT_A_PRODUCER)

    async def GetBlobStatus(self, request: pb.GetBlobStatusRequest, context: Any) -> NoReturn:
        raise Unimplemented("GetBlobStatus", NOT_A_PRODUCER)
