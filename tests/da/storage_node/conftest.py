"""In-process servers over MemoryStores standing in for the producer and peers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from da import serving
from da.api.config import ServerConfig
from da.api.server import create_server, stop_server
from da.metrics import StorageMetrics
from da.storage_node.ingest import Ingestor
from da.storage_node.remotes import Remote
from da.store.memory import MemoryStore
from tests.da.storage_node.chain import TRUST, Block, store_block

Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """`await serve(blocks, share=ShareServicerClass, header=HeaderServicerClass)` ->
    (Remote, store, notifier)."""
    servers: list[Any] = []
    remotes: list[Remote] = []

    async def start(
        blocks: Sequence[Block] = (),
        *,
        share: type[serving.ShareServicer] = serving.ShareServicer,
        header: type[serving.HeaderServicer] = serving.HeaderServicer,
        extra: Sequence[tuple[Any, Any]] = (),
        producer: bool = True,
    ) -> tuple[Remote, MemoryStore, serving.HeadNotifier]:
        store, notifier = MemoryStore(), serving.HeadNotifier()
        for block in blocks:
            store_block(store, block)
        servicers = [
            (
                serving.da_pb2_grpc.add_HeaderServiceServicer_to_server,
                header(serving.StoredHeaders(store), notifier, poll_seconds=0.1),
            ),
            (serving.da_pb2_grpc.add_ShareServiceServicer_to_server, share(store)),
            *extra,
        ]
        server, port = await create_server(
            ServerConfig(rate_limit_per_second=0), servicers, rpc_metrics=None, service_names=()
        )
        servers.append(server)
        remote = Remote(f"127.0.0.1:{port}", 5.0, is_producer=producer).open()
        remotes.append(remote)
        return remote, store, notifier

    yield start
    for remote in remotes:
        await remote.close()
    for server in servers:
        await stop_server(server, grace=0)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def ingestor(registry: CollectorRegistry) -> Ingestor:
    return Ingestor(
        MemoryStore(), TRUST, StorageMetrics(registry), serving.HeadNotifier(), max_rows=64
    )
