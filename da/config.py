"""Runtime configuration of the `da` roles: one frozen dataclass per component with `validate()`.

Only `da.cli` loads TOML files and flags and composes these; library code receives them ready
made and never reads the environment. `validate()` raises `ConfigError` naming the setting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from da.api.config import ConfigError, ServerConfig, split_host_port
from da.encoder_pool import default_workers
from erasure.constants import DEFAULT_MAX_ROWS, MAX_ROWS_LIMIT
from erasure.layout import is_square_size, max_blob_bytes

__all__ = [
    "ConfigError",
    "DevnetConfig",
    "ProducerConfig",
    "ServerConfig",
    "StorageNodeConfig",
    "check_address",
    "check_chain_id",
    "check_max_rows",
    "check_port",
    "decode_public_keys",
]

PUBLIC_KEY_HEX_CHARS = 96  # a 48-byte BLS12-381 G1 public key
DEFAULT_RETENTION_BLOCKS = 1000
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0
MAX_CHAIN_ID_CHARS = 64


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """`da producer`: accepts blobs, builds and signs a block every `block_time_seconds`."""

    data_dir: Path
    key_file: Path
    chain_id: str
    server: ServerConfig = ServerConfig()
    metrics_port: int | None = None  # None: no /metrics endpoint; 0: any free port
    metrics_address: str = "127.0.0.1"  # where /metrics listens (0.0.0.0 in containers)
    block_time_seconds: float = 2.0
    max_rows: int = DEFAULT_MAX_ROWS  # largest square k (power of two <= MAX_ROWS_LIMIT)
    quorum: int = 1  # storage-node attestations that make a block's blobs CERTIFIED
    operators: tuple[str, ...] = ()  # hex public keys whose attestations count; () = any key
    workers: int = field(default_factory=default_workers)  # encoding processes
    max_blob_bytes: int | None = None  # None: the most a max_rows square holds (set on init)
    dask_scheduler: str | None = None  # "host:port" of a Dask scheduler, else a local pool
    retention_blocks: int = DEFAULT_RETENTION_BLOCKS  # keep this many recent blocks; 0 = all
    # The producer group (PROTOCOL.md §12); no etcd endpoints: the producer runs alone, as in v1.
    etcd: tuple[str, ...] = ()  # "host:port" client addresses of the etcd members
    replicas: tuple[str, ...] = ()  # "host:port" gRPC addresses of the OTHER replicas
    lease_seconds: int = 2  # the leader lease; a dead leader is replaced after about this long
    tls_ca: Path | None = None  # PEM roots to verify the other replicas' TLS; None: plaintext

    def __post_init__(self) -> None:
        if self.max_blob_bytes is None and is_square_size(self.max_rows):
            object.__setattr__(self, "max_blob_bytes", max_blob_bytes(self.max_rows))

    def validate(self) -> None:
        self.server.validate()
        check_chain_id(self.chain_id)
        _check_path("data_dir", self.data_dir)
        _check_path("key_file", self.key_file)
        check_port("metrics_port", self.metrics_port)
        _check_positive("block_time_seconds", self.block_time_seconds)
        check_max_rows(self.max_rows)
        if self.quorum < 1:
            raise ConfigError(f"quorum must be >= 1, got {self.quorum}")
        if self.operators and self.quorum > len(set(self.operators)):
            raise ConfigError(
                f"quorum {self.quorum} exceeds the {len(set(self.operators))} configured operators"
            )
        decode_public_keys("operators", self.operators)
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        self._validate_blob_limit()
        if self.retention_blocks < 0:
            raise ConfigError(f"retention_blocks must be >= 0, got {self.retention_blocks}")
        if self.dask_scheduler is not None:
            check_address("dask_scheduler", self.dask_scheduler)
        self._validate_group()

    def _validate_group(self) -> None:
        for address in self.etcd:
            check_address("etcd", address)
        for address in self.replicas:
            check_address("replica", address)
        if self.replicas and not self.etcd:
            raise ConfigError("--replica needs --etcd: a producer group is coordinated by etcd")
        if self.etcd and not self.replicas:
            raise ConfigError(
                "--etcd needs --replica (the other replicas of the group): a group of one has "
                "nobody to replicate to, and would acknowledge blobs on its own disk alone; "
                "run without --etcd for a single producer"
            )
        if len(set(self.replicas)) != len(self.replicas):
            raise ConfigError(f"--replica lists an address twice: {list(self.replicas)}")
        if self.server.listen in self.replicas:
            raise ConfigError(
                f"--replica lists this replica's own address {self.server.listen}: name only "
                "the other replicas"
            )
        if not 1 <= self.lease_seconds <= 60:
            raise ConfigError(f"lease_seconds must be in 1..60, got {self.lease_seconds}")

    @property
    def group(self) -> bool:
        """True when this producer is a replica of a group (etcd endpoints configured)."""
        return bool(self.etcd)

    def _validate_blob_limit(self) -> None:
        capacity = max_blob_bytes(self.max_rows)
        if self.max_blob_bytes is None or not 1 <= self.max_blob_bytes <= capacity:
            raise ConfigError(
                f"max_blob_bytes must be in 1..{capacity} (what a {self.max_rows}-row square "
                f"holds), got {self.max_blob_bytes}"
            )
        if self.server.max_message_bytes < self.max_blob_bytes + 1024:
            raise ConfigError("server max_message_bytes is too small for max_blob_bytes")


@dataclass(frozen=True, kw_only=True)
class StorageNodeConfig:
    """`da storage-node`: follows the producer, stores and verifies whole blocks, attests them."""

    data_dir: Path
    producer: str  # "host:port" of the producer
    chain_id: str
    trusted_keys: tuple[str, ...]  # hex producer public keys (at least one)
    server: ServerConfig = ServerConfig()
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    peers: tuple[str, ...] = ()  # other storage nodes ("host:port") to repair cells from
    samplers: tuple[str, ...] = ()  # light clients ("host:port") to rebuild blocks from
    key_file: Path | None = None  # attestation key; None: the node does not attest
    retention_blocks: int = DEFAULT_RETENTION_BLOCKS  # keep this many recent blocks; 0 = all
    max_rows: int = DEFAULT_MAX_ROWS  # reject headers with a larger square
    tls_ca: Path | None = None  # PEM roots to verify the TLS of producers and peers
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    # every replica of a producer group, followed in turn when one fails (PROTOCOL.md §12); the
    # default is `producer` alone
    producers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.producers:
            object.__setattr__(self, "producers", (self.producer,))

    def validate(self) -> None:
        self.server.validate()
        _check_path("data_dir", self.data_dir)
        for producer in (self.producer, *self.producers):
            check_address("producer", producer)
        for peer in self.peers:
            check_address("peer", peer)
        for sampler in self.samplers:
            check_address("sampler", sampler)
        check_chain_id(self.chain_id)
        if not self.trusted_keys:
            raise ConfigError("at least one trusted key (--trusted-key HEX) is required")
        decode_public_keys("trusted_keys", self.trusted_keys)
        check_port("metrics_port", self.metrics_port)
        if self.key_file is not None:
            _check_path("key_file", self.key_file)
        if self.retention_blocks < 0:
            raise ConfigError(f"retention_blocks must be >= 0, got {self.retention_blocks}")
        check_max_rows(self.max_rows)
        _check_positive("request_timeout_seconds", self.request_timeout_seconds)


@dataclass(frozen=True, kw_only=True)
class DevnetConfig:
    """`da devnet`: producer, storage nodes and light clients on loopback."""

    data_dir: Path | None = None  # None: a temporary directory, removed on exit
    storage_nodes: int = 3
    light_clients: int = 2
    blocks: int | None = None  # stop after this many blocks (exit 0 iff all available)
    base_port: int = 7000  # producer; storage nodes and light clients take the next ports
    chain_id: str = "devnet"
    block_time_seconds: float = 2.0
    max_rows: int = DEFAULT_MAX_ROWS
    producers: int = 1  # > 1: a producer group (PROTOCOL.md §12) beside as many etcd members

    def validate(self) -> None:
        if self.producers not in (1, 3, 5):
            raise ConfigError(
                f"producers must be 1 (alone) or a group of 3 or 5, got {self.producers}"
            )
        if self.storage_nodes < 1:
            raise ConfigError(f"storage_nodes must be >= 1, got {self.storage_nodes}")
        if self.light_clients < 0:
            raise ConfigError(f"light_clients must be >= 0, got {self.light_clients}")
        if self.blocks is not None and self.blocks < 1:
            raise ConfigError(f"blocks must be >= 1, got {self.blocks}")
        etcd = self.producers if self.producers > 1 else 0
        nodes = self.producers + etcd + self.storage_nodes + self.light_clients
        last_port = self.base_port + 2 * nodes
        if self.base_port < 1024 or last_port > 65535:
            raise ConfigError(
                f"base_port {self.base_port} leaves no room for every node's gRPC and metrics "
                "ports below 65536 (use 1024..60000)"
            )
        check_chain_id(self.chain_id)
        _check_positive("block_time_seconds", self.block_time_seconds)
        check_max_rows(self.max_rows)


# --- shared checks --------------------------------------------------------------------------


def check_chain_id(chain_id: str) -> None:
    """Raise `ConfigError` unless `chain_id` is 1..64 printable characters."""
    if not chain_id or len(chain_id.encode()) > MAX_CHAIN_ID_CHARS or not chain_id.isprintable():
        raise ConfigError(f"chain_id must be 1..{MAX_CHAIN_ID_CHARS} printable bytes")


def check_address(name: str, address: str) -> None:
    """Raise `ConfigError` unless `address` is "host:port" with a port in 1..65535."""
    try:
        _, port = split_host_port(address)
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None
    if port == 0:
        raise ConfigError(f"{name}: address {address!r} needs a non-zero port")


def check_port(name: str, port: int | None) -> None:
    """Raise `ConfigError` unless `port` is None or in 0..65535 (0 = any free port)."""
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be in 0..65535, got {port}")


def check_max_rows(max_rows: int) -> None:
    """Raise `ConfigError` unless `max_rows` is a power of two in 1..MAX_ROWS_LIMIT."""
    if not is_square_size(max_rows):
        raise ConfigError(f"max_rows must be a power of two in 1..{MAX_ROWS_LIMIT}, got {max_rows}")


def decode_public_keys(name: str, keys: Iterable[str]) -> tuple[bytes, ...]:
    """The 48-byte keys of 96-hex-char strings ("0x" prefix allowed); `ConfigError` if bad."""
    decoded = []
    for key in keys:
        text = key.removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(text) != PUBLIC_KEY_HEX_CHARS or len(raw) * 2 != PUBLIC_KEY_HEX_CHARS:
            raise ConfigError(f"{name}: {key!r} is not a {PUBLIC_KEY_HEX_CHARS}-hex-char key")
        decoded.append(raw)
    return tuple(decoded)


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value}")


def _check_path(name: str, path: Path) -> None:
    if not str(path).strip():
        raise ConfigError(f"{name} must not be empty")
