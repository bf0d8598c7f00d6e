"""The repaint policy on its own, on a clock driven by hand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from jupyter_llm.kernel.pacing import (
    COUNTER_INTERVAL,
    LAG_MARGIN,
    LARGE,
    MAX_RATE,
    MIN_INTERVAL,
    Pacer,
    lag_limit,
)


@dataclass(frozen=True)
class Paint:
    at: float  # seconds into the stream
    size: int
    lag: float  # how long the oldest token it shows for the first time had waited


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def simulate(bytes_per_token: int, tokens_per_second: float, seconds: float) -> list[Paint]:
    """Drive a pacer as a view does: a text grows token by token; on a change with no
    repaint scheduled, one is scheduled after ``delay``. Returns the repaints."""
    clock = Clock()
    start = clock.now
    pacer = Pacer(clock)
    paints: list[Paint] = []
    due: float | None = None
    size = 0
    oldest_unshown: float | None = None  # when the first token not shown yet arrived
    step = 1 / tokens_per_second
    arrivals = (start + i * step for i in itertools.count())
    next_token = next(arrivals)
    while clock.now < start + seconds:
        if due is not None and due <= next_token:
            clock.now = due
            due = None
            if pacer.delay(size) <= 0:
                assert oldest_unshown is not None
                pacer.painted(size)
                paints.append(Paint(clock.now - start, size, clock.now - oldest_unshown))
                oldest_unshown = None
            else:
                due = clock.now + pacer.delay(size)
            continue
        clock.now = next_token
        next_token = next(arrivals)
        size += bytes_per_token
        if oldest_unshown is None:
            oldest_unshown = clock.now
        if due is None:
            due = clock.now + pacer.delay(size)
    return paints


def test_the_first_change_paints_at_once_then_ten_a_second_at_most() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    assert pacer.delay(10) == 0.0
    pacer.painted(10)
    assert pacer.delay(20) == pytest.approx(MIN_INTERVAL)
    clock.now += 0.04
    assert pacer.delay(20) == pytest.approx(MIN_INTERVAL - 0.04)
    clock.now += 5.0  # a quiet spell: the next change goes at once
    assert pacer.delay(30) == 0.0
    assert (pacer.paints, pacer.sent) == (1, 10)


def test_the_pause_grows_with_the_size_up_to_the_lag_allowed() -> None:
    pacer = Pacer(Clock())
    assert pacer.interval(1_000) == MIN_INTERVAL
    assert pacer.interval(LARGE) == MIN_INTERVAL  # 16 KB at ten a second is 160 KB/s
    assert pacer.interval(100_000) == pytest.approx(100_000 / MAX_RATE)  # 0.5 s: 200 KB/s
    assert pacer.interval(10_000_000) == pytest.approx(lag_limit(10_000_000) - LAG_MARGIN)
    assert lag_limit(LARGE) == 0.5 and lag_limit(LARGE + 1) == 1.0


def test_counters_refresh_on_their_own_clock() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    assert pacer.counters_delay() == 0.0
    pacer.counters_painted(300)
    assert pacer.counters_delay() == pytest.approx(COUNTER_INTERVAL)
    pacer.painted(50_000)  # a repaint of the text does not push the counters back
    clock.now += COUNTER_INTERVAL
    assert pacer.counters_delay() == 0.0
    assert pacer.sent == 50_300


@pytest.mark.parametrize(
    ("bytes_per_token", "rate", "seconds"),
    [
        (5, 100, 3.0),  # a 300-token answer from a slow model
        (6, 1000, 5.0),  # a fast model: 30 KB in 5 s
        (40, 2000, 6.0),  # 480 KB: past the size where the rate would let it lag
    ],
)
def test_a_stream_never_lags_nor_floods(bytes_per_token: int, rate: float, seconds: float) -> None:
    paints = simulate(bytes_per_token, rate, seconds)
    assert len(paints) > seconds * 1.5
    for before, after in itertools.pairwise(paints):
        assert after.at - before.at >= MIN_INTERVAL - 1e-9
    for paint in paints:
        assert paint.lag <= lag_limit(paint.size) - LAG_MARGIN + 1e-9
    # Each second sends at most ~200 KB (one repaint's slack), until the lag bound wins.
    for second in range(int(seconds)):
        window = [p for p in paints if second <= p.at < second + 1]
        biggest = max((p.size for p in window), default=0)
        if biggest / MAX_RATE <= lag_limit(biggest) - LAG_MARGIN:
            assert sum(p.size for p in window) <= MAX_RATE + biggest, second
