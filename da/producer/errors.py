"""Errors only the producer raises, as leaves of the `da.errors` bases the gRPC table maps."""

from __future__ import annotations

from da.errors import InvalidRequest, NotFound, PermissionDenied, ResourceExhausted


class BadAttestation(InvalidRequest):
    """An attestation does not match the stored header of its height or its signature does not
    verify (-> INVALID_ARGUMENT). The same attestation fails again: the storage node must not
    retry it (it is final for `da.storage_node.attest`)."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"attestation for height {height} refused: {reason}")
        self.args = (height, reason)
        self.height = height


class MempoolFull(ResourceExhausted):
    """The producer holds `limit` bytes of pending blobs already (-> RESOURCE_EXHAUSTED).

    Retrying after a few blocks (or at another producer) can help."""

    def __init__(self, pending_bytes: int, limit: int) -> None:
        super().__init__(pending_bytes, limit)
        self.pending_bytes = pending_bytes
        self.limit = limit

    def __str__(self) -> str:
        return (
            f"the producer's mempool is full ({self.pending_bytes} bytes pending, "
            f"limit {self.limit}); retry after a few blocks"
        )


class NoCertificate(NotFound):
    """No DA certificate was formed for this height (yet): fewer than the quorum of storage
    nodes attested it, or there is no block there. Asking again later can help."""

    def __init__(self, height: int) -> None:
        super().__init__(height)
        self.height = height

    def __str__(self) -> str:
        return f"no certificate for height {self.height}"


class NotAnOperator(PermissionDenied):
    """An attestation is signed by a key that is not one of the producer's `--operator`s
    (-> PERMISSION_DENIED): it never counts here, so resending it cannot help."""

    def __init__(self, public_key: bytes) -> None:
        super().__init__(f"key {public_key.hex()[:16]}... is not an operator of this producer")
        self.args = (public_key,)
        self.public_key = public_key
