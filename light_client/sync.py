"""Header sync: follow every peer's SubscribeHeaders, catch up gaps with GetHeader, reconnect with
backoff. Every header goes through `HeaderChain.offer` (verification, links, equivocation); an
accepted one is handed to `on_header(signed, live)`: `live` for the new head as it arrives,
not live for catch-up (the backlog).

A peer is a holder of a height only once it served that height's header with the valid signature.
A peer that sends a forged or invalid header (`Offer.FORGED`, or bytes that are not a header) is
shunned for `shun_seconds`: its headers are ignored, its subscription dropped and (through the
`PeerPool`) it is not sampled meanwhile, so one liar costs one warning, not one per header.
A peer the sampler shuns for bad cells is still followed for headers: its headers are verified
on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing

from da.backoff import Backoff
from da.header import SignedHeader
from light_client.chain import HeaderChain, Offer
from light_client.errors import PeerCallFailed
from light_client.peers import DEFAULT_SHUN_SECONDS, Peer, PeerPool, RawHeader

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
        pool: PeerPool | None = None,
        shun_seconds: float = DEFAULT_SHUN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._peers = tuple(peers)
        self._pool = pool
        self._shun_seconds = shun_seconds
        self._clock = clock
        self._forgers: dict[str, float] = {}  # peer name -> shunned until
        self._chain = chain
        self._on_header = on_header
        self._timeout = request_timeout_seconds
        self._rng = rng
        self._sleep = sleep
        self._catch_up_lock = asyncio.Lock()
        self._holders: dict[int, set[str]] = {}  # height -> peers that served its header
        self._holders_grew: dict[int, asyncio.Event] = {}  # height -> set when a holder is added

    def holders(self, height: int) -> set[str]:
        """Peers that served the accepted header at `height` (a live set: it grows)."""
        return self._holders.setdefault(height, set())

    async def wait_for_holders(self, height: int, count: int, timeout: float) -> set[str]:
        """The holders of `height` once there are `count` of them, or when `timeout` passes."""
        holders = self.holders(height)
        grew = self._holders_grew.setdefault(height, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(holders) < count:
                    grew.clear()
                    await grew.wait()
        return holders

    def _add_holder(self, height: int, peer: Peer) -> None:
        self.holders(height).add(peer.name)
        grew = self._holders_grew.get(height)
        if grew is not None:
            grew.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for peer in self._peers:
                tg.create_task(self._follow(peer), name=f"headers from {peer.name}")

    async def _follow(self, peer: Peer) -> None:
        """Catch up, then subscribe; on any failure wait (exponential backoff, jitter), repeat."""
        backoff = Backoff(INITIAL_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, rng=self._rng)
        while True:
            if self._shunned(peer):
                await self._sleep(max(backoff.next_delay(), INITIAL_BACKOFF_SECONDS))
                continue
            try:
                await self._catch_up(peer)
                await self._subscribe(peer)
                backoff.reset()
                log.info("header stream from %s ended; reconnecting", peer.name)
            except PeerCallFailed as e:
                log.info("header sync from %s failed: %s", peer.name, e)
            except TimeoutError:
                log.info(
                    "no header from %s for %.0f s; reconnecting", peer.name, STREAM_IDLE_SECONDS
                )
            await self._sleep(backoff.next_delay())

    async def _catch_up(self, peer: Peer) -> None:
        """Fetch the peer's latest header, then whatever is missing below the head."""
        try:
            latest = await peer.get_header(0, self._timeout)
        except PeerCallFailed as e:
            if e.code == "NOT_FOUND":  # no block yet: the subscription will bring the first
                return
            raise
        await self.receive(peer, latest, live=False)
        await self.fill_gaps(peer)  # also gaps an earlier, interrupted fill left behind

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
                if self._shunned(peer):
                    return

    async def receive(self, peer: Peer, raw: RawHeader, *, live: bool) -> None:
        """Offer one header; if its parent is missing, fill the gaps below it."""
        if self._shunned(peer):
            return
        height = self._chain.known_height(raw)
        if height is not None:
            self._add_holder(height, peer)
            return
        signed = self._chain.decode(raw, peer.name)
        if signed is None:
            self._forged(peer)
            return
        height = signed.header.height
        head_before = self._chain.head
        if not self._offer(signed, peer, live=live and height > head_before):
            return
        if height - 1 >= self._lowest() and self._chain.get(height - 1) is None:
            await self.fill_gaps(peer)

    async def fill_gaps(self, first: Peer) -> None:
        """Fetch every height missing in the backlog window below an accepted header, newest
        first. The header to take at height h is the one whose hash the accepted h + 1 names
        (its signature covers that link), from whichever peer has it: `first`, then the others
        in random order. So a peer that lags, fails, lies or follows an equivocating fork of the
        producer's stops nothing: another peer's copy of the named header is taken."""
        async with self._catch_up_lock:
            for below in range(self._chain.head - 1, self._lowest() - 1, -1):
                if self._chain.get(below) is not None:
                    continue
                child = self._chain.get(below + 1)
                if child is not None:  # else an interrupted fill: nothing names this one yet
                    await self._fetch_parent(child, first)

    async def _fetch_parent(self, child: SignedHeader, first: Peer) -> bool:
        """Accept the header `child` links to, asking `first` then the other peers."""
        height = child.header.height - 1
        others = [p for p in self._peers if p is not first]
        self._rng.shuffle(others)
        for peer in (first, *others):
            if self._shunned(peer):
                continue
            try:
                raw = await peer.get_header(height, self._timeout)
            except PeerCallFailed as e:
                log.info("header %d from %s: %s", height, peer.name, e)
                continue
            signed = self._chain.decode(raw, peer.name)
            if signed is None:
                self._forged(peer)
                continue
            if signed.header.height != height or signed.hash != child.header.prev_hash:
                log.warning(
                    "peer %s answered height %d with a header that is not the parent "
                    "of the accepted header %d",
                    peer.name,
                    height,
                    height + 1,
                )
                continue
            if self._offer(signed, peer, live=False):
                return True
        return False

    def _lowest(self) -> int:
        """The lowest height catch-up fetches: BACKLOG_HEIGHTS below the head at most."""
        return max(1, self._chain.head - BACKLOG_HEIGHTS + 1)

    def _offer(self, signed: SignedHeader, peer: Peer, *, live: bool) -> bool:
        """Offer to the chain; hand accepted headers on. True if the chain holds this header."""
        outcome = self._chain.offer(signed, peer.name)
        if outcome is Offer.FORGED:
            self._forged(peer)
        held = outcome in (Offer.ACCEPTED, Offer.DUPLICATE)
        if held:
            self._add_holder(signed.header.height, peer)
            self._forget_holders_below(self._chain.head - BACKLOG_HEIGHTS)
        if outcome is Offer.ACCEPTED:
            self._on_header(signed, live)
        return held

    def _shunned(self, peer: Peer) -> bool:
        return self._forgers.get(peer.name, 0.0) > self._clock()

    def _forged(self, peer: Peer) -> None:
        """`peer` sent a forged or invalid header: ignore its headers and do not sample it."""
        if self._shunned(peer):
            return
        self._forgers[peer.name] = self._clock() + self._shun_seconds
        if self._pool is not None:
            self._pool.shun(peer)
        for holders in self._holders.values():
            holders.discard(peer.name)
        log.warning("peer %s sent a forged or invalid header: shunned", peer.name)

    def _forget_holders_below(self, height: int) -> None:
        for old in [h for h in self._holders if h < height]:
            del self._holders[old]
            self._holders_grew.pop(old, None)
