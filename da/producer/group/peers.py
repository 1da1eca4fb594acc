"""The other replicas of a group as this replica calls them (ReplicaService, and the read side
through `Remote` for rows). Every call has a timeout; answers are converted at the edge and
blobs validated again by the caller (`submission_from_request`): never trust a peer's bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from da.api.client import Metadata, bearer_metadata
from da.storage_node.remotes import Remote
from da.v1 import da_pb2 as pb
from da.v1 import da_pb2_grpc

ReplicaError = (grpc.aio.AioRpcError, TimeoutError)
"""What a call to another replica raises when that replica fails us."""


@dataclass
class ReplicaPeer:
    """Another replica: its `Remote` (rows, headers) and its ReplicaService."""

    remote: Remote
    chain_id: str
    token: str | None = None

    @property
    def address(self) -> str:
        return self.remote.address

    @property
    def _metadata(self) -> Metadata:
        return bearer_metadata(self.token)

    def _stub(self) -> da_pb2_grpc.ReplicaServiceStub:
        return da_pb2_grpc.ReplicaServiceStub(self.remote.channel)

    async def replicate(self, epoch: int, blobs: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """The peer keeps the (namespace, data) blobs durably, in one synced write; returns the
        indexes of those it refused as invalid. Raises `ReplicaError` when it kept none."""
        request = pb.ReplicateBlobsRequest(
            epoch=epoch,
            chain_id=self.chain_id,
            blobs=[pb.PendingBlob(namespace=namespace, data=data) for namespace, data in blobs],
        )
        response = await self._stub().ReplicateBlobs(
            request, timeout=self.remote.timeout, metadata=self._metadata
        )
        return list(response.refused)

    async def pending(self, epoch: int) -> list[tuple[bytes, bytes]]:
        """Every blob pending at the peer, as unchecked (namespace, data) pairs; the peer
        promises to refuse older epochs from now on."""
        request = pb.GetPendingBlobsRequest(epoch=epoch, chain_id=self.chain_id)
        call = self._stub().GetPendingBlobs(
            request, timeout=self.remote.timeout, metadata=self._metadata
        )
        return [(bytes(blob.namespace), bytes(blob.data)) async for blob in call]

    async def share_attestation(self, attestation: pb.Attestation) -> None:
        """Hand a storage node's attestation on to the peer (which checks it again)."""
        await self._stub().ShareAttestation(
            attestation, timeout=self.remote.timeout, metadata=self._metadata
        )

    async def forward(self, namespace: bytes, data: bytes) -> pb.SubmitBlobResponse:
        """A client's blob, submitted at the peer if it leads (else UNAVAILABLE)."""
        request = pb.ForwardBlobRequest(chain_id=self.chain_id, namespace=namespace, data=data)
        response: pb.SubmitBlobResponse = await self._stub().ForwardBlob(
            request, timeout=self.remote.timeout, metadata=self._metadata
        )
        return response


def majority(peers: Sequence[ReplicaPeer]) -> int:
    """Replicas (this one included) that make a majority of the group."""
    return (len(peers) + 1) // 2 + 1
