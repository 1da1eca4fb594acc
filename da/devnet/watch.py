"""Watching the chain: per height, the header, which storage nodes hold the block, the
certificate, every light client's verdict (gRPC), and the encode time (the producer's
`da_block_encode_seconds` histogram on /metrics, parsed with `prometheus_client.parser`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from da.client import AsyncDAClient, ClientError, RemoteError
from da.devnet.layout import (
    LIGHT_SAMPLE_WINDOW_SECONDS,
    LOOPBACK,
    RPC_TIMEOUT_SECONDS,
    Layout,
    Node,
)

HEIGHT_TIMEOUT_SECONDS = LIGHT_SAMPLE_WINDOW_SECONDS + 60.0  # header seen -> every verdict in
ENCODE_HISTOGRAM = "da_block_encode_seconds"
CERTIFICATE_GRACE_SECONDS = 10.0  # after the verdicts, wait this long for the certificate


@dataclass
class HeightView:
    """What the devnet knows about one height."""

    height: int
    seen_at: float
    k: int = 0
    blobs: int = 0
    payload_bytes: int = 0
    encode_seconds: float | None = None
    holders: set[str] = field(default_factory=set)
    signers: int = 0
    verdicts: dict[str, tuple[str, float]] = field(default_factory=dict)  # light -> (status, c)
    verdicts_at: float | None = None
    finished: bool = False
    failure: str = ""

    def available_everywhere(self, light: Sequence[Node]) -> bool:
        return all(self.verdicts.get(n.name, ("", 0.0))[0] == "AVAILABLE" for n in light)


FINAL_VERDICTS = ("AVAILABLE", "UNAVAILABLE")


class Watcher:
    """Polls the producer, storage nodes and light clients through `da.client` and /metrics."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.heights: dict[int, HeightView] = {}
        self.head = 0
        self.start_height = 0
        self.last_new_block = time.monotonic()
        self.encode_clock = EncodeClock()
        self._clients: dict[str, AsyncDAClient] = {}

    def client(self, node: Node) -> AsyncDAClient:
        """A `da.client` of one node, trusting the devnet's producers (headers are verified)."""
        if node.name not in self._clients:
            address = [node.address]
            self._clients[node.name] = AsyncDAClient(
                producers=address if node.role == "producer" else (),
                storage=address if node.role == "storage-node" else (),
                chain_id=self.layout.chain_id,
                trusted_keys=[p.public_key for p in self.layout.producers],
                timeout=RPC_TIMEOUT_SECONDS,
            )
        return self._clients[node.name]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def producer_head(self) -> int:
        try:
            signed = await self.client(self.layout.producer).header(0)
        except RemoteError as e:
            if e.code == "NOT_FOUND":
                return 0
            raise
        return signed.header.height

    async def poll(self) -> None:
        """One round: new heights, encode times, then every unfinished height."""
        head = await self.producer_head()
        now = time.monotonic()
        for height in range(max(self.head, self.start_height) + 1, head + 1):
            self.heights[height] = HeightView(height, now)
            self.last_new_block = now
        self.head = max(self.head, head)
        await self._encode_times()
        pending = [v for v in self.heights.values() if not v.finished]
        await asyncio.gather(*(self._poll_height(v) for v in pending))

    async def _poll_height(self, view: HeightView) -> None:
        if not view.k:
            await self._read_header(view)
        await asyncio.gather(
            *(
                self._check_holder(view, s)
                for s in self.layout.storage
                if s.name not in view.holders
            ),
            self._check_certificate(view),
            *(
                self._check_light(view, n)
                for n in self.layout.light
                if view.verdicts.get(n.name, ("", 0.0))[0] not in FINAL_VERDICTS
            ),
        )
        self._maybe_finish(view)

    async def _read_header(self, view: HeightView) -> None:
        header = (await self.client(self.layout.producer).header(view.height)).header
        view.k, view.blobs = header.k, len(header.blobs)
        view.payload_bytes = sum(entry.length for entry in header.blobs)

    async def _check_holder(self, view: HeightView, node: Node) -> None:
        """A storage node's HeaderService only answers for heights whose whole block it stores."""
        with contextlib.suppress(ClientError):
            await self.client(node).header(view.height)
            view.holders.add(node.name)

    async def _check_certificate(self, view: HeightView) -> None:
        with contextlib.suppress(ClientError):
            cert = await self.client(self.layout.producer).certificate(view.height)
            view.signers = max(view.signers, len(cert.public_keys))

    async def _check_light(self, view: HeightView, node: Node) -> None:
        with contextlib.suppress(ClientError):
            verdict = await self.client(node).availability(view.height, node=node.address)
            view.verdicts[node.name] = (verdict.status, verdict.confidence)

    def _maybe_finish(self, view: HeightView) -> None:
        now = time.monotonic()
        light = self.layout.light
        if view.verdicts_at is None and all(
            view.verdicts.get(n.name, ("", 0.0))[0] in FINAL_VERDICTS for n in light
        ):
            view.verdicts_at = now
        certified = view.signers >= self.layout.quorum
        if view.verdicts_at is not None and (
            certified or now - view.verdicts_at > CERTIFICATE_GRACE_SECONDS
        ):
            view.finished = True
        elif now - view.seen_at > HEIGHT_TIMEOUT_SECONDS:
            waiting = [
                n.name
                for n in light
                if view.verdicts.get(n.name, ("", 0.0))[0] not in FINAL_VERDICTS
            ]
            view.finished = True
            view.failure = (
                f"no verdict from {', '.join(waiting)} within {HEIGHT_TIMEOUT_SECONDS:g} s"
            )

    async def _encode_times(self) -> None:
        """Encode times of the heights without one, from the producer's histogram."""
        try:
            text = await asyncio.to_thread(scrape, self.layout.producer.metrics_port)
        except OSError:
            return
        self.encode_clock.update(text, self.heights.values())


class EncodeClock:
    """Per-height encode times from the producer's `da_block_encode_seconds` histogram: the
    growth of its sum over the growth of its count between two scrapes (the mean so far on the
    first), given to every height that has no time yet."""

    def __init__(self) -> None:
        self._seen: tuple[float, float] | None = None  # (count, sum) at the last scrape

    def update(self, exposition: str, views: Iterable[HeightView]) -> None:
        count = metric_sample(exposition, ENCODE_HISTOGRAM, "_count")
        total = metric_sample(exposition, ENCODE_HISTOGRAM, "_sum")
        if not count or total is None:
            return
        previous, self._seen = self._seen, (count, total)
        if previous is not None and count <= previous[0]:
            return
        base_count, base_total = previous or (0.0, 0.0)
        per_block = (total - base_total) / (count - base_count)
        for view in views:
            if view.encode_seconds is None:
                view.encode_seconds = per_block


def scrape(port: int) -> str:
    """The Prometheus text exposition at loopback `port`."""
    url = f"http://{LOOPBACK}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=RPC_TIMEOUT_SECONDS) as response:
        return str(response.read().decode())


def metric_sample(exposition: str, family: str, suffix: str = "") -> float | None:
    """The value of the unlabelled sample `family + suffix` (e.g. a histogram's "_count") in a
    Prometheus text exposition, or None when it is absent."""
    for metric in text_string_to_metric_families(exposition):
        if metric.name == family:
            for sample in metric.samples:
                if sample.name == family + suffix and not sample.labels:
                    return float(sample.value)
    return None
