"""Producer unit-test fixtures: a fixed producer key, an in-memory store, fresh metrics, and a
block producer encoding in-process (no worker pool) so tests stay fast."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import pytest
from prometheus_client import CollectorRegistry

from da.metrics import ProducerMetrics
from da.producer.blocks import BlockProducer
from da.producer.encoder import Encoder
from da.producer.mempool import Mempool
from da.serving import HeadNotifier
from da.signing import KeyPair, generate_keypair
from da.store.base import KeyValueStore
from da.store.memory import MemoryStore

CHAIN_ID = "unit-producer"
PRODUCER_KEY = generate_keypair(b"\x07" * 32)
MEMPOOL_BYTES = 1 << 20


@pytest.fixture
def key() -> KeyPair:
    return PRODUCER_KEY


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ProducerMetrics:
    return ProducerMetrics(registry)


MakeProducer = Callable[..., tuple[BlockProducer, Mempool, HeadNotifier]]
ExecutorMaker = Callable[[], Executor | None]


def build_producer(
    metrics: ProducerMetrics,
    store: KeyValueStore,
    *,
    executor: ExecutorMaker = lambda: None,
    max_rows: int = 4,
    clock: Callable[[], float] | None = None,
    retention_blocks: int = 0,
) -> tuple[BlockProducer, Mempool, HeadNotifier, Encoder]:
    """A block producer over `store` (executor None: in-process encoding, started on first use)."""
    encoder = Encoder(executor)
    mempool = Mempool(store, max_pending_bytes=MEMPOOL_BYTES)
    notifier = HeadNotifier()
    producer = BlockProducer(
        store,
        mempool,
        notifier,
        metrics,
        key=PRODUCER_KEY,
        chain_id=CHAIN_ID,
        max_rows=max_rows,
        encoder=encoder,
        retention_blocks=retention_blocks,
        clock=clock or (lambda: 1_700_000_000.0),
    )
    return producer, mempool, notifier, encoder


@pytest.fixture
def make_producer(metrics: ProducerMetrics) -> MakeProducer:
    """`make_producer(store, max_rows=4)` -> (BlockProducer, Mempool, HeadNotifier)."""

    def make(
        store: KeyValueStore,
        *,
        max_rows: int = 4,
        clock: Callable[[], float] | None = None,
        retention_blocks: int = 0,
    ) -> tuple[BlockProducer, Mempool, HeadNotifier]:
        return build_producer(
            metrics, store, max_rows=max_rows, clock=clock, retention_blocks=retention_blocks
        )[:3]

    return make
