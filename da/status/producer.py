"""The producer's status: leadership, mempool depth, recent blocks and their certificates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from da.header import header_from_bytes, header_hash
from da.store import headers
from da.store.base import KeyValueStore
from da.store.certificates import get_certificate

RECENT_BLOCKS = 20


def single_producer() -> dict[str, Any]:
    """Leadership of a producer running alone (no --etcd): it always leads."""
    return {"mode": "single", "leader": True, "epoch": None, "leader_id": None}


@dataclass
class ProducerStatus:
    """`head()` is the tip height, `mempool()` (blobs, bytes) pending, `encode_seconds(h)` the
    encode time of a recent block (None if unknown); `leadership()` the group fields."""

    chain_id: str
    store: KeyValueStore
    head: Callable[[], int]
    mempool: Callable[[], tuple[int, int]]
    encode_seconds: Callable[[int], float | None]
    quorum: int
    leadership: Callable[[], dict[str, Any]] = field(default=single_producer)

    def status(self) -> dict[str, Any]:
        head = self.head()
        pending_blobs, pending_bytes = self.mempool()
        recent = [self._block(h) for h in range(head, max(0, head - RECENT_BLOCKS), -1)]
        return {
            "role": "producer",
            "chain_id": self.chain_id,
            "height": head,
            "leadership": self.leadership(),
            "mempool": {"blobs": pending_blobs, "bytes": pending_bytes},
            "quorum": self.quorum,
            "blocks": [block for block in recent if block is not None],
        }

    def _block(self, height: int) -> dict[str, Any] | None:
        stored = headers.get_signed_header(self.store, height)
        if stored is None:
            return None
        header = header_from_bytes(stored[0])
        cert = get_certificate(self.store, height)
        return {
            "height": height,
            "hash": header_hash(stored[0]).hex(),
            "time_ms": header.time_ms,
            "k": header.k,
            "blobs": len(header.blobs),
            "bytes": sum(entry.length for entry in header.blobs),
            "encode_seconds": self.encode_seconds(height),
            "certified": cert is not None,
            "signers": len(cert.public_keys) if cert is not None else 0,
        }
