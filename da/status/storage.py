"""The storage node's status: heights held, repairs and rebuilds, peers, attestations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from da.store import blocks
from da.store.base import KeyValueStore

# Counters shown on the page, by the name the page shows them under (absent ones are skipped).
COUNTERS = {
    "blocks_ingested": "da_storage_blocks_ingested_total",
    "cells_repaired": "da_storage_cells_repaired_total",
    "samples_served": "da_storage_samples_served_total",
    "equivocations": "da_storage_equivocations_total",
}
LABELLED_COUNTERS = {
    "recoveries": ("da_storage_recoveries_total", "result"),
    "cells_collected": ("da_storage_cells_collected_total", "source"),
}


@dataclass
class AttestationStats:
    """What the attester did: updated by it, read by the page."""

    enabled: bool = False
    accepted: int = 0
    refused: int = 0
    last_height: int = 0

    def observe(self, height: int, accepted: bool) -> None:
        if accepted:
            self.accepted += 1
            self.last_height = max(self.last_height, height)
        else:
            self.refused += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "accepted": self.accepted,
            "refused": self.refused,
            "last_height": self.last_height,
        }


@dataclass
class StorageStatus:
    chain_id: str
    store: KeyValueStore
    registry: CollectorRegistry
    producers: Sequence[str]
    peers: Sequence[str]
    retention_blocks: int
    samplers: Callable[[], Sequence[str]] = field(default=lambda: ())
    attestation: AttestationStats = field(default_factory=AttestationStats)

    def status(self) -> dict[str, Any]:
        head = blocks.head_height(self.store)
        lowest = blocks.lowest_height(self.store) if head else 0
        return {
            "role": "storage-node",
            "chain_id": self.chain_id,
            "height": head,
            "held": {"lowest": lowest, "highest": head, "retention_blocks": self.retention_blocks},
            "repairs": self._counters(),
            "peers": [{"address": a, "kind": "producer"} for a in self.producers]
            + [{"address": a, "kind": "storage"} for a in self.peers]
            + [{"address": a, "kind": "sampler"} for a in self.samplers()],
            "attestation": self.attestation.as_dict(),
        }

    def _counters(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, metric in COUNTERS.items():
            value = self.registry.get_sample_value(metric)
            if value is not None:
                found[name] = int(value)
        for name, (metric, label) in LABELLED_COUNTERS.items():
            values = {
                sample.labels[label]: int(sample.value)
                for family in self.registry.collect()
                if family.name + "_total" == metric
                for sample in family.samples
                if sample.name == metric
            }
            if values:
                found[name] = values
        return found
