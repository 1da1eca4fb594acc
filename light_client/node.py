"""The light client process: header sync, sampling scheduler, SamplingService, metrics.

`run(config)` runs until cancelled and shuts down cleanly (health NOT_SERVING, server stopped,
peers and store closed). `LightClient` is the same thing with its parts injectable (peers, store,
clock, RNG), for tests and the benchmark.

Scheduling: a header arriving as the new head is sampled at once, from peers that announced it
(waiting up to HOLDER_WAIT_SECONDS for a second one, so that no request goes to a peer that has
not stored the block yet); headers fetched to catch up (the backlog) wait in a queue, newest
first, worked off by `concurrency` tasks. Each header's samples go first to SAMPLE_PEERS peers
drawn at random (each sees only part of them, and a header costs few requests); a coordinate
they fail is retried at the other peers. The sampling
window of a live header starts at its arrival; a backlog header's window starts when its sampling
does (it could not have been sampled earlier, and it must not expire while waiting in the queue).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from da.api.config import HEADER_SERVICE, SAMPLING_SERVICE, ServerConfig
from da.api.server import create_server, stop_server
from da.header import SignedHeader, TrustRoot, trust_root_from_hex
from da.metrics import LightMetrics, RpcMetrics, observe_store_size, process_registry
from da.sampling import (
    draw_coordinates,
    extended_cell_count,
    sample_confidence,
    samples_for_confidence,
)
from da.serving import HeaderServicer, HeadNotifier
from da.status import start_status_server
from da.status.light import LightStatus
from da.store.base import KeyValueStore
from da.store.checkpoint import SamplingResult, SamplingStatus
from da.store.rocks import open_store
from da.v1 import da_pb2_grpc
from erasure import kzg
from light_client.announce import announce_forever
from light_client.chain import HeaderChain
from light_client.config import LightClientConfig
from light_client.peers import GrpcPeer, Peer, PeerPool, max_reply_bytes
from light_client.sampler import Sampler
from light_client.service import ChainHeaders, SamplingServicer
from light_client.state import AvailabilityState
from light_client.sync import BACKLOG_HEIGHTS, HeaderSync

log = logging.getLogger(__name__)

STORE_DIR = "light-client.db"
SAMPLING_METHODS = (
    "/da.v1.SamplingService/GetAvailability",
    "/da.v1.SamplingService/GetHeldSamples",
    "/da.v1.HeaderService/GetHeader",
    "/da.v1.HeaderService/SubscribeHeaders",
)
VERDICTS_KEPT = 1024
SAMPLE_PEERS = 2  # a header's samples go first to this many random peers; a live header is
HOLDER_WAIT_SECONDS = 0.5  # sampled once that many announced it, or this long after its arrival


def sample_count(k: int, samples: int | None, confidence: float | None) -> int:
    """Samples per header: the fixed count (at most every cell), or the fewest reaching
    `confidence`."""
    if samples is not None:
        return min(samples, extended_cell_count(k))
    if confidence is None:
        raise ValueError("either samples or confidence must be set")
    return samples_for_confidence(k, confidence)


class LightClient:
    """Header chain, sampler and availability state over one store and a set of peers."""

    def __init__(
        self,
        config: LightClientConfig,
        *,
        peers: Sequence[Peer],
        store: KeyValueStore,
        metrics: LightMetrics | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        trust: TrustRoot | None = None,
    ) -> None:
        self.config = config
        self._rng = rng if rng is not None else secrets.SystemRandom()
        self._clock = clock
        self._metrics = metrics
        trust = trust or trust_root_from_hex(config.chain_id, config.trusted_keys)
        self.chain = HeaderChain(
            trust, store, max_rows=config.max_rows, rng=self._rng, metrics=metrics
        )
        self.store = store
        self.state = AvailabilityState(
            store, keep_heights=config.keep_samples, keep_bytes=config.keep_samples_bytes
        )
        self.notifier = HeadNotifier()  # wakes header subscribers on a new head
        if metrics is not None:
            metrics.set_samples_held(self.state.cells_held)
        self.pool = PeerPool(
            peers,
            requests_per_second=config.peer_requests_per_second,
            clock=clock,
            on_shun=metrics.observe_peer_shunned if metrics is not None else lambda: None,
        )
        self.sampler = Sampler(
            self.pool,
            request_timeout_seconds=config.request_timeout_seconds,
            rng=self._rng,
            metrics=metrics,
            clock=clock,
        )
        self.sync = HeaderSync(
            peers,
            self.chain,
            self._on_header,
            request_timeout_seconds=config.request_timeout_seconds,
            rng=self._rng,
            pool=self.pool,
            clock=clock,
        )
        self._backlog: list[tuple[int, int, SignedHeader]] = []  # (-height, seq, header)
        self._seq = itertools.count()
        self._backlog_ready = asyncio.Event()
        self._queued: set[int] = set()
        self._tasks: asyncio.TaskGroup | None = None
        self.status = LightStatus(config.chain_id, lambda: self.chain.head, self._peer_status)
        # The latest verdicts, for tests and benchmarks (bounded: nobody reads it in production).
        self.verdicts: asyncio.Queue[SamplingResult] = asyncio.Queue(VERDICTS_KEPT)

    async def run(self) -> None:
        """Sync and sample until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tasks = tg
            self._resume()
            for index in range(self.config.concurrency):
                tg.create_task(self._backlog_worker(), name=f"backlog sampler {index}")
            tg.create_task(self.sync.run(), name="header sync")

    def _resume(self) -> None:
        """Queue stored headers not yet concluded (a restart resumes, never resamples)."""
        head = self.chain.head
        self.state.skip_to(head - BACKLOG_HEIGHTS)
        for height in range(self.state.checkpoint + 1, head + 1):
            signed = self.chain.get(height)
            if signed is not None and not self.state.concluded(height):
                self._enqueue(signed)
        if head:
            log.info("resuming at head %d, checkpoint %d", head, self.state.checkpoint)

    def _on_header(self, signed: SignedHeader, live: bool) -> None:
        height = signed.header.height
        self.notifier.notify(self.chain.head)
        if self.state.concluded(height) or height in self._queued:
            return
        if live and self._tasks is not None:
            self._queued.add(height)
            self._tasks.create_task(
                self._sample(signed, self._clock(), live=True), name=f"sample {height}"
            )
        else:
            self._enqueue(signed)
        self.state.skip_to(self.chain.head - BACKLOG_HEIGHTS)

    def _enqueue(self, signed: SignedHeader) -> None:
        self._queued.add(signed.header.height)
        heapq.heappush(self._backlog, (-signed.header.height, next(self._seq), signed))
        self._backlog_ready.set()

    async def _backlog_worker(self) -> None:
        while True:
            while not self._backlog:
                self._backlog_ready.clear()
                await self._backlog_ready.wait()
            _, _, signed = heapq.heappop(self._backlog)
            await self._sample(signed, self._clock(), live=False)

    async def _sample(self, signed: SignedHeader, window_start: float, *, live: bool) -> None:
        """Sample one height and record its verdict."""
        header = signed.header
        self.state.begin(header.height)
        count = sample_count(header.k, self.config.samples, self.config.confidence)
        coords = draw_coordinates(header.k, count, self._rng)
        self.status.begin(header.height, header.k, coords)
        started = self._clock()
        deadline = window_start + self.config.sample_window_seconds
        if live:
            wanted = min(SAMPLE_PEERS, len(self.pool.peers))
            holders = await self.sync.wait_for_holders(header.height, wanted, HOLDER_WAIT_SECONDS)
            candidates = sorted(holders)
        else:  # the backlog: old enough for every peer to hold it
            candidates = [peer.name for peer in self.pool.peers]
        preferred = self._rng.sample(candidates, min(SAMPLE_PEERS, len(candidates)))
        outcome = await self.sampler.sample(header, coords, deadline, preferred)
        seconds = self._clock() - started
        confidence = sample_confidence(header.k, count) if outcome.available else 0.0
        status = SamplingStatus.AVAILABLE if outcome.available else SamplingStatus.UNAVAILABLE
        result = SamplingResult(
            header.height, status, confidence, len(outcome.verified), signed.hash
        )
        held = list(outcome.cells)
        self.state.finish(result, signed, held)  # verdict, header and samples in one write
        self.state.prune(self.chain.head)
        self.status.finish(
            header.height, status.name, confidence, outcome.verified, outcome.retried
        )
        self._queued.discard(header.height)
        if self._metrics is not None:
            self._metrics.observe_header_sampled(outcome.available, confidence)
            self._metrics.set_samples_held(self.state.cells_held)
        log.info(
            "height %d %s: k=%d samples=%d/%d confidence=%.6f seconds=%.3f",
            header.height,
            status.name,
            header.k,
            len(outcome.verified),
            count,
            confidence,
            seconds,
        )
        if self.verdicts.full():
            self.verdicts.get_nowait()
        self.verdicts.put_nowait(result)

    def _peer_status(self) -> list[dict[str, object]]:
        """Each peer's health for the status page: shunned for a bad proof, holds the head."""
        holders = self.sync.holders(self.chain.head)
        return [
            {
                "address": peer.name,
                "shunned": self.pool.is_shunned(peer),
                "holds_head": peer.name in holders,
            }
            for peer in self.pool.peers
        ]


