"""Header sync: follow every peer's SubscribeHeaders, catch up gaps with GetHeader, reconnect with
backoff. Every header goes through `HeaderChain.offer` (verification, links, equivocation); an
accepted one is handed to `on_header(signed, live)`: `live` for the new head as it arrives,
not live for catch-up (the backlog).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing

from da.header import SignedHeader
from light_client.chain import HeaderChain, Offer
from light_client.errors import PeerCallFailed
from light_client.peers import Peer, RawHeader

log = logging.getLogger(__name__)

INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
BACKLOG_HEIGHTS = 256  # how far below the head a fresh (or long-stopped) client catches up
# A subscription silent this long is presumed stuck (half-open connection): reconnect.
STREAM_IDLE_SECONDS = 120.0

OnHeader = Callable[[SignedHeader, bool], None]
Sleep = Callable[[float], Awaitable[None]]


class HeaderSync:
    """Keeps `chain` up to date from `peers`; runs until cancelled."""

    def __init__(
        self,
        peers: Sequence[Peer],
        chain: HeaderChain,
        on_header: OnHeader,
        *,
        request_timeout_seconds: float,
        rng: random.Random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._peers = tuple(peers)
        self._chain = chain
        self._on_header = on_header
        self._timeout = request_timeout_seconds
        self._rng = rng
        self._sleep = sleep
        self._catch_up_lock = asyncio.Lock()
        self._holders: dict[int, set[str]] = {}  # height -> peers that served its header

    def holders(self, height: int) -> set[str]:
        """Peers that served the accepted header at `height` (a live set: it grows)."""
        return self._holders.setdefault(height, set())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for peer in self._peers:
                tg.create_task(self._follow(peer), name=f"headers from {peer.name}")

    async def _follow(self, peer: Peer) -> None:
        """Catch up, then subscribe; on any failure wait (exponential backoff, jitter), repeat."""
        backoff = INITIAL_BACKOFF_SECONDS
        while True:
            try:
                await self._catch_up(peer)
                await self._subscribe(peer)
                backoff = INITIAL_BACKOFF_SECONDS
                log.info("header stream from %s ended; reconnecting", peer.name)
            except PeerCallFailed as e:
                log.info("header sync from %s failed: %s", peer.name, e)
            except TimeoutError:
                log.info("no header from %s for %.0f s; reconnecting", peer.name,
                         STREAM_IDLE_SECONDS)
            await self._sleep(backoff * (1 + 0.5 * self._rng.random()))
            backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)

    async def _catch_up(self, peer: Peer) -> None:
        """Fetch the peer's latest header and whatever is missing below it."""
        try:
            latest = await peer.get_header(0, self._timeout)
        except PeerCallFailed as e:
            if e.code == "NOT_FOUND":  # no block yet: the subscription will bring the first
                return
            raise
        await self.receive(peer, latest, live=False)

    async def _subscribe(self, peer: Peer) -> None:
        """Take headers from the peer's stream until it ends, fails or stays silent too long."""
        async with aclosing(peer.subscribe_headers(self._chain.head + 1)) as stream:
            while True:
                async with asyncio.timeout(STREAM_IDLE_SECONDS):
                    try:
                        raw = await anext(stream)
                    except StopAsyncIteration:
                        return
                await self.receive(peer, raw, live=True)

    async def receive(self, peer: Peer, raw: RawHeader, *, live: bool) -> None:
        """Offer one header; if it leaves a gap below it, fetch the gap from the same peer."""
        height = self._chain.known_height(raw)
        if height is not None:
            self.holders(height).add(peer.name)
            return
        signed = self._chain.decode(raw, peer.name)
        if signed is None:
            return
        head_before = self._chain.head
        if self._offer(signed, peer, live=live and signed.header.height > head_before):
            await self._fill_gap(peer, signed.header.height, head_before)

    async def _fill_gap(self, peer: Peer, height: int, head_before: int) -> None:
        """Fetch heights below `height` down to the old head (at most BACKLOG_HEIGHTS), newest
        first, so each is linked to its accepted child as it comes."""
        lowest = max(head_before + 1, height - BACKLOG_HEIGHTS + 1, 1)
        async with self._catch_up_lock:
            for below in range(height - 1, lowest - 1, -1):
                if self._chain.get(below) is not None:
                    continue
                raw = await peer.get_header(below, self._timeout)
                signed = self._chain.decode(raw, peer.name)
                if signed is None or signed.header.height != below:
                    log.warning("peer %s answered height %d with something else", peer.name, below)
                    return
                if not self._offer(signed, peer, live=False):
                    return

    def _offer(self, signed: SignedHeader, peer: Peer, *, live: bool) -> bool:
        """Offer to the chain; hand accepted headers on. True if the chain holds this header."""
        outcome = self._chain.offer(signed, peer.name)
        held = outcome in (Offer.ACCEPTED, Offer.DUPLICATE)
        if held:
            self.holders(signed.header.height).add(peer.name)
            self._forget_holders_below(self._chain.head - BACKLOG_HEIGHTS)
        if outcome is Offer.ACCEPTED:
            self._on_header(signed, live)
        return held

    def _forget_holders_below(self, height: int) -> None:
        for old in [h for h in self._holders if h < height]:
            del self._holders[old]
