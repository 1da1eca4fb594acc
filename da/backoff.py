"""Exponential backoff between retries of a failing remote call, shared by every reconnect loop
(a storage node following its sources or attesting, a light client following header streams)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter" (half the delay fixed, half random), capped:
    delay n is uniform in [c/2, c] with c = min(cap, initial * factor**n); `reset()` after a
    success. The random half keeps many clients of one restarted server from retrying in step."""

    initial_seconds: float = 0.5
    cap_seconds: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_seconds, self.initial_seconds * self.factor**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._attempt = 0
