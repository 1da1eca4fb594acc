"""A replica's life in the producer group (PROTOCOL.md §12): follow the committed chain, campaign
when nobody leads, lead until the lease is lost.

Following: the committed tip is read from etcd whenever a watch on the chain's keys reports a
change (a new header, the leader key created or gone), and at least every `poll_seconds` (the
watch may stall without an error, e.g. through a paused member); each committed header the
store lacks is checked (chain id, signature by the key it names, link to the stored parent), its
rows fetched from the other replicas and verified against its commitments (as a storage node
does) or, when nobody serves them, re-encoded from the replicated blobs held here (which must
reproduce the committed commitments), and the block sealed together with the settlement of its
blobs (INCLUDED here too).

Leading: only when the store holds the whole committed chain. A new leader first learns every
pending blob from a majority (`GroupIntake.take_over`). Each block is built as by the single
producer, but between signing and sealing its header is committed in etcd, fenced by the epoch
(`Coordinator.commit_header`); a refused or failed commit discards the block and steps down. So
the store, hence every read method, only ever holds committed headers.

The watch only wakes the loop, which then reads what etcd holds: an event missed across a
reconnect costs at most one poll interval, never a wrong view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from da.errors import DAError, HeaderRejected, WrongChain
from da.header import SignedHeader, TrustRoot, signed_header_from_bytes, verify_signed_header
from da.metrics import GroupMetrics, ProducerMetrics
from da.producer.blocks import BlockProducer, BuiltBlock, Tip, chain_tip
from da.producer.errors import CommitRefused
from da.producer.group.etcd import CommittedTip, Coordinator, CoordinatorUnavailable
from da.producer.group.intake import GroupIntake
from da.producer.group.leader import Leadership
from da.producer.mempool import Mempool
from da.serving import HeadNotifier
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import fetch_block
from da.storage_node.ingest import StoreSink
from da.storage_node.remotes import Remote
from da.store import blobs as blob_store
from da.store import blocks as block_store
from da.store.base import KeyValueStore, WriteBatch
from da.store.blobs import BlobRecord, BlobState, PendingBlob

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often a follower reads the committed tip without a watch event
RETRY_SECONDS = 0.2  # after a round that failed


class Diverged(DAError):
    """The store holds a chain etcd never committed (another chain's data directory, or a wiped
    etcd): this replica follows nothing and never campaigns until an operator looks."""


class GroupReplica:
    """One replica: `run()` follows, campaigns and leads until cancelled, then releases."""

    def __init__(
        self,
        *,
        store: KeyValueStore,
        mempool: Mempool,
        producer: BlockProducer,
        notifier: HeadNotifier,
        metrics: ProducerMetrics,
        group_metrics: GroupMetrics,
        coordinator: Coordinator,
        leadership: Leadership,
        intake: GroupIntake,
        remotes: Sequence[Remote],
        chain_id: str,
        block_time_seconds: float,
        poll_seconds: float = POLL_SECONDS,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._store = store
        self._mempool = mempool
        self._producer = producer
        self._notifier = notifier
        self._metrics = metrics
        self._group_metrics = group_metrics
        self._coordinator = coordinator
        self._leadership = leadership
        self._intake = intake
        self._remotes = list(remotes)
        self._chain_id = chain_id
        self._block_time = block_time_seconds
        self._poll = poll_seconds
        self._timer = timer
        self._diverged = False
        self._size_checked = False
        self._wrong_size_said = False

    async def run(self) -> None:
        """Follow, campaign and lead until cancelled; the lease is released on the way out."""
        changed = asyncio.Event()
        watch = asyncio.create_task(self._coordinator.watch(changed.set))
        try:
            while True:
                changed.clear()  # a change from here on wakes the wait below at once
                settled = await self._step()
                try:
                    await asyncio.wait_for(changed.wait(), self._poll if settled else RETRY_SECONDS)
                except TimeoutError:
                    pass
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await self._leadership.release()

    async def _step(self) -> bool:
        """One round: catch up; when caught up and nobody leads, campaign; lead if elected.
        False when it failed (retry soon: e.g. a new block not yet served by its leader).

        One exception to "caught up first": a committed block that no replica serves and that
        the blobs held here cannot rebuild (its leader died before anyone fetched it, and its
        blobs are spread over the others). With nobody leading, this replica campaigns anyway:
        as leader it learns every pending blob from a majority, which holds each of them, and
        rebuilds the block before building any (`_lead`)."""
        try:
            wrong_size = await self._wrong_size()
            try:
                await self.catch_up()
            except BlockUnavailable as e:
                if wrong_size is not None or await self._coordinator.leader() is not None:
                    raise
                log.info("a committed block nobody serves (%s): campaigning to rebuild it", e)
            leader = await self._coordinator.leader()
            if leader is not None:
                self._intake.saw_epoch(leader.epoch)  # refuse blobs of older leaders from now
            if wrong_size is not None:
                if not self._wrong_size_said:
                    log.error("NOT campaigning (this replica never signs): %s", wrong_size)
                self._wrong_size_said = True
                self._group_metrics.set_blocked("wrong_group_size")
                return True
            self._group_metrics.set_blocked(None)
            self._diverged = False
            if leader is not None:
                return True
            if await self._leadership.campaign():
                await self._lead()
            return True
        except Diverged as e:
            if not self._diverged:
                log.error("NOT following or campaigning (this replica never signs): %s", e)
            self._diverged = True
            self._group_metrics.set_blocked("diverged")
        except CoordinatorUnavailable as e:
            log.warning("etcd unreachable, following nothing and not campaigning: %s", e)
            self._group_metrics.set_blocked("etcd_unreachable")
        except DAError as e:
            log.warning("group: %s", e)
        return False

    async def _wrong_size(self) -> str | None:
        """Why this replica must not campaign, if its `--replica` list makes a group of another
        size than the one etcd records (the first replica to start records its own): a replica
        that counts fewer would acknowledge blobs on fewer copies than a majority of the group.
        None when the sizes agree (checked once)."""
        if self._size_checked:
            return None
        size = 1 + len(self._remotes)
        recorded = await self._coordinator.group_size(size)
        if recorded != size:
            return (
                f"this replica names {size - 1} other replicas (a group of {size}) but the group "
                f"in etcd has {recorded}: fix --replica (if the group really changed size, "
                f"delete the key /da/{self._chain_id}/size in etcd first)"
            )
        self._size_checked = True
        return None

    # --- following ----------------------------------------------------------------------------

    async def catch_up(self) -> bool:
        """Store every committed block above the local head; True when the store holds the
        whole committed chain (and nothing else)."""
        tip = await self._coordinator.tip()
        head = await asyncio.to_thread(chain_tip, self._store)
        if head.height > tip.height:
            raise Diverged(f"the stored head {head.height} is above the committed tip {tip.height}")
        while head.height < tip.height:
            head = await self._follow(head)
        if head.height and head.hash != tip.hash:
            raise Diverged(f"the stored block {head.height} is not the committed one")
        return True

    async def _follow(self, head: Tip) -> Tip:
        """Store the committed block after `head`; returns the new head."""
        height = head.height + 1
        found = await self._coordinator.header(height)
        if found is None:
            raise CoordinatorUnavailable(f"committed header {height} missing in etcd")
        signed = signed_header_from_bytes(*found)
        self._check_committed(signed, head)
        sink = StoreSink(self._store, height)
        try:
            await self._fetch_or_rebuild(signed, sink)
            async with self._mempool.settling():
                settled = await asyncio.to_thread(self._seal_followed, signed)
                self._mempool.removed(settled)
        except BaseException:
            await asyncio.to_thread(block_store.delete_unsealed_rows, self._store, height)
            raise
        tip = Tip(height, signed.hash, signed.header.time_ms)
        self._producer.followed(tip)
        self._notifier.notify(height)
        self._metrics.set_head_height(height)
        log.info("followed committed block %d (hash %s)", height, signed.hash.hex()[:16])
        return tip

    async def _fetch_or_rebuild(self, signed: SignedHeader, sink: StoreSink) -> None:
        """Rows of a committed block: fetched (and verified) from another replica, or, when no
        replica serves them and no leader is alive to (its leader died right after the commit),
        re-encoded from the replicated blobs held here, which must reproduce the committed
        commitments."""
        try:
            # verified in the encoding pool: the trusted setup is loaded there, and a first
            # load in this process would stall the event loop (and replication) for seconds
            executor = self._producer.encoder.executor
            await fetch_block(self._remotes, signed.header, sink, executor)
            sink.rows.check_complete(2 * signed.header.k)
            return
        except BlockUnavailable as e:
            fetch_error = e
        if not self._leadership.leading and await self._coordinator.leader() is not None:
            raise fetch_error  # its leader is alive (and sealing it): fetch again shortly
        await asyncio.to_thread(block_store.delete_unsealed_rows, self._store, signed.header.height)
        blobs = await asyncio.to_thread(self._blobs_of, signed)
        if blobs is None:
            raise fetch_error
        if not await self._producer.rebuild(signed, blobs):
            raise Diverged(f"the blobs held here do not reproduce block {signed.header.height}")
        log.info("rebuilt committed block %d from replicated blobs", signed.header.height)

    def _blobs_of(self, signed: SignedHeader) -> list[tuple[bytes, bytes]] | None:
        """(namespace, data) of every blob of `signed`'s block in square order, from the pending
        blobs held here; None if one is missing."""
        hashes = [entry.blob_hash for entry in signed.header.blobs]
        pending = blob_store.find_pending(self._store, hashes)
        if len(pending) < len(set(hashes)):
            return None
        return [(pending[h].namespace, pending[h].data) for h in hashes]

    def _check_committed(self, signed: SignedHeader, head: Tip) -> None:
        """A committed header must be of our chain, signed by the key it names, and link to the
        stored parent; anything else means the store and etcd disagree."""
        header = signed.header
        trust = TrustRoot(self._chain_id, frozenset({header.producer}))
        try:
            verify_signed_header(signed, trust)
        except WrongChain as e:
            raise Diverged(f"etcd holds headers of another chain: {e}") from e
        except HeaderRejected as e:
            raise Diverged(f"committed header {header.height} does not verify: {e}") from e
        if header.prev_hash != head.hash:
            raise Diverged(f"committed header {header.height} does not link to the stored chain")

    def _seal_followed(self, signed: SignedHeader) -> list[PendingBlob]:
        """Seal a followed block and settle its blobs (pending ones leave the mempool) in one
        synced batch; returns the pending blobs that left. Run with appends held off
        (`Mempool.settling`): a blob appended after the pending blobs were read would stay
        pending though its block is stored, and be included again."""
        header = signed.header
        pending = blob_store.find_pending(self._store, [entry.blob_hash for entry in header.blobs])
        settled: list[PendingBlob] = []
        batch = WriteBatch()
        block_store.add_block_seal_to_batch(
            batch, header.height, signed.raw, signed.signature, 2 * header.k
        )
        for entry in header.blobs:
            record = BlobRecord(BlobState.INCLUDED, header.height, entry.start_cell)
            blob = pending.get(entry.blob_hash)
            if blob is None:
                blob_store.add_blob_record_to_batch(batch, entry.blob_hash, record)
            else:
                blob_store.settle_pending(batch, blob.seq, entry.blob_hash, record)
                settled.append(blob)
        self._store.write(batch, sync=True)
        return settled

    # --- leading ------------------------------------------------------------------------------

    async def _lead(self) -> None:
        """Produce blocks while the lease holds; any failure steps down."""
        try:
            await self._intake.take_over(self._leadership.epoch)
            await self.catch_up()  # a block the old leader committed after our last look
            await self._producer.resync()
            while not self._leadership.lost.is_set():
                started = self._timer()
                self._intake.push_short_soon()
                block = await self._producer.produce_once(self._commit, self._intake.eligible)
                if block is not None:
                    self._intake.included(block.included)
                pause = max(0.0, self._block_time - (self._timer() - started))
                try:
                    await asyncio.wait_for(self._leadership.lost.wait(), pause)
                except TimeoutError:
                    pass
        except DAError as e:
            log.warning("stepping down: %s", e)
        except Exception:  # noqa: BLE001 - a failed block steps down; another replica may do
            log.exception("block %d failed; stepping down", self._producer.tip.height + 1)
        finally:
            await self._leadership.release()
            await self._producer.resync()

    async def _commit(self, block: BuiltBlock) -> None:
        """Commit `block`'s header in etcd, fenced by our epoch, or raise (never publish)."""
        epoch = self._leadership.epoch
        if self._leadership.lost.is_set():
            raise CommitRefused(block.height, epoch)
        signed = block.signed
        parent = CommittedTip(block.height - 1, signed.header.prev_hash)
        committed = await self._coordinator.commit_header(
            epoch, parent, signed.hash, signed.raw, signed.signature
        )  # in doubt and etcd silent: raises; the rows are discarded, the block fetched back
        if not committed:
            raise CommitRefused(block.height, epoch)
