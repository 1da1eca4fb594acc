"""Taking a block in: check the header first (equivocation, DESIGN 6 against the stored parent),
then fetch and verify every row, then write header, rows and head in one atomic batch.

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
from da.header import SignedHeader, TrustRoot, signed_header_from_bytes, verify_signed_header
from da.metrics import StorageMetrics
from da.serving import HeadNotifier
from da.storage_node.errors import BlockUnavailable
from da.storage_node.fetch import FetchedBlock
from da.store import blocks
from da.store.base import KeyValueStore

log = logging.getLogger(__name__)

REJECT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (da_errors.WrongChain, "wrong_chain"),
    (da_errors.UntrustedProducer, "untrusted_producer"),
    (da_errors.BadSignature, "bad_signature"),
    (da_errors.BrokenLink, "broken_link"),
    (da_errors.TooManyRows, "too_many_rows"),
    (da_errors.InconsistentCommitments, "inconsistent_commitments"),
    (da_errors.InvalidHeader, "invalid_header"),
)

Fetch = Callable[[SignedHeader], Awaitable[FetchedBlock]]
"""Fetches and verifies every row of a block whose header was accepted."""


def reject_reason(error: Exception) -> str:
    """The `da_storage_rejected_total{reason}` label of a header refusal."""
    return next((label for kind, label in REJECT_REASONS if isinstance(error, kind)), "other")


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
        found = blocks.get_signed_header(self.store, height) if height > 0 else None
        return None if found is None else signed_header_from_bytes(*found)

    def accept_header(self, signed: SignedHeader) -> bool:
        """Check `signed` before anything else is done for it. True: fetch its block; False:
        its block is already stored. Raises `Equivocation` for a second header at a stored
        height and `HeaderRejected`/`InvalidHeader` leaves for a header failing DESIGN 6;
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
            self._metrics.observe_rejected(reject_reason(e))
            log.warning("rejected header at height %d: %s", height, e)
            raise
        return True

    async def ingest(self, signed: SignedHeader, fetch: Fetch) -> Stored | None:
        """Verify `signed`, fetch and verify its rows, store the block atomically."""
        start = self._clock()
        if not self.accept_header(signed):
            return None
        try:
            fetched = await fetch(signed)
        except BlockUnavailable:
            self._metrics.observe_rejected("unrecoverable")
            raise
        await asyncio.to_thread(self.write, signed, fetched.rows)
        seconds = self._clock() - start
        height, k = signed.header.height, signed.header.k
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

    def write(self, signed: SignedHeader, rows: Sequence[blocks.Row]) -> None:
        """Header, every row and the head height in one atomic, synced batch."""
        blocks.put_block(
            self.store, signed.header.height, signed.raw, signed.signature, rows, sync=True
        )

    def prune(self, retention_blocks: int) -> int:
        """Drop whole blocks older than the newest `retention_blocks` (0 keeps everything)."""
        head = blocks.head_height(self.store)
        if retention_blocks <= 0 or head <= retention_blocks:
            return 0
        pruned = blocks.prune_below(self.store, head - retention_blocks + 1)
        if pruned:
            log.info("pruned %d blocks below height %d", pruned, head - retention_blocks + 1)
        return pruned
