"""Replicated intake (PROTOCOL.md §12): SubmitBlob at any replica, acknowledged only once the blob
is synced on a majority of the replicas.

- At a follower, a submission is forwarded to the leader (the replica that last accepted one is
  asked first); nobody leading: UNAVAILABLE.
- At the leader, the blob is synced locally and, at the same time, sent to every other replica
  (`ReplicateBlobs`, tagged with the epoch); the answer waits for a majority (2 of 3) to hold it.
  Group commit: blobs submitted while a call to a peer is under way go together in the next one
  (`Batcher`), which the peer validates blob by blob and syncs in one write, as the local
  mempool does with concurrent submissions; so under load one round trip and one fsync per
  replica cover many blobs, and nothing is acknowledged before a majority synced it.
  Fewer: UNAVAILABLE, nothing acknowledged (the blob may still be included later: a retry of it
  is the same blob, so it is included at most once).
- A replica refuses `ReplicateBlobs` of an epoch older than the newest it has seen or promised; a
  new leader collects every pending blob from a majority (`GetPendingBlobs`, which promises its
  epoch) before it builds. Any two majorities share a replica, so a blob acknowledged by an old
  leader is either learned by the new one or was refused (and so never acknowledged).
- The leader includes in blocks only blobs it knows a majority holds, so that a committed block
  can always be rebuilt from replicated blobs if its leader dies before anyone fetched it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from da.batching import Batcher
from da.errors import DAError, InvalidRequest, Unavailable
from da.metrics import GroupMetrics
from da.producer.errors import NotLeader, StaleEpoch
from da.producer.group.leader import Leadership
from da.producer.group.peers import ReplicaError, ReplicaPeer, majority
from da.producer.mempool import Mempool, Submission, submission_from_request
from da.store.blobs import BlobRecord, BlobState, PendingBlob, compute_blob_hash
from erasure.errors import ErasureError

log = logging.getLogger(__name__)

PUSH_CONCURRENCY = 16  # blobs re-replicated at once when taking over
# Bytes of blob framing in a ReplicateBlobs request beyond the data (namespace, tags): a batch of
# blobs weighing at most `max_blob_bytes` fits any replica's request limit, as one blob does.
BLOB_FRAMING_BYTES = 64
# ReplicateBlobs calls under way to one peer at once: a blob waits for a free call, not for the
# whole round trip of the one before (the peer's syncs of concurrent calls share an fsync).
REPLICATION_IN_FLIGHT = 4

Replication = tuple[int, bytes, bytes]
"""A blob on its way to a peer: (epoch, namespace, data)."""


class GroupIntake:
    """Blob intake of one replica: `submit` for clients, the follower side of ReplicaService,
    and `take_over` for a new leader."""

    def __init__(
        self,
        mempool: Mempool,
        leadership: Leadership,
        peers: Sequence[ReplicaPeer],
        metrics: GroupMetrics,
        *,
        max_blob_bytes: int,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._mempool = mempool
        self._leadership = leadership
        self._peers = list(peers)
        self._metrics = metrics
        self._max_blob_bytes = max_blob_bytes
        self._timer = timer
        self._majority = majority(self._peers)
        self._senders: list[Batcher[Replication, bool]] = [
            Batcher(
                _sender(peer),
                weight=lambda item: len(item[2]) + BLOB_FRAMING_BYTES,
                max_batch_weight=max_blob_bytes,
                in_flight=REPLICATION_IN_FLIGHT,
            )
            for peer in self._peers
        ]
        # The epoch checks of ReplicaService, in order: a call admitted under an epoch is
        # durable before a newer epoch's promise answers.
        self._lock = asyncio.Lock()
        self._admitted: set[asyncio.Future[list[tuple[BlobRecord, bool] | BaseException]]] = set()
        self._background: set[asyncio.Task[int]] = set()
        self._leader_hint = 0
        self.promised = 0  # the newest epoch seen or promised here
        self.replicated: set[bytes] = set()  # leader: blob hashes a majority holds

    @property
    def leading(self) -> bool:
        return self._leadership.leading

    # --- clients --------------------------------------------------------------------------------

    async def submit(self, blob: Submission) -> tuple[BlobRecord, bool]:
        """SubmitBlob: at the leader, accepted once a majority holds it; elsewhere forwarded."""
        if self._leadership.leading:
            return await self.accept_as_leader(blob)
        return await self._forward(blob)

    async def accept_as_leader(self, blob: Submission) -> tuple[BlobRecord, bool]:
        """Sync `blob` here and on the other replicas at once; answer once a majority holds it,
        else raise `Unavailable`. (A blob sent to the peers but refused here, e.g. by a full
        mempool, was not acknowledged: the peers merely hold a blob that may be included.)"""
        epoch = self._leadership.epoch
        started = self._timer()
        if blob.blob_hash in self.replicated:
            return await self._mempool.submit(blob)
        local = asyncio.ensure_future(self._mempool.submit(blob))
        try:
            held = 1 + await self._replicate(epoch, blob.namespace, blob.data)
        finally:
            record, new = await local
        if record.state is not BlobState.PENDING:
            return record, new
        if held < self._majority:
            raise Unavailable(
                f"only {held} of {len(self._peers) + 1} producer replicas hold the blob, a "
                f"majority of {self._majority} is needed: not acknowledged; retry later"
            )
        if not self._leadership.leading or self._leadership.epoch != epoch:
            raise NotLeader("this replica stopped leading while replicating the blob; retry")
        self.replicated.add(blob.blob_hash)
        self._metrics.observe_replication(self._timer() - started)
        return record, new

    def eligible(self, blob: PendingBlob) -> bool:
        """Whether a majority holds this pending blob (the leader includes only those)."""
        return _hash(blob) in self.replicated

    def included(self, blobs: Sequence[PendingBlob]) -> None:
        """`blobs` left the mempool in a block: no longer tracked."""
        self.replicated -= {_hash(blob) for blob in blobs}

    async def _forward(self, blob: Submission) -> tuple[BlobRecord, bool]:
        order = self._peers[self._leader_hint :] + self._peers[: self._leader_hint]
        for peer in order:
            try:
                answer = await peer.forward(blob.namespace, blob.data)
            except ReplicaError as e:
                if _code(e) == "INVALID_ARGUMENT":
                    raise InvalidRequest(_details(e)) from None
                continue
            self._leader_hint = self._peers.index(peer)
            status = answer.status
            record = BlobRecord(BlobState(status.state), status.height, status.start_cell)
            return record, False
        raise NotLeader("no producer replica leads the group right now; retry in a few seconds")

    # --- the follower side of ReplicaService -------------------------------------------------

    async def keep(self, epoch: int, blobs: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """ReplicateBlobs: validate each blob again and sync the valid ones in one write,
        unless `epoch` is stale; returns the indexes of the invalid ones (not kept)."""
        checked: list[Submission] = []
        refused: list[int] = []
        for index, (namespace, data) in enumerate(blobs):
            try:
                checked.append(submission_from_request(namespace, data, self._max_blob_bytes))
            except (DAError, ErasureError) as e:
                log.warning("the leader sent an invalid blob (%s): not kept", e)
                refused.append(index)
        async with self._lock:
            if epoch < self.promised:
                raise StaleEpoch(epoch, self.promised)
            self.promised = epoch
            write = asyncio.ensure_future(self._mempool.submit_many(checked, limit=False))
            self._admitted.add(write)
            write.add_done_callback(self._admitted.discard)
        outcomes = await asyncio.shield(write)  # concurrent calls share the mempool's fsync
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return refused

    async def promise(self, epoch: int) -> list[PendingBlob]:
        """GetPendingBlobs: promise `epoch` and return every pending blob, those of the
        ReplicateBlobs calls admitted before the promise included (their writes are awaited)."""
        async with self._lock:
            if epoch < self.promised:
                raise StaleEpoch(epoch, self.promised)
            self.promised = epoch
            await asyncio.gather(*self._admitted, return_exceptions=True)
            return await self._mempool.pending()

    def saw_epoch(self, epoch: int) -> None:
        """The leader key in etcd has this epoch: older leaders are refused from now on."""
        self.promised = max(self.promised, epoch)

    # --- a new leader ---------------------------------------------------------------------------

    async def take_over(self, epoch: int) -> None:
        """Before building: learn every pending blob from a majority, then make sure a majority
        holds each pending blob here. Raises `Unavailable` without a majority."""
        self.saw_epoch(epoch)
        self.replicated = set()
        answers = await asyncio.gather(
            *(peer.pending(epoch) for peer in self._peers), return_exceptions=True
        )
        learned = [blobs for blobs in answers if not isinstance(blobs, BaseException)]
        if 1 + len(learned) < self._majority:
            raise Unavailable(
                f"only {1 + len(learned)} of {len(self._peers) + 1} producer replicas answered; "
                f"a majority of {self._majority} is needed to lead"
            )
        held: dict[bytes, int] = {}  # how many of the answering peers hold each blob
        added = 0
        for blobs in learned:
            for namespace, data in blobs:
                blob_hash, new = await self._learn(namespace, data)
                added += new
                if blob_hash is not None:
                    held[blob_hash] = held.get(blob_hash, 0) + 1
        await self._push_pending(epoch, held)
        log.info(
            "took over epoch %d: learned %d pending blobs from %d replicas",
            epoch,
            added,
            len(learned),
        )

    async def _learn(self, namespace: bytes, data: bytes) -> tuple[bytes | None, int]:
        """Keep a blob a peer reported (validated again); (its hash or None, 1 if new here)."""
        try:
            blob = submission_from_request(namespace, data, self._max_blob_bytes)
        except (DAError, ErasureError) as e:
            log.warning("a replica sent an invalid pending blob (%s): ignored", e)
            return None, 0
        _record, new = await self._mempool.submit(blob, limit=False)
        return blob.blob_hash, int(new)

    async def _push_pending(self, epoch: int, held: dict[bytes, int]) -> None:
        """Make sure a majority holds every pending blob here: those the answering peers
        already hold are counted, the others sent to every peer."""
        limit = asyncio.Semaphore(PUSH_CONCURRENCY)

        async def push(blob: PendingBlob) -> None:
            if 1 + held.get(_hash(blob), 0) >= self._majority:
                self.replicated.add(_hash(blob))
                return
            async with limit:
                holders = 1 + await self._replicate(epoch, blob.namespace, blob.data)
            if holders >= self._majority:
                self.replicated.add(_hash(blob))

        await asyncio.gather(*(push(blob) for blob in await self._mempool.pending()))

    async def _replicate(self, epoch: int, namespace: bytes, data: bytes) -> int:
        """Send the blob to every peer; returns how many synced it, as soon as a majority did
        (the others finish in the background, so every replica usually holds every blob)."""
        needed = self._majority - 1
        if needed <= 0:
            return 0
        tasks = [
            asyncio.create_task(sender.submit((epoch, namespace, data))) for sender in self._senders
        ]
        acks = 0
        for done in asyncio.as_completed(tasks):
            acks += int(await done)
            if acks >= needed:
                break
        for task in tasks:
            if not task.done():
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return acks


def _sender(peer: ReplicaPeer) -> Callable[[list[Replication]], Awaitable[list[bool]]]:
    """The batch handler of `peer`'s `Batcher`: one ReplicateBlobs call per epoch in the batch
    (one, but for a leadership change); whether the peer synced each blob (failures logged)."""

    async def send(batch: list[Replication]) -> list[bool]:
        kept: list[bool] = []
        for epoch, items in itertools.groupby(batch, key=lambda item: item[0]):
            blobs = [(namespace, data) for _epoch, namespace, data in items]
            try:
                refused = set(await peer.replicate(epoch, blobs))
            except ReplicaError as e:
                log.info("replica %s did not keep %d blobs: %s", peer.address, len(blobs), e)
                kept += [False] * len(blobs)
                continue
            if refused:
                log.warning("replica %s refused %d blobs as invalid", peer.address, len(refused))
            kept += [index not in refused for index in range(len(blobs))]
        return kept

    return send


def _hash(blob: PendingBlob) -> bytes:
    return compute_blob_hash(blob.namespace, blob.data)


def _code(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return code().name if callable(code) else ""


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    return str(details()) if callable(details) else str(error)
