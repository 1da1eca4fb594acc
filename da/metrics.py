"""Prometheus metrics (PROTOCOL.md §16): one class per component, each registered on an injected
`CollectorRegistry` so tests use a fresh registry and nodes sharing a process never collide.

Every labelled metric has its label values created up front, so dashboards and alerts see a 0
series from the start instead of a gap; observing an unknown label value raises ValueError
(reasons instead fold into "other", since new rejection causes should not crash a node).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

# SubmitBlob outcomes the handler sees. A call refused by the rate-limit or token interceptor
# never reaches it: those are counted by `da_grpc_requests_total{code}` (RESOURCE_EXHAUSTED,
# UNAUTHENTICATED), not here.
SUBMISSION_RESULTS = (
    "accepted",
    "duplicate",
    "invalid",
    "too_large",
    "mempool_full",  # the pending bytes are at their limit: retry once blocks drain it
    "unavailable",  # a producer group without a leader or a majority: retry shortly
)
HEADER_REJECT_REASONS = (
    "invalid_header",
    "wrong_chain",
    "untrusted_producer",
    "bad_signature",
    "broken_link",
    "too_many_rows",
    "inconsistent_commitments",
    "other",
)
# A block whose header passed but whose rows could not be fetched or rebuilt is "unrecoverable"
# (bad cells from a remote are dropped and fetched elsewhere, never a refusal of the block).
STORAGE_REJECT_REASONS = (*HEADER_REJECT_REASONS[:-1], "unrecoverable", "other")

HEADER_SAMPLE_RESULTS = ("available", "unavailable")
SAMPLE_RESULTS = ("ok", "bad_proof", "error", "timeout")
RECOVERY_RESULTS = ("recovered", "unrecoverable")  # a rebuild from gathered cells (PROTOCOL.md §13)
CELL_SOURCES = ("storage", "light")  # who served a gathered cell: a storage node, a light client

# Encoding a 64x64 square takes seconds; a slow machine or a big square can take a minute or two.
BLOCK_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
SAMPLE_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RPC_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
RECENT_BLOCKS_KEPT = 64  # encode times kept for the producer's status page


def header_rejection_reason(error: BaseException) -> str:
    """The `reason` label of a refused header, the same at the storage node and the light client:
    the error's class name in snake case (BadSignature -> bad_signature), else "other"."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
    return name if name in HEADER_REJECT_REASONS else "other"


