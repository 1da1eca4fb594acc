"""What the client raises: one base, `ClientError`, and a leaf per way a call can fail."""

from __future__ import annotations

from da.errors import DAError


class ClientError(DAError):
    """Base of the client's errors; also raised for bad arguments (nothing was sent)."""


class RemoteError(ClientError):
    """A node answered with an error status (or none answered in time). `code` is the gRPC status
    name ("UNAVAILABLE", "NOT_FOUND", ...). Retrying elsewhere helps for UNAVAILABLE and
    DEADLINE_EXCEEDED; NOT_FOUND means the node does not hold what was asked."""

    def __init__(self, address: str, method: str, code: str, details: str) -> None:
        self.address = address
        self.method = method
        self.code = code
        self.details = details
        super().__init__(f"{method} at {address}: {code}: {details}")


class VerificationError(ClientError):
    """A node's answer failed verification (header signature or chain, a cell proof, a blob
    missing from the answer, data not hashing to the header's blob hash). Another node may
    answer honestly; this one must not be believed."""


class BlobRejected(ClientError):
    """The producer rejected the submitted blob (`reason` says why); resubmitting will not help."""

    def __init__(self, blob_hash: bytes, reason: str) -> None:
        self.blob_hash = blob_hash
        self.reason = reason
        super().__init__(f"blob {blob_hash.hex()} rejected: {reason or 'no reason given'}")


class WaitTimeout(ClientError, TimeoutError):
    """`submit(wait=...)` ran out of time; the blob stays submitted (`state` is the last seen)."""

    def __init__(self, blob_hash: bytes, wanted: str, state: str, seconds: float) -> None:
        self.blob_hash = blob_hash
        self.state = state
        super().__init__(
            f"blob {blob_hash.hex()} still {state} after {seconds:g} s (waiting for {wanted})"
        )
