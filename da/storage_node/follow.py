"""Following the chain: subscribe to headers from the producer (or, when it is down, a peer),
fill gaps with GetHeader, and ingest each block in height order.

One cycle: pick a source, ask its head (to start inside the retention window when far behind),
subscribe from our head + 1, ingest every header that arrives. A failing source ends the cycle;
the next one starts at the next source after an exponential backoff. A cycle on a peer ends
after `prefer_producer_seconds` so the node goes back to the producer once it is up again.

Nothing a source says is believed before its header verifies: the head it reports sets the
sync floor only once its signature and commitments check out, and a source that sends a forged
or invalid header is shunned (skipped for `shun_seconds`, counted) rather than asked again at
once (PROTOCOL.md §11).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor

from da import errors as da_errors
from da.backoff import Backoff
from da.header import SignedHeader
from da.storage_node.errors import BlockUnavailable, NoSource
from da.storage_node.fetch import FetchedBlock, Gatherer, RepairObserver, RowSink, fetch_block
from da.storage_node.ingest import Ingestor, Stored
from da.storage_node.remotes import Remote, RemoteError, describe, is_not_found, ordered
from da.store import blocks

log = logging.getLogger(__name__)

IDLE_TIMEOUT_SECONDS = 30.0  # no header for this long: reconnect (a half-open stream looks idle)
PREFER_PRODUCER_SECONDS = 30.0
SHUN_SECONDS = 60.0  # a source that sent a forged or invalid header is not asked for this long
# What a source proves about itself by sending it: a forgery or garbage, never honest lag.
FORGED = (
    da_errors.InvalidHeader,
    da_errors.WrongChain,
    da_errors.UntrustedProducer,
    da_errors.BadSignature,
    da_errors.InconsistentCommitments,
    da_errors.TooManyRows,
)

OnStored = Callable[[Stored], Awaitable[None]]


class Follower:
    """Keeps the store in step with the chain; `run()` runs until cancelled."""

    def __init__(
        self,
        ingestor: Ingestor,
        remotes: Sequence[Remote],
        *,
        on_stored: OnStored,
        retention_blocks: int = 0,
        executor: Executor | None = None,
        backoff: Backoff | None = None,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        prefer_producer_seconds: float = PREFER_PRODUCER_SECONDS,
        shun_seconds: float = SHUN_SECONDS,
        on_shun: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        samplers: Gatherer | None = None,
        observer: RepairObserver | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._samplers = samplers
        self._observer = observer
        self._remotes = list(remotes)
        self._on_stored = on_stored
        self._retention = retention_blocks
        self._executor = executor
        self._backoff = backoff or Backoff()
        self._idle_timeout = idle_timeout
        self._prefer_producer = prefer_producer_seconds
        self._clock = clock
        self._shun_seconds = shun_seconds
        self._on_shun = on_shun
        self._shunned: dict[str, float] = {}  # address -> monotonic time the shun ends
        self._floor = 1  # the lowest height this cycle keeps (inside the retention window)

    @property
    def head(self) -> int:
        return blocks.head_height(self._ingestor.store)

    async def run(self) -> None:
        turn = 0
        while True:
            source = self._remotes[turn % len(self._remotes)]
            if self.is_shunned(source) and not self._all_shunned():
                turn += 1
                continue
            try:
                await self.follow(source)
                turn = 0  # ended on purpose (a peer's time is up, or idle): producer first
                continue
            except FORGED as e:
                self.shun(source, e)
            except (*RemoteError, NoSource, BlockUnavailable, da_errors.DAError) as e:
                log.warning("syncing from %s failed: %s", source.name, describe(e))
            turn += 1
            await asyncio.sleep(self._backoff.next_delay())

    def shun(self, source: Remote, error: Exception) -> None:
        """Set `source` aside for `shun_seconds`: it sent a header that proves it forged or
        broken."""
        self._shunned[source.address] = self._clock() + self._shun_seconds
        self._on_shun()
        log.warning(
            "shunning %s for %.0f s: it sent a bad header (%s)",
            source.name,
            self._shun_seconds,
            describe(error),
        )

    def is_shunned(self, source: Remote) -> bool:
        return self._shunned.get(source.address, 0.0) > self._clock()

    def _all_shunned(self) -> bool:
        return all(self.is_shunned(remote) for remote in self._remotes)

    async def follow(self, source: Remote) -> None:
        """One cycle on `source`: start height, then every header it streams, in order."""
        start = self._floor = await self.start_height(source)
        log.info("following %s from height %d", source.name, start)
        deadline = None if source.is_producer else self._clock() + self._prefer_producer
        stream = source.subscribe(start)
        try:
            while deadline is None or self._clock() < deadline:
                signed = await asyncio.wait_for(anext(stream), self._idle_timeout)
                await self.take(signed, source)
                self._backoff.reset()
        except (StopAsyncIteration, TimeoutError):
            return
        finally:
            await stream.aclose()

    async def start_height(self, source: Remote) -> int:
        """Our head + 1, or, when the source's verified head is beyond our retention window,
        the first height of that window (older blocks would be pruned at once). A head that
        does not verify raises (the source is shunned): an unverified height never moves the
        floor, or a liar could make the node skip every block."""
        start = self.head + 1
        if self._retention <= 0:
            return start
        try:
            remote_head = await source.get_header(0)
        except RemoteError as e:
            if not is_not_found(e):
                raise
            return start  # the source holds no block yet: subscribe and wait for the first
        await asyncio.to_thread(self._ingestor.verify_alone, remote_head)
        return max(start, remote_head.header.height - self._retention + 1)

    async def take(self, signed: SignedHeader, source: Remote) -> None:
        """Ingest `signed`, first filling any gap between our head and it; a header below the
        retention window is ignored."""
        height = signed.header.height
        if height < self._floor:
            return
        for missing in range(max(self.head + 1, self._floor), height):
            await self.ingest(await self.header_from_anyone(missing, source), source)
        await self.ingest(signed, source)

    async def ingest(self, signed: SignedHeader, source: Remote) -> None:
        try:
            stored = await self._ingestor.ingest(
                signed, lambda s, sink: self.fetch(s, sink, source)
            )
        except da_errors.Equivocation:
            return  # refused, logged and counted; the stored header stays
        if stored is not None:
            await self._on_stored(stored)

    async def fetch(self, signed: SignedHeader, sink: RowSink, source: Remote) -> FetchedBlock:
        remotes = ordered(self._remotes, source)
        return await fetch_block(
            remotes,
            signed.header,
            sink,
            self._executor,
            samplers=self._samplers,
            observer=self._observer,
        )

    async def header_from_anyone(self, height: int, first: Remote) -> SignedHeader:
        """The header at `height` from the first remote that has it (unverified)."""
        reasons = []
        for remote in ordered(self._remotes, first):
            try:
                return await remote.get_header(height)
            except (*RemoteError, da_errors.InvalidHeader) as e:
                if not is_not_found(e):
                    log.info("%s: GetHeader(%d): %s", remote.name, height, describe(e))
                reasons.append(f"{remote.name}: {describe(e)}")
        raise NoSource(height, "; ".join(reasons))
