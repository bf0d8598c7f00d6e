"""When the garbage collector may walk the server's objects: not in the middle of a stream.

A full (generation 2) collection walks every object the collector tracks. After start-up the
server's objects are frozen (``gc.freeze``), but what it creates later (lazy imports on the
first requests, records, handlers) stays in reach: a full collection over those objects
stops the loop, and every stream and status poll with it, for longer than the loop-latency
budget allows (docs/benchmarks.md has the measurement). Young collections (generations 0 and
1) are cheap and stay automatic.

``IdleCollector`` therefore defers full collections (a high third threshold) and runs them
itself, between streams: every ``every_secs`` it collects if the pool has nothing running
or waiting. A pool that is never idle still gets its full collection from the interpreter,
after ``threshold2`` young collections (minutes of streaming), so garbage cycles are never
kept for ever.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

__all__ = ["IdleCollector"]

log = logging.getLogger("jupyter_llm.server")

DEFERRED_THRESHOLD2 = 1000  # generation-1 collections before the interpreter runs a full one


class IdleCollector:
    """Freezes the start-up heap and runs full collections only while ``idle()`` holds."""

    def __init__(self, idle: Callable[[], bool], every_secs: float = 30.0) -> None:
        self._idle = idle
        self._every = every_secs
        self._saved: tuple[int, int, int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.collections = 0  # full collections this collector ran

    def start(self) -> None:
        """Collect and freeze what exists now, defer full collections, start the timer."""
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, DEFERRED_THRESHOLD2)
        self._schedule()

    def stop(self) -> None:
        """The interpreter's thresholds back; frozen objects stay frozen (they are in use)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def tick(self) -> bool:
        """One check: a full collection if the pool is idle and young collections happened
        since the last full one. Returns whether it collected."""
        if gc.get_count()[2] == 0 or not self._idle():
            return False
        started = time.perf_counter()
        found = gc.collect()
        self.collections += 1
        log.debug(
            "full collection while idle: %d unreachable, %.1f ms",
            found,
            (time.perf_counter() - started) * 1000,
        )
        return True

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._every, self._run)

    def _run(self) -> None:
        self.tick()
        self._schedule()
