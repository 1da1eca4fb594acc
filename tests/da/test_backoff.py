import random

from da.backoff import Backoff


def test_delays_double_within_equal_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial_seconds=1.0, cap_seconds=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule


def test_reset_starts_over() -> None:
    backoff = Backoff(initial_seconds=1.0, cap_seconds=100.0, rng=random.Random(1))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(initial_seconds=0.5, cap_seconds=30.0, rng=random.Random(2))
    for _ in range(2000):
        delay = backoff.next_delay()
    assert 15.0 <= delay <= 30.0
