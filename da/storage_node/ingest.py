"""Taking a block in: check the header first (equivocation, PROTOCOL.md §6 against the stored
parent), then fetch and verify the rows, writing each window of verified rows as it comes
(`StoreSink`: invisible until sealed), then seal the block: header and marker in one synced batch. A
failed ingest deletes the rows it wrote; a crash leaves them to `blocks.delete_orphan_rows` at
start.

`Ingestor.accept_header` is the gate nothing passes unverified; `Ingestor.ingest` runs the whole
pipeline for one header and returns what was stored, or None when the block was already held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from da import errors as da_errors
from da.cells import Row
from da.header import SignedHeader, TrustRoot, verify_signed_header
from da.metrics import StorageMetrics, header_rejection_reason
from da.serving import HeadNotifier
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import FetchedBlock, RowSink
from da.store import blocks, headers
from da.store.base import KeyValueStore, WriteBatch

log = logging.getLogger(__name__)

Fetch = Callable[[SignedHeader, RowSink], Awaitable[FetchedBlock]]
"""Fetches and verifies every row of a block whose header was accepted, into the sink."""


class StoreSink:
    """The `RowSink` of one ingest: verified rows of the block at `height` written to the store
    as they come (`blocks.BlockRows`), invisible until the block is sealed."""

    def __init__(self, store: KeyValueStore, height: int) -> None:
        self.rows = blocks.BlockRows(store, height)

    async def put(self, rows: Sequence[tuple[int, Row]]) -> None:
        await asyncio.to_thread(self.rows.write, rows)

    async def get(self, index: int) -> Row:
        found = await asyncio.to_thread(blocks.get_row, self.rows.store, self.rows.height, index)
        if found is None:
            raise LookupError(f"row {index} of height {self.rows.height} was never put")
        return found


@dataclass(frozen=True)
class Stored:
    """What `Ingestor.ingest` wrote: height, k, seconds, where the rows came from."""

    height: int
    k: int
    seconds: float
    source: str
    repaired: int
    header_hash: bytes


class Ingestor:
    """Verifies and stores blocks into `store`, then wakes header subscribers."""

    def __init__(
        self,
        store: KeyValueStore,
        trust: TrustRoot,
        metrics: StorageMetrics,
        notifier: HeadNotifier,
        *,
        max_rows: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._trust = trust
        self._metrics = metrics
        self._notifier = notifier
        self._max_rows = max_rows
        self._clock = clock

    def stored_header(self, height: int) -> SignedHeader | None:
        return headers.get_decoded_header(self.store, height) if height > 0 else None

    def accept_header(self, signed: SignedHeader) -> bool:
        """Check `signed` before anything else is done for it. True: fetch its block; False:
        its block is already stored. Raises `Equivocation` for a second header at a stored
        height and `HeaderRejected`/`InvalidHeader` leaves for a header failing PROTOCOL.md §6;
        both are logged and counted here."""
        height = signed.header.height
        known = self.stored_header(height)
        if known is not None and known.hash != signed.hash:
            self._metrics.observe_equivocation()
            error = da_errors.Equivocation(height, known.hash, signed.hash)
            log.error("refusing header: %s", error)
            raise error
        if known is not None and blocks.has_block(self.store, height):
            return False
        try:
            verify_signed_header(
                signed, self._trust, parent=self.stored_header(height - 1), max_rows=self._max_rows
            )
        except (da_errors.HeaderRejected, da_errors.InvalidHeader) as e:
            self._metrics.observe_rejected(header_rejection_reason(e))
            log.warning("rejected header at height %d: %s", height, e)
            raise
        self._metrics.observe_tip(height)
        return True

    def verify_alone(self, signed: SignedHeader) -> None:
        """Check `signed` on its own (chain, trusted signature, commitments; no parent link):
        enough to believe its height. Raises and counts like `accept_header`."""
        try:
            verify_signed_header(signed, self._trust, max_rows=self._max_rows)
        except (da_errors.HeaderRejected, da_errors.InvalidHeader) as e:
            self._metrics.observe_rejected(header_rejection_reason(e))
            raise
        self._metrics.observe_tip(signed.header.height)

    async def ingest(self, signed: SignedHeader, fetch: Fetch) -> Stored | None:
        """Verify `signed`, fetch and verify its rows into the store, then seal the block."""
        start = self._clock()
        if not self.accept_header(signed):
            return None
        height, k = signed.header.height, signed.header.k
        sink = StoreSink(self.store, height)
        try:
            fetched = await fetch(signed, sink)
            sink.rows.check_complete(2 * k)
            await asyncio.to_thread(self.seal, signed)
        except Exception as e:
            if isinstance(e, BlockUnavailable):
                self._metrics.observe_rejected("unrecoverable")
            await self._discard_rows(height)
            raise
        seconds = self._clock() - start
        self._metrics.observe_block_ingested(height, seconds)
        self._metrics.observe_cells_repaired(fetched.repaired)
        self._notifier.notify(height)
        log.info(
            "stored block height=%d k=%d seconds=%.3f source=%s repaired_cells=%d",
            height,
            k,
            seconds,
            fetched.source,
            fetched.repaired,
        )
        return Stored(height, k, seconds, fetched.source, fetched.repaired, signed.hash)

    async def _discard_rows(self, height: int) -> None:
        """After a failed ingest: delete the rows it wrote (best effort: a store that fails here
        leaves them to `delete_orphan_rows` at the next start)."""
        try:
            await asyncio.to_thread(blocks.delete_unsealed_rows, self.store, height)
        except Exception as e:  # noqa: BLE001 - the ingest's own error is the one to raise
            log.warning("could not delete the rows of unfinished block %d: %s", height, e)

    def seal(self, signed: SignedHeader) -> None:
        """Make the block of `signed` visible (its rows are written): header and marker in one
        synced batch, which also makes every row written before it durable."""
        batch = WriteBatch()
        header = signed.header
        blocks.add_block_seal_to_batch(
            batch, header.height, signed.raw, signed.signature, 2 * header.k
        )
        self.store.write(batch, sync=True)

    def prune(self, retention_blocks: int) -> int:
        """Drop whole blocks older than the newest `retention_blocks` (0 keeps everything)."""
        pruned = blocks.prune_outside_retention(self.store, retention_blocks)
        if pruned:
            log.info("pruned %d blocks outside the newest %d", pruned, retention_blocks)
        return pruned
