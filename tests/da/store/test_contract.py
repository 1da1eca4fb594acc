"""The KeyValueStore contract, run against MemoryStore and RocksStore alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from da.store.base import KeyValueStore, WriteBatch, prefix_upper_bound
from da.store.errors import StoreClosedError, StoreLockedError
from da.store.memory import MemoryStore
from da.store.rocks import RocksStore, open_store


def keys(pairs: object) -> list[bytes]:
    return [k for k, _ in pairs]  # type: ignore[attr-defined]


def test_implements_protocol(store: KeyValueStore) -> None:
    assert isinstance(store, KeyValueStore)


def test_get_put_delete(store: KeyValueStore) -> None:
    assert store.get(b"k") is None
    store.put(b"k", b"v1")
    store.put(b"k", b"v2", sync=True)
    assert store.get(b"k") == b"v2"
    store.delete(b"k", sync=True)
    assert store.get(b"k") is None
    store.delete(b"absent")


def test_empty_value_is_not_absent(store: KeyValueStore) -> None:
    store.put(b"k", b"")
    assert store.get(b"k") == b""


def test_rejects_non_bytes(store: KeyValueStore) -> None:
    with pytest.raises(TypeError):
        store.put("k", b"v")  # type: ignore[arg-type]


def test_batch_applies_in_order(store: KeyValueStore) -> None:
    store.put(b"old", b"x")
    batch = WriteBatch()
    batch.put(b"a", b"1")
    batch.put(b"b", b"2")
    batch.delete(b"a")
    batch.delete(b"old")
    batch.put(b"b", b"3")
    store.write(batch, sync=True)
    assert (store.get(b"a"), store.get(b"b"), store.get(b"old")) == (None, b"3", None)


def test_failed_batch_writes_nothing(store: KeyValueStore) -> None:
    batch = WriteBatch()
    batch.put(b"a", b"1")
    with pytest.raises(TypeError):
        batch.put(b"b", 2)  # type: ignore[arg-type]
    assert store.get(b"a") is None  # nothing reaches the store until write()


def test_prefix_iteration_order_and_bounds(store: KeyValueStore) -> None:
    for k in [b"a\xff", b"b", b"b\x00", b"b\x01\x02", b"b\xff\xff", b"c", b"ba"]:
        store.put(k, k + b"!")
    got = list(store.iterate(b"b"))
    assert keys(got) == [b"b", b"b\x00", b"b\x01\x02", b"ba", b"b\xff\xff"]
    assert all(v == k + b"!" for k, v in got)
    assert keys(store.iterate(b"z")) == []
    assert keys(store.iterate(b"")) == sorted(keys(store.iterate(b"")))


def test_numeric_order_with_big_endian_heights(store: KeyValueStore) -> None:
    for h in [256, 1, 2**40, 255, 0]:
        store.put(b"H" + h.to_bytes(8, "big"), b"")
    heights = [int.from_bytes(k[1:], "big") for k in keys(store.iterate(b"H"))]
    assert heights == [0, 1, 255, 256, 2**40]


def test_reverse_iteration(store: KeyValueStore) -> None:
    for k in [b"a", b"b1", b"b2", b"b3", b"c"]:
        store.put(k, b"")
    assert keys(store.iterate(b"b", reverse=True)) == [b"b3", b"b2", b"b1"]
    assert keys(store.iterate(b"", reverse=True)) == [b"c", b"b3", b"b2", b"b1", b"a"]


def test_reverse_with_all_ff_prefix(store: KeyValueStore) -> None:
    for k in [b"\xfe", b"\xff", b"\xff\x01", b"\xff\xff"]:
        store.put(k, b"")
    assert keys(store.iterate(b"\xff", reverse=True)) == [b"\xff\xff", b"\xff\x01", b"\xff"]


def test_start_forward_and_reverse(store: KeyValueStore) -> None:
    for k in [b"a", b"b1", b"b2", b"b3", b"c"]:
        store.put(k, b"")
    assert keys(store.iterate(b"b", start=b"b2")) == [b"b2", b"b3"]
    assert keys(store.iterate(b"b", start=b"b15")) == [b"b2", b"b3"]
    assert keys(store.iterate(b"b", start=b"b2", reverse=True)) == [b"b2", b"b1"]
    assert keys(store.iterate(b"b", start=b"b25", reverse=True)) == [b"b2", b"b1"]


def test_start_outside_prefix(store: KeyValueStore) -> None:
    for k in [b"a", b"b", b"b1", b"c"]:
        store.put(k, b"")
    assert keys(store.iterate(b"b", start=b"a")) == [b"b", b"b1"]
    assert keys(store.iterate(b"b", start=b"c")) == []
    assert keys(store.iterate(b"b", start=b"c", reverse=True)) == [b"b1", b"b"]
    assert keys(store.iterate(b"b", start=b"a", reverse=True)) == []


def test_iteration_is_a_snapshot(store: KeyValueStore) -> None:
    for k in [b"p1", b"p2", b"p3"]:
        store.put(k, b"")
    it = store.iterate(b"p")
    first = next(it)
    store.delete(b"p2")
    store.put(b"p4", b"")
    assert keys([first, *it]) == [b"p1", b"p2", b"p3"]


def test_closed_store_raises(store: KeyValueStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        store.get(b"k")


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound(b"ab") == b"ac"
    assert prefix_upper_bound(b"a\xff") == b"b"
    assert prefix_upper_bound(b"\xff\xff") is None
    assert prefix_upper_bound(b"") is None


def test_open_store_selects_implementation(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    rocks = open_store(tmp_path / "db")
    assert isinstance(rocks, RocksStore)
    rocks.close()


def test_rocks_reopen_persists(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    batch = WriteBatch()
    batch.put(b"a", b"1")
    batch.put(b"b", b"2")
    store.write(batch, sync=True)
    store.put(b"c", b"3", sync=True)
    store.close()
    store = RocksStore(tmp_path / "db")
    assert keys(store.iterate(b"")) == [b"a", b"b", b"c"]
    store.close()


def test_rocks_reopen_after_abandoned_iterator(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    store.put(b"a", b"1")
    it = store.iterate(b"")
    next(it)
    del it
    store.close()
    RocksStore(tmp_path / "db").close()


def test_rocks_locked_by_this_process(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    with pytest.raises(StoreLockedError, match="locked"):
        RocksStore(tmp_path / "db")
    store.close()


def test_rocks_locked_by_another_process(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    code = (
        "import sys\nfrom da.store.rocks import RocksStore\nfrom da.store.errors import "
        "StoreLockedError\ntry:\n    RocksStore(sys.argv[1])\nexcept StoreLockedError:\n"
        "    sys.exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "db")], timeout=60)
    store.close()
    assert done.returncode == 7
