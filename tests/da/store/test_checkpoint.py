"""Light-client sampling results and checkpoint."""

from __future__ import annotations

from pathlib import Path

from da.store import checkpoint
from da.store.base import KeyValueStore
from da.store.checkpoint import SamplingResult, SamplingStatus
from da.store.rocks import RocksStore


def result(height: int, status: SamplingStatus = SamplingStatus.AVAILABLE) -> SamplingResult:
    return SamplingResult(height, status, 0.99 + height / 1e6, 16 + height)


def test_result_round_trip_and_checkpoint(store: KeyValueStore) -> None:
    assert checkpoint.last_sampled_height(store) == 0
    checkpoint.put_result(store, result(3), checkpoint=True)
    checkpoint.put_result(store, result(4, SamplingStatus.SAMPLING))
    assert checkpoint.get_result(store, 3) == result(3)
    assert checkpoint.get_result(store, 4) == result(4, SamplingStatus.SAMPLING)
    assert checkpoint.get_result(store, 5) is None
    assert checkpoint.last_sampled_height(store) == 3
    checkpoint.set_last_sampled_height(store, 9)
    assert checkpoint.last_sampled_height(store) == 9


def test_checkpoint_survives_restart(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    checkpoint.put_result(store, result(7, SamplingStatus.UNAVAILABLE), checkpoint=True)
    store.close()
    store = RocksStore(tmp_path / "db")
    assert checkpoint.last_sampled_height(store) == 7
    assert checkpoint.get_result(store, 7) == result(7, SamplingStatus.UNAVAILABLE)
    store.close()
