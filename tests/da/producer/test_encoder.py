"""The block loop's encoder replaces a broken worker pool instead of failing forever."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future
from typing import Any

import pytest

from da.producer.encoder import Encoder
from erasure.parallel import RowBatch

BLOBS = [(b"\x01", b"tiny")]


class BrokenPool(Executor):
    """An executor whose workers are gone, like a ProcessPoolExecutor after one was killed."""

    def __init__(self) -> None:
        self.shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise BrokenExecutor("a worker died")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shut_down = True


async def test_a_broken_pool_is_replaced_and_the_next_encode_works() -> None:
    made: list[Executor | None] = []
    broken = BrokenPool()

    def make() -> Executor | None:
        made.append(broken if not made else None)  # then encode in-process
        return made[-1]

    encoder = Encoder(make)
    await encoder.start()
    batches: list[RowBatch] = []
    with pytest.raises(BrokenExecutor):
        await encoder.encode_stream(BLOBS, max_rows=1, on_rows=batches.append)
    assert broken.shut_down and len(made) == 2 and not batches
    summary = await encoder.encode_stream(BLOBS, max_rows=1, on_rows=batches.append)
    assert summary.k == 1 and sum(len(b.cells) for b in batches) == 2  # 2k extended rows
    encoder.shutdown()