async def run(config: LightClientConfig) -> None:
    """`da light-client`: run until cancelled, then shut down cleanly."""
    config.validate()
    # Load the trusted setup (~3 s of CPU) before serving: done lazily, it would stall the first
    # sampling round and eat the first headers' sampling windows.
    await asyncio.to_thread(kzg.settings)
    registry = process_registry()
    metrics = LightMetrics(registry)
    observe_store_size(registry, Path(config.data_dir))
    async with AsyncExitStack() as stack:
        store = open_store(Path(config.data_dir) / STORE_DIR)
        stack.callback(store.close)
        reply_bytes = max_reply_bytes(config.max_rows)
        peers = [
            GrpcPeer(address, tls_ca=config.tls_ca, max_message_bytes=reply_bytes)
            for address in config.peers
        ]
        client = LightClient(config, peers=peers, store=store, metrics=metrics)
        stack.push_async_callback(client.pool.close)
        if config.metrics_port is not None:
            await start_status_server(
                stack,
                client.status,
                registry,
                port=config.metrics_port,
                address=config.metrics_address,
            )
        rpc = RpcMetrics(registry, SAMPLING_METHODS)
        port = await _serve(stack, config.server, client, rpc, metrics)
        log.info("light client following %s", ", ".join(config.peers))
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(client.run(), name="light client")
            if config.announce:
                timeout = config.request_timeout_seconds
                tasks.create_task(announce_forever(peers, port, timeout=timeout), name="announce")


async def _serve(
    stack: AsyncExitStack,
    server_config: ServerConfig,
    client: LightClient,
    rpc: RpcMetrics,
    metrics: LightMetrics,
) -> int:
    """SamplingService and HeaderService on the --listen port; returns the bound port."""
    sampling = SamplingServicer(
        client.chain, client.state, client.store, on_served=metrics.observe_samples_served
    )
    headers = HeaderServicer(ChainHeaders(client.chain, client.store), client.notifier)
    server, port = await create_server(
        server_config,
        [
            (da_pb2_grpc.add_SamplingServiceServicer_to_server, sampling),
            (da_pb2_grpc.add_HeaderServiceServicer_to_server, headers),
        ],
        rpc_metrics=rpc,
        service_names=[SAMPLING_SERVICE, HEADER_SERVICE],
    )
    stack.push_async_callback(stop_server, server)
    return int(port)
