"""Group commit: items arriving while a batch is handled go together in the next one."""

from __future__ import annotations

import asyncio

import pytest

from da.batching import Batcher


class Recorder:
    """A batch handler that records its batches and takes one loop turn per batch."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(items)
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("disk gone")
        return [item * 10 if item >= 0 else ValueError(f"bad {item}") for item in items]


async def test_items_arriving_meanwhile_share_the_next_batch_in_order() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    rest = await asyncio.gather(*(batcher.submit(n) for n in (2, 3, 4)))
    assert (await first, rest) == (10, [20, 30, 40])
    assert handler.batches == [[1], [2, 3, 4]]


async def test_each_item_gets_its_own_outcome() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder())
    outcomes = await batcher.submit_many([1, -2, 3])
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError)


async def test_a_failed_batch_fails_its_items_and_the_next_batch_still_runs() -> None:
    handler = Recorder(fail=True)
    batcher: Batcher[int, int] = Batcher(handler)
    with pytest.raises(OSError, match="disk gone"):
        await batcher.submit(1)
    handler.fail = False
    assert await batcher.submit(2) == 20


async def test_batches_are_bounded_by_weight_but_hold_at_least_one_item() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, weight=lambda n: n, max_batch_weight=5)
    assert await batcher.submit_many([9, 2, 3, 1, 4]) == [90, 20, 30, 10, 40]
    assert handler.batches == [[9], [2, 3], [1, 4]]


async def test_a_cancelled_caller_does_not_withdraw_its_item() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler)
    caller = asyncio.ensure_future(batcher.submit(7))
    await asyncio.sleep(0)
    caller.cancel()
    assert await batcher.submit(8) == 80
    assert handler.batches == [[7, 8]]  # 7 was handled though its caller left


async def test_with_two_in_flight_an_item_waits_for_a_free_slot_not_a_whole_batch() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, in_flight=2)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(batcher.submit(2))
    for _ in range(2):  # the caller's turn, then the second worker's
        await asyncio.sleep(0)
    assert handler.batches == [[1], [2]]  # both handled at once
    assert (await first, await second) == (10, 20)
    assert await batcher.submit_many([3, 4, 5]) == [30, 40, 50]
    assert sorted(item for batch in handler.batches[2:] for item in batch) == [3, 4, 5]


async def test_a_lingering_batch_waits_for_the_items_arriving_within_the_linger() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, linger=0.05)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)  # within the linger: joins the first batch
    second = asyncio.ensure_future(batcher.submit(2))
    assert (await first, await second) == (10, 20)
    assert handler.batches == [[1, 2]]


async def test_a_full_batch_does_not_linger() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, max_batch_weight=2, linger=60.0)
    assert await asyncio.wait_for(batcher.submit_many([1, 2]), 5) == [10, 20]
    assert handler.batches == [[1, 2]]


async def test_a_lingering_batch_starts_once_items_stop_arriving() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, linger=60.0, quiet=0.02)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(batcher.submit_many([1, 2, 3]), 5) == [10, 20, 30]
    assert handler.batches == [[1, 2, 3]]
    assert asyncio.get_running_loop().time() - started < 30  # the gap ended it, not the linger


async def test_a_second_worker_lingers_for_the_items_after_those_the_first_took() -> None:
    handler = Recorder()
    batcher: Batcher[int, int] = Batcher(handler, in_flight=2, linger=0.2)
    submitted = []
    for item, at in ((1, 0.0), (2, 0.1), (3, 0.21), (4, 0.35)):  # seconds from the start
        await asyncio.sleep(at - (submitted[-1][1] if submitted else 0.0))
        submitted.append((asyncio.ensure_future(batcher.submit(item)), at))
    assert [await future for future, _at in submitted] == [10, 20, 30, 40]
    # the worker started by item 2 does not wake on its own clock and send item 3 alone
    assert handler.batches == [[1, 2], [3, 4]]
