"""Store fixtures: every contract test runs against both implementations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from da.store.base import KeyValueStore
from da.store.memory import MemoryStore
from da.store.rocks import RocksStore

StoreFactory = Callable[[], KeyValueStore]


@pytest.fixture(params=["memory", "rocks"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens (or, for rocks, reopens) the store under test; closes everything it opened."""
    opened: list[KeyValueStore] = []

    def make() -> KeyValueStore:
        store = MemoryStore() if request.param == "memory" else RocksStore(tmp_path / "db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> KeyValueStore:
    return store_factory()
