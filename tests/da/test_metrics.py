"""Metrics classes against a fresh registry (the HTTP exporter: tests/da/status)."""

from __future__ import annotations

import platform

import pytest
from prometheus_client import CollectorRegistry

from da import metrics
from da.metrics import StorageMetrics, observe_store_size, process_registry


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_producer(registry: CollectorRegistry) -> None:
    m = metrics.ProducerMetrics(registry)
    for result in metrics.SUBMISSION_RESULTS:
        assert value(registry, "da_blob_submissions_total", result=result) == 0
    m.observe_block(7, 2.5)
    m.observe_submission("accepted")
    m.observe_submission("accepted")
    m.set_pending_blobs(4)
    m.observe_certificate()
    assert value(registry, "da_blocks_produced_total") == 1
    assert value(registry, "da_block_encode_seconds_count") == 1
    assert value(registry, "da_block_encode_seconds_bucket", le="120.0") == 1
    assert value(registry, "da_blob_submissions_total", result="accepted") == 2
    assert value(registry, "da_producer_head_height") == 7
    assert value(registry, "da_producer_pending_blobs") == 4
    assert value(registry, "da_certificates_total") == 1
    with pytest.raises(ValueError):
        m.observe_submission("bogus")


def test_storage(registry: CollectorRegistry) -> None:
    m = metrics.StorageMetrics(registry)
    assert value(registry, "da_storage_rejected_total", reason="bad_signature") == 0
    m.observe_block_ingested(5, 1.0)
    m.observe_block_ingested(3, 1.0)  # a backfilled block does not move the head back
    m.observe_samples_served(16)
    m.observe_cells_repaired(3)
    m.observe_rejected("wrong_chain")
    m.observe_rejected("something new")
    m.observe_equivocation()
    assert value(registry, "da_storage_head_height") == 5
    assert value(registry, "da_storage_blocks_ingested_total") == 2
    assert value(registry, "da_storage_ingest_seconds_sum") == 2.0
    assert value(registry, "da_storage_samples_served_total") == 16
    assert value(registry, "da_storage_cells_repaired_total") == 3
    assert value(registry, "da_storage_rejected_total", reason="wrong_chain") == 1
    assert value(registry, "da_storage_rejected_total", reason="other") == 1
    assert value(registry, "da_storage_equivocations_total") == 1


def test_light(registry: CollectorRegistry) -> None:
    m = metrics.LightMetrics(registry)
    assert value(registry, "da_light_samples_total", result="timeout") == 0
    assert value(registry, "da_light_headers_sampled_total", result="unavailable") == 0
    m.set_head_height(9)
    m.observe_header_sampled(True, 0.99)
    m.observe_sample("ok", 0.02)
    m.observe_sample("bad_proof", 0.03)
    m.observe_equivocation()
    m.observe_rejected_header("bad_signature")
    assert value(registry, "da_light_head_height") == 9
    assert value(registry, "da_light_headers_sampled_total", result="available") == 1
    assert value(registry, "da_light_last_confidence") == 0.99
    assert value(registry, "da_light_samples_total", result="bad_proof") == 1
    assert value(registry, "da_light_sample_seconds_count") == 2
    assert value(registry, "da_light_equivocations_total") == 1
    assert value(registry, "da_light_rejected_headers_total", reason="bad_signature") == 1
    with pytest.raises(ValueError):
        m.observe_sample("lost", 1.0)


def test_rpc(registry: CollectorRegistry) -> None:
    method = "/da.v1.ShareService/GetSamples"
    m = metrics.RpcMetrics(registry, methods=[method])
    assert value(registry, "da_grpc_requests_total", method=method, code="OK") == 0
    m.observe_request(method, "NOT_FOUND", 0.004)
    assert value(registry, "da_grpc_requests_total", method=method, code="NOT_FOUND") == 1
    assert value(registry, "da_grpc_request_seconds_count", method=method) == 1


def test_components_share_one_registry(registry: CollectorRegistry) -> None:
    metrics.ProducerMetrics(registry)
    metrics.StorageMetrics(registry)
    metrics.LightMetrics(registry)
    metrics.RpcMetrics(registry)


def test_every_role_registry_has_process_platform_and_gc_collectors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry = process_registry()
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    assert (
        registry.get_sample_value(
            "python_info",
            {
                "implementation": "CPython",
                "major": "3",
                "minor": "11",
                "patchlevel": platform.python_version_tuple()[2],
                "version": platform.python_version(),
            },
        )
        == 1
    )
    assert (
        registry.get_sample_value("python_gc_objects_collected_total", {"generation": "0"})
        is not None
    )
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 24)
    observe_store_size(registry, tmp_path)
    assert registry.get_sample_value("da_store_size_bytes") == 1024


def test_storage_lag_follows_the_tip_and_the_head() -> None:
    registry = CollectorRegistry()
    m = StorageMetrics(registry)
    m.observe_tip(10)
    m.set_head_height(4)
    assert registry.get_sample_value("da_storage_lag_blocks") == 6
    m.observe_block_ingested(10, 0.5)
    assert registry.get_sample_value("da_storage_lag_blocks") == 0
    m.observe_peer_shunned()
    m.observe_attestation_failure()
    assert registry.get_sample_value("da_storage_peers_shunned_total") == 1
    assert registry.get_sample_value("da_storage_attestation_failures_total") == 1
