"""The idle collector: full collections deferred while streams run, done between them."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from jupyter_llm.server.collector import DEFERRED_THRESHOLD2, IdleCollector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    yield saved
    gc.unfreeze()
    gc.set_threshold(*saved)


def _make_young_garbage() -> None:
    """Cycles that survive young collections, so a full one has something to find."""
    for _ in range(3):
        for _ in range(2000):
            a: list[object] = []
            a.append(a)
        gc.collect(1)


async def test_start_freezes_and_defers_full_collections(
    thresholds: tuple[int, int, int],
) -> None:
    collector = IdleCollector(lambda: True, every_secs=60)
    collector.start()
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (thresholds[0], thresholds[1], DEFERRED_THRESHOLD2)
    collector.stop()
    assert gc.get_threshold() == thresholds


async def test_collects_only_while_idle(thresholds: tuple[int, int, int]) -> None:
    busy = True
    collector = IdleCollector(lambda: not busy, every_secs=60)
    collector.start()
    try:
        _make_young_garbage()
        assert gc.get_count()[2] > 0
        assert not collector.tick()  # streams run: no full collection
        assert gc.get_count()[2] > 0
        busy = False
        assert collector.tick()
        assert gc.get_count()[2] == 0  # a full collection ran
        assert not collector.tick()  # nothing new since: nothing to do
        assert collector.collections == 1
    finally:
        collector.stop()


async def test_the_timer_runs_ticks(thresholds: tuple[int, int, int]) -> None:
    collector = IdleCollector(lambda: True, every_secs=0.01)
    collector.start()
    try:
        _make_young_garbage()
        for _ in range(200):
            if collector.collections:
                break
            await asyncio.sleep(0.01)
        assert collector.collections >= 1
    finally:
        collector.stop()
