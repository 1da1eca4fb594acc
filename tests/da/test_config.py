"""Config dataclasses: defaults and validate() cases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from da.config import (
    ConfigError,
    DevnetConfig,
    ProducerConfig,
    ServerConfig,
    StorageNodeConfig,
    decode_public_keys,
)
from erasure.constants import CELLS_PER_ROW, PAYLOAD_BYTES_PER_CELL
from light_client.config import DEFAULT_CONFIDENCE, LightClientConfig

KEY = "ab" * 48


def producer(**overrides: Any) -> ProducerConfig:
    fields = dict(data_dir=Path("d"), key_file=Path("k"), chain_id="c")
    return ProducerConfig(**{**fields, **overrides})


def storage(**overrides: Any) -> StorageNodeConfig:
    fields = dict(data_dir=Path("d"), producer="127.0.0.1:7000", chain_id="c", trusted_keys=(KEY,))
    return StorageNodeConfig(**{**fields, **overrides})


def light(**overrides: Any) -> LightClientConfig:
    fields = dict(data_dir=Path("d"), peers=("127.0.0.1:7001",), chain_id="c", trusted_keys=(KEY,))
    return LightClientConfig(**{**fields, **overrides})


def test_defaults_validate() -> None:
    for config in (producer(), storage(), light(), DevnetConfig()):
        config.validate()


def test_producer_group_mode_is_switched_on_by_etcd() -> None:
    assert not producer().group
    grouped = producer(etcd=("127.0.0.1:2379",), replicas=("127.0.0.1:7001", "127.0.0.1:7002"))
    grouped.validate()
    assert grouped.group and grouped.lease_seconds == 2


def test_producer_blob_limit_defaults_to_square_capacity() -> None:
    assert producer().max_blob_bytes == 64 * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL == 8_126_464
    assert producer(max_rows=16).max_blob_bytes == 16 * CELLS_PER_ROW * PAYLOAD_BYTES_PER_CELL
    assert producer().workers >= 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"chain_id": ""}, "chain_id"),
        ({"max_rows": 48}, "power of two"),
        ({"max_rows": 1024}, "power of two"),
        ({"quorum": 0}, "quorum"),
        ({"quorum": 2, "operators": (KEY,)}, "exceeds"),
        ({"operators": ("abcd",)}, "96-hex-char"),
        ({"workers": 0}, "workers"),
        ({"block_time_seconds": 0.0}, "block_time_seconds"),
        ({"max_blob_bytes": 9_000_000}, "max_blob_bytes"),
        ({"metrics_port": 70000}, "metrics_port"),
        ({"dask_scheduler": "nohost"}, "dask_scheduler"),
        ({"server": ServerConfig(listen="0.0.0.0:7000")}, "beyond loopback"),
        ({"replicas": ("127.0.0.1:7001",)}, "--replica needs --etcd"),
        ({"etcd": ("nohost",)}, "etcd"),
        (
            {
                "etcd": ("127.0.0.1:2379",),
                "replicas": ("127.0.0.1:7000",),
                "server": ServerConfig(listen="127.0.0.1:7000"),
            },
            "own address",
        ),
        ({"etcd": ("127.0.0.1:2379",), "replicas": ("127.0.0.1:7001",) * 2}, "twice"),
        (
            {"etcd": ("127.0.0.1:2379",), "replicas": ("127.0.0.1:7001",), "lease_seconds": 0},
            "lease_seconds",
        ),
        ({"etcd": ("127.0.0.1:2379",)}, "--etcd needs --replica"),
    ],
)
def test_producer_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        producer(**overrides).validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trusted_keys": ()}, "trusted key"),
        ({"trusted_keys": ("zz" * 48,)}, "hex"),
        ({"producer": "127.0.0.1"}, "host:port"),
        ({"producer": "127.0.0.1:0"}, "non-zero port"),
        ({"peers": ("x",)}, "peer"),
        ({"retention_blocks": -1}, "retention_blocks"),
        ({"request_timeout_seconds": 0.0}, "request_timeout_seconds"),
    ],
)
def test_storage_node_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        storage(**overrides).validate()


def test_light_client_samples_and_confidence_are_exclusive() -> None:
    assert light().confidence == DEFAULT_CONFIDENCE and light().samples is None
    fixed = light(samples=20)
    assert fixed.samples == 20 and fixed.confidence is None
    fixed.validate()
    with pytest.raises(ConfigError, match="not both"):
        light(samples=20, confidence=0.9).validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"peers": ()}, "peer"),
        ({"trusted_keys": ()}, "trusted key"),
        ({"confidence": 1.0}, "confidence"),
        ({"samples": 0}, "samples"),
        ({"concurrency": 0}, "concurrency"),
        ({"sample_window_seconds": 0.0}, "sample_window_seconds"),
    ],
)
def test_light_client_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        light(**overrides).validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"storage_nodes": 0}, "storage_nodes"),
        ({"light_clients": -1}, "light_clients"),
        ({"blocks": 0}, "blocks"),
        ({"base_port": 65530}, "base_port"),
        ({"base_port": 80}, "base_port"),
    ],
)
def test_devnet_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(DevnetConfig(), **overrides).validate()


def test_decode_public_keys() -> None:
    assert decode_public_keys("k", [KEY, "0x" + KEY]) == (bytes.fromhex(KEY),) * 2


def test_tokens_stay_out_of_repr() -> None:
    assert "tok" not in repr(ServerConfig(auth_token="tok"))
