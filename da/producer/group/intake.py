"""SubmitBlob in a producer group: only the leader takes blobs in."""

from __future__ import annotations

from da.producer.errors import NotLeader
from da.producer.group.leader import Leadership
from da.producer.mempool import Mempool, Submission
from da.store.blobs import BlobRecord


class GroupIntake:
    """The `accept` of the BlobService in group mode."""

    def __init__(self, mempool: Mempool, leadership: Leadership) -> None:
        self._mempool = mempool
        self._leadership = leadership

    async def submit(self, blob: Submission) -> tuple[BlobRecord, bool]:
        """Accept `blob` into the mempool if this replica leads; else `NotLeader`."""
        if not self._leadership.leading:
            raise NotLeader("this producer replica is not the group's leader; try another")
        return await self._mempool.submit(blob)
