"""ckzg 2.1.8 leaks the lists its cell functions return; `erasure.kzg` drops the leaked reference.
These fail if the wrappers leak again (or would crash if they dropped one reference too many)."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable

from erasure import kzg
from erasure.constants import BYTES_PER_FIELD_ELEMENT, CELLS_PER_ROW, FIELD_ELEMENTS_PER_BLOB

CALLS = 20
ONE_CALL_OUTPUT = 128 * (2048 + 48)  # what a leaking call keeps: ~262 KB


def a_row() -> bytes:
    rng = random.Random(5)
    return b"".join(
        rng.getrandbits(250).to_bytes(BYTES_PER_FIELD_ELEMENT, "big")
        for _ in range(FIELD_ELEMENTS_PER_BLOB)
    )


def retained_bytes(call: Callable[[], object]) -> int:
    """Python memory still allocated after CALLS calls whose results are dropped."""
    call()  # warm-up: the settings and the leak probe happen on first use
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(CALLS):
            call()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_computing_cells_keeps_nothing() -> None:
    row = a_row()
    assert retained_bytes(lambda: kzg.compute_cells_and_proofs(row)) < ONE_CALL_OUTPUT


def test_recovering_a_row_keeps_nothing() -> None:
    cells, proofs = kzg.compute_cells_and_proofs(a_row())
    half = list(range(CELLS_PER_ROW, 2 * CELLS_PER_ROW))
    given = [cells[c] for c in half]
    got, got_proofs = kzg.recover_row(half, given)
    assert (got, got_proofs) == (cells, proofs)  # the results are whole after the release
    assert retained_bytes(lambda: kzg.recover_row(half, given)) < ONE_CALL_OUTPUT
