"""Errors only the producer raises, as leaves of the `da.errors` bases the gRPC table maps."""

from __future__ import annotations

from da.errors import InvalidRequest, NotFound, PermissionDenied, ResourceExhausted, Unavailable


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


class NotLeader(Unavailable):
    """This replica of a producer group does not lead (or just stopped leading) and cannot
    forward the request to a leader (-> UNAVAILABLE). Retrying shortly, here or at another
    replica, can help: a new leader is chosen within about a lease."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class CommitRefused(Unavailable):
    """etcd refused to commit a header (the epoch is no longer current, or the height or tip
    moved): this replica lost the leadership and discards the header (-> UNAVAILABLE)."""

    def __init__(self, height: int, epoch: int) -> None:
        super().__init__(f"header {height} of epoch {epoch} refused by etcd: not the leader")
        self.height = height
        self.epoch = epoch


class StaleEpoch(Unavailable):
    """A replica was asked to keep a blob for epoch `epoch` after it had seen or promised the
    newer epoch `promised` (-> UNAVAILABLE): the caller no longer leads the group."""

    def __init__(self, epoch: int, promised: int) -> None:
        super().__init__(f"epoch {epoch} is stale: this replica follows epoch {promised}")
        self.epoch = epoch
        self.promised = promised


class WrongGroup(InvalidRequest):
    """A replica of chain `caller` called a replica of chain `ours` (-> INVALID_ARGUMENT): the
    caller's --replica list names a replica of another group. Retrying never helps."""

    def __init__(self, caller: str, ours: str) -> None:
        super().__init__(
            f"this producer replica serves chain {ours!r}, not {caller!r}: check --replica"
        )
        self.caller = caller
        self.ours = ours
