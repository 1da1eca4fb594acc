"""`da producer`: wires the store, the mempool, the block loop, the certifier, the gRPC server
and the metrics endpoint.

`run(config)` runs until cancelled, then shuts down in order: the block loop stops (a block being
written is finished first), health reports NOT_SERVING, the server stops with a grace period,
the encoding pool shuts down, the store is closed and the metrics endpoint released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry

from da import serving
from da.api.config import (
    ATTEST_METHOD,
    ATTESTATION_SERVICE,
    BLOB_SERVICE,
    HEADER_SERVICE,
    SHARE_SERVICE,
    SUBMIT_BLOB_METHOD,
)
from da.api.server import create_server, stop_server
from da.config import ProducerConfig, decode_public_keys
from da.encoder_pool import make_encoder_pool
from da.metrics import (
    GroupMetrics,
    ProducerMetrics,
    RpcMetrics,
    observe_store_size,
    process_registry,
)
from da.producer.blocks import BlockProducer
from da.producer.certify import Certifier
from da.producer.encoder import Encoder
from da.producer.group.etcd import Coordinator
from da.producer.group.intake import GroupIntake
from da.producer.group.leader import Leadership
from da.producer.group.peers import ReplicaPeer
from da.producer.group.replica import GroupReplica
from da.producer.group.service import (
    REPLICA_METHODS,
    REPLICA_SERVICE,
    GroupAttestationServicer,
    ReplicaServicer,
)
from da.producer.mempool import MEMPOOL_SQUARES, Mempool
from da.producer.service import AttestationServicer, ProducerBlobServicer
from da.signing import KeyPair, read_key_file
from da.status import start_status_server
from da.status.producer import ProducerStatus, single_producer
from da.storage_node.remotes import Remote
from da.store import blocks
from da.store.base import KeyValueStore
from da.store.rocks import open_store
from da.v1 import da_pb2_grpc
from erasure.layout import max_blob_bytes

log = logging.getLogger(__name__)

STORE_DIR = "producer"
SHUTDOWN_GRACE_SECONDS = 5.0
SERVICE_NAMES = (BLOB_SERVICE, HEADER_SERVICE, SHARE_SERVICE, ATTESTATION_SERVICE)
RPC_METHODS = (
    SUBMIT_BLOB_METHOD,
    "/da.v1.BlobService/GetBlobStatus",
    "/da.v1.BlobService/GetBlobs",
    "/da.v1.HeaderService/GetHeader",
    "/da.v1.HeaderService/SubscribeHeaders",
    "/da.v1.ShareService/GetSamples",
    "/da.v1.ShareService/GetRow",
    ATTEST_METHOD,
    "/da.v1.AttestationService/GetCertificate",
)

ExecutorFactory = Callable[[ProducerConfig], Executor | None]
REPLICA_TIMEOUT_SECONDS = 5.0  # one call to another replica (a row, a forwarded blob)


def encoder_pool(config: ProducerConfig) -> Executor:
    """`config.workers` encoding processes (or the Dask cluster), each with the setup loaded."""
    return make_encoder_pool(config.workers, dask_scheduler=config.dask_scheduler)


@dataclass(frozen=True)
class ProducerNode:
    """A started producer: what tests and `run` need to reach it."""

    port: int
    metrics_port: int | None
    store: KeyValueStore
    producer: BlockProducer
    certifier: Certifier
    mempool: Mempool
    registry: CollectorRegistry
    replica: GroupReplica | None = None  # group mode (PROTOCOL.md §12): follows, campaigns, leads


async def run(config: ProducerConfig, *, make_executor: ExecutorFactory = encoder_pool) -> None:
    """Run the producer until cancelled (`make_executor`: tests encode in-process)."""
    try:
        async with AsyncExitStack() as stack:
            node = await start(stack, config, make_executor=make_executor)
            try:
                if node.replica is not None:
                    await node.replica.run()
                else:
                    await node.producer.run(config.block_time_seconds)
            finally:
                log.info("shutting down at height %d", node.producer.tip.height)
    except asyncio.CancelledError:
        log.info("producer stopped: server drained, workers and store closed")
        raise


async def start(
    stack: AsyncExitStack, config: ProducerConfig, *, make_executor: ExecutorFactory = encoder_pool
) -> ProducerNode:
    """Start every part of the producer on `stack` (which stops them) except the block loop."""
    config.validate()
    key = read_key_file(config.key_file)
    store = _open(stack, config)
    registry = process_registry()
    metrics = ProducerMetrics(registry)
    observe_store_size(registry, config.data_dir)
    limit = config.max_blob_bytes or max_blob_bytes(config.max_rows)
    mempool = Mempool(
        store,
        max_pending_bytes=MEMPOOL_SQUARES * max_blob_bytes(config.max_rows),
        linger=not config.group,  # a group's replication rounds linger instead
    )
    metrics.set_pending_blobs(mempool.count)
    operators = frozenset(decode_public_keys("operators", config.operators))
    certifier = Certifier(store, metrics, quorum=config.quorum, operators=operators)
    notifier = serving.HeadNotifier()
    encoder = Encoder(lambda: make_executor(config))
    stack.callback(encoder.shutdown)  # after the server stopped, before the store closes
    group = _Group.open(stack, config, key, registry, mempool, limit) if config.group else None
    blob_servicer = ProducerBlobServicer(
        store,
        mempool,
        metrics,
        max_blob_bytes=limit,
        accept=group.intake.submit if group is not None else None,
    )
    servicers: list[tuple[Any, Any]] = [
        *serving.read_servicers(store, notifier),
        (da_pb2_grpc.add_BlobServiceServicer_to_server, blob_servicer),
        (
            da_pb2_grpc.add_AttestationServiceServicer_to_server,
            AttestationServicer(certifier)
            if group is None
            else GroupAttestationServicer(certifier, group.peers),
        ),
    ]
    if group is not None:
        replica_servicer = ReplicaServicer(
            group.intake, certifier, chain_id=config.chain_id, max_blob_bytes=limit
        )
        servicers.append((da_pb2_grpc.add_ReplicaServiceServicer_to_server, replica_servicer))
    port = await _serve(stack, config, servicers, registry)
    metrics_port = await _serve_status(stack, config, registry, store, metrics, mempool, group)
    # Submissions are served (and persisted) while the encoding workers load the trusted setup.
    await encoder.start()
    producer = BlockProducer(
        store,
        mempool,
        notifier,
        metrics,
        key=key,
        chain_id=config.chain_id,
        max_rows=config.max_rows,
        encoder=encoder,
        retention_blocks=config.retention_blocks,
    )
    metrics.set_head_height(producer.tip.height)
    _log_startup(config, port, key.public, producer.tip.height, mempool.count)
    replica = None
    if group is not None:
        replica = GroupReplica(
            store=store,
            mempool=mempool,
            producer=producer,
            notifier=notifier,
            metrics=metrics,
            group_metrics=group.metrics,
            coordinator=group.coordinator,
            leadership=group.leadership,
            intake=group.intake,
            remotes=group.remotes,
            chain_id=config.chain_id,
            block_time_seconds=config.block_time_seconds,
        )
    return ProducerNode(port, metrics_port, store, producer, certifier, mempool, registry, replica)


@dataclass(frozen=True)
class _Group:
    """The group-mode parts made before the server starts (the intake serves SubmitBlob)."""

    coordinator: Coordinator
    metrics: GroupMetrics
    leadership: Leadership
    remotes: list[Remote]
    peers: list[ReplicaPeer]
    intake: GroupIntake

    @staticmethod
    def open(
        stack: AsyncExitStack,
        config: ProducerConfig,
        key: KeyPair,
        registry: CollectorRegistry,
        mempool: Mempool,
        max_blob_bytes: int,
    ) -> _Group:
        coordinator = Coordinator(config.etcd, config.chain_id)
        stack.push_async_callback(coordinator.close)  # after the lease was released
        name = f"{config.server.listen} {key.public.hex()[:16]}"
        metrics = GroupMetrics(registry)
        leadership = Leadership(coordinator, name, config.lease_seconds, metrics)
        remotes = [
            Remote(address, REPLICA_TIMEOUT_SECONDS, is_producer=True).open(config.tls_ca)
            for address in config.replicas
        ]
        for remote in remotes:
            stack.push_async_callback(remote.close)
        # the replicas of one group share the server's bearer token
        token = config.server.auth_token
        peers = [ReplicaPeer(remote, config.chain_id, token) for remote in remotes]
        intake = GroupIntake(mempool, leadership, peers, metrics, max_blob_bytes=max_blob_bytes)
        log.info(
            "group mode: etcd %s, other replicas %s, lease %d s",
            list(config.etcd),
            list(config.replicas),
            config.lease_seconds,
        )
        return _Group(coordinator, metrics, leadership, remotes, peers, intake)

    def status(self) -> dict[str, Any]:
        """The leadership fields of the status page (PROTOCOL.md §15)."""
        return {
            "mode": "group",
            "leader": self.leadership.leading,
            "epoch": self.leadership.epoch or None,
            "replicas": [remote.address for remote in self.remotes],
        }


def _open(stack: AsyncExitStack, config: ProducerConfig) -> KeyValueStore:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.data_dir / STORE_DIR)
    stack.callback(store.close)
    return store


async def _serve(
    stack: AsyncExitStack,
    config: ProducerConfig,
    servicers: list[tuple[Any, Any]],
    registry: CollectorRegistry,
) -> int:
    """Start the gRPC server (stopped gracefully on exit); returns its port. In a group,
    ReplicaService is served too and, like the write methods, needs the token if one is set."""
    server_config = config.server
    methods: tuple[str, ...] = RPC_METHODS
    names: tuple[str, ...] = SERVICE_NAMES
    if config.group:
        write_methods = server_config.write_methods | frozenset(REPLICA_METHODS)
        server_config = replace(server_config, write_methods=write_methods)
        methods, names = (*methods, *REPLICA_METHODS), (*names, REPLICA_SERVICE)
    server, port = await create_server(
        server_config,
        servicers,
        rpc_metrics=RpcMetrics(registry, methods),
        service_names=names,
    )
    stack.push_async_callback(stop_server, server, None, SHUTDOWN_GRACE_SECONDS)
    return port


async def _serve_status(
    stack: AsyncExitStack,
    config: ProducerConfig,
    registry: CollectorRegistry,
    store: KeyValueStore,
    metrics: ProducerMetrics,
    mempool: Mempool,
    group: _Group | None,
) -> int | None:
    """The status page, /status.json and /metrics on the metrics port (PROTOCOL.md §15)."""
    if config.metrics_port is None:
        return None
    leadership = single_producer if group is None else group.status
    source = ProducerStatus(
        chain_id=config.chain_id,
        store=store,
        head=lambda: blocks.head_height(store),
        mempool=lambda: (mempool.count, mempool.bytes),
        encode_seconds=metrics.recent_encode_seconds.get,
        quorum=config.quorum,
        leadership=leadership,
    )
    return await start_status_server(
        stack, source, registry, port=config.metrics_port, address=config.metrics_address
    )


def _log_startup(
    config: ProducerConfig, port: int, public_key: bytes, head: int, pending: int
) -> None:
    log.info(
        "producer up: listening on %s:%d, chain %s, public key %s, %d encoding workers%s, "
        "max_rows %d, block time %.3g s, quorum %d, head %d, %d blobs pending",
        config.server.host,
        port,
        config.chain_id,
        public_key.hex(),
        config.workers,
        f" (dask {config.dask_scheduler})" if config.dask_scheduler else "",
        config.max_rows,
        config.block_time_seconds,
        config.quorum,
        head,
        pending,
    )
    if not config.operators:
        log.warning(
            "no --operator keys configured: this producer certifies nothing (attestations are "
            "refused with PERMISSION_DENIED); give --operator HEX for each storage node whose "
            "attestations count"
        )
    if config.server.auth_token is None:
        log.warning("no auth token: SubmitBlob is open to anyone who can connect")