def process_registry() -> CollectorRegistry:
    """A fresh registry with the process (CPU, RSS, open files), platform and GC collectors that
    prometheus-client registers only on its global registry, which our roles do not use."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def observe_store_size(registry: CollectorRegistry, data_dir: Path) -> Gauge:
    """`da_store_size_bytes`: the bytes of every file under `data_dir`, measured at scrape."""
    gauge = Gauge(
        "da_store_size_bytes", "Bytes on disk under the data directory", registry=registry
    )
    gauge.set_function(lambda: float(directory_bytes(data_dir)))
    return gauge


def directory_bytes(path: Path) -> int:
    """Total size of the regular files under `path` (0 if it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
            except OSError:
                continue  # removed meanwhile (compaction)
    return total


class ProducerMetrics:
    """Block production, blob intake and certificates of the producer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.blocks = Counter("da_blocks_produced", "Blocks produced and stored", registry=r)
        self.encode_seconds = Histogram(
            "da_block_encode_seconds",
            "Time to lay out, extend and commit one block",
            buckets=BLOCK_SECONDS_BUCKETS,
            registry=r,
        )
        self.submissions = _counter_with_labels(
            "da_blob_submissions", "SubmitBlob calls by outcome", "result", SUBMISSION_RESULTS, r
        )
        self.head_height = Gauge("da_producer_head_height", "Height of the last block", registry=r)
        self.pending = Gauge("da_producer_pending_blobs", "Blobs waiting for a block", registry=r)
        self.certificates = Counter("da_certificates", "DA certificates formed", registry=r)
        # The last blocks' encode times by height, for the status page (bounded).
        self.recent_encode_seconds: OrderedDict[int, float] = OrderedDict()

    def observe_block(self, height: int, encode_seconds: float) -> None:
        """A block at `height` was encoded in `encode_seconds` and stored."""
        self.blocks.inc()
        self.encode_seconds.observe(encode_seconds)
        self.recent_encode_seconds[height] = encode_seconds
        while len(self.recent_encode_seconds) > RECENT_BLOCKS_KEPT:
            self.recent_encode_seconds.popitem(last=False)
        self.head_height.set(height)

    def observe_submission(self, result: str) -> None:
        """One SubmitBlob answered with `result` (one of SUBMISSION_RESULTS)."""
        _labelled(self.submissions, result, SUBMISSION_RESULTS).inc()

    def set_pending_blobs(self, count: int) -> None:
        self.pending.set(count)

    def set_head_height(self, height: int) -> None:
        self.head_height.set(height)

    def observe_certificate(self) -> None:
        """A quorum of attestations was aggregated into a certificate."""
        self.certificates.inc()


# Why a group replica neither follows nor campaigns: etcd unreachable, or its store holds blocks
# the committed chain does not (a data directory of another chain, or a wiped etcd).
BLOCKED_REASONS = ("etcd_unreachable", "diverged", "wrong_group_size")
REPLICATION_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class GroupMetrics:
    """A producer replica in a group (PROTOCOL.md §12): leadership and replicated intake."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.leader = Gauge("da_producer_leader", "1 while this replica leads", registry=r)
        self.leader_changes = Counter(
            "da_producer_leader_changes",
            "Times this replica became or stopped being leader",
            registry=r,
        )
        self.replication_seconds = Histogram(
            "da_producer_replication_seconds",
            "SubmitBlob at the leader to the blob synced on a majority of the replicas",
            buckets=REPLICATION_SECONDS_BUCKETS,
            registry=r,
        )
        self.blocked = Gauge(
            "da_producer_group_blocked",
            "1 while this replica can neither follow nor campaign, by reason",
            ["reason"],
            registry=r,
        )
        self.set_blocked(None)

    def set_blocked(self, reason: str | None) -> None:
        """The replica cannot follow or campaign because of `reason` (one of BLOCKED_REASONS),
        or (None) it can."""
        for known in BLOCKED_REASONS:
            self.blocked.labels(reason=known).set(1 if known == reason else 0)

    def set_leading(self, leading: bool) -> None:
        """This replica just started (True) or stopped (False) leading."""
        self.leader.set(1 if leading else 0)
        self.leader_changes.inc()

    def observe_replication(self, seconds: float) -> None:
        self.replication_seconds.observe(seconds)


class StorageMetrics:
    """Ingest, serving and repair on a storage node."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self._head = 0
        self.head_height = Gauge("da_storage_head_height", "Highest stored block", registry=r)
        self.samples_served = Counter(
            "da_storage_samples_served", "Cells served with proofs", registry=r
        )
        self.cells_repaired = Counter(
            "da_storage_cells_repaired", "Cells reconstructed instead of fetched", registry=r
        )
        self.blocks_ingested = Counter(
            "da_storage_blocks_ingested", "Whole blocks verified and stored", registry=r
        )
        self.ingest_seconds = Histogram(
            "da_storage_ingest_seconds",
            "Time from header to stored block",
            buckets=BLOCK_SECONDS_BUCKETS,
            registry=r,
        )
        self.rejected = _counter_with_labels(
            "da_storage_rejected", "Headers or blocks refused", "reason", STORAGE_REJECT_REASONS, r
        )
        self.equivocations = Counter(
            "da_storage_equivocations", "Two signed headers seen for one height", registry=r
        )
        self.lag = Gauge(
            "da_storage_lag_blocks",
            "Newest verified height seen minus the head stored",
            registry=r,
        )
        self.peers_shunned = Counter(
            "da_storage_peers_shunned",
            "Sources set aside for serving forged or bad data",
            registry=r,
        )
        self.attestation_failures = Counter(
            "da_storage_attestation_failures", "Attestations refused or given up", registry=r
        )
        self.recoveries = _counter_with_labels(
            "da_storage_recoveries",
            "Blocks rebuilt from gathered cells, by outcome",
            "result",
            RECOVERY_RESULTS,
            r,
        )
        self.cells_collected = _counter_with_labels(
            "da_storage_cells_collected",
            "Verified cells gathered for a rebuild, by source",
            "source",
            CELL_SOURCES,
            r,
        )
        self._tip = 0

    def observe_tip(self, height: int) -> None:
        """A verified header at `height` was seen (the chain's tip is at least there)."""
        self._tip = max(self._tip, height)
        self.lag.set(max(0, self._tip - self._head))

    def observe_peer_shunned(self) -> None:
        self.peers_shunned.inc()

    def observe_attestation_failure(self) -> None:
        self.attestation_failures.inc()

    def observe_recovery(self, recovered: bool) -> None:
        """A rebuild from gathered cells succeeded or found them not enough."""
        self.recoveries.labels("recovered" if recovered else "unrecoverable").inc()

    def observe_cells_collected(self, source: str, count: int) -> None:
        """`count` verified cells gathered from a `source` (one of CELL_SOURCES)."""
        _labelled(self.cells_collected, source, CELL_SOURCES).inc(count)

    def observe_block_ingested(self, height: int, seconds: float) -> None:
        """The block at `height` is stored, `seconds` after its header arrived; the head height
        only moves up (blocks may be backfilled out of order)."""
        self.blocks_ingested.inc()
        self.ingest_seconds.observe(seconds)
        self.set_head_height(max(height, self._head))

    def set_head_height(self, height: int) -> None:
        self._head = height
        self.head_height.set(height)
        self.lag.set(max(0, self._tip - height))

    def observe_samples_served(self, count: int) -> None:
        self.samples_served.inc(count)

    def observe_cells_repaired(self, count: int) -> None:
        self.cells_repaired.inc(count)

    def observe_rejected(self, reason: str) -> None:
        """A header or block was refused; unknown reasons count as "other"."""
        self.rejected.labels(_reason(reason, STORAGE_REJECT_REASONS)).inc()

    def observe_equivocation(self) -> None:
        self.equivocations.inc()


class LightMetrics:
    """Header sync and sampling of a light client."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.head_height = Gauge("da_light_head_height", "Highest verified header", registry=r)
        self.headers_sampled = _counter_with_labels(
            "da_light_headers_sampled",
            "Heights concluded",
            "result",
            HEADER_SAMPLE_RESULTS,
            r,
        )
        self.last_confidence = Gauge(
            "da_light_last_confidence", "Confidence of the last concluded height", registry=r
        )
        self.sample_seconds = Histogram(
            "da_light_sample_seconds",
            "Time to fetch and verify one sample",
            buckets=SAMPLE_SECONDS_BUCKETS,
            registry=r,
        )
        self.samples = _counter_with_labels(
            "da_light_samples", "Sample attempts by outcome", "result", SAMPLE_RESULTS, r
        )
        self.equivocations = Counter(
            "da_light_equivocations", "Two signed headers seen for one height", registry=r
        )
        self.rejected_headers = _counter_with_labels(
            "da_light_rejected_headers", "Headers refused", "reason", HEADER_REJECT_REASONS, r
        )
        self.peers_shunned = Counter(
            "da_light_peers_shunned",
            "Peers set aside for forged headers or bad samples",
            registry=r,
        )
        self.samples_held = Gauge(
            "da_light_samples_held", "Verified samples kept to serve (PROTOCOL.md §13)", registry=r
        )
        self.samples_served = Counter(
            "da_light_samples_served", "Kept samples served with GetHeldSamples", registry=r
        )

    def set_samples_held(self, count: int) -> None:
        self.samples_held.set(count)

    def observe_samples_served(self, count: int) -> None:
        self.samples_served.inc(count)

    def set_head_height(self, height: int) -> None:
        self.head_height.set(height)

    def observe_header_sampled(self, available: bool, confidence: float) -> None:
        """A height was concluded AVAILABLE (with `confidence`) or UNAVAILABLE."""
        self.headers_sampled.labels("available" if available else "unavailable").inc()
        self.last_confidence.set(confidence)

    def observe_sample(self, result: str, seconds: float) -> None:
        """One sample attempt ended with `result` (one of SAMPLE_RESULTS) after `seconds`."""
        _labelled(self.samples, result, SAMPLE_RESULTS).inc()
        self.sample_seconds.observe(seconds)

    def observe_equivocation(self) -> None:
        self.equivocations.inc()

    def observe_rejected_header(self, reason: str) -> None:
        """A header failed verification; unknown reasons count as "other"."""
        self.rejected_headers.labels(_reason(reason, HEADER_REJECT_REASONS)).inc()

    def observe_peer_shunned(self) -> None:
        self.peers_shunned.inc()


class RpcMetrics:
    """gRPC calls by method and status code, observed by one server interceptor."""

    def __init__(self, registry: CollectorRegistry, methods: Iterable[str] = ()) -> None:
        self.requests = Counter(
            "da_grpc_requests", "gRPC calls", ["method", "code"], registry=registry
        )
        self.seconds = Histogram(
            "da_grpc_request_seconds",
            "gRPC call latency",
            ["method"],
            buckets=RPC_SECONDS_BUCKETS,
            registry=registry,
        )
        for method in methods:
            self.requests.labels(method, "OK")
            self.seconds.labels(method)

    def observe_request(self, method: str, code: str, seconds: float | None) -> None:
        """One call of `method` (e.g. "/da.v1.ShareService/GetSamples") ended with status `code`
        (a `grpc.StatusCode` name such as "OK" or "NOT_FOUND") after `seconds`; None for a
        response stream, whose lifetime is no latency and stays out of the histogram."""
        self.requests.labels(method, code).inc()
        if seconds is not None:
            self.seconds.labels(method).observe(seconds)


def _counter_with_labels(
    name: str, doc: str, label: str, values: Iterable[str], registry: CollectorRegistry
) -> Counter:
    counter = Counter(name, doc, [label], registry=registry)
    for value in values:
        counter.labels(value)
    return counter


def _labelled(counter: Counter, value: str, allowed: tuple[str, ...]) -> Counter:
    if value not in allowed:
        raise ValueError(f"unknown label value {value!r}; expected one of {allowed}")
    return counter.labels(value)


def _reason(reason: str, allowed: tuple[str, ...]) -> str:
    return reason if reason in allowed else "other"
