"""`da storage-node`: wires the store, the gRPC server, metrics, the follower and the attester.

`run(config)` runs until cancelled and then shuts down cleanly: health NOT_SERVING, server
stopped with a grace period, remote channels, the verification worker and the store closed,
metrics endpoint released.

Why a verification worker: checking a block's cell proofs is ckzg work that holds the GIL
(~6 s for a whole k = 64 block); on the event loop it would stall serving for that long. So it
runs in a long-lived process that loaded the trusted setup once (STYLE rule 12).
"""

from __future__ import annotations

import asyncio
import logging
import random
from concurrent.futures import Executor
from contextlib import AsyncExitStack
from typing import Any

from prometheus_client import CollectorRegistry

from da import serving
from da.api.config import BLOB_SERVICE, HEADER_SERVICE, SHARE_SERVICE
from da.api.server import create_server, stop_server
from da.config import StorageNodeConfig
from da.encoder_pool import make_encoder_pool
from da.header import trust_root_from_hex
from da.metrics import RpcMetrics, StorageMetrics, observe_store_size, process_registry
from da.signing import read_key_file
from da.status import start_status_server
from da.status.storage import AttestationStats, StorageStatus
from da.storage_node.attest import Attester
from da.storage_node.follow import Follower
from da.storage_node.gather import LightGatherer
from da.storage_node.ingest import Ingestor, Stored
from da.storage_node.remotes import Remote
from da.storage_node.samplers import SamplerDirectory, SamplerRegistryServicer
from da.storage_node.service import StorageBlobServicer
from da.store import blocks
from da.store.base import KeyValueStore
from da.store.rocks import open_store
from da.v1 import da_pb2_grpc
from erasure import kzg

log = logging.getLogger(__name__)

SAMPLER_REGISTRY_SERVICE = "da.v1.SamplerRegistry"

STORE_DIR = "blocks"
SHUTDOWN_GRACE_SECONDS = 2.0
SERVICE_NAMES = (BLOB_SERVICE, HEADER_SERVICE, SHARE_SERVICE, SAMPLER_REGISTRY_SERVICE)
VERIFY_WORKERS = 1  # proofs of one block at a time; the event loop keeps the other core


async def run(config: StorageNodeConfig) -> None:
    """Run the storage node until cancelled."""
    config.validate()
    await asyncio.to_thread(kzg.settings)  # load the trusted setup before serving anything
    async with AsyncExitStack() as stack:
        store = _open(stack, config)
        registry = process_registry()
        metrics = StorageMetrics(registry)
        observe_store_size(registry, config.data_dir)
        metrics.set_head_height(blocks.head_height(store))
        notifier = serving.HeadNotifier()
        stats = AttestationStats(enabled=config.key_file is not None)
        directory = SamplerDirectory(config.samplers)
        await _serve(stack, config, store, metrics, registry, notifier, stats, directory)
        remotes = await _remotes(stack, config)
        verifier = await _verifier(stack)
        attester = _attester(config, remotes[: len(config.producers)], stats, metrics)
        if attester is not None:  # the queue of a previous run was in memory only
            requeued = await attester.submit_recent(store)
            log.info("re-attesting the %d most recent stored blocks", requeued)
        ingestor = Ingestor(
            store,
            trust_root_from_hex(config.chain_id, config.trusted_keys),
            metrics,
            notifier,
            max_rows=config.max_rows,
        )

        async def on_stored(stored: Stored) -> None:
            if attester is not None:
                attester.submit(stored.height, stored.header_hash)
            ingestor.prune(config.retention_blocks)

        follower = Follower(
            ingestor,
            remotes,
            on_stored=on_stored,
            retention_blocks=config.retention_blocks,
            executor=verifier,
            on_shun=metrics.observe_peer_shunned,
            samplers=LightGatherer(
                directory, timeout=config.request_timeout_seconds, tls_ca=config.tls_ca
            ),
            observer=metrics,
        )
        log.info(
            "storage node up: head %d, producer %s, %d peers, %d samplers, %s",
            follower.head,
            config.producer,
            len(config.peers),
            len(config.samplers),
            "attesting" if attester is not None else "not attesting (no --key-file)",
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(follower.run())
            if attester is not None:
                tasks.create_task(attester.run())


def _open(stack: AsyncExitStack, config: StorageNodeConfig) -> KeyValueStore:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.data_dir / STORE_DIR)
    stack.callback(store.close)
    orphans = blocks.delete_orphan_rows(store)
    if orphans:
        log.warning("deleted the rows of unfinished blocks at heights %s", orphans)
    return store


async def _serve(
    stack: AsyncExitStack,
    config: StorageNodeConfig,
    store: KeyValueStore,
    metrics: StorageMetrics,
    registry: CollectorRegistry,
    notifier: serving.HeadNotifier,
    stats: AttestationStats,
    directory: SamplerDirectory,
) -> None:
    """The gRPC server (HeaderService, ShareService, BlobService, SamplerRegistry) and the
    status page."""
    served = metrics.observe_samples_served
    servicers: list[tuple[Any, Any]] = [
        *serving.read_servicers(store, notifier, on_served=served),
        (
            da_pb2_grpc.add_BlobServiceServicer_to_server,
            StorageBlobServicer(store, on_served=served),
        ),
        (
            da_pb2_grpc.add_SamplerRegistryServicer_to_server,
            SamplerRegistryServicer(directory),
        ),
    ]
    server, port = await create_server(
        config.server, servicers, rpc_metrics=RpcMetrics(registry), service_names=SERVICE_NAMES
    )
    stack.push_async_callback(stop_server, server, None, SHUTDOWN_GRACE_SECONDS)
    if config.metrics_port is not None:
        source = StorageStatus(
            config.chain_id,
            store,
            registry,
            [config.producer],
            config.peers,
            config.retention_blocks,
            attestation=stats,
            samplers=lambda: directory.candidates(random.Random(0)),
        )
        await start_status_server(
            stack, source, registry, port=config.metrics_port, address=config.metrics_address
        )
    log.info("serving on port %d", port)


async def _remotes(stack: AsyncExitStack, config: StorageNodeConfig) -> list[Remote]:
    """The producers (every replica of a group) first, then the peers; closed on exit."""
    timeout = config.request_timeout_seconds
    remotes = [
        Remote(producer, timeout, is_producer=True).open(config.tls_ca)
        for producer in config.producers
    ]
    remotes += [Remote(peer, timeout).open(config.tls_ca) for peer in config.peers]
    for remote in remotes:
        stack.push_async_callback(remote.close)
    return remotes


async def _verifier(stack: AsyncExitStack) -> Executor:
    """The process that verifies fetched cells (trusted setup loaded once), shut down on exit.

    Started and stopped off the event loop: spawning it and loading the setup take a while."""
    pool = await asyncio.to_thread(make_encoder_pool, VERIFY_WORKERS)
    stack.push_async_callback(asyncio.to_thread, pool.shutdown, cancel_futures=True)
    return pool


def _attester(
    config: StorageNodeConfig,
    producers: list[Remote],
    stats: AttestationStats,
    metrics: StorageMetrics,
) -> Attester | None:
    """Attestations go to the producer (a group's replicas in turn, on failure)."""
    if config.key_file is None:
        return None

    def on_result(height: int, accepted: bool) -> None:
        stats.observe(height, accepted)
        if not accepted:
            metrics.observe_attestation_failure()

    first, *others = producers
    return Attester(
        read_key_file(config.key_file), first, on_result=on_result, other_producers=others
    )
