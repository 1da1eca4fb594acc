"""Availability state: results and the checkpoint persist; the checkpoint only covers a
contiguous run of concluded heights."""

from __future__ import annotations

from da.store.checkpoint import SamplingResult, SamplingStatus
from da.store.memory import MemoryStore
from light_client.state import AvailabilityState


def result(height: int) -> SamplingResult:
    return SamplingResult(height, SamplingStatus.AVAILABLE, 0.99, 7)


def test_checkpoint_moves_over_contiguous_heights_only() -> None:
    store = MemoryStore()
    state = AvailabilityState(store)
    state.begin(3)
    assert state.lookup(3) == SamplingResult(3, SamplingStatus.SAMPLING, 0.0, 0)
    state.finish(result(3))
    state.finish(result(2))
    assert state.checkpoint == 0 and state.lookup(3) == result(3)
    state.finish(result(1))
    assert state.checkpoint == 3
    reopened = AvailabilityState(store)
    assert reopened.checkpoint == 3 and reopened.concluded(2) and not reopened.concluded(4)


def test_skip_to_gives_up_on_old_heights() -> None:
    state = AvailabilityState(MemoryStore())
    state.skip_to(10)
    assert state.concluded(10) and state.lookup(10) is None
    state.finish(result(11))
    assert state.checkpoint == 11
