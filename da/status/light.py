"""The light client's status: recent heights with their verdicts and the cells each sampled
(drawn on the page over the extended square), and its peers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from da.sampling import CellRef

RECENT_HEIGHTS = 12
VERIFIED, FAILED, RETRIED, PENDING = "verified", "failed", "retried", "pending"


@dataclass
class SampledHeight:
    height: int
    k: int
    status: str  # SAMPLING | AVAILABLE | UNAVAILABLE
    confidence: float
    cells: dict[CellRef, str]  # coordinate -> VERIFIED | FAILED | RETRIED | PENDING

    def as_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "status": self.status,
            "confidence": self.confidence,
            "samples": sum(1 for outcome in self.cells.values() if outcome in (VERIFIED, RETRIED)),
            "k": self.k,
            "rows": 2 * self.k,
            "cols": 128,
            "cells": [[ref.row, ref.col, outcome] for ref, outcome in sorted(self.cells.items())],
        }


@dataclass
class LightStatus:
    """Recent heights in memory (bounded); `head()` the verified head, `peers()` each peer's
    address and health."""

    chain_id: str
    head: Callable[[], int]
    peers: Callable[[], Sequence[dict[str, Any]]]
    recent: OrderedDict[int, SampledHeight] = field(default_factory=OrderedDict)

    def begin(self, height: int, k: int, coords: Iterable[CellRef]) -> None:
        """Sampling of `height` started with these coordinates."""
        cells = dict.fromkeys(coords, PENDING)
        self.recent[height] = SampledHeight(height, k, "SAMPLING", 0.0, cells)
        self.recent.move_to_end(height)
        while len(self.recent) > RECENT_HEIGHTS:
            self.recent.popitem(last=False)

    def finish(
        self,
        height: int,
        status: str,
        confidence: float,
        verified: Collection[CellRef],
        retried: Collection[CellRef] = (),
    ) -> None:
        """The verdict on `height`: cells not verified failed."""
        entry = self.recent.get(height)
        if entry is None:
            return
        entry.status, entry.confidence = status, confidence
        for ref in entry.cells:
            if ref not in verified:
                entry.cells[ref] = FAILED
            else:
                entry.cells[ref] = RETRIED if ref in retried else VERIFIED

    def status(self) -> dict[str, Any]:
        heights = sorted(self.recent.values(), key=lambda h: h.height, reverse=True)
        return {
            "role": "light-client",
            "chain_id": self.chain_id,
            "height": self.head(),
            "heights": [entry.as_dict() for entry in heights],
            "peers": list(self.peers()),
        }
