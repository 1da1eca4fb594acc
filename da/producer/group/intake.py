"""Replicated intake (PROTOCOL.md §12): SubmitBlob at any replica, acknowledged only once the blob
is synced on a majority of the replicas.

- At a follower, a submission is forwarded to the leader (the replica that last accepted one is
  asked first); nobody leading: UNAVAILABLE.
- At the leader, blobs are replicated in rounds (a group commit, `Batcher`): the blobs submitted
  while a round lingers (as long as they keep arriving, at most `LINGER_SECONDS`) or
  while the rounds before it run form the next one, which is synced locally in one write and, at
  the same time, sent to every other replica in one `ReplicateBlobs` call (tagged with the epoch;
  the peer validates blob by blob and syncs them in one write). A blob is acknowledged once a
  majority (2 of 3) holds it. So one round trip and one fsync per replica cover every blob of a
  round: a call costs a replica ~1.5 ms of CPU whatever it carries (gRPC in Python, the fsync),
  a blob in it ~0.05 ms, and on a machine the replicas share, calls of one or two blobs each cost
  the group more than half its throughput. The linger is what makes rounds large: without it a
  round holds the few blobs that arrived during the previous round trip (measured at 32
  closed-loop submitters: ~3 blobs a call; lingering while blobs keep coming, up to 20 ms: ~20,
  and the group's throughput more than doubled).
  Fewer than a majority: UNAVAILABLE, nothing acknowledged (the blob may still be included
  later: a retry of it is the same blob, so it is included at most once).
- A replica refuses `ReplicateBlobs` of an epoch older than the newest it has seen or promised; a
  new leader collects every pending blob from a majority (`GetPendingBlobs`, which promises its
  epoch) before it builds. Any two majorities share a replica, so a blob acknowledged by an old
  leader is either learned by the new one or was refused (and so never acknowledged).
- The leader includes in blocks only blobs it knows a majority holds, so that a committed block
  can always be rebuilt from replicated blobs if its leader dies before anyone fetched it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from da.batching import LINGER_SECONDS, QUIET_SECONDS, Batcher
from da.errors import DAError, InvalidRequest, Unavailable
from da.metrics import GroupMetrics
from da.producer.errors import NotLeader, StaleEpoch
from da.producer.group.leader import Leadership
from da.producer.group.peers import ReplicaError, ReplicaPeer, majority
from da.producer.mempool import Mempool, Submission, submission_from_request
from da.store.blobs import BlobRecord, BlobState, PendingBlob, compute_blob_hash
from erasure.errors import ErasureError

log = logging.getLogger(__name__)

# Bytes of blob framing in a ReplicateBlobs request beyond the data (namespace, tags): a round
# weighing at most `max_blob_bytes` fits any replica's request limit, as one blob does.
BLOB_FRAMING_BYTES = 64
# Rounds under way at once: a blob waits for a free round, not for the whole one before it.
ROUNDS_IN_FLIGHT = 2
# Calls to one peer under way at once (a round does not wait for a slow peer once a majority
# holds its blobs; its call goes on in the background): beyond, a round skips that peer.
PEER_CALLS_IN_FLIGHT = 8


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
        self._rounds: Batcher[Submission, tuple[BlobRecord, bool]] = Batcher(
            self._round,
            weight=lambda blob: len(blob.data) + BLOB_FRAMING_BYTES,
            max_batch_weight=max_blob_bytes,
            in_flight=ROUNDS_IN_FLIGHT,
            linger=LINGER_SECONDS if self._peers else 0.0,
            quiet=QUIET_SECONDS,
        )
        self._calls = {peer.address: 0 for peer in self._peers}  # under way, per peer
        self._skipping: set[str] = set()  # peers skipped for having too many calls under way
        self._pushing: asyncio.Task[None] | None = None
        # The epoch checks of ReplicaService, in order: a call admitted under an epoch is
        # durable before a newer epoch's promise answers.
        self._lock = asyncio.Lock()
        self._admitted: set[asyncio.Future[list[tuple[BlobRecord, bool] | BaseException]]] = set()
        self._background: set[asyncio.Task[list[bool]]] = set()
        self._leader_hint = 0
        self.promised = 0  # the newest epoch seen or promised here
        self.replicated: set[bytes] = set()  # leader: blob hashes a majority holds
        self._short: set[bytes] = set()  # leader: pending here, a majority not known to hold them

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
        """Sync `blob` here and on the other replicas (in the next round); answer once a majority
        holds it, else raise `Unavailable`."""
        if blob.blob_hash in self.replicated:
            return await self._mempool.submit(blob)
        started = self._timer()
        record, new = await self._rounds.submit(blob)
        if record.state is BlobState.PENDING:
            self._metrics.observe_replication(self._timer() - started)
        return record, new

    async def _round(
        self, blobs: list[Submission]
    ) -> list[tuple[BlobRecord, bool] | BaseException]:
        """One round: `blobs` synced here and sent to every peer at once; each blob's answer.
        (A blob sent to the peers but refused here, e.g. by a full mempool, was not
        acknowledged: the peers merely hold a blob that may be included.)"""
        epoch = self._leadership.epoch
        async with self._lock:
            # The leader's own copy obeys the same promises as a follower's: once a newer
            # leader collected the pending blobs here, this old epoch writes nothing more; a
            # write admitted before the promise is awaited by it and reported.
            if epoch < self.promised:
                refused = NotLeader(f"a newer leader (epoch {self.promised}) took over; retry")
                return [refused] * len(blobs)
            local = asyncio.ensure_future(self._mempool.submit_many(blobs))
            self._admitted.add(local)
            local.add_done_callback(self._admitted.discard)
        try:
            held = await self._replicate(epoch, [(blob.namespace, blob.data) for blob in blobs])
        finally:
            outcomes = await local
        still_leading = self._leadership.leading and self._leadership.epoch == epoch
        answers: list[tuple[BlobRecord, bool] | BaseException] = []
        for blob, outcome, peers_holding in zip(blobs, outcomes, held, strict=True):
            answers.append(self._answer(blob, outcome, 1 + peers_holding, still_leading))
        return answers

    def _answer(
        self,
        blob: Submission,
        outcome: tuple[BlobRecord, bool] | BaseException,
        holders: int,
        still_leading: bool,
    ) -> tuple[BlobRecord, bool] | BaseException:
        """One blob's answer after its round (`holders`: replicas that synced it, this one
        included if the local write succeeded)."""
        if isinstance(outcome, BaseException):
            return outcome
        record, _new = outcome
        if record.state is not BlobState.PENDING:
            return outcome  # already in a block
        if holders < self._majority:
            self._short.add(blob.blob_hash)
            return Unavailable(
                f"only {holders} of {len(self._peers) + 1} producer replicas hold the blob, a "
                f"majority of {self._majority} is needed: not acknowledged; retry later"
            )
        if not still_leading:
            return NotLeader("this replica stopped leading while replicating the blob; retry")
        self.replicated.add(blob.blob_hash)
        self._short.discard(blob.blob_hash)
        return outcome

    def eligible(self, blob: PendingBlob) -> bool:
        """Whether a majority holds this pending blob (the leader includes only those)."""
        return _hash(blob) in self.replicated

    def included(self, blobs: Sequence[PendingBlob]) -> None:
        """`blobs` left the mempool in a block: no longer tracked."""
        gone = {_hash(blob) for blob in blobs}
        self.replicated -= gone
        self._short -= gone

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
        outcomes = await asyncio.shield(write)  # a promise may be awaiting it too
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
        self._short = set()
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
            for blob_hash, new in await self._learn(blobs):
                added += new
                held[blob_hash] = held.get(blob_hash, 0) + 1
        await self._push_pending(held)
        log.info(
            "took over epoch %d: learned %d pending blobs from %d replicas",
            epoch,
            added,
            len(learned),
        )

    async def _learn(self, blobs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bool]]:
        """Keep the blobs a peer reported (each validated again, the valid ones in one synced
        write); (hash, new here) of each valid one."""
        checked: list[Submission] = []
        for namespace, data in blobs:
            try:
                checked.append(submission_from_request(namespace, data, self._max_blob_bytes))
            except (DAError, ErasureError) as e:
                log.warning("a replica sent an invalid pending blob (%s): ignored", e)
        outcomes = await self._mempool.submit_many(checked, limit=False)
        kept = []
        for blob, outcome in zip(checked, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            kept.append((blob.blob_hash, outcome[1]))
        return kept

    async def _push_pending(self, held: dict[bytes, int]) -> None:
        """At takeover: the pending blobs that a majority holds (here plus the answering peers
        that reported them) are eligible; the others go to the peers (`push_short`)."""
        for blob in await self._mempool.pending():
            blob_hash = _hash(blob)
            if 1 + held.get(blob_hash, 0) >= self._majority:
                self.replicated.add(blob_hash)
            else:
                self._short.add(blob_hash)
        await self.push_short()

    async def push_short(self) -> None:
        """Send the pending blobs not known to be on a majority to the peers again, in rounds:
        a push at takeover that failed, or a round whose client was told UNAVAILABLE, would
        leave a blob (perhaps acknowledged by an old leader) pending and never eligible. The
        leader calls this before each block (`push_short_soon`); it reads the mempool only
        when some blob is short."""
        if not self._short or not self._leadership.leading:
            return
        pending = {_hash(blob): blob for blob in await self._mempool.pending()}
        self._short &= pending.keys()  # those that left otherwise are no longer tracked
        short = [
            Submission(pending[h].namespace, pending[h].data, h)
            for h in self._short
            if h not in self.replicated
        ]
        # a blob still short afterwards stays not eligible until the next try
        await self._rounds.submit_many(short)

    def push_short_soon(self) -> None:
        """`push_short` in the background (one at a time): the block loop does not wait for
        replicas that may be slow to answer."""
        if self._pushing is None or self._pushing.done():
            self._pushing = asyncio.create_task(self.push_short())

    async def _replicate(self, epoch: int, blobs: list[tuple[bytes, bytes]]) -> list[int]:
        """Send `blobs` to every peer in one call each; returns how many peers synced each blob,
        as soon as a majority holds every one (the other calls finish in the background, so
        every replica usually holds every blob). A peer with PEER_CALLS_IN_FLIGHT calls under
        way is skipped (said once until it catches up)."""
        needed = self._majority - 1
        held = [0] * len(blobs)
        if needed <= 0:
            return held
        tasks = []
        for peer in self._peers:
            if self._calls[peer.address] >= PEER_CALLS_IN_FLIGHT:
                if peer.address not in self._skipping:
                    log.warning(
                        "replica %s has %d replication calls under way: skipping it until they "
                        "finish (it misses these blobs; a majority may still hold them)",
                        peer.address,
                        PEER_CALLS_IN_FLIGHT,
                    )
                    self._skipping.add(peer.address)
                continue
            self._skipping.discard(peer.address)
            self._calls[peer.address] += 1
            tasks.append(asyncio.create_task(self._send(peer, epoch, blobs)))
        try:
            for done in asyncio.as_completed(tasks):
                for index, kept in enumerate(await done):
                    held[index] += kept
                if min(held) >= needed:
                    break
        finally:
            for task in tasks:
                if not task.done():
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        return held

    async def _send(
        self, peer: ReplicaPeer, epoch: int, blobs: list[tuple[bytes, bytes]]
    ) -> list[bool]:
        """One ReplicateBlobs call (counted in `_calls` by the caller): whether `peer` synced
        each blob. Any failure means it synced none (logged), never the round's failure."""
        try:
            refused = set(await peer.replicate(epoch, blobs))
        except ReplicaError as e:
            log.info("replica %s did not keep %d blobs: %s", peer.address, len(blobs), e)
            return [False] * len(blobs)
        except Exception:  # noqa: BLE001 - a broken answer is that peer's, not the round's
            log.exception("replicating %d blobs to %s failed", len(blobs), peer.address)
            return [False] * len(blobs)
        finally:
            self._calls[peer.address] -= 1
        if refused:
            log.warning("replica %s refused %d blobs as invalid", peer.address, len(refused))
        return [index not in refused for index in range(len(blobs))]


def _hash(blob: PendingBlob) -> bytes:
    return compute_blob_hash(blob.namespace, blob.data)


def _code(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return code().name if callable(code) else ""


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    return str(details()) if callable(details) else str(error)
